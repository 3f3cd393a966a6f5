//! Contracts, contract lines, entitlement templates and jobs on
//! PostgreSQL: the rows (JSONB records beside their lookup columns), the
//! contract steps of a write transaction (`ContractTx`: row locks `FOR
//! UPDATE`; a new contract number or template name is serialized by an
//! advisory lock on it), and `ContractStore`, whose mutations run the
//! shared sequences in `in_tx!`.

use std::collections::BTreeSet;

use allot_store::contracts::{
    sequences, Contract, ContractAct, ContractActed, ContractChanges, ContractFilter, ContractLine,
    ContractStore, ContractTx, EntitlementTemplate, Instantiation, Job, Moment,
};
use allot_store::model::{EntitlementRecord, Page};
use allot_store::{Answering, AuditContext, StoreResult};
use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use deadpool_postgres::GenericClient;
use serde::de::DeserializeOwned;
use tokio_postgres::types::{Json, ToSql};
use tokio_postgres::Row;

use crate::error::{Error, Res};
use crate::rows::{self, RECORD_COLS};
use crate::transaction::{in_tx, PgTx};
use crate::PostgresStore;

fn record<T: DeserializeOwned>(r: &Row) -> Res<T> {
    let Json(value): Json<T> = r.try_get(0)?;
    Ok(value)
}

async fn one<C: GenericClient, T: DeserializeOwned>(
    c: &C,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Res<Option<T>> {
    let stmt = c.prepare_cached(sql).await?;
    c.query_opt(&stmt, params)
        .await?
        .as_ref()
        .map(record)
        .transpose()
}

async fn many<C: GenericClient, T: DeserializeOwned>(
    c: &C,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Res<Vec<T>> {
    let stmt = c.prepare_cached(sql).await?;
    c.query(&stmt, params).await?.iter().map(record).collect()
}

async fn ids<C: GenericClient>(
    c: &C,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Res<BTreeSet<String>> {
    let stmt = c.prepare_cached(sql).await?;
    let rows = c.query(&stmt, params).await?;
    rows.iter()
        .map(|r| r.try_get::<_, String>(0).map_err(Error::from))
        .collect()
}

/// Serializes the writers of one unique name (a contract number, a
/// template name) until commit: the check and the insert then see the same
/// table.
async fn lock_name<C: GenericClient>(c: &C, space: &str, name: &str) -> Res<()> {
    let stmt = c
        .prepare_cached("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .await?;
    c.execute(&stmt, &[&format!("{space}:{name}")]).await?;
    Ok(())
}

async fn write(tx: &deadpool_postgres::Transaction<'_>, changes: &ContractChanges) -> Res<()> {
    for c in &changes.contracts {
        let stmt = tx
            .prepare_cached(
                "INSERT INTO contracts (id, account_id, number, status, end_date,
                    predecessor_id, record, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                 ON CONFLICT (id) DO UPDATE SET number = EXCLUDED.number,
                    status = EXCLUDED.status, end_date = EXCLUDED.end_date,
                    record = EXCLUDED.record, updated_at = EXCLUDED.updated_at",
            )
            .await?;
        tx.execute(
            &stmt,
            &[
                &c.id,
                &c.account_id,
                &c.number,
                &c.status.as_str(),
                &c.end_date,
                &c.predecessor_id,
                &Json(c),
                &c.created_at,
                &c.updated_at,
            ],
        )
        .await?;
    }
    for l in &changes.new_lines {
        let stmt = tx
            .prepare_cached(
                "INSERT INTO contract_lines (id, contract_id, record, created_at)
                 VALUES ($1, $2, $3, $4)",
            )
            .await?;
        tx.execute(&stmt, &[&l.id, &l.contract_id, &Json(l), &l.created_at])
            .await?;
    }
    for t in &changes.templates {
        let stmt = tx
            .prepare_cached(
                "INSERT INTO entitlement_templates (id, name, record, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name,
                    record = EXCLUDED.record, updated_at = EXCLUDED.updated_at",
            )
            .await?;
        tx.execute(
            &stmt,
            &[&t.id, &t.terms.name, &Json(t), &t.created_at, &t.updated_at],
        )
        .await?;
    }
    if !changes.deleted_templates.is_empty() {
        let stmt = tx
            .prepare_cached("DELETE FROM entitlement_templates WHERE id = ANY($1)")
            .await?;
        tx.execute(&stmt, &[&changes.deleted_templates]).await?;
    }
    for j in &changes.jobs {
        let stmt = tx
            .prepare_cached(
                "INSERT INTO jobs (id, record, created_at, updated_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (id) DO UPDATE SET record = EXCLUDED.record,
                    updated_at = EXCLUDED.updated_at",
            )
            .await?;
        tx.execute(&stmt, &[&j.id, &Json(j), &j.created_at, &j.updated_at])
            .await?;
    }
    Ok(())
}

const CONTRACT_ENTITLEMENT_IDS: &str =
    "SELECT id FROM entitlements WHERE terms ->> 'contract_id' = $1";

impl ContractTx for PgTx<'_> {
    async fn lock_contract(&self, id: &str) -> Res<Option<Contract>> {
        one(
            &self.tx,
            "SELECT record FROM contracts WHERE id = $1 FOR UPDATE",
            &[&id],
        )
        .await
    }

    async fn contract_number_taken(&self, number: &str) -> Res<bool> {
        lock_name(&self.tx, "contract", number).await?;
        let found = ids(
            &self.tx,
            "SELECT id FROM contracts WHERE number = $1",
            &[&number],
        )
        .await?;
        Ok(!found.is_empty())
    }

    async fn lock_due_contracts(&self, today: NaiveDate, limit: u32) -> Res<Vec<Contract>> {
        many(
            &self.tx,
            "SELECT record FROM contracts
             WHERE status IN ('active', 'suspended') AND end_date < $1
             ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED",
            &[&today, &i64::from(limit)],
        )
        .await
    }

    async fn contract_entitlement_ids(&self, contract_id: &str) -> Res<BTreeSet<String>> {
        ids(&self.tx, CONTRACT_ENTITLEMENT_IDS, &[&contract_id]).await
    }

    async fn load_contract_lines(&self, contract_id: &str) -> Res<Vec<ContractLine>> {
        many(
            &self.tx,
            "SELECT record FROM contract_lines WHERE contract_id = $1 ORDER BY id",
            &[&contract_id],
        )
        .await
    }

    async fn load_contract_line(&self, id: &str) -> Res<Option<ContractLine>> {
        one(
            &self.tx,
            "SELECT record FROM contract_lines WHERE id = $1",
            &[&id],
        )
        .await
    }

    async fn lock_template(&self, id: &str) -> Res<Option<EntitlementTemplate>> {
        one(
            &self.tx,
            "SELECT record FROM entitlement_templates WHERE id = $1 FOR UPDATE",
            &[&id],
        )
        .await
    }

    async fn template_named(&self, name: &str, except: Option<&str>) -> Res<Option<String>> {
        lock_name(&self.tx, "template", name).await?;
        let found = ids(
            &self.tx,
            "SELECT id FROM entitlement_templates WHERE name = $1 AND id <> $2",
            &[&name, &except.unwrap_or("")],
        )
        .await?;
        Ok(found.into_iter().next())
    }

    async fn existing_accounts(&self, wanted: &BTreeSet<String>) -> Res<BTreeSet<String>> {
        let wanted: Vec<&str> = wanted.iter().map(String::as_str).collect();
        ids(
            &self.tx,
            "SELECT id FROM accounts WHERE id = ANY($1)",
            &[&wanted],
        )
        .await
    }

    async fn existing_products(&self, wanted: &BTreeSet<String>) -> Res<BTreeSet<String>> {
        let wanted: Vec<&str> = wanted.iter().map(String::as_str).collect();
        ids(
            &self.tx,
            "SELECT id FROM products WHERE id = ANY($1)",
            &[&wanted],
        )
        .await
    }

    async fn default_of(&self, account_id: &str) -> Res<BTreeSet<String>> {
        ids(
            &self.tx,
            "SELECT id FROM entitlements WHERE account_id = $1 AND is_default
             AND status IN ('draft', 'waiting', 'active', 'suspended')",
            &[&account_id],
        )
        .await
    }

    async fn write_contracts(&self, changes: &ContractChanges) -> Res<()> {
        write(&self.tx, changes).await
    }
}

#[async_trait]
impl ContractStore for PostgresStore {
    async fn insert_contract(
        &self,
        contract: &Contract,
        audit: &AuditContext,
        answer: Option<Answering<Contract>>,
    ) -> StoreResult<()> {
        Ok(in_tx!(
            self.pool,
            "insert_contract",
            Error::is_lock_conflict,
            |tx| { sequences::insert_contract(tx, contract, audit, answer.as_ref()) }
        )?)
    }

    async fn get_contract(&self, id: &str) -> StoreResult<Option<Contract>> {
        let client = self.pool.get().await.map_err(Error::from)?;
        Ok(one(
            &client,
            "SELECT record FROM contracts WHERE id = $1",
            &[&id],
        )
        .await?)
    }

    async fn get_contract_by_number(&self, number: &str) -> StoreResult<Option<Contract>> {
        let client = self.pool.get().await.map_err(Error::from)?;
        Ok(one(
            &client,
            "SELECT record FROM contracts WHERE number = $1",
            &[&number],
        )
        .await?)
    }

    async fn list_contracts(
        &self,
        filter: &ContractFilter,
        page: &Page,
    ) -> StoreResult<Vec<Contract>> {
        if page.limit == 0 {
            return Ok(Vec::new());
        }
        let client = self.pool.get().await.map_err(Error::from)?;
        let status = filter.stored_status.map(|s| s.as_str());
        Ok(many(
            &client,
            "SELECT record FROM contracts
             WHERE ($1::text IS NULL OR account_id = $1)
               AND ($2::text IS NULL OR status = $2)
               AND id > $3
             ORDER BY id LIMIT $4",
            &[
                &filter.account_id,
                &status,
                &rows::after(page),
                &rows::limit(page),
            ],
        )
        .await?)
    }

    async fn insert_contract_line(
        &self,
        line: &ContractLine,
        at: Moment<'_>,
        answer: Option<Answering<ContractLine>>,
    ) -> StoreResult<ContractLine> {
        Ok(in_tx!(
            self.pool,
            "insert_contract_line",
            Error::is_lock_conflict,
            |tx| { sequences::insert_contract_line(tx, line, at, answer.as_ref()) }
        )?)
    }

    async fn get_contract_line(&self, id: &str) -> StoreResult<Option<ContractLine>> {
        let client = self.pool.get().await.map_err(Error::from)?;
        Ok(one(
            &client,
            "SELECT record FROM contract_lines WHERE id = $1",
            &[&id],
        )
        .await?)
    }

    async fn list_contract_lines(
        &self,
        contract_id: &str,
        page: &Page,
    ) -> StoreResult<Vec<ContractLine>> {
        if page.limit == 0 {
            return Ok(Vec::new());
        }
        let client = self.pool.get().await.map_err(Error::from)?;
        Ok(many(
            &client,
            "SELECT record FROM contract_lines WHERE contract_id = $1 AND id > $2
             ORDER BY id LIMIT $3",
            &[&contract_id, &rows::after(page), &rows::limit(page)],
        )
        .await?)
    }

    async fn list_contract_entitlements(
        &self,
        contract_id: &str,
        page: &Page,
    ) -> StoreResult<Vec<EntitlementRecord>> {
        if page.limit == 0 {
            return Ok(Vec::new());
        }
        let client = self.pool.get().await.map_err(Error::from)?;
        let sql = format!(
            "SELECT {RECORD_COLS} FROM entitlements e
             JOIN balances b ON b.entitlement_id = e.id
             WHERE e.terms ->> 'contract_id' = $1 AND e.id > $2
             ORDER BY e.id LIMIT $3"
        );
        let stmt = client.prepare_cached(&sql).await.map_err(Error::from)?;
        let found = client
            .query(
                &stmt,
                &[&contract_id, &rows::after(page), &rows::limit(page)],
            )
            .await
            .map_err(Error::from)?;
        Ok(found.iter().map(rows::record).collect::<Res<Vec<_>>>()?)
    }

    async fn contract_action(
        &self,
        act: &ContractAct,
        at: Moment<'_>,
        answer: Option<Answering<ContractActed>>,
    ) -> StoreResult<ContractActed> {
        Ok(in_tx!(
            self.pool,
            "contract_action",
            Error::is_lock_conflict,
            |tx| { sequences::contract_action(tx, act, at, answer.as_ref()) }
        )?)
    }

    async fn expire_contracts(
        &self,
        today: NaiveDate,
        now: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<u64> {
        Ok(in_tx!(
            self.pool,
            "expire_contracts",
            Error::is_lock_conflict,
            |tx| { sequences::expire_contracts(tx, today, now, limit) }
        )?)
    }

    async fn insert_template(
        &self,
        template: &EntitlementTemplate,
        audit: &AuditContext,
        answer: Option<Answering<EntitlementTemplate>>,
    ) -> StoreResult<()> {
        Ok(in_tx!(
            self.pool,
            "insert_template",
            Error::is_lock_conflict,
            |tx| { sequences::insert_template(tx, template, audit, answer.as_ref()) }
        )?)
    }

    async fn update_template(
        &self,
        template: &EntitlementTemplate,
        audit: &AuditContext,
        answer: Option<Answering<EntitlementTemplate>>,
    ) -> StoreResult<EntitlementTemplate> {
        Ok(in_tx!(
            self.pool,
            "update_template",
            Error::is_lock_conflict,
            |tx| { sequences::update_template(tx, template, audit, answer.as_ref()) }
        )?)
    }

    async fn delete_template(
        &self,
        id: &str,
        at: Moment<'_>,
        answer: Option<Answering<bool>>,
    ) -> StoreResult<bool> {
        Ok(in_tx!(
            self.pool,
            "delete_template",
            Error::is_lock_conflict,
            |tx| { sequences::delete_template(tx, id, at, answer.as_ref()) }
        )?)
    }

    async fn get_template(&self, id: &str) -> StoreResult<Option<EntitlementTemplate>> {
        let client = self.pool.get().await.map_err(Error::from)?;
        Ok(one(
            &client,
            "SELECT record FROM entitlement_templates WHERE id = $1",
            &[&id],
        )
        .await?)
    }

    async fn get_template_by_name(&self, name: &str) -> StoreResult<Option<EntitlementTemplate>> {
        let client = self.pool.get().await.map_err(Error::from)?;
        Ok(one(
            &client,
            "SELECT record FROM entitlement_templates WHERE name = $1",
            &[&name],
        )
        .await?)
    }

    async fn list_templates(&self, page: &Page) -> StoreResult<Vec<EntitlementTemplate>> {
        if page.limit == 0 {
            return Ok(Vec::new());
        }
        let client = self.pool.get().await.map_err(Error::from)?;
        Ok(many(
            &client,
            "SELECT record FROM entitlement_templates WHERE id > $1 ORDER BY id LIMIT $2",
            &[&rows::after(page), &rows::limit(page)],
        )
        .await?)
    }

    async fn instantiate_template(
        &self,
        request: &Instantiation,
        at: Moment<'_>,
        answer: Option<Answering<Vec<EntitlementRecord>>>,
    ) -> StoreResult<Vec<EntitlementRecord>> {
        Ok(in_tx!(
            self.pool,
            "instantiate_template",
            Error::is_lock_conflict,
            |tx| { sequences::instantiate_template(tx, request, at, answer.as_ref()) }
        )?)
    }

    async fn existing_accounts(&self, wanted: &[String]) -> StoreResult<BTreeSet<String>> {
        let client = self.pool.get().await.map_err(Error::from)?;
        Ok(ids(
            &client,
            "SELECT id FROM accounts WHERE id = ANY($1)",
            &[&wanted],
        )
        .await?)
    }

    async fn make_default(
        &self,
        id: &str,
        at: Moment<'_>,
        answer: Option<Answering<EntitlementRecord>>,
    ) -> StoreResult<EntitlementRecord> {
        Ok(in_tx!(
            self.pool,
            "make_default",
            Error::is_lock_conflict,
            |tx| { sequences::make_default(tx, id, at, answer.as_ref()) }
        )?)
    }

    async fn insert_job(
        &self,
        job: &Job,
        audit: &AuditContext,
        answer: Option<Answering<Job>>,
    ) -> StoreResult<()> {
        Ok(in_tx!(
            self.pool,
            "insert_job",
            Error::is_lock_conflict,
            |tx| { sequences::insert_job(tx, job, audit, answer.as_ref()) }
        )?)
    }

    async fn update_job(&self, job: &Job) -> StoreResult<()> {
        Ok(in_tx!(
            self.pool,
            "update_job",
            Error::is_lock_conflict,
            |tx| { sequences::update_job(tx, job) }
        )?)
    }

    async fn get_job(&self, id: &str) -> StoreResult<Option<Job>> {
        let client = self.pool.get().await.map_err(Error::from)?;
        Ok(one(&client, "SELECT record FROM jobs WHERE id = $1", &[&id]).await?)
    }
}
