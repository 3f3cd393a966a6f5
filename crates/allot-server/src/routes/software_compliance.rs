//! `GET /v1/reports/software-compliance`: per software model and licence
//! metric, whether the organization is compliant, what the true-up costs
//! and what could be saved — reconciled now by
//! `allot_core::software::reconcile` over one consistent read of the
//! installations counted per model in the database (nothing is
//! kept: `POST /v1/reconciliations` keeps history). JSON or CSV, paged in
//! (model, metric) order.

use std::collections::HashMap;

use allot_core::software::reconcile::{Compliance, ReconciliationItem};
use allot_core::software::LicenseMetric;
use allot_core::Quantity;
use allot_store::ids::{SoftwareModelId, TypedId};
use allot_store::software::SoftwareModel;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::{Permission, Principal};
use crate::csv_response::{respond, CsvRow, Format};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::Query;
use crate::reporting::{Pager, Position};
use crate::software::inputs::names;
use crate::state::AppState;
use crate::views::Listing;

/// One software model under one licence metric, as reconciled now.
#[derive(Debug, Serialize, ToSchema)]
pub struct ComplianceRow {
    pub software_model_id: String,
    pub publisher: String,
    pub product: String,
    pub version: Option<String>,
    pub edition: Option<String>,
    #[schema(value_type = names::LicenseMetricName)]
    pub license_metric: &'static str,
    #[schema(value_type = names::ComplianceName)]
    pub status: &'static str,
    /// Active rights of the entitlements in use, plus what downgrade rights lend.
    pub rights_owned: i64,
    /// Of `rights_owned`, lent by newer models' downgrade rights.
    pub rights_from_downgrades: i64,
    /// What the installations seen within `ALLOT_INSTALL_STALE_DAYS` need.
    pub rights_needed: i64,
    /// An unlimited entitlement or an ea/ela/ula agreement covers the title.
    pub covered_without_count: bool,
    pub shortfall: i64,
    /// Shortfall × the latest unit cost; null when no unit cost is known.
    #[schema(value_type = Option<f64>)]
    pub true_up_cost: Option<Quantity>,
    pub unused_rights: i64,
    /// Unused rights × the latest unit cost; null when no unit cost is known.
    #[schema(value_type = Option<f64>)]
    pub potential_savings: Option<Quantity>,
}

impl CsvRow for ComplianceRow {
    const COLUMNS: &'static [&'static str] = &[
        "software_model_id",
        "publisher",
        "product",
        "version",
        "edition",
        "license_metric",
        "status",
        "rights_owned",
        "rights_from_downgrades",
        "rights_needed",
        "covered_without_count",
        "shortfall",
        "true_up_cost",
        "unused_rights",
        "potential_savings",
    ];
}

fn row(item: ReconciliationItem, model: Option<&SoftwareModel>) -> ComplianceRow {
    ComplianceRow {
        software_model_id: item.software_model_id,
        publisher: model.map(|m| m.publisher.clone()).unwrap_or_default(),
        product: model.map(|m| m.product.clone()).unwrap_or_default(),
        version: model.and_then(|m| m.version.clone()),
        edition: model.and_then(|m| m.edition.clone()),
        license_metric: item.license_metric.as_str(),
        status: item.status.as_str(),
        rights_owned: item.rights_owned,
        rights_from_downgrades: item.rights_from_downgrades,
        rights_needed: item.rights_needed,
        covered_without_count: item.covered_without_count,
        shortfall: item.shortfall,
        true_up_cost: item.true_up_cost,
        unused_rights: item.unused_rights,
        potential_savings: item.potential_savings,
    }
}

/// The metric's place in `LicenseMetric::ALL`: the rank of its row under its model.
fn rank(metric: LicenseMetric) -> u32 {
    LicenseMetric::ALL
        .iter()
        .position(|m| *m == metric)
        .unwrap_or(0) as u32
}

fn status_filter(query: &Query) -> ApiResult<Option<Compliance>> {
    query
        .get("status")
        .map(|s| {
            [
                Compliance::Compliant,
                Compliance::UnderLicensed,
                Compliance::OverLicensed,
            ]
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| {
                ApiError::field(
                    "status",
                    "must be compliant, under_licensed or over_licensed",
                )
            })
        })
        .transpose()
}

#[utoipa::path(get, path = "/v1/reports/software-compliance", operation_id = "report_software_compliance", tag = "reports",
    params(("software_model_id" = Option<String>, Query, description = "Only this model's rows.", pattern = "^swm_[A-Za-z0-9]{1,60}$"),
        ("status" = Option<String>, Query, description = "Only rows in this state.", pattern = "^(compliant|under_licensed|over_licensed)$"),
        crate::reporting::FormatParam, crate::extract::PageParams),
    responses((status = 200, description = "A row per software model and licence metric, reconciled now (as `POST /v1/reconciliations` would, without keeping it), in (model id, metric) order. Staff only: installations belong to the organization, not to an account.", content((Listing<ComplianceRow> = "application/json"), (String = "text/csv")), headers(("next-cursor" = String, description = "On a CSV answer: the cursor of the next page (absent on the last)."))),
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn software_compliance(
    State(state): State<AppState>,
    principal: Principal,
    query: Query,
    headers: HeaderMap,
) -> ApiResult<Response> {
    principal.require(Permission::ReadCompliance)?;
    let format = Format::of(&query, &headers)?;
    let page = query.page()?;
    let status = status_filter(&query)?;
    let only_model = query.get("software_model_id");
    if let Some(model) = only_model {
        if SoftwareModelId::parse(model).is_none() {
            return Err(ApiError::field(
                "software_model_id",
                "must be a software model id",
            ));
        }
    }
    let now = state.clock.now();
    let stale_before = now - chrono::Duration::days(i64::from(state.install_stale_days));
    let snapshot = state.store.compliance_snapshot(stale_before).await?;
    let items = snapshot.inputs.reconcile(state.clock.today());
    let models: HashMap<&str, &SoftwareModel> =
        snapshot.models.iter().map(|m| (m.id.as_str(), m)).collect();
    let mut pager = Pager::new(&page);
    for item in items {
        if only_model.is_some_and(|m| m != item.software_model_id)
            || status.is_some_and(|s| s != item.status)
        {
            continue;
        }
        let at = Position::new(item.software_model_id.clone(), rank(item.license_metric));
        let model = models.get(item.software_model_id.as_str()).copied();
        pager.push(at, row(item, model));
    }
    respond(format, pager.finish(None, |row| row))
}
