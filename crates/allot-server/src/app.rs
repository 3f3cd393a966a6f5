//! The router: which path goes to which handler, behind which layers.

use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::routing::{get, post};
use axum::Router;

use crate::error::ApiError;
use crate::routes::{
    audit, cases, contracts, entitlements, installations, keys, notifications, parties,
    report_totals, reports, software, system, templates, usage, usage_batch, webhooks,
};
use crate::state::AppState;
use crate::{auth, idempotency, telemetry};

/// Largest request body accepted.
pub const BODY_LIMIT: usize = 256 * 1024;

pub fn router(state: AppState) -> Router {
    // Mutations outside the write path: idempotency by claim-then-store.
    let claimed = Router::new()
        .route("/v1/accounts", post(parties::create_account))
        .route("/v1/contacts", post(parties::create_contact))
        .route("/v1/products", post(parties::create_product))
        .route("/v1/entitlements", post(entitlements::create))
        .route(
            "/v1/entitlements/{id}",
            axum::routing::patch(entitlements::patch),
        )
        .route(
            "/v1/entitlements/{id}/activate",
            post(entitlements::activate),
        )
        .route(
            "/v1/entitlements/{id}/deactivate",
            post(entitlements::deactivate),
        )
        .route("/v1/entitlements/{id}/cancel", post(entitlements::cancel))
        .route("/v1/entitlements/{id}/renew", post(entitlements::renew))
        .route("/v1/api-keys", post(keys::create))
        .route("/v1/api-keys/{id}/revoke", post(keys::revoke))
        .route(
            "/v1/accounts/{id}",
            axum::routing::patch(notifications::patch_account),
        )
        .route("/v1/webhooks", post(webhooks::create))
        .route(
            "/v1/webhooks/{id}",
            axum::routing::patch(webhooks::patch).delete(webhooks::delete),
        )
        .route(
            "/v1/webhooks/{id}/rotate-secret",
            post(webhooks::rotate_secret),
        )
        .route("/v1/webhooks/{id}/test", post(webhooks::test))
        .route(
            "/v1/webhooks/{id}/deliveries/{delivery_id}/retry",
            post(webhooks::retry),
        )
        .merge(software_mutations())
        .merge(contract_mutations())
        .route_layer(from_fn_with_state(state.clone(), idempotency::layer));
    // Reads, and the write path (which records its keys in its own transaction).
    let direct = Router::new()
        .route("/v1/accounts", get(parties::list_accounts))
        .route("/v1/accounts/{id}", get(parties::get_account))
        .route("/v1/accounts/{id}/eligibility", get(parties::eligibility))
        .route("/v1/contacts", get(parties::list_contacts))
        .route("/v1/contacts/{id}", get(parties::get_contact))
        .route("/v1/products", get(parties::list_products))
        .route("/v1/products/{id}", get(parties::get_product))
        .route("/v1/entitlements", get(entitlements::list))
        .route("/v1/entitlements/{id}", get(entitlements::get))
        .route("/v1/entitlements/{id}/balance", get(entitlements::balance))
        .route(
            "/v1/entitlements/{id}/transitions",
            get(entitlements::transitions),
        )
        .route(
            "/v1/entitlements/{id}/usage",
            get(usage::ledger).post(usage::record),
        )
        .route("/v1/entitlements/{id}/adjustments", post(usage::adjust))
        .route(
            "/v1/entitlements/{id}/reservations",
            get(usage::reservations).post(usage::hold),
        )
        .route("/v1/reservations/{id}", get(usage::get_reservation))
        .route("/v1/reservations/{id}/commit", post(usage::commit))
        .route("/v1/reservations/{id}/release", post(usage::release))
        .route("/v1/events", get(usage::events))
        .route(
            "/v1/usage/batch",
            post(usage_batch::record_batch)
                .layer(DefaultBodyLimit::max(usage_batch::BATCH_BODY_LIMIT)),
        )
        .route("/v1/cases", get(cases::list).post(cases::open))
        .route(
            "/v1/cases/{id}",
            get(cases::get).patch(cases::patch).delete(cases::delete),
        )
        .route("/v1/cases/{id}/resolve", post(cases::resolve))
        .route("/v1/cases/{id}/cancel", post(cases::cancel))
        .route("/v1/cases/{id}/reactivate", post(cases::reactivate))
        .route("/v1/cases/{id}/time-entries", post(cases::log_time))
        .route(
            "/v1/cases/{id}/time-entries/{entry_id}",
            axum::routing::delete(cases::delete_time),
        )
        .route("/v1/api-keys", get(keys::list))
        .route("/v1/audit", get(audit::list))
        .merge(report_reads(&state))
        .route("/v1/webhooks", get(webhooks::list))
        .route("/v1/webhooks/{id}", get(webhooks::get))
        .route("/v1/webhooks/{id}/deliveries", get(webhooks::deliveries))
        .route("/v1/notifications", get(notifications::list))
        .merge(software_reads())
        .merge(imports())
        .merge(contract_reads());
    let api = claimed.merge(direct);
    // The dashboard calls the same handlers in process, as its signed-in key.
    let dashboard = crate::dashboard::router(api.clone().with_state(state.clone()));
    let v1 = api
        .route_layer(from_fn_with_state(state.clone(), auth::authenticate))
        // Lists and reports as whole CSV files (`export.rs`): it runs the
        // routes above page by page, each through authentication.
        .layer(crate::export::CsvExportLayer);
    Router::new()
        .route("/healthz", get(system::healthz))
        .route("/readyz", get(system::readyz))
        .route("/metrics", get(system::metrics))
        .route("/openapi.json", get(system::openapi))
        .merge(v1)
        .merge(dashboard)
        .fallback(|| async {
            ApiError::NotFound {
                what: "route",
                id: String::new(),
            }
        })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(from_fn(telemetry::track))
        .layer(from_fn(readable_path))
        .layer(from_fn(crate::request_id::assign))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(from_fn(deadline))
        .with_state(state)
}

/// Software entitlements, installations and reconciliations that change data.
fn software_mutations() -> Router<AppState> {
    use axum::routing::{delete, patch};
    Router::new()
        .route("/v1/software-models", post(software::create_model))
        .route("/v1/software-models/{id}", patch(software::patch_model))
        .route("/v1/software-entitlements", post(software::create))
        .route("/v1/software-entitlements/{id}", patch(software::patch))
        .route(
            "/v1/software-entitlements/{id}/publish",
            post(software::publish),
        )
        .route(
            "/v1/software-entitlements/{id}/retire",
            post(software::retire),
        )
        .route(
            "/v1/software-entitlements/{id}/license-keys",
            post(software::add_license_keys),
        )
        .route(
            "/v1/software-entitlements/{id}/downgrade-rights",
            post(software::add_downgrade_right),
        )
        .route(
            "/v1/software-entitlements/{id}/upgrade",
            post(software::upgrade),
        )
        .route(
            "/v1/software-entitlements/{id}/allocations",
            post(software::allocate),
        )
        .route(
            "/v1/software-entitlements/{id}/allocations/{allocation_id}",
            delete(software::free),
        )
        .route(
            "/v1/installations",
            post(installations::record).layer(DefaultBodyLimit::max(
                installations::INSTALLATIONS_BODY_LIMIT,
            )),
        )
        .route("/v1/reconciliations", post(installations::run))
}

/// CSV imports: a body of any size, streamed (no body limit), answered
/// when the whole file is checked (no deadline: `deadline` lets it run).
/// Not behind the idempotency layer, which would hold the body: usage rows
/// carry their own keys.
fn imports() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/imports/{kind}",
            post(crate::imports::import).layer(DefaultBodyLimit::disable()),
        )
        .route(
            "/v1/imports/{kind}/template",
            get(crate::imports::template_file),
        )
}

/// The reports, each on the report lane (`report_lane`).
fn report_reads(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/v1/reports/consumption", get(reports::consumption))
        .route(
            "/v1/reports/consumption/totals",
            get(report_totals::consumption_totals),
        )
        .route(
            "/v1/reports/approaching-limit",
            get(reports::approaching_limit),
        )
        .route("/v1/reports/expiring", get(reports::expiring))
        .route(
            "/v1/reports/counts",
            get(crate::routes::report_counts::report_counts),
        )
        .route("/v1/reports/unused", get(reports::unused))
        .route(
            "/v1/reports/unused/by-account",
            get(report_totals::unused_by_account),
        )
        .route("/v1/reports/forecast", get(reports::forecast_report))
        .route("/v1/reports/usage-over-time", get(reports::usage_over_time))
        .route(
            "/v1/reports/software-compliance",
            get(crate::routes::software_compliance::software_compliance),
        )
        .route_layer(from_fn_with_state(
            state.clone(),
            crate::report_lane::on_lane,
        ))
}

fn software_reads() -> Router<AppState> {
    Router::new()
        .route("/v1/software-models", get(software::list_models))
        .route("/v1/software-models/{id}", get(software::get_model))
        .route("/v1/software-entitlements", get(software::list))
        .route("/v1/software-entitlements/{id}", get(software::get))
        .route(
            "/v1/software-entitlements/{id}/allocations",
            get(software::list_allocations),
        )
        .route("/v1/reconciliations", get(installations::list))
        .route("/v1/reconciliations/{id}", get(installations::get))
}

/// Contracts, templates and make-default: what changes data.
fn contract_mutations() -> Router<AppState> {
    use axum::routing::patch;
    Router::new()
        .route("/v1/contracts", post(contracts::create))
        .route("/v1/contracts/{id}/lines", post(contracts::create_line))
        .route("/v1/contracts/{id}/activate", post(contracts::activate))
        .route("/v1/contracts/{id}/suspend", post(contracts::suspend))
        .route("/v1/contracts/{id}/resume", post(contracts::resume))
        .route("/v1/contracts/{id}/cancel", post(contracts::cancel))
        .route("/v1/contracts/{id}/renew", post(contracts::renew))
        .route(
            "/v1/entitlements/{id}/make-default",
            post(contracts::make_default),
        )
        .route("/v1/entitlement-templates", post(templates::create))
        .route(
            "/v1/entitlement-templates/{id}",
            patch(templates::patch).delete(templates::delete),
        )
        .route(
            "/v1/entitlement-templates/{id}/instantiate",
            post(templates::instantiate)
                .layer(DefaultBodyLimit::max(templates::INSTANTIATE_BODY_LIMIT)),
        )
}

fn contract_reads() -> Router<AppState> {
    Router::new()
        .route("/v1/contracts", get(contracts::list))
        .route("/v1/contracts/{id}", get(contracts::get))
        .route("/v1/contracts/{id}/lines", get(contracts::list_lines))
        .route(
            "/v1/contracts/{id}/entitlements",
            get(contracts::list_entitlements),
        )
        .route("/v1/entitlement-templates", get(templates::list))
        .route("/v1/entitlement-templates/{id}", get(templates::get))
        .route("/v1/jobs/{id}", get(templates::get_job))
}

/// How long a request may take before it is answered 408.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(30);

/// Past the deadline the handler is dropped and the request answered 408
/// with the error body, like every other 4xx (the document says so).
async fn deadline(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    // An import answers when its whole file is read, however long it is.
    if req.uri().path().starts_with("/v1/imports/") {
        return next.run(req).await;
    }
    match tokio::time::timeout(REQUEST_DEADLINE, next.run(req)).await {
        Ok(response) => response,
        Err(_) => (
            axum::http::StatusCode::REQUEST_TIMEOUT,
            axum::Json(serde_json::json!({ "error": {
                "code": "timeout",
                "message": format!("no answer within {} s; the request may or may not have been applied", REQUEST_DEADLINE.as_secs()),
                "details": null,
            }})),
        )
            .into_response(),
    }
}

/// A path that does not decode to UTF-8 names nothing here: a JSON 404,
/// rather than the extractor's plain-text 400.
async fn readable_path(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let raw = req.uri().path();
    let decoded: Vec<u8> = percent_decode(raw.as_bytes());
    if std::str::from_utf8(&decoded).is_err() {
        return ApiError::NotFound {
            what: "route",
            id: String::new(),
        }
        .into_response();
    }
    next.run(req).await
}

fn percent_decode(bytes: &[u8]) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push(h * 16 + l);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}
