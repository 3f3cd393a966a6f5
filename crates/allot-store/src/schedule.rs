//! The scheduler's store side: one pass locks the entitlements the dates
//! may owe something (never looked at, due, or changed since the last
//! look), asks `allot_core::schedule::agenda` for each under its lock, and
//! writes the events with the state they describe in one transaction.
//!
//! Exactly once, across restarts and instances: what was emitted is
//! recorded where the next look reads it under the same lock — the stored
//! status (`activated`, `expired`), the counters' period (`period_reset`),
//! `expiry_notices` (`expiring_soon`), the successor's `predecessor_id`
//! (`renewed`). Rows another transaction holds are skipped, not waited for.

use std::collections::{BTreeSet, HashMap};

use allot_core::balance::Counters;
use allot_core::entitlement::{Entitlement, Status};
use allot_core::events::EventKind;
use allot_core::lifecycle::event_for;
use allot_core::lifecycle::Action;
use allot_core::schedule::{agenda, renewal_steps, Agenda, ClosedPeriod, ExpiringSoon, Observed};
use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::json;

use crate::audit::{snapshot, AuditContext, AuditEntry};
use crate::backend::{Changes, WriteTx};
use crate::clock::stored_time;
use crate::error::StoreResult;
use crate::ids::new_id;
use crate::model::EntitlementRecord;
use crate::sequences::{event, fresh_record, status_event, store_status, transition_row};

/// Most entitlements one pass looks at; the job calls again.
pub const SCHEDULE_LIMIT: u32 = 500;

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SchedulePass {
    /// Entitlements locked and looked at.
    pub looked_at: u64,
    pub events: u64,
    /// Successors created by `auto_renew`.
    pub renewed: u64,
}

/// The scheduler's storage: one pass in one transaction.
#[async_trait]
pub trait ScheduleStore {
    /// Emits what the dates owe on `today` to at most `limit` entitlements
    /// (statuses, period resets, expiring-soon notices, auto-renewals),
    /// each once however many instances run it. A pass that looked at
    /// `limit` entitlements may have left some for the next.
    async fn run_schedule(
        &self,
        notices: &ExpiringSoon,
        today: NaiveDate,
        now: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<SchedulePass>;
}

/// An `expiring_soon` notice sent: for which end date and threshold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoticeSent {
    pub entitlement_id: String,
    pub end_date: NaiveDate,
    pub days_before: u32,
    pub event_id: String,
}

/// When to look at an entitlement again, and what the look saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextLook {
    pub entitlement_id: String,
    /// `None`: nothing will fall due.
    pub due_on: Option<NaiveDate>,
    /// The entitlement's `updated_at` after this pass.
    pub seen_update: DateTime<Utc>,
}

/// The scheduler's own rows of one pass.
#[derive(Debug, Default)]
pub struct ScheduleChanges {
    pub notices: Vec<NoticeSent>,
    pub next_looks: Vec<NextLook>,
    /// The notice days the looks were taken under (`ExpiringSoon`'s text).
    pub notice_days: String,
}

/// What a backend adds to `WriteTx` for the scheduler.
#[allow(async_fn_in_trait)]
pub trait ScheduleTx: WriteTx {
    /// Ids (in order) of at most `limit` waiting, active or expired
    /// entitlements owed a look on `today`: never looked at, due by
    /// `today`, updated since the last look, or looked at under other
    /// `notice_days`. Locked; rows another transaction holds are skipped.
    async fn lock_due(
        &self,
        today: NaiveDate,
        notice_days: &str,
        limit: u32,
    ) -> Result<Vec<String>, Self::Error>;
    /// The `expiring_soon` thresholds already sent, per entitlement, for
    /// the end date given.
    async fn notices_sent(
        &self,
        ends: &[(String, NaiveDate)],
    ) -> Result<HashMap<String, Vec<u32>>, Self::Error>;
    /// Writes `changes` (after `WriteTx::write`, before commit).
    async fn write_schedule(&self, changes: &ScheduleChanges) -> Result<(), Self::Error>;
}

/// One pass: lock what is owed a look, read what was already emitted, ask
/// `agenda`, write the events with their state, commit.
pub async fn run_schedule<T: ScheduleTx>(
    tx: T,
    notices: &ExpiringSoon,
    today: NaiveDate,
    now: DateTime<Utc>,
    limit: u32,
) -> Result<SchedulePass, T::Error> {
    let now = stored_time(now);
    let notice_days = notices.to_string();
    let ids: BTreeSet<String> = tx
        .lock_due(today, &notice_days, limit)
        .await?
        .into_iter()
        .collect();
    if ids.is_empty() {
        return Ok(SchedulePass::default());
    }
    // Read again, under the locks: what another transaction committed
    // before they were taken (a manual renewal, say) is seen.
    let records = tx.lock_entitlements(&ids).await?;
    assert!(records.len() <= ids.len(), "one record per locked id");
    let ends: Vec<(String, NaiveDate)> = records
        .iter()
        .map(|r| (r.entitlement.id.clone(), r.entitlement.terms.end_date))
        .collect();
    let sent = tx.notices_sent(&ends).await?;
    let mut changes = Changes::default();
    let mut schedule = ScheduleChanges {
        notice_days,
        ..ScheduleChanges::default()
    };
    let mut renewed = 0;
    for record in records {
        let owed = agenda(
            &Observed {
                entitlement: &record.entitlement,
                counters: &record.counters,
                notices_sent: sent.get(&record.entitlement.id).map_or(&[], Vec::as_slice),
                renewed: record.renewed_to.is_some(),
            },
            notices,
            today,
        );
        renewed += u64::from(owed.renewal.is_some());
        emit(&mut changes, &mut schedule, record, owed, today, now);
    }
    let pass = SchedulePass {
        looked_at: ids.len() as u64,
        events: changes.events.len() as u64,
        renewed,
    };
    tx.write(&changes, now).await?;
    tx.write_schedule(&schedule).await?;
    tx.commit().await?;
    Ok(pass)
}

/// Lists what `owed` says for `record`, events in the order they happened:
/// activation, the periods that closed, the notice, expiry, renewal.
fn emit(
    changes: &mut Changes,
    schedule: &mut ScheduleChanges,
    record: EntitlementRecord,
    owed: Agenda,
    today: NaiveDate,
    now: DateTime<Utc>,
) {
    let id = record.entitlement.id.clone();
    let mut seen_update = record.updated_at;
    // Stored at once (the final status); the events go in the order the
    // days brought them: ids, and so the feed, follow creation.
    if !owed.steps.is_empty() {
        store_status(changes, record.entitlement.clone(), &owed.steps, now);
        seen_update = now;
    }
    let (expiry, activation): (Vec<_>, Vec<_>) = owed
        .steps
        .iter()
        .partition(|(_, to)| *to == Status::Expired);
    for (from, to) in activation {
        status_event(changes, &id, from, to, now);
    }
    if let Some(counters) = owed.counters {
        reset_periods(changes, &id, &owed.closed, counters, now);
    }
    if let Some(notice) = owed.notice {
        let kind = EventKind::ExpiringSoon.as_str();
        let sent = event(kind, &id, notice.payload(), now);
        schedule.notices.push(NoticeSent {
            entitlement_id: id.clone(),
            end_date: notice.end_date,
            days_before: notice.days_before,
            event_id: sent.id.clone(),
        });
        changes.events.push(sent);
    }
    for (from, to) in expiry {
        let mut data = json!({ "from": from, "to": to, "actor": "system" });
        if let Some(last) = &owed.last_period {
            data["last_period"] = last.payload();
        }
        let kind = event_for(Action::Activate, to).as_str();
        changes.events.push(event(kind, &id, data, now));
    }
    if let Some(terms) = owed.renewal {
        let steps = renewal_steps(&terms, today);
        let successor = Entitlement {
            id: new_id("ent", now),
            status: steps.last().map_or(Status::Draft, |(_, to)| *to),
            terms,
            predecessor_id: Some(id.clone()),
        };
        renew(changes, &record, successor, &steps, now);
    }
    schedule.next_looks.push(NextLook {
        entitlement_id: id,
        due_on: owed.next_due,
        seen_update,
    });
}

/// One `period_reset` per closed period, the counters they leave, and one
/// audit entry for the roll.
fn reset_periods(
    changes: &mut Changes,
    id: &str,
    closed: &[ClosedPeriod],
    counters: Counters,
    now: DateTime<Utc>,
) {
    let (Some(first), Some(last)) = (closed.first(), closed.last()) else {
        return;
    };
    for period in closed {
        let kind = EventKind::PeriodReset.as_str();
        changes.events.push(event(kind, id, period.payload(), now));
    }
    changes.audit.push(AuditEntry::new(
        &AuditContext::system(),
        "entitlement.period_reset",
        "entitlement",
        id,
        Some(json!({ "period_index": first.period.index })),
        Some(json!({ "period_index": last.next.index })),
        now,
    ));
    changes.counters.push((id.to_string(), counters));
}

/// Creates `successor` in the state `steps` end in, with
/// `entitlement.renewed` on the old one, then the successor's own events.
fn renew(
    changes: &mut Changes,
    old: &EntitlementRecord,
    successor: Entitlement,
    steps: &[(Status, Status)],
    now: DateTime<Utc>,
) {
    let old_id = &old.entitlement.id;
    let new_id = successor.id.clone();
    let t = &successor.terms;
    let renewed = json!({
        "renewal_id": new_id,
        "auto_renew": true,
        "start_date": t.start_date,
        "end_date": t.end_date,
    });
    changes
        .events
        .push(event(EventKind::Renewed.as_str(), old_id, renewed, now));
    for &(from, to) in steps {
        let data = json!({ "from": from, "to": to, "actor": "system", "renewed_from": old_id });
        let kind = event_for(Action::Activate, to).as_str();
        changes.events.push(event(kind, &new_id, data, now));
        changes.transitions.push(transition_row(
            &new_id,
            from,
            to,
            "auto_renew",
            "system",
            now,
        ));
    }
    let after = fresh_record(successor.clone(), now);
    changes.audit.push(AuditEntry::new(
        &AuditContext::system(),
        "entitlement.auto_renew",
        "entitlement",
        old_id,
        None,
        Some(json!({ "renewal": snapshot(&after) })),
        now,
    ));
    changes.new_entitlements.push(successor);
}
