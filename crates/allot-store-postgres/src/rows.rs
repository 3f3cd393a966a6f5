//! Rows to models. Stored text that does not parse is a backend error,
//! never a panic.

use std::collections::BTreeMap;

use allot_core::balance::ChannelCounter;
use allot_core::batch::EntitlementState;
use allot_core::entitlement::{Entitlement, Status, Terms};
use allot_core::{Counters, Quantity, Reason};
use allot_store::model::{
    Account, ApiKey, Contact, EntitlementRecord, Event, IdempotencyRecord, LedgerEntry, Role,
    Transition,
};
use allot_store::plan::{Reservation, ReservationStatus};
use tokio_postgres::types::Json;
use tokio_postgres::Row;

use crate::error::{Error, Res};

fn parse<T>(value: &str, what: &str, f: impl Fn(&str) -> Option<T>) -> Res<T> {
    f(value).ok_or_else(|| Error::data(format!("unknown {what} {value:?} in the database")))
}

pub(crate) fn status(value: &str) -> Res<Status> {
    parse(value, "status", Status::parse)
}

pub(crate) const ACCOUNT_COLS: &str =
    "id, name, parent_id, created_at, manager_name, manager_email, external_id";

pub(crate) fn account(r: &Row) -> Res<Account> {
    Ok(Account {
        id: r.try_get(0)?,
        name: r.try_get(1)?,
        parent_id: r.try_get(2)?,
        created_at: r.try_get(3)?,
        manager_name: r.try_get(4)?,
        manager_email: r.try_get(5)?,
        external_id: r.try_get(6)?,
    })
}

pub(crate) const CONTACT_COLS: &str = "id, account_id, name, email, created_at";

pub(crate) fn contact(r: &Row) -> Res<Contact> {
    Ok(Contact {
        id: r.try_get(0)?,
        account_id: r.try_get(1)?,
        name: r.try_get(2)?,
        email: r.try_get(3)?,
        created_at: r.try_get(4)?,
    })
}

pub(crate) const PRODUCT_COLS: &str = "id, name, sku, created_at";

pub(crate) fn product(r: &Row) -> Res<allot_store::model::Product> {
    Ok(allot_store::model::Product {
        id: r.try_get(0)?,
        name: r.try_get(1)?,
        sku: r.try_get(2)?,
        created_at: r.try_get(3)?,
    })
}

/// An entitlement joined with its balances row (`e` and `b`).
pub(crate) const RECORD_COLS: &str = "e.id, e.status, e.terms, e.predecessor_id, \
     e.created_at, e.updated_at, b.period_index, b.used_milli, b.held_milli, \
     b.carried_milli, b.channels, \
     (SELECT MAX(r.id) FROM entitlements r WHERE r.predecessor_id = e.id)";

pub(crate) fn state(r: &Row) -> Res<EntitlementState> {
    let Json(terms): Json<Terms> = r.try_get(2)?;
    let Json(channels): Json<BTreeMap<String, ChannelCounter>> = r.try_get(10)?;
    Ok(EntitlementState {
        entitlement: Entitlement {
            id: r.try_get(0)?,
            terms,
            status: status(r.try_get(1)?)?,
            predecessor_id: r.try_get(3)?,
        },
        counters: Counters {
            period_index: r.try_get(6)?,
            used: Quantity::from_milli(r.try_get(7)?),
            held: Quantity::from_milli(r.try_get(8)?),
            carried: Quantity::from_milli(r.try_get(9)?),
            channels,
        },
    })
}

pub(crate) fn record(r: &Row) -> Res<EntitlementRecord> {
    let EntitlementState {
        entitlement,
        counters,
    } = state(r)?;
    Ok(EntitlementRecord {
        entitlement,
        counters,
        created_at: r.try_get(4)?,
        updated_at: r.try_get(5)?,
        renewed_to: r.try_get(11)?,
    })
}

pub(crate) const LEDGER_COLS: &str = "id, entitlement_id, period_index, channel, \
     quantity_milli, reason, reference, actor, created_at";

pub(crate) fn ledger(r: &Row) -> Res<LedgerEntry> {
    Ok(LedgerEntry {
        id: r.try_get(0)?,
        entitlement_id: r.try_get(1)?,
        period_index: r.try_get(2)?,
        channel: r.try_get(3)?,
        quantity: Quantity::from_milli(r.try_get(4)?),
        reason: parse(r.try_get(5)?, "reason", Reason::parse)?,
        reference: r.try_get(6)?,
        actor: r.try_get(7)?,
        created_at: r.try_get(8)?,
    })
}

pub(crate) const RESERVATION_COLS: &str = "id, entitlement_id, quantity_milli, channel, \
     reference, status, expires_at, created_at, settled_at, committed_milli";

pub(crate) fn reservation(r: &Row) -> Res<Reservation> {
    Ok(Reservation {
        id: r.try_get(0)?,
        entitlement_id: r.try_get(1)?,
        quantity: Quantity::from_milli(r.try_get(2)?),
        channel: r.try_get(3)?,
        reference: r.try_get(4)?,
        status: parse(
            r.try_get(5)?,
            "reservation status",
            ReservationStatus::parse,
        )?,
        expires_at: r.try_get(6)?,
        created_at: r.try_get(7)?,
        settled_at: r.try_get(8)?,
        committed_quantity: r.try_get::<_, Option<i64>>(9)?.map(Quantity::from_milli),
    })
}

pub(crate) const EVENT_COLS: &str = "id, kind, entitlement_id, data, created_at";

pub(crate) fn event(r: &Row) -> Res<Event> {
    Ok(Event {
        id: r.try_get(0)?,
        kind: r.try_get(1)?,
        entitlement_id: r.try_get(2)?,
        data: r.try_get(3)?,
        created_at: r.try_get(4)?,
    })
}

pub(crate) const TRANSITION_COLS: &str =
    "entitlement_id, from_status, to_status, action, actor, at";

pub(crate) fn transition(r: &Row) -> Res<Transition> {
    Ok(Transition {
        entitlement_id: r.try_get(0)?,
        from_status: status(r.try_get(1)?)?,
        to_status: status(r.try_get(2)?)?,
        action: r.try_get(3)?,
        actor: r.try_get(4)?,
        at: r.try_get(5)?,
    })
}

pub(crate) const KEY_COLS: &str = "fingerprint, answer, created_at";

/// Reads `KEY_COLS` starting at column `at`.
pub(crate) fn key_record(r: &Row, at: usize) -> Res<IdempotencyRecord> {
    Ok(IdempotencyRecord {
        fingerprint: r.try_get(at)?,
        answer: r.try_get(at + 1)?,
        created_at: r.try_get(at + 2)?,
    })
}

pub(crate) const API_KEY_COLS: &str = "id, name, role, account_id, created_at, revoked_at";

pub(crate) fn api_key(r: &Row) -> Res<ApiKey> {
    Ok(ApiKey {
        id: r.try_get(0)?,
        name: r.try_get(1)?,
        role: parse(r.try_get(2)?, "role", Role::parse)?,
        account_id: r.try_get(3)?,
        created_at: r.try_get(4)?,
        revoked_at: r.try_get(5)?,
    })
}

/// `LIMIT` for a page; the caller skips the query when it is zero.
pub(crate) fn limit(page: &allot_store::model::Page) -> i64 {
    i64::from(page.limit)
}

/// The exclusive lower bound of a page: every id sorts after "".
pub(crate) fn after(page: &allot_store::model::Page) -> &str {
    page.after.as_deref().unwrap_or("")
}
