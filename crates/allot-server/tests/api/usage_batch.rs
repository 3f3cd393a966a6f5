//! `POST /v1/usage/batch`: each item decided on its own, in order, in one
//! transaction; per-item keys; CloudEvents batches.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::{Answer, TestApp};

crate::on_both_backends!(
    items_are_decided_in_order_each_on_its_own,
    item_keys_replay_each_item,
    a_request_key_covers_every_item,
    a_batch_holds_one_to_a_thousand_items,
    cloud_events_are_uses_keyed_by_source_and_id,
    cloud_event_fields_are_checked_per_event,
);

async fn batch(app: &TestApp, body: Value) -> Answer {
    app.post("/v1/usage/batch", body).await
}

async fn post_raw(app: &TestApp, content_type: &str, body: String, key: Option<&str>) -> Answer {
    let mut req = app
        .http
        .post(format!("{}/v1/usage/batch", app.url))
        .bearer_auth(&app.admin)
        .header("content-type", content_type)
        .body(body);
    if let Some(key) = key {
        req = req.header("Idempotency-Key", key);
    }
    let response = req.send().await.expect("request");
    let status = response.status();
    let replayed = response.headers().get("idempotent-replayed").is_some();
    let body = response.json().await.expect("JSON body");
    Answer {
        status,
        body,
        replayed,
    }
}

fn statuses(answer: &Answer) -> Vec<u64> {
    answer.body["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items: {:?}", answer.body))
        .iter()
        .map(|i| i["status"].as_u64().unwrap())
        .collect()
}

fn field(item: &Value) -> &str {
    item["error"]["details"]["fields"][0]["field"]
        .as_str()
        .unwrap_or("")
}

async fn used(app: &TestApp, id: &str) -> Value {
    app.balance(id).await["used"].clone()
}

async fn items_are_decided_in_order_each_on_its_own(app: TestApp) {
    let acc = app.account("Acme").await;
    let id = app
        .active_entitlement(&acc, json!({ "unit": "visits", "total": 3 }))
        .await;
    let other = app
        .active_entitlement(&acc, json!({ "unit": "visits", "total": 5 }))
        .await;
    let answer = batch(
        &app,
        json!({ "items": [
            { "entitlement_id": id, "quantity": 1, "reference": "WO-1" },
            { "entitlement_id": id, "quantity": "lots" },
            { "entitlement_id": other, "quantity": 2, "channel": null },
            { "entitlement_id": "ent_nothing_here", "quantity": 1 },
            { "entitlement_id": id, "quantity": 3 },
            { "entitlement_id": id, "quantity": 2 },
            { "entitlement_id": id, "quantity": 1, "colour": "red" },
            7,
            { "entitlement_id": id, "quantity": 0 },
        ]}),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    assert_eq!(
        statuses(&answer),
        [201, 422, 201, 422, 409, 201, 422, 422, 422]
    );
    let items = answer.body["items"].as_array().unwrap();
    assert_eq!(items[0]["entry"]["entitlement_id"], json!(id));
    assert_eq!(items[0]["entry"]["reference"], "WO-1");
    assert_eq!(items[0]["entry"]["quantity"], json!(1));
    assert_eq!(items[2]["entry"]["entitlement_id"], json!(other));
    assert_eq!(field(&items[1]), "items[1].quantity");
    assert_eq!(field(&items[3]), "items[3].entitlement_id");
    // Decided after the first use: 2 of 3 remain, so 3 is refused and 2 fits.
    assert_eq!(items[4]["error"]["code"], "entitlement_exhausted");
    assert_eq!(items[4]["error"]["details"]["remaining"], json!(2));
    assert!(items[4].get("entry").is_none());
    assert_eq!(field(&items[6]), "items[6].colour");
    assert_eq!(field(&items[7]), "items[7]");
    assert_eq!(field(&items[8]), "items[8].quantity");
    assert_eq!(used(&app, &id).await, json!(3));
    assert_eq!(used(&app, &other).await, json!(2));
    app.assert_ledger_matches(&id).await;
    app.assert_ledger_matches(&other).await;
    // The ledger holds exactly the applied items, with their entry ids.
    let ledger = app.get(&format!("/v1/entitlements/{id}/usage")).await;
    let ids: Vec<&Value> = ledger.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["id"])
        .collect();
    assert_eq!(ids.len(), 2);
    assert!(ids.contains(&&items[0]["entry"]["id"]));
    assert!(ids.contains(&&items[5]["entry"]["id"]));
}

async fn item_keys_replay_each_item(app: TestApp) {
    let acc = app.account("Acme").await;
    let id = app
        .active_entitlement(&acc, json!({ "unit": "visits", "total": 10 }))
        .await;
    let body = json!({ "items": [
        { "entitlement_id": id, "quantity": 1, "idempotency_key": "a" },
        { "entitlement_id": id, "quantity": 2 },
        { "entitlement_id": id, "quantity": 3, "idempotency_key": "b" },
    ]});
    let first = batch(&app, body.clone()).await;
    assert_eq!(statuses(&first), [201, 201, 201]);
    assert!(!first.replayed);
    assert_eq!(used(&app, &id).await, json!(6));
    let again = batch(&app, body).await;
    assert_eq!(statuses(&again), [201, 201, 201]);
    assert!(
        !again.replayed,
        "one item was new, so not every item replayed"
    );
    let (one, two) = (&first.body["items"], &again.body["items"]);
    assert_eq!(two[0]["replayed"], json!(true));
    assert_eq!(two[0]["entry"], one[0]["entry"], "the same answer again");
    assert!(two[1].get("replayed").is_none(), "no key: applied again");
    assert_ne!(two[1]["entry"]["id"], one[1]["entry"]["id"]);
    assert_eq!(two[2]["replayed"], json!(true));
    assert_eq!(two[2]["entry"], one[2]["entry"]);
    assert_eq!(used(&app, &id).await, json!(8));
    // A key reused with another item; a key twice in one request; a key
    // that was refused stays refused.
    let mixed = batch(
        &app,
        json!({ "items": [
            { "entitlement_id": id, "quantity": 2, "idempotency_key": "a" },
            { "entitlement_id": id, "quantity": 1, "idempotency_key": "c" },
            { "entitlement_id": id, "quantity": 1, "idempotency_key": "c" },
            { "entitlement_id": id, "quantity": 5, "idempotency_key": "d" },
        ]}),
    )
    .await;
    assert_eq!(statuses(&mixed), [422, 201, 201, 409]);
    let items = &mixed.body["items"];
    assert_eq!(items[0]["error"]["code"], "idempotency_key_reused");
    assert_eq!(items[2]["replayed"], json!(true));
    assert_eq!(items[2]["entry"], items[1]["entry"]);
    assert_eq!(used(&app, &id).await, json!(9));
    let refused = batch(
        &app,
        json!({ "items": [{ "entitlement_id": id, "quantity": 5, "idempotency_key": "d" }] }),
    )
    .await;
    assert_eq!(statuses(&refused), [409]);
    assert!(refused.replayed);
    // Keys of the batch are the caller's own: another key starts afresh.
    let agent = app.key("agent", None).await;
    let theirs = app
        .post_as(
            &agent,
            "/v1/usage/batch",
            json!({ "items": [{ "entitlement_id": id, "quantity": 1, "idempotency_key": "a" }] }),
        )
        .await;
    assert_eq!(statuses(&theirs), [201]);
    assert!(theirs.body["items"][0].get("replayed").is_none());
    assert_eq!(used(&app, &id).await, json!(10));
    app.assert_ledger_matches(&id).await;
}

async fn a_request_key_covers_every_item(app: TestApp) {
    let acc = app.account("Acme").await;
    let id = app
        .active_entitlement(&acc, json!({ "unit": "visits", "total": 10 }))
        .await;
    let body = json!({ "items": [
        { "entitlement_id": id, "quantity": 1 },
        { "entitlement_id": id, "quantity": 2, "idempotency_key": "own" },
    ]})
    .to_string();
    let first = post_raw(&app, "application/json", body.clone(), Some("req-1")).await;
    assert_eq!(statuses(&first), [201, 201]);
    let again = post_raw(&app, "application/json", body, Some("req-1")).await;
    assert_eq!(statuses(&again), [201, 201]);
    assert!(again.replayed, "every item replayed");
    assert_eq!(
        again.body["items"][0]["entry"],
        first.body["items"][0]["entry"]
    );
    assert_eq!(used(&app, &id).await, json!(3));
}

async fn a_batch_holds_one_to_a_thousand_items(app: TestApp) {
    let acc = app.account("Acme").await;
    let id = app
        .active_entitlement(&acc, json!({ "unit": "visits", "total": 5000 }))
        .await;
    let items = |n: usize| -> Vec<Value> {
        (0..n)
            .map(|i| json!({ "entitlement_id": id, "quantity": 1, "idempotency_key": format!("k{i}") }))
            .collect()
    };
    let full = batch(&app, json!({ "items": items(1000) })).await;
    assert_eq!(full.status, StatusCode::OK, "{:?}", full.body["error"]);
    assert!(statuses(&full).iter().all(|s| *s == 201));
    assert_eq!(statuses(&full).len(), 1000);
    assert_eq!(used(&app, &id).await, json!(1000));
    let over = batch(&app, json!({ "items": items(1001) })).await;
    assert_eq!(over.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(over.body["error"]["details"]["fields"][0]["field"], "items");
    let none = batch(&app, json!({ "items": [] })).await;
    assert_eq!(none.status, StatusCode::UNPROCESSABLE_ENTITY);
    let not_a_list = batch(&app, json!({ "items": {} })).await;
    assert_eq!(not_a_list.status, StatusCode::UNPROCESSABLE_ENTITY);
    let stray = batch(&app, json!({ "items": items(1), "more": 1 })).await;
    assert_eq!(stray.status, StatusCode::UNPROCESSABLE_ENTITY);
    let array = post_raw(&app, "application/json", "[]".into(), None).await;
    assert_eq!(array.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        used(&app, &id).await,
        json!(1000),
        "refused whole: nothing applied"
    );
    app.assert_ledger_matches(&id).await;
}

fn event(source: &str, id: &str, subject: &str, quantity: Value) -> Value {
    json!({
        "specversion": "1.0", "id": id, "source": source, "type": "com.example.usage",
        "subject": subject, "time": "2026-06-15T11:00:00Z", "datacontenttype": "application/json",
        "data": { "quantity": quantity }
    })
}

async fn cloud_events_are_uses_keyed_by_source_and_id(app: TestApp) {
    let acc = app.account("Acme").await;
    let id = app
        .active_entitlement(&acc, json!({ "unit": "visits", "total": 10 }))
        .await;
    let mut with_reference = event("/meter/1", "e-3", &id, json!(2));
    with_reference["data"]["reference"] = json!("WO-9");
    with_reference["comexampleextension"] = json!("kept out");
    let events = json!([
        event("/meter/1", "e-1", &id, json!(1)),
        event("/meter/2", "e-1", &id, json!(1)),
        // The same source and id again: a duplicate, whatever it carries.
        event("/meter/1", "e-1", &id, json!(5)),
        with_reference,
    ]);
    const CE: &str = "application/cloudevents-batch+json";
    let first = post_raw(&app, CE, events.to_string(), None).await;
    assert_eq!(first.status, StatusCode::OK, "{:?}", first.body);
    assert_eq!(statuses(&first), [201, 201, 201, 201]);
    let items = &first.body["items"];
    assert_eq!(items[2]["replayed"], json!(true));
    assert_eq!(items[2]["entry"], items[0]["entry"]);
    assert_eq!(items[3]["entry"]["reference"], "WO-9");
    assert_eq!(used(&app, &id).await, json!(4));
    let again = post_raw(&app, CE, events.to_string(), None).await;
    assert_eq!(statuses(&again), [201, 201, 201, 201]);
    assert!(again.replayed);
    assert_eq!(used(&app, &id).await, json!(4));
    // One event in structured mode.
    let one = post_raw(
        &app,
        "application/cloudevents+json",
        event("/meter/1", "e-4", &id, json!(1)).to_string(),
        None,
    )
    .await;
    assert_eq!(statuses(&one), [201]);
    assert_eq!(used(&app, &id).await, json!(5));
    // A batch is an array; a JSON batch is not one.
    let object = post_raw(&app, CE, json!({ "items": [] }).to_string(), None).await;
    assert_eq!(object.status, StatusCode::UNPROCESSABLE_ENTITY);
    let broken = post_raw(&app, CE, "[{".into(), None).await;
    assert_eq!(broken.status, StatusCode::BAD_REQUEST);
    app.assert_ledger_matches(&id).await;
}

async fn cloud_event_fields_are_checked_per_event(app: TestApp) {
    let acc = app.account("Acme").await;
    let id = app
        .active_entitlement(&acc, json!({ "unit": "visits", "total": 10 }))
        .await;
    let mut old = event("/m", "2", &id, json!(1));
    old["specversion"] = json!("0.3");
    let mut no_subject = event("/m", "3", &id, json!(1));
    no_subject.as_object_mut().unwrap().remove("subject");
    let mut stray_data = event("/m", "4", &id, json!(1));
    stray_data["data"]["colour"] = json!("red");
    let mut xml = event("/m", "5", &id, json!(1));
    xml["datacontenttype"] = json!("application/xml");
    let events = json!([
        event("/m", "1", &id, json!(1)),
        old,
        no_subject,
        stray_data,
        xml,
        event("/m", "6", "ent_unknown", json!(1)),
        event("/m", "7", &id, json!(-1)),
        event("/m", "", &id, json!(1)),
        event("/m", "8", &id, json!(2)),
    ]);
    let answer = post_raw(
        &app,
        "application/cloudevents-batch+json; charset=utf-8",
        events.to_string(),
        None,
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    assert_eq!(
        statuses(&answer),
        [201, 422, 422, 422, 422, 422, 422, 422, 201]
    );
    let items = &answer.body["items"];
    let fields: Vec<&str> = (1..8).map(|n| field(&items[n])).collect();
    assert_eq!(
        fields,
        [
            "items[1].specversion",
            "items[2].subject",
            "items[3].data.colour",
            "items[4].datacontenttype",
            "items[5].subject",
            "items[6].data.quantity",
            "items[7].id",
        ]
    );
    assert_eq!(used(&app, &id).await, json!(3));
    app.assert_ledger_matches(&id).await;
}
