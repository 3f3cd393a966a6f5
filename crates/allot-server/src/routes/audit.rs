//! The audit trail, for admins and managers.

use allot_store::audit::{AuditEntry, AuditFilter};
use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::{fetch, listing};
use crate::auth::{Permission, Principal};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::Query;
use crate::state::AppState;
use crate::views::Listing;

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditView {
    pub id: String,
    /// The API key id, or "system".
    pub actor: String,
    pub role: String,
    pub action: String,
    pub target_type: String,
    pub target_id: String,
    #[schema(value_type = Option<Object>)]
    pub before: Option<serde_json::Value>,
    #[schema(value_type = Option<Object>)]
    pub after: Option<serde_json::Value>,
    pub request_id: Option<String>,
    pub at: DateTime<Utc>,
}

impl From<AuditEntry> for AuditView {
    fn from(e: AuditEntry) -> Self {
        AuditView {
            id: e.id,
            actor: e.actor,
            role: e.role,
            action: e.action,
            target_type: e.target_type,
            target_id: e.target_id,
            before: e.before,
            after: e.after,
            request_id: e.request_id,
            at: e.at,
        }
    }
}

fn time(query: &Query, name: &str) -> ApiResult<Option<DateTime<Utc>>> {
    query
        .get(name)
        .map(|v| {
            DateTime::parse_from_rfc3339(v)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| {
                    ApiError::field(name, "must be an RFC 3339 time, e.g. 2026-06-15T12:00:00Z")
                })
        })
        .transpose()
}

#[utoipa::path(get, path = "/v1/audit", operation_id = "list_audit", tag = "audit",
    params(("actor" = Option<String>, Query), ("action" = Option<String>, Query), ("target_id" = Option<String>, Query),
        ("since" = Option<chrono::DateTime<chrono::Utc>>, Query), ("until" = Option<chrono::DateTime<chrono::Utc>>, Query), crate::extract::PageParams),
    responses((status = 200, body = Listing<AuditView>), (status = 403, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    query: Query,
) -> ApiResult<Json<Listing<AuditView>>> {
    principal.require(Permission::Manage)?;
    let page = query.page()?;
    let filter = AuditFilter {
        actor: query.get("actor").map(str::to_string),
        action: query.get("action").map(str::to_string),
        target_id: query.get("target_id").map(str::to_string),
        since: time(&query, "since")?,
        until: time(&query, "until")?,
    };
    let rows = state.store.list_audit(&filter, &fetch(&page)).await?;
    Ok(Json(listing(
        rows,
        page.limit,
        |e| e.id.clone(),
        AuditView::from,
    )))
}
