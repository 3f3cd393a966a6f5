//! The recorded lifecycle transitions of an entitlement (written by the
//! shared sequences through `transaction`).

use allot_store::model::Transition;
use rusqlite::{Connection, Row};

use crate::convert::{all, status_at, ts_at};
use crate::error::Res;

fn transition_row(row: &Row) -> Res<Transition> {
    Ok(Transition {
        entitlement_id: row.get(0)?,
        from_status: status_at(row, 1)?,
        to_status: status_at(row, 2)?,
        action: row.get(3)?,
        actor: row.get(4)?,
        at: ts_at(row, 5)?,
    })
}

pub(crate) fn list_transitions(conn: &Connection, entitlement_id: &str) -> Res<Vec<Transition>> {
    let mut stmt = conn.prepare_cached(
        "SELECT entitlement_id, from_status, to_status, action, actor, at FROM transitions \
         WHERE entitlement_id = ?1 ORDER BY id",
    )?;
    all(&mut stmt, [entitlement_id], transition_row)
}
