//! The one mapping from failures to HTTP. Rule: handlers return `ApiError`;
//! every client-caused failure is a 4xx with a stable `code` and, for bad
//! input, the field at fault; anything else is a 500 whose details are
//! logged and never sent. Four server-side failures say what a client
//! should do, with a code of their own: `database_unavailable` (503 with
//! `Retry-After`: nothing was applied, send it again later), `overloaded`
//! (503 with `Retry-After`: shed before any work), `storage_full` (507:
//! nothing was applied; reads still work) and `outcome_unknown` (500: the
//! commit's answer was lost; retry with the same `Idempotency-Key` to get
//! the committed answer, or to have it applied once).

use allot_core::cases::CaseRefusal;
use allot_core::decide::Refusal;
use allot_core::invalid::{FieldError, Invalid};
use allot_core::software::SoftwareRefusal;
use allot_store::plan::{Outcome, ReservationRefusal};
use allot_store::{StoreError, SubmitError};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::{json, Value};
use utoipa::ToSchema;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    #[error(transparent)]
    Invalid(#[from] Invalid),
    #[error("missing or unknown API key")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error("{what} {id} not found")]
    NotFound { what: &'static str, id: String },
    #[error("{message}")]
    Conflict {
        code: &'static str,
        message: String,
        details: Value,
    },
    #[error(transparent)]
    Refused(Refusal),
    #[error(transparent)]
    Reservation(#[from] ReservationRefusal),
    #[error(transparent)]
    Case(#[from] CaseRefusal),
    #[error("this Idempotency-Key was used with a different request")]
    KeyReused,
    #[error("a request with this Idempotency-Key is still in flight")]
    KeyInFlight,
    #[error("request body too large")]
    TooLarge,
    #[error("this method is not allowed on this path")]
    MethodNotAllowed,
    #[error("internal error")]
    Internal(String),
    #[error(transparent)]
    Software(SoftwareRefusal),
    #[error(
        "the database is unavailable; nothing was applied; retry after the time in Retry-After"
    )]
    Unavailable(String),
    #[error("the service is overloaded; nothing was applied; retry after the time in Retry-After")]
    Overloaded,
    #[error("the database's storage is full; nothing was applied; reads still work")]
    StorageFull(String),
    #[error("the connection to the database was lost while committing: the change may or may not have been applied; retry with the same Idempotency-Key to learn which (a replay) or to have it applied once")]
    OutcomeUnknown(String),
}

/// Seconds a client should wait before sending a request refused with 503.
pub const RETRY_AFTER_SECONDS: u64 = 1;

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable, machine-readable.
    pub code: String,
    pub message: String,
    /// Field errors, refusal details, or null.
    #[schema(value_type = Option<Object>)]
    pub details: Value,
}

impl ApiError {
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        ApiError::Invalid(Invalid::field(field, message))
    }

    pub fn not_found(what: &'static str, id: &str) -> Self {
        ApiError::NotFound {
            what,
            id: id.chars().take(80).collect(),
        }
    }

    fn parts(&self) -> (StatusCode, &'static str, Value) {
        match self {
            ApiError::BadRequest { code, .. } => (StatusCode::BAD_REQUEST, code, Value::Null),
            ApiError::Invalid(inv) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
                json!({ "fields": fields(&inv.0) }),
            ),
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized", Value::Null),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden", Value::Null),
            ApiError::NotFound { what, id } => (
                StatusCode::NOT_FOUND,
                "not_found",
                json!({ "resource": what, "id": id }),
            ),
            ApiError::Conflict { code, details, .. } => {
                (StatusCode::CONFLICT, code, details.clone())
            }
            ApiError::Refused(r) => {
                let status = match r {
                    Refusal::EntitlementExhausted { .. } | Refusal::ChannelExhausted { .. } => {
                        StatusCode::CONFLICT
                    }
                    Refusal::EntitlementNotFound { .. } => StatusCode::NOT_FOUND,
                    Refusal::EntitlementNotActive { .. } => StatusCode::CONFLICT,
                    Refusal::DuplicateReference { .. } => StatusCode::CONFLICT,
                    Refusal::UnknownChannel { .. } | Refusal::InvalidQuantity { .. } => {
                        StatusCode::UNPROCESSABLE_ENTITY
                    }
                };
                (
                    status,
                    r.code(),
                    serde_json::to_value(r).unwrap_or(Value::Null),
                )
            }
            ApiError::Reservation(r) => {
                let (status, code) = match r {
                    ReservationRefusal::ReservationNotFound { .. } => {
                        (StatusCode::NOT_FOUND, "not_found")
                    }
                    ReservationRefusal::ReservationSettled { .. } => {
                        (StatusCode::CONFLICT, "reservation_settled")
                    }
                };
                (status, code, serde_json::to_value(r).unwrap_or(Value::Null))
            }
            ApiError::Case(r) => {
                let status = match r {
                    CaseRefusal::InvalidCaseTransition { .. }
                    | CaseRefusal::DuplicateTimeEntry { .. }
                    | CaseRefusal::TooManyTimeEntries { .. } => StatusCode::CONFLICT,
                    CaseRefusal::TimeEntryNotFound { .. } => StatusCode::NOT_FOUND,
                    CaseRefusal::InvalidHours { .. }
                    | CaseRefusal::UnitNotHours { .. }
                    | CaseRefusal::EntitlementNotFound { .. } => StatusCode::UNPROCESSABLE_ENTITY,
                };
                (
                    status,
                    r.code(),
                    serde_json::to_value(r).unwrap_or(Value::Null),
                )
            }
            ApiError::KeyReused => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                Value::Null,
            ),
            ApiError::KeyInFlight => (
                StatusCode::CONFLICT,
                "idempotency_key_in_flight",
                Value::Null,
            ),
            ApiError::TooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                Value::Null,
            ),
            ApiError::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                Value::Null,
            ),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal", Value::Null),
            ApiError::Unavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "database_unavailable",
                Value::Null,
            ),
            ApiError::Overloaded => (StatusCode::SERVICE_UNAVAILABLE, "overloaded", Value::Null),
            ApiError::StorageFull(_) => (
                StatusCode::INSUFFICIENT_STORAGE,
                "storage_full",
                Value::Null,
            ),
            ApiError::OutcomeUnknown(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "outcome_unknown",
                Value::Null,
            ),
            ApiError::Software(r) => {
                let status = match r {
                    SoftwareRefusal::LicenseKeyUnknown { .. }
                    | SoftwareRefusal::MetricMismatch
                    | SoftwareRefusal::TooMany { .. } => StatusCode::UNPROCESSABLE_ENTITY,
                    _ => StatusCode::CONFLICT,
                };
                (
                    status,
                    r.code(),
                    serde_json::to_value(r).unwrap_or(Value::Null),
                )
            }
        }
    }

    pub fn status(&self) -> StatusCode {
        self.parts().0
    }

    /// The error body, as sent (and as stored for idempotent replay).
    pub fn body(&self) -> Value {
        let (_, code, details) = self.parts();
        let message = self.to_string();
        json!({ "error": { "code": code, "message": message, "details": details } })
    }
}

fn fields(errors: &[FieldError]) -> Value {
    serde_json::to_value(errors).unwrap_or(Value::Null)
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            ApiError::Internal(detail) => tracing::error!(%detail, "internal error"),
            ApiError::OutcomeUnknown(detail) => tracing::error!(%detail, "outcome unknown"),
            ApiError::Unavailable(detail) => tracing::warn!(%detail, "database unavailable"),
            ApiError::StorageFull(detail) => tracing::warn!(%detail, "storage full"),
            _ => {}
        }
        let mut response = (self.status(), Json(self.body())).into_response();
        if self.status() == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(RETRY_AFTER_SECONDS),
            );
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { what, id } => ApiError::NotFound { what, id },
            StoreError::Conflict { code, message } => ApiError::Conflict {
                code,
                message,
                details: Value::Null,
            },
            StoreError::Invalid(inv) => ApiError::Invalid(inv),
            StoreError::Lifecycle(e) => ApiError::Conflict {
                code: "invalid_transition",
                message: e.to_string(),
                details: json!({ "action": e.action, "from": e.from }),
            },
            StoreError::Edit(e) => match e {
                allot_core::lifecycle::EditRefused::NotDraft(status) => ApiError::Conflict {
                    code: "not_editable",
                    message: e.to_string(),
                    details: json!({ "status": status }),
                },
                allot_core::lifecycle::EditRefused::UnitChanged => {
                    ApiError::field("unit", e.to_string())
                }
                allot_core::lifecycle::EditRefused::AccountChanged => {
                    ApiError::field("account_id", e.to_string())
                }
            },
            StoreError::Backend(detail) => ApiError::Internal(detail),
            StoreError::Software(r) => ApiError::Software(r),
            StoreError::Unavailable(detail) => ApiError::Unavailable(detail),
            StoreError::OutcomeUnknown(detail) => ApiError::OutcomeUnknown(detail),
            StoreError::StorageFull(detail) => ApiError::StorageFull(detail),
        }
    }
}

impl ApiError {
    /// The error an outcome that did not apply stands for.
    pub fn from_outcome(outcome: Outcome) -> ApiError {
        match outcome {
            Outcome::Refused { refusal } => refusal.into(),
            Outcome::ReservationRefused { refusal } => refusal.into(),
            Outcome::CaseRefused { refusal } => refusal.into(),
            Outcome::CaseMissing { case_id } => ApiError::not_found("case", &case_id),
            Outcome::Applied { .. } => {
                ApiError::Internal("an applied outcome is not an error".into())
            }
        }
    }
}

impl From<Refusal> for ApiError {
    fn from(r: Refusal) -> Self {
        match r {
            // A bad quantity is bad input like any other: a field error.
            Refusal::InvalidQuantity { field, message } => ApiError::field(&field, message),
            other => ApiError::Refused(other),
        }
    }
}

impl From<SubmitError> for ApiError {
    fn from(e: SubmitError) -> Self {
        match e {
            SubmitError::KeyInFlight => ApiError::KeyInFlight,
            SubmitError::Store(e) => e.into(),
            SubmitError::Stopped => ApiError::Internal("write path stopped".into()),
            SubmitError::Overloaded => ApiError::Overloaded,
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod fault_tests {
    use super::*;

    fn answer(e: ApiError) -> (StatusCode, Option<String>, String) {
        let code = e.body()["error"]["code"].as_str().unwrap().to_string();
        let response = e.into_response();
        let retry_after = response
            .headers()
            .get(axum::http::header::RETRY_AFTER)
            .map(|v| v.to_str().unwrap().to_string());
        (response.status(), retry_after, code)
    }

    #[test]
    fn each_fault_says_what_to_do() {
        let unavailable = StoreError::Unavailable("refused".into());
        assert_eq!(
            answer(unavailable.into()),
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Some("1".into()),
                "database_unavailable".into()
            )
        );
        assert_eq!(
            answer(SubmitError::Overloaded.into()),
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Some("1".into()),
                "overloaded".into()
            )
        );
        assert_eq!(
            answer(StoreError::StorageFull("full".into()).into()),
            (
                StatusCode::INSUFFICIENT_STORAGE,
                None,
                "storage_full".into()
            )
        );
        let unknown: ApiError = StoreError::OutcomeUnknown("cut".into()).into();
        assert!(unknown.to_string().contains("same Idempotency-Key"));
        assert_eq!(
            answer(unknown),
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                None,
                "outcome_unknown".into()
            )
        );
        // A batch's failure reaches each of its requests with its kind.
        for e in [
            StoreError::Unavailable("x".into()),
            StoreError::OutcomeUnknown("x".into()),
            StoreError::StorageFull("x".into()),
        ] {
            let again = e.for_each_request();
            assert_eq!(std::mem::discriminant(&again), std::mem::discriminant(&e));
        }
        assert!(matches!(
            StoreError::not_found("case", "c").for_each_request(),
            StoreError::Backend(_)
        ));
    }
}
