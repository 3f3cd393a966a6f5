//! The overview: what needs attention now. The exact count of each
//! report's rows (`/v1/reports/counts`), the first page (eleven rows) of
//! three reports (limit states, expiring, unused at period end) and the
//! ten newest events, whatever the number of entitlements; each list links
//! to its whole report.

use axum::extract::State;
use axum::response::Response;
use maud::{html, Markup};
use serde_json::Value;

use super::layout::{badge, ent_link, gauge, moment, num, page as shell, text};
use super::Signed;
use crate::auth::{allows, Permission};
use crate::state::AppState;
use crate::views::EventView;

/// Rows shown per list; the report pages show the rest ("see all").
const SHOWN: usize = 10;
/// Rows asked of each report: one more than shown tells whether there are
/// more, so no list reads past its first page.
const ASKED: usize = SHOWN + 1;

pub async fn page(State(state): State<AppState>, signed: Signed) -> Response {
    let counts = match signed.get("/v1/reports/counts").await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let limits = match signed
        .get(&format!("/v1/reports/approaching-limit?limit={ASKED}"))
        .await
    {
        Ok(v) => v,
        Err(r) => return r,
    };
    let expiring = match signed
        .get(&format!(
            "/v1/reports/expiring?within_days=30&limit={ASKED}"
        ))
        .await
    {
        Ok(v) => v,
        Err(r) => return r,
    };
    let unused = match signed
        .get(&format!("/v1/reports/unused?limit={ASKED}"))
        .await
    {
        Ok(v) => v,
        Err(r) => return r,
    };
    // The newest events (the API's feed pages from the oldest), for the
    // roles that may read the feed.
    let events = if allows(signed.principal.role, Permission::ReadEvents) {
        signed.store_call();
        match state.store.recent_events(SHOWN as u32).await {
            Ok(rows) => {
                let items: Vec<EventView> = rows.into_iter().map(EventView::from).collect();
                Some(serde_json::json!({ "items": items }))
            }
            Err(e) => {
                tracing::error!(error = %e, "recent events");
                None
            }
        }
    } else {
        None
    };
    let empty = Vec::new();
    let last = |v: &Value| !v["next_cursor"].is_string();
    let rows: Vec<&Value> = limits["items"]
        .as_array()
        .unwrap_or(&empty)
        .iter()
        .collect();
    let of = |state: &str| -> Vec<&Value> {
        rows.iter()
            .copied()
            .filter(|r| r["state"] == state)
            .collect()
    };
    let (approaching, exhausted, overage) = (of("approaching"), of("exhausted"), of("overage"));
    let count = |name: &str| counts[name].as_u64().unwrap_or(0);
    let expiring_rows = expiring["items"].as_array().unwrap_or(&empty);
    let unused_rows: Vec<&Value> = unused["items"]
        .as_array()
        .unwrap_or(&empty)
        .iter()
        .filter(|r| num(&r["unused"]) > 0.0)
        .collect();
    let body = html! {
        section.cards aria-label="Counts" {
            div.card { a href="#approaching" { span.n { (count("approaching")) } "approaching the limit (≥ 80%)" } }
            div.card { a href="#exhausted" { span.n { (count("exhausted")) } "exhausted" } }
            div.card { a href="#overage" { span.n { (count("overage")) } "in overage" } }
            div.card { a href="#expiring" { span.n { (count("expiring")) } "expiring within 30 days" } }
            div.card { a href="#unused" { span.n { (count("unused")) } "periods ended with some unused" } }
        }
        (limit_list("approaching", "Approaching the limit", &approaching, last(&limits)))
        (limit_list("exhausted", "Exhausted", &exhausted, last(&limits)))
        (limit_list("overage", "In overage", &overage, last(&limits)))
        section aria-labelledby="expiring" {
            h2 id="expiring" { "Expiring within 30 days" }
            @if expiring_rows.is_empty() { p.muted { "None." } } @else {
                div.scroll { table.rwd {
                    thead { tr { th { "Entitlement" } th { "Account" } th { "Ends" } th.n { "Days left" } th.n { "Unused" } th { "Auto-renew" } } }
                    tbody { @for r in expiring_rows.iter().take(SHOWN) { tr {
                        td data-label="Entitlement" { (ent_link(&r["entitlement_id"], &r["name"])) }
                        td data-label="Account" { (account_link(&r["account_id"])) }
                        td data-label="Ends" { (text(&r["end_date"])) }
                        td.n data-label="Days left" { (text(&r["days_left"])) }
                        td.n data-label="Unused" { (text(&r["unused"])) " " (text(&r["unit"])) }
                        td data-label="Auto-renew" { (text(&r["auto_renew"])) }
                    } } }
                } }
                (more_link(expiring_rows.len(), last(&expiring), "/reports?report=expiring&within_days=30"))
            }
        }
        section aria-labelledby="unused" {
            h2 id="unused" { "Unused at the end of a period (last 12 months)" }
            @if unused_rows.is_empty() { p.muted { "None." } } @else {
                div.scroll { table.rwd {
                    thead { tr { th { "Entitlement" } th { "Period" } th.n { "Used" } th.n { "Unused" } } }
                    tbody { @for r in unused_rows.iter().take(SHOWN) { tr {
                        td data-label="Entitlement" { (ent_link(&r["entitlement_id"], &r["name"])) }
                        td data-label="Period" { (text(&r["period_start"])) " – " (text(&r["period_end"])) }
                        td.n data-label="Used" { (text(&r["used"])) }
                        td.n data-label="Unused" { (text(&r["unused"])) " " (text(&r["unit"])) }
                    } } }
                } }
                (more_link(unused_rows.len(), last(&unused), "/reports?report=unused"))
            }
        }
        @if let Some(events) = &events {
            section aria-labelledby="events" {
                h2 id="events" { "Recent events" }
                (event_table(events))
            }
        }
    };
    shell(signed.nav(), "Overview", "Overview", body)
}

fn account_link(id: &Value) -> Markup {
    let id = id.as_str().unwrap_or_default();
    html! { a href=(format!("/accounts/{id}")) { (id) } }
}

/// "See all" under a list cut at `SHOWN` rows or read from a page with more.
fn more_link(n: usize, last_page: bool, href: &str) -> Markup {
    if n > SHOWN || !last_page {
        html! { p { a href=(href) { "See all in the report →" } } }
    } else {
        html! {}
    }
}

fn limit_list(id: &str, title: &str, rows: &[&Value], last_page: bool) -> Markup {
    html! {
        section aria-labelledby=(id) {
            h2 id=(id) { (title) }
            @if rows.is_empty() && !last_page {
                p.muted { "None among the most urgent rows; " a href="/reports?report=approaching-limit" { "see the whole report" } "." }
            } @else if rows.is_empty() { p.muted { "None." } } @else {
                div.scroll { table.rwd {
                    thead { tr { th { "Entitlement" } th { "Account" } th { "State" } th { "Used" } th.n { "Remaining" } th { "Period ends" } } }
                    tbody { @for r in rows.iter().take(SHOWN) { tr {
                        td data-label="Entitlement" { (ent_link(&r["entitlement_id"], &r["name"])) }
                        td data-label="Account" { (account_link(&r["account_id"])) }
                        td data-label="State" { (badge(r["state"].as_str().unwrap_or(""))) }
                        td data-label="Used" {
                            (gauge("used", num(&r["used"]) + num(&r["held"]), Some(num(&r["total"]) + num(&r["carried_over"]))))
                            " " (text(&r["percent_used"])) "%"
                        }
                        td.n data-label="Remaining" { (text(&r["remaining"])) " " (text(&r["unit"])) }
                        td data-label="Period ends" { (text(&r["period_end"])) }
                    } } }
                } }
                (more_link(rows.len(), last_page, "/reports?report=approaching-limit"))
            }
        }
    }
}

/// Events as a table (kind, entitlement, time).
pub fn event_table(events: &Value) -> Markup {
    let empty = Vec::new();
    let items = events["items"].as_array().unwrap_or(&empty);
    html! {
        @if items.is_empty() { p.muted { "None." } } @else {
            div.scroll { table.rwd {
                thead { tr { th { "When" } th { "Event" } th { "Entitlement" } } }
                tbody { @for e in items { tr {
                    td data-label="When" { (moment(&e["created_at"])) }
                    td data-label="Event" { (badge(e["kind"].as_str().unwrap_or(""))) }
                    td data-label="Entitlement" {
                        @if let Some(id) = e["entitlement_id"].as_str() { a href=(format!("/entitlements/{id}")) { (id) } } @else { "—" }
                    }
                } } }
            } }
        }
    }
}
