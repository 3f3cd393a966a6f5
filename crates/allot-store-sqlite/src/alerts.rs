//! Account managers, webhooks and deliveries. The sequences are
//! `allot_store::alerts`'; this is their SQL. The writer thread holds the
//! database for a whole transaction, so "locking" a row is reading it.

use std::collections::HashMap;

use allot_store::alerts::{
    self as seq, AccountManager, AlertStore, AlertTx, AttemptDone, Channel, Delivery,
    DeliveryState, DueDelivery, MailRules, Recipients, Webhook, WebhookChange, WebhookRow,
};
use allot_store::audit::AuditContext;
use allot_store::model::{Account, Event, Page};
use allot_store::{Answering, StoreResult};
use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection, Row};

use crate::convert::{all, first, opt_ts_at, paged, placeholders, ts, ts_at};
use crate::error::{corrupt, Res};
use crate::transaction::{self, SqliteTx};
use crate::{parties, SqliteStore};

const WEBHOOK: &str = "SELECT id, url, event_types, account_id, description, enabled, \
    failing_since, disabled_reason, created_at, updated_at, secret FROM webhooks";

fn webhook_row(row: &Row) -> Res<WebhookRow> {
    Ok(WebhookRow {
        webhook: Webhook {
            id: row.get(0)?,
            url: row.get(1)?,
            event_types: serde_json::from_str(row.get_ref(2)?.as_str()?)?,
            account_id: row.get(3)?,
            description: row.get(4)?,
            enabled: row.get(5)?,
            failing_since: opt_ts_at(row, 6)?,
            disabled_reason: row.get(7)?,
            created_at: ts_at(row, 8)?,
            updated_at: ts_at(row, 9)?,
        },
        secret: row.get(10)?,
    })
}

const DELIVERY: &str = "SELECT d.id, d.event_id, e.kind, d.channel, d.target, d.state, \
    d.tries, d.next_attempt_at, d.attempts, d.created_at, d.updated_at \
    FROM deliveries d JOIN events e ON e.id = d.event_id";

fn delivery(row: &Row) -> Res<Delivery> {
    let channel: String = row.get(3)?;
    let state: String = row.get(5)?;
    Ok(Delivery {
        id: row.get(0)?,
        event_id: row.get(1)?,
        event_kind: row.get(2)?,
        channel: Channel::parse(&channel).ok_or_else(|| corrupt("channel", &channel))?,
        target: row.get(4)?,
        state: DeliveryState::parse(&state).ok_or_else(|| corrupt("delivery state", &state))?,
        tries: row.get(6)?,
        next_attempt_at: opt_ts_at(row, 7)?,
        attempts: serde_json::from_str(row.get_ref(8)?.as_str()?)?,
        created_at: ts_at(row, 9)?,
        updated_at: ts_at(row, 10)?,
    })
}

const EVENT: &str = "SELECT id, kind, entitlement_id, data, created_at FROM events";

fn event(row: &Row) -> Res<Event> {
    Ok(Event {
        id: row.get(0)?,
        kind: row.get(1)?,
        entitlement_id: row.get(2)?,
        data: serde_json::from_str(row.get_ref(3)?.as_str()?)?,
        created_at: ts_at(row, 4)?,
    })
}

fn get_webhook(conn: &Connection, id: &str) -> Res<Option<WebhookRow>> {
    let mut stmt = conn.prepare_cached(&format!("{WEBHOOK} WHERE id = ?1"))?;
    first(&mut stmt, [id], webhook_row)
}

fn get_delivery(conn: &Connection, id: &str) -> Res<Option<Delivery>> {
    let mut stmt = conn.prepare_cached(&format!("{DELIVERY} WHERE d.id = ?1"))?;
    first(&mut stmt, [id], delivery)
}

fn list_deliveries(
    conn: &Connection,
    channel: Channel,
    target: Option<&str>,
    page: &Page,
) -> Res<Vec<Delivery>> {
    if page.limit == 0 {
        return Ok(Vec::new());
    }
    let mut args = vec![Value::Text(channel.as_str().to_string())];
    let mut conditions = vec!["d.channel = ?"];
    if let Some(target) = target {
        conditions.push("d.target = ?");
        args.push(Value::Text(target.to_string()));
    }
    let sql = paged(DELIVERY, &conditions, "d.id", page, &mut args);
    all(
        &mut *conn.prepare_cached(&sql)?,
        params_from_iter(args),
        delivery,
    )
}

impl AlertTx for SqliteTx<'_> {
    async fn lock_account(&self, id: &str) -> Res<Option<Account>> {
        parties::get_account(self.conn(), id)
    }

    async fn update_account(&self, a: &Account) -> Res<()> {
        self.conn()
            .prepare_cached(
                "UPDATE accounts SET manager_name = ?2, manager_email = ?3 WHERE id = ?1",
            )?
            .execute(params![a.id, a.manager_name, a.manager_email])?;
        Ok(())
    }

    async fn lock_webhook(&self, id: &str) -> Res<Option<WebhookRow>> {
        get_webhook(self.conn(), id)
    }

    async fn save_webhook(&self, row: &WebhookRow) -> Res<()> {
        let w = &row.webhook;
        self.conn()
            .prepare_cached(
                "INSERT OR REPLACE INTO webhooks (id, url, event_types, account_id, description, \
                 enabled, failing_since, disabled_reason, created_at, updated_at, secret) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )?
            .execute(params![
                w.id,
                w.url,
                serde_json::to_string(&w.event_types)?,
                w.account_id,
                w.description,
                w.enabled,
                w.failing_since.map(ts),
                w.disabled_reason,
                ts(w.created_at),
                ts(w.updated_at),
                row.secret,
            ])?;
        Ok(())
    }

    async fn delete_webhook(&self, id: &str) -> Res<()> {
        let conn = self.conn();
        conn.prepare_cached("DELETE FROM deliveries WHERE channel = 'webhook' AND target = ?1")?
            .execute([id])?;
        conn.prepare_cached("DELETE FROM webhooks WHERE id = ?1")?
            .execute([id])?;
        Ok(())
    }

    async fn live_webhooks(&self, limit: u32) -> Res<Vec<Webhook>> {
        let sql = format!("{WEBHOOK} WHERE enabled = 1 ORDER BY id LIMIT ?1");
        let rows = all(
            &mut *self.conn().prepare_cached(&sql)?,
            [limit],
            webhook_row,
        )?;
        Ok(rows.into_iter().map(|r| r.webhook).collect())
    }

    async fn claim_unfanned(&self, limit: u32) -> Res<Vec<Event>> {
        let sql = format!("{EVENT} WHERE fanned_out_at IS NULL ORDER BY id LIMIT ?1");
        all(&mut *self.conn().prepare_cached(&sql)?, [limit], event)
    }

    async fn mark_fanned_out(&self, ids: &[String], now: DateTime<Utc>) -> Res<()> {
        let mut stmt = self
            .conn()
            .prepare_cached("UPDATE events SET fanned_out_at = ?2 WHERE id = ?1")?;
        for id in ids {
            stmt.execute(params![id, ts(now)])?;
        }
        Ok(())
    }

    async fn recipients(&self, ids: &[String]) -> Res<HashMap<String, Recipients>> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let sql = format!(
            "SELECT e.id, e.account_id, a.manager_email, json_extract(e.terms, '$.owner_email') \
             FROM entitlements e JOIN accounts a ON a.id = e.account_id WHERE e.id IN ({})",
            placeholders(ids.len())
        );
        let rows = all(
            &mut self.conn().prepare(&sql)?,
            params_from_iter(ids),
            |r| {
                let id: String = r.get(0)?;
                let to = Recipients {
                    account_id: r.get(1)?,
                    manager_email: r.get(2)?,
                    owner_email: r.get(3)?,
                };
                Ok((id, to))
            },
        )?;
        Ok(rows.into_iter().collect())
    }

    async fn insert_deliveries(&self, deliveries: &[Delivery]) -> Res<()> {
        let mut stmt = self.conn().prepare_cached(
            "INSERT INTO deliveries (id, event_id, channel, target, state, tries, \
             next_attempt_at, attempts, created_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) \
             ON CONFLICT (event_id, channel, target) DO NOTHING",
        )?;
        for d in deliveries {
            stmt.execute(params![
                d.id,
                d.event_id,
                d.channel.as_str(),
                d.target,
                d.state.as_str(),
                d.tries,
                d.next_attempt_at.map(ts),
                serde_json::to_string(&d.attempts)?,
                ts(d.created_at),
                ts(d.updated_at),
            ])?;
        }
        Ok(())
    }

    async fn lock_delivery(&self, id: &str) -> Res<Option<Delivery>> {
        get_delivery(self.conn(), id)
    }

    async fn update_delivery(&self, d: &Delivery) -> Res<()> {
        self.conn()
            .prepare_cached(
                "UPDATE deliveries SET state = ?2, tries = ?3, next_attempt_at = ?4, \
                 attempts = ?5, updated_at = ?6 WHERE id = ?1",
            )?
            .execute(params![
                d.id,
                d.state.as_str(),
                d.tries,
                d.next_attempt_at.map(ts),
                serde_json::to_string(&d.attempts)?,
                ts(d.updated_at),
            ])?;
        Ok(())
    }

    async fn lock_due(&self, now: DateTime<Utc>, limit: u32) -> Res<Vec<Delivery>> {
        let sql = format!(
            "{DELIVERY} WHERE d.state = 'pending' AND d.next_attempt_at <= ?1 \
             ORDER BY d.next_attempt_at, d.id LIMIT ?2"
        );
        all(
            &mut *self.conn().prepare_cached(&sql)?,
            params![ts(now), limit],
            delivery,
        )
    }

    async fn events_by_id(&self, ids: &[String]) -> Res<Vec<Event>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!("{EVENT} WHERE id IN ({})", placeholders(ids.len()));
        all(
            &mut self.conn().prepare(&sql)?,
            params_from_iter(ids),
            event,
        )
    }
}

#[async_trait]
impl AlertStore for SqliteStore {
    async fn update_account_manager(
        &self,
        id: &str,
        manager: &AccountManager,
        now: DateTime<Utc>,
        audit: &AuditContext,
        answer: Option<Answering<Account>>,
    ) -> StoreResult<Account> {
        let (id, manager, ctx) = (id.to_string(), manager.clone(), audit.clone());
        self.write(move |c, cache| {
            transaction::run(c, cache, |tx| {
                seq::update_account_manager(tx, &id, &manager, now, &ctx, answer.as_ref())
            })
        })
        .await
    }

    async fn insert_webhook(
        &self,
        row: &WebhookRow,
        audit: &AuditContext,
        answer: Option<Answering<WebhookRow>>,
    ) -> StoreResult<()> {
        let (row, ctx) = (row.clone(), audit.clone());
        self.write(move |c, cache| {
            transaction::run(c, cache, |tx| {
                seq::insert_webhook(tx, &row, &ctx, answer.as_ref())
            })
        })
        .await
    }

    async fn get_webhook(&self, id: &str) -> StoreResult<Option<WebhookRow>> {
        let id = id.to_string();
        self.read(move |c, _| get_webhook(c, &id)).await
    }

    async fn list_webhooks(&self, page: &Page) -> StoreResult<Vec<Webhook>> {
        let page = page.clone();
        self.read(move |c, _| {
            if page.limit == 0 {
                return Ok(Vec::new());
            }
            let mut args = Vec::new();
            let sql = paged(WEBHOOK, &[], "id", &page, &mut args);
            let rows = all(
                &mut *c.prepare_cached(&sql)?,
                params_from_iter(args),
                webhook_row,
            )?;
            Ok(rows.into_iter().map(|r| r.webhook).collect())
        })
        .await
    }

    async fn change_webhook(
        &self,
        id: &str,
        change: &WebhookChange,
        now: DateTime<Utc>,
        audit: &AuditContext,
        answer: Option<Answering<WebhookRow>>,
    ) -> StoreResult<WebhookRow> {
        let (id, change, ctx) = (id.to_string(), change.clone(), audit.clone());
        self.write(move |c, cache| {
            transaction::run(c, cache, |tx| {
                seq::change_webhook(tx, &id, &change, now, &ctx, answer.as_ref())
            })
        })
        .await
    }

    async fn delete_webhook(
        &self,
        id: &str,
        now: DateTime<Utc>,
        audit: &AuditContext,
        answer: Option<Answering<bool>>,
    ) -> StoreResult<bool> {
        let (id, ctx) = (id.to_string(), audit.clone());
        self.write(move |c, cache| {
            transaction::run(c, cache, |tx| {
                seq::delete_webhook(tx, &id, now, &ctx, answer.as_ref())
            })
        })
        .await
    }

    async fn send_test_event(
        &self,
        webhook_id: &str,
        now: DateTime<Utc>,
        audit: &AuditContext,
        answer: Option<Answering<Delivery>>,
    ) -> StoreResult<Delivery> {
        let (id, ctx) = (webhook_id.to_string(), audit.clone());
        self.write(move |c, cache| {
            transaction::run(c, cache, |tx| {
                seq::send_test_event(tx, &id, now, &ctx, answer.as_ref())
            })
        })
        .await
    }

    async fn list_deliveries(
        &self,
        channel: Channel,
        target: Option<&str>,
        page: &Page,
    ) -> StoreResult<Vec<Delivery>> {
        let (target, page) = (target.map(str::to_string), page.clone());
        self.read(move |c, _| list_deliveries(c, channel, target.as_deref(), &page))
            .await
    }

    async fn get_delivery(&self, id: &str) -> StoreResult<Option<Delivery>> {
        let id = id.to_string();
        self.read(move |c, _| get_delivery(c, &id)).await
    }

    async fn retry_delivery(
        &self,
        id: &str,
        now: DateTime<Utc>,
        audit: &AuditContext,
        answer: Option<Answering<Delivery>>,
    ) -> StoreResult<Delivery> {
        let (id, ctx) = (id.to_string(), audit.clone());
        self.write(move |c, cache| {
            transaction::run(c, cache, |tx| {
                seq::retry_delivery(tx, &id, now, &ctx, answer.as_ref())
            })
        })
        .await
    }

    async fn fan_out(&self, rules: &MailRules, now: DateTime<Utc>) -> StoreResult<u64> {
        let rules = rules.clone();
        self.write(move |c, cache| transaction::run(c, cache, |tx| seq::fan_out(tx, &rules, now)))
            .await
    }

    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        lease: Duration,
        limit: u32,
    ) -> StoreResult<Vec<DueDelivery>> {
        self.write(move |c, cache| {
            transaction::run(c, cache, |tx| seq::claim_due(tx, now, lease, limit))
        })
        .await
    }

    async fn record_attempt(&self, done: &AttemptDone) -> StoreResult<()> {
        let done = done.clone();
        self.write(move |c, cache| transaction::run(c, cache, |tx| seq::record_attempt(tx, &done)))
            .await
    }
}
