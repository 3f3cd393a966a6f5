//! `Idempotency-Key` for requests outside the write path (creates, edits,
//! lifecycle). The write path records its keys inside its own transaction;
//! here a key is claimed before the handler runs and its answer stored
//! after. A claim left unfinished by a crash can be taken over after
//! `STALE_AFTER`, so a key never stays blocked.

use allot_store::model::KeyClaim;
use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::auth::Principal;
use crate::error::ApiError;
use crate::state::AppState;

pub const HEADER: &str = "idempotency-key";
pub const REPLAYED: &str = "idempotent-replayed";
const STALE_AFTER_SECONDS: i64 = 60;
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
    let fp = fingerprint(parts.method.as_str(), parts.uri.path(), &bytes);
    let now = state.clock.now();
    let stale_before = now - chrono::Duration::seconds(STALE_AFTER_SECONDS);
    match state
        .store
        .claim_key(&principal.key_id, &key, &fp, now, stale_before)
        .await?
    {
        KeyClaim::Existing(record) => {
            if record.fingerprint != fp {
                return Err(ApiError::KeyReused);
            }
            match record.answer {
                Some(answer) => Ok(replay(&answer)),
                None => Err(ApiError::KeyInFlight),
            }
        }
        KeyClaim::Claimed => {
            let response = next
                .run(Request::from_parts(parts, Body::from(bytes)))
                .await;
            let status = response.status();
            if status.is_server_error() {
                state.store.abandon_key(&principal.key_id, &key).await?;
                return Ok(response);
            }
            let (parts, body) = response.into_parts();
            let body = to_bytes(body, usize::MAX)
                .await
                .map_err(|e| ApiError::Internal(e.to_string()))?;
            let json_body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let answer = json!({ "status": status.as_u16(), "body": json_body });
            state
                .store
                .finish_key(&principal.key_id, &key, &answer)
                .await?;
            Ok(Response::from_parts(parts, Body::from(body)))
        }
    }
}

fn replay(answer: &Value) -> Response {
    let status = answer["status"]
        .as_u64()
        .and_then(|s| StatusCode::from_u16(s as u16).ok())
        .unwrap_or(StatusCode::OK);
    let mut response = (status, axum::Json(answer["body"].clone())).into_response();
    response
        .headers_mut()
        .insert(REPLAYED, HeaderValue::from_static("true"));
    response
}
