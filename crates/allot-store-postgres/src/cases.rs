//! Reads of cases. The write path stores them (`batch`); `record` holds the
//! whole `CaseRecord`, the other columns are copies for filtering.

use allot_store::model::{CaseFilter, Page};
use allot_store::plan::CaseRecord;
use deadpool_postgres::Pool;
use tokio_postgres::types::{Json, ToSql};
use tokio_postgres::Row;

use crate::error::Res;
use crate::rows;

pub(crate) fn case(r: &Row) -> Res<CaseRecord> {
    let Json(record): Json<CaseRecord> = r.try_get(0)?;
    Ok(record)
}

/// Deleted or not.
pub(crate) async fn get(pool: &Pool, id: &str) -> Res<Option<CaseRecord>> {
    let client = pool.get().await?;
    let stmt = client
        .prepare_cached("SELECT record FROM cases WHERE id = $1")
        .await?;
    client
        .query_opt(&stmt, &[&id])
        .await?
        .map(|row| case(&row))
        .transpose()
}

/// Cases not deleted, by id; the filters given are ANDed.
pub(crate) async fn list(pool: &Pool, filter: &CaseFilter, page: &Page) -> Res<Vec<CaseRecord>> {
    if page.limit == 0 {
        return Ok(Vec::new());
    }
    let status = filter.status.map(|s| s.as_str());
    let after = rows::after(page);
    let limit = rows::limit(page);
    // Only the filters given become conditions, so each combination gets a
    // plan that can use its index; there are few combinations to cache.
    let mut given: Vec<(&str, &(dyn ToSql + Sync))> = Vec::new();
    if let Some(account_id) = &filter.account_id {
        given.push(("account_id", account_id));
    }
    if let Some(entitlement_id) = &filter.entitlement_id {
        given.push(("entitlement_id", entitlement_id));
    }
    if let Some(status) = &status {
        given.push(("status", status));
    }
    let mut params: Vec<&(dyn ToSql + Sync)> = vec![&after];
    let mut conditions = vec!["id > $1".to_string(), "deleted_at IS NULL".to_string()];
    for (column, param) in given {
        params.push(param);
        conditions.push(format!("{column} = ${}", params.len()));
    }
    params.push(&limit);
    let sql = format!(
        "SELECT record FROM cases WHERE {} ORDER BY id LIMIT ${}",
        conditions.join(" AND "),
        params.len()
    );
    let client = pool.get().await?;
    let stmt = client.prepare_cached(&sql).await?;
    client
        .query(&stmt, &params)
        .await?
        .iter()
        .map(case)
        .collect()
}
