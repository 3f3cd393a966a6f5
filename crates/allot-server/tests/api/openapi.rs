use reqwest::StatusCode;

use crate::common::{spawn_app, Backend};

/// The document is generated from the code; any change to the API shows
/// up here and must be accepted deliberately (`cargo insta review`).
#[tokio::test]
async fn openapi_document_matches_the_snapshot() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    let r = app
        .http
        .get(format!("{}/openapi.json", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let doc: serde_json::Value = r.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    insta::assert_json_snapshot!("openapi", doc);
}

#[tokio::test]
async fn health_readiness_and_metrics() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    let get = |p: &str| app.http.get(format!("{}{p}", app.url)).send();
    assert_eq!(get("/healthz").await.unwrap().status(), StatusCode::OK);
    assert_eq!(get("/readyz").await.unwrap().status(), StatusCode::OK);
    let acc = app.account("Acme").await;
    let id = app
        .active_entitlement(&acc, serde_json::json!({ "total": 1 }))
        .await;
    app.use_(&id, serde_json::json!(1)).await;
    app.use_(&id, serde_json::json!(1)).await;
    let metrics = get("/metrics").await.unwrap().text().await.unwrap();
    for name in [
        "allot_http_requests_total",
        "allot_http_request_duration_seconds",
        "allot_usage_writes_total",
        "allot_write_batch_size",
        "allot_refusals_total",
    ] {
        assert!(metrics.contains(name), "{name} missing from /metrics");
    }
    assert!(!metrics.contains(&app.admin), "no key in metrics");
}
