//! The reports' rows counted: how many entitlements the approaching-limit
//! report lists in each state, how many the expiring report lists, and how
//! many closed periods of the unused report left something unused. Exact
//! whatever the data size, in a fixed number of store reads
//! (`allot_store::reports::counts`).

use allot_core::entitlement::Status;
use allot_store::reports::{counts, CountsQuery};
use axum::extract::State;
use axum::Json;
use chrono::{Days, NaiveDate};
use serde::Serialize;
use utoipa::ToSchema;

use super::reports::{bounded, span, MAX_SPAN_DAYS};
use crate::auth::{Permission, Principal};
use crate::error::{ApiResult, ErrorBody};
use crate::extract::Query;
use crate::reporting::Scope;
use crate::state::AppState;

/// Rows of each report, counted over the caller's entitlements.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReportCounts {
    /// Rows of `/v1/reports/approaching-limit` (same `threshold`) in
    /// state `overage`.
    pub overage: u64,
    /// … in state `exhausted`.
    pub exhausted: u64,
    /// … in state `approaching`.
    pub approaching: u64,
    /// Rows of `/v1/reports/expiring` (same `within_days`).
    pub expiring: u64,
    /// Rows of `/v1/reports/unused` (same `from` and `to`) whose `unused`
    /// is above zero.
    pub unused: u64,
}

#[utoipa::path(get, path = "/v1/reports/counts", operation_id = "report_counts", tag = "reports",
    params(("threshold" = Option<u32>, Query, description = "As in the approaching-limit report; 80 when absent.", minimum = 0, maximum = 1000),
        ("within_days" = Option<u32>, Query, description = "As in the expiring report; 30 when absent.", minimum = 0, maximum = 3660),
        ("from" = Option<NaiveDate>, Query, pattern = "^(?:19[0-9]{2}|[2-9][0-9]{3})-", description = "As in the unused report; a year before `to` when absent."),
        ("to" = Option<NaiveDate>, Query, pattern = "^(?:19[0-9]{2}|[2-9][0-9]{3})-", description = "As in the unused report; today when absent.")),
    responses((status = 200, description = "How many rows the approaching-limit (per state), expiring and unused reports list with their default filters, over every entitlement the caller reads (a customer: its own account's).", body = ReportCounts),
        (status = 422, body = ErrorBody)))]
pub async fn report_counts(
    State(state): State<AppState>,
    principal: Principal,
    query: Query,
) -> ApiResult<Json<ReportCounts>> {
    principal.require(Permission::Read)?;
    let threshold = i64::from(bounded(&query, "threshold", 80, 0, 1000)?);
    let within = bounded(&query, "within_days", 30, 0, MAX_SPAN_DAYS as u32)?;
    let today = state.clock.today();
    let (unused_from, unused_to) = span(&query, today, 365)?;
    // The reports' own scopes, confined to a customer's account; no other
    // filter, so the store's conditions decide who is in.
    let scope = Scope::parse(&Query(Default::default()), &principal, false)?;
    let q = CountsQuery {
        active: scope.clone().by_default(&[Status::Active]).store_filter(),
        ended: scope
            .by_default(&[Status::Active, Status::Expired])
            .store_filter(),
        today,
        threshold,
        expiring_to: today
            .checked_add_days(Days::new(u64::from(within)))
            .unwrap_or(NaiveDate::MAX),
        unused_from,
        unused_to,
    };
    let c = counts(state.store.as_ref(), &q).await?;
    Ok(Json(ReportCounts {
        overage: c.overage,
        exhausted: c.exhausted,
        approaching: c.approaching,
        expiring: c.expiring,
        unused: c.unused,
    }))
}
