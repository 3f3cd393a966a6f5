//! Contracts, contract lines, entitlement templates and jobs on SQLite: the
//! rows (JSON records beside their lookup columns), the contract steps of a
//! write transaction (`ContractTx`; `BEGIN IMMEDIATE` already holds the
//! database, so a "lock" is a read), and `ContractStore`, whose mutations
//! run the shared sequences on the writer thread.

use std::collections::BTreeSet;

use allot_store::contracts::{
    sequences, Contract, ContractAct, ContractActed, ContractChanges, ContractFilter, ContractLine,
    ContractStore, ContractTx, EntitlementTemplate, Instantiation, Job, Moment,
};
use allot_store::model::{EntitlementRecord, Page};
use allot_store::{Answering, AuditContext, StoreResult};
use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use futures::future::LocalBoxFuture;
use futures::FutureExt;
use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection, Row};
use serde::de::DeserializeOwned;

use crate::cache::TermsCache;
use crate::convert::{all, day, first, paged, placeholders, ts};
use crate::entitlements;
use crate::error::Res;
use crate::transaction::{self, SqliteTx};
use crate::SqliteStore;

fn record<T: DeserializeOwned>(row: &Row) -> Res<T> {
    Ok(serde_json::from_str(row.get_ref(0)?.as_str()?)?)
}

const CONTRACT: &str = "SELECT record FROM contracts";
const LINE: &str = "SELECT record FROM contract_lines";
const TEMPLATE: &str = "SELECT record FROM entitlement_templates";
const JOB: &str = "SELECT record FROM jobs";

fn one<T: DeserializeOwned>(conn: &Connection, sql: &str, arg: &str) -> Res<Option<T>> {
    first(&mut *conn.prepare_cached(sql)?, [arg], record)
}

fn list_contracts(conn: &Connection, filter: &ContractFilter, page: &Page) -> Res<Vec<Contract>> {
    if page.limit == 0 {
        return Ok(Vec::new());
    }
    let mut args = Vec::new();
    let mut conditions = Vec::new();
    if let Some(a) = &filter.account_id {
        conditions.push("account_id = ?");
        args.push(Value::Text(a.clone()));
    }
    if let Some(s) = filter.stored_status {
        conditions.push("status = ?");
        args.push(Value::Text(s.as_str().into()));
    }
    let sql = paged(CONTRACT, &conditions, "id", page, &mut args);
    all(
        &mut *conn.prepare_cached(&sql)?,
        params_from_iter(args),
        record,
    )
}

fn list_lines(conn: &Connection, contract_id: &str, page: &Page) -> Res<Vec<ContractLine>> {
    if page.limit == 0 {
        return Ok(Vec::new());
    }
    let mut args = vec![Value::Text(contract_id.to_string())];
    let sql = paged(LINE, &["contract_id = ?"], "id", page, &mut args);
    all(
        &mut *conn.prepare_cached(&sql)?,
        params_from_iter(args),
        record,
    )
}

fn list_templates(conn: &Connection, page: &Page) -> Res<Vec<EntitlementTemplate>> {
    if page.limit == 0 {
        return Ok(Vec::new());
    }
    let mut args = Vec::new();
    let sql = paged(TEMPLATE, &[], "id", page, &mut args);
    all(
        &mut *conn.prepare_cached(&sql)?,
        params_from_iter(args),
        record,
    )
}

const CONTRACT_ENTITLEMENT_IDS: &str =
    "SELECT id FROM entitlements WHERE json_extract(terms, '$.contract_id') = ?1";

fn contract_entitlement_ids(conn: &Connection, contract_id: &str) -> Res<Vec<String>> {
    all(
        &mut *conn.prepare_cached(CONTRACT_ENTITLEMENT_IDS)?,
        [contract_id],
        |r| Ok(r.get(0)?),
    )
}

fn list_contract_entitlements(
    conn: &Connection,
    cache: &TermsCache,
    contract_id: &str,
    page: &Page,
) -> Res<Vec<EntitlementRecord>> {
    if page.limit == 0 {
        return Ok(Vec::new());
    }
    let mut stmt = conn.prepare_cached(
        "SELECT id FROM entitlements WHERE json_extract(terms, '$.contract_id') = ?1 \
         AND id > ?2 ORDER BY id LIMIT ?3",
    )?;
    let after = page.after.clone().unwrap_or_default();
    let ids: Vec<String> = all(
        &mut stmt,
        params![contract_id, after, i64::from(page.limit)],
        |r| Ok(r.get(0)?),
    )?;
    let mut found = Vec::with_capacity(ids.len());
    for id in ids {
        found.extend(entitlements::get(conn, cache, &id)?);
    }
    Ok(found)
}

fn existing(conn: &Connection, table: &str, ids: &BTreeSet<String>) -> Res<BTreeSet<String>> {
    let mut found = BTreeSet::new();
    let ids: Vec<&String> = ids.iter().collect();
    for chunk in ids.chunks(500) {
        let sql = format!(
            "SELECT id FROM {table} WHERE id IN ({})",
            placeholders(chunk.len())
        );
        let rows: Vec<String> = all(
            &mut *conn.prepare_cached(&sql)?,
            params_from_iter(chunk.iter()),
            |r| Ok(r.get(0)?),
        )?;
        found.extend(rows);
    }
    Ok(found)
}

fn write(conn: &Connection, changes: &ContractChanges) -> Res<()> {
    for c in &changes.contracts {
        conn.prepare_cached(
            "INSERT INTO contracts (id, account_id, number, status, end_date, predecessor_id, \
             record, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
             ON CONFLICT (id) DO UPDATE SET number = excluded.number, status = excluded.status, \
             end_date = excluded.end_date, record = excluded.record, \
             updated_at = excluded.updated_at",
        )?
        .execute(params![
            c.id,
            c.account_id,
            c.number,
            c.status.as_str(),
            day(c.end_date),
            c.predecessor_id,
            serde_json::to_string(c)?,
            ts(c.created_at),
            ts(c.updated_at)
        ])?;
    }
    for l in &changes.new_lines {
        conn.prepare_cached(
            "INSERT INTO contract_lines (id, contract_id, record, created_at) \
             VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![
            l.id,
            l.contract_id,
            serde_json::to_string(l)?,
            ts(l.created_at)
        ])?;
    }
    for t in &changes.templates {
        conn.prepare_cached(
            "INSERT INTO entitlement_templates (id, name, record, created_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (id) DO UPDATE SET name = excluded.name, \
             record = excluded.record, updated_at = excluded.updated_at",
        )?
        .execute(params![
            t.id,
            t.terms.name,
            serde_json::to_string(t)?,
            ts(t.created_at),
            ts(t.updated_at)
        ])?;
    }
    for id in &changes.deleted_templates {
        conn.prepare_cached("DELETE FROM entitlement_templates WHERE id = ?1")?
            .execute([id])?;
    }
    for j in &changes.jobs {
        conn.prepare_cached(
            "INSERT INTO jobs (id, record, created_at, updated_at) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (id) DO UPDATE SET record = excluded.record, \
             updated_at = excluded.updated_at",
        )?
        .execute(params![
            j.id,
            serde_json::to_string(j)?,
            ts(j.created_at),
            ts(j.updated_at)
        ])?;
    }
    Ok(())
}

impl ContractTx for SqliteTx<'_> {
    async fn lock_contract(&self, id: &str) -> Res<Option<Contract>> {
        one(&self.tx, &format!("{CONTRACT} WHERE id = ?1"), id)
    }

    async fn contract_number_taken(&self, number: &str) -> Res<bool> {
        let found: Option<Contract> =
            one(&self.tx, &format!("{CONTRACT} WHERE number = ?1"), number)?;
        Ok(found.is_some())
    }

    async fn lock_due_contracts(&self, today: NaiveDate, limit: u32) -> Res<Vec<Contract>> {
        all(
            &mut *self.tx.prepare_cached(&format!(
                "{CONTRACT} WHERE status IN ('active', 'suspended') AND end_date < ?1 \
                 ORDER BY id LIMIT ?2"
            ))?,
            params![day(today), i64::from(limit)],
            record,
        )
    }

    async fn contract_entitlement_ids(&self, contract_id: &str) -> Res<BTreeSet<String>> {
        Ok(contract_entitlement_ids(&self.tx, contract_id)?
            .into_iter()
            .collect())
    }

    async fn load_contract_lines(&self, contract_id: &str) -> Res<Vec<ContractLine>> {
        all(
            &mut *self
                .tx
                .prepare_cached(&format!("{LINE} WHERE contract_id = ?1 ORDER BY id"))?,
            [contract_id],
            record,
        )
    }

    async fn load_contract_line(&self, id: &str) -> Res<Option<ContractLine>> {
        one(&self.tx, &format!("{LINE} WHERE id = ?1"), id)
    }

    async fn lock_template(&self, id: &str) -> Res<Option<EntitlementTemplate>> {
        one(&self.tx, &format!("{TEMPLATE} WHERE id = ?1"), id)
    }

    async fn template_named(&self, name: &str, except: Option<&str>) -> Res<Option<String>> {
        first(
            &mut *self.tx.prepare_cached(
                "SELECT id FROM entitlement_templates WHERE name = ?1 AND id <> ?2",
            )?,
            params![name, except.unwrap_or("")],
            |r| Ok(r.get(0)?),
        )
    }

    async fn existing_accounts(&self, ids: &BTreeSet<String>) -> Res<BTreeSet<String>> {
        existing(&self.tx, "accounts", ids)
    }

    async fn existing_products(&self, ids: &BTreeSet<String>) -> Res<BTreeSet<String>> {
        existing(&self.tx, "products", ids)
    }

    async fn default_of(&self, account_id: &str) -> Res<BTreeSet<String>> {
        let ids: Vec<String> = all(
            &mut *self.tx.prepare_cached(
                "SELECT id FROM entitlements WHERE account_id = ?1 AND is_default = 1 \
                 AND status IN ('draft', 'waiting', 'active', 'suspended')",
            )?,
            [account_id],
            |r| Ok(r.get(0)?),
        )?;
        Ok(ids.into_iter().collect())
    }

    async fn write_contracts(&self, changes: &ContractChanges) -> Res<()> {
        write(&self.tx, changes)
    }
}

/// A shared sequence's future over the writer thread's transaction.
pub(crate) type Sequence<'c, T> = LocalBoxFuture<'c, Res<T>>;

impl SqliteStore {
    /// Runs `sequence` in one write transaction on the writer thread.
    pub(crate) async fn write_tx<T: Send + 'static>(
        &self,
        sequence: impl for<'c> FnOnce(SqliteTx<'c>) -> Sequence<'c, T> + Send + 'static,
    ) -> StoreResult<T> {
        self.write(move |c, cache| transaction::run(c, cache, sequence))
            .await
    }

    /// Runs `sequence` in one write transaction at the moment `at`, which
    /// the writer thread rebuilds from owned parts.
    pub(crate) async fn write_at<T: Send + 'static>(
        &self,
        at: Moment<'_>,
        sequence: impl for<'c> FnOnce(SqliteTx<'c>, Moment<'c>) -> Sequence<'c, T> + Send + 'static,
    ) -> StoreResult<T> {
        let (ctx, today, now) = (at.audit.clone(), at.today, at.now);
        self.write(move |c, cache| {
            let at = Moment {
                audit: &ctx,
                today,
                now,
            };
            transaction::run(c, cache, |tx| sequence(tx, at))
        })
        .await
    }
}

#[async_trait]
impl ContractStore for SqliteStore {
    async fn insert_contract(
        &self,
        contract: &Contract,
        audit: &AuditContext,
        answer: Option<Answering<Contract>>,
    ) -> StoreResult<()> {
        let (contract, ctx) = (contract.clone(), audit.clone());
        self.write_tx(move |tx| {
            async move { sequences::insert_contract(tx, &contract, &ctx, answer.as_ref()).await }
                .boxed_local()
        })
        .await
    }

    async fn get_contract(&self, id: &str) -> StoreResult<Option<Contract>> {
        let id = id.to_string();
        self.read(move |c, _| one(c, &format!("{CONTRACT} WHERE id = ?1"), &id))
            .await
    }

    async fn get_contract_by_number(&self, number: &str) -> StoreResult<Option<Contract>> {
        let number = number.to_string();
        self.read(move |c, _| one(c, &format!("{CONTRACT} WHERE number = ?1"), &number))
            .await
    }

    async fn list_contracts(
        &self,
        filter: &ContractFilter,
        page: &Page,
    ) -> StoreResult<Vec<Contract>> {
        let (filter, page) = (filter.clone(), page.clone());
        self.read(move |c, _| list_contracts(c, &filter, &page))
            .await
    }

    async fn insert_contract_line(
        &self,
        line: &ContractLine,
        at: Moment<'_>,
        answer: Option<Answering<ContractLine>>,
    ) -> StoreResult<ContractLine> {
        let line = line.clone();
        self.write_at(at, move |tx, at| {
            async move { sequences::insert_contract_line(tx, &line, at, answer.as_ref()).await }
                .boxed_local()
        })
        .await
    }

    async fn get_contract_line(&self, id: &str) -> StoreResult<Option<ContractLine>> {
        let id = id.to_string();
        self.read(move |c, _| one(c, &format!("{LINE} WHERE id = ?1"), &id))
            .await
    }

    async fn list_contract_lines(
        &self,
        contract_id: &str,
        page: &Page,
    ) -> StoreResult<Vec<ContractLine>> {
        let (id, page) = (contract_id.to_string(), page.clone());
        self.read(move |c, _| list_lines(c, &id, &page)).await
    }

    async fn list_contract_entitlements(
        &self,
        contract_id: &str,
        page: &Page,
    ) -> StoreResult<Vec<EntitlementRecord>> {
        let (id, page) = (contract_id.to_string(), page.clone());
        self.read(move |c, cache| list_contract_entitlements(c, cache, &id, &page))
            .await
    }

    async fn contract_action(
        &self,
        act: &ContractAct,
        at: Moment<'_>,
        answer: Option<Answering<ContractActed>>,
    ) -> StoreResult<ContractActed> {
        let act = act.clone();
        self.write_at(at, move |tx, at| {
            async move { sequences::contract_action(tx, &act, at, answer.as_ref()).await }
                .boxed_local()
        })
        .await
    }

    async fn expire_contracts(
        &self,
        today: NaiveDate,
        now: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<u64> {
        self.write_tx(move |tx| {
            async move { sequences::expire_contracts(tx, today, now, limit).await }.boxed_local()
        })
        .await
    }

    async fn insert_template(
        &self,
        template: &EntitlementTemplate,
        audit: &AuditContext,
        answer: Option<Answering<EntitlementTemplate>>,
    ) -> StoreResult<()> {
        let (template, ctx) = (template.clone(), audit.clone());
        self.write_tx(move |tx| {
            async move { sequences::insert_template(tx, &template, &ctx, answer.as_ref()).await }
                .boxed_local()
        })
        .await
    }

    async fn update_template(
        &self,
        template: &EntitlementTemplate,
        audit: &AuditContext,
        answer: Option<Answering<EntitlementTemplate>>,
    ) -> StoreResult<EntitlementTemplate> {
        let (template, ctx) = (template.clone(), audit.clone());
        self.write_tx(move |tx| {
            async move { sequences::update_template(tx, &template, &ctx, answer.as_ref()).await }
                .boxed_local()
        })
        .await
    }

    async fn delete_template(
        &self,
        id: &str,
        at: Moment<'_>,
        answer: Option<Answering<bool>>,
    ) -> StoreResult<bool> {
        let id = id.to_string();
        self.write_at(at, move |tx, at| {
            async move { sequences::delete_template(tx, &id, at, answer.as_ref()).await }
                .boxed_local()
        })
        .await
    }

    async fn get_template(&self, id: &str) -> StoreResult<Option<EntitlementTemplate>> {
        let id = id.to_string();
        self.read(move |c, _| one(c, &format!("{TEMPLATE} WHERE id = ?1"), &id))
            .await
    }

    async fn get_template_by_name(&self, name: &str) -> StoreResult<Option<EntitlementTemplate>> {
        let name = name.to_string();
        self.read(move |c, _| one(c, &format!("{TEMPLATE} WHERE name = ?1"), &name))
            .await
    }

    async fn list_templates(&self, page: &Page) -> StoreResult<Vec<EntitlementTemplate>> {
        let page = page.clone();
        self.read(move |c, _| list_templates(c, &page)).await
    }

    async fn instantiate_template(
        &self,
        request: &Instantiation,
        at: Moment<'_>,
        answer: Option<Answering<Vec<EntitlementRecord>>>,
    ) -> StoreResult<Vec<EntitlementRecord>> {
        let request = request.clone();
        self.write_at(at, move |tx, at| {
            async move { sequences::instantiate_template(tx, &request, at, answer.as_ref()).await }
                .boxed_local()
        })
        .await
    }

    async fn existing_accounts(&self, ids: &[String]) -> StoreResult<BTreeSet<String>> {
        let ids: BTreeSet<String> = ids.iter().cloned().collect();
        self.read(move |c, _| existing(c, "accounts", &ids)).await
    }

    async fn make_default(
        &self,
        id: &str,
        at: Moment<'_>,
        answer: Option<Answering<EntitlementRecord>>,
    ) -> StoreResult<EntitlementRecord> {
        let id = id.to_string();
        self.write_at(at, move |tx, at| {
            async move { sequences::make_default(tx, &id, at, answer.as_ref()).await }.boxed_local()
        })
        .await
    }

    async fn insert_job(
        &self,
        job: &Job,
        audit: &AuditContext,
        answer: Option<Answering<Job>>,
    ) -> StoreResult<()> {
        let (job, ctx) = (job.clone(), audit.clone());
        self.write_tx(move |tx| {
            async move { sequences::insert_job(tx, &job, &ctx, answer.as_ref()).await }
                .boxed_local()
        })
        .await
    }

    async fn update_job(&self, job: &Job) -> StoreResult<()> {
        let job = job.clone();
        self.write_tx(move |tx| async move { sequences::update_job(tx, &job).await }.boxed_local())
            .await
    }

    async fn get_job(&self, id: &str) -> StoreResult<Option<Job>> {
        let id = id.to_string();
        self.read(move |c, _| one(c, &format!("{JOB} WHERE id = ?1"), &id))
            .await
    }
}
