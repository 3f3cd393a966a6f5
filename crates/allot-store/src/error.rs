//! Store errors. Rule: a store turns every backend failure into
//! `StoreError::Backend` (logged and hidden by the server as a 500); every
//! outcome a client caused is one of the other variants, which the server
//! maps to a 4xx. Three backend failures are told apart, because a client
//! must act differently on each: `Unavailable` (the database cannot be
//! reached; nothing was applied; try again later: 503), `StorageFull` (the
//! database's disk is full; nothing was applied; reads still work: 507) and
//! `OutcomeUnknown` (the connection was lost after COMMIT was sent, before
//! its answer: the change may or may not be there, and only a retry with
//! the same idempotency key tells which: 500).

use allot_core::invalid::Invalid;
use allot_core::lifecycle::{EditRefused, NotAllowed};
use allot_core::software::rights::SoftwareRefusal;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{what} {id} not found")]
    NotFound { what: &'static str, id: String },
    /// A uniqueness or state conflict (409), e.g. a second default entitlement.
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    #[error(transparent)]
    Invalid(#[from] Invalid),
    #[error(transparent)]
    Lifecycle(#[from] NotAllowed),
    #[error(transparent)]
    Edit(#[from] EditRefused),
    /// The database failed; details are for logs only.
    #[error("storage failure: {0}")]
    Backend(String),
    /// A rule of software rights refused the change (`allot_core::software`).
    #[error(transparent)]
    Software(#[from] SoftwareRefusal),
    /// The database cannot be reached now (refused, shutting down, the
    /// connection lost before COMMIT was sent, no connection free in time):
    /// nothing was applied. Details are for logs only.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The connection was lost after COMMIT was sent and before its answer
    /// came back: the change may or may not have been applied.
    #[error("outcome unknown: {0}")]
    OutcomeUnknown(String),
    /// The database's storage is full: nothing was applied.
    #[error("storage full: {0}")]
    StorageFull(String),
}

impl StoreError {
    pub fn not_found(what: &'static str, id: &str) -> Self {
        StoreError::NotFound {
            what,
            id: id.to_string(),
        }
    }

    pub fn backend(e: impl std::fmt::Display) -> Self {
        StoreError::Backend(e.to_string())
    }

    /// The same failure, for each request of a batch that shared it: the
    /// three failures a client acts on keep their kind, others become
    /// `Backend`.
    pub fn for_each_request(&self) -> StoreError {
        match self {
            StoreError::Unavailable(m) => StoreError::Unavailable(m.clone()),
            StoreError::OutcomeUnknown(m) => StoreError::OutcomeUnknown(m.clone()),
            StoreError::StorageFull(m) => StoreError::StorageFull(m.clone()),
            other => StoreError::Backend(other.to_string()),
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;
