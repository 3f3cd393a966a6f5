//! Entitlements: create, read, list, edit terms.

use allot_store::model::{EntitlementFilter, EntitlementRecord, Page};
use deadpool_postgres::{GenericClient, Pool};
use tokio_postgres::types::ToSql;

use crate::error::Res;
use crate::rows::{self, RECORD_COLS};

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
