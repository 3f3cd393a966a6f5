//! An entitlement's page: balance per channel, the burn-down with the
//! forecast exhaustion day, the ledger (paginated), its events, the
//! lifecycle buttons the role may use, and adjustments (managers).

use std::collections::HashMap;

use allot_core::lifecycle::{transition, Action};
use allot_core::Status;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use maud::html;
use serde_json::{json, Value};

use super::layout::{badge, gauge, moment, next_link, num, page as shell, raw, text};
use super::overview::event_table;
use super::session::{token, Flash};
use super::svg::Burndown;
use super::{back, q, Form, Signed};
use crate::auth::{allows, Permission};
use crate::state::AppState;

/// The lifecycle form's action that makes the entitlement its account's
/// default (`POST /v1/entitlements/{id}/make-default`).
const MAKE_DEFAULT: &str = "make-default";

const ACTIONS: [Action; 4] = [
    Action::Activate,
    Action::Deactivate,
    Action::Cancel,
    Action::Renew,
];

fn date(v: &Value) -> Option<NaiveDate> {
    v.as_str()?.parse().ok()
}

pub async fn page(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    match render(&state, &signed, &id, &query).await {
        Ok(r) | Err(r) => r,
    }
}

async fn render(
    state: &AppState,
    signed: &Signed,
    id: &str,
    query: &HashMap<String, String>,
) -> Result<Response, Response> {
    let enc = q(id);
    let e = signed.get(&format!("/v1/entitlements/{enc}")).await?;
    let b = signed
        .get(&format!("/v1/entitlements/{enc}/balance"))
        .await?;
    let mut ledger_uri = format!("/v1/entitlements/{enc}/usage?limit=20");
    if let Some(c) = query.get("ledger") {
        ledger_uri.push_str(&format!("&cursor={}", q(c)));
    }
    let ledger = signed.get(&ledger_uri).await?;
    let mut holds_uri = format!("/v1/entitlements/{enc}/reservations?limit=20");
    if let Some(c) = query.get("holds") {
        holds_uri.push_str(&format!("&cursor={}", q(c)));
    }
    let holds = signed.get(&holds_uri).await?;
    let today = state.clock.today();
    let start = date(&b["period"]["start"]).unwrap_or(today);
    let end = date(&b["period"]["end"]).unwrap_or(today);
    let to = today.min(end);
    let usage = if start <= to {
        signed
            .get(&format!(
                "/v1/reports/usage-over-time?entitlement_id={enc}&from={start}&to={to}&limit=1000"
            ))
            .await?
    } else {
        Value::Null
    };
    let events = if allows(signed.principal.role, Permission::ReadEvents) {
        let r = signed
            .call(
                Method::GET,
                &format!("/v1/events?entitlement_id={enc}&limit=20"),
                None,
            )
            .await;
        r.status.is_success().then_some(r.body)
    } else {
        None
    };
    let empty = Vec::new();
    let daily: Vec<(NaiveDate, f64)> = usage["items"]
        .as_array()
        .unwrap_or(&empty)
        .iter()
        .filter_map(|p| Some((date(&p["bucket_start"])?, num(&p["used"]))))
        .collect();
    let unit = text(&e["unit"]);
    let f = &b["forecast"];
    let chart = b["total"].as_f64().map(|total| {
        Burndown {
            allotment: total + num(&b["carried_over"]),
            start,
            end,
            today,
            daily: &daily,
            remaining: num(&b["remaining"]),
            exhausted_on: date(&f["exhausted_on"]),
            burn_rate: num(&f["burn_rate_per_day"]),
            unit: &unit,
        }
        .render()
    });
    let status = e["status"].as_str().unwrap_or("");
    let can_manage = allows(signed.principal.role, Permission::Manage);
    let allowed: Vec<Action> = match (
        Status::parse(status),
        date(&e["start_date"]),
        date(&e["end_date"]),
    ) {
        (Some(s), Some(from), Some(until)) if can_manage => ACTIONS
            .into_iter()
            .filter(|a| transition(*a, s, from, until, today).is_ok())
            .collect(),
        _ => Vec::new(),
    };
    // Any entitlement not ended may become its account's default.
    let can_default =
        can_manage && e["is_default"] != true && !matches!(status, "expired" | "cancelled");
    let can_adjust = allows(signed.principal.role, Permission::Adjust);
    let ledger_rows = ledger["items"].as_array().unwrap_or(&empty);
    let hold_rows = holds["items"].as_array().unwrap_or(&empty);
    let channels = b["channels"].as_array().unwrap_or(&empty);
    let account = text(&e["account_id"]);
    let body = html! {
        dl.facts {
            dt { "Account" } dd { a href=(format!("/accounts/{account}")) { (account) } }
            dt { "Default" } dd { @if e["is_default"] == true { "yes: its account's cases use it first" } @else { "no" } }
            dt { "Status" } dd { (badge(status)) @if e["restrict"] == true { " restricted: refuses use past the limit" } @else { " unrestricted: use past the limit is overage" } }
            dt { "Term" } dd { (text(&e["start_date"])) " – " (text(&e["end_date"])) }
            dt { "Period" } dd { (text(&b["period"]["start"])) " – " (text(&b["period"]["end"])) " (" (match e["period"].as_str() { Some("none") | None => "no periods".to_string(), Some(p) => format!("each {p}") }) ")" }
            @if let Some(o) = e["owner"].as_str() { dt { "Owner" } dd { (o) } }
        }
        h2 { "Balance" }
        div.scroll { table.rwd {
            thead { tr { th { "Channel" } th.n { "Total" } th.n { "Used" } th.n { "Held" } th.n { "Remaining" } th { "" } } }
            tbody {
                tr {
                    td data-label="Channel" { "all" }
                    td.n data-label="Total" { @if b["unlimited"] == true { "unlimited" } @else { (text(&b["total"])) @if num(&b["carried_over"]) != 0.0 { " + " (text(&b["carried_over"])) " rolled over" } } }
                    td.n data-label="Used" { (text(&b["used"])) }
                    td.n data-label="Held" { (text(&b["held"])) }
                    td.n data-label="Remaining" id="remaining" { @if b["unlimited"] == true { "unlimited" } @else { (text(&b["remaining"])) } " " (unit) }
                    td data-label="Used" { (gauge("used", num(&b["used"]) + num(&b["held"]), b["total"].as_f64().map(|t| t + num(&b["carried_over"])))) }
                }
                @for c in channels { tr {
                    td data-label="Channel" { (text(&c["channel"])) }
                    td.n data-label="Total" { (text(&c["total"])) }
                    td.n data-label="Used" { (text(&c["used"])) }
                    td.n data-label="Held" { (text(&c["held"])) }
                    td.n data-label="Remaining" { (text(&c["remaining"])) }
                    td data-label="Used" { (gauge(&format!("{} used", text(&c["channel"])), num(&c["used"]) + num(&c["held"]), Some(num(&c["total"])))) }
                } }
            }
        } }
        @if num(&b["overage"]) > 0.0 { p.warn { "In overage by " (text(&b["overage"])) " " (unit) "." } }
        h2 { "Burn-down and forecast" }
        @if let Some(svg) = chart {
            (raw(svg))
            p.muted {
                "Forecast (" (text(&f["method"])) ", last " (text(&f["window_days"])) " days): "
                (text(&f["burn_rate_per_day"])) " " (unit) " a day; "
                @match f["exhausted_on"].as_str() {
                    Some(d) => { "runs out on " strong { (d) } "." },
                    None => { "lasts until the period ends (" (text(&f["horizon"])) ")." },
                }
            }
        } @else { p.muted { "Unlimited: nothing runs out." } }
        @if !allowed.is_empty() || can_default {
            h2 { "Lifecycle" }
            div.row {
                @if can_default {
                    form.inline method="post" action=(format!("/entitlements/{enc}/lifecycle")) {
                        input type="hidden" name="csrf" value=(signed.csrf);
                        input type="hidden" name="idem" value=(token());
                        input type="hidden" name="action" value=(MAKE_DEFAULT);
                        button type="submit" { "Make default" }
                    }
                }
                @for a in &allowed {
                    form.inline method="post" action=(format!("/entitlements/{enc}/lifecycle")) {
                        input type="hidden" name="csrf" value=(signed.csrf);
                        input type="hidden" name="idem" value=(token());
                        input type="hidden" name="action" value=(a.as_str());
                        button type="submit" class=[(matches!(a, Action::Cancel | Action::Deactivate)).then_some("danger")] { (capital(a.as_str())) }
                    }
                }
            }
        }
        @if can_adjust {
            h2 { "Adjust usage" }
            form.row method="post" action=(format!("/entitlements/{enc}/adjust")) {
                input type="hidden" name="csrf" value=(signed.csrf);
                input type="hidden" name="idem" value=(token());
                label { "Quantity (negative gives back)" input name="quantity" type="text" inputmode="decimal" required; }
                label { "Reason" input name="reason" type="text" required maxlength="500"; }
                @if !channels.is_empty() {
                    label { "Channel" select name="channel" { option value="" { "—" } @for c in channels { option { (text(&c["channel"])) } } } }
                }
                button type="submit" { "Adjust" }
            }
        }
        h2 { "Ledger" }
        @if ledger_rows.is_empty() { p.muted { "No entries." } } @else {
            div.scroll { table.rwd {
                thead { tr { th { "When" } th { "Reason" } th.n { "Quantity" } th { "Channel" } th { "Reference" } th { "By" } } }
                tbody { @for l in ledger_rows { tr {
                    td data-label="When" { (moment(&l["created_at"])) }
                    td data-label="Reason" { (text(&l["reason"])) }
                    td.n data-label="Quantity" { (text(&l["quantity"])) }
                    td data-label="Channel" { (text(&l["channel"])) }
                    td data-label="Reference" { (text(&l["reference"])) }
                    td data-label="By" { (text(&l["actor"])) }
                } } }
            } }
            (next_link(&ledger, &format!("/entitlements/{enc}"), "ledger"))
        }
        h2 { "Reservations" }
        @if hold_rows.is_empty() { p.muted { "No reservations." } } @else {
            div.scroll { table.rwd {
                thead { tr { th { "Placed" } th { "Status" } th.n { "Quantity" } th.n { "Committed" } th { "Channel" } th { "Reference" } th { "Expires" } } }
                tbody { @for r in hold_rows { tr {
                    td data-label="Placed" { (moment(&r["created_at"])) }
                    td data-label="Status" { (text(&r["status"])) }
                    td.n data-label="Quantity" { (text(&r["quantity"])) }
                    td.n data-label="Committed" { (text(&r["committed_quantity"])) }
                    td data-label="Channel" { (text(&r["channel"])) }
                    td data-label="Reference" { (text(&r["reference"])) }
                    td data-label="Expires" { (moment(&r["expires_at"])) }
                } } }
            } }
            (next_link(&holds, &format!("/entitlements/{enc}"), "holds"))
        }
        @if let Some(events) = &events {
            h2 { "Events" }
            (event_table(events))
        }
    };
    Ok(shell(signed.nav(), "", &text(&e["name"]), body))
}

fn capital(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
        .unwrap_or_default()
}

pub async fn lifecycle(signed: Signed, Path(id): Path<String>, body: Bytes) -> Response {
    let form = match Form::parse(&signed, &body) {
        Ok(f) => f,
        Err(r) => return r.into_response(),
    };
    let here = format!("/entitlements/{}", q(&id));
    if form.get("action") == Some(MAKE_DEFAULT) {
        let reply = signed
            .call_keyed(
                Method::POST,
                &format!("/v1/entitlements/{}/{MAKE_DEFAULT}", q(&id)),
                Some(&json!({})),
                form.get("idem"),
            )
            .await;
        if reply.status.is_success() {
            signed.flash(Flash::Notice(
                "Done: it is now its account's default.".into(),
            ));
        } else {
            signed.flash(Flash::Error(reply.message()));
        }
        return back(&here);
    }
    let Some(action) = form
        .get("action")
        .and_then(|a| ACTIONS.into_iter().find(|x| x.as_str() == a))
    else {
        signed.flash(Flash::Error("Unknown action.".into()));
        return back(&here);
    };
    let reply = signed
        .call_keyed(
            Method::POST,
            &format!("/v1/entitlements/{}/{}", q(&id), action.as_str()),
            Some(&json!({})),
            form.get("idem"),
        )
        .await;
    if reply.status.is_success() {
        if action == Action::Renew {
            let new = text(&reply.body["id"]);
            signed.flash(Flash::Notice(format!("Renewed: the new draft is {new}.")));
            return back(&format!("/entitlements/{}", q(&new)));
        }
        signed.flash(Flash::Notice(format!(
            "Done: {} (now {}).",
            action.as_str(),
            text(&reply.body["status"])
        )));
    } else {
        signed.flash(Flash::Error(reply.message()));
    }
    back(&here)
}

pub async fn adjust(signed: Signed, Path(id): Path<String>, body: Bytes) -> Response {
    let form = match Form::parse(&signed, &body) {
        Ok(f) => f,
        Err(r) => return r.into_response(),
    };
    let mut input = json!({
        "quantity": form.get("quantity").unwrap_or(""),
        "reason": form.get("reason").unwrap_or(""),
    });
    if let Some(c) = form.get("channel") {
        input["channel"] = json!(c);
    }
    let reply = signed
        .call_keyed(
            Method::POST,
            &format!("/v1/entitlements/{}/adjustments", q(&id)),
            Some(&input),
            form.get("idem"),
        )
        .await;
    if reply.status.is_success() {
        signed.flash(Flash::Notice(format!(
            "Adjusted: {} remaining.",
            text(&reply.body["balance"]["remaining"])
        )));
    } else {
        signed.flash(Flash::Error(reply.message()));
    }
    back(&format!("/entitlements/{}", q(&id)))
}
