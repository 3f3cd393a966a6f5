//! PostgreSQL's side of `allot_store::backend::WriteTx`: the loads, row
//! locks (`FOR UPDATE`, in id order) and bulk writes of one transaction.
//! Every write of a transaction goes out at once, pipelined, one statement
//! per table for the hot tables.

use std::collections::{BTreeSet, HashMap};

use allot_core::batch::UsedReferences;
use allot_core::Quantity;
use allot_store::backend::{Changes, KeyName, WriteTx};
use allot_store::clock::stored_time;
use allot_store::model::{ApiKey, EntitlementRecord, IdempotencyRecord};
use allot_store::plan::{CaseRecord, Reservation};
use chrono::{DateTime, NaiveDate, Utc};
use deadpool_postgres::Transaction;
use futures::future::try_join_all;
use tokio_postgres::types::{Json, ToSql};

use crate::audit::{self, AuditColumns};
use crate::error::{Error, Res};
use crate::rows::{self, API_KEY_COLS, RECORD_COLS, RESERVATION_COLS};

pub(crate) struct PgTx<'c> {
    pub(crate) tx: Transaction<'c>,
}

impl<'c> PgTx<'c> {
    pub(crate) fn new(tx: Transaction<'c>) -> Self {
        PgTx { tx }
    }
}

/// Runs a shared sequence in a transaction of its own, and again (up to
/// `retry::RETRIES` times) while it fails in a way `$retry` says is a lost
/// race.
macro_rules! in_tx {
    ($pool:expr, $what:literal, $retry:expr, |$tx:ident| $sequence:expr) => {
        crate::retry::run($what, $retry, || async {
            let mut client = $pool.get().await?;
            let $tx = crate::transaction::PgTx::new(client.transaction().await?);
            $sequence.await
        })
        .await
    };
}
pub(crate) use in_tx;

impl WriteTx for PgTx<'_> {
    type Error = Error;

    async fn lock_cases(&self, ids: &BTreeSet<String>) -> Res<Vec<CaseRecord>> {
        lock_cases(&self.tx, ids).await
    }

    async fn lock_reservations(&self, ids: &BTreeSet<String>) -> Res<Vec<Reservation>> {
        lock_reservations(&self.tx, ids).await
    }

    async fn lock_entitlements(&self, ids: &BTreeSet<String>) -> Res<Vec<EntitlementRecord>> {
        lock_entitlements(&self.tx, ids).await
    }

    async fn lock_lagging(&self, today: NaiveDate, limit: u32) -> Res<Vec<EntitlementRecord>> {
        let stmt = self
            .tx
            .prepare_cached(&format!(
                "SELECT {RECORD_COLS} FROM entitlements e
                 JOIN balances b ON b.entitlement_id = e.id
                 WHERE (e.status = 'waiting' AND e.start_date <= $1)
                    OR (e.status = 'active' AND e.end_date < $1)
                 ORDER BY e.id LIMIT $2 FOR UPDATE OF e, b"
            ))
            .await?;
        let rows = self.tx.query(&stmt, &[&today, &i64::from(limit)]).await?;
        rows.iter().map(rows::record).collect()
    }

    async fn entitlements_of(&self, accounts: &BTreeSet<String>, limit: u32) -> Res<Vec<String>> {
        let accounts: Vec<&str> = accounts.iter().map(String::as_str).collect();
        let stmt = self
            .tx
            .prepare_cached(
                "SELECT id FROM entitlements
                 WHERE account_id = ANY($1) AND status IN ('waiting', 'active')
                 ORDER BY id LIMIT $2",
            )
            .await?;
        let rows = self
            .tx
            .query(&stmt, &[&accounts, &i64::from(limit)])
            .await?;
        rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
    }

    async fn lock_api_key(&self, id: &str) -> Res<Option<ApiKey>> {
        let stmt = self
            .tx
            .prepare_cached(&format!(
                "SELECT {API_KEY_COLS} FROM api_keys WHERE id = $1 FOR UPDATE"
            ))
            .await?;
        self.tx
            .query_opt(&stmt, &[&id])
            .await?
            .as_ref()
            .map(rows::api_key)
            .transpose()
    }

    async fn load_keys(
        &self,
        keys: &BTreeSet<KeyName>,
    ) -> Res<HashMap<KeyName, IdempotencyRecord>> {
        load_keys(&self.tx, keys).await
    }

    async fn revoked_keys(&self, actors: &BTreeSet<String>) -> Res<BTreeSet<String>> {
        if actors.is_empty() {
            return Ok(BTreeSet::new());
        }
        let ids: Vec<&str> = actors.iter().map(String::as_str).collect();
        let stmt = self
            .tx
            .prepare_cached(
                "SELECT id FROM api_keys WHERE id = ANY($1::text[]) AND revoked_at IS NOT NULL",
            )
            .await?;
        let mut revoked = BTreeSet::new();
        for row in self.tx.query(&stmt, &[&ids]).await? {
            revoked.insert(row.try_get(0)?);
        }
        Ok(revoked)
    }

    async fn load_references(&self, pairs: &BTreeSet<(String, String)>) -> Res<UsedReferences> {
        load_references(&self.tx, pairs).await
    }

    async fn ledger_sums(&self, periods: &[(String, i64)]) -> Res<Vec<Quantity>> {
        let ids: Vec<&str> = periods.iter().map(|(id, _)| id.as_str()).collect();
        let indexes: Vec<i64> = periods.iter().map(|(_, p)| *p).collect();
        let stmt = self
            .tx
            .prepare_cached(
                "SELECT COALESCE((SELECT SUM(l.quantity_milli) FROM ledger l
                     WHERE l.entitlement_id = u.id AND l.period_index = u.p), 0)::int8
                 FROM UNNEST($1::text[], $2::int8[]) WITH ORDINALITY AS u(id, p, n)
                 ORDER BY u.n",
            )
            .await?;
        let rows = self.tx.query(&stmt, &[&ids, &indexes]).await?;
        rows.iter()
            .map(|r| Ok(Quantity::from_milli(r.try_get(0)?)))
            .collect()
    }

    async fn write(&self, changes: &Changes, now: DateTime<Utc>) -> Res<()> {
        write(&self.tx, changes, now).await
    }

    async fn commit(self) -> Res<()> {
        self.tx.commit().await.map_err(crate::error::commit_failed)
    }
}

async fn lock_reservations(tx: &Transaction<'_>, ids: &BTreeSet<String>) -> Res<Vec<Reservation>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let stmt = tx
        .prepare_cached(&format!(
            "SELECT {RESERVATION_COLS} FROM reservations
             WHERE id = ANY($1) ORDER BY id FOR UPDATE"
        ))
        .await?;
    tx.query(&stmt, &[&ids])
        .await?
        .iter()
        .map(rows::reservation)
        .collect()
}

async fn lock_cases(tx: &Transaction<'_>, ids: &BTreeSet<String>) -> Res<Vec<CaseRecord>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let stmt = tx
        .prepare_cached("SELECT record FROM cases WHERE id = ANY($1) ORDER BY id FOR UPDATE")
        .await?;
    let mut found = Vec::with_capacity(ids.len());
    for row in tx.query(&stmt, &[&ids]).await? {
        let Json(case): Json<CaseRecord> = row.try_get(0)?;
        found.push(case);
    }
    Ok(found)
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

async fn lock_entitlements(
    tx: &Transaction<'_>,
    ids: &BTreeSet<String>,
) -> Res<Vec<EntitlementRecord>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let stmt = tx
        .prepare_cached(&format!(
            "SELECT {RECORD_COLS} FROM entitlements e
             JOIN balances b ON b.entitlement_id = e.id
             WHERE e.id = ANY($1) ORDER BY e.id FOR UPDATE"
        ))
        .await?;
    tx.query(&stmt, &[&ids])
        .await?
        .iter()
        .map(rows::record)
        .collect()
}

async fn load_keys(
    tx: &Transaction<'_>,
    keys: &BTreeSet<KeyName>,
) -> Res<HashMap<KeyName, IdempotencyRecord>> {
    let mut found = HashMap::new();
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

/// Rows arrive summed per entitlement and day (`Changes::ledger_days`), so
/// no row is touched twice; only the holder of an entitlement's lock writes
/// its days.
const WRITE_LEDGER_DAYS: &str = "INSERT INTO ledger_days (entitlement_id, day, used_milli)
    SELECT * FROM UNNEST($1::text[], $2::date[], $3::int8[])
    ON CONFLICT (entitlement_id, day)
    DO UPDATE SET used_milli = ledger_days.used_milli + EXCLUDED.used_milli";

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
    ledger_days: LedgerDayColumns<'p>,
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
struct LedgerDayColumns<'p> {
    entitlement_id: Vec<&'p str>,
    day: Vec<NaiveDate>,
    used: Vec<i64>,
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
    fn of(plan: &'p Changes) -> Self {
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
        let mut ledger_days = LedgerDayColumns::default();
        for d in plan.ledger_days() {
            ledger_days.entitlement_id.push(d.entitlement_id);
            ledger_days.day.push(d.day);
            ledger_days.used.push(d.used.milli());
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
        for k in &plan.answers {
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
            ledger_days,
            reservations,
            cases,
            keys,
            events,
            audit: AuditColumns::of(&plan.audit),
        }
    }
}

const INSERT_ACCOUNT: &str =
    "INSERT INTO accounts (id, name, parent_id, created_at, manager_name, manager_email,
        external_id)
     VALUES ($1, $2, $3, $4, $5, $6, $7)";

const INSERT_CONTACT: &str = "INSERT INTO contacts (id, account_id, name, email, created_at)
    VALUES ($1, $2, $3, $4, $5)";

const INSERT_PRODUCT: &str =
    "INSERT INTO products (id, name, sku, created_at) VALUES ($1, $2, $3, $4)";

const INSERT_ENTITLEMENT: &str = "INSERT INTO entitlements (id, account_id, unit, owner,
        status, is_default, start_date, end_date, total_milli, restrict, terms,
        predecessor_id, created_at, updated_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13)";

const INSERT_BALANCES: &str = "INSERT INTO balances (entitlement_id, period_index, used_milli,
        held_milli, carried_milli, channels)
    VALUES ($1, 0, 0, 0, 0, '{}'::jsonb)";

const UPDATE_ENTITLEMENT: &str = "UPDATE entitlements SET account_id = $2, unit = $3,
        owner = $4, status = $5, is_default = $6, start_date = $7, end_date = $8,
        total_milli = $9, restrict = $10, terms = $11, predecessor_id = $12,
        updated_at = $13
    WHERE id = $1";

const INSERT_TRANSITION: &str = "INSERT INTO transitions (entitlement_id, from_status,
        to_status, action, actor, at)
    VALUES ($1, $2, $3, $4, $5, $6)";

const INSERT_API_KEY: &str = "INSERT INTO api_keys (id, secret_hash, name, role, account_id,
        created_at, revoked_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7)";

const REVOKE_API_KEY: &str =
    "UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL";

type Params<'a> = Vec<&'a (dyn ToSql + Sync)>;

/// One statement to send, and the account a one-default conflict names.
struct Statement<'a> {
    sql: &'static str,
    params: Params<'a>,
    account: Option<&'a str>,
}

fn statement<'a>(sql: &'static str, params: Params<'a>) -> Statement<'a> {
    Statement {
        sql,
        params,
        account: None,
    }
}

/// The column values of an entitlement row, owned so statements can borrow them.
struct EntitlementColumns<'p> {
    entitlement: &'p allot_core::entitlement::Entitlement,
    unit: &'static str,
    status: &'static str,
    total: Option<i64>,
    terms: Json<&'p allot_core::entitlement::Terms>,
}

impl<'p> EntitlementColumns<'p> {
    fn of(entitlement: &'p allot_core::entitlement::Entitlement) -> Self {
        EntitlementColumns {
            entitlement,
            unit: entitlement.terms.unit.as_str(),
            status: entitlement.status.as_str(),
            total: entitlement.terms.total.map(|q| q.milli()),
            terms: Json(&entitlement.terms),
        }
    }

    /// In the order of `INSERT_ENTITLEMENT` and `UPDATE_ENTITLEMENT`.
    fn params<'a>(&'a self, now: &'a DateTime<Utc>) -> Params<'a> {
        let e = self.entitlement;
        vec![
            &e.id,
            &e.terms.account_id,
            &self.unit,
            &e.terms.owner,
            &self.status,
            &e.terms.is_default,
            &e.terms.start_date,
            &e.terms.end_date,
            &self.total,
            &e.terms.restrict,
            &self.terms,
            &e.predecessor_id,
            now,
        ]
    }
}

/// Every statement of `changes`, tables in the order of its fields.
fn statements<'a>(
    changes: &'a Changes,
    cols: &'a Columns<'a>,
    rare: &'a RareColumns<'a>,
    now: &'a DateTime<Utc>,
) -> Vec<Statement<'a>> {
    let mut out = Vec::new();
    for a in &changes.accounts {
        out.push(statement(
            INSERT_ACCOUNT,
            vec![
                &a.id,
                &a.name,
                &a.parent_id,
                &a.created_at,
                &a.manager_name,
                &a.manager_email,
                &a.external_id,
            ],
        ));
    }
    for c in &changes.contacts {
        out.push(statement(
            INSERT_CONTACT,
            vec![&c.id, &c.account_id, &c.name, &c.email, &c.created_at],
        ));
    }
    for p in &changes.products {
        out.push(statement(
            INSERT_PRODUCT,
            vec![&p.id, &p.name, &p.sku, &p.created_at],
        ));
    }
    for e in &rare.new_entitlements {
        out.push(Statement {
            sql: INSERT_ENTITLEMENT,
            params: e.params(now),
            account: Some(&e.entitlement.terms.account_id),
        });
        out.push(statement(INSERT_BALANCES, vec![&e.entitlement.id]));
    }
    for e in &rare.entitlements {
        out.push(Statement {
            sql: UPDATE_ENTITLEMENT,
            params: e.params(now),
            account: Some(&e.entitlement.terms.account_id),
        });
    }
    let (b, l, r, c, k, e) = (
        &cols.balances,
        &cols.ledger,
        &cols.reservations,
        &cols.cases,
        &cols.keys,
        &cols.events,
    );
    if !b.id.is_empty() {
        out.push(statement(
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
    if !r.id.is_empty() {
        out.push(statement(
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
    if !l.id.is_empty() {
        out.push(statement(
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
        let d = &cols.ledger_days;
        out.push(statement(
            WRITE_LEDGER_DAYS,
            vec![&d.entitlement_id, &d.day, &d.used],
        ));
    }
    if !c.id.is_empty() {
        out.push(statement(
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
    for (t, (from, to)) in changes.transitions.iter().zip(&rare.transition_states) {
        out.push(statement(
            INSERT_TRANSITION,
            vec![&t.entitlement_id, from, to, &t.action, &t.actor, &t.at],
        ));
    }
    for ((key, secret_hash), role) in changes.api_keys.iter().zip(&rare.roles) {
        out.push(statement(
            INSERT_API_KEY,
            vec![
                &key.id,
                secret_hash,
                &key.name,
                role,
                &key.account_id,
                &key.created_at,
                &key.revoked_at,
            ],
        ));
    }
    for (id, at) in &changes.revoked_keys {
        out.push(statement(REVOKE_API_KEY, vec![id, at]));
    }
    if !k.scope.is_empty() {
        out.push(statement(
            WRITE_KEYS,
            vec![&k.scope, &k.key, &k.fingerprint, &k.answer, now],
        ));
    }
    if !e.id.is_empty() {
        out.push(statement(
            WRITE_EVENTS,
            vec![&e.id, &e.kind, &e.entitlement_id, &e.data, &e.created_at],
        ));
    }
    if !cols.audit.is_empty() {
        out.push(statement(audit::WRITE_ALL, cols.audit.params()));
    }
    out
}

/// Values of the rarely written tables that statements borrow.
struct RareColumns<'p> {
    new_entitlements: Vec<EntitlementColumns<'p>>,
    entitlements: Vec<EntitlementColumns<'p>>,
    transition_states: Vec<(&'static str, &'static str)>,
    roles: Vec<&'static str>,
}

impl<'p> RareColumns<'p> {
    fn of(changes: &'p Changes) -> Self {
        RareColumns {
            new_entitlements: changes
                .new_entitlements
                .iter()
                .map(EntitlementColumns::of)
                .collect(),
            entitlements: changes
                .entitlements
                .iter()
                .map(EntitlementColumns::of)
                .collect(),
            transition_states: changes
                .transitions
                .iter()
                .map(|t| (t.from_status.as_str(), t.to_status.as_str()))
                .collect(),
            roles: changes
                .api_keys
                .iter()
                .map(|(k, _)| k.role.as_str())
                .collect(),
        }
    }
}

/// Every statement sent at once (pipelined) in a fixed order, so a failure
/// is reported by the statement that failed. The idempotency answers are
/// checked: a key another instance finished meanwhile is a lost race.
async fn write(tx: &Transaction<'_>, changes: &Changes, now: DateTime<Utc>) -> Res<()> {
    let now = stored_time(now);
    let cols = Columns::of(changes);
    let rare = RareColumns::of(changes);
    let statements = statements(changes, &cols, &rare, &now);
    let mut prepared = Vec::with_capacity(statements.len());
    for s in &statements {
        prepared.push(tx.prepare_cached(s.sql).await?);
    }
    let counts = try_join_all(
        prepared
            .iter()
            .zip(&statements)
            .map(|(stmt, s)| async move {
                tx.execute(stmt, &s.params)
                    .await
                    .map_err(|e| match s.account {
                        Some(account) => Error::from(e).for_account(account),
                        None => Error::from(e),
                    })
            }),
    )
    .await?;
    let keys_written: u64 = statements
        .iter()
        .zip(&counts)
        .filter(|(s, _)| s.sql == WRITE_KEYS)
        .map(|(_, n)| *n)
        .sum();
    if keys_written != cols.keys.scope.len() as u64 {
        return Err(Error::KeyRaced);
    }
    Ok(())
}

impl<'c> PgTx<'c> {
    /// The open transaction, for the steps other modules add (`alerts`).
    pub(crate) fn inner(&self) -> &Transaction<'c> {
        &self.tx
    }
}
