//! The agent's flow: account → contact → product → channel; the covering
//! entitlements in matching order with their live remaining (the API's
//! eligibility); a case opened on one through `POST /v1/cases`, the one
//! write path. A restricted entitlement with nothing left says why and
//! offers no button (the write path would refuse it anyway); an
//! unrestricted one warns that the case goes into overage.

use std::collections::HashMap;

use allot_core::report::{limit_state, LimitState};
use allot_core::Quantity;
use axum::body::Bytes;
use axum::extract::Query;
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};
use serde_json::{json, Value};

use super::layout::{badge, gauge, num, page as shell, text};
use super::session::{token, Flash};
use super::{back, q, Form, Signed};

/// Where an entitlement stands for a new case: by `allot-core`'s limit
/// state of the entitlement, or of the case's channel when it has one.
fn standing(item: &Value, channel: Option<&str>) -> LimitState {
    let b = &item["balance"];
    let remaining = channel
        .and_then(|ch| {
            b["channels"]
                .as_array()?
                .iter()
                .find(|c| c["channel"] == ch)
                .map(|c| &c["remaining"])
        })
        .unwrap_or(&b["remaining"]);
    let remaining = match remaining {
        Value::Null => None,
        v => Quantity::from_json(v).ok(),
    };
    limit_state(remaining, None, Quantity::whole(1000))
}

fn selection(query: &HashMap<String, String>, signed: &Signed) -> [Option<String>; 4] {
    let get = |k: &str| {
        query
            .get(k)
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    };
    let account = match signed.principal.confined_to() {
        Some(own) => Some(own.to_string()),
        None => get("account"),
    };
    [account, get("contact"), get("product"), get("channel")]
}

fn agent_url(sel: &[Option<String>; 4]) -> String {
    let mut u = String::from("/agent?");
    for (k, v) in ["account", "contact", "product", "channel"].iter().zip(sel) {
        if let Some(v) = v {
            u.push_str(&format!("{k}={}&", q(v)));
        }
    }
    u.trim_end_matches(['&', '?']).to_string()
}

fn options(items: &Value, chosen: Option<&str>, none: &str) -> Markup {
    let empty = Vec::new();
    html! {
        option value="" { (none) }
        @for i in items["items"].as_array().unwrap_or(&empty) {
            @let id = text(&i["id"]);
            option value=(id) selected[chosen == Some(id.as_str())] { (text(&i["name"])) }
        }
    }
}

pub async fn page(signed: Signed, Query(query): Query<HashMap<String, String>>) -> Response {
    let sel = selection(&query, &signed);
    let [account, contact, product, channel] = &sel;
    let accounts = match signed.get("/v1/accounts?limit=1000").await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let mut found = None;
    if let Some(acc) = account {
        let enc = q(acc);
        let contacts = match signed
            .get(&format!("/v1/contacts?account_id={enc}&limit=1000"))
            .await
        {
            Ok(v) => v,
            Err(r) => return r,
        };
        let products = match signed.get("/v1/products?limit=1000").await {
            Ok(v) => v,
            Err(r) => return r,
        };
        let mut uri = format!("/v1/accounts/{enc}/eligibility?");
        for (k, v) in [
            ("contact", contact),
            ("product", product),
            ("channel", channel),
        ] {
            if let Some(v) = v {
                uri.push_str(&format!("{k}={}&", q(v)));
            }
        }
        let eligible = match signed.get(uri.trim_end_matches('&')).await {
            Ok(v) => v,
            Err(r) => return r,
        };
        found = Some((contacts, products, eligible));
    }
    let here = agent_url(&sel);
    let body = html! {
        form.row method="get" action="/agent" {
            @if signed.principal.confined_to().is_none() {
                label { "Account" select name="account" id="account" { (options(&accounts, account.as_deref(), "Choose an account")) } }
            } @else {
                input type="hidden" name="account" value=(account.clone().unwrap_or_default());
            }
            @if let Some((contacts, products, _)) = &found {
                label { "Contact" select name="contact" id="contact" { (options(contacts, contact.as_deref(), "Any contact")) } }
                label { "Product" select name="product" id="product" { (options(products, product.as_deref(), "Any product")) } }
                label { "Channel" input name="channel" id="channel" type="text" value=(channel.clone().unwrap_or_default()) placeholder="phone, email…"; }
            }
            button type="submit" { @if found.is_some() { "Find entitlements" } @else { "Next" } }
        }
        @if let Some((_, _, eligible)) = &found {
            (covering(&signed, eligible, &sel, &here))
        }
    };
    shell(signed.nav(), "Open a case", "Open a case", body)
}

fn covering(signed: &Signed, eligible: &Value, sel: &[Option<String>; 4], here: &str) -> Markup {
    let empty = Vec::new();
    let items = eligible["items"].as_array().unwrap_or(&empty);
    let channel = sel[3].as_deref();
    html! {
        h2 { "Covering entitlements, best match first" }
        @if items.is_empty() {
            p.warn { "Nothing covers this case: it can still be opened, on no entitlement." }
        }
        ol.covering {
            @for (i, item) in items.iter().enumerate() {
                @let e = &item["entitlement"];
                @let b = &item["balance"];
                @let st = standing(item, channel);
                @let restricted = e["restrict"] == true;
                @let blocked = restricted && matches!(st, LimitState::Exhausted | LimitState::Overage);
                @let overage = !restricted && matches!(st, LimitState::Exhausted | LimitState::Overage);
                li.card data-entitlement=(text(&e["id"])) {
                    strong { a href=(format!("/entitlements/{}", text(&e["id"]))) { (text(&e["name"])) } }
                    " " (badge(e["status"].as_str().unwrap_or("")))
                    @if i == 0 { " " span.badge { "best match" } }
                    div {
                        "Remaining: " span.remaining { @if b["unlimited"] == true { "unlimited" } @else { (text(&b["remaining"])) } } " " (text(&e["unit"]))
                        " " (gauge("used", num(&b["used"]) + num(&b["held"]), b["total"].as_f64().map(|t| t + num(&b["carried_over"]))))
                        @for c in b["channels"].as_array().unwrap_or(&empty) {
                            span.muted { " · " (text(&c["channel"])) ": " (text(&c["remaining"])) }
                        }
                    }
                    @if blocked {
                        p.why role="note" { "Exhausted: nothing remains and this entitlement is restricted, so no case can be opened on it." }
                        button type="button" disabled { "Open case here" }
                    } @else {
                        @if overage {
                            p.warn role="note" { "Nothing remains: a case opened here goes into overage (the entitlement is unrestricted)." }
                        }
                        (open_form(signed, sel, here, Some(&text(&e["id"]))))
                    }
                }
            }
        }
        @if items.is_empty() { (open_form(signed, sel, here, None)) }
    }
}

fn open_form(
    signed: &Signed,
    sel: &[Option<String>; 4],
    here: &str,
    entitlement: Option<&str>,
) -> Markup {
    let field = format!("title-{}", entitlement.unwrap_or("none"));
    html! {
        form.row method="post" action="/agent/cases" {
            input type="hidden" name="csrf" value=(signed.csrf);
            input type="hidden" name="idem" value=(token());
            input type="hidden" name="back" value=(here);
            @for (k, v) in ["account", "contact", "product", "channel"].iter().zip(sel) {
                @if let Some(v) = v { input type="hidden" name=(k) value=(v); }
            }
            @if let Some(id) = entitlement { input type="hidden" name="entitlement" value=(id); }
            label for=(field) { "Case title" }
            input id=(field) name="title" type="text" required maxlength="500";
            button type="submit" { "Open case here" }
        }
    }
}

pub async fn open_case(signed: Signed, body: Bytes) -> Response {
    let form = match Form::parse(&signed, &body) {
        Ok(f) => f,
        Err(r) => return r.into_response(),
    };
    let here = form
        .get("back")
        .filter(|b| b.starts_with("/agent"))
        .unwrap_or("/agent")
        .to_string();
    let mut input = json!({
        "account_id": form.get("account").unwrap_or(""),
        "title": form.get("title").unwrap_or(""),
    });
    for (field, name) in [
        ("contact_id", "contact"),
        ("product_id", "product"),
        ("channel", "channel"),
        ("entitlement_id", "entitlement"),
    ] {
        if let Some(v) = form.get(name) {
            input[field] = json!(v);
        }
    }
    let reply = signed
        .call_keyed(Method::POST, "/v1/cases", Some(&input), form.get("idem"))
        .await;
    if reply.status.is_success() {
        let c = &reply.body;
        let remaining = &c["entitlement_balance"]["remaining"];
        let mut m = format!("Case {} opened", text(&c["id"]));
        if let Some(e) = c["entitlement_id"].as_str() {
            m.push_str(&format!(" on {e}; remaining now {}", text(remaining)));
        }
        m.push('.');
        let warnings: Vec<String> = c["warnings"]
            .as_array()
            .map(|w| w.iter().map(text).collect())
            .unwrap_or_default();
        if warnings.is_empty() {
            signed.flash(Flash::Notice(m));
        } else {
            signed.flash(Flash::Warning(format!(
                "{m} Warning: {}",
                warnings.join("; ")
            )));
        }
    } else {
        signed.flash(Flash::Error(format!(
            "The case was not opened: {}",
            reply.message()
        )));
    }
    back(&here)
}
