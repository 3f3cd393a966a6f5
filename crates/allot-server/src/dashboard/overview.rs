//! The overview: what needs attention now. Three report calls (limit
//! states, expiring, unused at period end) and the ten newest events,
//! whatever the number of entitlements.

use axum::extract::State;
use axum::response::Response;
use maud::{html, Markup};
use serde_json::Value;

use super::layout::{badge, ent_link, gauge, num, page as shell, text};
use super::Signed;
use crate::auth::{allows, Permission};
use crate::state::AppState;
use crate::views::EventView;

/// Rows read per list; the counts say "N+" past it.
const SCAN: u32 = 200;
/// Rows shown per list (the report pages show the rest).
const SHOWN: usize = 10;

pub async fn page(State(state): State<AppState>, signed: Signed) -> Response {
    let limits = match signed
        .get(&format!("/v1/reports/approaching-limit?limit={SCAN}"))
        .await
    {
        Ok(v) => v,
        Err(r) => return r,
    };
    let expiring = match signed
        .get(&format!("/v1/reports/expiring?within_days=30&limit={SCAN}"))
        .await
    {
        Ok(v) => v,
        Err(r) => return r,
    };
    let unused = match signed
        .get(&format!("/v1/reports/unused?limit={SCAN}"))
        .await
    {
        Ok(v) => v,
        Err(r) => return r,
    };
    // The newest events (the API's feed pages from the oldest), for the
    // roles that may read the feed.
    let events = if allows(signed.principal.role, Permission::ReadEvents) {
        match state.store.recent_events(10).await {
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
    let rows = limits["items"].as_array().unwrap_or(&empty);
    let more = limits["next_cursor"].is_string();
    let of = |state: &str| -> Vec<&Value> { rows.iter().filter(|r| r["state"] == state).collect() };
    let (approaching, exhausted, overage) = (of("approaching"), of("exhausted"), of("overage"));
    let expiring_rows = expiring["items"].as_array().unwrap_or(&empty);
    let unused_rows: Vec<&Value> = unused["items"]
        .as_array()
        .unwrap_or(&empty)
        .iter()
        .filter(|r| num(&r["unused"]) > 0.0)
        .collect();
    let count = |n: usize, more: bool| if more { format!("{n}+") } else { n.to_string() };
    let body = html! {
        section.cards aria-label="Counts" {
            div.card { a href="#approaching" { span.n { (count(approaching.len(), more)) } "approaching the limit (≥ 80%)" } }
            div.card { a href="#exhausted" { span.n { (count(exhausted.len(), more)) } "exhausted" } }
            div.card { a href="#overage" { span.n { (count(overage.len(), more)) } "in overage" } }
            div.card { a href="#expiring" { span.n { (count(expiring_rows.len(), expiring["next_cursor"].is_string())) } "expiring within 30 days" } }
            div.card { a href="#unused" { span.n { (count(unused_rows.len(), unused["next_cursor"].is_string())) } "periods ended with some unused" } }
        }
        (limit_list("approaching", "Approaching the limit", &approaching))
        (limit_list("exhausted", "Exhausted", &exhausted))
        (limit_list("overage", "In overage", &overage))
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
                (more_link(expiring_rows.len(), "/reports?report=expiring"))
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
                (more_link(unused_rows.len(), "/reports?report=unused"))
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

fn more_link(n: usize, href: &str) -> Markup {
    if n > SHOWN {
        html! { p { a href=(href) { "All " (n) " in the report →" } } }
    } else {
        html! {}
    }
}

fn limit_list(id: &str, title: &str, rows: &[&Value]) -> Markup {
    html! {
        section aria-labelledby=(id) {
            h2 id=(id) { (title) }
            @if rows.is_empty() { p.muted { "None." } } @else {
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
                (more_link(rows.len(), "/reports?report=approaching-limit"))
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
                    td data-label="When" { (text(&e["created_at"]).replace('T', " ").chars().take(19).collect::<String>()) }
                    td data-label="Event" { (badge(e["kind"].as_str().unwrap_or(""))) }
                    td data-label="Entitlement" {
                        @if let Some(id) = e["entitlement_id"].as_str() { a href=(format!("/entitlements/{id}")) { (id) } } @else { "—" }
                    }
                } } }
            } }
        }
    }
}
