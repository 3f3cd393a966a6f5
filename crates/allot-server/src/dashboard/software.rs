//! Software entitlements: the list with rights allocated and available
//! (and the compliance report's first rows for the roles that read it),
//! and one entitlement's page with its allocations. Read through the API's
//! `/v1/software-entitlements` and `/v1/reports/software-compliance`.

use std::collections::HashMap;

use allot_core::Quantity;
use axum::extract::{Path, Query};
use axum::response::Response;
use maud::{html, Markup};
use serde_json::Value;

use super::layout::{badge, gauge, next_link, num, page as shell, text};
use super::{q, Signed};
use crate::auth::{allows, Permission};

/// Rows per page of the lists; compliance rows shown on the list page.
const PAGE: u32 = 50;
const COMPLIANCE_SHOWN: u32 = 10;

fn rights(e: &Value) -> Markup {
    html! {
        @if e["unlimited"] == true { "unlimited" } @else {
            (text(&e["allocated_rights"])) " of " (text(&e["active_rights"])) " allocated "
            (gauge("rights allocated", num(&e["allocated_rights"]), Some(num(&e["active_rights"]))))
        }
    }
}

/// A page of `PAGE` rows of the API's listing at `path`, from the page's
/// own `cursor`.
async fn paged(
    signed: &Signed,
    path: &str,
    query: &HashMap<String, String>,
) -> Result<Value, Response> {
    let mut uri = format!("{path}?limit={PAGE}");
    if let Some(c) = query.get("cursor").filter(|c| !c.is_empty()) {
        uri.push_str(&format!("&cursor={}", q(c)));
    }
    signed.get(&uri).await
}

pub async fn list(signed: Signed, Query(query): Query<HashMap<String, String>>) -> Response {
    let ents = match paged(&signed, "/v1/software-entitlements", &query).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let compliance = if allows(signed.principal.role, Permission::ReadCompliance) {
        match signed
            .get(&format!(
                "/v1/reports/software-compliance?limit={COMPLIANCE_SHOWN}"
            ))
            .await
        {
            Ok(v) => Some(v),
            Err(r) => return r,
        }
    } else {
        None
    };
    let empty = Vec::new();
    let rows = ents["items"].as_array().unwrap_or(&empty);
    let body = html! {
        @if let Some(c) = &compliance {
            section aria-labelledby="compliance" {
                h2 id="compliance" { "Compliance" }
                @let items = c["items"].as_array().unwrap_or(&empty);
                @if items.is_empty() { p.muted { "No software models." } } @else {
                    div.scroll { table.rwd {
                        thead { tr { th { "Software" } th { "Metric" } th { "Status" } th.n { "Owned" } th.n { "Needed" } th.n { "Shortfall" } th.n { "Unused" } } }
                        tbody { @for r in items { tr {
                            td data-label="Software" { (text(&r["publisher"])) " " (text(&r["product"])) @if let Some(v) = r["version"].as_str() { " " (v) } }
                            td data-label="Metric" { (text(&r["license_metric"])) }
                            td data-label="Status" { (badge(r["status"].as_str().unwrap_or(""))) }
                            td.n data-label="Owned" { (text(&r["rights_owned"])) }
                            td.n data-label="Needed" { (text(&r["rights_needed"])) }
                            td.n data-label="Shortfall" { (text(&r["shortfall"])) }
                            td.n data-label="Unused" { (text(&r["unused_rights"])) }
                        } } }
                    } }
                }
                p { a href="/reports?report=software-compliance" { "The whole compliance report, with filters and CSV →" } }
            }
        }
        h2 { "Software entitlements" }
        @if rows.is_empty() { p.muted { "None." } } @else {
            div.scroll { table.rwd {
                thead { tr { th { "Entitlement" } th { "Account" } th { "Metric" } th { "State" } th { "Rights" } th.n { "Available" } } }
                tbody { @for e in rows { tr {
                    td data-label="Entitlement" { a href=(format!("/software/{}", q(&text(&e["id"])))) { (e["display_name"].as_str().map_or_else(|| text(&e["id"]), str::to_string)) } }
                    td data-label="Account" { @if let Some(a) = e["account_id"].as_str() { a href=(format!("/accounts/{}", q(a))) { (a) } } @else { "organization" } }
                    td data-label="Metric" { (text(&e["license_metric"])) }
                    td data-label="State" { (badge(e["state"].as_str().unwrap_or(""))) }
                    td data-label="Rights" { (rights(e)) }
                    td.n data-label="Available" { (text(&e["allocations_available"])) }
                } } }
            } }
        }
        (next_link(&ents, "/software", "cursor"))
    };
    shell(signed.nav(), "Software", "Software", body)
}

pub async fn page(
    signed: Signed,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let enc = q(&id);
    let e = match signed
        .get(&format!("/v1/software-entitlements/{enc}"))
        .await
    {
        Ok(v) => v,
        Err(r) => return r,
    };
    let path = format!("/v1/software-entitlements/{enc}/allocations");
    let allocations = match paged(&signed, &path, &query).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let empty = Vec::new();
    let rows = allocations["items"].as_array().unwrap_or(&empty);
    let money = |v: &Value| match v {
        Value::Null => "—".to_string(),
        v => Quantity::from_json(v).map_or_else(|_| text(v), |q| q.to_string()),
    };
    let title = e["display_name"]
        .as_str()
        .map_or_else(|| text(&e["id"]), str::to_string);
    let body = html! {
        dl.facts {
            dt { "Id" } dd { code { (text(&e["id"])) } }
            dt { "Model" } dd { code { (text(&e["software_model_id"])) } }
            dt { "Account" } dd { @if let Some(a) = e["account_id"].as_str() { a href=(format!("/accounts/{}", q(a))) { (a) } } @else { "organization" } }
            dt { "State" } dd { (badge(e["state"].as_str().unwrap_or(""))) }
            dt { "Licence" } dd { (text(&e["license_type"])) ", " (text(&e["license_metric"])) ", " (text(&e["agreement_type"])) }
            dt { "Term" } dd { (text(&e["start_date"])) " – " (text(&e["end_date"])) }
            dt { "Rights" } dd { (rights(&e)) }
            dt { "Available" } dd { (text(&e["allocations_available"])) }
            dt { "Cost" } dd { (money(&e["total_cost"])) " " (text(&e["currency"])) }
        }
        h2 { "Allocations" }
        @if rows.is_empty() { p.muted { "None." } } @else {
            div.scroll { table.rwd {
                thead { tr { th { "Allocation" } th { "User" } th { "Device" } th.n { "Quantity" } th { "Since" } } }
                tbody { @for a in rows { tr {
                    td data-label="Allocation" { code { (text(&a["id"])) } }
                    td data-label="User" { (text(&a["user"])) }
                    td data-label="Device" { (text(&a["device"])) }
                    td.n data-label="Quantity" { (text(&a["quantity"])) }
                    td data-label="Since" { (text(&a["created_at"]).chars().take(10).collect::<String>()) }
                } } }
            } }
        }
        (next_link(&allocations, &format!("/software/{enc}"), "cursor"))
    };
    shell(signed.nav(), "", &title, body)
}
