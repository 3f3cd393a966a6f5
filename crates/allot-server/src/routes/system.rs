//! Health, readiness, metrics and the OpenAPI document.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde_json::json;

use crate::state::AppState;

pub async fn healthz() -> &'static str {
    "ok"
}

/// How long `/readyz` waits for the database's answer.
const READY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// Ready when the database answers (within `READY_TIMEOUT`).
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let pinged = tokio::time::timeout(READY_TIMEOUT, state.store.ping())
        .await
        .unwrap_or_else(|_| {
            Err(allot_store::StoreError::Unavailable(
                "no answer from the database in time".into(),
            ))
        });
    match pinged {
        Ok(()) => (
            StatusCode::OK,
            Json(json!({ "status": "ready", "backend": state.store.backend() })),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "not ready");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "status": "unavailable" })),
            )
        }
    }
}

pub async fn metrics() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::telemetry::render(),
    )
}

pub async fn openapi() -> impl IntoResponse {
    Json(crate::openapi::document())
}
