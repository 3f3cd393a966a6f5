use reqwest::StatusCode;
use serde_json::json;

use crate::common::TestApp;

crate::on_both_backends!(
    accounts_contacts_products_round_trip,
    parent_must_exist,
    lists_paginate_with_a_cursor
);

async fn accounts_contacts_products_round_trip(app: TestApp) {
    let parent = app.account("Acme").await;
    let child = app
        .post(
            "/v1/accounts",
            json!({ "name": "Acme Berlin", "parent_id": parent }),
        )
        .await;
    assert_eq!(child.status, StatusCode::CREATED);
    assert_eq!(child.body["parent_id"], json!(parent));
    assert!(child.id().starts_with("acc_"));
    let got = app.get(&format!("/v1/accounts/{}", child.id())).await;
    assert_eq!(got.body["name"], "Acme Berlin");

    let contact = app
        .post(
            "/v1/contacts",
            json!({ "account_id": parent, "name": "Jane", "email": "jane@acme.example" }),
        )
        .await;
    assert_eq!(contact.status, StatusCode::CREATED, "{:?}", contact.body);
    assert!(contact.id().starts_with("con_"));
    let product = app
        .post(
            "/v1/products",
            json!({ "name": "SQL Server", "sku": "SQL-1" }),
        )
        .await;
    assert_eq!(product.status, StatusCode::CREATED);
    assert_eq!(
        app.get(&format!("/v1/products/{}", product.id()))
            .await
            .body["sku"],
        "SQL-1"
    );
    let contacts = app.get(&format!("/v1/contacts?account_id={parent}")).await;
    assert_eq!(contacts.body["items"].as_array().unwrap().len(), 1);
}

async fn parent_must_exist(app: TestApp) {
    let a = app
        .post(
            "/v1/accounts",
            json!({ "name": "Orphan", "parent_id": "acc_doesnotexist" }),
        )
        .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        a.body["error"]["details"]["fields"][0]["field"],
        "parent_id"
    );
    let c = app
        .post("/v1/contacts", json!({ "account_id": "nope", "name": "X" }))
        .await;
    assert_eq!(c.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        app.get("/v1/accounts").await.body["items"]
            .as_array()
            .unwrap()
            .len(),
        0,
        "nothing written"
    );
}

async fn lists_paginate_with_a_cursor(app: TestApp) {
    for i in 0..5 {
        app.account(&format!("A{i}")).await;
    }
    let first = app.get("/v1/accounts?limit=2").await;
    assert_eq!(first.body["items"].as_array().unwrap().len(), 2);
    let mut seen: Vec<String> = first.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_string())
        .collect();
    let mut cursor = first.body["next_cursor"].as_str().map(str::to_string);
    while let Some(c) = cursor {
        let page = app.get(&format!("/v1/accounts?limit=2&cursor={c}")).await;
        seen.extend(
            page.body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["id"].as_str().unwrap().to_string()),
        );
        cursor = page.body["next_cursor"].as_str().map(str::to_string);
    }
    assert_eq!(seen.len(), 5);
    let mut dedup = seen.clone();
    dedup.dedup();
    assert_eq!(dedup.len(), 5);
    assert_eq!(
        app.get("/v1/accounts?limit=0").await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        app.get("/v1/accounts?limit=100000").await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
}
