//! Idempotency answers outside the write path, and API keys.

use allot_store::model::{Account, ApiKey, Role};
use allot_store::plan::{IdemKey, KeyWrite};
use allot_store::{Answering, StoreError, StoreResult, StoredAnswer};
use chrono::Duration;

use crate::fixtures::*;
use crate::TestDatabase;

fn answering(scope: &str, key: &str, fingerprint: &str, body: &str) -> Answering<Account> {
    let body = body.to_string();
    Answering {
        key: IdemKey {
            scope: scope.into(),
            key: key.into(),
            fingerprint: fingerprint.into(),
        },
        render: Box::new(move |a: &Account| StoredAnswer {
            status: 201,
            body: format!("{body}:{}", a.id),
        }),
    }
}

fn answer_row(scope: &str, key: &str, fingerprint: &str, status: u16) -> KeyWrite {
    KeyWrite {
        scope: scope.into(),
        key: key.into(),
        fingerprint: fingerprint.into(),
        answer: StoredAnswer {
            status,
            body: "{}".into(),
        }
        .to_value(),
    }
}

fn in_flight(result: &StoreResult<()>) -> bool {
    matches!(
        result,
        Err(StoreError::Conflict {
            code: "idempotency_key_in_flight",
            ..
        })
    )
}

/// A mutation records its answer with its change, or neither: a key that is
/// answered already refuses a second change under it.
pub async fn answers_are_recorded_with_their_change_and_purged(db: &TestDatabase) {
    let store = db.store();
    let s = store.as_ref();
    let t0 = now();
    let acme = account("acc_1", None);
    s.insert_account(&acme, &tester(), Some(answering("sc", "k1", "fp1", "made")))
        .await
        .unwrap();
    let record = s.get_key("sc", "k1").await.unwrap().unwrap();
    assert_eq!(record.fingerprint, "fp1");
    let answer = StoredAnswer::from_value(record.answer.as_ref().unwrap()).unwrap();
    assert_eq!((answer.status, answer.body.as_str()), (201, "made:acc_1"));

    // The key is answered: a second change under it is refused whole.
    let again = s
        .insert_account(
            &account("acc_2", None),
            &tester(),
            Some(answering("sc", "k1", "fp1", "made")),
        )
        .await;
    assert!(in_flight(&again), "{again:?}");
    assert_eq!(s.get_account("acc_2").await.unwrap(), None);
    assert_eq!(s.get_key("sc", "k1").await.unwrap(), Some(record));

    // A change that fails records no answer.
    let orphan = account("acc_3", Some("acc_missing"));
    assert!(s
        .insert_account(&orphan, &tester(), Some(answering("sc", "k2", "fp", "x")))
        .await
        .is_err());
    assert_eq!(s.get_key("sc", "k2").await.unwrap(), None);

    // A refusal's answer is recorded on its own, once.
    s.record_answer(&answer_row("sc", "k2", "fp", 409), t0)
        .await
        .unwrap();
    assert!(in_flight(
        &s.record_answer(&answer_row("sc", "k2", "fp", 422), t0)
            .await
    ));
    let kept = s.get_key("sc", "k2").await.unwrap().unwrap();
    assert_eq!(
        StoredAnswer::from_value(kept.answer.as_ref().unwrap()).map(|a| a.status),
        Some(409)
    );

    // Of several instances recording one key at once, exactly one does.
    let mut others = Vec::new();
    for _ in 0..3 {
        others.push(db.instance().await);
    }
    let t1 = t0 + Duration::minutes(5);
    let row = answer_row("sc", "k3", "fp", 201);
    let recorded =
        futures::future::join_all(others.iter().map(|o| o.record_answer(&row, t1))).await;
    assert_eq!(
        recorded.iter().filter(|r| r.is_ok()).count(),
        1,
        "{recorded:?}"
    );
    assert!(recorded.iter().filter(|r| r.is_err()).all(in_flight));

    // Scopes are separate.
    s.record_answer(&answer_row("other", "k1", "fp", 201), t0)
        .await
        .unwrap();

    assert_eq!(s.purge_keys(t0 + Duration::seconds(1)).await.unwrap(), 3);
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
    s.insert_api_key(&admin, "hash_a", &tester(), None)
        .await
        .unwrap();
    s.insert_api_key(&customer, "hash_c", &tester(), None)
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
    assert!(s
        .revoke_api_key("key_c", t1, &tester(), None)
        .await
        .unwrap());
    // Revoking again is no error and keeps the first time.
    assert!(s
        .revoke_api_key("key_c", t1 + Duration::minutes(1), &tester(), None)
        .await
        .unwrap());
    assert!(!s
        .revoke_api_key("key_none", t1, &tester(), None)
        .await
        .unwrap());
    let revoked = s.api_key_by_hash("hash_c").await.unwrap().unwrap();
    assert_eq!(revoked.revoked_at, Some(t1));
    assert_eq!(s.list_api_keys().await.unwrap(), [admin, revoked]);
    assert_eq!(s.count_api_keys().await.unwrap(), 2);
}
