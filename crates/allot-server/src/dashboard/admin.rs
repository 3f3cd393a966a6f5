//! Webhooks with their deliveries, and the audit trail: for the roles the
//! API lets read them (its 403 otherwise).

use std::collections::HashMap;

use axum::extract::Query;
use axum::response::Response;
use maud::html;

use super::layout::{badge, moment, next_link, page as shell, text};
use super::{q, Signed};

pub async fn webhooks(signed: Signed, Query(query): Query<HashMap<String, String>>) -> Response {
    let hooks = match signed.get("/v1/webhooks?limit=100").await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let chosen = query.get("webhook").filter(|w| !w.is_empty());
    let deliveries = match chosen {
        Some(w) => match signed
            .get(&format!("/v1/webhooks/{}/deliveries?limit=50", q(w)))
            .await
        {
            Ok(v) => Some(v),
            Err(r) => return r,
        },
        None => None,
    };
    let empty = Vec::new();
    let body = html! {
        @let items = hooks["items"].as_array().unwrap_or(&empty);
        @if items.is_empty() { p.muted { "No webhooks. Create one with " code { "allot webhooks create" } " or " code { "POST /v1/webhooks" } "." } } @else {
            div.scroll { table.rwd {
                thead { tr { th { "Webhook" } th { "URL" } th { "Events" } th { "Enabled" } th { "" } } }
                tbody { @for h in items { tr {
                    td data-label="Webhook" { code { (text(&h["id"])) } }
                    td data-label="URL" { (text(&h["url"])) }
                    td data-label="Events" { (h["event_types"].as_array().map(|a| a.iter().map(text).collect::<Vec<_>>().join(", ")).filter(|s| !s.is_empty()).unwrap_or_else(|| "all".into())) }
                    td data-label="Enabled" { (text(&h["enabled"])) }
                    td data-label="Deliveries" { a href=(format!("/webhooks?webhook={}", q(&text(&h["id"])))) { "Deliveries" } }
                } } }
            } }
        }
        @if let (Some(w), Some(d)) = (chosen, &deliveries) {
            h2 { "Deliveries of " code { (w) } }
            @let ds = d["items"].as_array().unwrap_or(&empty);
            @if ds.is_empty() { p.muted { "None yet." } } @else {
                div.scroll { table.rwd {
                    thead { tr { th { "Delivery" } th { "Event" } th { "Status" } th { "Attempts" } th { "Next attempt" } } }
                    tbody { @for x in ds { tr {
                        td data-label="Delivery" { code { (text(&x["id"])) } }
                        td data-label="Event" { (text(&x["event_type"])) }
                        td data-label="Status" { (badge(x["status"].as_str().unwrap_or(""))) }
                        td data-label="Attempts" { (x["attempts"].as_array().map_or(0, Vec::len)) }
                        td data-label="Next attempt" { (text(&x["next_attempt_at"])) }
                    } } }
                } }
            }
        }
    };
    shell(signed.nav(), "Webhooks", "Webhooks", body)
}

pub async fn audit(signed: Signed, Query(query): Query<HashMap<String, String>>) -> Response {
    let mut uri = String::from("/v1/audit?limit=50");
    for k in ["actor", "action", "target_id", "cursor"] {
        if let Some(v) = query.get(k).map(|v| v.trim()).filter(|v| !v.is_empty()) {
            uri.push_str(&format!("&{k}={}", q(v)));
        }
    }
    let trail = match signed.get(&uri).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let value = |k: &str| query.get(k).cloned().unwrap_or_default();
    let mut here = String::from("/audit?");
    for k in ["actor", "action", "target_id"] {
        here.push_str(&format!("{k}={}&", q(&value(k))));
    }
    let empty = Vec::new();
    let body = html! {
        form.row method="get" action="/audit" {
            label { "Actor (key id)" input name="actor" type="text" value=(value("actor")); }
            label { "Action" input name="action" type="text" value=(value("action")); }
            label { "Target id" input name="target_id" type="text" value=(value("target_id")); }
            button type="submit" { "Filter" }
        }
        @let items = trail["items"].as_array().unwrap_or(&empty);
        @if items.is_empty() { p.muted { "No entries." } } @else {
            div.scroll { table.rwd {
                thead { tr { th { "When" } th { "Actor" } th { "Role" } th { "Action" } th { "Target" } } }
                tbody { @for a in items { tr {
                    td data-label="When" { (moment(&a["created_at"])) }
                    td data-label="Actor" { (text(&a["actor"])) }
                    td data-label="Role" { (text(&a["role"])) }
                    td data-label="Action" { (text(&a["action"])) }
                    td data-label="Target" { (text(&a["target_id"])) }
                } } }
            } }
        }
        (next_link(&trail, here.trim_end_matches('&'), "cursor"))
    };
    shell(signed.nav(), "Audit", "Audit trail", body)
}
