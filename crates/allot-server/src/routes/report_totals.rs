//! Reports rolled up: consumption and unused allotment summed per account
//! and unit (or per unit over every account). Quantities of different
//! units are never added together.

use std::collections::BTreeMap;

use allot_core::entitlement::Status;
use allot_core::Quantity;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;

use super::reports::{balance_today, closed_in, span, start};
use crate::auth::Principal;
use crate::csv_response::respond;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::Query;
use crate::report_rows::{ConsumptionTotalRow, UnusedByAccountRow};
use crate::reporting::{Pager, Position, Scanner, Scope, Source};
use crate::state::AppState;
use crate::views::Listing;

#[utoipa::path(get, path = "/v1/reports/consumption/totals", operation_id = "report_consumption_totals", tag = "reports",
    params(("by" = Option<String>, Query, description = "account (a row per account and unit) or unit (a row per unit over every account); account when absent.", pattern = "^(account|unit)$"),
        crate::reporting::ScopeParams, crate::reporting::StatusParam, crate::reporting::FormatParam, crate::extract::PageParams),
    responses((status = 200, description = "The current period's consumption summed per account and unit, or per unit; active entitlements unless `status` says otherwise.", content((Listing<ConsumptionTotalRow> = "application/json"), (String = "text/csv")), headers(("next-cursor" = String, description = "On a CSV answer: the cursor of the next page (absent on the last)."))),
        (status = 422, body = ErrorBody)))]
pub async fn consumption_totals(
    State(state): State<AppState>,
    principal: Principal,
    query: Query,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let format = start(&principal, &query, &headers)?;
    let page = query.page()?;
    let per_account = match query.get("by") {
        None | Some("account") => true,
        Some("unit") => false,
        Some(_) => return Err(ApiError::field("by", "must be account or unit")),
    };
    let scope = Scope::parse(&query, &principal, true)?.by_default(&[Status::Active]);
    let today = state.clock.today();
    let mut totals: BTreeMap<String, ConsumptionTotalRow> = BTreeMap::new();
    let mut scan = Scanner::new(&state, scope, None);
    while let Some(batch) = scan.next().await? {
        for r in batch {
            let t = &r.entitlement.terms;
            let b = balance_today(&r, today);
            let account_id = per_account.then(|| t.account_id.clone());
            let key = match &account_id {
                Some(account) => format!("{account}.{}", t.unit.as_str()),
                None => t.unit.as_str().to_string(),
            };
            let row = totals.entry(key).or_insert_with(|| ConsumptionTotalRow {
                account_id,
                unit: t.unit.as_str().to_string(),
                entitlements: 0,
                unlimited: 0,
                total: Quantity::ZERO,
                carried_over: Quantity::ZERO,
                used: Quantity::ZERO,
                held: Quantity::ZERO,
                remaining: Quantity::ZERO,
                overage: Quantity::ZERO,
            });
            row.entitlements += 1;
            row.used += b.used;
            row.held += b.held;
            match (b.total, b.remaining) {
                (Some(total), Some(remaining)) => {
                    row.total += total;
                    row.carried_over += b.carried_over;
                    row.remaining += remaining;
                    row.overage += b.overage;
                }
                _ => row.unlimited += 1,
            }
        }
    }
    let mut pager = Pager::new(&page);
    for (key, row) in totals {
        pager.push(Position::new(key, 0), row);
    }
    respond(format, pager.finish(None, |row| row))
}

#[utoipa::path(get, path = "/v1/reports/unused/by-account", operation_id = "report_unused_by_account", tag = "reports",
    params(("from" = Option<NaiveDate>, Query, pattern = "^(?:19[0-9]{2}|[2-9][0-9]{3})-", description = "Periods ending on or after this day; a year before `to` when absent."),
        ("to" = Option<NaiveDate>, Query, pattern = "^(?:19[0-9]{2}|[2-9][0-9]{3})-", description = "Periods ending on or before this day; today when absent."),
        crate::reporting::ScopeParams, crate::reporting::FormatParam, crate::extract::PageParams),
    responses((status = 200, description = "The unused report rolled up per account and unit, by account id.", content((Listing<UnusedByAccountRow> = "application/json"), (String = "text/csv")), headers(("next-cursor" = String, description = "On a CSV answer: the cursor of the next page (absent on the last)."))),
        (status = 422, body = ErrorBody)))]
pub async fn unused_by_account(
    State(state): State<AppState>,
    principal: Principal,
    query: Query,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let format = start(&principal, &query, &headers)?;
    let page = query.page()?;
    let today = state.clock.today();
    let (from, to) = span(&query, today, 365)?;
    let scope =
        Scope::parse(&query, &principal, false)?.by_default(&[Status::Active, Status::Expired]);
    let source = Source::ClosedBetween { from, to, today };
    let mut scan = Scanner::of(&state, scope, None, source);
    let mut totals: BTreeMap<(String, String), UnusedByAccountRow> = BTreeMap::new();
    while let Some(batch) = scan.next().await? {
        for (r, periods) in closed_in(&state, &batch, today).await? {
            let t = &r.entitlement.terms;
            let unit = t.unit.as_str().to_string();
            let row = totals
                .entry((t.account_id.clone(), unit.clone()))
                .or_insert_with(|| UnusedByAccountRow {
                    account_id: t.account_id.clone(),
                    unit,
                    periods: 0,
                    allowed: Quantity::ZERO,
                    used: Quantity::ZERO,
                    unused: Quantity::ZERO,
                    overage: Quantity::ZERO,
                });
            for p in periods
                .iter()
                .filter(|p| from <= p.window.end && p.window.end <= to)
            {
                row.periods += 1;
                row.allowed += p.total + p.carried_in;
                row.used += p.used;
                row.unused += p.unused;
                row.overage += p.overage;
            }
        }
    }
    let mut pager = Pager::new(&page);
    for ((account, unit), row) in totals {
        if row.periods > 0 {
            pager.push(Position::new(format!("{account}.{unit}"), 0), row);
        }
    }
    respond(format, pager.finish(None, |row| row))
}
