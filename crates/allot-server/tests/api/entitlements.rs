use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::TestApp;

crate::on_both_backends!(
    create_and_read_every_field,
    activation_follows_the_dates,
    state_follows_the_dates_without_a_job,
    only_drafts_are_edited_and_unit_never,
    cancel_and_renew,
    one_default_per_account,
    period_resets_with_rollover,
    eligibility_lists_matches_in_order,
    lifecycle_and_key_answers_replay_what_was_answered,
);

async fn create_and_read_every_field(app: TestApp) {
    let acc = app.account("Acme").await;
    let contact = app
        .post("/v1/contacts", json!({ "account_id": acc, "name": "Jane" }))
        .await
        .id();
    let product = app.post("/v1/products", json!({ "name": "DB" })).await.id();
    let body = json!({
        "account_id": acc, "name": "Hours", "description": "bundle", "owner": "am@example.com", "unit": "hours",
        "total": "20.5", "restrict": false, "decrement_on": "resolution", "start_date": "2026-01-01", "end_date": "2026-12-31",
        "period": "quarter", "rollover": 2, "channels": [{ "channel": "phone", "total": 15 }, { "channel": "email", "total": 5.5 }],
        "product_ids": [product], "contact_ids": [contact], "is_default": true, "alert_thresholds": [80, { "remaining": 2 }],
        "rounding": 0.25, "pooled": true, "auto_renew": true
    });
    let created = app.post("/v1/entitlements", body).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let e = app
        .get(&format!("/v1/entitlements/{}", created.id()))
        .await
        .body;
    assert_eq!(e["status"], "draft");
    assert_eq!(e["total"], json!(20.5));
    assert_eq!(e["unit"], "hours");
    assert_eq!(e["period"], "quarter");
    assert_eq!(e["rollover"], json!(2));
    assert_eq!(e["restrict"], false);
    assert_eq!(e["decrement_on"], "resolution");
    assert_eq!(
        e["channels"][1],
        json!({ "channel": "email", "total": 5.5 })
    );
    assert_eq!(e["product_ids"], json!([product]));
    assert_eq!(e["contact_ids"], json!([contact]));
    assert_eq!(e["alert_thresholds"], json!([80, { "remaining": 2 }]));
    assert_eq!(e["rounding"], json!(0.25));
    assert_eq!(
        (
            e["is_default"].clone(),
            e["pooled"].clone(),
            e["auto_renew"].clone()
        ),
        (json!(true), json!(true), json!(true))
    );
    let unlimited = app.post("/v1/entitlements", json!({ "account_id": acc, "name": "U", "unit": "cases", "total": null,
        "unlimited": true, "restrict": true, "decrement_on": "creation", "start_date": "2026-01-01", "end_date": "2026-12-31" })).await;
    assert_eq!(
        unlimited.status,
        StatusCode::CREATED,
        "{:?}",
        unlimited.body
    );
    assert_eq!(unlimited.body["unlimited"], true);
    assert_eq!(unlimited.body["total"], json!(null));
}

async fn activation_follows_the_dates(app: TestApp) {
    let acc = app.account("Acme").await;
    for (start, end, expected) in [
        ("2026-07-01", "2026-12-31", "waiting"),
        ("2026-01-01", "2026-06-15", "active"),
        ("2025-01-01", "2025-12-31", "expired"),
    ] {
        let id = app
            .entitlement(&acc, json!({ "start_date": start, "end_date": end }))
            .await;
        let a = app
            .post(&format!("/v1/entitlements/{id}/activate"), json!({}))
            .await;
        assert_eq!(a.body["status"], expected, "{start}..{end}");
        let again = app
            .post(&format!("/v1/entitlements/{id}/activate"), json!({}))
            .await;
        assert_eq!(again.status, StatusCode::CONFLICT);
        assert_eq!(again.code(), "invalid_transition");
    }
}

async fn state_follows_the_dates_without_a_job(app: TestApp) {
    let acc = app.account("Acme").await;
    let id = app
        .entitlement(
            &acc,
            json!({ "start_date": "2026-06-16", "end_date": "2026-06-20" }),
        )
        .await;
    app.post(&format!("/v1/entitlements/{id}/activate"), json!({}))
        .await;
    assert_eq!(
        app.get(&format!("/v1/entitlements/{id}")).await.body["status"],
        "waiting"
    );
    assert_eq!(
        app.use_(&id, json!(1)).await.code(),
        "entitlement_not_active"
    );
    app.clock.advance(chrono::Duration::days(1));
    assert_eq!(
        app.get(&format!("/v1/entitlements/{id}")).await.body["status"],
        "active"
    );
    assert_eq!(app.use_(&id, json!(1)).await.status, StatusCode::CREATED);
    app.clock.advance(chrono::Duration::days(5));
    assert_eq!(
        app.get(&format!("/v1/entitlements/{id}")).await.body["status"],
        "expired"
    );
    // The job then stores the state and emits the events, once.
    allot_server::jobs::run_once(&app.running.state).await;
    allot_server::jobs::run_once(&app.running.state).await;
    let events = app
        .get(&format!("/v1/events?entitlement_id={id}"))
        .await
        .body;
    let kinds: Vec<&str> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds
            .iter()
            .filter(|k| **k == "entitlement.expired")
            .count(),
        1,
        "{kinds:?}"
    );
}

async fn only_drafts_are_edited_and_unit_never(app: TestApp) {
    let acc = app.account("Acme").await;
    let id = app.entitlement(&acc, json!({})).await;
    let path = format!("/v1/entitlements/{id}");
    let patched = app
        .call(
            reqwest::Method::PATCH,
            &path,
            Some(&app.admin),
            Some(json!({ "total": 12, "name": "More" })),
            None,
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{:?}", patched.body);
    assert_eq!(patched.body["total"], json!(12));
    let unit = app
        .call(
            reqwest::Method::PATCH,
            &path,
            Some(&app.admin),
            Some(json!({ "unit": "hours" })),
            None,
        )
        .await;
    assert_eq!(unit.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(unit.body["error"]["details"]["fields"][0]["field"], "unit");
    app.post(&format!("{path}/activate"), json!({})).await;
    let active = app
        .call(
            reqwest::Method::PATCH,
            &path,
            Some(&app.admin),
            Some(json!({ "total": 5 })),
            None,
        )
        .await;
    assert_eq!(active.status, StatusCode::CONFLICT);
    assert_eq!(active.code(), "not_editable");
    // Who is told about it may change whatever its state.
    let owner = app
        .call(
            reqwest::Method::PATCH,
            &path,
            Some(&app.admin),
            Some(json!({ "owner_email": "owner@example.com" })),
            None,
        )
        .await;
    assert_eq!(owner.status, StatusCode::OK, "{:?}", owner.body);
    assert_eq!(owner.body["owner_email"], "owner@example.com");
    assert_eq!(owner.body["status"], "active");
    let back = app.post(&format!("{path}/deactivate"), json!({})).await;
    assert_eq!(back.body["status"], "draft");
    let ok = app
        .call(
            reqwest::Method::PATCH,
            &path,
            Some(&app.admin),
            Some(json!({ "total": 5 })),
            None,
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK);
    let transitions = app.get(&format!("{path}/transitions")).await.body;
    assert_eq!(transitions.as_array().unwrap().len(), 2);
    assert_eq!(transitions[0]["to_status"], "active");
}

async fn cancel_and_renew(app: TestApp) {
    let acc = app.account("Acme").await;
    let id = app
        .active_entitlement(
            &acc,
            json!({ "start_date": "2026-01-01", "end_date": "2026-03-31" }),
        )
        .await;
    // Expired by date: renewable, not cancellable.
    assert_eq!(
        app.post(&format!("/v1/entitlements/{id}/cancel"), json!({}))
            .await
            .status,
        StatusCode::CONFLICT
    );
    let renewed = app
        .post(&format!("/v1/entitlements/{id}/renew"), json!({}))
        .await;
    assert_eq!(renewed.status, StatusCode::CREATED, "{:?}", renewed.body);
    assert_eq!(renewed.body["status"], "draft");
    assert_eq!(renewed.body["predecessor_id"], json!(id));
    assert_eq!(renewed.body["start_date"], "2026-06-15");
    assert_eq!(renewed.body["end_date"], "2026-09-12");
    assert_eq!(
        app.get(&format!("/v1/entitlements/{id}")).await.body["status"],
        "expired"
    );
    let new_id = renewed.id();
    app.post(&format!("/v1/entitlements/{new_id}/activate"), json!({}))
        .await;
    let cancelled = app
        .post(&format!("/v1/entitlements/{new_id}/cancel"), json!({}))
        .await;
    assert_eq!(cancelled.body["status"], "cancelled");
    assert_eq!(
        app.use_(&new_id, json!(1)).await.code(),
        "entitlement_not_active"
    );
}

async fn one_default_per_account(app: TestApp) {
    let acc = app.account("Acme").await;
    app.entitlement(&acc, json!({ "is_default": true })).await;
    let second = app
        .post("/v1/entitlements", json!({ "account_id": acc, "name": "B", "unit": "cases", "total": 1, "restrict": true,
            "decrement_on": "creation", "start_date": "2026-01-01", "end_date": "2026-12-31", "is_default": true }))
        .await;
    assert_eq!(second.status, StatusCode::CONFLICT);
    assert_eq!(second.code(), "default_exists");
}

async fn period_resets_with_rollover(app: TestApp) {
    let acc = app.account("Acme").await;
    let id = app
        .active_entitlement(
            &acc,
            json!({ "total": 3, "period": "month", "rollover": 1, "start_date": "2026-06-01" }),
        )
        .await;
    assert_eq!(app.use_(&id, json!(2)).await.status, StatusCode::CREATED);
    let june = app.balance(&id).await;
    assert_eq!(
        (june["used"].clone(), june["remaining"].clone()),
        (json!(2), json!(1))
    );
    app.clock.advance(chrono::Duration::days(20));
    let july = app.balance(&id).await;
    assert_eq!(july["period"]["start"], "2026-07-01");
    assert_eq!(
        (
            july["used"].clone(),
            july["carried_over"].clone(),
            july["remaining"].clone()
        ),
        (json!(0), json!(1), json!(4))
    );
    for _ in 0..4 {
        assert_eq!(app.use_(&id, json!(1)).await.status, StatusCode::CREATED);
    }
    assert_eq!(
        app.use_(&id, json!(1)).await.code(),
        "entitlement_exhausted"
    );
    app.assert_ledger_matches(&id).await;
}

async fn eligibility_lists_matches_in_order(app: TestApp) {
    let parent = app.account("Acme").await;
    let child = app
        .post(
            "/v1/accounts",
            json!({ "name": "Acme Berlin", "parent_id": parent }),
        )
        .await
        .id();
    let product = app.post("/v1/products", json!({ "name": "DB" })).await.id();
    let general = app
        .active_entitlement(&child, json!({ "end_date": "2026-12-31" }))
        .await;
    let soon = app
        .active_entitlement(&child, json!({ "end_date": "2026-09-30" }))
        .await;
    let specific = app
        .active_entitlement(&child, json!({ "product_ids": [product] }))
        .await;
    let pooled = app
        .active_entitlement(&parent, json!({ "pooled": true, "end_date": "2026-08-31" }))
        .await;
    let _not_pooled = app.active_entitlement(&parent, json!({})).await;
    let _draft = app.entitlement(&child, json!({})).await;
    let answer = app
        .get(&format!(
            "/v1/accounts/{child}/eligibility?product={product}"
        ))
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    let ids: Vec<&str> = answer.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["entitlement"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        vec![
            specific.as_str(),
            soon.as_str(),
            general.as_str(),
            pooled.as_str()
        ]
    );
    assert_eq!(answer.body["items"][0]["balance"]["remaining"], json!(10));
    let other = app
        .get(&format!(
            "/v1/accounts/{child}/eligibility?product=prd_other"
        ))
        .await;
    assert_eq!(other.body["items"].as_array().unwrap().len(), 3);
}

/// Outside the write path too, a key answers what it answered first: the
/// success recorded with its change, or the refusal recorded on its own.
async fn lifecycle_and_key_answers_replay_what_was_answered(app: TestApp) {
    let acc = app.account("Acme").await;
    let id = app.entitlement(&acc, json!({ "total": 5 })).await;
    let activate = format!("/v1/entitlements/{id}/activate");
    let keyed = |path: &str, body: serde_json::Value, key: &'static str| {
        let path = path.to_string();
        let app = &app;
        async move {
            app.call(Method::POST, &path, Some(&app.admin), Some(body), Some(key))
                .await
        }
    };
    let first = keyed(&activate, json!({}), "act-1").await;
    assert_eq!(first.status, StatusCode::OK, "{:?}", first.body);
    let again = keyed(&activate, json!({}), "act-1").await;
    assert!(again.replayed && !first.replayed);
    assert_eq!((again.status, &again.body), (first.status, &first.body));
    // Without the key, activating again is refused: the key did not re-run it.
    assert_eq!(
        app.post(&activate, json!({})).await.status,
        StatusCode::CONFLICT
    );

    // A refusal is answered again as it was, even once it would succeed.
    let cancel = format!("/v1/entitlements/{id}/cancel");
    let renew = format!("/v1/entitlements/{id}/renew");
    let refused = keyed(&renew, json!({}), "renew-1").await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{:?}", refused.body);
    assert_eq!(app.post(&cancel, json!({})).await.status, StatusCode::OK);
    let replayed = keyed(&renew, json!({}), "renew-1").await;
    assert!(replayed.replayed);
    assert_eq!(
        (replayed.status, &replayed.body),
        (refused.status, &refused.body)
    );
    let renewed = keyed(&renew, json!({}), "renew-2").await;
    assert_eq!(renewed.status, StatusCode::CREATED, "{:?}", renewed.body);

    // A new API key is created once: the retry shows the same key and secret.
    let key = keyed("/v1/api-keys", json!({ "role": "agent" }), "key-1").await;
    assert_eq!(key.status, StatusCode::CREATED, "{:?}", key.body);
    let key_again = keyed("/v1/api-keys", json!({ "role": "agent" }), "key-1").await;
    assert!(key_again.replayed);
    assert_eq!(key_again.body, key.body);
    let keys = app.get("/v1/api-keys").await;
    assert_eq!(
        keys.body.as_array().map(Vec::len),
        Some(2),
        "{:?}",
        keys.body
    );
}
