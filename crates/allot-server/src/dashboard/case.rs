//! A case: its entitlement's live balance, its time entries, and (for the
//! roles that work cases) logging time, resolving, cancelling and
//! reactivating it — each through the API's own case routes.

use axum::body::Bytes;
use axum::extract::Path;
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use maud::html;
use serde_json::json;

use super::layout::{badge, page as shell, text};
use super::session::{token, Flash};
use super::{back, q, Form, Signed};
use crate::auth::{allows, Permission};

const ACTIONS: [&str; 3] = ["resolve", "cancel", "reactivate"];

pub async fn page(signed: Signed, Path(id): Path<String>) -> Response {
    let enc = q(&id);
    let c = match signed.get(&format!("/v1/cases/{enc}")).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let works = allows(signed.principal.role, Permission::WorkCases);
    let status = c["status"].as_str().unwrap_or("");
    let empty = Vec::new();
    let entries = c["time_entries"].as_array().unwrap_or(&empty);
    let b = &c["entitlement_balance"];
    let body = html! {
        dl.facts {
            dt { "Case" } dd { code { (text(&c["id"])) } }
            dt { "Status" } dd { (badge(status)) }
            dt { "Account" } dd { a href=(format!("/accounts/{}", text(&c["account_id"]))) { (text(&c["account_id"])) } }
            dt { "Entitlement" } dd {
                @if let Some(e) = c["entitlement_id"].as_str() {
                    a href=(format!("/entitlements/{e}")) { (e) }
                    " · remaining " span.remaining { @if b["unlimited"] == true { "unlimited" } @else { (text(&b["remaining"])) } } " " (text(&b["unit"]))
                } @else { "none" }
            }
            dt { "Channel" } dd { (text(&c["channel"])) }
        }
        @if works {
            div.row {
                @for a in ACTIONS {
                    form.inline method="post" action=(format!("/cases/{enc}/action")) {
                        input type="hidden" name="csrf" value=(signed.csrf);
                        input type="hidden" name="idem" value=(token());
                        input type="hidden" name="action" value=(a);
                        button.secondary type="submit" { (a) }
                    }
                }
            }
            h2 { "Log time" }
            form.row method="post" action=(format!("/cases/{enc}/time")) {
                input type="hidden" name="csrf" value=(signed.csrf);
                input type="hidden" name="idem" value=(token());
                label { "Minutes" input name="minutes" type="number" min="1" max="1440" required; }
                button type="submit" { "Log" }
            }
        }
        h2 { "Time entries" }
        @if entries.is_empty() { p.muted { "None." } } @else {
            div.scroll { table.rwd {
                thead { tr { th.n { "Hours" } th.n { "Counted" } th { "Charged" } th { "By" } } }
                tbody { @for t in entries { tr {
                    td.n data-label="Hours" { (text(&t["hours"])) }
                    td.n data-label="Counted" { (text(&t["counted_hours"])) }
                    td data-label="Charged" { (text(&t["charged"])) }
                    td data-label="By" { (text(&t["logged_by"])) }
                } } }
            } }
        }
    };
    shell(signed.nav(), "", &text(&c["title"]), body)
}

async fn post(
    signed: &Signed,
    id: &str,
    path: &str,
    body: serde_json::Value,
    idem: Option<&str>,
    done: &str,
) {
    let reply = signed
        .call_keyed(
            Method::POST,
            &format!("/v1/cases/{}/{path}", q(id)),
            Some(&body),
            idem,
        )
        .await;
    if reply.status.is_success() {
        let remaining = &reply.body["entitlement_balance"]["remaining"];
        signed.flash(Flash::Notice(format!(
            "{done}; remaining now {}.",
            text(remaining)
        )));
    } else {
        signed.flash(Flash::Error(reply.message()));
    }
}

pub async fn action(signed: Signed, Path(id): Path<String>, body: Bytes) -> Response {
    let form = match Form::parse(&signed, &body) {
        Ok(f) => f,
        Err(r) => return r.into_response(),
    };
    match form.get("action").filter(|a| ACTIONS.contains(a)) {
        Some(a) => {
            post(
                &signed,
                &id,
                a,
                json!({}),
                form.get("idem"),
                &format!("Done: {a}"),
            )
            .await
        }
        None => signed.flash(Flash::Error("Unknown action.".into())),
    }
    back(&format!("/cases/{}", q(&id)))
}

pub async fn time(signed: Signed, Path(id): Path<String>, body: Bytes) -> Response {
    let form = match Form::parse(&signed, &body) {
        Ok(f) => f,
        Err(r) => return r.into_response(),
    };
    let minutes: Option<u32> = form.get("minutes").and_then(|m| m.parse().ok());
    match minutes {
        Some(m) => {
            post(
                &signed,
                &id,
                "time-entries",
                json!({ "minutes": m }),
                form.get("idem"),
                &format!("Logged {m} minutes"),
            )
            .await
        }
        None => signed.flash(Flash::Error(
            "Minutes: a whole number from 1 to 1440.".into(),
        )),
    }
    back(&format!("/cases/{}", q(&id)))
}
