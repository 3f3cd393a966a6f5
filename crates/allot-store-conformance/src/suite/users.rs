//! People's accounts: stored with their hash, found by email in any case,
//! one account per email, disabled once, each change audited.

use allot_store::audit::AuditFilter;
use allot_store::model::Role;
use allot_store::users::User;
use allot_store::StoreError;
use chrono::Duration;

use crate::fixtures::*;
use crate::TestDatabase;

/// Many creations of one email at once (in any case) leave one user; every
/// other gets `email_taken`, never a storage error.
pub async fn one_user_per_email_when_created_at_once(db: &TestDatabase) {
    let store = db.store();
    let attempts = (0..8).map(|i| {
        let store = store.clone();
        async move {
            let u = User {
                id: format!("usr_{i}"),
                email: if i % 2 == 0 {
                    "same@example.com"
                } else {
                    "SAME@example.com"
                }
                .into(),
                role: Role::Agent,
                account_id: None,
                created_at: now(),
                disabled_at: None,
            };
            store.insert_user(&u, "$argon2id$x", &tester()).await
        }
    });
    let results = futures::future::join_all(attempts).await;
    let created = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(created, 1, "{results:?}");
    for r in results.iter().filter(|r| r.is_err()) {
        assert!(
            matches!(
                r,
                Err(StoreError::Conflict {
                    code: "email_taken",
                    ..
                })
            ),
            "{r:?}"
        );
    }
    assert_eq!(store.list_users().await.unwrap().len(), 1);
}

pub async fn users_by_email_unique_in_any_case_and_disabled_once(db: &TestDatabase) {
    let store = db.store();
    let s = store.as_ref();
    add_account(s, "acc_1", None).await;
    let ana = User {
        id: "usr_a".into(),
        email: "Ana@Example.com".into(),
        role: Role::Manager,
        account_id: None,
        created_at: now(),
        disabled_at: None,
    };
    let bo = User {
        id: "usr_b".into(),
        email: "bo@client.example".into(),
        role: Role::Customer,
        account_id: Some("acc_1".into()),
        created_at: now(),
        disabled_at: None,
    };
    s.insert_user(&ana, "$argon2id$a", &tester()).await.unwrap();
    s.insert_user(&bo, "$argon2id$b", &tester()).await.unwrap();
    assert_eq!(
        s.user_by_email("ana@EXAMPLE.com").await.unwrap(),
        Some((ana.clone(), "$argon2id$a".to_string()))
    );
    assert_eq!(s.user_by_email("nobody@example.com").await.unwrap(), None);
    assert_eq!(s.user_by_id("usr_b").await.unwrap(), Some(bo.clone()));
    // The same email in another case is taken; nothing is written.
    let twin = User {
        id: "usr_c".into(),
        email: "ANA@example.COM".into(),
        ..ana.clone()
    };
    let taken = s.insert_user(&twin, "$argon2id$c", &tester()).await;
    assert!(
        matches!(
            taken,
            Err(StoreError::Conflict {
                code: "email_taken",
                ..
            })
        ),
        "{taken:?}"
    );
    assert_eq!(s.list_users().await.unwrap(), vec![ana.clone(), bo.clone()]);
    // Disabled once: the first time is kept and audited, a second changes nothing.
    let later = now() + Duration::minutes(5);
    assert!(s.disable_user("usr_a", later, &tester()).await.unwrap());
    assert!(s
        .disable_user("usr_a", later + Duration::minutes(1), &tester())
        .await
        .unwrap());
    assert!(!s.disable_user("usr_x", later, &tester()).await.unwrap());
    let disabled = s.user_by_id("usr_a").await.unwrap().unwrap();
    assert_eq!(disabled.disabled_at, Some(later));
    let audited = |action: &str| {
        let filter = AuditFilter {
            action: Some(action.into()),
            ..AuditFilter::default()
        };
        async move { s.list_audit(&filter, &all()).await.unwrap() }
    };
    let created = audited("user.create").await;
    assert_eq!(created.len(), 2, "{created:?}");
    assert!(created.iter().all(|e| e.actor == tester().actor));
    assert!(
        !serde_json::to_string(&created).unwrap().contains("argon2"),
        "the hash is never audited"
    );
    let disables = audited("user.disable").await;
    assert_eq!(disables.len(), 1, "{disables:?}");
    assert_eq!(disables[0].target_id, "usr_a");
}
