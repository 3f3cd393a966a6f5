//! Ledger entries and reservations: their rows, reads and writes.

use allot_core::decide::Reason;
use allot_core::Quantity;
use allot_store::backend::LedgerDay;
use allot_store::model::{LedgerEntry, Page};
use allot_store::plan::{Reservation, ReservationStatus};
use chrono::{DateTime, Utc};
use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection, Row};

use crate::convert::{all, day, first, opt_ts_at, paged, ts, ts_at};
use crate::error::{corrupt, Res};

pub(crate) fn insert_ledger(conn: &Connection, e: &LedgerEntry) -> Res<()> {
    conn.prepare_cached(
        "INSERT INTO ledger (id, entitlement_id, period_index, channel, quantity_milli, reason, \
         reference, actor, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        e.id,
        e.entitlement_id,
        e.period_index,
        e.channel,
        e.quantity.milli(),
        e.reason.as_str(),
        e.reference,
        e.actor,
        ts(e.created_at),
    ])?;
    Ok(())
}

/// Adds a batch's use of one day to that day's sum of the ledger.
pub(crate) fn add_ledger_day(conn: &Connection, d: &LedgerDay) -> Res<()> {
    conn.prepare_cached(
        "INSERT INTO ledger_days (entitlement_id, day, used_milli) VALUES (?1, ?2, ?3) \
         ON CONFLICT (entitlement_id, day) DO UPDATE SET used_milli = used_milli + excluded.used_milli",
    )?
    .execute(params![
        d.entitlement_id,
        day(d.day),
        d.used.milli()
    ])?;
    Ok(())
}

const LEDGER: &str = "SELECT id, entitlement_id, period_index, channel, quantity_milli, reason, \
    reference, actor, created_at FROM ledger";

fn ledger_entry(row: &Row) -> Res<LedgerEntry> {
    let reason = row.get_ref(5)?.as_str()?;
    Ok(LedgerEntry {
        id: row.get(0)?,
        entitlement_id: row.get(1)?,
        period_index: row.get(2)?,
        channel: row.get(3)?,
        quantity: Quantity::from_milli(row.get(4)?),
        reason: Reason::parse(reason).ok_or_else(|| corrupt("reason", reason))?,
        reference: row.get(6)?,
        actor: row.get(7)?,
        created_at: ts_at(row, 8)?,
    })
}

/// One page, in id order, of a table's rows that belong to an entitlement.
fn by_entitlement<T>(
    conn: &Connection,
    select: &str,
    entitlement_id: &str,
    page: &Page,
    row: fn(&Row) -> Res<T>,
) -> Res<Vec<T>> {
    if page.limit == 0 {
        return Ok(Vec::new());
    }
    let mut args = vec![Value::Text(entitlement_id.to_string())];
    let sql = paged(select, &["entitlement_id = ?"], "id", page, &mut args);
    all(
        &mut *conn.prepare_cached(&sql)?,
        params_from_iter(args),
        row,
    )
}

pub(crate) fn list_ledger(
    conn: &Connection,
    entitlement_id: &str,
    page: &Page,
) -> Res<Vec<LedgerEntry>> {
    by_entitlement(conn, LEDGER, entitlement_id, page, ledger_entry)
}

/// Inserts a reservation, or records how an existing one was settled.
pub(crate) fn upsert_reservation(conn: &Connection, r: &Reservation) -> Res<()> {
    conn.prepare_cached(
        "INSERT INTO reservations (id, entitlement_id, quantity_milli, channel, reference, \
         status, expires_at, created_at, settled_at, committed_milli) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) \
         ON CONFLICT (id) DO UPDATE SET status = excluded.status, \
         settled_at = excluded.settled_at, committed_milli = excluded.committed_milli",
    )?
    .execute(params![
        r.id,
        r.entitlement_id,
        r.quantity.milli(),
        r.channel,
        r.reference,
        r.status.as_str(),
        ts(r.expires_at),
        ts(r.created_at),
        r.settled_at.map(ts),
        r.committed_quantity.map(Quantity::milli),
    ])?;
    Ok(())
}

const RESERVATION: &str = "SELECT id, entitlement_id, quantity_milli, channel, reference, \
    status, expires_at, created_at, settled_at, committed_milli FROM reservations";

pub(crate) fn list_reservations(
    conn: &Connection,
    entitlement_id: &str,
    page: &Page,
) -> Res<Vec<Reservation>> {
    by_entitlement(conn, RESERVATION, entitlement_id, page, reservation)
}

fn reservation(row: &Row) -> Res<Reservation> {
    let status = row.get_ref(5)?.as_str()?;
    Ok(Reservation {
        id: row.get(0)?,
        entitlement_id: row.get(1)?,
        quantity: Quantity::from_milli(row.get(2)?),
        channel: row.get(3)?,
        reference: row.get(4)?,
        status: ReservationStatus::parse(status)
            .ok_or_else(|| corrupt("reservation status", status))?,
        expires_at: ts_at(row, 6)?,
        created_at: ts_at(row, 7)?,
        settled_at: opt_ts_at(row, 8)?,
        committed_quantity: row.get::<_, Option<i64>>(9)?.map(Quantity::from_milli),
    })
}

pub(crate) fn get_reservation(conn: &Connection, id: &str) -> Res<Option<Reservation>> {
    first(
        &mut *conn.prepare_cached(&format!("{RESERVATION} WHERE id = ?1"))?,
        [id],
        reservation,
    )
}

pub(crate) fn expired_reservations(
    conn: &Connection,
    now: DateTime<Utc>,
    limit: u32,
) -> Res<Vec<String>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id FROM reservations WHERE status = 'held' AND expires_at <= ?1 \
         ORDER BY expires_at, id LIMIT ?2",
    )?;
    all(&mut stmt, params![ts(now), i64::from(limit)], |r| {
        Ok(r.get(0)?)
    })
}
