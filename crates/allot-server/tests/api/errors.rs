use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::TestApp;

crate::on_both_backends!(
    malformed_requests_get_a_4xx_naming_the_field,
    nothing_is_written_by_a_bad_request
);

fn field(body: &Value) -> &str {
    body["error"]["details"]["fields"][0]["field"]
        .as_str()
        .unwrap_or("")
}

async fn raw(app: &TestApp, path: &str, body: &'static str) -> (StatusCode, Value) {
    let r = app
        .http
        .post(format!("{}{path}", app.url))
        .bearer_auth(&app.admin)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn malformed_requests_get_a_4xx_naming_the_field(app: TestApp) {
    let acc = app.account("Acme").await;
    // Every body is an object: serde alone would read an array of nulls as
    // a body whose fields are all optional (found by the fuzzer).
    for (path, body) in [
        ("/v1/reconciliations", "[]"),
        ("/v1/accounts", "[\"Acme\"]"),
        ("/v1/webhooks", "\"x\""),
    ] {
        let (status, answer) = raw(&app, path, body).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{path} {body}: {answer}"
        );
        assert_eq!(field(&answer), "body", "{path} {body}: {answer}");
    }
    let patch = app
        .call(
            reqwest::Method::PATCH,
            &format!("/v1/accounts/{acc}"),
            Some(&app.admin),
            Some(json!([null, null])),
            None,
        )
        .await;
    assert_eq!(
        patch.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{:?}",
        patch.body
    );
    assert_eq!(field(&patch.body), "body");
    let base = json!({ "account_id": acc, "name": "E", "unit": "cases", "total": 5, "restrict": true,
        "decrement_on": "creation", "start_date": "2026-01-01", "end_date": "2026-12-31" });
    let with = |k: &str, v: Value| {
        let mut b = base.clone();
        b[k] = v;
        b
    };
    let cases = [
        (with("unit", json!("minutes")), "unit"),
        (with("total", json!(-1)), "total"),
        (with("total", json!("ten")), "total"),
        (with("total", json!(2.5)), "total"),
        (with("start_date", json!("2026-13-01")), "start_date"),
        (with("end_date", json!("2025-12-31")), "end_date"),
        (with("restrict", json!("yes")), "restrict"),
        (with("period", json!("fortnight")), "period"),
        (with("rollover", json!(2)), "rollover"),
        (with("rounding", json!(0.25)), "rounding"),
        (with("surprise", json!(1)), "surprise"),
        (with("account_id", json!("acc_nope")), "account_id"),
        (with("product_ids", json!(["prd_nope"])), "product_ids[0]"),
        (
            with(
                "channels",
                json!([{ "channel": "a", "total": 1 }, { "channel": "a", "total": 1 }]),
            ),
            "channels[1].channel",
        ),
        (with("total", json!(1e20)), "total"),
        (with("name", json!("")), "name"),
    ];
    for (body, expected) in cases {
        let a = app.post("/v1/entitlements", body.clone()).await;
        assert_eq!(
            a.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{expected}: {:?}",
            a.body
        );
        assert_eq!(field(&a.body), expected, "{:?}", a.body);
        assert!(a.body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
    }
    let mut missing = base.clone();
    missing.as_object_mut().unwrap().remove("start_date");
    assert_eq!(
        field(&app.post("/v1/entitlements", missing).await.body),
        "start_date"
    );
    for (path, body) in [
        ("/v1/entitlements", "{"),
        ("/v1/accounts", "{\"name\": "),
        ("/v1/accounts", ""),
    ] {
        let (status, body) = raw(&app, path, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body:?}");
        assert_eq!(body["error"]["code"], "malformed_json");
    }
    let (status, _) = raw(&app, "/v1/accounts", "[]").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let big = "x".repeat(400 * 1024);
    let r = app
        .http
        .post(format!("{}/v1/accounts", app.url))
        .bearer_auth(&app.admin)
        .json(&json!({ "name": big }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    for path in [
        "/v1/entitlements/ent_nope",
        "/v1/entitlements/../../etc",
        "/v1/accounts/%00",
        "/v1/nothing",
    ] {
        let a = app.get(path).await;
        assert_eq!(a.status, StatusCode::NOT_FOUND, "{path}");
    }
    let a = app.get("/v1/accounts/%FF%FE").await;
    assert_eq!(
        (a.status, a.code()),
        (StatusCode::NOT_FOUND, "not_found"),
        "undecodable paths get the JSON error"
    );
    let put = app
        .call(
            reqwest::Method::PUT,
            "/v1/accounts",
            Some(&app.admin),
            Some(json!({})),
            None,
        )
        .await;
    assert_eq!(
        (put.status, put.code()),
        (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed")
    );
    let ancient = app
        .post(
            "/v1/entitlements",
            json!({ "account_id": acc, "name": "E", "unit": "cases", "total": 1,
        "start_date": "1200-01-01", "end_date": "1200-12-31" }),
        )
        .await;
    assert_eq!(field(&ancient.body), "start_date", "{:?}", ancient.body);
    let a = app.get("/v1/entitlements?status=sleeping").await;
    assert_eq!(field(&a.body), "status");
    let id = app.active_entitlement(&acc, json!({})).await;
    let a = app
        .post(
            &format!("/v1/entitlements/{id}/usage"),
            json!({ "quantity": 1, "colour": "red" }),
        )
        .await;
    assert_eq!(
        (a.status, field(&a.body)),
        (StatusCode::UNPROCESSABLE_ENTITY, "colour")
    );
    let a = app
        .post(&format!("/v1/entitlements/{id}/usage"), json!({}))
        .await;
    assert_eq!(field(&a.body), "quantity");
}

async fn nothing_is_written_by_a_bad_request(app: TestApp) {
    let acc = app.account("Acme").await;
    let _ = app
        .post(
            "/v1/entitlements",
            json!({ "account_id": acc, "name": "E", "unit": "cases", "total": 5,
        "start_date": "2026-01-01", "end_date": "2025-01-01" }),
        )
        .await;
    let list = app.get("/v1/entitlements").await;
    assert_eq!(list.body["items"].as_array().unwrap().len(), 0);
}
