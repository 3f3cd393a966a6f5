//! The audit trail, written inside each change's transaction.

use allot_store::audit::{AuditEntry, AuditFilter};
use allot_store::model::Page;
use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection, Row};

use crate::convert::{all, paged, ts, ts_at};
use crate::error::Res;

pub(crate) fn insert(conn: &Connection, e: &AuditEntry) -> Res<()> {
    let json = |v: &Option<serde_json::Value>| v.as_ref().map(serde_json::to_string).transpose();
    conn.prepare_cached(
        "INSERT INTO audit_log (id, actor, role, action, target_type, target_id, before, after, request_id, at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        e.id,
        e.actor,
        e.role,
        e.action,
        e.target_type,
        e.target_id,
        json(&e.before)?,
        json(&e.after)?,
        e.request_id,
        ts(e.at)
    ])?;
    Ok(())
}

fn entry(row: &Row) -> Res<AuditEntry> {
    let json = |i: usize| -> Res<Option<serde_json::Value>> {
        match row.get_ref(i)?.as_str_or_null()? {
            Some(s) => Ok(Some(serde_json::from_str(s)?)),
            None => Ok(None),
        }
    };
    Ok(AuditEntry {
        id: row.get(0)?,
        actor: row.get(1)?,
        role: row.get(2)?,
        action: row.get(3)?,
        target_type: row.get(4)?,
        target_id: row.get(5)?,
        before: json(6)?,
        after: json(7)?,
        request_id: row.get(8)?,
        at: ts_at(row, 9)?,
    })
}

pub(crate) fn list(conn: &Connection, filter: &AuditFilter, page: &Page) -> Res<Vec<AuditEntry>> {
    if page.limit == 0 {
        return Ok(Vec::new());
    }
    let mut args = Vec::new();
    let mut conditions = Vec::new();
    for (column, value) in [
        ("actor = ?", &filter.actor),
        ("action = ?", &filter.action),
        ("target_id = ?", &filter.target_id),
    ] {
        if let Some(v) = value {
            conditions.push(column);
            args.push(Value::Text(v.clone()));
        }
    }
    if let Some(t) = filter.since {
        conditions.push("at >= ?");
        args.push(Value::Text(ts(t)));
    }
    if let Some(t) = filter.until {
        conditions.push("at < ?");
        args.push(Value::Text(ts(t)));
    }
    let select = "SELECT id, actor, role, action, target_type, target_id, before, after, request_id, at FROM audit_log";
    let sql = paged(select, &conditions, "id", page, &mut args);
    all(
        &mut *conn.prepare_cached(&sql)?,
        params_from_iter(args),
        entry,
    )
}
