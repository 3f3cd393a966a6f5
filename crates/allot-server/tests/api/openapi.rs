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

async fn served_document(app: &crate::common::TestApp) -> serde_json::Value {
    app.http
        .get(format!("{}/openapi.json", app.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Every operation of the document: (method, path, operation).
fn operations(doc: &serde_json::Value) -> Vec<(String, String, serde_json::Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            out.push((method.clone(), path.clone(), op.clone()));
        }
    }
    out
}

/// Issue 8, point 9: unique operationIds, every error an operation can give
/// documented with the error body, and links that name real operations.
#[tokio::test]
async fn operation_ids_are_unique_and_errors_are_documented() {
    let app = spawn_app(Backend::Sqlite).await;
    let doc = served_document(&app).await;
    let ops = operations(&doc);
    assert_eq!(ops.len(), 106);
    let ids: std::collections::BTreeSet<String> = ops
        .iter()
        .map(|(_, _, op)| op["operationId"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), ops.len(), "operationIds repeat: {ids:?}");
    for (method, path, op) in &ops {
        let mut expected = vec!["401", "403", "408", "500"];
        if path.contains('{') {
            expected.push("404");
        }
        let mutating = method != "get";
        if mutating {
            expected.extend(["400", "409", "413", "422"]);
            let params = op["parameters"].as_array().unwrap();
            assert!(
                params.iter().any(|p| p["name"] == "Idempotency-Key"),
                "{method} {path} does not state Idempotency-Key"
            );
        }
        for status in expected {
            let response = &op["responses"][status];
            assert!(
                response.is_object(),
                "{method} {path} does not document {status}"
            );
            assert_eq!(
                response["content"]["application/json"]["schema"]["$ref"],
                "#/components/schemas/ErrorBody",
                "{method} {path} {status}"
            );
        }
        for response in op["responses"].as_object().unwrap().values() {
            let Some(links) = response["links"].as_object() else {
                continue;
            };
            for (name, link) in links {
                let target = link["operationId"].as_str().unwrap_or_default();
                assert!(
                    ids.contains(target),
                    "{method} {path}: link {name} names no operation"
                );
            }
        }
    }
}

/// The paging bounds the document states are the ones the code applies,
/// and an empty `limit` is refused like any other bad value.
#[tokio::test]
async fn paging_bounds_are_stated_and_enforced() {
    use allot_server::extract::{MAX_CURSOR, MAX_LIMIT};
    let app = spawn_app(Backend::Sqlite).await;
    let doc = served_document(&app).await;
    let mut paged = 0;
    for (method, path, op) in operations(&doc) {
        for param in op["parameters"].as_array().into_iter().flatten() {
            match param["name"].as_str() {
                Some("limit") => {
                    paged += 1;
                    assert_eq!(param["schema"]["minimum"], 1, "{method} {path}");
                    assert_eq!(param["schema"]["maximum"], MAX_LIMIT, "{method} {path}");
                }
                Some("cursor") => {
                    assert_eq!(param["schema"]["maxLength"], MAX_CURSOR, "{method} {path}")
                }
                _ => {}
            }
        }
    }
    assert_eq!(paged, 29, "every listing takes limit");
    for query in ["limit=", "limit=0", "limit=1001", "limit=x"] {
        let answer = app.get(&format!("/v1/accounts?{query}")).await;
        assert_eq!(answer.status.as_u16(), 422, "?{query}: {:?}", answer.body);
        assert_eq!(
            answer.body["error"]["details"]["fields"][0]["field"],
            "limit"
        );
    }
    for query in ["status=", "unit="] {
        let answer = app.get(&format!("/v1/entitlements?{query}")).await;
        assert_eq!(answer.status.as_u16(), 422, "?{query}: {:?}", answer.body);
    }
    assert_eq!(
        app.get("/v1/accounts?limit=1000").await.status.as_u16(),
        200
    );
    assert_eq!(app.get("/v1/accounts?cursor=").await.status.as_u16(), 200);
}
