//! Idempotency keys outside the write path, and API keys.

mod common;

use allot_store::model::{ApiKey, KeyClaim, Role};
use allot_store::Store;
use chrono::Duration;
use common::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_finish_abandon_take_over_and_purge() {
    let Some(db) = fresh().await else { return };
    let s = &db.store;
    let stale = |t: chrono::DateTime<chrono::Utc>| t - Duration::seconds(60);
    let t0 = now();
    assert_eq!(
        s.claim_key("sc", "k1", "fp1", t0, stale(t0)).await.unwrap(),
        KeyClaim::Claimed
    );
    // In flight: a second claim sees the unfinished record.
    let KeyClaim::Existing(record) = s.claim_key("sc", "k1", "fp1", t0, stale(t0)).await.unwrap()
    else {
        panic!("expected the existing claim")
    };
    assert_eq!(
        (
            record.fingerprint.as_str(),
            record.answer.as_ref(),
            record.created_at
        ),
        ("fp1", None, t0)
    );
    s.finish_key("sc", "k1", &json!({ "status": 201 }))
        .await
        .unwrap();
    let KeyClaim::Existing(record) = s.claim_key("sc", "k1", "fp2", t0, stale(t0)).await.unwrap()
    else {
        panic!("expected the finished record")
    };
    assert_eq!(record.answer, Some(json!({ "status": 201 })));
    assert_eq!(record.fingerprint, "fp1");
    // A finished key is never taken over, however old.
    let much_later = t0 + Duration::hours(1);
    assert!(matches!(
        s.claim_key("sc", "k1", "fp1", much_later, stale(much_later))
            .await
            .unwrap(),
        KeyClaim::Existing(_)
    ));

    // Abandon drops only unfinished claims.
    s.claim_key("sc", "k2", "fp", t0, stale(t0)).await.unwrap();
    s.abandon_key("sc", "k2").await.unwrap();
    assert_eq!(s.get_key("sc", "k2").await.unwrap(), None);
    s.abandon_key("sc", "k1").await.unwrap();
    assert!(s.get_key("sc", "k1").await.unwrap().is_some());

    // A stale claim is taken over by exactly one of several racers.
    s.claim_key("sc", "k3", "old", t0, stale(t0)).await.unwrap();
    let t1 = t0 + Duration::minutes(5);
    let others = [
        db.instance().await,
        db.instance().await,
        db.instance().await,
    ];
    let claims = futures::future::join_all(
        others
            .iter()
            .map(|o| o.claim_key("sc", "k3", "new", t1, stale(t1))),
    )
    .await;
    let won = claims
        .iter()
        .filter(|c| matches!(c, Ok(KeyClaim::Claimed)))
        .count();
    assert_eq!(won, 1, "{claims:?}");
    let record = s.get_key("sc", "k3").await.unwrap().unwrap();
    assert_eq!(
        (record.fingerprint.as_str(), record.created_at),
        ("new", t1)
    );

    // Scopes are separate.
    assert_eq!(
        s.claim_key("other", "k1", "fp", t0, stale(t0))
            .await
            .unwrap(),
        KeyClaim::Claimed
    );

    assert_eq!(s.purge_keys(t0 + Duration::seconds(1)).await.unwrap(), 2);
    assert_eq!(
        s.get_key("sc", "k3").await.unwrap().map(|r| r.created_at),
        Some(t1)
    );
    db.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_by_hash_list_revoke_count() {
    let Some(db) = fresh().await else { return };
    let s = &db.store;
    s.insert_account(&account("acc_1", None), &"tester".into())
        .await
        .unwrap();
    let admin = ApiKey {
        id: "key_a".into(),
        name: Some("bootstrap".into()),
        role: Role::Admin,
        account_id: None,
        created_at: now(),
        revoked_at: None,
    };
    let customer = ApiKey {
        id: "key_c".into(),
        name: None,
        role: Role::Customer,
        account_id: Some("acc_1".into()),
        created_at: now(),
        revoked_at: None,
    };
    assert_eq!(s.count_api_keys().await.unwrap(), 0);
    s.insert_api_key(&admin, "hash_a", &"tester".into())
        .await
        .unwrap();
    s.insert_api_key(&customer, "hash_c", &"tester".into())
        .await
        .unwrap();
    assert_eq!(s.count_api_keys().await.unwrap(), 2);
    assert_eq!(
        s.api_key_by_hash("hash_c").await.unwrap(),
        Some(customer.clone())
    );
    assert_eq!(s.api_key_by_hash("nope").await.unwrap(), None);
    assert_eq!(
        s.list_api_keys().await.unwrap(),
        vec![admin.clone(), customer.clone()]
    );

    let t1 = now() + Duration::minutes(1);
    assert!(s
        .revoke_api_key("key_c", t1, &"tester".into())
        .await
        .unwrap());
    assert!(s
        .revoke_api_key("key_c", t1 + Duration::minutes(1), &"tester".into())
        .await
        .unwrap());
    assert!(!s
        .revoke_api_key("key_none", t1, &"tester".into())
        .await
        .unwrap());
    let revoked = s.api_key_by_hash("hash_c").await.unwrap().unwrap();
    assert_eq!(revoked.revoked_at, Some(t1));
    assert_eq!(s.count_api_keys().await.unwrap(), 2);
    db.finish().await;
}
