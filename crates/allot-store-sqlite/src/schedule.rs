//! SQLite's side of the scheduler (`allot_store::schedule`): the writer
//! thread's `BEGIN IMMEDIATE` already holds the database, so the "locks"
//! are plain reads.

use std::collections::HashMap;

use allot_core::schedule::ExpiringSoon;
use allot_store::schedule::{self, ScheduleChanges, SchedulePass, ScheduleStore, ScheduleTx};
use allot_store::StoreResult;
use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::params;

use crate::convert::{all, day, ts};
use crate::error::Res;
use crate::transaction::{self, SqliteTx};
use crate::SqliteStore;

const DUE: &str = "SELECT e.id FROM entitlements e \
    LEFT JOIN schedule s ON s.entitlement_id = e.id \
    WHERE e.status IN ('waiting', 'active', 'expired') \
      AND (s.entitlement_id IS NULL OR s.due_on <= ?1 \
           OR s.seen_update <> e.updated_at OR s.notice_days <> ?2) \
    ORDER BY e.id LIMIT ?3";

impl ScheduleTx for SqliteTx<'_> {
    async fn lock_due(&self, today: NaiveDate, notice_days: &str, limit: u32) -> Res<Vec<String>> {
        let mut stmt = self.tx.prepare_cached(DUE)?;
        all(
            &mut stmt,
            params![day(today), notice_days, i64::from(limit)],
            |r| Ok(r.get(0)?),
        )
    }

    async fn notices_sent(&self, ends: &[(String, NaiveDate)]) -> Res<HashMap<String, Vec<u32>>> {
        let mut stmt = self.tx.prepare_cached(
            "SELECT days_before FROM expiry_notices WHERE entitlement_id = ?1 AND end_date = ?2",
        )?;
        let mut sent = HashMap::new();
        for (id, end) in ends {
            let days = all(&mut stmt, params![id, day(*end)], |r| Ok(r.get(0)?))?;
            if !days.is_empty() {
                sent.insert(id.clone(), days);
            }
        }
        Ok(sent)
    }

    async fn write_schedule(&self, changes: &ScheduleChanges) -> Res<()> {
        let mut notice = self.tx.prepare_cached(
            "INSERT INTO expiry_notices (entitlement_id, end_date, days_before, event_id) \
             VALUES (?1, ?2, ?3, ?4)",
        )?;
        for n in &changes.notices {
            notice.execute(params![
                n.entitlement_id,
                day(n.end_date),
                n.days_before,
                n.event_id
            ])?;
        }
        let mut look = self.tx.prepare_cached(
            "INSERT INTO schedule (entitlement_id, due_on, seen_update, notice_days) \
             VALUES (?1, ?2, ?3, ?4) ON CONFLICT (entitlement_id) DO UPDATE SET \
             due_on = excluded.due_on, seen_update = excluded.seen_update, \
             notice_days = excluded.notice_days",
        )?;
        for l in &changes.next_looks {
            look.execute(params![
                l.entitlement_id,
                l.due_on.map(day),
                ts(l.seen_update),
                changes.notice_days
            ])?;
        }
        Ok(())
    }
}

#[async_trait]
impl ScheduleStore for SqliteStore {
    async fn run_schedule(
        &self,
        notices: &ExpiringSoon,
        today: NaiveDate,
        now: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<SchedulePass> {
        let notices = notices.clone();
        self.write(move |c, cache| {
            transaction::run(c, cache, |tx| {
                schedule::run_schedule(tx, &notices, today, now, limit)
            })
        })
        .await
    }
}
