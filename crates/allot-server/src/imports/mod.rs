//! CSV import: `POST /v1/imports/{kind}` with a `text/csv` body
//! (`?dry_run=true` checks and writes nothing; `?allow_overage=true` lets
//! historic usage past a cap in, flagged `imported_overage`).
//!
//! How all-or-nothing and bounded memory fit together: the body is never
//! held whole. Four stages run at once, joined by small bounded channels:
//!
//! 1. the body's chunks, as they arrive (`pump`);
//! 2. a blocking thread parsing them as RFC 4180 CSV (`read::parse`, the
//!    `csv` crate; a UTF-8 BOM is dropped), handing on rows in chunks of
//!    `CHUNK` with their spreadsheet row numbers;
//! 3. this handler, which checks each chunk with its kind (`kinds`): the
//!    cells, then the references — to earlier rows of the file (a map of
//!    the file's keys, the only thing that grows with the file, one short
//!    entry per keyed row) and to existing objects (one query per chunk);
//! 4. the store, which writes each chunk of good rows as it comes inside
//!    one open transaction (`allot_store::imports::run_import`; usage
//!    through the write path's planner, so caps and idempotency keys hold
//!    across the file).
//!
//! At the end the transaction commits only if no row anywhere was bad (and
//! it is not a dry run); otherwise it rolls back, and the report lists every
//! bad row (the first `MAX_REPORTED`, and how many in all).

mod accounts;
mod contacts;
mod contracts;
mod entitlements;
mod kinds;
mod products;
mod read;
mod usage;

use std::sync::Arc;

use allot_store::imports::{ImportMsg, ImportOutcome, MAX_REPORTED};
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::StreamExt;
use serde::Serialize;
use tokio::sync::mpsc;
use utoipa::ToSchema;

use crate::auth::{Permission, Principal};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::Query;
use crate::state::AppState;

pub(crate) use kinds::external_id_free;
pub use kinds::{template, Column, KINDS};

/// Rows checked and written together.
pub const CHUNK: usize = 1_000;

/// The kinds of file an import takes (the document's name set).
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum ImportKindName {
    Accounts,
    Contacts,
    Products,
    Contracts,
    #[schema(rename = "contract-lines")]
    ContractLines,
    Entitlements,
    Usage,
}

/// One problem with one cell (or the header: row 1), as a spreadsheet
/// numbers rows: the header is row 1, the first data row is row 2.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq, Eq)]
pub struct RowError {
    pub row: u64,
    /// The column's header name (`body` for the file as a whole).
    pub column: String,
    /// The cell as given (cut to 200 characters).
    pub value: String,
    pub reason: String,
}

impl RowError {
    pub fn new(row: u64, column: &str, value: &str, reason: impl Into<String>) -> Self {
        RowError {
            row,
            column: column.to_string(),
            value: value.chars().take(200).collect(),
            reason: reason.into(),
        }
    }
}

/// What an import did, or would do (a dry run), or why it did nothing.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportReport {
    pub kind: String,
    pub dry_run: bool,
    /// Whether the rows were written (never on a dry run or with errors).
    pub committed: bool,
    /// Data rows read.
    pub rows: u64,
    /// Objects created (accounts, contacts, products, entitlements).
    pub created: u64,
    /// Usage rows applied.
    pub applied: u64,
    /// Usage rows whose idempotency key was applied before: not applied again.
    pub replayed: u64,
    /// Every bad row's problems (the first 1000).
    pub errors: Vec<RowError>,
    /// How many problems in all.
    pub errors_total: u64,
}

impl ImportReport {
    fn new(kind: &str, dry_run: bool) -> Self {
        ImportReport {
            kind: kind.to_string(),
            dry_run,
            committed: false,
            rows: 0,
            created: 0,
            applied: 0,
            replayed: 0,
            errors: Vec::new(),
            errors_total: 0,
        }
    }

    pub fn error(&mut self, error: RowError) {
        self.errors_total += 1;
        if self.errors.len() < MAX_REPORTED {
            self.errors.push(error);
        }
    }
}

/// The options of one import.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub dry_run: bool,
    pub allow_overage: bool,
}

fn flag(query: &Query, name: &str) -> ApiResult<bool> {
    match query.get(name) {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(_) => Err(ApiError::field(name, "must be true or false")),
    }
}

/// The body's chunks, in order, into a bounded channel the parser reads.
fn pump(body: Body) -> mpsc::Receiver<Result<Bytes, String>> {
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(async move {
        let mut stream = body.into_data_stream();
        while let Some(next) = stream.next().await {
            let next = next.map_err(|e| e.to_string());
            let failed = next.is_err();
            if tx.send(next).await.is_err() || failed {
                break;
            }
        }
    });
    rx
}

#[utoipa::path(post, path = "/v1/imports/{kind}", operation_id = "import_csv", tag = "imports",
    params(("kind" = ImportKindName, Path, description = "What the file holds."),
        ("dry_run" = Option<bool>, Query, description = "Run every check, write nothing."),
        ("allow_overage" = Option<bool>, Query, description = "Usage only (managers): usage past a restricted cap is recorded and flagged `imported_overage` in the ledger instead of refused.")),
    request_body(content((String = "text/csv", example = "name,external_id,manager_email\nAcme,CRM-1,ann@example.com")),
        description = "A header row naming the kind's columns (`GET /v1/imports/{kind}/template`), then one row per object; RFC 4180 quoting, UTF-8 with or without a BOM. Any size: the file is streamed."),
    responses((status = 200, description = "Every row is good: written (or, on a dry run, checked).", body = ImportReport),
        (status = 422, description = "`import_rejected`: some rows are bad and nothing was written; `details` is the report, listing every bad row.", body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn import(
    State(state): State<AppState>,
    principal: Principal,
    Path(kind): Path<String>,
    query: Query,
    body: Body,
) -> ApiResult<Response> {
    let kind = kinds::find(&kind).ok_or_else(|| ApiError::not_found("import kind", &kind))?;
    let options = Options {
        dry_run: flag(&query, "dry_run")?,
        // Other kinds have no caps to pass: it changes nothing for them.
        allow_overage: flag(&query, "allow_overage")? && kind.name == "usage",
    };
    principal.require(Permission::Manage)?;
    if kind.name == "usage" {
        principal.require(Permission::RecordUsage)?;
        if options.allow_overage {
            principal.require(Permission::Adjust)?;
        }
    }
    let mut report = ImportReport::new(kind.name, options.dry_run);
    let rows = read::parse(pump(body), CHUNK);
    let (feed, fed) = mpsc::channel(2);
    let store = Arc::clone(&state.store);
    let (today, now) = (state.clock.today(), state.clock.now());
    let writer = tokio::spawn(async move { store.run_import(fed, today, now).await });
    let session = kinds::Session::new(&state, &principal, options, today, now);
    let fed_ok = kinds::run(kind, session, rows, &feed, &mut report).await;
    let commit = fed_ok? && report.errors_total == 0 && !options.dry_run;
    // The writer may have stopped already (a database failure): its result says.
    let _ = feed.send(ImportMsg::Finish { commit }).await;
    drop(feed);
    let outcome: ImportOutcome = writer
        .await
        .map_err(|e| ApiError::Internal(format!("import task: {e}")))??;
    kinds::refusals(&outcome, &mut report);
    report.created = outcome.written;
    report.applied = outcome.applied;
    report.replayed = outcome.replayed;
    report.committed = outcome.committed;
    if report.errors_total > 0 {
        report.created = 0;
        report.applied = 0;
        let message = format!(
            "{} problem(s) in the file; nothing was imported",
            report.errors_total
        );
        let body = serde_json::json!({ "error": {
            "code": "import_rejected",
            "message": message,
            "details": report,
        }});
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response());
    }
    Ok(Json(report).into_response())
}

#[utoipa::path(get, path = "/v1/imports/{kind}/template", operation_id = "import_template", tag = "imports",
    params(("kind" = ImportKindName, Path, description = "What the file holds.")),
    responses((status = 200, description = "An example file: the header with every column, and an example row.", content((String = "text/csv"))),
        (status = 404, body = ErrorBody)))]
pub async fn template_file(principal: Principal, Path(kind): Path<String>) -> ApiResult<Response> {
    principal.require(Permission::Read)?;
    let text = template(&kind).ok_or_else(|| ApiError::not_found("import kind", &kind))?;
    let mut response = (StatusCode::OK, text).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    Ok(response)
}
