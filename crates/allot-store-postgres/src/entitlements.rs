//! Entitlements: create, read, list, edit terms.

use allot_core::entitlement::{Entitlement, Terms};
use allot_core::lifecycle::{check_edit, effective_status};
use allot_store::audit::{snapshot, AuditContext, AuditEntry};
use allot_store::model::{EntitlementFilter, EntitlementRecord, Page};
use allot_store::StoreError;
use chrono::{DateTime, NaiveDate, Utc};
use deadpool_postgres::{GenericClient, Pool, Transaction};
use tokio_postgres::types::{Json, ToSql};

use crate::audit;
use crate::error::{Error, Res};
use crate::rows::{self, RECORD_COLS};

/// Inserts the row and its zeroed balances. The copy columns always come
/// from the same `terms` and `status` as the JSON beside them.
pub(crate) async fn insert_row(
    tx: &Transaction<'_>,
    ent: &Entitlement,
    now: DateTime<Utc>,
) -> Res<()> {
    let t = &ent.terms;
    let insert = tx
        .prepare_cached(
            "INSERT INTO entitlements (id, account_id, unit, owner, status, is_default,
                start_date, end_date, total_milli, restrict, terms, predecessor_id,
                created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13)",
        )
        .await?;
    let balances = tx
        .prepare_cached(
            "INSERT INTO balances (entitlement_id, period_index, used_milli, held_milli,
                carried_milli, channels)
             VALUES ($1, 0, 0, 0, 0, '{}'::jsonb)",
        )
        .await?;
    tx.execute(
        &insert,
        &[
            &ent.id,
            &t.account_id,
            &t.unit.as_str(),
            &t.owner,
            &ent.status.as_str(),
            &t.is_default,
            &t.start_date,
            &t.end_date,
            &t.total.map(|q| q.milli()),
            &t.restrict,
            &Json(t),
            &ent.predecessor_id,
            &now,
        ],
    )
    .await
    .map_err(|e| Error::from(e).for_account(&t.account_id))?;
    tx.execute(&balances, &[&ent.id]).await?;
    Ok(())
}

pub(crate) async fn insert(
    pool: &Pool,
    ent: &Entitlement,
    now: DateTime<Utc>,
    ctx: &AuditContext,
) -> Res<EntitlementRecord> {
    let now = rows::micros(now);
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    insert_row(&tx, ent, now).await?;
    let record = EntitlementRecord {
        entitlement: ent.clone(),
        counters: Default::default(),
        created_at: now,
        updated_at: now,
    };
    let entry = AuditEntry::new(
        ctx,
        "entitlement.create",
        "entitlement",
        &ent.id,
        None,
        snapshot(&record),
        now,
    );
    audit::write(&tx, &entry).await?;
    tx.commit().await?;
    Ok(record)
}

/// Reads one record; inside a transaction it sees that transaction's writes.
pub(crate) async fn read(client: &impl GenericClient, id: &str) -> Res<Option<EntitlementRecord>> {
    let stmt = client
        .prepare_cached(&format!(
            "SELECT {RECORD_COLS} FROM entitlements e
             JOIN balances b ON b.entitlement_id = e.id WHERE e.id = $1"
        ))
        .await?;
    client
        .query_opt(&stmt, &[&id])
        .await?
        .as_ref()
        .map(rows::record)
        .transpose()
}

pub(crate) async fn get(pool: &Pool, id: &str) -> Res<Option<EntitlementRecord>> {
    read(&pool.get().await?, id).await
}

pub(crate) async fn list(
    pool: &Pool,
    filter: &EntitlementFilter,
    page: &Page,
) -> Res<Vec<EntitlementRecord>> {
    if page.limit == 0 {
        return Ok(Vec::new());
    }
    let unit = filter.unit.map(|u| u.as_str());
    let statuses: Option<Vec<&str>> = filter
        .stored_status
        .as_ref()
        .map(|s| s.iter().map(|s| s.as_str()).collect());
    let after = rows::after(page);
    let limit = rows::limit(page);
    // Only the filters given become conditions, so each combination gets a
    // plan that can use its index; there are few combinations to cache.
    let mut given: Vec<(&str, &(dyn ToSql + Sync))> = Vec::new();
    if let Some(account_id) = &filter.account_id {
        given.push(("e.account_id = $", account_id));
    }
    if let Some(account_ids) = &filter.account_ids {
        given.push(("e.account_id = ANY($", account_ids));
    }
    if let Some(unit) = &unit {
        given.push(("e.unit = $", unit));
    }
    if let Some(owner) = &filter.owner {
        given.push(("e.owner = $", owner));
    }
    if let Some(statuses) = &statuses {
        given.push(("e.status = ANY($", statuses));
    }
    let mut params: Vec<&(dyn ToSql + Sync)> = vec![&after];
    let mut conditions = vec!["e.id > $1".to_string()];
    for (condition, param) in given {
        params.push(param);
        let close = if condition.ends_with("ANY($") {
            ")"
        } else {
            ""
        };
        conditions.push(format!("{condition}{}{close}", params.len()));
    }
    params.push(&limit);
    let sql = format!(
        "SELECT {RECORD_COLS} FROM entitlements e
         JOIN balances b ON b.entitlement_id = e.id
         WHERE {} ORDER BY e.id LIMIT ${}",
        conditions.join(" AND "),
        params.len()
    );
    let client = pool.get().await?;
    let stmt = client.prepare_cached(&sql).await?;
    client
        .query(&stmt, &params)
        .await?
        .iter()
        .map(rows::record)
        .collect()
}

/// Locks the row and its balances (the order batches lock in) and returns
/// the record as stored.
pub(crate) async fn lock(tx: &Transaction<'_>, id: &str) -> Res<EntitlementRecord> {
    let stmt = tx
        .prepare_cached(&format!(
            "SELECT {RECORD_COLS} FROM entitlements e
             JOIN balances b ON b.entitlement_id = e.id
             WHERE e.id = $1 FOR UPDATE"
        ))
        .await?;
    let row = tx
        .query_opt(&stmt, &[&id])
        .await?
        .ok_or_else(|| StoreError::not_found("entitlement", id))?;
    rows::record(&row)
}

pub(crate) async fn update_terms(
    pool: &Pool,
    id: &str,
    terms: &Terms,
    today: NaiveDate,
    now: DateTime<Utc>,
    ctx: &AuditContext,
) -> Res<EntitlementRecord> {
    let now = rows::micros(now);
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let before = lock(&tx, id).await?;
    let current = &before.entitlement.terms;
    let stored = before.entitlement.status;
    let effective = effective_status(stored, current.start_date, current.end_date, today);
    check_edit(current, effective, terms).map_err(StoreError::Edit)?;
    let stmt = tx
        .prepare_cached(
            "UPDATE entitlements SET account_id = $2, unit = $3, owner = $4, is_default = $5,
                start_date = $6, end_date = $7, total_milli = $8, restrict = $9, terms = $10,
                updated_at = $11
             WHERE id = $1",
        )
        .await?;
    tx.execute(
        &stmt,
        &[
            &id,
            &terms.account_id,
            &terms.unit.as_str(),
            &terms.owner,
            &terms.is_default,
            &terms.start_date,
            &terms.end_date,
            &terms.total.map(|q| q.milli()),
            &terms.restrict,
            &Json(terms),
            &now,
        ],
    )
    .await
    .map_err(|e| Error::from(e).for_account(&terms.account_id))?;
    let record = read(&tx, id)
        .await?
        .ok_or_else(|| StoreError::not_found("entitlement", id))?;
    let entry = AuditEntry::new(
        ctx,
        "entitlement.update",
        "entitlement",
        id,
        snapshot(&before),
        snapshot(&record),
        now,
    );
    audit::write(&tx, &entry).await?;
    tx.commit().await?;
    Ok(record)
}
