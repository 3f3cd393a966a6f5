//! Software entitlements on PostgreSQL: the rows (entitlements as JSONB
//! beside their filter columns), the software steps of a write transaction
//! (`SoftwareTx`: row locks `FOR UPDATE` in id order), and `SoftwareStore`,
//! whose mutations run the shared sequences in `in_tx!`.

use std::collections::BTreeSet;

use allot_core::software::counted::Lists;
use allot_core::software::reconcile::Installation;
use allot_core::software::SoftwareEntitlement;
use allot_store::model::Page;
use allot_store::software::{
    aggregate, sequences, Allocated, Allocation, ComplianceSnapshot, Moment, Reconciliation,
    ReconciliationInputs, ReconciliationRun, SoftwareChange, SoftwareChanges,
    SoftwareEntitlementRecord, SoftwareFilter, SoftwareModel, SoftwareStore, SoftwareTx,
    StoredItems, Upgraded, RECONCILIATION_VERSION,
};
use allot_store::{Answering, AuditContext, StoreResult};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use tokio_postgres::types::{Json, ToSql};
use tokio_postgres::Row;

use crate::error::{Error, Res};
use crate::rows;
use crate::software_aggregate::PgReads;
use crate::transaction::{in_tx, PgTx};
use crate::PostgresStore;

const MODEL_COLS: &str =
    "id, publisher, product, version, edition, platform, created_at, updated_at";

fn model(r: &Row) -> Res<SoftwareModel> {
    Ok(SoftwareModel {
        id: r.try_get(0)?,
        publisher: r.try_get(1)?,
        product: r.try_get(2)?,
        version: r.try_get(3)?,
        edition: r.try_get(4)?,
        platform: r.try_get(5)?,
        created_at: r.try_get(6)?,
        updated_at: r.try_get(7)?,
    })
}

const ENTITLEMENT_COLS: &str = "record, created_at, updated_at";

fn entitlement(r: &Row) -> Res<SoftwareEntitlementRecord> {
    let Json(entitlement): Json<SoftwareEntitlement> = r.try_get(0)?;
    Ok(SoftwareEntitlementRecord {
        entitlement,
        created_at: r.try_get(1)?,
        updated_at: r.try_get(2)?,
    })
}

const ALLOCATION_COLS: &str =
    "id, entitlement_id, user_name, device, quantity, license_key, created_at";

fn allocation(r: &Row) -> Res<Allocation> {
    Ok(Allocation {
        id: r.try_get(0)?,
        entitlement_id: r.try_get(1)?,
        user: r.try_get(2)?,
        device: r.try_get(3)?,
        quantity: r.try_get(4)?,
        license_key: r.try_get(5)?,
        created_at: r.try_get(6)?,
    })
}

const RECONCILIATION_COLS: &str = "id, software_model_id, run_at, items";

fn reconciliation(r: &Row) -> Res<Reconciliation> {
    let Json(stored): Json<StoredItems> = r.try_get(3)?;
    if stored.v != RECONCILIATION_VERSION {
        return Err(Error::data(format!(
            "unreadable reconciliation version {}",
            stored.v
        )));
    }
    Ok(Reconciliation {
        id: r.try_get(0)?,
        software_model_id: r.try_get(1)?,
        run_at: r.try_get(2)?,
        items: stored.items,
    })
}

async fn one<C: GenericClient, T>(
    c: &C,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
    f: fn(&Row) -> Res<T>,
) -> Res<Option<T>> {
    let stmt = c.prepare_cached(sql).await?;
    c.query_opt(&stmt, params)
        .await?
        .as_ref()
        .map(f)
        .transpose()
}

async fn many<C: GenericClient, T>(
    c: &C,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
    f: fn(&Row) -> Res<T>,
) -> Res<Vec<T>> {
    let stmt = c.prepare_cached(sql).await?;
    c.query(&stmt, params).await?.iter().map(f).collect()
}

/// The page's rows of `select`, after its cursor, by id.
async fn paged<C: GenericClient, T>(
    c: &C,
    select: &str,
    page: &Page,
    f: fn(&Row) -> Res<T>,
) -> Res<Vec<T>> {
    if page.limit == 0 {
        return Ok(Vec::new());
    }
    let sql = format!("{select} WHERE id > $1 ORDER BY id LIMIT $2");
    many(c, &sql, &[&rows::after(page), &rows::limit(page)], f).await
}

const UPSERT_MODEL: &str = "INSERT INTO software_models (id, publisher, product, version,
        edition, platform, created_at, updated_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
    ON CONFLICT (id) DO UPDATE SET publisher = EXCLUDED.publisher,
        product = EXCLUDED.product, version = EXCLUDED.version, edition = EXCLUDED.edition,
        platform = EXCLUDED.platform, updated_at = EXCLUDED.updated_at";

const UPSERT_ENTITLEMENT: &str = "INSERT INTO software_entitlements (id, software_model_id,
        account_id, record, created_at, updated_at)
    VALUES ($1, $2, $3, $4, $5, $6)
    ON CONFLICT (id) DO UPDATE SET software_model_id = EXCLUDED.software_model_id,
        account_id = EXCLUDED.account_id, record = EXCLUDED.record,
        updated_at = EXCLUDED.updated_at";

const INSERT_ALLOCATION: &str = "INSERT INTO software_allocations (id, entitlement_id,
        user_name, device, quantity, license_key, created_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7)";

/// A known (model, device) moves forward only: an older sighting changes nothing.
const UPSERT_INSTALLATIONS: &str = "INSERT INTO installations (software_model_id, device,
        user_name, cores, seen_at)
    SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::int8[], $5::timestamptz[])
    ON CONFLICT (software_model_id, device) DO UPDATE SET user_name = EXCLUDED.user_name,
        cores = EXCLUDED.cores, seen_at = EXCLUDED.seen_at
    WHERE EXCLUDED.seen_at >= installations.seen_at";

async fn write(tx: &deadpool_postgres::Transaction<'_>, changes: &SoftwareChanges) -> Res<()> {
    for m in &changes.models {
        let stmt = tx.prepare_cached(UPSERT_MODEL).await?;
        tx.execute(
            &stmt,
            &[
                &m.id,
                &m.publisher,
                &m.product,
                &m.version,
                &m.edition,
                &m.platform,
                &m.created_at,
                &m.updated_at,
            ],
        )
        .await?;
    }
    for r in &changes.entitlements {
        let e = &r.entitlement;
        let stmt = tx.prepare_cached(UPSERT_ENTITLEMENT).await?;
        tx.execute(
            &stmt,
            &[
                &e.id,
                &e.terms.software_model_id,
                &e.terms.account_id,
                &Json(e),
                &r.created_at,
                &r.updated_at,
            ],
        )
        .await?;
    }
    for a in &changes.new_allocations {
        let stmt = tx.prepare_cached(INSERT_ALLOCATION).await?;
        tx.execute(
            &stmt,
            &[
                &a.id,
                &a.entitlement_id,
                &a.user,
                &a.device,
                &a.quantity,
                &a.license_key,
                &a.created_at,
            ],
        )
        .await?;
    }
    if !changes.freed_allocations.is_empty() {
        let stmt = tx
            .prepare_cached("DELETE FROM software_allocations WHERE id = ANY($1)")
            .await?;
        tx.execute(&stmt, &[&changes.freed_allocations]).await?;
    }
    if !changes.installations.is_empty() {
        write_installations(tx, &changes.installations).await?;
    }
    for r in &changes.reconciliations {
        let stored = StoredItems {
            v: RECONCILIATION_VERSION,
            items: &r.items,
        };
        let stmt = tx
            .prepare_cached(
                "INSERT INTO reconciliations (id, software_model_id, run_at, items)
                 VALUES ($1, $2, $3, $4)",
            )
            .await?;
        tx.execute(
            &stmt,
            &[&r.id, &r.software_model_id, &r.run_at, &Json(&stored)],
        )
        .await?;
    }
    Ok(())
}

async fn write_installations(
    tx: &deadpool_postgres::Transaction<'_>,
    installations: &[Installation],
) -> Res<()> {
    // One row per (model, device) per statement: ON CONFLICT may not touch
    // a row twice. The last sighting of a pair in the request wins.
    let mut latest: std::collections::BTreeMap<(&str, &str), &Installation> =
        std::collections::BTreeMap::new();
    for i in installations {
        let key = (i.software_model_id.as_str(), i.device.as_str());
        let keep = latest.get(&key).is_none_or(|old| old.seen_at <= i.seen_at);
        if keep {
            latest.insert(key, i);
        }
    }
    let rows: Vec<&Installation> = latest.into_values().collect();
    let models: Vec<&str> = rows.iter().map(|i| i.software_model_id.as_str()).collect();
    let devices: Vec<&str> = rows.iter().map(|i| i.device.as_str()).collect();
    let users: Vec<Option<&str>> = rows.iter().map(|i| i.user.as_deref()).collect();
    let cores: Vec<Option<i64>> = rows.iter().map(|i| i.cores).collect();
    let seen: Vec<DateTime<Utc>> = rows.iter().map(|i| i.seen_at).collect();
    let stmt = tx.prepare_cached(UPSERT_INSTALLATIONS).await?;
    tx.execute(&stmt, &[&models, &devices, &users, &cores, &seen])
        .await?;
    Ok(())
}

impl SoftwareTx for PgTx<'_> {
    async fn lock_software_entitlements(
        &self,
        ids: &BTreeSet<String>,
    ) -> Res<Vec<SoftwareEntitlementRecord>> {
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        let sql = format!(
            "SELECT {ENTITLEMENT_COLS} FROM software_entitlements
             WHERE id = ANY($1) ORDER BY id FOR UPDATE"
        );
        many(&self.tx, &sql, &[&ids], entitlement).await
    }

    async fn lock_software_model(&self, id: &str) -> Res<Option<SoftwareModel>> {
        let sql = format!("SELECT {MODEL_COLS} FROM software_models WHERE id = $1 FOR UPDATE");
        one(&self.tx, &sql, &[&id], model).await
    }

    async fn load_allocation(&self, id: &str) -> Res<Option<Allocation>> {
        let sql = format!("SELECT {ALLOCATION_COLS} FROM software_allocations WHERE id = $1");
        one(&self.tx, &sql, &[&id], allocation).await
    }

    async fn load_reconciliation_inputs(
        &self,
        stale_before: DateTime<Utc>,
    ) -> Res<ReconciliationInputs> {
        aggregate::reconciliation_inputs(&PgReads(&self.tx), stale_before, Lists::Names).await
    }

    async fn lock_reconciliations(&self) -> Res<()> {
        let stmt = self
            .tx
            .prepare_cached("SELECT pg_advisory_xact_lock($1)")
            .await?;
        self.tx.execute(&stmt, &[&RECONCILIATION_LOCK]).await?;
        Ok(())
    }

    async fn latest_reconciliation(&self) -> Res<Option<Reconciliation>> {
        let sql =
            format!("SELECT {RECONCILIATION_COLS} FROM reconciliations ORDER BY id DESC LIMIT 1");
        one(&self.tx, &sql, &[], reconciliation).await
    }

    async fn write_software(&self, changes: &SoftwareChanges) -> Res<()> {
        write(&self.tx, changes).await
    }
}

/// Any constant shared by every instance: it serializes reconciliations.
const RECONCILIATION_LOCK: i64 = 0x616c_6c6f_745f_7265;

#[async_trait]
impl SoftwareStore for PostgresStore {
    async fn insert_software_model(
        &self,
        model: &SoftwareModel,
        audit: &AuditContext,
        answer: Option<Answering<SoftwareModel>>,
    ) -> StoreResult<()> {
        Ok(in_tx!(
            self.pool,
            "insert_software_model",
            Error::is_lock_conflict,
            |tx| { sequences::insert_model(tx, model, audit, answer.as_ref()) }
        )?)
    }

    async fn update_software_model(
        &self,
        model: &SoftwareModel,
        audit: &AuditContext,
        answer: Option<Answering<SoftwareModel>>,
    ) -> StoreResult<SoftwareModel> {
        Ok(in_tx!(
            self.pool,
            "update_software_model",
            Error::is_lock_conflict,
            |tx| { sequences::update_model(tx, model, audit, answer.as_ref()) }
        )?)
    }

    async fn get_software_model(&self, id: &str) -> StoreResult<Option<SoftwareModel>> {
        let client = self.pool.get().await.map_err(Error::from)?;
        let sql = format!("SELECT {MODEL_COLS} FROM software_models WHERE id = $1");
        Ok(one(&client, &sql, &[&id], model).await?)
    }

    async fn list_software_models(&self, page: &Page) -> StoreResult<Vec<SoftwareModel>> {
        let client = self.pool.get().await.map_err(Error::from)?;
        let select = format!("SELECT {MODEL_COLS} FROM software_models");
        Ok(paged(&client, &select, page, model).await?)
    }

    async fn insert_software_entitlement(
        &self,
        record: &SoftwareEntitlementRecord,
        audit: &AuditContext,
        answer: Option<Answering<SoftwareEntitlementRecord>>,
    ) -> StoreResult<()> {
        Ok(in_tx!(
            self.pool,
            "insert_software_entitlement",
            Error::is_lock_conflict,
            |tx| { sequences::insert_entitlement(tx, record, audit, answer.as_ref()) }
        )?)
    }

    async fn get_software_entitlement(
        &self,
        id: &str,
    ) -> StoreResult<Option<SoftwareEntitlementRecord>> {
        let client = self.pool.get().await.map_err(Error::from)?;
        let sql = format!("SELECT {ENTITLEMENT_COLS} FROM software_entitlements WHERE id = $1");
        Ok(one(&client, &sql, &[&id], entitlement).await?)
    }

    async fn list_software_entitlements(
        &self,
        filter: &SoftwareFilter,
        page: &Page,
    ) -> StoreResult<Vec<SoftwareEntitlementRecord>> {
        if page.limit == 0 {
            return Ok(Vec::new());
        }
        let client = self.pool.get().await.map_err(Error::from)?;
        // A filter not given matches everything (NULL = NULL is unknown, so
        // `IS NULL` on the parameter stands in for "not given").
        let sql = format!(
            "SELECT {ENTITLEMENT_COLS} FROM software_entitlements
             WHERE id > $1 AND ($2::text IS NULL OR account_id = $2)
               AND ($3::text IS NULL OR software_model_id = $3)
             ORDER BY id LIMIT $4"
        );
        let params: [&(dyn ToSql + Sync); 4] = [
            &rows::after(page),
            &filter.account_id,
            &filter.software_model_id,
            &rows::limit(page),
        ];
        Ok(many(&client, &sql, &params, entitlement).await?)
    }

    async fn change_software_entitlement(
        &self,
        id: &str,
        change: &SoftwareChange,
        at: Moment<'_>,
        answer: Option<Answering<SoftwareEntitlementRecord>>,
    ) -> StoreResult<SoftwareEntitlementRecord> {
        Ok(in_tx!(
            self.pool,
            "change_software_entitlement",
            Error::is_lock_conflict,
            |tx| { sequences::change(tx, id, change, at, answer.as_ref()) }
        )?)
    }

    async fn allocate_software(
        &self,
        allocation: &Allocation,
        at: Moment<'_>,
        answer: Option<Answering<Allocated>>,
    ) -> StoreResult<Allocated> {
        Ok(in_tx!(
            self.pool,
            "allocate_software",
            Error::is_lock_conflict,
            |tx| { sequences::allocate(tx, allocation, at, answer.as_ref()) }
        )?)
    }

    async fn free_software(
        &self,
        entitlement_id: &str,
        allocation_id: &str,
        at: Moment<'_>,
        answer: Option<Answering<SoftwareEntitlementRecord>>,
    ) -> StoreResult<SoftwareEntitlementRecord> {
        Ok(in_tx!(
            self.pool,
            "free_software",
            Error::is_lock_conflict,
            |tx| { sequences::free(tx, entitlement_id, allocation_id, at, answer.as_ref()) }
        )?)
    }

    async fn list_allocations(
        &self,
        entitlement_id: &str,
        page: &Page,
    ) -> StoreResult<Vec<Allocation>> {
        if page.limit == 0 {
            return Ok(Vec::new());
        }
        let client = self.pool.get().await.map_err(Error::from)?;
        let sql = format!(
            "SELECT {ALLOCATION_COLS} FROM software_allocations
             WHERE entitlement_id = $1 AND id > $2 ORDER BY id LIMIT $3"
        );
        let params: [&(dyn ToSql + Sync); 3] =
            [&entitlement_id, &rows::after(page), &rows::limit(page)];
        Ok(many(&client, &sql, &params, allocation).await?)
    }

    async fn upgrade_software(
        &self,
        to_id: &str,
        from_id: &str,
        rights: i64,
        at: Moment<'_>,
        answer: Option<Answering<Upgraded>>,
    ) -> StoreResult<Upgraded> {
        Ok(in_tx!(
            self.pool,
            "upgrade_software",
            Error::is_lock_conflict,
            |tx| { sequences::upgrade(tx, to_id, from_id, rights, at, answer.as_ref()) }
        )?)
    }

    async fn record_installations(
        &self,
        installations: &[Installation],
        at: Moment<'_>,
        answer: Option<Answering<usize>>,
    ) -> StoreResult<usize> {
        Ok(in_tx!(
            self.pool,
            "record_installations",
            Error::is_lock_conflict,
            |tx| { sequences::record_installations(tx, installations, at, answer.as_ref()) }
        )?)
    }

    async fn run_reconciliation(
        &self,
        run: &ReconciliationRun<'_>,
        at: Moment<'_>,
        answer: Option<Answering<Reconciliation>>,
    ) -> StoreResult<Reconciliation> {
        Ok(in_tx!(
            self.pool,
            "run_reconciliation",
            Error::is_lock_conflict,
            |tx| { sequences::run_reconciliation(tx, run, at, answer.as_ref()) }
        )?)
    }

    async fn reconcile_if_due(
        &self,
        run: &ReconciliationRun<'_>,
        every: chrono::Duration,
        at: Moment<'_>,
    ) -> StoreResult<Option<Reconciliation>> {
        Ok(in_tx!(
            self.pool,
            "reconcile_if_due",
            Error::is_lock_conflict,
            |tx| { sequences::reconcile_if_due(tx, run, every, at) }
        )?)
    }

    async fn get_reconciliation(&self, id: &str) -> StoreResult<Option<Reconciliation>> {
        let client = self.pool.get().await.map_err(Error::from)?;
        let sql = format!("SELECT {RECONCILIATION_COLS} FROM reconciliations WHERE id = $1");
        Ok(one(&client, &sql, &[&id], reconciliation).await?)
    }

    async fn list_reconciliations(&self, page: &Page) -> StoreResult<Vec<Reconciliation>> {
        let client = self.pool.get().await.map_err(Error::from)?;
        let select = format!("SELECT {RECONCILIATION_COLS} FROM reconciliations");
        Ok(paged(&client, &select, page, reconciliation).await?)
    }

    async fn compliance_snapshot(
        &self,
        stale_before: DateTime<Utc>,
    ) -> StoreResult<ComplianceSnapshot> {
        let mut client = self.pool.get().await.map_err(Error::from)?;
        // One snapshot (REPEATABLE READ, read only): no row lock taken.
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(Error::from)?;
        let inputs =
            aggregate::reconciliation_inputs(&PgReads(&tx), stale_before, Lists::CountsOnly)
                .await?;
        let models = many(
            &tx,
            &format!("SELECT {MODEL_COLS} FROM software_models"),
            &[],
            model,
        )
        .await?;
        tx.commit().await.map_err(Error::from)?;
        Ok(ComplianceSnapshot { inputs, models })
    }
}
