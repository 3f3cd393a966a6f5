use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::TestApp;

crate::on_both_backends!(
    roles_get_what_they_may,
    customers_see_only_their_account,
    keys_are_revocable,
    a_key_revoked_through_another_instance_uses_nothing_at_once,
    a_key_revoked_through_another_instance_reads_nothing_at_once
);

async fn roles_get_what_they_may(app: TestApp) {
    let acc = app.account("Acme").await;
    let id = app.active_entitlement(&acc, json!({ "total": 100 })).await;
    let usage = format!("/v1/entitlements/{id}/usage");
    let agent = app.key("agent", None).await;
    let integration = app.key("integration", None).await;
    let manager = app.key("manager", None).await;
    assert_eq!(
        app.post_as(&agent, &usage, json!({ "quantity": 1 }))
            .await
            .status,
        StatusCode::CREATED
    );
    assert_eq!(
        app.post_as(&integration, &usage, json!({ "quantity": 1 }))
            .await
            .status,
        StatusCode::CREATED
    );
    assert_eq!(
        app.post_as(&agent, &format!("/v1/entitlements/{id}/cancel"), json!({}))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.post_as(&agent, "/v1/accounts", json!({ "name": "x" }))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let agent_patch = app
        .call(
            Method::PATCH,
            &format!("/v1/entitlements/{id}"),
            Some(&agent),
            Some(json!({ "total": 1 })),
            None,
        )
        .await;
    assert_eq!(agent_patch.status, StatusCode::FORBIDDEN);
    assert_eq!(
        app.call(
            Method::GET,
            &format!("/v1/entitlements/{id}"),
            Some(&integration),
            None,
            None
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.call(
            Method::GET,
            &format!("/v1/entitlements/{id}"),
            Some(&agent),
            None,
            None
        )
        .await
        .status,
        StatusCode::OK
    );
    assert_eq!(
        app.post_as(&manager, "/v1/api-keys", json!({ "role": "admin" }))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.post_as(
            &manager,
            &format!("/v1/entitlements/{id}/cancel"),
            json!({})
        )
        .await
        .status,
        StatusCode::OK
    );
    assert_eq!(
        app.call(Method::GET, "/v1/accounts", None, None, None)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.call(Method::GET, "/v1/accounts", Some("allot_wrong"), None, None)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
}

async fn customers_see_only_their_account(app: TestApp) {
    let mine = app.account("Mine").await;
    let theirs = app.account("Theirs").await;
    let my_ent = app.active_entitlement(&mine, json!({})).await;
    let their_ent = app.active_entitlement(&theirs, json!({})).await;
    let customer = app.key("customer", Some(&mine)).await;
    let get = |path: String| {
        let (app, key) = (&app, customer.clone());
        async move { app.call(Method::GET, &path, Some(&key), None, None).await }
    };
    assert_eq!(
        get(format!("/v1/entitlements/{my_ent}/balance"))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        get(format!("/v1/accounts/{mine}/eligibility")).await.status,
        StatusCode::OK
    );
    for path in [
        format!("/v1/entitlements/{their_ent}"),
        format!("/v1/entitlements/{their_ent}/balance"),
        format!("/v1/entitlements/{their_ent}/usage"),
        format!("/v1/accounts/{theirs}"),
        format!("/v1/accounts/{theirs}/eligibility"),
    ] {
        let a = get(path.clone()).await;
        assert_eq!(a.status, StatusCode::NOT_FOUND, "{path}");
    }
    let listed = get("/v1/entitlements".into()).await.body;
    let ids: Vec<&str> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![my_ent.as_str()]);
    let accounts = get("/v1/accounts".into()).await.body;
    assert_eq!(accounts["items"].as_array().unwrap().len(), 1);
    assert_eq!(
        app.post_as(
            &customer,
            &format!("/v1/entitlements/{my_ent}/usage"),
            json!({ "quantity": 1 })
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );
}

async fn keys_are_revocable(app: TestApp) {
    let created = app
        .post("/v1/api-keys", json!({ "role": "agent", "name": "desk" }))
        .await;
    let (id, secret) = (
        created.id(),
        created.body["secret"].as_str().unwrap().to_string(),
    );
    assert_eq!(
        app.call(Method::GET, "/v1/accounts", Some(&secret), None, None)
            .await
            .status,
        StatusCode::OK
    );
    let listed = app.get("/v1/api-keys").await.body;
    assert!(
        listed.to_string().find(&secret).is_none(),
        "secrets are never listed"
    );
    assert_eq!(
        app.post(&format!("/v1/api-keys/{id}/revoke"), json!({}))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.call(Method::GET, "/v1/accounts", Some(&secret), None, None)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    let customer_without_account = app
        .post("/v1/api-keys", json!({ "role": "customer" }))
        .await;
    assert_eq!(
        customer_without_account.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
}

/// Instance `here` trusts the keys it resolved for an hour; the key is
/// revoked through `app`, another server on the same database. The write
/// path's in-transaction check refuses its next use at once, alone and in a
/// batch, and applies nothing.
async fn a_key_revoked_through_another_instance_uses_nothing_at_once(app: TestApp) {
    let here = app.second_instance(|c| c.key_cache_ms = 3_600_000).await;
    let account = app.account("Acme").await;
    let ent = app.active_entitlement(&account, json!({})).await;
    let created = app.post("/v1/api-keys", json!({ "role": "agent" })).await;
    let (id, secret) = (
        created.id(),
        created.body["secret"].as_str().unwrap().to_string(),
    );
    let usage = format!("/v1/entitlements/{ent}/usage");
    let used = here
        .post_as(&secret, &usage, json!({ "quantity": 1 }))
        .await;
    assert_eq!(used.status, StatusCode::CREATED, "{:?}", used.body);
    let revoked = app
        .post(&format!("/v1/api-keys/{id}/revoke"), json!({}))
        .await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT);

    let refused = here
        .call(
            Method::POST,
            &usage,
            Some(&secret),
            Some(json!({ "quantity": 1 })),
            Some("after-revocation"),
        )
        .await;
    assert_eq!(
        refused.status,
        StatusCode::UNAUTHORIZED,
        "{:?}",
        refused.body
    );
    let batch = here
        .post_as(
            &secret,
            "/v1/usage/batch",
            json!({ "items": [{ "entitlement_id": ent, "quantity": 1 }] }),
        )
        .await;
    assert_eq!(batch.status, StatusCode::UNAUTHORIZED, "{:?}", batch.body);
    assert_eq!(
        here.balance(&ent).await["used"],
        json!(1),
        "only the use made before the revocation"
    );
}

/// A read confirms a cached key with the database: a key revoked through
/// another instance reads nothing there from the next request on, however
/// long that instance's cache window.
async fn a_key_revoked_through_another_instance_reads_nothing_at_once(app: TestApp) {
    let here = app.second_instance(|c| c.key_cache_ms = 3_600_000).await;
    let created = app.post("/v1/api-keys", json!({ "role": "agent" })).await;
    let (id, secret) = (
        created.id(),
        created.body["secret"].as_str().unwrap().to_string(),
    );
    let read = || here.call(Method::GET, "/v1/accounts", Some(&secret), None, None);
    assert_eq!(read().await.status, StatusCode::OK);
    assert_eq!(
        read().await.status,
        StatusCode::OK,
        "served from the cache, confirmed"
    );
    let revoked = app
        .post(&format!("/v1/api-keys/{id}/revoke"), json!({}))
        .await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT);
    assert_eq!(read().await.status, StatusCode::UNAUTHORIZED);
}
