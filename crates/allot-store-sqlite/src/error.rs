//! One internal error type, so `?` works on SQLite, JSON and store errors
//! alike; it becomes a `StoreError` once, at the trait boundary.

use allot_store::StoreError;
use rusqlite::ffi;
use rusqlite::types::FromSqlError;

#[derive(Debug)]
pub(crate) enum Fail {
    Db(rusqlite::Error),
    Store(StoreError),
}

pub(crate) type Res<T> = Result<T, Fail>;

impl From<rusqlite::Error> for Fail {
    fn from(e: rusqlite::Error) -> Self {
        Fail::Db(e)
    }
}

impl From<FromSqlError> for Fail {
    fn from(e: FromSqlError) -> Self {
        Fail::Db(e.into())
    }
}

impl From<StoreError> for Fail {
    fn from(e: StoreError) -> Self {
        Fail::Store(e)
    }
}

impl From<serde_json::Error> for Fail {
    fn from(e: serde_json::Error) -> Self {
        Fail::Store(StoreError::Backend(format!("JSON column: {e}")))
    }
}

impl From<Fail> for StoreError {
    fn from(f: Fail) -> Self {
        match f {
            Fail::Store(e) => e,
            Fail::Db(e) => from_db(e),
        }
    }
}

/// A stored value this code cannot read back: the database was edited by
/// hand or by a newer version.
pub(crate) fn corrupt(what: &str, value: &str) -> Fail {
    Fail::Store(StoreError::Backend(format!("unreadable {what} {value:?}")))
}

fn default_exists(account_id: Option<&str>) -> StoreError {
    let message = match account_id {
        Some(id) => format!("account {id} already has a default entitlement"),
        None => "the account already has a default entitlement".to_string(),
    };
    StoreError::Conflict {
        code: "default_exists",
        message,
    }
}

fn is_default_violation(e: &rusqlite::Error) -> bool {
    matches!(
        e,
        rusqlite::Error::SqliteFailure(err, Some(message))
            if err.extended_code == ffi::SQLITE_CONSTRAINT_UNIQUE
                && message.contains("entitlements.account_id")
    )
}

fn from_db(e: rusqlite::Error) -> StoreError {
    if is_storage_full(&e) {
        return StoreError::StorageFull(e.to_string());
    }
    if is_default_violation(&e) {
        return default_exists(None);
    }
    if e.sqlite_error()
        .is_some_and(|err| err.extended_code == ffi::SQLITE_CONSTRAINT_FOREIGNKEY)
    {
        // The server validates references first; this is the backstop.
        return StoreError::Conflict {
            code: "reference_missing",
            message: "a referenced record does not exist".to_string(),
        };
    }
    StoreError::backend(e)
}

/// The disk holding the database (or its WAL) has no room: `SQLITE_FULL`
/// (SQLite's unix layer reports a write that failed with `ENOSPC` so), or
/// the WAL index could not grow (`SQLITE_IOERR_SHMSIZE`).
fn is_storage_full(e: &rusqlite::Error) -> bool {
    e.sqlite_error().is_some_and(|err| {
        err.code == rusqlite::ErrorCode::DiskFull || err.extended_code == ffi::SQLITE_IOERR_SHMSIZE
    })
}

/// Names the account in a default-entitlement conflict.
pub(crate) fn naming_account(f: Fail, account_id: &str) -> Fail {
    match f {
        Fail::Db(e) if is_default_violation(&e) => Fail::Store(default_exists(Some(account_id))),
        other => other,
    }
}
