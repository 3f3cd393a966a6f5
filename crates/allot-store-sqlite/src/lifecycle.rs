//! Lifecycle actions and date-driven status changes, each recorded as a
//! transition and an event in the same transaction.

use allot_core::entitlement::{Entitlement, Status};
use allot_core::lifecycle::{self, effective_status, event_for, renewed_terms, Action};
use allot_store::ids::new_id;
use allot_store::model::{Event, Transition};
use allot_store::{StoreError, TransitionResult};
use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::{params, Connection, Row};
use serde_json::json;

use crate::cache::TermsCache;
use crate::convert::{all, day, parse_day, status_at, ts, ts_at};
use crate::entitlements::{fresh_record, get_existing, insert_rows};
use crate::error::Res;
use crate::events;
use crate::tx::WriteTx;
use allot_store::audit::{snapshot, AuditContext, AuditEntry};

fn insert_transition(
    conn: &Connection,
    entitlement_id: &str,
    from: Status,
    to: Status,
    action: &str,
    actor: &str,
    at: &str,
) -> Res<()> {
    conn.prepare_cached(
        "INSERT INTO transitions (entitlement_id, from_status, to_status, action, actor, at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        entitlement_id,
        from.as_str(),
        to.as_str(),
        action,
        actor,
        at
    ])?;
    Ok(())
}

fn event(kind: &str, entitlement_id: &str, data: serde_json::Value, now: DateTime<Utc>) -> Event {
    Event {
        id: new_id("evt", now),
        kind: kind.to_string(),
        entitlement_id: Some(entitlement_id.to_string()),
        data,
        created_at: now,
    }
}

pub(crate) struct Request<'a> {
    pub id: &'a str,
    pub action: Action,
    pub ctx: &'a AuditContext,
    pub renewal_id: &'a str,
    pub today: NaiveDate,
    pub now: DateTime<Utc>,
}

pub(crate) fn transition(
    conn: &mut Connection,
    cache: &TermsCache,
    req: Request<'_>,
) -> Res<TransitionResult> {
    let Request {
        id,
        action,
        ctx,
        renewal_id,
        today,
        now,
    } = req;
    let actor = ctx.actor.as_str();
    let tx = WriteTx::begin(conn)?;
    let before = get_existing(&tx, cache, id)?;
    let current = &before.entitlement;
    let (start, end) = (current.terms.start_date, current.terms.end_date);
    let effective = effective_status(current.status, start, end, today);
    let to = lifecycle::transition(action, effective, start, end, today)
        .map_err(StoreError::Lifecycle)?;
    let at = ts(now);
    let renewal = if action == Action::Renew {
        let renewal = Entitlement {
            id: renewal_id.to_string(),
            terms: renewed_terms(&current.terms, today),
            status: Status::Draft,
            predecessor_id: Some(id.to_string()),
        };
        insert_rows(&tx, &renewal, &at)?;
        insert_transition(
            &tx,
            renewal_id,
            Status::Draft,
            Status::Draft,
            action.as_str(),
            actor,
            &at,
        )?;
        let kind = event_for(action, to).as_str();
        events::insert(
            &tx,
            &event(kind, id, json!({ "renewal_id": renewal_id }), now),
        )?;
        Some(fresh_record(renewal, now))
    } else {
        tx.prepare_cached("UPDATE entitlements SET status = ?2, updated_at = ?3 WHERE id = ?1")?
            .execute(params![id, to.as_str(), at])?;
        insert_transition(&tx, id, effective, to, action.as_str(), actor, &at)?;
        let data = json!({ "from": effective, "to": to, "actor": actor });
        events::insert(&tx, &event(event_for(action, to).as_str(), id, data, now))?;
        None
    };
    let entitlement = get_existing(&tx, cache, id)?;
    let after = match &renewal {
        Some(r) => Some(json!({ "renewal": r })),
        None => snapshot(&entitlement),
    };
    let action_name = format!("entitlement.{}", action.as_str());
    let entry = AuditEntry::new(
        ctx,
        &action_name,
        "entitlement",
        id,
        snapshot(&before),
        after,
        now,
    );
    crate::audit::insert(&tx, &entry)?;
    tx.commit()?;
    Ok(TransitionResult {
        entitlement,
        renewal,
    })
}

/// Activated entitlements whose dates may have moved them on.
const LAGGING: &str = "SELECT id, status, start_date, end_date FROM entitlements \
    WHERE (status = 'waiting' AND start_date <= ?1) OR (status = 'active' AND end_date < ?1) \
    ORDER BY id";

pub(crate) fn sync_statuses(
    conn: &mut Connection,
    today: NaiveDate,
    now: DateTime<Utc>,
) -> Res<u64> {
    let tx = WriteTx::begin(conn)?;
    let candidates = all(&mut *tx.prepare_cached(LAGGING)?, [day(today)], |r| {
        let id: String = r.get(0)?;
        let stored = status_at(r, 1)?;
        let start = parse_day(r.get_ref(2)?.as_str()?)?;
        let end = parse_day(r.get_ref(3)?.as_str()?)?;
        Ok((id, stored, effective_status(stored, start, end, today)))
    })?;
    let at = ts(now);
    let mut changed = 0;
    for (id, from, to) in candidates.into_iter().filter(|(_, from, to)| from != to) {
        // Compare-and-set: another process may have moved it meanwhile.
        let updated = tx
            .prepare_cached(
                "UPDATE entitlements SET status = ?3, updated_at = ?4 WHERE id = ?1 AND status = ?2",
            )?
            .execute(params![id, from.as_str(), to.as_str(), at])?;
        if updated == 0 {
            continue;
        }
        insert_transition(&tx, &id, from, to, "dates", "system", &at)?;
        let data = json!({ "from": from, "to": to, "actor": "system" });
        let kind = event_for(Action::Activate, to).as_str();
        events::insert(&tx, &event(kind, &id, data, now))?;
        let entry = AuditEntry::new(
            &AuditContext::system(),
            "entitlement.follow_dates",
            "entitlement",
            &id,
            Some(json!({ "status": from })),
            Some(json!({ "status": to })),
            now,
        );
        crate::audit::insert(&tx, &entry)?;
        changed += 1;
    }
    tx.commit()?;
    Ok(changed)
}

fn transition_row(row: &Row) -> Res<Transition> {
    Ok(Transition {
        entitlement_id: row.get(0)?,
        from_status: status_at(row, 1)?,
        to_status: status_at(row, 2)?,
        action: row.get(3)?,
        actor: row.get(4)?,
        at: ts_at(row, 5)?,
    })
}

pub(crate) fn list_transitions(conn: &Connection, entitlement_id: &str) -> Res<Vec<Transition>> {
    let mut stmt = conn.prepare_cached(
        "SELECT entitlement_id, from_status, to_status, action, actor, at FROM transitions \
         WHERE entitlement_id = ?1 ORDER BY id",
    )?;
    all(&mut stmt, [entitlement_id], transition_row)
}
