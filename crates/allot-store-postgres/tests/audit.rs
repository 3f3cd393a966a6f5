//! The audit trail: one row per change, in the change's transaction, and
//! none for a change that did not happen.

mod common;

use allot_core::entitlement::Status;
use allot_core::lifecycle::Action;
use allot_store::audit::{snapshot, AuditContext, AuditEntry, AuditFilter};
use allot_store::model::{ApiKey, Page, Role};
use allot_store::plan::{ItemAnswer, Outcome};
use allot_store::{Store, StoreError};
use common::*;
use serde_json::json;

fn all() -> Page {
    Page {
        after: None,
        limit: 1000,
    }
}

fn admin() -> AuditContext {
    AuditContext {
        actor: "key_admin".into(),
        role: "admin".into(),
        request_id: Some("req_1".into()),
    }
}

async fn audit_of(s: &dyn Store, target_id: &str) -> Vec<AuditEntry> {
    let filter = AuditFilter {
        target_id: Some(target_id.into()),
        ..AuditFilter::default()
    };
    s.list_audit(&filter, &all()).await.unwrap()
}

/// The one entry `target_id` gained since it had `seen`.
async fn one_new(s: &dyn Store, target_id: &str, seen: usize) -> AuditEntry {
    let entries = audit_of(s, target_id).await;
    assert_eq!(entries.len(), seen + 1, "{entries:#?}");
    entries.last().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_change_writes_one_audit_row() {
    let Some(db) = fresh().await else { return };
    let s = db.store.as_ref();

    // An account.
    let acc = account("acc_1", None);
    s.insert_account(&acc, &admin()).await.unwrap();
    let entry = one_new(s, "acc_1", 0).await;
    assert_eq!(
        (
            entry.actor.as_str(),
            entry.role.as_str(),
            entry.request_id.as_deref()
        ),
        ("key_admin", "admin", Some("req_1"))
    );
    assert_eq!(
        (entry.action.as_str(), entry.target_type.as_str()),
        ("account.create", "account")
    );
    assert_eq!((entry.before, entry.after), (None, snapshot(&acc)));
    assert_eq!(entry.at, acc.created_at);

    // A failed insert writes nothing.
    assert!(s
        .insert_account(&account("acc_orphan", Some("acc_none")), &admin())
        .await
        .is_err());
    assert!(audit_of(s, "acc_orphan").await.is_empty());

    // An entitlement: created, edited, activated.
    let created = s
        .insert_entitlement(&draft("ent_1", terms("acc_1", Some(10))), now(), &admin())
        .await
        .unwrap();
    let entry = one_new(s, "ent_1", 0).await;
    assert_eq!(entry.action, "entitlement.create");
    assert_eq!((entry.before, entry.after), (None, snapshot(&created)));

    let mut edited = terms("acc_1", Some(25));
    edited.name = "Renamed".into();
    let later = now() + chrono::Duration::minutes(5);
    let updated = s
        .update_terms("ent_1", &edited, today(), later, &admin())
        .await
        .unwrap();
    let entry = one_new(s, "ent_1", 1).await;
    assert_eq!(
        (entry.action.as_str(), entry.target_type.as_str()),
        ("entitlement.update", "entitlement")
    );
    assert_eq!(
        (entry.before, entry.after),
        (snapshot(&created), snapshot(&updated))
    );
    assert_eq!(entry.at, later);

    let activated = s
        .transition(
            "ent_1",
            Action::Activate,
            &"key_manager".into(),
            "",
            today(),
            later,
        )
        .await
        .unwrap()
        .entitlement;
    let entry = one_new(s, "ent_1", 2).await;
    assert_eq!(entry.action, "entitlement.activate");
    assert_eq!(entry.actor, "key_manager");
    assert_eq!(
        (entry.before, entry.after),
        (snapshot(&updated), snapshot(&activated))
    );

    // A refused edit and a refused action write nothing.
    assert!(matches!(
        s.update_terms("ent_1", &edited, today(), later, &admin())
            .await,
        Err(StoreError::Edit(_))
    ));
    assert!(matches!(
        s.transition("ent_1", Action::Renew, &admin(), "ent_2", today(), later)
            .await,
        Err(StoreError::Lifecycle(_))
    ));
    assert_eq!(audit_of(s, "ent_1").await.len(), 3);

    // A use in a batch: the counters before and after.
    let answers = s
        .apply_batch(&[usage("ent_1", 2, None)], today(), later)
        .await
        .unwrap();
    assert!(matches!(
        answers[0],
        ItemAnswer::Done {
            outcome: Outcome::Applied { .. },
            ..
        }
    ));
    let used = s.get_entitlement("ent_1").await.unwrap().unwrap();
    let entry = one_new(s, "ent_1", 3).await;
    assert_eq!(
        (
            entry.action.as_str(),
            entry.target_type.as_str(),
            entry.actor.as_str()
        ),
        ("usage.record", "entitlement", "key_test")
    );
    assert_eq!(
        (entry.before, entry.after),
        (snapshot(&activated.counters), snapshot(&used.counters))
    );
    // A refused use writes nothing.
    let answers = s
        .apply_batch(&[usage("ent_1", 100, None)], today(), later)
        .await
        .unwrap();
    assert!(matches!(
        answers[0],
        ItemAnswer::Done {
            outcome: Outcome::Refused { .. },
            ..
        }
    ));
    assert_eq!(audit_of(s, "ent_1").await.len(), 4);

    // Cancel, then renew: the renewal is the new record.
    let cancelled = s
        .transition("ent_1", Action::Cancel, &admin(), "", today(), later)
        .await
        .unwrap()
        .entitlement;
    let entry = one_new(s, "ent_1", 4).await;
    assert_eq!(entry.action, "entitlement.cancel");
    assert_eq!(
        (entry.before, entry.after),
        (snapshot(&used), snapshot(&cancelled))
    );
    let renewed = s
        .transition("ent_1", Action::Renew, &admin(), "ent_2", today(), later)
        .await
        .unwrap();
    let entry = one_new(s, "ent_1", 5).await;
    assert_eq!(entry.action, "entitlement.renew");
    assert_eq!(entry.before, snapshot(&cancelled));
    assert_eq!(
        entry.after,
        Some(json!({ "renewal": snapshot(&renewed.renewal.unwrap()) }))
    );
    assert!(audit_of(s, "ent_2").await.is_empty());
    db.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_and_api_keys_are_audited() {
    let Some(db) = fresh().await else { return };
    let s = db.store.as_ref();
    s.insert_account(&account("acc_1", None), &admin())
        .await
        .unwrap();
    let mut t = terms("acc_1", Some(10));
    t.start_date = day(2026, 3, 20);
    s.insert_entitlement(&draft("ent_1", t), now(), &admin())
        .await
        .unwrap();
    s.transition("ent_1", Action::Activate, &admin(), "", today(), now())
        .await
        .unwrap();
    let day_21 = at(2026, 3, 21);
    assert_eq!(
        s.sync_statuses(day_21.date_naive(), day_21).await.unwrap(),
        1
    );
    assert_eq!(
        s.sync_statuses(day_21.date_naive(), day_21).await.unwrap(),
        0
    );
    let entry = one_new(s, "ent_1", 2).await;
    assert_eq!(
        (
            entry.actor.as_str(),
            entry.role.as_str(),
            entry.action.as_str()
        ),
        ("system", "system", "entitlement.follow_dates")
    );
    assert_eq!(
        (entry.before, entry.after),
        (
            Some(json!({ "status": Status::Waiting })),
            Some(json!({ "status": Status::Active }))
        )
    );
    assert_eq!(entry.at, day_21);

    let key = ApiKey {
        id: "key_c".into(),
        name: Some("customer".into()),
        role: Role::Customer,
        account_id: Some("acc_1".into()),
        created_at: now(),
        revoked_at: None,
    };
    s.insert_api_key(&key, "secret_hash_value", &admin())
        .await
        .unwrap();
    let entry = one_new(s, "key_c", 0).await;
    assert_eq!(
        (entry.action.as_str(), entry.target_type.as_str()),
        ("api_key.create", "api_key")
    );
    assert_eq!(
        (entry.before.clone(), entry.after.clone()),
        (None, snapshot(&key))
    );
    assert!(!serde_json::to_string(&entry)
        .unwrap()
        .contains("secret_hash_value"));

    let t1 = now() + chrono::Duration::minutes(1);
    assert!(s.revoke_api_key("key_c", t1, &admin()).await.unwrap());
    let revoked = ApiKey {
        revoked_at: Some(t1),
        ..key.clone()
    };
    let entry = one_new(s, "key_c", 1).await;
    assert_eq!(entry.action, "api_key.revoke");
    assert_eq!(
        (entry.before, entry.after),
        (snapshot(&key), snapshot(&revoked))
    );
    // Revoking again changes nothing, and a missing key is not audited.
    assert!(s.revoke_api_key("key_c", t1, &admin()).await.unwrap());
    assert!(!s.revoke_api_key("key_none", t1, &admin()).await.unwrap());
    assert_eq!(audit_of(s, "key_c").await.len(), 2);
    assert!(audit_of(s, "key_none").await.is_empty());
    db.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_audit_filters_and_pages() {
    let Some(db) = fresh().await else { return };
    let s = db.store.as_ref();
    // Accounts 1..=4 created on March 1st..4th, by a, b, a, b.
    for n in 1..=4u32 {
        let mut acc = account(&format!("acc_{n}"), None);
        acc.created_at = at(2026, 3, n);
        let actor = if n % 2 == 1 { "key_a" } else { "key_b" };
        s.insert_account(&acc, &actor.into()).await.unwrap();
    }
    s.insert_entitlement(
        &draft("ent_1", terms("acc_1", Some(10))),
        at(2026, 3, 5),
        &"key_a".into(),
    )
    .await
    .unwrap();

    let ids = |entries: Vec<AuditEntry>| -> Vec<String> {
        entries.into_iter().map(|e| e.target_id).collect()
    };
    let list =
        |filter: AuditFilter| async move { ids(s.list_audit(&filter, &all()).await.unwrap()) };

    assert_eq!(
        list(AuditFilter::default()).await,
        ["acc_1", "acc_2", "acc_3", "acc_4", "ent_1"]
    );
    assert_eq!(
        list(AuditFilter {
            actor: Some("key_a".into()),
            ..AuditFilter::default()
        })
        .await,
        ["acc_1", "acc_3", "ent_1"]
    );
    assert_eq!(
        list(AuditFilter {
            actor: Some("key_a".into()),
            action: Some("account.create".into()),
            ..AuditFilter::default()
        })
        .await,
        ["acc_1", "acc_3"]
    );
    assert_eq!(
        list(AuditFilter {
            action: Some("entitlement.create".into()),
            ..AuditFilter::default()
        })
        .await,
        ["ent_1"]
    );
    assert_eq!(
        list(AuditFilter {
            target_id: Some("acc_2".into()),
            ..AuditFilter::default()
        })
        .await,
        ["acc_2"]
    );
    // `since` is inclusive, `until` exclusive.
    assert_eq!(
        list(AuditFilter {
            since: Some(at(2026, 3, 2)),
            until: Some(at(2026, 3, 4)),
            ..AuditFilter::default()
        })
        .await,
        ["acc_2", "acc_3"]
    );
    assert_eq!(
        list(AuditFilter {
            actor: Some("key_b".into()),
            since: Some(at(2026, 3, 3)),
            ..AuditFilter::default()
        })
        .await,
        ["acc_4"]
    );
    assert!(list(AuditFilter {
        actor: Some("key_nobody".into()),
        ..AuditFilter::default()
    })
    .await
    .is_empty());

    // Pages: `after` is exclusive, `limit` caps.
    let mut page = Page {
        after: None,
        limit: 2,
    };
    let mut seen = Vec::new();
    loop {
        let entries = s.list_audit(&AuditFilter::default(), &page).await.unwrap();
        assert!(entries.len() <= 2);
        let Some(last) = entries.last() else { break };
        page.after = Some(last.id.clone());
        seen.extend(ids(entries));
    }
    assert_eq!(seen, ["acc_1", "acc_2", "acc_3", "acc_4", "ent_1"]);
    let none = Page {
        after: None,
        limit: 0,
    };
    assert!(s
        .list_audit(&AuditFilter::default(), &none)
        .await
        .unwrap()
        .is_empty());
    db.finish().await;
}
