//! Reads of what the write path wrote: ledger, reservations, events.

use allot_store::model::{Event, LedgerEntry, Page};
use allot_store::plan::Reservation;
use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use tokio_postgres::Row;

use crate::error::Res;
use crate::rows::{self, EVENT_COLS, LEDGER_COLS, RESERVATION_COLS};

/// One page, in id order, of a table's rows that belong to an entitlement.
async fn by_entitlement<T>(
    pool: &Pool,
    select: &str,
    entitlement_id: &str,
    page: &Page,
    row: fn(&Row) -> Res<T>,
) -> Res<Vec<T>> {
    if page.limit == 0 {
        return Ok(Vec::new());
    }
    let client = pool.get().await?;
    let stmt = client
        .prepare_cached(&format!(
            "{select} WHERE entitlement_id = $1 AND id > $2 ORDER BY id LIMIT $3"
        ))
        .await?;
    client
        .query(
            &stmt,
            &[&entitlement_id, &rows::after(page), &rows::limit(page)],
        )
        .await?
        .iter()
        .map(row)
        .collect()
}

pub(crate) async fn list_ledger(
    pool: &Pool,
    entitlement_id: &str,
    page: &Page,
) -> Res<Vec<LedgerEntry>> {
    let select = format!("SELECT {LEDGER_COLS} FROM ledger");
    by_entitlement(pool, &select, entitlement_id, page, rows::ledger).await
}

pub(crate) async fn get_reservation(pool: &Pool, id: &str) -> Res<Option<Reservation>> {
    let client = pool.get().await?;
    let stmt = client
        .prepare_cached(&format!(
            "SELECT {RESERVATION_COLS} FROM reservations WHERE id = $1"
        ))
        .await?;
    client
        .query_opt(&stmt, &[&id])
        .await?
        .map(|row| rows::reservation(&row))
        .transpose()
}

pub(crate) async fn list_reservations(
    pool: &Pool,
    entitlement_id: &str,
    page: &Page,
) -> Res<Vec<Reservation>> {
    let select = format!("SELECT {RESERVATION_COLS} FROM reservations");
    by_entitlement(pool, &select, entitlement_id, page, rows::reservation).await
}

/// Oldest first, so a backlog drains in the order it built up.
pub(crate) async fn expired_reservations(
    pool: &Pool,
    now: DateTime<Utc>,
    limit: u32,
) -> Res<Vec<String>> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let client = pool.get().await?;
    let stmt = client
        .prepare_cached(
            "SELECT id FROM reservations WHERE status = 'held' AND expires_at <= $1
             ORDER BY expires_at, id LIMIT $2",
        )
        .await?;
    client
        .query(&stmt, &[&now, &i64::from(limit)])
        .await?
        .iter()
        .map(|row| Ok(row.try_get(0)?))
        .collect()
}

pub(crate) async fn list_events(
    pool: &Pool,
    entitlement_id: Option<&str>,
    page: &Page,
) -> Res<Vec<Event>> {
    if page.limit == 0 {
        return Ok(Vec::new());
    }
    let client = pool.get().await?;
    let found = match entitlement_id {
        Some(entitlement_id) => {
            let stmt = client
                .prepare_cached(&format!(
                    "SELECT {EVENT_COLS} FROM events WHERE entitlement_id = $1 AND id > $2
                     ORDER BY id LIMIT $3"
                ))
                .await?;
            client
                .query(
                    &stmt,
                    &[&entitlement_id, &rows::after(page), &rows::limit(page)],
                )
                .await?
        }
        None => {
            let stmt = client
                .prepare_cached(&format!(
                    "SELECT {EVENT_COLS} FROM events WHERE id > $1 ORDER BY id LIMIT $2"
                ))
                .await?;
            client
                .query(&stmt, &[&rows::after(page), &rows::limit(page)])
                .await?
        }
    };
    found.iter().map(rows::event).collect()
}
