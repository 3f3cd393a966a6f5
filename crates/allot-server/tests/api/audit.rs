use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::TestApp;

crate::on_both_backends!(
    every_change_is_audited_with_actor_and_request,
    the_audit_trail_is_for_admins_and_managers
);

async fn audit_for(app: &TestApp, target: &str) -> Vec<serde_json::Value> {
    let a = app.get(&format!("/v1/audit?target_id={target}")).await;
    assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
    a.body["items"].as_array().unwrap().clone()
}

async fn every_change_is_audited_with_actor_and_request(app: TestApp) {
    let manager = app.key("manager", None).await;
    let r = app
        .http
        .post(format!("{}/v1/accounts", app.url))
        .bearer_auth(&manager)
        .header("x-request-id", "req-test-1")
        .json(&json!({ "name": "Acme" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "req-test-1");
    let acc: serde_json::Value = r.json().await.unwrap();
    let acc = acc["id"].as_str().unwrap().to_string();
    let rows = audit_for(&app, &acc).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["action"], "account.create");
    assert_eq!(rows[0]["role"], "manager");
    assert_eq!(rows[0]["request_id"], "req-test-1");
    assert_eq!(rows[0]["after"]["name"], "Acme");

    let ent = app.entitlement(&acc, json!({ "total": 2 })).await;
    let patch = app
        .call(
            Method::PATCH,
            &format!("/v1/entitlements/{ent}"),
            Some(&app.admin),
            Some(json!({ "total": 3 })),
            None,
        )
        .await;
    assert_eq!(patch.status, StatusCode::OK);
    app.post(&format!("/v1/entitlements/{ent}/activate"), json!({}))
        .await;
    let refused = app
        .call(
            Method::PATCH,
            &format!("/v1/entitlements/{ent}"),
            Some(&app.admin),
            Some(json!({ "total": 9 })),
            None,
        )
        .await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    app.use_(&ent, json!(1)).await;
    app.use_(&ent, json!(5)).await; // refused: nothing changes, nothing audited
    let case = app
        .post(
            "/v1/cases",
            json!({ "account_id": acc, "title": "t", "entitlement_id": ent }),
        )
        .await
        .id();
    let actions: Vec<String> = audit_for(&app, &ent)
        .await
        .iter()
        .map(|r| r["action"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        actions,
        vec![
            "entitlement.create",
            "entitlement.update",
            "entitlement.activate",
            "usage.record"
        ]
    );
    let rows = audit_for(&app, &ent).await;
    assert_eq!(rows[1]["before"]["entitlement"]["terms"]["total"], json!(2));
    assert_eq!(rows[1]["after"]["entitlement"]["terms"]["total"], json!(3));
    assert_eq!(
        (
            rows[3]["before"]["used"].clone(),
            rows[3]["after"]["used"].clone()
        ),
        (json!(0), json!(1))
    );
    let case_rows = audit_for(&app, &case).await;
    assert_eq!(case_rows.len(), 1);
    assert_eq!(case_rows[0]["action"], "case.open");
    let by_manager = app
        .get(&format!(
            "/v1/audit?actor={}",
            rows[0]["actor"].as_str().unwrap()
        ))
        .await;
    assert!(by_manager.body["items"].as_array().unwrap().len() >= 4);
    let bad = app.get("/v1/audit?since=yesterday").await;
    assert_eq!(bad.body["error"]["details"]["fields"][0]["field"], "since");
}

async fn the_audit_trail_is_for_admins_and_managers(app: TestApp) {
    let acc = app.account("Acme").await;
    for (role, status) in [
        ("manager", StatusCode::OK),
        ("agent", StatusCode::FORBIDDEN),
        ("integration", StatusCode::FORBIDDEN),
    ] {
        let key = app.key(role, None).await;
        assert_eq!(
            app.call(Method::GET, "/v1/audit", Some(&key), None, None)
                .await
                .status,
            status,
            "{role}"
        );
    }
    let customer = app.key("customer", Some(&acc)).await;
    assert_eq!(
        app.call(Method::GET, "/v1/audit", Some(&customer), None, None)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.call(Method::GET, "/v1/audit", None, None, None)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    let keys = app.get("/v1/audit?action=api_key.create").await.body;
    assert!(
        !keys.to_string().contains("secret_hash"),
        "no key material in the audit trail"
    );
}
