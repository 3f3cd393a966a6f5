//! Reports: the API's reports with their filters, shown as a table, and a
//! CSV download of exactly that page (the same query, `format=csv`).

use std::collections::HashMap;

use axum::extract::Query;
use axum::http::{header, Method};
use axum::response::{IntoResponse, Response};
use maud::html;
use serde_json::Value;

use super::layout::{next_link, page as shell, text};
use super::{q, Signed};

/// Reports offered: (path under /v1/reports, label).
const REPORTS: [(&str, &str); 7] = [
    ("approaching-limit", "Approaching the limit"),
    ("expiring", "Expiring"),
    ("unused", "Unused at period end"),
    ("consumption", "Consumption"),
    ("forecast", "Forecast"),
    ("unused/by-account", "Unused by account"),
    ("software-compliance", "Software compliance"),
];
/// Filters passed through to the API as they are.
const FILTERS: [&str; 8] = [
    "account_id",
    "unit",
    "within_days",
    "threshold",
    "from",
    "to",
    "status",
    "software_model_id",
];

/// The API query of this page (report, filters, page).
fn api_query(query: &HashMap<String, String>) -> (&'static str, String) {
    let report = query
        .get("report")
        .and_then(|r| REPORTS.iter().find(|(p, _)| p == r))
        .map_or("approaching-limit", |(p, _)| p);
    let mut qs = String::from("limit=100");
    for k in FILTERS.iter().chain(["cursor"].iter()) {
        if let Some(v) = query.get(*k).map(|v| v.trim()).filter(|v| !v.is_empty()) {
            qs.push_str(&format!("&{k}={}", q(v)));
        }
    }
    (report, qs)
}

pub async fn page(signed: Signed, Query(query): Query<HashMap<String, String>>) -> Response {
    let (report, qs) = api_query(&query);
    let reply = signed
        .call(Method::GET, &format!("/v1/reports/{report}?{qs}"), None)
        .await;
    let mut here = format!("/reports?report={}", q(report));
    for k in FILTERS {
        if let Some(v) = query.get(k).filter(|v| !v.is_empty()) {
            here.push_str(&format!("&{k}={}", q(v)));
        }
    }
    let download = match query.get("cursor") {
        Some(c) => format!(
            "{}&cursor={}",
            here.replacen("/reports?", "/reports/download?", 1),
            q(c)
        ),
        None => here.replacen("/reports?", "/reports/download?", 1),
    };
    let empty = Vec::new();
    let rows = reply.body["items"].as_array().unwrap_or(&empty);
    let columns: Vec<String> = rows
        .first()
        .and_then(Value::as_object)
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    let value = |k: &str| query.get(k).cloned().unwrap_or_default();
    let body = html! {
        form.row method="get" action="/reports" {
            label { "Report" select name="report" {
                @for (p, l) in REPORTS { option value=(p) selected[p == report] { (l) } }
            } }
            @if signed.principal.confined_to().is_none() {
                label { "Account id" input name="account_id" type="text" value=(value("account_id")); }
            }
            label { "Unit" select name="unit" {
                @for u in ["", "cases", "hours", "visits", "units"] { option value=(u) selected[value("unit") == u] { @if u.is_empty() { "any" } @else { (u) } } }
            } }
            label { "Within days (expiring)" input name="within_days" type="number" min="0" max="3660" value=(value("within_days")); }
            label { "Threshold % (approaching)" input name="threshold" type="number" min="0" max="1000" value=(value("threshold")); }
            label { "From" input name="from" type="date" value=(value("from")); }
            label { "To" input name="to" type="date" value=(value("to")); }
            label { "Compliance (software)" select name="status" {
                @for s in ["", "compliant", "under_licensed", "over_licensed"] { option value=(s) selected[value("status") == s] { @if s.is_empty() { "any" } @else { (s.replace('_', " ")) } } }
            } }
            label { "Software model id" input name="software_model_id" type="text" value=(value("software_model_id")); }
            button type="submit" { "Show" }
        }
        @if !reply.status.is_success() {
            p.flash.error role="alert" { (reply.message()) }
        } @else {
            p { a href=(download) download { "Download this page as CSV" } }
            @if rows.is_empty() { p.muted { "No rows." } } @else {
                div.scroll { table.rwd {
                    thead { tr { @for c in &columns { th { (c) } } } }
                    tbody { @for r in rows { tr {
                        @for c in &columns {
                            td data-label=(c) {
                                @if c == "entitlement_id" { a href=(format!("/entitlements/{}", text(&r[c]))) { (text(&r[c])) } }
                                @else if c == "account_id" { a href=(format!("/accounts/{}", text(&r[c]))) { (text(&r[c])) } }
                                @else { (text(&r[c])) }
                            }
                        }
                    } } }
                } }
            }
            (next_link(&reply.body, &here, "cursor"))
        }
    };
    shell(signed.nav(), "Reports", "Reports", body)
}

pub async fn download(signed: Signed, Query(query): Query<HashMap<String, String>>) -> Response {
    let (report, qs) = api_query(&query);
    let reply = signed
        .call(
            Method::GET,
            &format!("/v1/reports/{report}?{qs}&format=csv"),
            None,
        )
        .await;
    if !reply.status.is_success() {
        return super::layout::failure(&signed, &reply);
    }
    let name = format!("allot-{}.csv", report.replace('/', "-"));
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        reply.raw,
    )
        .into_response()
}
