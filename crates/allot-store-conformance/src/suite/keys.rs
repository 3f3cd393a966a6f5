//! Idempotency keys outside the write path, and API keys.

use allot_store::model::{ApiKey, KeyClaim, Role};
use chrono::{DateTime, Duration, Utc};
use serde_json::json;

use crate::fixtures::*;
use crate::TestDatabase;

pub async fn claims_finish_abandon_take_over_and_purge(db: &TestDatabase) {
    let store = db.store();
    let s = store.as_ref();
    let stale = |t: DateTime<Utc>| t - Duration::seconds(60);
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
    assert_eq!(s.get_key("sc", "k1").await.unwrap(), Some(record));
    // A finished key is never taken over, however old.
    let much_later = t0 + Duration::days(1);
    assert!(matches!(
        s.claim_key("sc", "k1", "fp1", much_later, stale(much_later))
            .await
            .unwrap(),
        KeyClaim::Existing(_)
    ));

    // An unfinished claim is taken over once stale, not before.
    s.claim_key("sc", "k2", "fp", t0, stale(t0)).await.unwrap();
    let soon = t0 + Duration::seconds(30);
    assert!(matches!(
        s.claim_key("sc", "k2", "fp2", soon, stale(soon))
            .await
            .unwrap(),
        KeyClaim::Existing(_)
    ));
    // Abandon drops only unfinished claims.
    s.abandon_key("sc", "k2").await.unwrap();
    assert_eq!(s.get_key("sc", "k2").await.unwrap(), None);
    s.abandon_key("sc", "k1").await.unwrap();
    assert!(s.get_key("sc", "k1").await.unwrap().is_some());

    // A stale claim is taken over by exactly one of several racers.
    s.claim_key("sc", "k3", "old", t0, stale(t0)).await.unwrap();
    let t1 = t0 + Duration::minutes(5);
    let mut others = Vec::new();
    for _ in 0..3 {
        others.push(db.instance().await);
    }
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
    assert_eq!(s.get_key("sc", "k1").await.unwrap(), None);
    assert_eq!(
        s.get_key("sc", "k3").await.unwrap().map(|r| r.created_at),
        Some(t1)
    );
}

pub async fn api_keys_by_hash_list_revoke_count(db: &TestDatabase) {
    let store = db.store();
    let s = store.as_ref();
    add_account(s, "acc_1", None).await;
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
    s.insert_api_key(&admin, "hash_a", &tester()).await.unwrap();
    s.insert_api_key(&customer, "hash_c", &tester())
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
        [admin.clone(), customer.clone()]
    );

    let t1 = now() + Duration::minutes(1);
    assert!(s.revoke_api_key("key_c", t1, &tester()).await.unwrap());
    // Revoking again is no error and keeps the first time.
    assert!(s
        .revoke_api_key("key_c", t1 + Duration::minutes(1), &tester())
        .await
        .unwrap());
    assert!(!s.revoke_api_key("key_none", t1, &tester()).await.unwrap());
    let revoked = s.api_key_by_hash("hash_c").await.unwrap().unwrap();
    assert_eq!(revoked.revoked_at, Some(t1));
    assert_eq!(s.list_api_keys().await.unwrap(), [admin, revoked]);
    assert_eq!(s.count_api_keys().await.unwrap(), 2);
}
