//! PostgreSQL's side of the scheduler (`allot_store::schedule`): due rows
//! are locked with `SKIP LOCKED`, so instances running the pass at once
//! share the work instead of queueing on it, and none sees a row another
//! is moving.

use std::collections::HashMap;

use allot_core::schedule::ExpiringSoon;
use allot_store::schedule::{self, ScheduleChanges, SchedulePass, ScheduleStore, ScheduleTx};
use allot_store::StoreResult;
use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};

use crate::error::{Error, Res};
use crate::transaction::{in_tx, PgTx};
use crate::PostgresStore;

impl ScheduleTx for PgTx<'_> {
    async fn lock_due(&self, today: NaiveDate, notice_days: &str, limit: u32) -> Res<Vec<String>> {
        let stmt = self
            .tx
            .prepare_cached(
                "SELECT e.id FROM entitlements e
                 LEFT JOIN schedule s ON s.entitlement_id = e.id
                 WHERE e.status IN ('waiting', 'active', 'expired')
                   AND (s.entitlement_id IS NULL OR s.due_on <= $1
                        OR s.seen_update <> e.updated_at OR s.notice_days <> $2)
                 ORDER BY e.id LIMIT $3
                 FOR UPDATE OF e SKIP LOCKED",
            )
            .await?;
        let rows = self
            .tx
            .query(&stmt, &[&today, &notice_days, &i64::from(limit)])
            .await?;
        rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
    }

    async fn notices_sent(&self, ends: &[(String, NaiveDate)]) -> Res<HashMap<String, Vec<u32>>> {
        let ids: Vec<&str> = ends.iter().map(|(id, _)| id.as_str()).collect();
        let dates: Vec<NaiveDate> = ends.iter().map(|(_, end)| *end).collect();
        let stmt = self
            .tx
            .prepare_cached(
                "SELECT n.entitlement_id, n.days_before FROM expiry_notices n
                 JOIN UNNEST($1::text[], $2::date[]) AS u(id, end_date)
                   ON n.entitlement_id = u.id AND n.end_date = u.end_date",
            )
            .await?;
        let mut sent: HashMap<String, Vec<u32>> = HashMap::new();
        for row in self.tx.query(&stmt, &[&ids, &dates]).await? {
            let days: i32 = row.try_get(1)?;
            sent.entry(row.try_get(0)?)
                .or_default()
                .push(u32::try_from(days).unwrap_or_default());
        }
        Ok(sent)
    }

    async fn write_schedule(&self, changes: &ScheduleChanges) -> Res<()> {
        if !changes.notices.is_empty() {
            let n = &changes.notices;
            let ids: Vec<&str> = n.iter().map(|x| x.entitlement_id.as_str()).collect();
            let ends: Vec<NaiveDate> = n.iter().map(|x| x.end_date).collect();
            let days: Vec<i32> = n
                .iter()
                .map(|x| i32::try_from(x.days_before).unwrap_or(i32::MAX))
                .collect();
            let events: Vec<&str> = n.iter().map(|x| x.event_id.as_str()).collect();
            let stmt = self
                .tx
                .prepare_cached(
                    "INSERT INTO expiry_notices (entitlement_id, end_date, days_before, event_id)
                     SELECT * FROM UNNEST($1::text[], $2::date[], $3::int4[], $4::text[])",
                )
                .await?;
            self.tx
                .execute(&stmt, &[&ids, &ends, &days, &events])
                .await?;
        }
        if !changes.next_looks.is_empty() {
            let l = &changes.next_looks;
            let ids: Vec<&str> = l.iter().map(|x| x.entitlement_id.as_str()).collect();
            let due: Vec<Option<NaiveDate>> = l.iter().map(|x| x.due_on).collect();
            let seen: Vec<DateTime<Utc>> = l.iter().map(|x| x.seen_update).collect();
            let stmt = self
                .tx
                .prepare_cached(
                    "INSERT INTO schedule (entitlement_id, due_on, seen_update, notice_days)
                     SELECT u.id, u.due_on, u.seen, $4
                     FROM UNNEST($1::text[], $2::date[], $3::timestamptz[]) AS u(id, due_on, seen)
                     ON CONFLICT (entitlement_id) DO UPDATE SET due_on = EXCLUDED.due_on,
                       seen_update = EXCLUDED.seen_update, notice_days = EXCLUDED.notice_days",
                )
                .await?;
            self.tx
                .execute(&stmt, &[&ids, &due, &seen, &changes.notice_days])
                .await?;
        }
        Ok(())
    }
}

#[async_trait]
impl ScheduleStore for PostgresStore {
    async fn run_schedule(
        &self,
        notices: &ExpiringSoon,
        today: NaiveDate,
        now: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<SchedulePass> {
        Ok(in_tx!(
            self.pool,
            "run_schedule",
            Error::is_lock_conflict,
            |tx| { schedule::run_schedule(tx, notices, today, now, limit) }
        )?)
    }
}
