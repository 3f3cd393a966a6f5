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

/// The values of a filter that are not already in it as they are bound.
pub(crate) struct FilterValues {
    unit: Option<&'static str>,
    statuses: Option<Vec<&'static str>>,
}

impl FilterValues {
    pub(crate) fn of(filter: &EntitlementFilter) -> Self {
        FilterValues {
            unit: filter.unit.map(|u| u.as_str()),
            statuses: filter
                .stored_status
                .as_ref()
                .map(|s| s.iter().map(|s| s.as_str()).collect()),
        }
    }
}

/// The conditions (on `e`) that `filter` asks for, numbered after the
/// `params` already bound, which they join.
pub(crate) fn filter_conditions<'a>(
    filter: &'a EntitlementFilter,
    values: &'a FilterValues,
    params: &mut Vec<&'a (dyn ToSql + Sync)>,
) -> Vec<String> {
    // Only the filters given become conditions, so each combination gets a
    // plan that can use its index; there are few combinations to cache.
    let mut given: Vec<(&str, &(dyn ToSql + Sync))> = Vec::new();
    if let Some(account_id) = &filter.account_id {
        given.push(("e.account_id = $", account_id));
    }
    if let Some(account_ids) = &filter.account_ids {
        given.push(("e.account_id = ANY($", account_ids));
    }
    if let Some(unit) = &values.unit {
        given.push(("e.unit = $", unit));
    }
    if let Some(owner) = &filter.owner {
        given.push(("e.owner = $", owner));
    }
    if let Some(statuses) = &values.statuses {
        given.push(("e.status = ANY($", statuses));
    }
    let mut conditions = Vec::new();
    for (condition, param) in given {
        params.push(param);
        let close = if condition.ends_with("ANY($") {
            ")"
        } else {
            ""
        };
        conditions.push(format!("{condition}{}{close}", params.len()));
    }
    conditions
}

pub(crate) async fn list(
    pool: &Pool,
    filter: &EntitlementFilter,
    page: &Page,
) -> Res<Vec<EntitlementRecord>> {
    if page.limit == 0 {
        return Ok(Vec::new());
    }
    let values = FilterValues::of(filter);
    let after = rows::after(page);
    let limit = rows::limit(page);
    let mut params: Vec<&(dyn ToSql + Sync)> = vec![&after];
    let mut conditions = vec!["e.id > $1".to_string()];
    conditions.extend(filter_conditions(filter, &values, &mut params));
    params.push(&limit);
    let sql = format!(
        "SELECT {RECORD_COLS} FROM entitlements e
         JOIN balances b ON b.entitlement_id = e.id
         WHERE {} ORDER BY e.id LIMIT ${}",
        conditions.join(" AND "),
        params.len()
    );
    query_rows(pool, &sql, &params, rows::record).await
}

/// The rows of one statement, each read by `read`.
pub(crate) async fn query_rows<T>(
    pool: &Pool,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
    read: impl Fn(&tokio_postgres::Row) -> Res<T>,
) -> Res<Vec<T>> {
    let client = pool.get().await?;
    let stmt = client.prepare_cached(sql).await?;
    client
        .query(&stmt, params)
        .await?
        .iter()
        .map(read)
        .collect()
}
