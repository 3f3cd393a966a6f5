//! The role matrix: every route × every kind of caller, as one literal table,
//! so that a reader sees the whole access policy at a glance.
//!
//! Columns: admin, manager, agent, the customer of the account that owns the
//! object (account A), a customer of another account (B), integration, no
//! key, and a revoked (admin) key. Every object a row names lives in account
//! A. Each cell runs on objects built fresh for it (`fill`), so a mutation
//! allowed to one caller never changes what the next one meets.
//!
//! The policy:
//! - admin: everything; manager: everything but API keys;
//! - agent: reads everything, records usage and reservations, works cases;
//!   may not create or edit accounts, contacts, products, entitlements,
//!   run lifecycle actions or post adjustments (403);
//! - customer: reads its own account's objects and the product catalogue,
//!   opens cases for its own account, nothing else (403); to it another
//!   account's objects do not exist (404, never 403, whatever the method); an
//!   account named in a body is checked like any body reference (422); the
//!   event feed spans every account, so it is not theirs to read (403);
//! - integration: records usage and works reservations (hold, read, commit,
//!   release), 403 everywhere else, reads included;
//! - webhooks, their deliveries and the e-mail notifications: admins and
//!   managers only (403 to everyone else); editing an account's manager is
//!   managing the account;
//! - the audit trail: admins and managers only (403 to everyone else, agents
//!   included: it is not an object an agent works with);
//! - reports: whoever reads entitlements, a customer only its own account's
//!   rows (another account's are simply absent);
//! - contracts: created and acted on by admins and managers, read by
//!   agents and by the customer of their account; templates: created and
//!   edited by admins and managers, read by agents, not customers' to read
//!   (403: a template belongs to no account); jobs: admins and managers;
//! - no key, revoked key: 401.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::{json, Value};

use crate::common::TestApp;

crate::on_both_backends!(every_route_answers_every_caller_as_the_policy_says);

const CALLERS: [&str; 8] = [
    "admin",
    "manager",
    "agent",
    "customer (own account)",
    "customer (other account)",
    "integration",
    "no key",
    "revoked key",
];

/// Placeholders, built fresh for each cell, all in account A:
/// `{acc}` account A; `{con}` a contact of A; `{prd}` a product;
/// `{ent}` an active hours entitlement; `{draft}` a draft entitlement;
/// `{cancelled}` a cancelled entitlement; `{case}` an open case on `{ent}`;
/// `{closed}` a cancelled case on `{ent}`; `{time}` a time entry on `{case}`;
/// `{res}` a reservation held on `{ent}`; `{key}` an agent key's id;
/// `{kind}` the accounts kind of import.
#[rustfmt::skip]
const TABLE: &[(&str, &str, Option<&str>, [u16; 8])] = &[
    // method   path                                      body                                            adm  mgr  agt  cus  oth  int  none rev
    ("GET",    "/v1/accounts",                           None,                                           [200, 200, 200, 200, 200, 403, 401, 401]),
    ("POST",   "/v1/accounts",                           Some(r#"{"name":"New"}"#),                      [201, 201, 403, 403, 403, 403, 401, 401]),
    ("GET",    "/v1/accounts/{acc}",                     None,                                           [200, 200, 200, 200, 404, 403, 401, 401]),
    ("GET",    "/v1/accounts/{acc}/eligibility",         None,                                           [200, 200, 200, 200, 404, 403, 401, 401]),
    ("GET",    "/v1/contacts",                           None,                                           [200, 200, 200, 200, 200, 403, 401, 401]),
    ("POST",   "/v1/contacts",                           Some(r#"{"account_id":"{acc}","name":"Jo"}"#),  [201, 201, 403, 403, 403, 403, 401, 401]),
    ("GET",    "/v1/contacts/{con}",                     None,                                           [200, 200, 200, 200, 404, 403, 401, 401]),
    ("GET",    "/v1/products",                           None,                                           [200, 200, 200, 200, 200, 403, 401, 401]),
    ("POST",   "/v1/products",                           Some(r#"{"name":"Widget"}"#),                   [201, 201, 403, 403, 403, 403, 401, 401]),
    ("GET",    "/v1/products/{prd}",                     None,                                           [200, 200, 200, 200, 200, 403, 401, 401]),
    ("GET",    "/v1/entitlements",                       None,                                           [200, 200, 200, 200, 200, 403, 401, 401]),
    ("POST",   "/v1/entitlements",                       Some(NEW_ENTITLEMENT),                          [201, 201, 403, 403, 403, 403, 401, 401]),
    ("GET",    "/v1/entitlements/{ent}",                 None,                                           [200, 200, 200, 200, 404, 403, 401, 401]),
    ("PATCH",  "/v1/entitlements/{draft}",               Some(r#"{"total":5}"#),                         [200, 200, 403, 403, 404, 403, 401, 401]),
    ("POST",   "/v1/entitlements/{draft}/activate",      None,                                           [200, 200, 403, 403, 404, 403, 401, 401]),
    ("POST",   "/v1/entitlements/{ent}/deactivate",      None,                                           [200, 200, 403, 403, 404, 403, 401, 401]),
    ("POST",   "/v1/entitlements/{ent}/cancel",          None,                                           [200, 200, 403, 403, 404, 403, 401, 401]),
    ("POST",   "/v1/entitlements/{cancelled}/renew",     None,                                           [201, 201, 403, 403, 404, 403, 401, 401]),
    ("GET",    "/v1/entitlements/{ent}/balance",         None,                                           [200, 200, 200, 200, 404, 403, 401, 401]),
    ("GET",    "/v1/entitlements/{ent}/transitions",     None,                                           [200, 200, 200, 200, 404, 403, 401, 401]),
    ("GET",    "/v1/entitlements/{ent}/usage",           None,                                           [200, 200, 200, 200, 404, 403, 401, 401]),
    ("POST",   "/v1/entitlements/{ent}/usage",           Some(r#"{"quantity":1}"#),                      [201, 201, 201, 403, 404, 201, 401, 401]),
    ("POST",   "/v1/entitlements/{ent}/adjustments",     Some(r#"{"quantity":1,"reason":"goodwill"}"#),  [201, 201, 403, 403, 404, 403, 401, 401]),
    ("POST",   "/v1/entitlements/{ent}/reservations",    Some(r#"{"quantity":1,"timeout_seconds":600}"#),[201, 201, 201, 403, 404, 201, 401, 401]),
    ("GET",    "/v1/reservations/{res}",                 None,                                           [200, 200, 200, 200, 404, 200, 401, 401]),
    ("GET",    "/v1/entitlements/{ent}/reservations",    None,                                           [200, 200, 200, 200, 404, 200, 401, 401]),
    ("POST",   "/v1/reservations/{res}/commit",          Some("{}"),                                     [200, 200, 200, 403, 404, 200, 401, 401]),
    ("POST",   "/v1/reservations/{res}/release",         None,                                           [200, 200, 200, 403, 404, 200, 401, 401]),
    ("POST",   "/v1/usage/batch",                        Some(r#"{"items":[{"entitlement_id":"{ent}","quantity":1}]}"#), [200, 200, 200, 403, 403, 200, 401, 401]),
    ("GET",    "/v1/events",                             None,                                           [200, 200, 200, 403, 403, 403, 401, 401]),
    ("GET",    "/v1/cases",                              None,                                           [200, 200, 200, 200, 200, 403, 401, 401]),
    ("POST",   "/v1/cases",                              Some(r#"{"account_id":"{acc}","title":"Help"}"#),[201, 201, 201, 201, 422, 403, 401, 401]),
    ("GET",    "/v1/cases/{case}",                       None,                                           [200, 200, 200, 200, 404, 403, 401, 401]),
    ("PATCH",  "/v1/cases/{case}",                       Some(r#"{"entitlement_id":null}"#),             [200, 200, 200, 403, 404, 403, 401, 401]),
    ("DELETE", "/v1/cases/{case}",                       None,                                           [204, 204, 204, 403, 404, 403, 401, 401]),
    ("POST",   "/v1/cases/{case}/resolve",               None,                                           [200, 200, 200, 403, 404, 403, 401, 401]),
    ("POST",   "/v1/cases/{case}/cancel",                None,                                           [200, 200, 200, 403, 404, 403, 401, 401]),
    ("POST",   "/v1/cases/{closed}/reactivate",          None,                                           [200, 200, 200, 403, 404, 403, 401, 401]),
    ("POST",   "/v1/cases/{case}/time-entries",          Some(r#"{"minutes":30}"#),                      [201, 201, 201, 403, 404, 403, 401, 401]),
    ("DELETE", "/v1/cases/{case}/time-entries/{time}",   None,                                           [200, 200, 200, 403, 404, 403, 401, 401]),
    ("GET",    "/v1/api-keys",                           None,                                           [200, 403, 403, 403, 403, 403, 401, 401]),
    ("POST",   "/v1/api-keys",                           Some(r#"{"role":"agent"}"#),                    [201, 403, 403, 403, 403, 403, 401, 401]),
    ("POST",   "/v1/api-keys/{key}/revoke",              None,                                           [204, 403, 403, 403, 403, 403, 401, 401]),
    ("GET",    "/v1/audit",                              None,                                           [200, 200, 403, 403, 403, 403, 401, 401]),
    ("GET",    "/v1/reports/consumption",                None,                                           [200, 200, 200, 200, 200, 403, 401, 401]),
    ("GET",    "/v1/reports/consumption/totals",         None,                                           [200, 200, 200, 200, 200, 403, 401, 401]),
    ("GET",    "/v1/reports/approaching-limit",          None,                                           [200, 200, 200, 200, 200, 403, 401, 401]),
    ("GET",    "/v1/reports/expiring",                   None,                                           [200, 200, 200, 200, 200, 403, 401, 401]),
    ("GET",    "/v1/reports/counts",                     None,                                           [200, 200, 200, 200, 200, 403, 401, 401]),
    ("GET",    "/v1/reports/unused",                     None,                                           [200, 200, 200, 200, 200, 403, 401, 401]),
    ("GET",    "/v1/reports/unused/by-account",          None,                                           [200, 200, 200, 200, 200, 403, 401, 401]),
    ("GET",    "/v1/reports/forecast",                   None,                                           [200, 200, 200, 200, 200, 403, 401, 401]),
    // Without entitlement_id or account_id a series is refused (the permission first).
    ("GET",    "/v1/reports/usage-over-time",            None,                                           [422, 422, 422, 422, 422, 403, 401, 401]),
    ("PATCH",  "/v1/accounts/{acc}",                     Some(r#"{"manager_email":"am@example.com"}"#),  [200, 200, 403, 403, 404, 403, 401, 401]),
    ("GET",    "/v1/webhooks",                           None,                                           [200, 200, 403, 403, 403, 403, 401, 401]),
    ("POST",   "/v1/webhooks",                           Some(r#"{"url":"http://93.184.216.34/hook"}"#), [201, 201, 403, 403, 403, 403, 401, 401]),
    ("GET",    "/v1/webhooks/{whk}",                     None,                                           [200, 200, 403, 403, 403, 403, 401, 401]),
    ("PATCH",  "/v1/webhooks/{whk}",                     Some(r#"{"enabled":false}"#),                   [200, 200, 403, 403, 403, 403, 401, 401]),
    ("DELETE", "/v1/webhooks/{whk}",                     None,                                           [204, 204, 403, 403, 403, 403, 401, 401]),
    ("POST",   "/v1/webhooks/{whk}/rotate-secret",       None,                                           [200, 200, 403, 403, 403, 403, 401, 401]),
    ("POST",   "/v1/webhooks/{whk}/test",                None,                                           [202, 202, 403, 403, 403, 403, 401, 401]),
    ("GET",    "/v1/webhooks/{whk}/deliveries",          None,                                           [200, 200, 403, 403, 403, 403, 401, 401]),
    ("POST",   "/v1/webhooks/{whk}/deliveries/{dlv}/retry", None,                                        [202, 202, 403, 403, 403, 403, 401, 401]),
    ("GET",    "/v1/notifications",                      None,                                           [200, 200, 403, 403, 403, 403, 401, 401]),
    ("GET",    "/v1/software-models",                    None,                                           [200, 200, 200, 200, 200, 403, 401, 401]),
    ("POST",   "/v1/software-models",                    Some(r#"{"publisher":"Adobe","product":"Acrobat"}"#),[201, 201, 403, 403, 403, 403, 401, 401]),
    ("GET",    "/v1/software-models/{swm}",              None,                                           [200, 200, 200, 200, 200, 403, 401, 401]),
    ("PATCH",  "/v1/software-models/{swm}",              Some(r#"{"edition":"Pro"}"#),                   [200, 200, 403, 403, 403, 403, 401, 401]),
    ("GET",    "/v1/software-entitlements",              None,                                           [200, 200, 200, 200, 200, 403, 401, 401]),
    ("POST",   "/v1/software-entitlements",              Some(NEW_SOFTWARE_ENTITLEMENT),                 [201, 201, 403, 403, 403, 403, 401, 401]),
    ("GET",    "/v1/software-entitlements/{swe}",        None,                                           [200, 200, 200, 200, 404, 403, 401, 401]),
    ("PATCH",  "/v1/software-entitlements/{swe}",        Some(r#"{"purchased_rights":20}"#),             [200, 200, 403, 403, 404, 403, 401, 401]),
    ("POST",   "/v1/software-entitlements/{swedraft}/publish", None,                                     [200, 200, 403, 403, 404, 403, 401, 401]),
    ("POST",   "/v1/software-entitlements/{swe}/retire", None,                                           [200, 200, 403, 403, 404, 403, 401, 401]),
    ("POST",   "/v1/software-entitlements/{swe}/license-keys", Some(r#"{"keys":["K-1"]}"#),              [200, 200, 403, 403, 404, 403, 401, 401]),
    ("POST",   "/v1/software-entitlements/{swe}/downgrade-rights", Some(r#"{"software_model_id":"{swm}"}"#), [200, 200, 403, 403, 404, 403, 401, 401]),
    ("POST",   "/v1/software-entitlements/{swe}/upgrade", Some(r#"{"from_entitlement_id":"{swe2}","rights":1}"#), [200, 200, 403, 403, 404, 403, 401, 401]),
    ("GET",    "/v1/software-entitlements/{swe}/allocations", None,                                      [200, 200, 200, 200, 404, 403, 401, 401]),
    ("POST",   "/v1/software-entitlements/{swe}/allocations", Some(r#"{"user":"ann","quantity":1}"#),     [201, 201, 201, 403, 404, 403, 401, 401]),
    ("DELETE", "/v1/software-entitlements/{swe}/allocations/{sal}", None,                                [200, 200, 200, 403, 404, 403, 401, 401]),
    ("POST",   "/v1/installations",                      Some(r#"{"software_model_id":"{swm}","device":"pc-1","seen_at":"2026-06-14T00:00:00Z"}"#), [201, 201, 403, 403, 403, 201, 401, 401]),
    ("POST",   "/v1/reconciliations",                    Some("{}"),                                     [201, 201, 403, 403, 403, 403, 401, 401]),
    ("GET",    "/v1/reconciliations",                    None,                                           [200, 200, 200, 403, 403, 403, 401, 401]),
    ("GET",    "/v1/reconciliations/{rec}",              None,                                           [200, 200, 200, 403, 403, 403, 401, 401]),
    // An empty file is refused (422) once the caller may import at all.
    ("POST",   "/v1/imports/{kind}",                     None,                                           [422, 422, 403, 403, 403, 403, 401, 401]),
    ("GET",    "/v1/imports/{kind}/template",            None,                                           [200, 200, 200, 200, 200, 403, 401, 401]),
    ("GET",    "/v1/contracts",                          None,                                           [200, 200, 200, 200, 200, 403, 401, 401]),
    ("POST",   "/v1/contracts",                          Some(NEW_CONTRACT),                             [201, 201, 403, 403, 403, 403, 401, 401]),
    ("GET",    "/v1/contracts/{ctr}",                    None,                                           [200, 200, 200, 200, 404, 403, 401, 401]),
    ("POST",   "/v1/contracts/{ctr}/lines",              Some(r#"{"quantity":1}"#),                      [201, 201, 403, 403, 404, 403, 401, 401]),
    ("GET",    "/v1/contracts/{ctr}/lines",              None,                                           [200, 200, 200, 200, 404, 403, 401, 401]),
    ("GET",    "/v1/contracts/{ctr}/entitlements",       None,                                           [200, 200, 200, 200, 404, 403, 401, 401]),
    ("POST",   "/v1/contracts/{ctr}/activate",           None,                                           [200, 200, 403, 403, 404, 403, 401, 401]),
    ("POST",   "/v1/contracts/{actr}/suspend",           None,                                           [200, 200, 403, 403, 404, 403, 401, 401]),
    ("POST",   "/v1/contracts/{sctr}/resume",            None,                                           [200, 200, 403, 403, 404, 403, 401, 401]),
    ("POST",   "/v1/contracts/{ctr}/cancel",             None,                                           [200, 200, 403, 403, 404, 403, 401, 401]),
    ("POST",   "/v1/contracts/{actr}/renew",             None,                                           [201, 201, 403, 403, 404, 403, 401, 401]),
    ("POST",   "/v1/entitlements/{ent}/make-default",    None,                                           [200, 200, 403, 403, 404, 403, 401, 401]),
    ("GET",    "/v1/entitlement-templates",              None,                                           [200, 200, 200, 403, 403, 403, 401, 401]),
    ("POST",   "/v1/entitlement-templates",              Some(NEW_TEMPLATE),                             [201, 201, 403, 403, 403, 403, 401, 401]),
    ("GET",    "/v1/entitlement-templates/{tpl}",        None,                                           [200, 200, 200, 403, 403, 403, 401, 401]),
    ("PATCH",  "/v1/entitlement-templates/{tpl}",        Some(r#"{"total":5}"#),                         [200, 200, 403, 403, 403, 403, 401, 401]),
    ("DELETE", "/v1/entitlement-templates/{tpl}",        None,                                           [204, 204, 403, 403, 403, 403, 401, 401]),
    ("POST",   "/v1/entitlement-templates/{tpl}/instantiate", Some(r#"{"account_ids":["{acc}"]}"#),      [201, 201, 403, 403, 403, 403, 401, 401]),
    // No job exists: the permission is checked first, then the lookup.
    ("GET",    "/v1/jobs/{job}",                         None,                                           [404, 404, 403, 403, 403, 403, 401, 401]),
    ("GET",    "/v1/reports/software-compliance",        None,                                           [200, 200, 200, 403, 403, 403, 401, 401]),
];

const NEW_CONTRACT: &str = r#"{"account_id":"{acc}","number":"N-{uniq}","start_date":"2026-01-01","end_date":"2026-12-31"}"#;

const NEW_TEMPLATE: &str = r#"{"name":"T-{uniq}","unit":"cases","total":10,"restrict":true,
    "decrement_on":"creation","duration":{"months":12}}"#;

const NEW_SOFTWARE_ENTITLEMENT: &str = r#"{"software_model_id":"{swm}","account_id":"{acc}",
    "license_metric":"per_user","license_type":"perpetual","purchased_rights":5}"#;

const NEW_ENTITLEMENT: &str = r#"{"account_id":"{acc}","name":"Extra","unit":"cases","total":10,
    "restrict":true,"decrement_on":"creation","start_date":"2026-01-01","end_date":"2026-12-31"}"#;

/// The keys of the eight columns (`None`: no Authorization header).
struct Callers {
    account: String,
    keys: [Option<String>; 8],
}

async fn callers(app: &TestApp) -> Callers {
    let mine = app.account("Mine").await;
    let theirs = app.account("Theirs").await;
    app.active_entitlement(&mine, json!({})).await;
    app.active_entitlement(&theirs, json!({})).await;
    let revoked = app.post("/v1/api-keys", json!({ "role": "admin" })).await;
    let answer = app
        .post(&format!("/v1/api-keys/{}/revoke", revoked.id()), json!({}))
        .await;
    assert_eq!(answer.status.as_u16(), 204, "{:?}", answer.body);
    Callers {
        keys: [
            Some(app.admin.clone()),
            Some(app.key("manager", None).await),
            Some(app.key("agent", None).await),
            Some(app.key("customer", Some(&mine)).await),
            Some(app.key("customer", Some(&theirs)).await),
            Some(app.key("integration", None).await),
            None,
            Some(revoked.body["secret"].as_str().unwrap().to_string()),
        ],
        account: mine,
    }
}

/// Builds, as admin, the objects named by the placeholders in `text`, and
/// returns `text` with them filled in.
async fn fill(app: &TestApp, account: &str, text: &str) -> String {
    let needs = |p: &str| text.contains(p);
    let mut out = text.replace("{acc}", account).replace("{kind}", "accounts");
    let mut set = |name: &str, id: &str| out = out.replace(name, id);
    let created = |a: &crate::common::Answer, what: &str| {
        assert!(a.status.is_success(), "fixture {what}: {:?}", a.body);
    };
    if needs("{con}") {
        let a = app
            .post(
                "/v1/contacts",
                json!({ "account_id": account, "name": "Jo" }),
            )
            .await;
        created(&a, "contact");
        set("{con}", &a.id());
    }
    if needs("{prd}") {
        let a = app.post("/v1/products", json!({ "name": "Widget" })).await;
        created(&a, "product");
        set("{prd}", &a.id());
    }
    if needs("{key}") {
        let a = app.post("/v1/api-keys", json!({ "role": "agent" })).await;
        created(&a, "key");
        set("{key}", &a.id());
    }
    if needs("{whk}") {
        // A public address that no test reaches: the worker's tries fail quietly.
        let a = app
            .post(
                "/v1/webhooks",
                json!({ "url": "http://93.184.216.34/hook" }),
            )
            .await;
        created(&a, "webhook");
        let webhook = a.id();
        if needs("{dlv}") {
            let d = app
                .post(&format!("/v1/webhooks/{webhook}/test"), json!({}))
                .await;
            created(&d, "test delivery");
            set("{dlv}", &d.id());
        }
        set("{whk}", &webhook);
    }
    if needs("{draft}") {
        set("{draft}", &app.entitlement(account, json!({})).await);
    }
    if needs("{cancelled}") {
        let id = app.active_entitlement(account, json!({})).await;
        let a = app
            .post(&format!("/v1/entitlements/{id}/cancel"), json!({}))
            .await;
        created(&a, "cancelled entitlement");
        set("{cancelled}", &id);
    }
    if ["{ent}", "{case}", "{closed}", "{res}"]
        .iter()
        .any(|p| needs(p))
    {
        let ent = app
            .active_entitlement(account, json!({ "unit": "hours", "total": 100 }))
            .await;
        let open_case = || async {
            let a = app
                .post(
                    "/v1/cases",
                    json!({ "account_id": account, "title": "Printer", "entitlement_id": ent }),
                )
                .await;
            created(&a, "case");
            a.id()
        };
        if needs("{case}") {
            let case = open_case().await;
            if needs("{time}") {
                let a = app
                    .post(
                        &format!("/v1/cases/{case}/time-entries"),
                        json!({ "minutes": 30 }),
                    )
                    .await;
                created(&a, "time entry");
                set("{time}", a.body["time_entries"][0]["id"].as_str().unwrap());
            }
            set("{case}", &case);
        }
        if needs("{closed}") {
            let case = open_case().await;
            let a = app
                .post(&format!("/v1/cases/{case}/cancel"), json!({}))
                .await;
            created(&a, "cancelled case");
            set("{closed}", &case);
        }
        if needs("{res}") {
            let a = app
                .post(
                    &format!("/v1/entitlements/{ent}/reservations"),
                    json!({ "quantity": 1, "timeout_seconds": 600 }),
                )
                .await;
            created(&a, "reservation");
            set("{res}", a.body["reservation"]["id"].as_str().unwrap());
        }
        set("{ent}", &ent);
    }
    fill_software(app, account, &mut out).await;
    fill_contracts(app, account, &mut out).await;
    let names = [
        "{ctr}",
        "{actr}",
        "{sctr}",
        "{tpl}",
        "{uniq}",
        "{job}",
        "{swm}",
        "{swe}",
        "{swe2}",
        "{swedraft}",
        "{sal}",
        "{rec}",
        "{con}",
        "{prd}",
        "{key}",
        "{draft}",
        "{cancelled}",
        "{ent}",
        "{case}",
        "{closed}",
        "{time}",
        "{res}",
        "{whk}",
        "{dlv}",
    ];
    assert!(
        !names.iter().any(|n| out.contains(n)),
        "unfilled placeholder in {out}"
    );
    out
}

/// The contract placeholders, all in account A: `{ctr}` a draft contract;
/// `{actr}` an active one; `{sctr}` a suspended one; `{tpl}` a template;
/// `{uniq}` text no other cell uses (contract numbers and template names
/// are unique).
async fn fill_contracts(app: &TestApp, account: &str, out: &mut String) {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let uniq = || format!("{}", NEXT.fetch_add(1, Ordering::Relaxed));
    let created = |a: &crate::common::Answer, what: &str| {
        assert!(a.status.is_success(), "fixture {what}: {:?}", a.body);
    };
    let contract = |steps: &'static [&'static str]| {
        let number = format!("F-{}", uniq());
        async move {
            let a = app
                .post(
                    "/v1/contracts",
                    json!({ "account_id": account, "number": number, "start_date": "2026-01-01", "end_date": "2026-12-31" }),
                )
                .await;
            created(&a, "contract");
            let id = a.id();
            for step in steps {
                let a = app
                    .post(&format!("/v1/contracts/{id}/{step}"), json!({}))
                    .await;
                created(&a, step);
            }
            id
        }
    };
    if out.contains("{ctr}") {
        let id = contract(&[]).await;
        *out = out.replace("{ctr}", &id);
    }
    if out.contains("{actr}") {
        let id = contract(&["activate"]).await;
        *out = out.replace("{actr}", &id);
    }
    if out.contains("{sctr}") {
        let id = contract(&["activate", "suspend"]).await;
        *out = out.replace("{sctr}", &id);
    }
    if out.contains("{tpl}") {
        let a = app
            .post(
                "/v1/entitlement-templates",
                json!({ "name": format!("F-{}", uniq()), "unit": "cases", "total": 10, "restrict": true,
                        "decrement_on": "creation", "duration": { "months": 12 } }),
            )
            .await;
        created(&a, "template");
        *out = out.replace("{tpl}", &a.id());
    }
    *out = out.replace("{job}", "job_none");
    while out.contains("{uniq}") {
        *out = out.replacen("{uniq}", &uniq(), 1);
    }
}

/// The software placeholders, all in account A: `{swm}` a model; `{swe}` a
/// published entitlement of 10 per-user rights (on a model of its own);
/// `{swe2}` another, the source of an upgrade; `{swedraft}` one not yet
/// published; `{sal}` an allocation on `{swe}`; `{rec}` a reconciliation.
async fn fill_software(app: &TestApp, account: &str, out: &mut String) {
    let created = |a: &crate::common::Answer, what: &str| {
        assert!(a.status.is_success(), "fixture {what}: {:?}", a.body);
    };
    let model = || async {
        let a = app
            .post(
                "/v1/software-models",
                json!({ "publisher": "Microsoft", "product": "Visio" }),
            )
            .await;
        created(&a, "software model");
        a.id()
    };
    let entitlement = |publish: bool| async move {
        let model = model().await;
        let a = app
            .post(
                "/v1/software-entitlements",
                json!({ "software_model_id": model, "account_id": account, "license_metric": "per_user",
                        "license_type": "perpetual", "purchased_rights": 10 }),
            )
            .await;
        created(&a, "software entitlement");
        let id = a.id();
        if publish {
            let p = app
                .post(
                    &format!("/v1/software-entitlements/{id}/publish"),
                    json!({}),
                )
                .await;
            created(&p, "published software entitlement");
        }
        id
    };
    if out.contains("{swm}") {
        let id = model().await;
        *out = out.replace("{swm}", &id);
    }
    if out.contains("{swe2}") {
        let id = entitlement(true).await;
        *out = out.replace("{swe2}", &id);
    }
    if out.contains("{swedraft}") {
        let id = entitlement(false).await;
        *out = out.replace("{swedraft}", &id);
    }
    if out.contains("{swe}") {
        let id = entitlement(true).await;
        if out.contains("{sal}") {
            let a = app
                .post(
                    &format!("/v1/software-entitlements/{id}/allocations"),
                    json!({ "user": "ann", "quantity": 1 }),
                )
                .await;
            created(&a, "allocation");
            *out = out.replace("{sal}", &a.id());
        }
        *out = out.replace("{swe}", &id);
    }
    if out.contains("{rec}") {
        let a = app.post("/v1/reconciliations", json!({})).await;
        created(&a, "reconciliation");
        *out = out.replace("{rec}", &a.id());
    }
}

/// `/v1/cases/{case}/time-entries/{time}` → `/v1/cases/{}/time-entries/{}`:
/// every `{name}` (a placeholder or an OpenAPI parameter) becomes `{}`.
fn template(path: &str) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        match after.find('}') {
            Some(end)
                if end > 0
                    && after[..end]
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c == '_') =>
            {
                out.push_str("{}");
                rest = &after[end + 1..];
            }
            _ => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Every `/v1` route the server documents must have its row, and no more.
async fn assert_table_covers_every_route(app: &TestApp) {
    let doc = app.get("/openapi.json").await.body;
    let documented: BTreeSet<String> = doc["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .filter(|m| ["get", "post", "put", "patch", "delete"].contains(&m.as_str()))
                .map(move |m| format!("{} {}", m.to_uppercase(), template(path)))
        })
        .collect();
    let tabled: BTreeSet<String> = TABLE
        .iter()
        .map(|(method, path, _, _)| format!("{method} {}", template(path)))
        .collect();
    assert_eq!(
        documented.difference(&tabled).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "routes without a row in the role table"
    );
    assert_eq!(
        tabled.difference(&documented).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "rows for routes the server does not document"
    );
}

async fn every_route_answers_every_caller_as_the_policy_says(app: TestApp) {
    assert_table_covers_every_route(&app).await;
    let who = callers(&app).await;
    let mut wrong = Vec::new();
    for (method, path, body, expected) in TABLE {
        for (column, key) in who.keys.iter().enumerate() {
            let filled = fill(
                &app,
                &who.account,
                &format!("{path}\n{}", body.unwrap_or("")),
            )
            .await;
            let (url, text) = filled.split_once('\n').unwrap();
            let body =
                body.map(|_| serde_json::from_str::<Value>(text).expect("body in the table"));
            let method = Method::from_bytes(method.as_bytes()).unwrap();
            let answer = app
                .call(method.clone(), url, key.as_deref(), body, None)
                .await;
            if answer.status.as_u16() != expected[column] {
                wrong.push(format!(
                    "{method} {path} as {}: expected {}, got {} {}",
                    CALLERS[column],
                    expected[column],
                    answer.status.as_u16(),
                    answer.code()
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} cells differ from the policy:\n{}",
        wrong.len(),
        TABLE.len() * CALLERS.len(),
        wrong.join("\n")
    );
}
