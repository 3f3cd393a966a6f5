//! HTTP handlers, one module per resource. A handler checks the caller's
//! permission, parses, calls the store or the write path, and renders.

pub mod audit;
pub mod cases;
pub mod contracts;
pub mod entitlements;
pub mod installations;
pub mod keys;
pub mod notifications;
pub mod parties;
pub mod report_counts;
pub mod report_totals;
pub mod reports;
pub mod software;
pub mod software_compliance;
pub mod system;
pub mod templates;
pub mod usage;
pub mod usage_batch;
pub mod webhooks;

use allot_store::plan::{BatchItem, Command, IdemKey, ItemAnswer, Render};
use allot_store::StoredAnswer;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::Response;
use utoipa::ToSchema;

use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::extract::read_body;
use crate::idempotency::{answer, fingerprint, key_from, replay, send};
use crate::state::AppState;

use crate::views::Listing;

/// Builds a page from `limit + 1` fetched rows.
pub fn listing<T: ToSchema, R>(
    mut rows: Vec<R>,
    limit: u32,
    id: impl Fn(&R) -> String,
    view: impl Fn(R) -> T,
) -> Listing<T> {
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next_cursor = if more { rows.last().map(&id) } else { None };
    Listing {
        items: rows.into_iter().map(view).collect(),
        next_cursor,
    }
}

/// The page to ask a store for: one more row than shown, to know if there is more.
pub fn fetch(page: &allot_store::model::Page) -> allot_store::model::Page {
    allot_store::model::Page {
        after: page.after.clone(),
        limit: page.limit + 1,
    }
}

/// A request bound for the write path: who sends it, and its idempotency key.
pub struct Submission {
    pub principal: Principal,
    key: Option<IdemKey>,
    /// The raw body: what the handler parses, and what the key's fingerprint covers.
    pub body: Bytes,
}

impl<S: Send + Sync> FromRequest<S> for Submission {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let principal = req
            .extensions()
            .get::<Principal>()
            .cloned()
            .ok_or(ApiError::Unauthorized)?;
        let key = key_from(req.headers())?;
        let (method, path) = (req.method().clone(), req.uri().path().to_string());
        let body = read_body(req, state).await?;
        let key = key.map(|key| IdemKey {
            scope: principal.key_id.clone(),
            key,
            fingerprint: fingerprint(method.as_str(), &path, &body),
        });
        Ok(Submission {
            principal,
            key,
            body,
        })
    }
}

impl Submission {
    /// Submits `command` to the write path. The response is `render` of its
    /// outcome (exactly what its idempotency key stores), or what the key
    /// answered before.
    pub async fn submit(
        self,
        state: &AppState,
        command: Command,
        render: Render,
    ) -> ApiResult<Response> {
        let item = BatchItem {
            command,
            actor: self.principal.audit(),
            idempotency: self.key,
            render,
        };
        match state.writes.submit(item).await? {
            ItemAnswer::KeyMismatch => Err(ApiError::KeyReused),
            ItemAnswer::KeyRevoked => Err(ApiError::Unauthorized),
            ItemAnswer::Done { outcome } => Ok(send(&render.answer(outcome))),
            ItemAnswer::Replayed { answer } => Ok(replay(&answer)),
        }
    }
}

/// A handler's result as the answer a client gets: its view with
/// `status`, or the error's status and body.
pub fn answer_of<T: serde::Serialize>(status: StatusCode, result: ApiResult<T>) -> StoredAnswer {
    match result {
        Ok(body) => answer(status, &body),
        Err(e) => {
            if let ApiError::Internal(detail) = &e {
                tracing::error!(%detail, "internal error");
            }
            answer(e.status(), &e.body())
        }
    }
}
