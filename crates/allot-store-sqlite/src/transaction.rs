//! SQLite's side of `allot_store::backend::WriteTx`: the loads, locks and
//! writes of one `BEGIN IMMEDIATE` transaction on the writer thread. The
//! database lock is taken at `begin`, so every "lock" here is a plain read.
//!
//! Every method does its work synchronously and never waits, so the
//! shared sequences run to completion under `futures::executor::block_on`
//! on the writer thread (`run`).

use std::collections::{BTreeSet, HashMap};
use std::future::Future;

use allot_core::batch::UsedReferences;
use allot_core::Quantity;
use allot_store::backend::{Changes, KeyName, WriteTx};
use allot_store::model::{ApiKey, EntitlementRecord, IdempotencyRecord, Transition};
use allot_store::plan::{CaseRecord, Reservation};
use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection};

use crate::cache::TermsCache;
use crate::convert::{all, day, first, placeholders, ts};
use crate::entitlements::{self, channels_json};
use crate::error::{Fail, Res};
use crate::tx::ImmediateTx;
use crate::{api_keys, audit, cases, events, idempotency, parties, usage};

pub(crate) struct SqliteTx<'c> {
    pub(crate) tx: ImmediateTx<'c>,
    pub(crate) cache: &'c TermsCache,
}

/// Runs one shared sequence in its own transaction on this connection.
pub(crate) fn run<'c, T, F>(
    conn: &'c mut Connection,
    cache: &'c TermsCache,
    sequence: impl FnOnce(SqliteTx<'c>) -> F,
) -> Res<T>
where
    F: Future<Output = Res<T>> + 'c,
{
    let tx = SqliteTx {
        tx: ImmediateTx::begin(conn)?,
        cache,
    };
    futures::executor::block_on(sequence(tx))
}

const LAGGING: &str = "SELECT e.id, e.status, e.predecessor_id, e.terms, e.created_at, \
    e.updated_at, b.period_index, b.used_milli, b.held_milli, b.carried_milli, b.channels, \
    (SELECT MAX(r.id) FROM entitlements r WHERE r.predecessor_id = e.id) \
    FROM entitlements e JOIN balances b ON b.entitlement_id = e.id \
    WHERE (e.status = 'waiting' AND e.start_date <= ?1) \
       OR (e.status = 'active' AND e.end_date < ?1) \
    ORDER BY e.id LIMIT ?2";

impl WriteTx for SqliteTx<'_> {
    type Error = Fail;

    async fn lock_cases(&self, ids: &BTreeSet<String>) -> Res<Vec<CaseRecord>> {
        let mut found = Vec::with_capacity(ids.len());
        for id in ids {
            found.extend(cases::get(&self.tx, id)?);
        }
        Ok(found)
    }

    async fn lock_reservations(&self, ids: &BTreeSet<String>) -> Res<Vec<Reservation>> {
        let mut found = Vec::with_capacity(ids.len());
        for id in ids {
            found.extend(usage::get_reservation(&self.tx, id)?);
        }
        Ok(found)
    }

    async fn lock_entitlements(&self, ids: &BTreeSet<String>) -> Res<Vec<EntitlementRecord>> {
        let mut found = Vec::with_capacity(ids.len());
        for id in ids {
            found.extend(entitlements::get(&self.tx, self.cache, id)?);
        }
        Ok(found)
    }

    async fn lock_lagging(&self, today: NaiveDate, limit: u32) -> Res<Vec<EntitlementRecord>> {
        let mut stmt = self.tx.prepare_cached(LAGGING)?;
        all(&mut stmt, params![day(today), i64::from(limit)], |r| {
            entitlements::record(r, self.cache)
        })
    }

    async fn entitlements_of(&self, accounts: &BTreeSet<String>, limit: u32) -> Res<Vec<String>> {
        let sql = format!(
            "SELECT id FROM entitlements WHERE account_id IN ({}) \
             AND status IN ('waiting', 'active') ORDER BY id LIMIT ?",
            placeholders(accounts.len())
        );
        let mut args: Vec<Value> = accounts.iter().cloned().map(Value::Text).collect();
        args.push(Value::Integer(i64::from(limit)));
        all(
            &mut *self.tx.prepare_cached(&sql)?,
            params_from_iter(args),
            |r| Ok(r.get(0)?),
        )
    }

    async fn lock_api_key(&self, id: &str) -> Res<Option<ApiKey>> {
        api_keys::get(&self.tx, id)
    }

    async fn load_keys(
        &self,
        keys: &BTreeSet<KeyName>,
    ) -> Res<HashMap<KeyName, IdempotencyRecord>> {
        let mut found = HashMap::new();
        let mut stmt = self.tx.prepare_cached(idempotency::SELECT)?;
        for (scope, key) in keys {
            if let Some(record) = first(&mut stmt, [scope, key], idempotency::record)? {
                found.insert((scope.clone(), key.clone()), record);
            }
        }
        Ok(found)
    }

    async fn revoked_keys(&self, actors: &BTreeSet<String>) -> Res<BTreeSet<String>> {
        api_keys::revoked(&self.tx, actors)
    }

    async fn load_references(&self, pairs: &BTreeSet<(String, String)>) -> Res<UsedReferences> {
        let mut used = UsedReferences::new();
        for (entitlement_id, reference) in pairs {
            if cases::reference_used(&self.tx, entitlement_id, reference)? {
                used.insert((entitlement_id.clone(), reference.clone()));
            }
        }
        Ok(used)
    }

    async fn ledger_sums(&self, periods: &[(String, i64)]) -> Res<Vec<Quantity>> {
        let mut stmt = self.tx.prepare_cached(
            "SELECT COALESCE(SUM(quantity_milli), 0) FROM ledger \
             WHERE entitlement_id = ?1 AND period_index = ?2",
        )?;
        let mut sums = Vec::with_capacity(periods.len());
        for (id, period) in periods {
            let milli: i64 = stmt.query_row(params![id, period], |r| r.get(0))?;
            sums.push(Quantity::from_milli(milli));
        }
        Ok(sums)
    }

    async fn write(&self, changes: &Changes, now: DateTime<Utc>) -> Res<()> {
        write(&self.tx, changes, now)
    }

    async fn commit(self) -> Res<()> {
        self.tx.commit()
    }
}

fn write(tx: &Connection, changes: &Changes, now: DateTime<Utc>) -> Res<()> {
    let at = ts(now);
    for account in &changes.accounts {
        parties::insert_account(tx, account)?;
    }
    for contact in &changes.contacts {
        parties::insert_contact(tx, contact)?;
    }
    for product in &changes.products {
        parties::insert_product(tx, product)?;
    }
    for entitlement in &changes.new_entitlements {
        entitlements::insert_rows(tx, entitlement, &at)?;
    }
    for entitlement in &changes.entitlements {
        entitlements::update_row(tx, entitlement, &at)?;
    }
    if !changes.counters.is_empty() {
        let mut stmt = tx.prepare_cached(
            "UPDATE balances SET period_index = ?2, used_milli = ?3, held_milli = ?4, \
             carried_milli = ?5, channels = ?6 WHERE entitlement_id = ?1",
        )?;
        for (id, c) in &changes.counters {
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
    for reservation in &changes.reservations {
        usage::upsert_reservation(tx, reservation)?;
    }
    for entry in &changes.ledger {
        usage::insert_ledger(tx, entry)?;
    }
    for day in changes.ledger_days() {
        usage::add_ledger_day(tx, &day)?;
    }
    for case in &changes.cases {
        cases::upsert(tx, case)?;
    }
    for transition in &changes.transitions {
        insert_transition(tx, transition)?;
    }
    for (key, secret_hash) in &changes.api_keys {
        api_keys::insert(tx, key, secret_hash)?;
    }
    for (id, revoked_at) in &changes.revoked_keys {
        api_keys::revoke(tx, id, *revoked_at)?;
    }
    for answer in &changes.answers {
        idempotency::record_answer(tx, answer, &at)?;
    }
    for event in &changes.events {
        events::insert(tx, event)?;
    }
    for entry in &changes.audit {
        audit::insert(tx, entry)?;
    }
    Ok(())
}

fn insert_transition(conn: &Connection, t: &Transition) -> Res<()> {
    conn.prepare_cached(
        "INSERT INTO transitions (entitlement_id, from_status, to_status, action, actor, at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        t.entitlement_id,
        t.from_status.as_str(),
        t.to_status.as_str(),
        t.action,
        t.actor,
        ts(t.at)
    ])?;
    Ok(())
}

impl SqliteTx<'_> {
    /// The open transaction, for the steps other modules add (`alerts`).
    pub(crate) fn conn(&self) -> &Connection {
        &self.tx
    }
}
