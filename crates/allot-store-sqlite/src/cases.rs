//! Cases: the whole record as JSON beside columns for filtering.

use allot_store::model::{CaseFilter, Page};
use allot_store::plan::CaseRecord;
use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection, Row};

use crate::convert::{all, first, paged, ts};
use crate::error::Res;

fn record(row: &Row) -> Res<CaseRecord> {
    Ok(serde_json::from_str(row.get_ref(0)?.as_str()?)?)
}

pub(crate) fn get(conn: &Connection, id: &str) -> Res<Option<CaseRecord>> {
    first(
        &mut *conn.prepare_cached("SELECT record FROM cases WHERE id = ?1")?,
        [id],
        record,
    )
}

pub(crate) fn upsert(conn: &Connection, c: &CaseRecord) -> Res<()> {
    conn.prepare_cached(
        "INSERT INTO cases (id, account_id, entitlement_id, status, record, created_at, updated_at, deleted_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
         ON CONFLICT (id) DO UPDATE SET entitlement_id = excluded.entitlement_id, status = excluded.status, \
         record = excluded.record, updated_at = excluded.updated_at, deleted_at = excluded.deleted_at",
    )?
    .execute(params![
        c.state.id,
        c.account_id,
        c.state.entitlement_id,
        c.state.status.as_str(),
        serde_json::to_string(c)?,
        ts(c.created_at),
        ts(c.updated_at),
        c.deleted_at.map(ts),
    ])?;
    Ok(())
}

pub(crate) fn list(conn: &Connection, filter: &CaseFilter, page: &Page) -> Res<Vec<CaseRecord>> {
    if page.limit == 0 {
        return Ok(Vec::new());
    }
    let mut args = Vec::new();
    let mut conditions = vec!["deleted_at IS NULL"];
    if let Some(a) = &filter.account_id {
        conditions.push("account_id = ?");
        args.push(Value::Text(a.clone()));
    }
    if let Some(e) = &filter.entitlement_id {
        conditions.push("entitlement_id = ?");
        args.push(Value::Text(e.clone()));
    }
    if let Some(s) = filter.status {
        conditions.push("status = ?");
        args.push(Value::Text(s.as_str().to_string()));
    }
    let sql = paged(
        "SELECT record FROM cases",
        &conditions,
        "id",
        page,
        &mut args,
    );
    all(
        &mut *conn.prepare_cached(&sql)?,
        params_from_iter(args),
        record,
    )
}

/// Whether a direct use already recorded this reference on this entitlement.
pub(crate) fn reference_used(
    conn: &Connection,
    entitlement_id: &str,
    reference: &str,
) -> Res<bool> {
    Ok(conn
        .prepare_cached(
            "SELECT 1 FROM ledger WHERE entitlement_id = ?1 AND reference = ?2 \
             AND reason IN ('usage', 'visit') LIMIT 1",
        )?
        .exists([entitlement_id, reference])?)
}
