//! Account managers, webhooks and deliveries. The sequences are
//! `allot_store::alerts`'; this is their SQL. Instances sharing the
//! database take new events and due deliveries with `FOR UPDATE SKIP
//! LOCKED`, so no two of them fan out or try the same row at once.

use std::collections::HashMap;

use allot_store::alerts::{
    self as seq, AccountManager, AlertStore, AlertTx, Attempt, AttemptDone, Channel, Delivery,
    DeliveryState, DueDelivery, MailRules, Recipients, Webhook, WebhookChange, WebhookRow,
};
use allot_store::audit::AuditContext;
use allot_store::model::{Account, Event, Page};
use allot_store::{Answering, StoreResult};
use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use deadpool_postgres::Pool;
use tokio_postgres::types::Json;
use tokio_postgres::Row;

use crate::error::{Error, Res};
use crate::rows::{self, ACCOUNT_COLS, EVENT_COLS};
use crate::transaction::{in_tx, PgTx};
use crate::PostgresStore;

const WEBHOOK_COLS: &str = "id, url, event_types, account_id, description, enabled, \
    failing_since, disabled_reason, created_at, updated_at, secret";

fn webhook_row(r: &Row) -> Res<WebhookRow> {
    let types: Json<Vec<String>> = r.try_get(2)?;
    Ok(WebhookRow {
        webhook: Webhook {
            id: r.try_get(0)?,
            url: r.try_get(1)?,
            event_types: types.0,
            account_id: r.try_get(3)?,
            description: r.try_get(4)?,
            enabled: r.try_get(5)?,
            failing_since: r.try_get(6)?,
            disabled_reason: r.try_get(7)?,
            created_at: r.try_get(8)?,
            updated_at: r.try_get(9)?,
        },
        secret: r.try_get(10)?,
    })
}

const DELIVERY: &str = "SELECT d.id, d.event_id, e.kind, d.channel, d.target, d.state, \
    d.tries, d.next_attempt_at, d.attempts, d.created_at, d.updated_at \
    FROM deliveries d JOIN events e ON e.id = d.event_id";

fn delivery(r: &Row) -> Res<Delivery> {
    let channel: String = r.try_get(3)?;
    let state: String = r.try_get(5)?;
    let tries: i32 = r.try_get(6)?;
    let attempts: Json<Vec<Attempt>> = r.try_get(8)?;
    Ok(Delivery {
        id: r.try_get(0)?,
        event_id: r.try_get(1)?,
        event_kind: r.try_get(2)?,
        channel: Channel::parse(&channel)
            .ok_or_else(|| Error::data(format!("unknown channel {channel:?}")))?,
        target: r.try_get(4)?,
        state: DeliveryState::parse(&state)
            .ok_or_else(|| Error::data(format!("unknown delivery state {state:?}")))?,
        tries: u32::try_from(tries).unwrap_or(0),
        next_attempt_at: r.try_get(7)?,
        attempts: attempts.0,
        created_at: r.try_get(9)?,
        updated_at: r.try_get(10)?,
    })
}

fn tries(d: &Delivery) -> i32 {
    i32::try_from(d.tries).unwrap_or(i32::MAX)
}

impl AlertTx for PgTx<'_> {
    async fn lock_account(&self, id: &str) -> Res<Option<Account>> {
        let tx = self.inner();
        let stmt = tx
            .prepare_cached(&format!(
                "SELECT {ACCOUNT_COLS} FROM accounts WHERE id = $1 FOR UPDATE"
            ))
            .await?;
        tx.query_opt(&stmt, &[&id])
            .await?
            .as_ref()
            .map(rows::account)
            .transpose()
    }

    async fn update_account(&self, a: &Account) -> Res<()> {
        let tx = self.inner();
        let stmt = tx
            .prepare_cached(
                "UPDATE accounts SET manager_name = $2, manager_email = $3 WHERE id = $1",
            )
            .await?;
        tx.execute(&stmt, &[&a.id, &a.manager_name, &a.manager_email])
            .await?;
        Ok(())
    }

    async fn lock_webhook(&self, id: &str) -> Res<Option<WebhookRow>> {
        let tx = self.inner();
        let stmt = tx
            .prepare_cached(&format!(
                "SELECT {WEBHOOK_COLS} FROM webhooks WHERE id = $1 FOR UPDATE"
            ))
            .await?;
        tx.query_opt(&stmt, &[&id])
            .await?
            .as_ref()
            .map(webhook_row)
            .transpose()
    }

    async fn save_webhook(&self, row: &WebhookRow) -> Res<()> {
        let tx = self.inner();
        let w = &row.webhook;
        let stmt = tx
            .prepare_cached(
                "INSERT INTO webhooks (id, url, event_types, account_id, description, enabled, \
                 failing_since, disabled_reason, created_at, updated_at, secret) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
                 ON CONFLICT (id) DO UPDATE SET url = $2, event_types = $3, account_id = $4, \
                 description = $5, enabled = $6, failing_since = $7, disabled_reason = $8, \
                 updated_at = $10, secret = $11",
            )
            .await?;
        tx.execute(
            &stmt,
            &[
                &w.id,
                &w.url,
                &Json(&w.event_types),
                &w.account_id,
                &w.description,
                &w.enabled,
                &w.failing_since,
                &w.disabled_reason,
                &w.created_at,
                &w.updated_at,
                &row.secret,
            ],
        )
        .await?;
        Ok(())
    }

    async fn delete_webhook(&self, id: &str) -> Res<()> {
        let tx = self.inner();
        tx.execute(
            "DELETE FROM deliveries WHERE channel = 'webhook' AND target = $1",
            &[&id],
        )
        .await?;
        tx.execute("DELETE FROM webhooks WHERE id = $1", &[&id])
            .await?;
        Ok(())
    }

    async fn live_webhooks(&self, limit: u32) -> Res<Vec<Webhook>> {
        let tx = self.inner();
        let stmt = tx
            .prepare_cached(&format!(
                "SELECT {WEBHOOK_COLS} FROM webhooks WHERE enabled ORDER BY id LIMIT $1"
            ))
            .await?;
        tx.query(&stmt, &[&i64::from(limit)])
            .await?
            .iter()
            .map(|r| webhook_row(r).map(|w| w.webhook))
            .collect()
    }

    async fn claim_unfanned(&self, limit: u32) -> Res<Vec<Event>> {
        let tx = self.inner();
        let stmt = tx
            .prepare_cached(&format!(
                "SELECT {EVENT_COLS} FROM events WHERE fanned_out_at IS NULL \
                 ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED"
            ))
            .await?;
        tx.query(&stmt, &[&i64::from(limit)])
            .await?
            .iter()
            .map(rows::event)
            .collect()
    }

    async fn mark_fanned_out(&self, ids: &[String], now: DateTime<Utc>) -> Res<()> {
        let tx = self.inner();
        let stmt = tx
            .prepare_cached("UPDATE events SET fanned_out_at = $2 WHERE id = ANY($1)")
            .await?;
        tx.execute(&stmt, &[&ids, &now]).await?;
        Ok(())
    }

    async fn recipients(&self, ids: &[String]) -> Res<HashMap<String, Recipients>> {
        let tx = self.inner();
        let stmt = tx
            .prepare_cached(
                "SELECT e.id, e.account_id, a.manager_email, e.terms::jsonb ->> 'owner_email' \
                 FROM entitlements e JOIN accounts a ON a.id = e.account_id \
                 WHERE e.id = ANY($1)",
            )
            .await?;
        tx.query(&stmt, &[&ids])
            .await?
            .iter()
            .map(|r| {
                let to = Recipients {
                    account_id: r.try_get(1)?,
                    manager_email: r.try_get(2)?,
                    owner_email: r.try_get(3)?,
                };
                Ok((r.try_get(0)?, to))
            })
            .collect()
    }

    async fn insert_deliveries(&self, deliveries: &[Delivery]) -> Res<()> {
        let tx = self.inner();
        let stmt = tx
            .prepare_cached(
                "INSERT INTO deliveries (id, event_id, channel, target, state, tries, \
                 next_attempt_at, attempts, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                 ON CONFLICT (event_id, channel, target) DO NOTHING",
            )
            .await?;
        for d in deliveries {
            tx.execute(
                &stmt,
                &[
                    &d.id,
                    &d.event_id,
                    &d.channel.as_str(),
                    &d.target,
                    &d.state.as_str(),
                    &tries(d),
                    &d.next_attempt_at,
                    &Json(&d.attempts),
                    &d.created_at,
                    &d.updated_at,
                ],
            )
            .await?;
        }
        Ok(())
    }

    async fn lock_delivery(&self, id: &str) -> Res<Option<Delivery>> {
        let tx = self.inner();
        let stmt = tx
            .prepare_cached(&format!("{DELIVERY} WHERE d.id = $1 FOR UPDATE OF d"))
            .await?;
        tx.query_opt(&stmt, &[&id])
            .await?
            .as_ref()
            .map(delivery)
            .transpose()
    }

    async fn update_delivery(&self, d: &Delivery) -> Res<()> {
        let tx = self.inner();
        let stmt = tx
            .prepare_cached(
                "UPDATE deliveries SET state = $2, tries = $3, next_attempt_at = $4, \
                 attempts = $5, updated_at = $6 WHERE id = $1",
            )
            .await?;
        tx.execute(
            &stmt,
            &[
                &d.id,
                &d.state.as_str(),
                &tries(d),
                &d.next_attempt_at,
                &Json(&d.attempts),
                &d.updated_at,
            ],
        )
        .await?;
        Ok(())
    }

    async fn lock_due(&self, now: DateTime<Utc>, limit: u32) -> Res<Vec<Delivery>> {
        let tx = self.inner();
        let stmt = tx
            .prepare_cached(&format!(
                "{DELIVERY} WHERE d.state = 'pending' AND d.next_attempt_at <= $1 \
                 ORDER BY d.next_attempt_at, d.id LIMIT $2 FOR UPDATE OF d SKIP LOCKED"
            ))
            .await?;
        tx.query(&stmt, &[&now, &i64::from(limit)])
            .await?
            .iter()
            .map(delivery)
            .collect()
    }

    async fn events_by_id(&self, ids: &[String]) -> Res<Vec<Event>> {
        let tx = self.inner();
        let stmt = tx
            .prepare_cached(&format!(
                "SELECT {EVENT_COLS} FROM events WHERE id = ANY($1)"
            ))
            .await?;
        tx.query(&stmt, &[&ids])
            .await?
            .iter()
            .map(rows::event)
            .collect()
    }
}

async fn read_webhook(pool: &Pool, id: &str) -> Res<Option<WebhookRow>> {
    let client = pool.get().await?;
    let stmt = client
        .prepare_cached(&format!(
            "SELECT {WEBHOOK_COLS} FROM webhooks WHERE id = $1"
        ))
        .await?;
    client
        .query_opt(&stmt, &[&id])
        .await?
        .as_ref()
        .map(webhook_row)
        .transpose()
}

async fn read_webhooks(pool: &Pool, page: &Page) -> Res<Vec<Webhook>> {
    if page.limit == 0 {
        return Ok(Vec::new());
    }
    let client = pool.get().await?;
    let stmt = client
        .prepare_cached(&format!(
            "SELECT {WEBHOOK_COLS} FROM webhooks WHERE id > $1 ORDER BY id LIMIT $2"
        ))
        .await?;
    client
        .query(&stmt, &[&rows::after(page), &rows::limit(page)])
        .await?
        .iter()
        .map(|r| webhook_row(r).map(|w| w.webhook))
        .collect()
}

async fn read_deliveries(
    pool: &Pool,
    channel: Channel,
    target: Option<&str>,
    page: &Page,
) -> Res<Vec<Delivery>> {
    if page.limit == 0 {
        return Ok(Vec::new());
    }
    let client = pool.get().await?;
    let stmt = client
        .prepare_cached(&format!(
            "{DELIVERY} WHERE d.channel = $1 AND ($2::text IS NULL OR d.target = $2) \
             AND d.id > $3 ORDER BY d.id LIMIT $4"
        ))
        .await?;
    client
        .query(
            &stmt,
            &[
                &channel.as_str(),
                &target,
                &rows::after(page),
                &rows::limit(page),
            ],
        )
        .await?
        .iter()
        .map(delivery)
        .collect()
}

async fn read_delivery(pool: &Pool, id: &str) -> Res<Option<Delivery>> {
    let client = pool.get().await?;
    let stmt = client
        .prepare_cached(&format!("{DELIVERY} WHERE d.id = $1"))
        .await?;
    client
        .query_opt(&stmt, &[&id])
        .await?
        .as_ref()
        .map(delivery)
        .transpose()
}

#[async_trait]
impl AlertStore for PostgresStore {
    async fn update_account_manager(
        &self,
        id: &str,
        manager: &AccountManager,
        now: DateTime<Utc>,
        audit: &AuditContext,
        answer: Option<Answering<Account>>,
    ) -> StoreResult<Account> {
        Ok(in_tx!(
            self.pool,
            "update_account_manager",
            Error::is_lock_conflict,
            |tx| { seq::update_account_manager(tx, id, manager, now, audit, answer.as_ref()) }
        )?)
    }

    async fn insert_webhook(
        &self,
        row: &WebhookRow,
        audit: &AuditContext,
        answer: Option<Answering<WebhookRow>>,
    ) -> StoreResult<()> {
        Ok(in_tx!(
            self.pool,
            "insert_webhook",
            Error::is_lock_conflict,
            |tx| { seq::insert_webhook(tx, row, audit, answer.as_ref()) }
        )?)
    }

    async fn get_webhook(&self, id: &str) -> StoreResult<Option<WebhookRow>> {
        Ok(read_webhook(&self.pool, id).await?)
    }

    async fn list_webhooks(&self, page: &Page) -> StoreResult<Vec<Webhook>> {
        Ok(read_webhooks(&self.pool, page).await?)
    }

    async fn change_webhook(
        &self,
        id: &str,
        change: &WebhookChange,
        now: DateTime<Utc>,
        audit: &AuditContext,
        answer: Option<Answering<WebhookRow>>,
    ) -> StoreResult<WebhookRow> {
        Ok(in_tx!(
            self.pool,
            "change_webhook",
            Error::is_lock_conflict,
            |tx| { seq::change_webhook(tx, id, change, now, audit, answer.as_ref()) }
        )?)
    }

    async fn delete_webhook(
        &self,
        id: &str,
        now: DateTime<Utc>,
        audit: &AuditContext,
        answer: Option<Answering<bool>>,
    ) -> StoreResult<bool> {
        Ok(in_tx!(
            self.pool,
            "delete_webhook",
            Error::is_lock_conflict,
            |tx| { seq::delete_webhook(tx, id, now, audit, answer.as_ref()) }
        )?)
    }

    async fn send_test_event(
        &self,
        webhook_id: &str,
        now: DateTime<Utc>,
        audit: &AuditContext,
        answer: Option<Answering<Delivery>>,
    ) -> StoreResult<Delivery> {
        Ok(in_tx!(
            self.pool,
            "send_test_event",
            Error::is_lock_conflict,
            |tx| { seq::send_test_event(tx, webhook_id, now, audit, answer.as_ref()) }
        )?)
    }

    async fn list_deliveries(
        &self,
        channel: Channel,
        target: Option<&str>,
        page: &Page,
    ) -> StoreResult<Vec<Delivery>> {
        Ok(read_deliveries(&self.pool, channel, target, page).await?)
    }

    async fn get_delivery(&self, id: &str) -> StoreResult<Option<Delivery>> {
        Ok(read_delivery(&self.pool, id).await?)
    }

    async fn retry_delivery(
        &self,
        id: &str,
        now: DateTime<Utc>,
        audit: &AuditContext,
        answer: Option<Answering<Delivery>>,
    ) -> StoreResult<Delivery> {
        Ok(in_tx!(
            self.pool,
            "retry_delivery",
            Error::is_lock_conflict,
            |tx| { seq::retry_delivery(tx, id, now, audit, answer.as_ref()) }
        )?)
    }

    async fn fan_out(&self, rules: &MailRules, now: DateTime<Utc>) -> StoreResult<u64> {
        Ok(in_tx!(
            self.pool,
            "fan_out",
            Error::is_lock_conflict,
            |tx| { seq::fan_out(tx, rules, now) }
        )?)
    }

    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        lease: Duration,
        limit: u32,
    ) -> StoreResult<Vec<DueDelivery>> {
        Ok(in_tx!(
            self.pool,
            "claim_due",
            Error::is_lock_conflict,
            |tx| { seq::claim_due(tx, now, lease, limit) }
        )?)
    }

    async fn record_attempt(&self, done: &AttemptDone) -> StoreResult<()> {
        Ok(in_tx!(
            self.pool,
            "record_attempt",
            Error::is_lock_conflict,
            |tx| { seq::record_attempt(tx, done) }
        )?)
    }
}
