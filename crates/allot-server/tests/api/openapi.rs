use reqwest::StatusCode;

use crate::common::{spawn_app, Backend};

/// The document is generated from the code; any change to the API shows
/// up here and must be accepted deliberately (`cargo insta review`).
#[tokio::test]
async fn openapi_document_matches_the_snapshot() {
    let app = spawn_app(Backend::Sqlite).await;
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
