//! Store errors. Rule: a store turns every backend failure into
//! `StoreError::Backend` (logged and hidden by the server as a 500); every
//! outcome a client caused is one of the other variants, which the server
//! maps to a 4xx.

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
}

pub type StoreResult<T> = Result<T, StoreError>;
