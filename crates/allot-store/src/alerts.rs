//! Alerts that reach people: account managers, webhooks, and the delivery
//! of every outbox event to the webhooks and mailboxes that want it.
//!
//! An event is fanned out once (`fan_out`): one `Delivery` per webhook and
//! per address, written in the transaction that marks the event done. A
//! delivery is claimed (`claim_due`, which leases it so no other instance
//! takes it meanwhile), tried outside any transaction, and its attempt
//! recorded (`record_attempt`): at least once, and after a restart too,
//! because every step is a row.

use std::collections::HashMap;

use allot_core::alerts::{retry_delay, should_disable, webhook_wants, worth_mailing};
use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::answer::Answering;
use crate::audit::{snapshot, AuditContext, AuditEntry};
use crate::backend::{Changes, WriteTx};
use crate::clock::stored_time;
use crate::error::{StoreError, StoreResult};
use crate::ids::{new_id, DeliveryId};
use crate::model::{Account, Event, Page};

/// A subscriber's endpoint. Its signing secret travels beside it
/// (`WebhookRow`), never inside what is audited or listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Webhook {
    pub id: String,
    pub url: String,
    /// Empty: every event type, those added later included.
    pub event_types: Vec<String>,
    /// Only this account's events, when set.
    pub account_id: Option<String>,
    pub description: Option<String>,
    pub enabled: bool,
    /// The first failure since the last success.
    pub failing_since: Option<DateTime<Utc>>,
    pub disabled_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookRow {
    pub webhook: Webhook,
    /// `whsec_` + base64 of the key.
    pub secret: String,
}

/// What a manager changes on a webhook: absent fields stay.
#[derive(Debug, Clone, Default)]
pub struct WebhookEdit {
    pub url: Option<String>,
    pub event_types: Option<Vec<String>>,
    pub description: Option<Option<String>>,
    /// Enabling again forgets the failures that disabled it.
    pub enabled: Option<bool>,
}

#[derive(Debug, Clone)]
pub enum WebhookChange {
    Edit(WebhookEdit),
    Rotate { secret: String },
}

impl WebhookChange {
    fn action(&self) -> &'static str {
        match self {
            WebhookChange::Edit(_) => "webhook.update",
            WebhookChange::Rotate { .. } => "webhook.rotate_secret",
        }
    }

    fn apply(&self, row: &mut WebhookRow) {
        match self {
            WebhookChange::Rotate { secret } => row.secret = secret.clone(),
            WebhookChange::Edit(edit) => {
                let w = &mut row.webhook;
                if let Some(url) = &edit.url {
                    w.url = url.clone();
                }
                if let Some(types) = &edit.event_types {
                    w.event_types = types.clone();
                }
                if let Some(description) = &edit.description {
                    w.description = description.clone();
                }
                if let Some(enabled) = edit.enabled {
                    if enabled && !w.enabled {
                        w.failing_since = None;
                        w.disabled_reason = None;
                    }
                    w.enabled = enabled;
                }
            }
        }
    }
}

/// The account manager fields as they will be.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountManager {
    pub manager_name: Option<String>,
    pub manager_email: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Webhook,
    Email,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Webhook => "webhook",
            Channel::Email => "email",
        }
    }

    pub fn parse(s: &str) -> Option<Channel> {
        [Channel::Webhook, Channel::Email]
            .into_iter()
            .find(|c| c.as_str() == s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    Pending,
    Delivered,
    /// The retry schedule ran out; a manual retry starts it again.
    Failed,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<DeliveryState> {
        [
            DeliveryState::Pending,
            DeliveryState::Delivered,
            DeliveryState::Failed,
        ]
        .into_iter()
        .find(|c| c.as_str() == s)
    }
}

/// One try, as stored in the delivery's `attempts` (a wire format: fields
/// are only ever added, with defaults).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    pub at: DateTime<Utc>,
    /// The receiver's HTTP status (webhooks) or SMTP reply code (e-mail).
    #[serde(default)]
    pub status_code: Option<u16>,
    #[serde(default)]
    pub latency_ms: u64,
    #[serde(default)]
    pub error: Option<String>,
}

/// Attempts kept per delivery (manual retries can add more than the schedule).
pub const KEPT_ATTEMPTS: usize = 50;
/// Longest error text kept per attempt.
pub const MAX_ERROR_LEN: usize = 500;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub id: String,
    pub event_id: String,
    pub event_kind: String,
    pub channel: Channel,
    /// The webhook id, or the e-mail address.
    pub target: String,
    pub state: DeliveryState,
    pub tries: u32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub attempts: Vec<Attempt>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A claimed delivery with the event it carries.
#[derive(Debug, Clone)]
pub struct DueDelivery {
    pub delivery: Delivery,
    pub event: Event,
}

/// Who is mailed about an entitlement's events.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recipients {
    pub account_id: String,
    pub manager_email: Option<String>,
    pub owner_email: Option<String>,
}

/// Which event types mail the account manager, and which the owner.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MailRules {
    pub manager: Vec<String>,
    pub owner: Vec<String>,
}

impl MailRules {
    /// No mail at all (no SMTP server configured).
    pub fn none() -> MailRules {
        MailRules::default()
    }

    fn addresses(&self, event: &Event, to: &Recipients) -> Vec<String> {
        if !worth_mailing(&event.kind, &event.data) {
            return Vec::new();
        }
        let mut out: Vec<String> = Vec::new();
        let wanted = [
            (&self.manager, &to.manager_email),
            (&self.owner, &to.owner_email),
        ];
        for (kinds, address) in wanted {
            if let Some(address) = address {
                if kinds.contains(&event.kind) && !out.contains(address) {
                    out.push(address.clone());
                }
            }
        }
        out
    }
}

/// Most events one `fan_out` call takes; the worker calls again.
pub const FAN_OUT_LIMIT: u32 = 500;
/// Most webhooks an event is fanned out to.
pub const MAX_WEBHOOKS: u32 = 1_000;

/// The storage of alerts. Every change a client asks for takes an
/// `AuditContext` (and the request's idempotency answer, recorded in the
/// same transaction) and writes one audit entry:
///
/// | method | action | target |
/// |---|---|---|
/// | `update_account_manager` | `account.update` | account |
/// | `insert_webhook` / `delete_webhook` | `webhook.create` / `webhook.delete` | webhook |
/// | `change_webhook` | `webhook.update` or `webhook.rotate_secret` | webhook (never its secret) |
/// | `send_test_event` | `webhook.test` | webhook |
/// | `retry_delivery` | `delivery.retry` | delivery |
/// | `record_attempt` disabling a webhook | `webhook.disable` (system) | webhook |
///
/// Fan-out, claims and attempts are the worker's bookkeeping: not audited.
#[async_trait]
pub trait AlertStore: Send + Sync {
    async fn update_account_manager(
        &self,
        id: &str,
        manager: &AccountManager,
        now: DateTime<Utc>,
        audit: &AuditContext,
        answer: Option<Answering<Account>>,
    ) -> StoreResult<Account>;

    async fn insert_webhook(
        &self,
        row: &WebhookRow,
        audit: &AuditContext,
        answer: Option<Answering<WebhookRow>>,
    ) -> StoreResult<()>;
    async fn get_webhook(&self, id: &str) -> StoreResult<Option<WebhookRow>>;
    async fn list_webhooks(&self, page: &Page) -> StoreResult<Vec<Webhook>>;
    /// A webhook that does not exist is `NotFound`.
    async fn change_webhook(
        &self,
        id: &str,
        change: &WebhookChange,
        now: DateTime<Utc>,
        audit: &AuditContext,
        answer: Option<Answering<WebhookRow>>,
    ) -> StoreResult<WebhookRow>;
    /// Deletes a webhook and its deliveries; whether it existed.
    async fn delete_webhook(
        &self,
        id: &str,
        now: DateTime<Utc>,
        audit: &AuditContext,
        answer: Option<Answering<bool>>,
    ) -> StoreResult<bool>;
    /// A `webhook.test` event for this webhook alone, due now.
    async fn send_test_event(
        &self,
        webhook_id: &str,
        now: DateTime<Utc>,
        audit: &AuditContext,
        answer: Option<Answering<Delivery>>,
    ) -> StoreResult<Delivery>;

    async fn list_deliveries(
        &self,
        channel: Channel,
        target: Option<&str>,
        page: &Page,
    ) -> StoreResult<Vec<Delivery>>;
    async fn get_delivery(&self, id: &str) -> StoreResult<Option<Delivery>>;
    /// Due again now, whatever its state (`NotFound` when it does not exist).
    async fn retry_delivery(
        &self,
        id: &str,
        now: DateTime<Utc>,
        audit: &AuditContext,
        answer: Option<Answering<Delivery>>,
    ) -> StoreResult<Delivery>;

    /// Turns up to `FAN_OUT_LIMIT` new outbox events into their deliveries;
    /// returns how many events it took.
    async fn fan_out(&self, rules: &MailRules, now: DateTime<Utc>) -> StoreResult<u64>;
    /// Up to `limit` deliveries due at `now`, leased until `now + lease`.
    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        lease: Duration,
        limit: u32,
    ) -> StoreResult<Vec<DueDelivery>>;
    /// Records a try of a claimed delivery and schedules the next one.
    async fn record_attempt(&self, done: &AttemptDone) -> StoreResult<()>;
}

/// A try of a claimed delivery, as the worker reports it.
#[derive(Debug, Clone)]
pub struct AttemptDone {
    pub delivery: Delivery,
    pub attempt: Attempt,
    pub delivered: bool,
    /// In [-1, 1]: spreads the next try (`alerts::retry_delay`).
    pub jitter: f64,
    pub now: DateTime<Utc>,
}

/// What the alert sequences need of a transaction, beside `WriteTx`.
/// Locks are taken in one order: webhook, then delivery.
#[allow(async_fn_in_trait)]
pub trait AlertTx: WriteTx {
    async fn lock_account(&self, id: &str) -> Result<Option<Account>, Self::Error>;
    async fn update_account(&self, account: &Account) -> Result<(), Self::Error>;
    async fn lock_webhook(&self, id: &str) -> Result<Option<WebhookRow>, Self::Error>;
    /// Inserts or replaces (by id).
    async fn save_webhook(&self, row: &WebhookRow) -> Result<(), Self::Error>;
    /// Deletes the webhook and its deliveries.
    async fn delete_webhook(&self, id: &str) -> Result<(), Self::Error>;
    /// Enabled webhooks, at most `limit`.
    async fn live_webhooks(&self, limit: u32) -> Result<Vec<Webhook>, Self::Error>;
    /// Events not fanned out yet, oldest first, locked; rows another
    /// transaction holds are skipped.
    async fn claim_unfanned(&self, limit: u32) -> Result<Vec<Event>, Self::Error>;
    async fn mark_fanned_out(&self, ids: &[String], now: DateTime<Utc>) -> Result<(), Self::Error>;
    /// The account and addresses of each of these entitlements.
    async fn recipients(
        &self,
        entitlement_ids: &[String],
    ) -> Result<HashMap<String, Recipients>, Self::Error>;
    /// Inserts new deliveries; one that exists for the same (event,
    /// channel, target) is kept as it is.
    async fn insert_deliveries(&self, deliveries: &[Delivery]) -> Result<(), Self::Error>;
    async fn lock_delivery(&self, id: &str) -> Result<Option<Delivery>, Self::Error>;
    async fn update_delivery(&self, delivery: &Delivery) -> Result<(), Self::Error>;
    /// Pending deliveries due at `now`, oldest due first, locked; rows
    /// another transaction holds are skipped.
    async fn lock_due(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<Delivery>, Self::Error>;
    async fn events_by_id(&self, ids: &[String]) -> Result<Vec<Event>, Self::Error>;
}

async fn commit_with<T: WriteTx, R>(
    tx: T,
    mut changes: Changes,
    answer: Option<&Answering<R>>,
    result: &R,
    now: DateTime<Utc>,
) -> Result<(), T::Error> {
    changes.answers.extend(answer.map(|a| a.write(result)));
    tx.write(&changes, now).await?;
    tx.commit().await
}

fn audited<S: Serialize>(
    ctx: &AuditContext,
    action: &str,
    kind: &str,
    id: &str,
    before: Option<&S>,
    after: Option<&S>,
    now: DateTime<Utc>,
) -> AuditEntry {
    AuditEntry::new(
        ctx,
        action,
        kind,
        id,
        before.and_then(snapshot),
        after.and_then(snapshot),
        now,
    )
}

pub async fn update_account_manager<T: AlertTx>(
    tx: T,
    id: &str,
    manager: &AccountManager,
    now: DateTime<Utc>,
    ctx: &AuditContext,
    answer: Option<&Answering<Account>>,
) -> Result<Account, T::Error> {
    let now = stored_time(now);
    let before = tx
        .lock_account(id)
        .await?
        .ok_or_else(|| StoreError::not_found("account", id))?;
    let after = Account {
        manager_name: manager.manager_name.clone(),
        manager_email: manager.manager_email.clone(),
        ..before.clone()
    };
    tx.update_account(&after).await?;
    let entry = audited(
        ctx,
        "account.update",
        "account",
        id,
        Some(&before),
        Some(&after),
        now,
    );
    let changes = Changes {
        audit: vec![entry],
        ..Changes::default()
    };
    commit_with(tx, changes, answer, &after, now).await?;
    Ok(after)
}

pub async fn insert_webhook<T: AlertTx>(
    tx: T,
    row: &WebhookRow,
    ctx: &AuditContext,
    answer: Option<&Answering<WebhookRow>>,
) -> Result<(), T::Error> {
    let w = &row.webhook;
    tx.save_webhook(row).await?;
    let entry = audited(
        ctx,
        "webhook.create",
        "webhook",
        &w.id,
        None,
        Some(w),
        w.created_at,
    );
    let changes = Changes {
        audit: vec![entry],
        ..Changes::default()
    };
    commit_with(tx, changes, answer, row, w.created_at).await
}

pub async fn change_webhook<T: AlertTx>(
    tx: T,
    id: &str,
    change: &WebhookChange,
    now: DateTime<Utc>,
    ctx: &AuditContext,
    answer: Option<&Answering<WebhookRow>>,
) -> Result<WebhookRow, T::Error> {
    let now = stored_time(now);
    let before = tx
        .lock_webhook(id)
        .await?
        .ok_or_else(|| StoreError::not_found("webhook", id))?;
    let mut after = before.clone();
    change.apply(&mut after);
    after.webhook.updated_at = now;
    tx.save_webhook(&after).await?;
    let entry = audited(
        ctx,
        change.action(),
        "webhook",
        id,
        Some(&before.webhook),
        Some(&after.webhook),
        now,
    );
    let changes = Changes {
        audit: vec![entry],
        ..Changes::default()
    };
    commit_with(tx, changes, answer, &after, now).await?;
    Ok(after)
}

pub async fn delete_webhook<T: AlertTx>(
    tx: T,
    id: &str,
    now: DateTime<Utc>,
    ctx: &AuditContext,
    answer: Option<&Answering<bool>>,
) -> Result<bool, T::Error> {
    let now = stored_time(now);
    let Some(before) = tx.lock_webhook(id).await? else {
        commit_with(tx, Changes::default(), answer, &false, now).await?;
        return Ok(false);
    };
    tx.delete_webhook(id).await?;
    let entry = audited(
        ctx,
        "webhook.delete",
        "webhook",
        id,
        Some(&before.webhook),
        None,
        now,
    );
    let changes = Changes {
        audit: vec![entry],
        ..Changes::default()
    };
    commit_with(tx, changes, answer, &true, now).await?;
    Ok(true)
}

fn new_delivery(event: &Event, channel: Channel, target: &str, now: DateTime<Utc>) -> Delivery {
    Delivery {
        id: DeliveryId::new(now).into_string(),
        event_id: event.id.clone(),
        event_kind: event.kind.clone(),
        channel,
        target: target.to_string(),
        state: DeliveryState::Pending,
        tries: 0,
        next_attempt_at: Some(now),
        attempts: Vec::new(),
        created_at: now,
        updated_at: now,
    }
}

fn system_event(kind: &str, data: serde_json::Value, now: DateTime<Utc>) -> Event {
    Event {
        id: new_id("evt", now),
        kind: kind.to_string(),
        entitlement_id: None,
        data,
        created_at: now,
    }
}

/// The test event is written already fanned out (to this webhook alone).
pub async fn send_test_event<T: AlertTx>(
    tx: T,
    webhook_id: &str,
    now: DateTime<Utc>,
    ctx: &AuditContext,
    answer: Option<&Answering<Delivery>>,
) -> Result<Delivery, T::Error> {
    let now = stored_time(now);
    tx.lock_webhook(webhook_id)
        .await?
        .ok_or_else(|| StoreError::not_found("webhook", webhook_id))?;
    let event = system_event("webhook.test", json!({ "webhook_id": webhook_id }), now);
    let delivery = new_delivery(&event, Channel::Webhook, webhook_id, now);
    let entry = audited(
        ctx,
        "webhook.test",
        "webhook",
        webhook_id,
        None,
        Some(&json!({ "event_id": event.id, "delivery_id": delivery.id })),
        now,
    );
    let changes = Changes {
        events: vec![event.clone()],
        audit: vec![entry],
        answers: answer.map(|a| a.write(&delivery)).into_iter().collect(),
        ..Changes::default()
    };
    tx.write(&changes, now).await?;
    tx.mark_fanned_out(std::slice::from_ref(&event.id), now)
        .await?;
    tx.insert_deliveries(std::slice::from_ref(&delivery))
        .await?;
    tx.commit().await?;
    Ok(delivery)
}

pub async fn retry_delivery<T: AlertTx>(
    tx: T,
    id: &str,
    now: DateTime<Utc>,
    ctx: &AuditContext,
    answer: Option<&Answering<Delivery>>,
) -> Result<Delivery, T::Error> {
    let now = stored_time(now);
    let mut delivery = tx
        .lock_delivery(id)
        .await?
        .ok_or_else(|| StoreError::not_found("delivery", id))?;
    let before = json!({ "state": delivery.state, "next_attempt_at": delivery.next_attempt_at });
    delivery.state = DeliveryState::Pending;
    delivery.next_attempt_at = Some(now);
    delivery.updated_at = now;
    tx.update_delivery(&delivery).await?;
    let after = json!({ "state": delivery.state, "next_attempt_at": delivery.next_attempt_at });
    let entry = audited(
        ctx,
        "delivery.retry",
        "delivery",
        id,
        Some(&before),
        Some(&after),
        now,
    );
    let changes = Changes {
        audit: vec![entry],
        ..Changes::default()
    };
    commit_with(tx, changes, answer, &delivery, now).await?;
    Ok(delivery)
}

/// Takes new outbox events (skipping those another instance holds) and
/// writes one delivery per webhook that wants each and per address the
/// mail rules name, then marks them done, all in one transaction.
pub async fn fan_out<T: AlertTx>(
    tx: T,
    rules: &MailRules,
    now: DateTime<Utc>,
) -> Result<u64, T::Error> {
    let now = stored_time(now);
    let events = tx.claim_unfanned(FAN_OUT_LIMIT).await?;
    if events.is_empty() {
        return Ok(0);
    }
    let webhooks = tx.live_webhooks(MAX_WEBHOOKS).await?;
    let mut entitlement_ids: Vec<String> = events
        .iter()
        .filter_map(|e| e.entitlement_id.clone())
        .collect();
    entitlement_ids.sort_unstable();
    entitlement_ids.dedup();
    let recipients = tx.recipients(&entitlement_ids).await?;
    let mut deliveries = Vec::new();
    for event in &events {
        let to = event
            .entitlement_id
            .as_ref()
            .and_then(|id| recipients.get(id));
        let account = to.map(|r| r.account_id.as_str());
        for w in &webhooks {
            let subscribed = w.created_at <= event.created_at
                && webhook_wants(
                    &w.event_types,
                    w.account_id.as_deref(),
                    &event.kind,
                    account,
                );
            if subscribed {
                deliveries.push(new_delivery(event, Channel::Webhook, &w.id, now));
            }
        }
        for address in to.map(|r| rules.addresses(event, r)).unwrap_or_default() {
            deliveries.push(new_delivery(event, Channel::Email, &address, now));
        }
    }
    let ids: Vec<String> = events.iter().map(|e| e.id.clone()).collect();
    tx.insert_deliveries(&deliveries).await?;
    tx.mark_fanned_out(&ids, now).await?;
    tx.commit().await?;
    Ok(ids.len() as u64)
}

/// Leases due deliveries to this instance: they are due again only when
/// the lease ends, so a crash mid-try means a retry, never a loss.
pub async fn claim_due<T: AlertTx>(
    tx: T,
    now: DateTime<Utc>,
    lease: Duration,
    limit: u32,
) -> Result<Vec<DueDelivery>, T::Error> {
    let now = stored_time(now);
    let mut due = tx.lock_due(now, limit).await?;
    if due.is_empty() {
        return Ok(Vec::new());
    }
    for d in &mut due {
        d.next_attempt_at = Some(now + lease);
        tx.update_delivery(d).await?;
    }
    let ids: Vec<String> = due.iter().map(|d| d.event_id.clone()).collect();
    let events: HashMap<String, Event> = tx
        .events_by_id(&ids)
        .await?
        .into_iter()
        .map(|e| (e.id.clone(), e))
        .collect();
    tx.commit().await?;
    Ok(due
        .into_iter()
        .filter_map(|delivery| {
            let event = events.get(&delivery.event_id)?.clone();
            Some(DueDelivery { delivery, event })
        })
        .collect())
}

/// Records a try: delivered, due again per the retry schedule, or failed
/// when it is over. A webhook failing without a success for
/// `DISABLE_AFTER_DAYS` is disabled, with a `webhook.disabled` event.
pub async fn record_attempt<T: AlertTx>(tx: T, done: &AttemptDone) -> Result<(), T::Error> {
    let now = stored_time(done.now);
    let claimed = &done.delivery;
    let mut changes = Changes::default();
    if claimed.channel == Channel::Webhook {
        if let Some(before) = tx.lock_webhook(&claimed.target).await? {
            let mut row = before.clone();
            track_health(&mut row.webhook, done.delivered, now, &mut changes);
            if row != before {
                tx.save_webhook(&row).await?;
            }
        }
    }
    let Some(mut delivery) = tx.lock_delivery(&claimed.id).await? else {
        return Ok(());
    };
    let mut attempt = done.attempt.clone();
    if let Some(error) = &mut attempt.error {
        if let Some((cut, _)) = error.char_indices().nth(MAX_ERROR_LEN) {
            error.truncate(cut);
        }
    }
    delivery.tries = delivery.tries.saturating_add(1);
    delivery.attempts.push(attempt);
    let excess = delivery.attempts.len().saturating_sub(KEPT_ATTEMPTS);
    delivery.attempts.drain(..excess);
    delivery.updated_at = now;
    let next = retry_delay(delivery.tries, done.jitter);
    (delivery.state, delivery.next_attempt_at) = match (done.delivered, next) {
        (true, _) => (DeliveryState::Delivered, None),
        (false, Some(delay)) => (DeliveryState::Pending, Some(now + delay)),
        (false, None) => (DeliveryState::Failed, None),
    };
    tx.update_delivery(&delivery).await?;
    tx.write(&changes, now).await?;
    tx.commit().await
}

fn track_health(w: &mut Webhook, delivered: bool, now: DateTime<Utc>, changes: &mut Changes) {
    if delivered {
        w.failing_since = None;
        return;
    }
    let since = *w.failing_since.get_or_insert(now);
    if !w.enabled || !should_disable(since, now) {
        return;
    }
    let before = w.clone();
    w.enabled = false;
    w.disabled_reason = Some(format!(
        "every delivery failed for {} days",
        allot_core::alerts::DISABLE_AFTER_DAYS
    ));
    w.updated_at = now;
    let data = json!({ "webhook_id": w.id, "url": w.url, "failing_since": since });
    changes
        .events
        .push(system_event("webhook.disabled", data, now));
    changes.audit.push(audited(
        &AuditContext::system(),
        "webhook.disable",
        "webhook",
        &w.id,
        Some(&before),
        Some(w),
        now,
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: &str, data: serde_json::Value) -> Event {
        Event {
            id: "evt_1".into(),
            kind: kind.into(),
            entitlement_id: Some("ent_1".into()),
            data,
            created_at: DateTime::from_timestamp(0, 0).unwrap(),
        }
    }

    #[test]
    fn mail_rules_name_each_address_once() {
        let kinds = vec!["entitlement.exhausted".to_string()];
        let rules = MailRules {
            manager: kinds.clone(),
            owner: kinds,
        };
        let same = Recipients {
            account_id: "acc_1".into(),
            manager_email: Some("am@example.com".into()),
            owner_email: Some("am@example.com".into()),
        };
        let e = event("entitlement.exhausted", json!({}));
        assert_eq!(rules.addresses(&e, &same), vec!["am@example.com"]);
        let other = event("entitlement.overage", json!({}));
        assert!(rules.addresses(&other, &same).is_empty());
        assert!(MailRules::none().addresses(&e, &same).is_empty());
    }

    #[test]
    fn a_webhook_is_disabled_once_after_five_days_of_failures() {
        let t0 = DateTime::from_timestamp(1_000_000, 0).unwrap();
        let mut w = Webhook {
            id: "whk_1".into(),
            url: "https://example.com".into(),
            event_types: vec![],
            account_id: None,
            description: None,
            enabled: true,
            failing_since: None,
            disabled_reason: None,
            created_at: t0,
            updated_at: t0,
        };
        let mut changes = Changes::default();
        track_health(&mut w, false, t0, &mut changes);
        assert_eq!(w.failing_since, Some(t0));
        track_health(&mut w, false, t0 + Duration::days(4), &mut changes);
        assert!(w.enabled && changes.events.is_empty());
        track_health(&mut w, false, t0 + Duration::days(5), &mut changes);
        assert!(!w.enabled);
        track_health(&mut w, false, t0 + Duration::days(6), &mut changes);
        assert_eq!(changes.events.len(), 1);
        assert_eq!(changes.events[0].kind, "webhook.disabled");
        track_health(&mut w, true, t0 + Duration::days(7), &mut changes);
        assert_eq!(w.failing_since, None);
    }
}
