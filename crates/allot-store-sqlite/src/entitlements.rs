//! Entitlement rows with their balances: the rows written, reads and lists.

use std::collections::BTreeMap;

use allot_core::balance::Counters;
use allot_core::entitlement::Entitlement;
use allot_core::Quantity;
use allot_store::model::{EntitlementFilter, EntitlementRecord, Page};
use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection, Row};

use crate::cache::TermsCache;
use crate::convert::{all, day, first, paged, placeholders, status_at, ts_at};
use crate::error::{naming_account, Res};

/// Columns 0..=3 are read by `entitlement`, 4..=5 are the timestamps,
/// 6..=10 are read by `counters` and 11 is the latest successor.
pub(crate) const RECORD: &str = "SELECT e.id, e.status, e.predecessor_id, e.terms, e.created_at, \
    e.updated_at, b.period_index, b.used_milli, b.held_milli, b.carried_milli, b.channels, \
    (SELECT MAX(r.id) FROM entitlements r WHERE r.predecessor_id = e.id) \
    FROM entitlements e JOIN balances b ON b.entitlement_id = e.id";

const RECORD_BY_ID: &str = "SELECT e.id, e.status, e.predecessor_id, e.terms, e.created_at, \
    e.updated_at, b.period_index, b.used_milli, b.held_milli, b.carried_milli, b.channels, \
    (SELECT MAX(r.id) FROM entitlements r WHERE r.predecessor_id = e.id) \
    FROM entitlements e JOIN balances b ON b.entitlement_id = e.id WHERE e.id = ?1";

/// An entitlement from columns `id, status, predecessor_id, terms`.
pub(crate) fn entitlement(row: &Row, cache: &TermsCache) -> Res<Entitlement> {
    let id: String = row.get(0)?;
    let terms = cache.terms(&id, row.get_ref(3)?.as_str()?)?;
    Ok(Entitlement {
        status: status_at(row, 1)?,
        predecessor_id: row.get(2)?,
        id,
        terms,
    })
}

/// Counters from columns `period_index, used, held, carried, channels`
/// starting at `at`.
pub(crate) fn counters(row: &Row, at: usize) -> Res<Counters> {
    let channels = row.get_ref(at + 4)?.as_str()?;
    Ok(Counters {
        period_index: row.get(at)?,
        used: Quantity::from_milli(row.get(at + 1)?),
        held: Quantity::from_milli(row.get(at + 2)?),
        carried: Quantity::from_milli(row.get(at + 3)?),
        // Most entitlements have no channels; skip the parser for them.
        channels: if channels == "{}" {
            BTreeMap::new()
        } else {
            serde_json::from_str(channels)?
        },
    })
}

pub(crate) fn channels_json(c: &Counters) -> Res<String> {
    if c.channels.is_empty() {
        return Ok("{}".to_string());
    }
    Ok(serde_json::to_string(&c.channels)?)
}

pub(crate) fn record(row: &Row, cache: &TermsCache) -> Res<EntitlementRecord> {
    Ok(EntitlementRecord {
        entitlement: entitlement(row, cache)?,
        created_at: ts_at(row, 4)?,
        updated_at: ts_at(row, 5)?,
        counters: counters(row, 6)?,
        renewed_to: row.get(11)?,
    })
}

/// The statement that inserts an entitlement row, and the one that
/// rewrites it; both take `row_params` (the update ignores `created_at`).
const INSERT: &str = "INSERT INTO entitlements (id, account_id, unit, owner, status, \
    is_default, start_date, end_date, total_milli, restrict, terms, predecessor_id, created_at, \
    updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?13)";

const UPDATE: &str = "UPDATE entitlements SET account_id = ?2, unit = ?3, owner = ?4, \
    status = ?5, is_default = ?6, start_date = ?7, end_date = ?8, total_milli = ?9, \
    restrict = ?10, terms = ?11, predecessor_id = ?12, updated_at = ?13 WHERE id = ?1";

/// Writes the row (terms plus their column copies) with `sql`.
fn write_row(conn: &Connection, sql: &str, ent: &Entitlement, now: &str) -> Res<()> {
    let t = &ent.terms;
    conn.prepare_cached(sql)?
        .execute(params![
            ent.id,
            t.account_id,
            t.unit.as_str(),
            t.owner,
            ent.status.as_str(),
            t.is_default,
            day(t.start_date),
            day(t.end_date),
            t.total.map(Quantity::milli),
            t.restrict,
            serde_json::to_string(t)?,
            ent.predecessor_id,
            now,
        ])
        .map_err(|e| naming_account(e.into(), &t.account_id))?;
    Ok(())
}

/// Inserts the entitlement row and its zeroed balances row.
pub(crate) fn insert_rows(conn: &Connection, ent: &Entitlement, now: &str) -> Res<()> {
    write_row(conn, INSERT, ent, now)?;
    conn.prepare_cached(
        "INSERT INTO balances (entitlement_id, period_index, used_milli, held_milli, \
         carried_milli, channels) VALUES (?1, 0, 0, 0, 0, '{}')",
    )?
    .execute([&ent.id])?;
    Ok(())
}

pub(crate) fn get(
    conn: &Connection,
    cache: &TermsCache,
    id: &str,
) -> Res<Option<EntitlementRecord>> {
    first(&mut *conn.prepare_cached(RECORD_BY_ID)?, [id], |r| {
        record(r, cache)
    })
}

/// An IN-list filter with nothing in it matches nothing.
fn empty_in<T>(list: &Option<Vec<T>>) -> bool {
    list.as_ref().is_some_and(Vec::is_empty)
}

/// The conditions (on `e`) and their arguments that `filter` asks for;
/// `None` when it matches nothing.
pub(crate) fn filter_conditions(filter: &EntitlementFilter) -> Option<(Vec<String>, Vec<Value>)> {
    if empty_in(&filter.account_ids) || empty_in(&filter.stored_status) {
        return None;
    }
    let mut args = Vec::new();
    let mut conditions: Vec<String> = Vec::new();
    if let Some(account_id) = &filter.account_id {
        conditions.push("e.account_id = ?".into());
        args.push(Value::Text(account_id.clone()));
    }
    if let Some(ids) = &filter.account_ids {
        conditions.push(format!("e.account_id IN ({})", placeholders(ids.len())));
        args.extend(ids.iter().cloned().map(Value::Text));
    }
    if let Some(unit) = filter.unit {
        conditions.push("e.unit = ?".into());
        args.push(Value::Text(unit.as_str().into()));
    }
    if let Some(owner) = &filter.owner {
        conditions.push("e.owner = ?".into());
        args.push(Value::Text(owner.clone()));
    }
    if let Some(statuses) = &filter.stored_status {
        conditions.push(format!("e.status IN ({})", placeholders(statuses.len())));
        args.extend(statuses.iter().map(|s| Value::Text(s.as_str().into())));
    }
    Some((conditions, args))
}

pub(crate) fn list(
    conn: &Connection,
    cache: &TermsCache,
    filter: &EntitlementFilter,
    page: &Page,
) -> Res<Vec<EntitlementRecord>> {
    if page.limit == 0 {
        return Ok(Vec::new());
    }
    let mut rest = filter.clone();
    let statuses = rest.stored_status.take();
    let Some((mut conditions, mut args)) = filter_conditions(&rest) else {
        return Ok(Vec::new());
    };
    if let Some(statuses) = statuses {
        if statuses.is_empty() {
            return Ok(Vec::new());
        }
        // Several statuses through the (status, id) index would read every
        // match and sort them all (the whole table for the reports' usual
        // waiting/active/expired) where the id order stops at the page; `+`
        // keeps the planner off that index.
        // One status reads that index in id order already.
        let column = if statuses.len() > 1 {
            "+e.status"
        } else {
            "e.status"
        };
        conditions.push(format!("{column} IN ({})", placeholders(statuses.len())));
        args.extend(statuses.iter().map(|s| Value::Text(s.as_str().into())));
    }
    let conditions: Vec<&str> = conditions.iter().map(String::as_str).collect();
    let sql = paged(RECORD, &conditions, "e.id", page, &mut args);
    all(
        &mut *conn.prepare_cached(&sql)?,
        params_from_iter(args),
        |r| record(r, cache),
    )
}

/// Writes an existing entitlement's terms, status and their column copies.
pub(crate) fn update_row(conn: &Connection, ent: &Entitlement, now: &str) -> Res<()> {
    write_row(conn, UPDATE, ent, now)
}
