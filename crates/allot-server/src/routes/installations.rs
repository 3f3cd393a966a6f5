//! Installations (what discovery found running) and reconciliations (rights
//! owned against rights needed, kept as history).

use allot_core::software::reconcile::Installation;
use allot_store::ids::{ReconciliationId, SoftwareModelId, TypedId};
use allot_store::software::{Moment, Reconciliation, ReconciliationRun};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use axum::Json;
use chrono::{DateTime, Utc};

use super::{fetch, listing};
use crate::auth::{Permission, Principal};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{parse_json, parse_optional_json, Query};
use crate::idempotency::{answer, send, Keyed};
use crate::software::inputs::{
    InstallationBatch, InstallationInput, RunReconciliation, MAX_INSTALLATIONS,
};
use crate::software::views::{InstallationsRecorded, ReconciliationView};
use crate::state::AppState;
use crate::views::Listing;

/// Largest body `POST /v1/installations` takes (10,000 rows of JSON or CSV).
pub const INSTALLATIONS_BODY_LIMIT: usize = 4 * 1024 * 1024;

fn is_csv(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("text/csv"))
}

/// `text/csv` with a header row naming `software_model_id`, `device`,
/// `seen_at` and optionally `user` and `cores`, in any order. Fields are
/// plain (no quoting): model ids, device and user names hold no commas.
pub fn parse_csv(body: &[u8]) -> ApiResult<Vec<InstallationInput>> {
    let text = std::str::from_utf8(body).map_err(|_| ApiError::BadRequest {
        code: "malformed_csv",
        message: "the CSV body is not UTF-8".into(),
    })?;
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<&str> = lines
        .next()
        .ok_or_else(|| ApiError::field("body", "a header row is required"))?
        .split(',')
        .map(str::trim)
        .collect();
    let column = |name: &str| header.iter().position(|h| *h == name);
    if let Some(unknown) = header
        .iter()
        .find(|h| !["software_model_id", "device", "user", "cores", "seen_at"].contains(h))
    {
        return Err(ApiError::field("body", format!("unknown column {unknown}")));
    }
    let required = |name: &str| {
        column(name).ok_or_else(|| ApiError::field("body", format!("column {name} is required")))
    };
    let (model, device, seen) = (
        required("software_model_id")?,
        required("device")?,
        required("seen_at")?,
    );
    let (user, cores) = (column("user"), column("cores"));
    let mut rows = Vec::new();
    for (n, line) in lines.enumerate() {
        let at = format!("row {}", n + 2);
        let cells: Vec<&str> = line.split(',').map(str::trim).collect();
        if cells.len() != header.len() {
            return Err(ApiError::field(
                &at,
                format!("has {} cells, the header {}", cells.len(), header.len()),
            ));
        }
        let optional = |i: Option<usize>| i.map(|i| cells[i]).filter(|c| !c.is_empty());
        let seen_at = DateTime::parse_from_rfc3339(cells[seen])
            .map_err(|_| ApiError::field(&format!("{at}.seen_at"), "must be an RFC 3339 time"))?
            .with_timezone(&Utc);
        let cores = optional(cores)
            .map(|c| c.parse::<i64>())
            .transpose()
            .map_err(|_| ApiError::field(&format!("{at}.cores"), "must be a whole number"))?;
        rows.push(InstallationInput {
            software_model_id: cells[model].to_string(),
            device: cells[device].to_string(),
            user: optional(user).map(str::to_string),
            cores,
            seen_at,
        });
        if rows.len() > MAX_INSTALLATIONS {
            return Err(ApiError::field(
                "body",
                format!("at most {MAX_INSTALLATIONS} rows"),
            ));
        }
    }
    Ok(rows)
}

/// One installation, `{"items": [...]}`, or CSV rows.
fn parse_installations(headers: &HeaderMap, body: &[u8]) -> ApiResult<Vec<Installation>> {
    let (inputs, prefix): (Vec<InstallationInput>, fn(usize) -> String) = if is_csv(headers) {
        (parse_csv(body)?, |i| format!("row {}.", i + 2))
    } else {
        let value: serde_json::Value = parse_json(body)?;
        if value.get("items").is_some() {
            let batch: InstallationBatch = parse_json(body)?;
            (batch.items, |i| format!("items[{i}]."))
        } else {
            (vec![parse_json::<InstallationInput>(body)?], |_| {
                String::new()
            })
        }
    };
    if inputs.is_empty() || inputs.len() > MAX_INSTALLATIONS {
        return Err(ApiError::field(
            "items",
            format!("must hold 1 to {MAX_INSTALLATIONS} installations"),
        ));
    }
    inputs
        .into_iter()
        .enumerate()
        .map(|(i, input)| input.checked(&prefix(i)))
        .collect()
}

#[utoipa::path(post, path = "/v1/installations", operation_id = "record_installations", tag = "software",
    request_body(content(
        (InstallationInput = "application/json"),
        (InstallationBatch = "application/json"),
        (String = "text/csv", example = "software_model_id,device,user,cores,seen_at\nswm_…,laptop-7,ann,8,2026-06-14T09:00:00Z")),
        description = "One installation, `{\"items\": [...]}` (up to 10,000), or CSV with a header row. A repeated (model, device) moves its `seen_at` forward."),
    responses((status = 201, body = InstallationsRecorded), (status = 422, body = ErrorBody),
        (status = 413, description = "`payload_too_large`: the body is over 4 MiB (over 1 MiB with an Idempotency-Key).", body = ErrorBody)))]
pub async fn record(
    State(state): State<AppState>,
    principal: Principal,
    keyed: Keyed,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    principal.require(Permission::RecordInstallations)?;
    let installations = parse_installations(&headers, &body)?;
    let mut checked = std::collections::BTreeSet::new();
    for (i, row) in installations.iter().enumerate() {
        let model = &row.software_model_id;
        if checked.contains(model) {
            continue;
        }
        let exists = SoftwareModelId::parse(model).is_some()
            && state.store.get_software_model(model).await?.is_some();
        if !exists {
            let field = if installations.len() == 1 && !is_csv(&headers) {
                "software_model_id".to_string()
            } else {
                format!("items[{i}].software_model_id")
            };
            return Err(ApiError::field(&field, "software model does not exist"));
        }
        checked.insert(model.clone());
    }
    let render = |n: &usize| answer(StatusCode::CREATED, &InstallationsRecorded { recorded: *n });
    let audit = principal.audit();
    let at = Moment {
        audit: &audit,
        today: state.clock.today(),
        now: state.clock.now(),
    };
    let recorded = state
        .store
        .record_installations(&installations, at, keyed.answering(render))
        .await?;
    Ok(send(&render(&recorded)))
}

#[utoipa::path(post, path = "/v1/reconciliations", operation_id = "run_reconciliation", tag = "software",
    request_body(content = Option<RunReconciliation>, description = "No body or `{}` for every model; `{\"software_model_id\"}` for one."),
    responses((status = 201, body = ReconciliationView), (status = 422, body = ErrorBody)))]
pub async fn run(
    State(state): State<AppState>,
    principal: Principal,
    keyed: Keyed,
    body: Bytes,
) -> ApiResult<Response> {
    principal.require(Permission::Manage)?;
    let input: RunReconciliation = parse_optional_json(&body)?;
    if let Some(model) = &input.software_model_id {
        let exists = SoftwareModelId::parse(model).is_some()
            && state.store.get_software_model(model).await?.is_some();
        if !exists {
            return Err(ApiError::field(
                "software_model_id",
                "software model does not exist",
            ));
        }
    }
    let now = state.clock.now();
    let id = ReconciliationId::new(now).into_string();
    let stale_before = now - chrono::Duration::days(i64::from(state.install_stale_days));
    let run = ReconciliationRun {
        id: &id,
        software_model_id: input.software_model_id.as_deref(),
        stale_before,
    };
    let render = |r: &Reconciliation| answer(StatusCode::CREATED, &ReconciliationView::from(r));
    let audit = principal.audit();
    let at = Moment {
        audit: &audit,
        today: state.clock.today(),
        now,
    };
    let result = state
        .store
        .run_reconciliation(&run, at, keyed.answering(render))
        .await?;
    let view = ReconciliationView::from(result);
    Ok(send(&answer(StatusCode::CREATED, &view)))
}

#[utoipa::path(get, path = "/v1/reconciliations", operation_id = "list_reconciliations", tag = "software",
    params(crate::extract::PageParams),
    responses((status = 200, description = "Oldest first.", body = Listing<ReconciliationView>), (status = 422, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    query: Query,
) -> ApiResult<Json<Listing<ReconciliationView>>> {
    principal.require(Permission::ReadCompliance)?;
    let page = query.page()?;
    let rows = state.store.list_reconciliations(&fetch(&page)).await?;
    Ok(Json(listing(
        rows,
        page.limit,
        |r| r.id.clone(),
        |r| ReconciliationView::from(&r),
    )))
}

#[utoipa::path(get, path = "/v1/reconciliations/{id}", operation_id = "get_reconciliation", tag = "software", params(("id" = String, Path)),
    responses((status = 200, body = ReconciliationView), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<ReconciliationView>> {
    principal.require(Permission::ReadCompliance)?;
    let found = if ReconciliationId::parse(&id).is_some() {
        state.store.get_reconciliation(&id).await?
    } else {
        None
    };
    let r = found.ok_or_else(|| ApiError::not_found("reconciliation", &id))?;
    Ok(Json(ReconciliationView::from(&r)))
}
