//! Accounts: the list (searched by name or id) and an account's page (its
//! entitlements with live remaining per channel, cases, contacts, manager).

use allot_store::model::Page;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde_json::{json, Value};
use std::collections::HashMap;

use super::layout::{self, badge, ent_link, gauge, next_link, num, page as shell, text};
use super::{q, Signed};
use crate::auth::{allows, Permission};
use crate::state::AppState;
use crate::views::AccountView;

/// Accounts per page of the list.
const PAGE: u32 = 100;

/// The list: the API's listing, or with a search the store's search (the
/// same `Read` permission; customers never reach it, they are sent to
/// their own account), a page at a time on the server.
pub async fn list(
    State(state): State<AppState>,
    signed: Signed,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if let Some(own) = signed.principal.confined_to() {
        return Redirect::to(&format!("/accounts/{own}")).into_response();
    }
    let search = query
        .get("q")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let cursor = query.get("cursor").filter(|c| !c.is_empty());
    let accounts = if search.is_empty() {
        let mut uri = format!("/v1/accounts?limit={PAGE}");
        if let Some(c) = cursor {
            uri.push_str(&format!("&cursor={}", q(c)));
        }
        match signed.get(&uri).await {
            Ok(v) => v,
            Err(r) => return r,
        }
    } else {
        match searched(&state, &signed, &search, cursor).await {
            Ok(v) => v,
            Err(r) => return r,
        }
    };
    let empty = Vec::new();
    let shown: Vec<&Value> = accounts["items"]
        .as_array()
        .unwrap_or(&empty)
        .iter()
        .collect();
    let base = format!("/accounts?q={}", q(&search));
    let body = html! {
        form.row method="get" action="/accounts" role="search" {
            label for="q" { "Search by name or id" }
            input id="q" name="q" type="search" value=(search);
            button type="submit" { "Search" }
        }
        @if shown.is_empty() { p.muted { "No account matches." } } @else {
            div.scroll { table.rwd {
                thead { tr { th { "Account" } th { "Id" } th { "Parent" } th { "Manager" } } }
                tbody { @for a in &shown { tr {
                    td data-label="Account" { a href=(format!("/accounts/{}", text(&a["id"]))) { (text(&a["name"])) } }
                    td data-label="Id" { code { (text(&a["id"])) } }
                    td data-label="Parent" {
                        @if let Some(p) = a["parent_id"].as_str() { a href=(format!("/accounts/{p}")) { (p) } } @else { "—" }
                    }
                    td data-label="Manager" { (text(&a["manager_name"])) }
                } } }
            } }
        }
        (next_link(&accounts, &base, "cursor"))
    };
    shell(signed.nav(), "Accounts", "Accounts", body)
}

fn refusal(signed: &Signed, status: StatusCode) -> Response {
    let reply = super::Reply {
        status,
        body: Value::Null,
        raw: Vec::new(),
    };
    layout::failure(signed, &reply)
}

/// One page of the store's account search, shaped like the API's listing
/// (`items`, `next_cursor`: the last id when the page is full).
async fn searched(
    state: &AppState,
    signed: &Signed,
    search: &str,
    cursor: Option<&String>,
) -> Result<Value, Response> {
    if !allows(signed.principal.role, Permission::Read) {
        return Err(refusal(signed, StatusCode::FORBIDDEN));
    }
    let page = Page {
        after: cursor.cloned(),
        limit: PAGE + 1,
    };
    signed.store_call();
    let mut rows = match state.store.search_accounts(search, &page).await {
        Ok(rows) => rows,
        Err(e) => {
            tracing::error!(error = %e, "account search");
            return Err(refusal(signed, StatusCode::INTERNAL_SERVER_ERROR));
        }
    };
    let more = rows.len() > PAGE as usize;
    rows.truncate(PAGE as usize);
    let next = more.then(|| rows.last().map(|a| a.id.clone())).flatten();
    let items: Vec<AccountView> = rows.into_iter().map(AccountView::from).collect();
    Ok(json!({ "items": items, "next_cursor": next }))
}

pub async fn page_of(signed: &Signed, id: &str) -> Result<Response, Response> {
    let enc = q(id);
    let account = signed.get(&format!("/v1/accounts/{enc}")).await?;
    let ents = signed
        .get(&format!("/v1/entitlements?account_id={enc}&limit=200"))
        .await?;
    let cases = signed
        .get(&format!("/v1/cases?account_id={enc}&limit=20"))
        .await?;
    let contacts = signed
        .get(&format!("/v1/contacts?account_id={enc}&limit=100"))
        .await?;
    let empty = Vec::new();
    let ent_rows = ents["items"].as_array().unwrap_or(&empty);
    let case_rows = cases["items"].as_array().unwrap_or(&empty);
    let contact_rows = contacts["items"].as_array().unwrap_or(&empty);
    let names: HashMap<&str, &str> = ent_rows
        .iter()
        .filter_map(|e| Some((e["id"].as_str()?, e["name"].as_str()?)))
        .collect();
    let title = text(&account["name"]);
    let body = html! {
        dl.facts {
            dt { "Id" } dd { code { (text(&account["id"])) } }
            dt { "Manager" } dd { (text(&account["manager_name"])) @if let Some(m) = account["manager_email"].as_str() { " · " a href=(format!("mailto:{m}")) { (m) } } }
            @if let Some(p) = account["parent_id"].as_str() { dt { "Parent" } dd { a href=(format!("/accounts/{p}")) { (p) } } }
        }
        @if super::layout::links(&signed.principal).iter().any(|(l, _)| *l == "Open a case") {
            p { a href=(format!("/agent?account={enc}")) { "Open a case for this account →" } }
        }
        h2 { "Entitlements" }
        @if ent_rows.is_empty() { p.muted { "None." } } @else {
            div.scroll { table.rwd {
                thead { tr { th { "Entitlement" } th { "Status" } th { "Used" } th.n { "Remaining" } th { "Per channel" } th { "Period" } } }
                tbody { @for e in ent_rows {
                    @let b = &e["balance"];
                    tr {
                        td data-label="Entitlement" { (ent_link(&e["id"], &e["name"])) @if e["is_default"] == true { " " span.badge { "default" } } }
                        td data-label="Status" { (badge(e["status"].as_str().unwrap_or(""))) }
                        td data-label="Used" {
                            (gauge("used", num(&b["used"]) + num(&b["held"]), b["total"].as_f64().map(|t| t + num(&b["carried_over"]))))
                            " " (text(&b["used"]))
                        }
                        td.n data-label="Remaining" { @if b["unlimited"] == true { "unlimited" } @else { (text(&b["remaining"])) } " " (text(&e["unit"])) }
                        td data-label="Per channel" {
                            @for c in b["channels"].as_array().unwrap_or(&empty) {
                                div { (text(&c["channel"])) ": " (text(&c["remaining"])) " of " (text(&c["total"])) " " (gauge(&format!("{} used", text(&c["channel"])), num(&c["used"]) + num(&c["held"]), Some(num(&c["total"])))) }
                            }
                        }
                        td data-label="Period" { (text(&b["period"]["start"])) " – " (text(&b["period"]["end"])) }
                    }
                } }
            } }
            (next_link(&ents, &format!("/accounts/{enc}"), "ignored"))
        }
        h2 { "Cases" }
        @if case_rows.is_empty() { p.muted { "None." } } @else {
            div.scroll { table.rwd {
                thead { tr { th { "Case" } th { "Title" } th { "Status" } th { "Entitlement" } th { "Opened" } } }
                tbody { @for c in case_rows { tr {
                    td data-label="Case" { a href=(format!("/cases/{}", text(&c["id"]))) { code { (text(&c["id"])) } } }
                    td data-label="Title" { (text(&c["title"])) }
                    td data-label="Status" { (badge(c["status"].as_str().unwrap_or(""))) }
                    td data-label="Entitlement" {
                        @if let Some(id) = c["entitlement_id"].as_str() { a href=(format!("/entitlements/{id}")) { (names.get(id).copied().unwrap_or(id)) } } @else { "—" }
                    }
                    td data-label="Opened" { (text(&c["created_at"]).chars().take(10).collect::<String>()) }
                } } }
            } }
        }
        h2 { "Contacts" }
        @if contact_rows.is_empty() { p.muted { "None." } } @else {
            ul { @for c in contact_rows { li { (text(&c["name"])) @if let Some(m) = c["email"].as_str() { " · " (m) } } } }
        }
    };
    Ok(shell(signed.nav(), "", &title, body))
}

pub async fn page(signed: Signed, Path(id): Path<String>) -> Response {
    match page_of(&signed, &id).await {
        Ok(r) | Err(r) => r,
    }
}
