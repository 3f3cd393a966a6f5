use std::collections::HashSet;

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::TestApp;

crate::on_both_backends!(
    concurrent_clients_never_exceed_the_cap,
    concurrent_retries_of_one_key_apply_once
);

/// 64 clients race for 50 units: exactly 50 succeed, the rest are refused,
/// and the ledger agrees with the counters.
async fn concurrent_clients_never_exceed_the_cap(app: TestApp) {
    let acc = app.account("Acme").await;
    let id = app
        .active_entitlement(&acc, json!({ "unit": "visits", "total": 50 }))
        .await;
    let app = std::sync::Arc::new(app);
    let mut tasks = Vec::new();
    for client in 0..64 {
        let (app, id) = (app.clone(), id.clone());
        tasks.push(tokio::spawn(async move {
            let mut statuses = Vec::new();
            for n in 0..3 {
                let key = format!("c{client}-{n}");
                let a = app
                    .call(
                        Method::POST,
                        &format!("/v1/entitlements/{id}/usage"),
                        Some(&app.admin),
                        Some(json!({ "quantity": 1 })),
                        Some(&key),
                    )
                    .await;
                statuses.push(a.status);
            }
            statuses
        }));
    }
    let mut accepted = 0;
    let mut refused = 0;
    for t in tasks {
        for status in t.await.unwrap() {
            match status {
                StatusCode::CREATED => accepted += 1,
                StatusCode::CONFLICT => refused += 1,
                other => panic!("unexpected {other}"),
            }
        }
    }
    assert_eq!((accepted, refused), (50, 64 * 3 - 50));
    let balance = app.balance(&id).await;
    assert_eq!(balance["used"], json!(50));
    app.assert_ledger_matches(&id).await;
}

/// The same key sent 16 times at once: applied once; the others get the
/// same answer or 409 (in flight).
async fn concurrent_retries_of_one_key_apply_once(app: TestApp) {
    let acc = app.account("Acme").await;
    let id = app
        .active_entitlement(&acc, json!({ "unit": "units", "total": 100 }))
        .await;
    let app = std::sync::Arc::new(app);
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (app, id) = (app.clone(), id.clone());
            tokio::spawn(async move {
                app.call(
                    Method::POST,
                    &format!("/v1/entitlements/{id}/usage"),
                    Some(&app.admin),
                    Some(json!({ "quantity": 3 })),
                    Some("same"),
                )
                .await
            })
        })
        .collect();
    let mut entries = HashSet::new();
    for t in tasks {
        let a = t.await.unwrap();
        match a.status {
            StatusCode::CREATED => {
                entries.insert(a.body["entry"]["id"].as_str().unwrap().to_string());
            }
            StatusCode::CONFLICT => assert_eq!(a.code(), "idempotency_key_in_flight"),
            other => panic!("unexpected {other}: {:?}", a.body),
        }
    }
    assert_eq!(
        entries.len(),
        1,
        "every success names the same single entry"
    );
    assert_eq!(app.balance(&id).await["used"], json!(3));
}
