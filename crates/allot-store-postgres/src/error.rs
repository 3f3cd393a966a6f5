//! The crate's internal error, and how it becomes a `StoreError`.

use allot_store::StoreError;
use tokio_postgres::error::SqlState;

/// The unique index that allows one live default entitlement per account.
const ONE_DEFAULT: &str = "entitlements_one_default";

#[derive(Debug)]
pub(crate) enum Error {
    Db(tokio_postgres::Error),
    Pool(deadpool_postgres::PoolError),
    /// Another instance recorded one of the batch's idempotency keys after
    /// we loaded them; a retry replays its answer.
    KeyRaced,
    Store(StoreError),
    /// COMMIT was sent and its answer never came (the connection was lost,
    /// or the server went down meanwhile): it may or may not have committed.
    CommitLost(tokio_postgres::Error),
}

pub(crate) type Res<T> = Result<T, Error>;

impl Error {
    /// Worth running the whole transaction again: serialization failure,
    /// deadlock, or a unique key another transaction committed meanwhile.
    pub(crate) fn is_transient(&self) -> bool {
        match self {
            Error::Db(e) => e.code().is_some_and(|c| {
                *c == SqlState::T_R_SERIALIZATION_FAILURE
                    || *c == SqlState::T_R_DEADLOCK_DETECTED
                    || *c == SqlState::UNIQUE_VIOLATION
            }),
            Error::KeyRaced => true,
            Error::Pool(_) | Error::Store(_) | Error::CommitLost(_) => false,
        }
    }

    /// The connection went away (or the server is going down) before
    /// COMMIT was sent: nothing was applied, and running the transaction
    /// again on another connection is safe. `retry::run` does so for every
    /// transaction.
    pub(crate) fn is_connection_lost(&self) -> bool {
        matches!(self, Error::Db(e) if connection_lost(e))
    }

    /// Only lock conflicts: for transactions where a unique violation is a
    /// client's conflict, not a race.
    pub(crate) fn is_lock_conflict(&self) -> bool {
        match self {
            Error::Db(e) => e.code().is_some_and(|c| {
                *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::T_R_DEADLOCK_DETECTED
            }),
            _ => false,
        }
    }

    /// Names the account when this is the one-default-per-account conflict.
    pub(crate) fn for_account(self, account_id: &str) -> Self {
        match &self {
            Error::Db(e) if is_one_default(e) => Error::Store(default_exists(account_id)),
            _ => self,
        }
    }

    pub(crate) fn data(msg: impl std::fmt::Display) -> Self {
        Error::Store(StoreError::Backend(msg.to_string()))
    }
}

/// The connection failed, not the statement: the socket is gone (closed,
/// reset, cut), or the server says it is shutting down, starting up or
/// refusing connections (SQLSTATE classes 08 and 57P).
pub(crate) fn connection_lost(e: &tokio_postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    match e.code() {
        Some(code) => {
            let code = code.code();
            code.starts_with("08") || code.starts_with("57P") || code == "53300"
        }
        None => {
            use std::error::Error as _;
            e.source()
                .is_some_and(|s| s.downcast_ref::<std::io::Error>().is_some())
        }
    }
}

/// What COMMIT's failure means: a refusal by the server (a serialization
/// failure, a deferred constraint) rolled it back; a lost connection leaves
/// it unknown.
pub(crate) fn commit_failed(e: tokio_postgres::Error) -> Error {
    if connection_lost(&e) {
        Error::CommitLost(e)
    } else {
        Error::Db(e)
    }
}

impl From<tokio_postgres::Error> for Error {
    fn from(e: tokio_postgres::Error) -> Self {
        Error::Db(e)
    }
}

impl From<deadpool_postgres::PoolError> for Error {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        Error::Pool(e)
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        Error::Store(e)
    }
}

impl From<Error> for StoreError {
    fn from(e: Error) -> Self {
        match e {
            Error::Store(e) => e,
            // No connection: refused, timed out, or the server is going down.
            Error::Pool(e) => StoreError::Unavailable(e.to_string()),
            Error::CommitLost(e) => StoreError::OutcomeUnknown(e.to_string()),
            // Another request with the same key was answered meanwhile
            // (the write path retries and replays instead of getting here).
            Error::KeyRaced => StoreError::Conflict {
                code: "idempotency_key_in_flight",
                message: "a request with this Idempotency-Key was answered meanwhile".into(),
            },
            Error::Db(e) => from_db(e),
        }
    }
}

fn from_db(e: tokio_postgres::Error) -> StoreError {
    if connection_lost(&e) {
        return StoreError::Unavailable(e.to_string());
    }
    if e.code() == Some(&SqlState::DISK_FULL) {
        return StoreError::StorageFull(e.to_string());
    }
    let Some(db) = e.as_db_error() else {
        return StoreError::backend(e);
    };
    if is_one_default(&e) {
        return default_exists(account_in_detail(db.detail()).unwrap_or("this"));
    }
    if *db.code() == SqlState::FOREIGN_KEY_VIOLATION {
        return StoreError::Conflict {
            code: "reference_missing",
            message: match db.detail() {
                Some(detail) => format!("a referenced record does not exist: {detail}"),
                None => "a referenced record does not exist".into(),
            },
        };
    }
    StoreError::backend(e)
}

fn is_one_default(e: &tokio_postgres::Error) -> bool {
    e.as_db_error().is_some_and(|db| {
        *db.code() == SqlState::UNIQUE_VIOLATION && db.constraint() == Some(ONE_DEFAULT)
    })
}

fn default_exists(account_id: &str) -> StoreError {
    StoreError::Conflict {
        code: "default_exists",
        message: format!("account {account_id} already has a default entitlement"),
    }
}

/// PostgreSQL says `Key (account_id)=(acc_x) already exists.`
fn account_in_detail(detail: Option<&str>) -> Option<&str> {
    let rest = detail?.strip_prefix("Key (account_id)=(")?;
    rest.strip_suffix(") already exists.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_account_from_the_detail() {
        assert_eq!(
            account_in_detail(Some("Key (account_id)=(acc_1) already exists.")),
            Some("acc_1")
        );
        assert_eq!(account_in_detail(Some("something else")), None);
        assert_eq!(account_in_detail(None), None);
    }
}
