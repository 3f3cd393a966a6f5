use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::TestApp;

crate::on_both_backends!(
    decrement_on_creation,
    decrement_on_resolution,
    matching_applies_default_then_best_and_explains_refusals,
    overflow_refuses_or_warns,
    hours_follow_time_entries,
    moving_a_case_moves_its_usage,
    visit_references_are_unique,
    the_last_case_goes_to_exactly_one_opener,
    customers_open_cases_for_their_own_account,
    action_bodies_refuse_unknown_fields,
    a_replayed_case_open_keeps_its_warnings,
);

async fn open(app: &TestApp, body: Value) -> crate::common::Answer {
    app.post("/v1/cases", body).await
}

fn used(a: &crate::common::Answer) -> Value {
    a.body["entitlement_balance"]["used"].clone()
}

async fn decrement_on_creation(app: TestApp) {
    let acc = app.account("Acme").await;
    let ent = app.active_entitlement(&acc, json!({ "total": 5 })).await;
    let case = open(
        &app,
        json!({ "account_id": acc, "title": "Printer on fire", "entitlement_id": ent }),
    )
    .await;
    assert_eq!(case.status, StatusCode::CREATED, "{:?}", case.body);
    assert_eq!(case.body["entitlement_id"], json!(ent));
    assert_eq!(case.body["status"], "open");
    assert_eq!(used(&case), json!(1));
    let id = case.id();
    let resolved = app
        .post(&format!("/v1/cases/{id}/resolve"), json!({}))
        .await;
    assert_eq!(
        (resolved.body["status"].clone(), used(&resolved)),
        (json!("resolved"), json!(1))
    );
    let cancelled = app.post(&format!("/v1/cases/{id}/cancel"), json!({})).await;
    assert_eq!(
        (cancelled.body["status"].clone(), used(&cancelled)),
        (json!("cancelled"), json!(0))
    );
    let again = app
        .post(&format!("/v1/cases/{id}/reactivate"), json!({}))
        .await;
    assert_eq!(
        (again.body["status"].clone(), used(&again)),
        (json!("open"), json!(1))
    );
    assert_eq!(
        app.post(&format!("/v1/cases/{id}/reactivate"), json!({}))
            .await
            .code(),
        "invalid_case_transition"
    );
    let deleted = app
        .call(
            Method::DELETE,
            &format!("/v1/cases/{id}"),
            Some(&app.admin),
            None,
            None,
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.get(&format!("/v1/cases/{id}")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.balance(&ent).await["used"],
        json!(1),
        "deleting gives nothing back"
    );
    let free = open(&app, json!({ "account_id": acc, "title": "Courtesy", "entitlement_id": ent, "do_not_decrement": true })).await;
    assert_eq!(used(&free), json!(1));
    let ledger = app.get(&format!("/v1/entitlements/{ent}/usage")).await.body;
    let reasons: Vec<&str> = ledger["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["reason"].as_str().unwrap())
        .collect();
    assert_eq!(
        reasons,
        vec!["case_opened", "case_cancelled", "case_reactivated"]
    );
    assert_eq!(ledger["items"][0]["reference"], json!(id));
    app.assert_ledger_matches(&ent).await;
}

async fn decrement_on_resolution(app: TestApp) {
    let acc = app.account("Acme").await;
    let ent = app
        .active_entitlement(&acc, json!({ "total": 5, "decrement_on": "resolution" }))
        .await;
    let case = open(
        &app,
        json!({ "account_id": acc, "title": "Slow", "entitlement_id": ent }),
    )
    .await;
    assert_eq!(used(&case), json!(0));
    let id = case.id();
    assert_eq!(
        used(
            &app.post(&format!("/v1/cases/{id}/resolve"), json!({}))
                .await
        ),
        json!(1)
    );
    assert_eq!(
        used(
            &app.post(&format!("/v1/cases/{id}/reactivate"), json!({}))
                .await
        ),
        json!(0)
    );
    assert_eq!(
        used(&app.post(&format!("/v1/cases/{id}/cancel"), json!({})).await),
        json!(0)
    );
    app.assert_ledger_matches(&ent).await;
}

async fn matching_applies_default_then_best_and_explains_refusals(app: TestApp) {
    let acc = app.account("Acme").await;
    let contact = app
        .post("/v1/contacts", json!({ "account_id": acc, "name": "Jane" }))
        .await
        .id();
    let other_contact = app
        .post("/v1/contacts", json!({ "account_id": acc, "name": "Joe" }))
        .await
        .id();
    let general = app
        .active_entitlement(&acc, json!({ "end_date": "2026-12-31" }))
        .await;
    let for_jane = app
        .active_entitlement(&acc, json!({ "contact_ids": [contact] }))
        .await;
    let c = open(
        &app,
        json!({ "account_id": acc, "title": "t", "contact_id": contact }),
    )
    .await;
    assert_eq!(
        c.body["entitlement_id"],
        json!(for_jane),
        "most specific first"
    );
    let c = open(
        &app,
        json!({ "account_id": acc, "title": "t", "contact_id": other_contact }),
    )
    .await;
    assert_eq!(c.body["entitlement_id"], json!(general));
    let default = app
        .active_entitlement(&acc, json!({ "is_default": true }))
        .await;
    let c = open(
        &app,
        json!({ "account_id": acc, "title": "t", "contact_id": contact }),
    )
    .await;
    assert_eq!(
        c.body["entitlement_id"],
        json!(default),
        "the default wins when it covers"
    );
    let refused = open(&app, json!({ "account_id": acc, "title": "t", "contact_id": other_contact, "entitlement_id": for_jane })).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        refused.body["error"]["details"]["fields"][0]["field"],
        "contact_id"
    );
    let other = app.account("Other").await;
    let theirs = app.active_entitlement(&other, json!({})).await;
    let wrong = open(
        &app,
        json!({ "account_id": acc, "title": "t", "entitlement_id": theirs }),
    )
    .await;
    assert_eq!(
        wrong.body["error"]["details"]["fields"][0]["field"],
        "account_id"
    );
    let draft = app.entitlement(&acc, json!({})).await;
    let inactive = open(
        &app,
        json!({ "account_id": acc, "title": "t", "entitlement_id": draft }),
    )
    .await;
    assert_eq!(
        inactive.body["error"]["details"]["fields"][0]["field"],
        "entitlement_id"
    );
    let bare = app.account("Nothing").await;
    let none = open(&app, json!({ "account_id": bare, "title": "t" })).await;
    assert_eq!(none.status, StatusCode::CREATED);
    assert_eq!(none.body["entitlement_id"], Value::Null);
    assert_eq!(none.body["warnings"].as_array().unwrap().len(), 1);
}

async fn overflow_refuses_or_warns(app: TestApp) {
    let acc = app.account("Acme").await;
    let ent = app.active_entitlement(&acc, json!({ "total": 1 })).await;
    open(
        &app,
        json!({ "account_id": acc, "title": "1", "entitlement_id": ent }),
    )
    .await;
    let refused = open(
        &app,
        json!({ "account_id": acc, "title": "2", "entitlement_id": ent }),
    )
    .await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    assert_eq!(refused.code(), "entitlement_exhausted");
    assert_eq!(
        refused.body["error"]["details"]["entitlement_id"],
        json!(ent)
    );
    let listed = app.get(&format!("/v1/cases?account_id={acc}")).await;
    assert_eq!(
        listed.body["items"].as_array().unwrap().len(),
        1,
        "a refused case is not stored"
    );
    let loose = app
        .active_entitlement(&acc, json!({ "total": 1, "restrict": false }))
        .await;
    open(
        &app,
        json!({ "account_id": acc, "title": "1", "entitlement_id": loose }),
    )
    .await;
    let over = open(
        &app,
        json!({ "account_id": acc, "title": "2", "entitlement_id": loose }),
    )
    .await;
    assert_eq!(over.status, StatusCode::CREATED);
    assert_eq!(over.body["entitlement_balance"]["remaining"], json!(-1));
    assert_eq!(over.body["warnings"].as_array().unwrap().len(), 1);
    let resolution = app
        .active_entitlement(&acc, json!({ "total": 0, "decrement_on": "resolution" }))
        .await;
    let case = open(
        &app,
        json!({ "account_id": acc, "title": "r", "entitlement_id": resolution }),
    )
    .await
    .id();
    let resolve = app
        .post(&format!("/v1/cases/{case}/resolve"), json!({}))
        .await;
    assert_eq!(resolve.code(), "entitlement_exhausted");
    assert_eq!(
        app.get(&format!("/v1/cases/{case}")).await.body["status"],
        "open",
        "nothing changed"
    );
}

async fn hours_follow_time_entries(app: TestApp) {
    let acc = app.account("Acme").await;
    let ent = app
        .active_entitlement(
            &acc,
            json!({ "unit": "hours", "total": 10, "rounding": 0.25 }),
        )
        .await;
    let case = open(
        &app,
        json!({ "account_id": acc, "title": "Migration", "entitlement_id": ent }),
    )
    .await
    .id();
    let path = format!("/v1/cases/{case}/time-entries");
    let a = app
        .post(&path, json!({ "minutes": 20, "note": "call" }))
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{:?}", a.body);
    assert_eq!(a.body["time_entries"][0]["counted_hours"], json!(0.5));
    assert_eq!(a.body["time_entries"][0]["note"], "call");
    assert_eq!(used(&a), json!(0.5));
    let b = app.post(&path, json!({ "hours": 1.1 })).await;
    assert_eq!(used(&b), json!(1.75));
    let entry = b.body["time_entries"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let d = app
        .call(
            Method::DELETE,
            &format!("{path}/{entry}"),
            Some(&app.admin),
            None,
            None,
        )
        .await;
    assert_eq!(used(&d), json!(1.25));
    let ledger = app.get(&format!("/v1/entitlements/{ent}/usage")).await.body;
    let reasons: Vec<&str> = ledger["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["reason"].as_str().unwrap())
        .collect();
    assert_eq!(
        reasons,
        vec!["time_logged", "time_logged", "time_entry_deleted"]
    );
    assert_eq!(
        app.post(&path, json!({ "minutes": 0 })).await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        app.post(&path, json!({ "minutes": 5, "hours": 1 }))
            .await
            .status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let at_resolution = app
        .active_entitlement(
            &acc,
            json!({ "unit": "hours", "total": 10, "decrement_on": "resolution" }),
        )
        .await;
    let case = open(
        &app,
        json!({ "account_id": acc, "title": "Later", "entitlement_id": at_resolution }),
    )
    .await
    .id();
    app.post(
        &format!("/v1/cases/{case}/time-entries"),
        json!({ "hours": 2 }),
    )
    .await;
    assert_eq!(app.balance(&at_resolution).await["used"], json!(0));
    assert_eq!(
        used(
            &app.post(&format!("/v1/cases/{case}/resolve"), json!({}))
                .await
        ),
        json!(2)
    );
    assert_eq!(
        used(
            &app.post(&format!("/v1/cases/{case}/reactivate"), json!({}))
                .await
        ),
        json!(0)
    );
    let cases_ent = app
        .active_entitlement(&acc, json!({ "unit": "cases" }))
        .await;
    let case = open(
        &app,
        json!({ "account_id": acc, "title": "c", "entitlement_id": cases_ent }),
    )
    .await
    .id();
    assert_eq!(
        app.post(
            &format!("/v1/cases/{case}/time-entries"),
            json!({ "hours": 1 })
        )
        .await
        .code(),
        "unit_not_hours"
    );
    app.assert_ledger_matches(&ent).await;
}

async fn moving_a_case_moves_its_usage(app: TestApp) {
    let acc = app.account("Acme").await;
    let a = app.active_entitlement(&acc, json!({ "total": 5 })).await;
    let b = app.active_entitlement(&acc, json!({ "total": 1 })).await;
    let case = open(
        &app,
        json!({ "account_id": acc, "title": "m", "entitlement_id": a }),
    )
    .await
    .id();
    let moved = app
        .call(
            Method::PATCH,
            &format!("/v1/cases/{case}"),
            Some(&app.admin),
            Some(json!({ "entitlement_id": b })),
            None,
        )
        .await;
    assert_eq!(moved.status, StatusCode::OK, "{:?}", moved.body);
    assert_eq!(moved.body["entitlement_id"], json!(b));
    assert_eq!(
        (
            app.balance(&a).await["used"].clone(),
            app.balance(&b).await["used"].clone()
        ),
        (json!(0), json!(1))
    );
    let second = open(
        &app,
        json!({ "account_id": acc, "title": "n", "entitlement_id": a }),
    )
    .await
    .id();
    let full = app
        .call(
            Method::PATCH,
            &format!("/v1/cases/{second}"),
            Some(&app.admin),
            Some(json!({ "entitlement_id": b })),
            None,
        )
        .await;
    assert_eq!(full.code(), "entitlement_exhausted");
    assert_eq!(
        app.balance(&a).await["used"],
        json!(1),
        "a refused move changes nothing"
    );
    let title = app
        .call(
            Method::PATCH,
            &format!("/v1/cases/{second}"),
            Some(&app.admin),
            Some(json!({ "title": "x" })),
            None,
        )
        .await;
    assert_eq!(title.status, StatusCode::UNPROCESSABLE_ENTITY);
    app.assert_ledger_matches(&a).await;
    app.assert_ledger_matches(&b).await;
}

async fn visit_references_are_unique(app: TestApp) {
    let acc = app.account("Acme").await;
    let ent = app
        .active_entitlement(&acc, json!({ "unit": "visits", "total": 4 }))
        .await;
    let path = format!("/v1/entitlements/{ent}/usage");
    let body = json!({ "quantity": 1, "kind": "visit", "reference": "WO-1" });
    let first = app
        .call(
            Method::POST,
            &path,
            Some(&app.admin),
            Some(body.clone()),
            Some("v1"),
        )
        .await;
    assert_eq!(first.status, StatusCode::CREATED);
    let replay = app
        .call(
            Method::POST,
            &path,
            Some(&app.admin),
            Some(body.clone()),
            Some("v1"),
        )
        .await;
    assert_eq!(
        (replay.status, replay.replayed),
        (StatusCode::CREATED, true)
    );
    let dup = app.post(&path, body).await;
    assert_eq!(dup.status, StatusCode::CONFLICT);
    assert_eq!(dup.code(), "duplicate_reference");
    assert_eq!(app.balance(&ent).await["used"], json!(1));
}

async fn the_last_case_goes_to_exactly_one_opener(app: TestApp) {
    let acc = app.account("Acme").await;
    let ent = app.active_entitlement(&acc, json!({ "total": 1 })).await;
    let app = std::sync::Arc::new(app);
    let tasks: Vec<_> = (0..24)
        .map(|i| {
            let (app, acc, ent) = (app.clone(), acc.clone(), ent.clone());
            tokio::spawn(async move {
                app.post(
                    "/v1/cases",
                    json!({ "account_id": acc, "title": format!("c{i}"), "entitlement_id": ent }),
                )
                .await
                .status
            })
        })
        .collect();
    let mut created = 0;
    for t in tasks {
        match t.await.unwrap() {
            StatusCode::CREATED => created += 1,
            StatusCode::CONFLICT => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(created, 1);
    assert_eq!(app.balance(&ent).await["used"], json!(1));
    assert_eq!(
        app.get(&format!("/v1/cases?entitlement_id={ent}"))
            .await
            .body["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

async fn customers_open_cases_for_their_own_account(app: TestApp) {
    let mine = app.account("Mine").await;
    let theirs = app.account("Theirs").await;
    app.active_entitlement(&mine, json!({})).await;
    let customer = app.key("customer", Some(&mine)).await;
    let ok = app
        .post_as(
            &customer,
            "/v1/cases",
            json!({ "account_id": mine, "title": "help" }),
        )
        .await;
    assert_eq!(ok.status, StatusCode::CREATED);
    let no = app
        .post_as(
            &customer,
            "/v1/cases",
            json!({ "account_id": theirs, "title": "help" }),
        )
        .await;
    assert_eq!(no.status, StatusCode::UNPROCESSABLE_ENTITY);
    let cancel = app
        .post_as(
            &customer,
            &format!("/v1/cases/{}/cancel", ok.id()),
            json!({}),
        )
        .await;
    assert_eq!(cancel.status, StatusCode::FORBIDDEN);
    let integration = app.key("integration", None).await;
    assert_eq!(
        app.post_as(
            &integration,
            "/v1/cases",
            json!({ "account_id": mine, "title": "x" })
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );
}

/// Actions without input accept no body or `{}`, and refuse anything else
/// like every other body: a 422 naming the field, nothing applied.
async fn action_bodies_refuse_unknown_fields(app: TestApp) {
    let acc = app.account("Acme").await;
    let ent = app.active_entitlement(&acc, json!({ "total": 5 })).await;
    let case = open(
        &app,
        json!({ "account_id": acc, "title": "Printer", "entitlement_id": ent }),
    )
    .await;
    let id = case.id();
    let refused = app
        .post(
            &format!("/v1/cases/{id}/resolve"),
            json!({ "reason": "done" }),
        )
        .await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{:?}",
        refused.body
    );
    assert_eq!(
        refused.body["error"]["details"]["fields"][0]["field"],
        "reason"
    );
    let still = app.get(&format!("/v1/cases/{id}")).await;
    assert_eq!(still.body["status"], "open", "{:?}", still.body);
    let resolved = app
        .post(&format!("/v1/cases/{id}/resolve"), json!({}))
        .await;
    assert_eq!(resolved.status, StatusCode::OK, "{:?}", resolved.body);
    let hold = app
        .post(
            &format!("/v1/entitlements/{ent}/reservations"),
            json!({ "quantity": 1, "timeout_seconds": 60 }),
        )
        .await;
    assert_eq!(hold.status, StatusCode::CREATED, "{:?}", hold.body);
    let res = hold.body["reservation"]["id"].as_str().unwrap().to_string();
    let refused = app
        .post(
            &format!("/v1/reservations/{res}/release"),
            json!({ "now": true }),
        )
        .await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{:?}",
        refused.body
    );
    assert_eq!(
        refused.body["error"]["details"]["fields"][0]["field"],
        "now"
    );
    let released = app
        .post(&format!("/v1/reservations/{res}/release"), json!({}))
        .await;
    assert_eq!(released.status, StatusCode::OK, "{:?}", released.body);
}

/// Matching's warnings are part of the stored answer: a retry with the same
/// key gets them again, and no second case.
async fn a_replayed_case_open_keeps_its_warnings(app: TestApp) {
    let acc = app.account("Acme").await;
    let body = json!({ "account_id": acc, "title": "Nothing covers this" });
    let first = app
        .call(
            Method::POST,
            "/v1/cases",
            Some(&app.admin),
            Some(body.clone()),
            Some("open-1"),
        )
        .await;
    assert_eq!(first.status, StatusCode::CREATED, "{:?}", first.body);
    assert_eq!(
        first.body["warnings"].as_array().map(Vec::len),
        Some(1),
        "{:?}",
        first.body
    );
    let again = app
        .call(
            Method::POST,
            "/v1/cases",
            Some(&app.admin),
            Some(body),
            Some("open-1"),
        )
        .await;
    assert!(again.replayed);
    assert_eq!(again.status, StatusCode::CREATED);
    assert_eq!(again.body, first.body);
    let cases = app.get(&format!("/v1/cases?account_id={acc}")).await;
    assert_eq!(
        cases.body["items"].as_array().map(Vec::len),
        Some(1),
        "{:?}",
        cases.body
    );
}
