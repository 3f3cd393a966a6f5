//! The hot write path: load what a batch touches, let the shared planner
//! decide, write the plan, commit once.

use std::collections::HashMap;

use allot_core::batch::EntitlementState;
use allot_store::plan::{
    case_ids, entitlement_ids, idempotency_keys, plan_batch, reservation_ids, usage_references,
    BatchItem, ItemAnswer, Loaded, Plan,
};
use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::{params, Connection};

use crate::cache::TermsCache;
use crate::convert::{first, ts};
use crate::entitlements::{channels_json, counters, entitlement};
use crate::error::Res;
use crate::tx::WriteTx;
use crate::usage::{get_reservation, insert_ledger, upsert_reservation};
use crate::{events, idempotency};

/// Columns 0..=3 for `entitlement`, 4..=8 for `counters`.
const STATE_BY_ID: &str = "SELECT e.id, e.status, e.predecessor_id, e.terms, \
    b.period_index, b.used_milli, b.held_milli, b.carried_milli, b.channels \
    FROM entitlements e JOIN balances b ON b.entitlement_id = e.id WHERE e.id = ?1";

pub(crate) fn apply(
    conn: &mut Connection,
    cache: &TermsCache,
    items: &[BatchItem],
    today: NaiveDate,
    now: DateTime<Utc>,
) -> Res<Vec<ItemAnswer>> {
    let tx = WriteTx::begin(conn)?;
    let mut loaded = load(&tx, cache, items)?;
    let plan = plan_batch(&mut loaded, items, today, now);
    write(&tx, &plan, now)?;
    tx.commit()?;
    Ok(plan.answers)
}

fn load(tx: &Connection, cache: &TermsCache, items: &[BatchItem]) -> Res<Loaded> {
    let mut cases = HashMap::new();
    for id in case_ids(items) {
        if let Some(c) = crate::cases::get(tx, &id)? {
            cases.insert(id, c);
        }
    }
    let mut references = allot_core::batch::UsedReferences::new();
    for (entitlement_id, reference) in usage_references(items) {
        if crate::cases::reference_used(tx, &entitlement_id, &reference)? {
            references.insert((entitlement_id, reference));
        }
    }
    let mut reservations = HashMap::new();
    for id in reservation_ids(items) {
        if let Some(r) = get_reservation(tx, &id)? {
            reservations.insert(id, r);
        }
    }
    let mut entitlements = HashMap::new();
    let mut stmt = tx.prepare_cached(STATE_BY_ID)?;
    for id in entitlement_ids(items, &reservations, &cases) {
        let state = first(&mut stmt, [&id], |r| {
            Ok(EntitlementState {
                entitlement: entitlement(r, cache)?,
                counters: counters(r, 4)?,
            })
        })?;
        if let Some(state) = state {
            entitlements.insert(id, state);
        }
    }
    let mut keys = HashMap::new();
    let mut stmt = tx.prepare_cached(idempotency::SELECT)?;
    for (scope, key) in idempotency_keys(items) {
        let record = first(&mut stmt, [&scope, &key], idempotency::record)?;
        if let Some(record) = record {
            keys.insert((scope, key), record);
        }
    }
    Ok(Loaded {
        entitlements,
        reservations,
        cases,
        references,
        keys,
    })
}

fn write(tx: &Connection, plan: &Plan, now: DateTime<Utc>) -> Res<()> {
    if !plan.counters.is_empty() {
        let mut stmt = tx.prepare_cached(
            "UPDATE balances SET period_index = ?2, used_milli = ?3, held_milli = ?4, \
             carried_milli = ?5, channels = ?6 WHERE entitlement_id = ?1",
        )?;
        for (id, c) in &plan.counters {
            stmt.execute(params![
                id,
                c.period_index,
                c.used.milli(),
                c.held.milli(),
                c.carried.milli(),
                channels_json(c)?,
            ])?;
        }
    }
    for entry in &plan.ledger {
        insert_ledger(tx, entry)?;
    }
    for reservation in &plan.reservations {
        upsert_reservation(tx, reservation)?;
    }
    for case in &plan.cases {
        crate::cases::upsert(tx, case)?;
    }
    if !plan.keys.is_empty() {
        let now = ts(now);
        for key in &plan.keys {
            idempotency::record_answer(tx, key, &now)?;
        }
    }
    for event in &plan.events {
        events::insert(tx, event)?;
    }
    for entry in &plan.audit {
        crate::audit::insert(tx, entry)?;
    }
    Ok(())
}
