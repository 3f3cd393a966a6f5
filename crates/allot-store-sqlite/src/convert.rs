//! Text forms of times and dates, and small query helpers shared by the
//! modules that map rows.

use allot_core::entitlement::Status;
use allot_store::model::Page;
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use rusqlite::types::Value;
use rusqlite::{Params, Row, Statement};

use crate::error::{corrupt, Res};

/// RFC 3339 UTC with microseconds: fixed width, so text order is time order.
pub(crate) fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

pub(crate) fn parse_ts(s: &str) -> Res<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| corrupt("timestamp", s))
}

pub(crate) fn ts_at(row: &Row, idx: usize) -> Res<DateTime<Utc>> {
    parse_ts(row.get_ref(idx)?.as_str()?)
}

pub(crate) fn opt_ts_at(row: &Row, idx: usize) -> Res<Option<DateTime<Utc>>> {
    match row.get_ref(idx)?.as_str_or_null()? {
        Some(s) => parse_ts(s).map(Some),
        None => Ok(None),
    }
}

pub(crate) fn day(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

pub(crate) fn status(s: &str) -> Res<Status> {
    Status::parse(s).ok_or_else(|| corrupt("status", s))
}

pub(crate) fn status_at(row: &Row, idx: usize) -> Res<Status> {
    status(row.get_ref(idx)?.as_str()?)
}

/// Every row, mapped with `f` (which may fail with a store error, unlike
/// rusqlite's `query_map`).
pub(crate) fn all<T>(
    stmt: &mut Statement<'_>,
    params: impl Params,
    f: impl Fn(&Row) -> Res<T>,
) -> Res<Vec<T>> {
    let mut rows = stmt.query(params)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(f(row)?);
    }
    Ok(out)
}

/// The first row, if any, mapped with `f`.
pub(crate) fn first<T>(
    stmt: &mut Statement<'_>,
    params: impl Params,
    f: impl Fn(&Row) -> Res<T>,
) -> Res<Option<T>> {
    let mut rows = stmt.query(params)?;
    match rows.next()? {
        Some(row) => f(row).map(Some),
        None => Ok(None),
    }
}

/// A keyset-paginated query: `select` filtered by `conditions` (ANDed,
/// their values already in `args`), after the page's cursor on `id`,
/// ordered by `id`, at most `page.limit` rows.
pub(crate) fn paged(
    select: &str,
    conditions: &[&str],
    id: &str,
    page: &Page,
    args: &mut Vec<Value>,
) -> String {
    let cursor = format!("{id} > ?");
    let mut conditions = conditions.to_vec();
    if let Some(after) = &page.after {
        conditions.push(&cursor);
        args.push(Value::Text(after.clone()));
    }
    args.push(Value::Integer(i64::from(page.limit)));
    let mut sql = select.to_string();
    if !conditions.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&conditions.join(" AND "));
    }
    sql.push_str(&format!(" ORDER BY {id} LIMIT ?"));
    sql
}

/// `?, ?, …` for an IN-list of `n` values.
pub(crate) fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}
