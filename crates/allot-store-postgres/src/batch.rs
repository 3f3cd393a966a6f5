//! The write path's transaction: load and lock what a batch touches, let
//! the shared planner decide, write the plan with one statement per table.

use std::collections::BTreeSet;

use allot_core::batch::UsedReferences;
use allot_store::plan::{self, plan_batch, BatchItem, CaseRecord, ItemAnswer, Loaded, Plan};
use chrono::{DateTime, NaiveDate, Utc};
use deadpool_postgres::{Pool, Transaction};
use futures::future::try_join_all;
use tokio_postgres::types::{Json, ToSql};

use crate::audit::{self, AuditColumns};
use crate::error::{Error, Res};
use crate::retry;
use crate::rows::{self, RECORD_COLS, RESERVATION_COLS};

pub(crate) async fn apply_batch(
    pool: &Pool,
    items: &[BatchItem],
    today: NaiveDate,
    now: DateTime<Utc>,
) -> Res<Vec<ItemAnswer>> {
    if items.is_empty() {
        return Ok(Vec::new());
    }
    let now = rows::micros(now);
    retry::run("apply_batch", Error::is_transient, || {
        apply_once(pool, items, today, now)
    })
    .await
}

async fn apply_once(
    pool: &Pool,
    items: &[BatchItem],
    today: NaiveDate,
    now: DateTime<Utc>,
) -> Res<Vec<ItemAnswer>> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let mut loaded = Loaded::default();
    // Lock order: cases, reservations, then entitlements (each by id).
    load_cases(&tx, &plan::case_ids(items), &mut loaded).await?;
    load_reservations(&tx, &plan::reservation_ids(items), &mut loaded).await?;
    let entitlement_ids = plan::entitlement_ids(items, &loaded.reservations, &loaded.cases);
    let keys = plan::idempotency_keys(items);
    // Independent of each other: sent together, one round trip.
    futures::try_join!(
        load_entitlements(&tx, &entitlement_ids),
        load_keys(&tx, &keys)
    )
    .map(|(entitlements, keys)| {
        loaded.entitlements = entitlements;
        loaded.keys = keys;
    })?;
    // Only once the entitlements are locked: every writer of their ledger
    // holds that lock, so what this reads cannot change before we commit.
    loaded.references = load_references(&tx, &plan::usage_references(items)).await?;
    let plan = plan_batch(&mut loaded, items, today, now);
    write(&tx, &plan, now).await?;
    tx.commit().await?;
    Ok(plan.answers)
}

async fn load_reservations(
    tx: &Transaction<'_>,
    ids: &BTreeSet<String>,
    loaded: &mut Loaded,
) -> Res<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let stmt = tx
        .prepare_cached(&format!(
            "SELECT {RESERVATION_COLS} FROM reservations
             WHERE id = ANY($1) ORDER BY id FOR UPDATE"
        ))
        .await?;
    for row in tx.query(&stmt, &[&ids]).await? {
        let r = rows::reservation(&row)?;
        loaded.reservations.insert(r.id.clone(), r);
    }
    Ok(())
}

/// Locks the cases first, in id order, like every other writer.
async fn load_cases(tx: &Transaction<'_>, ids: &BTreeSet<String>, loaded: &mut Loaded) -> Res<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let stmt = tx
        .prepare_cached("SELECT record FROM cases WHERE id = ANY($1) ORDER BY id FOR UPDATE")
        .await?;
    for row in tx.query(&stmt, &[&ids]).await? {
        let Json(case): Json<CaseRecord> = row.try_get(0)?;
        loaded.cases.insert(case.state.id.clone(), case);
    }
    Ok(())
}

/// Of the (entitlement, reference) pairs of the batch's direct uses, those
/// the ledger already holds.
async fn load_references(
    tx: &Transaction<'_>,
    pairs: &BTreeSet<(String, String)>,
) -> Res<UsedReferences> {
    let mut used = UsedReferences::new();
    if pairs.is_empty() {
        return Ok(used);
    }
    let entitlements: Vec<&str> = pairs.iter().map(|(e, _)| e.as_str()).collect();
    let references: Vec<&str> = pairs.iter().map(|(_, r)| r.as_str()).collect();
    let stmt = tx
        .prepare_cached(
            "SELECT DISTINCT l.entitlement_id, l.reference FROM ledger l
             JOIN UNNEST($1::text[], $2::text[]) AS u(entitlement_id, reference)
               ON l.entitlement_id = u.entitlement_id AND l.reference = u.reference
             WHERE l.reference IS NOT NULL AND l.reason IN ('usage', 'visit')",
        )
        .await?;
    for row in tx.query(&stmt, &[&entitlements, &references]).await? {
        used.insert((row.try_get(0)?, row.try_get(1)?));
    }
    Ok(used)
}

type States = std::collections::HashMap<String, allot_core::batch::EntitlementState>;

/// Locks in id order, like every other writer, so batches never deadlock.
async fn load_entitlements(tx: &Transaction<'_>, ids: &BTreeSet<String>) -> Res<States> {
    let mut states = States::new();
    if ids.is_empty() {
        return Ok(states);
    }
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let stmt = tx
        .prepare_cached(&format!(
            "SELECT {RECORD_COLS} FROM entitlements e
             JOIN balances b ON b.entitlement_id = e.id
             WHERE e.id = ANY($1) ORDER BY e.id FOR UPDATE"
        ))
        .await?;
    for row in tx.query(&stmt, &[&ids]).await? {
        let state = rows::state(&row)?;
        states.insert(state.entitlement.id.clone(), state);
    }
    Ok(states)
}

type Keys = std::collections::HashMap<(String, String), allot_store::model::IdempotencyRecord>;

async fn load_keys(tx: &Transaction<'_>, keys: &BTreeSet<(String, String)>) -> Res<Keys> {
    let mut found = Keys::new();
    if keys.is_empty() {
        return Ok(found);
    }
    let scopes: Vec<&str> = keys.iter().map(|(s, _)| s.as_str()).collect();
    let names: Vec<&str> = keys.iter().map(|(_, k)| k.as_str()).collect();
    let stmt = tx
        .prepare_cached(&format!(
            "SELECT k.scope, k.key, {} FROM idempotency_keys k
             JOIN UNNEST($1::text[], $2::text[]) AS u(scope, key)
               ON k.scope = u.scope AND k.key = u.key",
            prefixed("k.", rows::KEY_COLS)
        ))
        .await?;
    for row in tx.query(&stmt, &[&scopes, &names]).await? {
        let id = (row.try_get(0)?, row.try_get(1)?);
        found.insert(id, rows::key_record(&row, 2)?);
    }
    Ok(found)
}

fn prefixed(prefix: &str, cols: &str) -> String {
    cols.split(", ")
        .map(|c| format!("{prefix}{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

const WRITE_BALANCES: &str = "UPDATE balances AS b
    SET period_index = u.period_index, used_milli = u.used, held_milli = u.held,
        carried_milli = u.carried, channels = u.channels
    FROM UNNEST($1::text[], $2::int8[], $3::int8[], $4::int8[], $5::int8[], $6::jsonb[])
        AS u(id, period_index, used, held, carried, channels)
    WHERE b.entitlement_id = u.id";

const WRITE_LEDGER: &str = "INSERT INTO ledger (id, entitlement_id, period_index, channel,
        quantity_milli, reason, reference, actor, created_at)
    SELECT * FROM UNNEST($1::text[], $2::text[], $3::int8[], $4::text[], $5::int8[],
        $6::text[], $7::text[], $8::text[], $9::timestamptz[])";

const WRITE_RESERVATIONS: &str = "INSERT INTO reservations (id, entitlement_id,
        quantity_milli, channel, reference, status, expires_at, created_at, settled_at,
        committed_milli)
    SELECT * FROM UNNEST($1::text[], $2::text[], $3::int8[], $4::text[], $5::text[],
        $6::text[], $7::timestamptz[], $8::timestamptz[], $9::timestamptz[], $10::int8[])
    ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status,
        settled_at = EXCLUDED.settled_at, committed_milli = EXCLUDED.committed_milli";

const WRITE_CASES: &str = "INSERT INTO cases (id, account_id, entitlement_id, status, record,
        created_at, updated_at, deleted_at)
    SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::jsonb[],
        $6::timestamptz[], $7::timestamptz[], $8::timestamptz[])
    ON CONFLICT (id) DO UPDATE SET entitlement_id = EXCLUDED.entitlement_id,
        status = EXCLUDED.status, record = EXCLUDED.record,
        updated_at = EXCLUDED.updated_at, deleted_at = EXCLUDED.deleted_at";

/// Takes over an unfinished claim of the same key; a finished row stays and
/// is not counted, which tells us another writer got there first.
const WRITE_KEYS: &str = "INSERT INTO idempotency_keys (scope, key, fingerprint, answer,
        created_at)
    SELECT s, k, f, a, $5 FROM UNNEST($1::text[], $2::text[], $3::text[], $4::jsonb[])
        AS u(s, k, f, a)
    ON CONFLICT (scope, key) DO UPDATE SET fingerprint = EXCLUDED.fingerprint,
        answer = EXCLUDED.answer, created_at = EXCLUDED.created_at
    WHERE idempotency_keys.answer IS NULL";

const WRITE_EVENTS: &str = "INSERT INTO events (id, kind, entitlement_id, data, created_at)
    SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::jsonb[],
        $5::timestamptz[])";

/// Column arrays of a plan, owned here so the statements can borrow them.
struct Columns<'p> {
    balances: BalanceColumns<'p>,
    ledger: LedgerColumns<'p>,
    reservations: ReservationColumns<'p>,
    cases: CaseColumns<'p>,
    keys: KeyColumns<'p>,
    events: EventColumns<'p>,
    audit: AuditColumns<'p>,
}

type Channels = std::collections::BTreeMap<String, allot_core::balance::ChannelCounter>;

#[derive(Default)]
struct BalanceColumns<'p> {
    id: Vec<&'p str>,
    period_index: Vec<i64>,
    used: Vec<i64>,
    held: Vec<i64>,
    carried: Vec<i64>,
    channels: Vec<Json<&'p Channels>>,
}

#[derive(Default)]
struct KeyColumns<'p> {
    scope: Vec<&'p str>,
    key: Vec<&'p str>,
    fingerprint: Vec<&'p str>,
    answer: Vec<&'p serde_json::Value>,
}

#[derive(Default)]
struct LedgerColumns<'p> {
    id: Vec<&'p str>,
    entitlement_id: Vec<&'p str>,
    period_index: Vec<i64>,
    channel: Vec<Option<&'p str>>,
    quantity: Vec<i64>,
    reason: Vec<&'static str>,
    reference: Vec<Option<&'p str>>,
    actor: Vec<&'p str>,
    created_at: Vec<DateTime<Utc>>,
}

#[derive(Default)]
struct ReservationColumns<'p> {
    id: Vec<&'p str>,
    entitlement_id: Vec<&'p str>,
    quantity: Vec<i64>,
    channel: Vec<Option<&'p str>>,
    reference: Vec<Option<&'p str>>,
    status: Vec<&'static str>,
    expires_at: Vec<DateTime<Utc>>,
    created_at: Vec<DateTime<Utc>>,
    settled_at: Vec<Option<DateTime<Utc>>>,
    committed: Vec<Option<i64>>,
}

#[derive(Default)]
struct CaseColumns<'p> {
    id: Vec<&'p str>,
    account_id: Vec<&'p str>,
    entitlement_id: Vec<Option<&'p str>>,
    status: Vec<&'static str>,
    record: Vec<Json<&'p CaseRecord>>,
    created_at: Vec<DateTime<Utc>>,
    updated_at: Vec<DateTime<Utc>>,
    deleted_at: Vec<Option<DateTime<Utc>>>,
}

#[derive(Default)]
struct EventColumns<'p> {
    id: Vec<&'p str>,
    kind: Vec<&'p str>,
    entitlement_id: Vec<Option<&'p str>>,
    data: Vec<&'p serde_json::Value>,
    created_at: Vec<DateTime<Utc>>,
}

impl<'p> Columns<'p> {
    fn of(plan: &'p Plan) -> Self {
        let mut balances = BalanceColumns::default();
        for (id, c) in &plan.counters {
            balances.id.push(id);
            balances.period_index.push(c.period_index);
            balances.used.push(c.used.milli());
            balances.held.push(c.held.milli());
            balances.carried.push(c.carried.milli());
            balances.channels.push(Json(&c.channels));
        }
        let mut ledger = LedgerColumns::default();
        for e in &plan.ledger {
            ledger.id.push(&e.id);
            ledger.entitlement_id.push(&e.entitlement_id);
            ledger.period_index.push(e.period_index);
            ledger.channel.push(e.channel.as_deref());
            ledger.quantity.push(e.quantity.milli());
            ledger.reason.push(e.reason.as_str());
            ledger.reference.push(e.reference.as_deref());
            ledger.actor.push(&e.actor);
            ledger.created_at.push(e.created_at);
        }
        let mut reservations = ReservationColumns::default();
        for r in &plan.reservations {
            reservations.id.push(&r.id);
            reservations.entitlement_id.push(&r.entitlement_id);
            reservations.quantity.push(r.quantity.milli());
            reservations.channel.push(r.channel.as_deref());
            reservations.reference.push(r.reference.as_deref());
            reservations.status.push(r.status.as_str());
            reservations.expires_at.push(r.expires_at);
            reservations.created_at.push(r.created_at);
            reservations.settled_at.push(r.settled_at);
            reservations
                .committed
                .push(r.committed_quantity.map(|q| q.milli()));
        }
        let mut cases = CaseColumns::default();
        for c in &plan.cases {
            cases.id.push(&c.state.id);
            cases.account_id.push(&c.account_id);
            cases.entitlement_id.push(c.state.entitlement_id.as_deref());
            cases.status.push(c.state.status.as_str());
            cases.record.push(Json(c));
            cases.created_at.push(c.created_at);
            cases.updated_at.push(c.updated_at);
            cases.deleted_at.push(c.deleted_at);
        }
        let mut keys = KeyColumns::default();
        for k in &plan.keys {
            keys.scope.push(&k.scope);
            keys.key.push(&k.key);
            keys.fingerprint.push(&k.fingerprint);
            keys.answer.push(&k.answer);
        }
        let mut events = EventColumns::default();
        for e in &plan.events {
            events.id.push(&e.id);
            events.kind.push(&e.kind);
            events.entitlement_id.push(e.entitlement_id.as_deref());
            events.data.push(&e.data);
            events.created_at.push(e.created_at);
        }
        Columns {
            balances,
            ledger,
            reservations,
            cases,
            keys,
            events,
            audit: AuditColumns::of(&plan.audit),
        }
    }
}

/// One statement per table that has rows, all sent at once (pipelined) and
/// in a fixed order, so a failure is reported by the statement that failed.
async fn write(tx: &Transaction<'_>, plan: &Plan, now: DateTime<Utc>) -> Res<()> {
    let cols = Columns::of(plan);
    let (b, l, r, c, k, e) = (
        &cols.balances,
        &cols.ledger,
        &cols.reservations,
        &cols.cases,
        &cols.keys,
        &cols.events,
    );
    let mut statements: Vec<(&str, Vec<&(dyn ToSql + Sync)>)> = Vec::new();
    if !b.id.is_empty() {
        statements.push((
            WRITE_BALANCES,
            vec![
                &b.id,
                &b.period_index,
                &b.used,
                &b.held,
                &b.carried,
                &b.channels,
            ],
        ));
    }
    if !l.id.is_empty() {
        statements.push((
            WRITE_LEDGER,
            vec![
                &l.id,
                &l.entitlement_id,
                &l.period_index,
                &l.channel,
                &l.quantity,
                &l.reason,
                &l.reference,
                &l.actor,
                &l.created_at,
            ],
        ));
    }
    if !r.id.is_empty() {
        statements.push((
            WRITE_RESERVATIONS,
            vec![
                &r.id,
                &r.entitlement_id,
                &r.quantity,
                &r.channel,
                &r.reference,
                &r.status,
                &r.expires_at,
                &r.created_at,
                &r.settled_at,
                &r.committed,
            ],
        ));
    }
    if !c.id.is_empty() {
        statements.push((
            WRITE_CASES,
            vec![
                &c.id,
                &c.account_id,
                &c.entitlement_id,
                &c.status,
                &c.record,
                &c.created_at,
                &c.updated_at,
                &c.deleted_at,
            ],
        ));
    }
    let keys_at = statements.len();
    if !k.scope.is_empty() {
        statements.push((
            WRITE_KEYS,
            vec![&k.scope, &k.key, &k.fingerprint, &k.answer, &now],
        ));
    }
    if !e.id.is_empty() {
        statements.push((
            WRITE_EVENTS,
            vec![&e.id, &e.kind, &e.entitlement_id, &e.data, &e.created_at],
        ));
    }
    if !cols.audit.is_empty() {
        statements.push((audit::WRITE_ALL, cols.audit.params()));
    }
    let mut prepared = Vec::with_capacity(statements.len());
    for (sql, _) in &statements {
        prepared.push(tx.prepare_cached(sql).await?);
    }
    let counts = try_join_all(
        prepared
            .iter()
            .zip(&statements)
            .map(|(stmt, (_, params))| tx.execute(stmt, params)),
    )
    .await?;
    if !k.scope.is_empty() && counts[keys_at] != k.scope.len() as u64 {
        return Err(Error::KeyRaced);
    }
    Ok(())
}
