use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::TestApp;

crate::on_both_backends!(
    usage_is_recorded_and_capped,
    quantities_are_exact_decimals,
    unrestricted_goes_into_overage_with_a_warning,
    channels_cap_their_share,
    adjustments_are_for_managers,
    idempotency_keys_apply_once,
    reservations_hold_commit_release_and_expire,
    an_adjustment_never_takes_a_channel_below_zero,
    an_entitlements_reservations_are_listed_page_by_page,
    a_channel_corrected_past_a_trillion_still_reads,
);

async fn usage_is_recorded_and_capped(app: TestApp) {
    let acc = app.account("Acme").await;
    let id = app
        .active_entitlement(&acc, json!({ "unit": "visits", "total": 2 }))
        .await;
    let first = app
        .post(
            &format!("/v1/entitlements/{id}/usage"),
            json!({ "quantity": 1, "reference": "WO-1", "kind": "visit" }),
        )
        .await;
    assert_eq!(first.status, StatusCode::CREATED, "{:?}", first.body);
    assert_eq!(first.body["entry"]["reason"], "visit");
    assert_eq!(first.body["entry"]["reference"], "WO-1");
    assert_eq!(first.body["balance"]["remaining"], json!(1));
    assert_eq!(app.use_(&id, json!(1)).await.status, StatusCode::CREATED);
    let refused = app.use_(&id, json!(1)).await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    assert_eq!(refused.code(), "entitlement_exhausted");
    assert_eq!(
        refused.body["error"]["details"]["entitlement_id"],
        json!(id)
    );
    assert_eq!(refused.body["error"]["details"]["remaining"], json!(0));
    let balance = app.balance(&id).await;
    assert_eq!(
        (balance["used"].clone(), balance["remaining"].clone()),
        (json!(2), json!(0))
    );
    let ledger = app.get(&format!("/v1/entitlements/{id}/usage")).await;
    assert_eq!(
        ledger.body["items"].as_array().unwrap().len(),
        2,
        "a refusal records nothing"
    );
    app.assert_ledger_matches(&id).await;
    assert_eq!(
        app.use_("ent_missing", json!(1)).await.status,
        StatusCode::NOT_FOUND
    );
}

async fn quantities_are_exact_decimals(app: TestApp) {
    let acc = app.account("Acme").await;
    let hours = app
        .active_entitlement(&acc, json!({ "unit": "hours", "total": "1" }))
        .await;
    for q in [
        json!(0.1),
        json!("0.2"),
        json!(0.3),
        json!("0.125"),
        json!(0.275),
    ] {
        assert_eq!(app.use_(&hours, q).await.status, StatusCode::CREATED);
    }
    let b = app.balance(&hours).await;
    assert_eq!(b["used"], json!(1));
    assert_eq!(b["remaining"], json!(0));
    let precise = app.use_(&hours, json!(0.0001)).await;
    assert_eq!(precise.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        precise.body["error"]["details"]["fields"][0]["field"],
        "quantity"
    );
    let cases = app
        .active_entitlement(&acc, json!({ "unit": "cases" }))
        .await;
    let half = app.use_(&cases, json!(1.5)).await;
    assert_eq!(half.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        half.body["error"]["details"]["fields"][0]["field"],
        "quantity"
    );
    for bad in [
        json!(-1),
        json!(0),
        json!("abc"),
        json!(true),
        json!(1e300),
        json!("1e400"),
    ] {
        let a = app.use_(&cases, bad.clone()).await;
        assert!(a.status.is_client_error(), "{bad}: {:?}", a.body);
    }
    assert_eq!(app.balance(&cases).await["used"], json!(0));
}

async fn unrestricted_goes_into_overage_with_a_warning(app: TestApp) {
    let acc = app.account("Acme").await;
    let id = app
        .active_entitlement(
            &acc,
            json!({ "unit": "hours", "total": 2, "restrict": false, "rounding": 0.25 }),
        )
        .await;
    let a = app.use_(&id, json!(1.9)).await;
    assert_eq!(
        a.body["entry"]["quantity"],
        json!(2),
        "1.9 h rounds up to 2 h"
    );
    assert!(a.body["warnings"].as_array().unwrap().is_empty());
    let over = app.use_(&id, json!(0.5)).await;
    assert_eq!(over.status, StatusCode::CREATED);
    assert_eq!(over.body["warnings"].as_array().unwrap().len(), 1);
    assert_eq!(over.body["balance"]["remaining"], json!(-0.5));
    assert_eq!(over.body["balance"]["overage"], json!(0.5));
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
    assert!(
        kinds.contains(&"entitlement.exhausted") && kinds.contains(&"entitlement.overage"),
        "{kinds:?}"
    );
}

async fn channels_cap_their_share(app: TestApp) {
    let acc = app.account("Acme").await;
    let id = app
        .active_entitlement(&acc, json!({ "unit": "hours", "total": 10, "channels": [{ "channel": "phone", "total": 2 }, { "channel": "email", "total": 8 }] }))
        .await;
    let path = format!("/v1/entitlements/{id}/usage");
    assert_eq!(
        app.post(&path, json!({ "quantity": 2, "channel": "phone" }))
            .await
            .status,
        StatusCode::CREATED
    );
    let refused = app
        .post(&path, json!({ "quantity": 1, "channel": "phone" }))
        .await;
    assert_eq!(refused.code(), "channel_exhausted");
    assert_eq!(
        app.post(&path, json!({ "quantity": 1, "channel": "fax" }))
            .await
            .code(),
        "unknown_channel"
    );
    let email = app
        .post(&path, json!({ "quantity": 3, "channel": "email" }))
        .await;
    let channels = &email.body["balance"]["channels"];
    assert_eq!(
        channels[0],
        json!({ "channel": "phone", "total": 2, "used": 2, "held": 0, "remaining": 0 })
    );
    assert_eq!(channels[1]["remaining"], json!(5));
    assert_eq!(email.body["balance"]["used"], json!(5));
}

async fn adjustments_are_for_managers(app: TestApp) {
    let acc = app.account("Acme").await;
    let id = app.active_entitlement(&acc, json!({ "total": 5 })).await;
    app.use_(&id, json!(3)).await;
    let path = format!("/v1/entitlements/{id}/adjustments");
    let agent = app.key("agent", None).await;
    assert_eq!(
        app.post_as(
            &agent,
            &path,
            json!({ "quantity": -1, "reason": "goodwill" })
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );
    let manager = app.key("manager", None).await;
    let down = app
        .post_as(
            &manager,
            &path,
            json!({ "quantity": -2, "reason": "goodwill" }),
        )
        .await;
    assert_eq!(down.status, StatusCode::CREATED, "{:?}", down.body);
    assert_eq!(down.body["entry"]["reason"], "adjustment");
    assert_eq!(down.body["entry"]["reference"], "goodwill");
    assert_eq!(down.body["balance"]["used"], json!(1));
    let missing_reason = app.post_as(&manager, &path, json!({ "quantity": 1 })).await;
    assert_eq!(
        missing_reason.body["error"]["details"]["fields"][0]["field"],
        "reason"
    );
    let below_zero = app
        .post_as(&manager, &path, json!({ "quantity": -5, "reason": "x" }))
        .await;
    assert_eq!(below_zero.status, StatusCode::UNPROCESSABLE_ENTITY);
    app.assert_ledger_matches(&id).await;
}

async fn idempotency_keys_apply_once(app: TestApp) {
    let acc = app.account("Acme").await;
    let id = app.active_entitlement(&acc, json!({ "total": 5 })).await;
    let path = format!("/v1/entitlements/{id}/usage");
    let first = app
        .call(
            Method::POST,
            &path,
            Some(&app.admin),
            Some(json!({ "quantity": 1 })),
            Some("k-1"),
        )
        .await;
    let again = app
        .call(
            Method::POST,
            &path,
            Some(&app.admin),
            Some(json!({ "quantity": 1 })),
            Some("k-1"),
        )
        .await;
    assert_eq!(first.status, StatusCode::CREATED);
    assert_eq!((again.status, &again.body), (first.status, &first.body));
    assert!(again.replayed && !first.replayed);
    let other = app
        .call(
            Method::POST,
            &path,
            Some(&app.admin),
            Some(json!({ "quantity": 2 })),
            Some("k-1"),
        )
        .await;
    assert_eq!(other.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(other.code(), "idempotency_key_reused");
    assert_eq!(app.balance(&id).await["used"], json!(1));
    // Keys are scoped per API key: another key may use the same string.
    let agent = app.key("agent", None).await;
    let theirs = app
        .call(
            Method::POST,
            &path,
            Some(&agent),
            Some(json!({ "quantity": 1 })),
            Some("k-1"),
        )
        .await;
    assert!(!theirs.replayed);
    assert_eq!(app.balance(&id).await["used"], json!(2));
    // Plain creates replay too.
    let a = app
        .call(
            Method::POST,
            "/v1/accounts",
            Some(&app.admin),
            Some(json!({ "name": "Once" })),
            Some("acc-1"),
        )
        .await;
    let b = app
        .call(
            Method::POST,
            "/v1/accounts",
            Some(&app.admin),
            Some(json!({ "name": "Once" })),
            Some("acc-1"),
        )
        .await;
    assert_eq!(a.body["id"], b.body["id"]);
    assert!(b.replayed);
    let c = app
        .call(
            Method::POST,
            "/v1/accounts",
            Some(&app.admin),
            Some(json!({ "name": "Twice" })),
            Some("acc-1"),
        )
        .await;
    assert_eq!(c.status, StatusCode::UNPROCESSABLE_ENTITY);
    app.assert_ledger_matches(&id).await;
}

async fn reservations_hold_commit_release_and_expire(app: TestApp) {
    let acc = app.account("Acme").await;
    let id = app
        .active_entitlement(&acc, json!({ "unit": "visits", "total": 3 }))
        .await;
    let path = format!("/v1/entitlements/{id}/reservations");
    let hold = app
        .post(
            &path,
            json!({ "quantity": 2, "timeout_seconds": 600, "reference": "WO-7" }),
        )
        .await;
    assert_eq!(hold.status, StatusCode::CREATED, "{:?}", hold.body);
    let rid = hold.body["reservation"]["id"].as_str().unwrap().to_string();
    assert_eq!(hold.body["balance"]["held"], json!(2));
    assert_eq!(hold.body["balance"]["remaining"], json!(1));
    assert_eq!(
        app.post(&path, json!({ "quantity": 2, "timeout_seconds": 60 }))
            .await
            .code(),
        "entitlement_exhausted"
    );
    let commit = app
        .post(
            &format!("/v1/reservations/{rid}/commit"),
            json!({ "quantity": 1 }),
        )
        .await;
    assert_eq!(commit.status, StatusCode::OK, "{:?}", commit.body);
    assert_eq!(commit.body["reservation"]["status"], "committed");
    assert_eq!(commit.body["entry"]["reason"], "reservation_committed");
    assert_eq!(
        (
            commit.body["balance"]["used"].clone(),
            commit.body["balance"]["held"].clone()
        ),
        (json!(1), json!(0))
    );
    assert_eq!(
        app.post(&format!("/v1/reservations/{rid}/release"), json!({}))
            .await
            .code(),
        "reservation_settled"
    );
    let second = app
        .post(&path, json!({ "quantity": 1, "timeout_seconds": 60 }))
        .await
        .body["reservation"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let released = app
        .post(&format!("/v1/reservations/{second}/release"), json!({}))
        .await;
    assert_eq!(released.body["reservation"]["status"], "released");
    let third = app
        .post(&path, json!({ "quantity": 2, "timeout_seconds": 60 }))
        .await
        .body["reservation"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(app.balance(&id).await["remaining"], json!(0));
    app.clock.advance(chrono::Duration::seconds(61));
    allot_server::jobs::run_once(&app.running.state).await;
    assert_eq!(
        app.get(&format!("/v1/reservations/{third}")).await.body["status"],
        "expired"
    );
    assert_eq!(app.balance(&id).await["remaining"], json!(2));
    assert_eq!(
        app.post("/v1/reservations/res_nope/commit", json!({}))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    app.assert_ledger_matches(&id).await;
}

/// Found by the API fuzzer: a negative adjustment on a channel with nothing
/// used answered 500 (an invariant check caught the negative counter); it
/// is refused as bad input naming the quantity, and nothing is written.
async fn an_adjustment_never_takes_a_channel_below_zero(app: TestApp) {
    let acc = app.account("Acme").await;
    let id = app
        .active_entitlement(
            &acc,
            json!({ "unit": "hours", "total": 10, "channels": [{ "channel": "phone", "total": 5 }] }),
        )
        .await;
    let path = format!("/v1/entitlements/{id}/adjustments");
    let refused = app
        .post(
            &path,
            json!({ "quantity": -1.465, "reason": "fix", "channel": "phone" }),
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
        "quantity"
    );
    assert_eq!(app.balance(&id).await["used"], json!(0));
    app.assert_ledger_matches(&id).await;
}

/// The entitlement page shows its holds: held and settled ones, in id
/// order, another entitlement's never among them.
async fn an_entitlements_reservations_are_listed_page_by_page(app: TestApp) {
    let acc = app.account("Acme").await;
    let id = app
        .active_entitlement(&acc, json!({ "unit": "visits", "total": 5 }))
        .await;
    let other = app
        .active_entitlement(&acc, json!({ "unit": "visits", "total": 5 }))
        .await;
    let hold = |ent: String, reference: &'static str| {
        let app = &app;
        async move {
            let held = app
                .post(
                    &format!("/v1/entitlements/{ent}/reservations"),
                    json!({ "quantity": 1, "timeout_seconds": 600, "reference": reference }),
                )
                .await;
            assert_eq!(held.status, StatusCode::CREATED, "{:?}", held.body);
            held.body["reservation"]["id"].as_str().unwrap().to_string()
        }
    };
    let first = hold(id.clone(), "WO-1").await;
    let second = hold(id.clone(), "WO-2").await;
    hold(other.clone(), "WO-3").await;
    let committed = app
        .post(&format!("/v1/reservations/{first}/commit"), json!({}))
        .await;
    assert_eq!(committed.status, StatusCode::OK, "{:?}", committed.body);

    let mut seen = Vec::new();
    let mut path = format!("/v1/entitlements/{id}/reservations?limit=1");
    loop {
        let page = app.get(&path).await;
        assert_eq!(page.status, StatusCode::OK, "{:?}", page.body);
        let items = page.body["items"].as_array().unwrap();
        assert!(items.len() <= 1);
        for r in items {
            assert_eq!(r["entitlement_id"], json!(id));
            seen.push((
                r["id"].as_str().unwrap().to_string(),
                r["status"].as_str().unwrap().to_string(),
                r["reference"].as_str().unwrap().to_string(),
            ));
        }
        match page.body["next_cursor"].as_str() {
            Some(c) => path = format!("/v1/entitlements/{id}/reservations?limit=1&cursor={c}"),
            None => break,
        }
    }
    let mut expected = vec![
        (first, "committed".to_string(), "WO-1".to_string()),
        (second, "held".to_string(), "WO-2".to_string()),
    ];
    expected.sort();
    assert_eq!(seen, expected);
    assert_eq!(
        app.get("/v1/entitlements/ent_nope/reservations")
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

/// Fuzzing found it: a manager's correction of a trillion on a channel that
/// had use took the stored channel counter past the largest quantity a
/// request may carry, and every read of the entitlement answered 500 from
/// then on. A counter reads back up to the counters' own bound.
async fn a_channel_corrected_past_a_trillion_still_reads(app: TestApp) {
    let acc = app.account("Acme").await;
    let id = app
        .active_entitlement(
            &acc,
            json!({ "unit": "hours", "total": 4, "channels": [{ "channel": "phone", "total": 4 }] }),
        )
        .await;
    let path = format!("/v1/entitlements/{id}/adjustments");
    for quantity in [json!(1.1), json!(1_000_000_000_000_i64)] {
        let adjusted = app
            .post(
                &path,
                json!({ "quantity": quantity, "reason": "fix", "channel": "phone" }),
            )
            .await;
        assert_eq!(adjusted.status, StatusCode::CREATED, "{:?}", adjusted.body);
    }
    let balance = app.get(&format!("/v1/entitlements/{id}/balance")).await;
    assert_eq!(balance.status, StatusCode::OK, "{:?}", balance.body);
    assert_eq!(balance.body["used"], json!(1_000_000_000_001.1));
    let phone = &balance.body["channels"][0];
    assert_eq!(phone["channel"], "phone");
    assert_eq!(phone["used"], json!(1_000_000_000_001.1));
    assert_eq!(
        app.get(&format!("/v1/entitlements/{id}")).await.status,
        StatusCode::OK
    );
    app.assert_ledger_matches(&id).await;
}
