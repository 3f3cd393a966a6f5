//! Software entitlements on SQLite: the rows (entitlements as JSON beside
//! their filter columns), the software steps of a write transaction
//! (`SoftwareTx`; the database lock is held from `BEGIN IMMEDIATE`, so a
//! "lock" is a read), and `SoftwareStore`, whose mutations run the shared
//! sequences on the writer thread.

use std::collections::BTreeSet;

use allot_core::software::counted::Lists;
use allot_core::software::reconcile::Installation;
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
use futures::FutureExt;
use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection, Row};

use crate::convert::{all, first, paged, ts, ts_at};
use crate::error::{corrupt, Res};
use crate::software_aggregate::SqliteReads;
use crate::transaction::SqliteTx;
use crate::SqliteStore;

const MODEL: &str = "SELECT id, publisher, product, version, edition, platform, created_at, \
    updated_at FROM software_models";

fn model(row: &Row) -> Res<SoftwareModel> {
    Ok(SoftwareModel {
        id: row.get(0)?,
        publisher: row.get(1)?,
        product: row.get(2)?,
        version: row.get(3)?,
        edition: row.get(4)?,
        platform: row.get(5)?,
        created_at: ts_at(row, 6)?,
        updated_at: ts_at(row, 7)?,
    })
}

fn get_model(conn: &Connection, id: &str) -> Res<Option<SoftwareModel>> {
    first(
        &mut *conn.prepare_cached(&format!("{MODEL} WHERE id = ?1"))?,
        [id],
        model,
    )
}

fn list_models(conn: &Connection, page: &Page) -> Res<Vec<SoftwareModel>> {
    if page.limit == 0 {
        return Ok(Vec::new());
    }
    let mut args = Vec::new();
    let sql = paged(MODEL, &[], "id", page, &mut args);
    all(
        &mut *conn.prepare_cached(&sql)?,
        params_from_iter(args),
        model,
    )
}

const ENTITLEMENT: &str = "SELECT record, created_at, updated_at FROM software_entitlements";

fn entitlement(row: &Row) -> Res<SoftwareEntitlementRecord> {
    Ok(SoftwareEntitlementRecord {
        entitlement: serde_json::from_str(row.get_ref(0)?.as_str()?)?,
        created_at: ts_at(row, 1)?,
        updated_at: ts_at(row, 2)?,
    })
}

fn get_entitlement(conn: &Connection, id: &str) -> Res<Option<SoftwareEntitlementRecord>> {
    first(
        &mut *conn.prepare_cached(&format!("{ENTITLEMENT} WHERE id = ?1"))?,
        [id],
        entitlement,
    )
}

fn list_entitlements(
    conn: &Connection,
    filter: &SoftwareFilter,
    page: &Page,
) -> Res<Vec<SoftwareEntitlementRecord>> {
    if page.limit == 0 {
        return Ok(Vec::new());
    }
    let mut args = Vec::new();
    let mut conditions = Vec::new();
    if let Some(a) = &filter.account_id {
        conditions.push("account_id = ?");
        args.push(Value::Text(a.clone()));
    }
    if let Some(m) = &filter.software_model_id {
        conditions.push("software_model_id = ?");
        args.push(Value::Text(m.clone()));
    }
    let sql = paged(ENTITLEMENT, &conditions, "id", page, &mut args);
    all(
        &mut *conn.prepare_cached(&sql)?,
        params_from_iter(args),
        entitlement,
    )
}

const ALLOCATION: &str = "SELECT id, entitlement_id, user_name, device, quantity, license_key, \
    created_at FROM software_allocations";

fn allocation(row: &Row) -> Res<Allocation> {
    Ok(Allocation {
        id: row.get(0)?,
        entitlement_id: row.get(1)?,
        user: row.get(2)?,
        device: row.get(3)?,
        quantity: row.get(4)?,
        license_key: row.get(5)?,
        created_at: ts_at(row, 6)?,
    })
}

fn list_allocations(conn: &Connection, entitlement_id: &str, page: &Page) -> Res<Vec<Allocation>> {
    if page.limit == 0 {
        return Ok(Vec::new());
    }
    let mut args = vec![Value::Text(entitlement_id.to_string())];
    let sql = paged(ALLOCATION, &["entitlement_id = ?"], "id", page, &mut args);
    all(
        &mut *conn.prepare_cached(&sql)?,
        params_from_iter(args),
        allocation,
    )
}

const RECONCILIATION: &str = "SELECT id, software_model_id, run_at, items FROM reconciliations";

fn reconciliation(row: &Row) -> Res<Reconciliation> {
    let stored: StoredItems = serde_json::from_str(row.get_ref(3)?.as_str()?)?;
    if stored.v != RECONCILIATION_VERSION {
        return Err(corrupt("reconciliation version", &stored.v.to_string()));
    }
    Ok(Reconciliation {
        id: row.get(0)?,
        software_model_id: row.get(1)?,
        run_at: ts_at(row, 2)?,
        items: stored.items,
    })
}

fn write(conn: &Connection, changes: &SoftwareChanges) -> Res<()> {
    for m in &changes.models {
        conn.prepare_cached(
            "INSERT INTO software_models (id, publisher, product, version, edition, platform, \
             created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
             ON CONFLICT (id) DO UPDATE SET publisher = excluded.publisher, \
             product = excluded.product, version = excluded.version, edition = excluded.edition, \
             platform = excluded.platform, updated_at = excluded.updated_at",
        )?
        .execute(params![
            m.id,
            m.publisher,
            m.product,
            m.version,
            m.edition,
            m.platform,
            ts(m.created_at),
            ts(m.updated_at)
        ])?;
    }
    for r in &changes.entitlements {
        let e = &r.entitlement;
        conn.prepare_cached(
            "INSERT INTO software_entitlements (id, software_model_id, account_id, record, \
             created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
             ON CONFLICT (id) DO UPDATE SET software_model_id = excluded.software_model_id, \
             account_id = excluded.account_id, record = excluded.record, \
             updated_at = excluded.updated_at",
        )?
        .execute(params![
            e.id,
            e.terms.software_model_id,
            e.terms.account_id,
            serde_json::to_string(e)?,
            ts(r.created_at),
            ts(r.updated_at)
        ])?;
    }
    for a in &changes.new_allocations {
        conn.prepare_cached(
            "INSERT INTO software_allocations (id, entitlement_id, user_name, device, quantity, \
             license_key, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?
        .execute(params![
            a.id,
            a.entitlement_id,
            a.user,
            a.device,
            a.quantity,
            a.license_key,
            ts(a.created_at)
        ])?;
    }
    for id in &changes.freed_allocations {
        conn.prepare_cached("DELETE FROM software_allocations WHERE id = ?1")?
            .execute([id])?;
    }
    for i in &changes.installations {
        conn.prepare_cached(
            "INSERT INTO installations (software_model_id, device, user_name, cores, seen_at) \
             VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (software_model_id, device) DO UPDATE \
             SET user_name = excluded.user_name, cores = excluded.cores, seen_at = excluded.seen_at \
             WHERE excluded.seen_at >= installations.seen_at",
        )?
        .execute(params![
            i.software_model_id,
            i.device,
            i.user,
            i.cores,
            ts(i.seen_at)
        ])?;
    }
    for r in &changes.reconciliations {
        let stored = StoredItems {
            v: RECONCILIATION_VERSION,
            items: &r.items,
        };
        conn.prepare_cached(
            "INSERT INTO reconciliations (id, software_model_id, run_at, items) \
             VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![
            r.id,
            r.software_model_id,
            ts(r.run_at),
            serde_json::to_string(&stored)?
        ])?;
    }
    Ok(())
}

impl SoftwareTx for SqliteTx<'_> {
    async fn lock_software_entitlements(
        &self,
        ids: &BTreeSet<String>,
    ) -> Res<Vec<SoftwareEntitlementRecord>> {
        let mut found = Vec::with_capacity(ids.len());
        for id in ids {
            found.extend(get_entitlement(&self.tx, id)?);
        }
        Ok(found)
    }

    async fn lock_software_model(&self, id: &str) -> Res<Option<SoftwareModel>> {
        get_model(&self.tx, id)
    }

    async fn load_allocation(&self, id: &str) -> Res<Option<Allocation>> {
        first(
            &mut *self
                .tx
                .prepare_cached(&format!("{ALLOCATION} WHERE id = ?1"))?,
            [id],
            allocation,
        )
    }

    async fn load_reconciliation_inputs(
        &self,
        stale_before: DateTime<Utc>,
    ) -> Res<ReconciliationInputs> {
        aggregate::reconciliation_inputs(&SqliteReads(&self.tx), stale_before, Lists::Names).await
    }

    async fn lock_reconciliations(&self) -> Res<()> {
        // BEGIN IMMEDIATE already holds the whole database.
        Ok(())
    }

    async fn latest_reconciliation(&self) -> Res<Option<Reconciliation>> {
        first(
            &mut *self
                .tx
                .prepare_cached(&format!("{RECONCILIATION} ORDER BY id DESC LIMIT 1"))?,
            [],
            reconciliation,
        )
    }

    async fn write_software(&self, changes: &SoftwareChanges) -> Res<()> {
        write(&self.tx, changes)
    }
}

#[async_trait]
impl SoftwareStore for SqliteStore {
    async fn insert_software_model(
        &self,
        model: &SoftwareModel,
        audit: &AuditContext,
        answer: Option<Answering<SoftwareModel>>,
    ) -> StoreResult<()> {
        let (model, ctx) = (model.clone(), audit.clone());
        self.write_tx(move |tx| {
            async move { sequences::insert_model(tx, &model, &ctx, answer.as_ref()).await }
                .boxed_local()
        })
        .await
    }

    async fn update_software_model(
        &self,
        model: &SoftwareModel,
        audit: &AuditContext,
        answer: Option<Answering<SoftwareModel>>,
    ) -> StoreResult<SoftwareModel> {
        let (model, ctx) = (model.clone(), audit.clone());
        self.write_tx(move |tx| {
            async move { sequences::update_model(tx, &model, &ctx, answer.as_ref()).await }
                .boxed_local()
        })
        .await
    }

    async fn get_software_model(&self, id: &str) -> StoreResult<Option<SoftwareModel>> {
        let id = id.to_string();
        self.read(move |c, _| get_model(c, &id)).await
    }

    async fn list_software_models(&self, page: &Page) -> StoreResult<Vec<SoftwareModel>> {
        let page = page.clone();
        self.read(move |c, _| list_models(c, &page)).await
    }

    async fn insert_software_entitlement(
        &self,
        record: &SoftwareEntitlementRecord,
        audit: &AuditContext,
        answer: Option<Answering<SoftwareEntitlementRecord>>,
    ) -> StoreResult<()> {
        let (record, ctx) = (record.clone(), audit.clone());
        self.write_tx(move |tx| {
            async move { sequences::insert_entitlement(tx, &record, &ctx, answer.as_ref()).await }
                .boxed_local()
        })
        .await
    }

    async fn get_software_entitlement(
        &self,
        id: &str,
    ) -> StoreResult<Option<SoftwareEntitlementRecord>> {
        let id = id.to_string();
        self.read(move |c, _| get_entitlement(c, &id)).await
    }

    async fn list_software_entitlements(
        &self,
        filter: &SoftwareFilter,
        page: &Page,
    ) -> StoreResult<Vec<SoftwareEntitlementRecord>> {
        let (filter, page) = (filter.clone(), page.clone());
        self.read(move |c, _| list_entitlements(c, &filter, &page))
            .await
    }

    async fn change_software_entitlement(
        &self,
        id: &str,
        change: &SoftwareChange,
        at: Moment<'_>,
        answer: Option<Answering<SoftwareEntitlementRecord>>,
    ) -> StoreResult<SoftwareEntitlementRecord> {
        let (id, change) = (id.to_string(), change.clone());
        self.write_at(at, move |tx, at| {
            async move { sequences::change(tx, &id, &change, at, answer.as_ref()).await }
                .boxed_local()
        })
        .await
    }

    async fn allocate_software(
        &self,
        allocation: &Allocation,
        at: Moment<'_>,
        answer: Option<Answering<Allocated>>,
    ) -> StoreResult<Allocated> {
        let allocation = allocation.clone();
        self.write_at(at, move |tx, at| {
            async move { sequences::allocate(tx, &allocation, at, answer.as_ref()).await }
                .boxed_local()
        })
        .await
    }

    async fn free_software(
        &self,
        entitlement_id: &str,
        allocation_id: &str,
        at: Moment<'_>,
        answer: Option<Answering<SoftwareEntitlementRecord>>,
    ) -> StoreResult<SoftwareEntitlementRecord> {
        let (entitlement_id, allocation_id) =
            (entitlement_id.to_string(), allocation_id.to_string());
        self.write_at(at, move |tx, at| {
            async move {
                sequences::free(tx, &entitlement_id, &allocation_id, at, answer.as_ref()).await
            }
            .boxed_local()
        })
        .await
    }

    async fn list_allocations(
        &self,
        entitlement_id: &str,
        page: &Page,
    ) -> StoreResult<Vec<Allocation>> {
        let (id, page) = (entitlement_id.to_string(), page.clone());
        self.read(move |c, _| list_allocations(c, &id, &page)).await
    }

    async fn upgrade_software(
        &self,
        to_id: &str,
        from_id: &str,
        rights: i64,
        at: Moment<'_>,
        answer: Option<Answering<Upgraded>>,
    ) -> StoreResult<Upgraded> {
        let (to_id, from_id) = (to_id.to_string(), from_id.to_string());
        self.write_at(at, move |tx, at| {
            async move {
                sequences::upgrade(tx, &to_id, &from_id, rights, at, answer.as_ref()).await
            }
            .boxed_local()
        })
        .await
    }

    async fn record_installations(
        &self,
        installations: &[Installation],
        at: Moment<'_>,
        answer: Option<Answering<usize>>,
    ) -> StoreResult<usize> {
        let installations = installations.to_vec();
        self.write_at(at, move |tx, at| {
            async move {
                sequences::record_installations(tx, &installations, at, answer.as_ref()).await
            }
            .boxed_local()
        })
        .await
    }

    async fn run_reconciliation(
        &self,
        run: &ReconciliationRun<'_>,
        at: Moment<'_>,
        answer: Option<Answering<Reconciliation>>,
    ) -> StoreResult<Reconciliation> {
        let (id, model) = (
            run.id.to_string(),
            run.software_model_id.map(str::to_string),
        );
        let stale_before = run.stale_before;
        self.write_at(at, move |tx, at| {
            async move {
                let run = ReconciliationRun {
                    id: &id,
                    software_model_id: model.as_deref(),
                    stale_before,
                };
                sequences::run_reconciliation(tx, &run, at, answer.as_ref()).await
            }
            .boxed_local()
        })
        .await
    }

    async fn reconcile_if_due(
        &self,
        run: &ReconciliationRun<'_>,
        every: chrono::Duration,
        at: Moment<'_>,
    ) -> StoreResult<Option<Reconciliation>> {
        let id = run.id.to_string();
        let stale_before = run.stale_before;
        self.write_at(at, move |tx, at| {
            async move {
                let run = ReconciliationRun {
                    id: &id,
                    software_model_id: None,
                    stale_before,
                };
                sequences::reconcile_if_due(tx, &run, every, at).await
            }
            .boxed_local()
        })
        .await
    }

    async fn get_reconciliation(&self, id: &str) -> StoreResult<Option<Reconciliation>> {
        let id = id.to_string();
        self.read(move |c, _| {
            first(
                &mut *c.prepare_cached(&format!("{RECONCILIATION} WHERE id = ?1"))?,
                [&id],
                reconciliation,
            )
        })
        .await
    }

    async fn list_reconciliations(&self, page: &Page) -> StoreResult<Vec<Reconciliation>> {
        let page = page.clone();
        self.read(move |c, _| {
            if page.limit == 0 {
                return Ok(Vec::new());
            }
            let mut args = Vec::new();
            let sql = paged(RECONCILIATION, &[], "id", &page, &mut args);
            all(
                &mut *c.prepare_cached(&sql)?,
                params_from_iter(args),
                reconciliation,
            )
        })
        .await
    }

    async fn compliance_snapshot(
        &self,
        stale_before: DateTime<Utc>,
    ) -> StoreResult<ComplianceSnapshot> {
        self.read(move |c, _| {
            // One read transaction: a WAL snapshot, no lock a writer waits on.
            c.execute_batch("BEGIN DEFERRED")?;
            let read = (|| {
                // The reads never wait (see `SqliteReads`).
                let inputs = futures::executor::block_on(aggregate::reconciliation_inputs(
                    &SqliteReads(c),
                    stale_before,
                    Lists::CountsOnly,
                ))?;
                let models = all(&mut *c.prepare_cached(MODEL)?, [], model)?;
                Ok(ComplianceSnapshot { inputs, models })
            })();
            c.execute_batch("COMMIT")?;
            read
        })
        .await
    }
}
