//! The outbox: events written in the same transaction as their cause.

use allot_store::model::{Event, Page};
use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection, Row};

use crate::convert::{all, paged, ts, ts_at};
use crate::error::Res;

pub(crate) fn insert(conn: &Connection, e: &Event) -> Res<()> {
    conn.prepare_cached(
        "INSERT INTO events (id, kind, entitlement_id, data, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        e.id,
        e.kind,
        e.entitlement_id,
        serde_json::to_string(&e.data)?,
        ts(e.created_at)
    ])?;
    Ok(())
}

pub(crate) const EVENT: &str = "SELECT id, kind, entitlement_id, data, created_at FROM events";

pub(crate) fn event(row: &Row) -> Res<Event> {
    Ok(Event {
        id: row.get(0)?,
        kind: row.get(1)?,
        entitlement_id: row.get(2)?,
        data: serde_json::from_str(row.get_ref(3)?.as_str()?)?,
        created_at: ts_at(row, 4)?,
    })
}

pub(crate) fn list(
    conn: &Connection,
    entitlement_id: Option<&str>,
    page: &Page,
) -> Res<Vec<Event>> {
    if page.limit == 0 {
        return Ok(Vec::new());
    }
    let mut args = Vec::new();
    let mut conditions = Vec::new();
    if let Some(id) = entitlement_id {
        conditions.push("entitlement_id = ?");
        args.push(Value::Text(id.to_string()));
    }
    let sql = paged(EVENT, &conditions, "id", page, &mut args);
    all(
        &mut *conn.prepare_cached(&sql)?,
        params_from_iter(args),
        event,
    )
}
