//! Minimal reproductions of what the suites found, kept as regression
//! tests once fixed.

use serde_json::json;

use crate::api::{Http, Request};
use crate::harness::Server;
use crate::workload::{setup, Keys};

/// A refusal replayed under its key answers the same status and body, but
/// without `idempotent-replayed: true` (2xx replays carry it). A client
/// cannot tell a stored refusal from a fresh one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]

async fn a_replayed_refusal_says_it_is_a_replay() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("allot.db").display());
    let started = tokio::task::block_in_place(|| Server::start("finding", &db, dir.path(), &[]));
    let admin = started.admin_key.clone().unwrap();
    let base = started.server.url.clone();
    let http = Http::new();
    let keys = Keys {
        admin: admin.clone(),
        manager: admin.clone(),
    };
    let fixture = setup(&http, &base, &keys, 1, 1).await;
    let path = format!("/v1/entitlements/{}/usage", fixture.usage_ents[0]);
    let use_one = |key: &str| {
        Request::post(
            &admin,
            &path,
            Some(json!({ "quantity": 1 })),
            Some(key.into()),
        )
    };
    assert_eq!(http.send(&base, &use_one("a")).await.unwrap().status, 201);
    let first = http.send(&base, &use_one("b")).await.unwrap();
    assert_eq!(first.status, 409, "{:?}", first.body);
    let again = http.send(&base, &use_one("b")).await.unwrap();
    assert_eq!((again.status, &again.body), (first.status, &first.body));
    assert!(
        again.replayed,
        "the replayed 409 lacks idempotent-replayed: true"
    );
}
