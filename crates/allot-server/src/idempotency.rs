//! `Idempotency-Key` for requests outside the write path (creates, edits,
//! lifecycle, keys). The write path records its keys inside its own
//! transaction. Here the layer replays a key already answered, refuses one
//! used with another request (422) or in flight in this process (409), and
//! hands the key to the handler (`Keyed`), which records its answer in the
//! same transaction as its change (`Keyed::answering`): a crash can never
//! leave a change without its answer, so a retry never applies it twice. A
//! refused request changed nothing; the layer records its answer alone.

use allot_core::idempotency::{key_use, KeyUse};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use allot_store::plan::{IdemKey, KeyWrite};
use allot_store::{Answering, StoreError, StoredAnswer};
use axum::body::{to_bytes, Body};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use crate::auth::Principal;
use crate::error::ApiError;
use crate::state::AppState;

pub const HEADER: &str = "idempotency-key";
pub const REPLAYED: &str = "idempotent-replayed";
const MAX_KEY_LEN: usize = 255;
/// Bodies larger than this are not accepted anyway (see the body limit).
const MAX_BODY: usize = 1 << 20;

/// A hash of what makes two requests "the same".
pub fn fingerprint(method: &str, path: &str, body: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(method.as_bytes());
    h.update([0]);
    h.update(path.as_bytes());
    h.update([0]);
    h.update(body);
    hex::encode(h.finalize())
}

/// Reads and checks the header; `None` when absent or empty (an optional
/// header sent empty is a header not sent, as the document says).
pub fn key_from(headers: &axum::http::HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(HEADER) else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .map_err(|_| ApiError::field("Idempotency-Key", "must be visible ASCII"))?
        .trim();
    if key.is_empty() {
        return Ok(None);
    }
    if key.len() > MAX_KEY_LEN {
        return Err(ApiError::field(
            "Idempotency-Key",
            format!("must be 1 to {MAX_KEY_LEN} characters"),
        ));
    }
    Ok(Some(key.to_string()))
}

/// The request's idempotency key, for a handler to record its answer with
/// its change. Without a key (or outside the layer) it records nothing.
#[derive(Clone, Default)]
pub struct Keyed {
    key: Option<IdemKey>,
    /// Set once the handler handed the key to a store mutation.
    taken: Arc<AtomicBool>,
}

impl Keyed {
    /// The key and the rendering of the change's result into the answer,
    /// for a store mutation; render the response with the same function.
    pub fn answering<T>(
        &self,
        render: impl Fn(&T) -> StoredAnswer + Send + Sync + 'static,
    ) -> Option<Answering<T>> {
        let key = self.key.clone()?;
        self.taken.store(true, Ordering::SeqCst);
        Some(Answering {
            key,
            render: Box::new(render),
        })
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Keyed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(parts.extensions.get::<Keyed>().cloned().unwrap_or_default())
    }
}

/// An answer as the client gets it (and as a replay gives it again).
pub fn answer<T: serde::Serialize>(status: StatusCode, body: &T) -> StoredAnswer {
    StoredAnswer {
        status: status.as_u16(),
        body: serde_json::to_string(body).unwrap_or_else(|e| {
            tracing::error!(error = %e, "a response body did not serialize");
            "null".into()
        }),
    }
}

/// The response carrying exactly `answer`'s status and bytes.
pub fn send(answer: &StoredAnswer) -> Response {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK);
    if status == StatusCode::NO_CONTENT {
        return status.into_response();
    }
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        answer.body.clone(),
    )
        .into_response()
}

pub async fn layer(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let Some(key) = key_from(req.headers())? else {
        return Ok(next.run(req).await);
    };
    let principal = req
        .extensions()
        .get::<Principal>()
        .cloned()
        .ok_or(ApiError::Unauthorized)?;
    let (parts, body) = req.into_parts();
    let bytes = to_bytes(body, MAX_BODY)
        .await
        .map_err(|_| ApiError::TooLarge)?;
    let key = IdemKey {
        scope: principal.key_id.clone(),
        key,
        fingerprint: fingerprint(parts.method.as_str(), parts.uri.path(), &bytes),
    };
    let _hold = state
        .writes
        .hold_key(Some((key.scope.clone(), key.key.clone())))?;
    if let Some(record) = state.store.get_key(&key.scope, &key.key).await? {
        let stored = Some((record.fingerprint.as_str(), record.answer.as_ref()));
        return match key_use(stored, &key.fingerprint) {
            KeyUse::Replay(answer) => {
                let answer = StoredAnswer::from_value(&answer).ok_or_else(|| {
                    ApiError::Internal(format!("unreadable stored answer for key {}", key.key))
                })?;
                Ok(replay(&answer))
            }
            KeyUse::Mismatch => Err(ApiError::KeyReused),
            KeyUse::InFlight | KeyUse::Fresh => Err(ApiError::KeyInFlight),
        };
    }
    let keyed = Keyed {
        key: Some(key.clone()),
        taken: Arc::default(),
    };
    let mut req = Request::from_parts(parts, Body::from(bytes));
    req.extensions_mut().insert(keyed.clone());
    let response = next.run(req).await;
    let status = response.status();
    if status.is_server_error() {
        return Ok(response);
    }
    if status.is_success() && keyed.taken.load(Ordering::SeqCst) {
        return Ok(response);
    }
    debug_assert!(
        !status.is_success(),
        "a handler answered {status} to a keyed request without recording its answer"
    );
    // A refusal changed nothing: its answer is recorded on its own.
    let (parts, body) = response.into_parts();
    let body = to_bytes(body, usize::MAX)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let answer = StoredAnswer {
        status: status.as_u16(),
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    let write = KeyWrite {
        scope: key.scope,
        key: key.key,
        fingerprint: key.fingerprint,
        answer: answer.to_value(),
    };
    match state.store.record_answer(&write, state.clock.now()).await {
        Ok(()) | Err(StoreError::Conflict { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(Response::from_parts(parts, Body::from(body)))
}

/// `answer` again, marked as a replay.
pub fn replay(answer: &StoredAnswer) -> Response {
    let mut response = send(answer);
    response
        .headers_mut()
        .insert(REPLAYED, HeaderValue::from_static("true"));
    response
}
