//! The audit trail: one row per change, in the change's transaction, and
//! none for a change that did not happen.

use allot_core::cases::CaseAction;
use allot_core::entitlement::Status;
use allot_core::lifecycle::Action;
use allot_core::Quantity;
use allot_store::audit::{snapshot, AuditContext, AuditEntry, AuditFilter};
use allot_store::model::{ApiKey, Page, Role};
use allot_store::plan::Command;
use allot_store::StoreError;
use chrono::Duration;
use serde_json::json;

use crate::fixtures::*;
use crate::TestDatabase;

fn admin() -> AuditContext {
    AuditContext {
        actor: "key_admin".into(),
        role: "admin".into(),
        request_id: Some("req_1".into()),
    }
}

pub async fn each_change_writes_one_audit_row(db: &TestDatabase) {
    let store = db.store();
    let s = store.as_ref();

    // An account.
    let acc = account("acc_1", None);
    insert_account(s, &acc, &admin()).await.unwrap();
    let entry = one_new_audit(s, "acc_1", 0).await;
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
    let orphan = account("acc_orphan", Some("acc_none"));
    assert!(insert_account(s, &orphan, &admin()).await.is_err());
    assert!(audit_of(s, "acc_orphan").await.is_empty());

    // An entitlement: created, edited, activated.
    let created = insert_draft(s, "ent_1", terms("acc_1", Some(10)), now(), &admin())
        .await
        .unwrap();
    let entry = one_new_audit(s, "ent_1", 0).await;
    assert_eq!(entry.action, "entitlement.create");
    assert_eq!((entry.before, entry.after), (None, snapshot(&created)));

    let mut edited = terms("acc_1", Some(25));
    edited.name = "Renamed".into();
    let later = now() + Duration::minutes(5);
    let updated = edit_as(s, "ent_1", &edited, later, &admin()).await.unwrap();
    let entry = one_new_audit(s, "ent_1", 1).await;
    assert_eq!(
        (entry.action.as_str(), entry.target_type.as_str()),
        ("entitlement.update", "entitlement")
    );
    assert_eq!(
        (entry.before, entry.after),
        (snapshot(&created), snapshot(&updated))
    );
    assert_eq!(entry.at, later);

    let activated = transition(
        s,
        "ent_1",
        Action::Activate,
        &actor("key_manager"),
        "",
        later,
    )
    .await
    .unwrap()
    .entitlement;
    let entry = one_new_audit(s, "ent_1", 2).await;
    assert_eq!(entry.action, "entitlement.activate");
    assert_eq!(entry.actor, "key_manager");
    assert_eq!(
        (entry.before, entry.after),
        (snapshot(&updated), snapshot(&activated))
    );

    // A refused edit and a refused action write nothing.
    assert!(matches!(
        edit_as(s, "ent_1", &edited, later, &admin()).await,
        Err(StoreError::Edit(_))
    ));
    assert!(matches!(
        transition(s, "ent_1", Action::Renew, &admin(), "ent_2", later).await,
        Err(StoreError::Lifecycle(_))
    ));
    assert_eq!(audit_of(s, "ent_1").await.len(), 3);

    // A use in a batch: the counters before and after.
    let answers = apply_at(s, &[usage("ent_1", 2, None)], later).await;
    assert!(applied(&answers[0]), "{answers:?}");
    let used = entitlement(s, "ent_1").await;
    let entry = one_new_audit(s, "ent_1", 3).await;
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
    let answers = apply_at(s, &[usage("ent_1", 100, None)], later).await;
    assert!(!applied(&answers[0]), "{answers:?}");
    assert_eq!(audit_of(s, "ent_1").await.len(), 4);

    // Cancel, then renew: the renewal is the new record.
    let cancelled = transition(s, "ent_1", Action::Cancel, &admin(), "", later)
        .await
        .unwrap()
        .entitlement;
    let entry = one_new_audit(s, "ent_1", 4).await;
    assert_eq!(entry.action, "entitlement.cancel");
    assert_eq!(
        (entry.before, entry.after),
        (snapshot(&used), snapshot(&cancelled))
    );
    let renewed = transition(s, "ent_1", Action::Renew, &admin(), "ent_2", later)
        .await
        .unwrap();
    let entry = one_new_audit(s, "ent_1", 5).await;
    assert_eq!(entry.action, "entitlement.renew");
    assert_eq!(entry.before, snapshot(&cancelled));
    assert_eq!(
        entry.after,
        Some(json!({ "renewal": snapshot(&renewed.renewal.unwrap()) }))
    );
    assert!(audit_of(s, "ent_2").await.is_empty());
}

pub async fn sync_and_api_keys_are_audited(db: &TestDatabase) {
    let store = db.store();
    let s = store.as_ref();
    insert_account(s, &account("acc_1", None), &admin())
        .await
        .unwrap();
    let mut t = terms("acc_1", Some(10));
    t.start_date = day(2026, 3, 20);
    insert_draft(s, "ent_1", t, now(), &admin()).await.unwrap();
    transition(s, "ent_1", Action::Activate, &admin(), "", now())
        .await
        .unwrap();
    let day_21 = at(2026, 3, 21);
    assert_eq!(sync(s, day_21).await, 1);
    assert_eq!(sync(s, day_21).await, 0);
    let entry = one_new_audit(s, "ent_1", 2).await;
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
    s.insert_api_key(&key, "secret_hash_value", &admin(), None)
        .await
        .unwrap();
    let entry = one_new_audit(s, "key_c", 0).await;
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

    let t1 = now() + Duration::minutes(1);
    assert!(s.revoke_api_key("key_c", t1, &admin(), None).await.unwrap());
    let revoked = ApiKey {
        revoked_at: Some(t1),
        ..key.clone()
    };
    let entry = one_new_audit(s, "key_c", 1).await;
    assert_eq!(entry.action, "api_key.revoke");
    assert_eq!(
        (entry.before, entry.after),
        (snapshot(&key), snapshot(&revoked))
    );
    // Revoking again changes nothing, and a missing key is not audited.
    assert!(s.revoke_api_key("key_c", t1, &admin(), None).await.unwrap());
    assert!(!s
        .revoke_api_key("key_none", t1, &admin(), None)
        .await
        .unwrap());
    assert_eq!(audit_of(s, "key_c").await.len(), 2);
    assert!(audit_of(s, "key_none").await.is_empty());
}

pub async fn list_audit_filters_and_pages(db: &TestDatabase) {
    let store = db.store();
    let s = store.as_ref();
    // Accounts 1..=4 created on March 1st..4th, by a, b, a, b.
    for n in 1..=4u32 {
        let mut acc = account(&format!("acc_{n}"), None);
        acc.created_at = at(2026, 3, n);
        let by = if n % 2 == 1 { "key_a" } else { "key_b" };
        insert_account(s, &acc, &actor(by)).await.unwrap();
    }
    insert_draft(
        s,
        "ent_1",
        terms("acc_1", Some(10)),
        at(2026, 3, 5),
        &actor("key_a"),
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
    let mut page = page(None, 2);
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
}

pub async fn the_write_path_audits_cases_and_reservations(db: &TestDatabase) {
    let store = db.store();
    let s = store.as_ref();
    cases_entitlement(s, "acc_1", "ent_c", 3).await;

    // A case opened, then resolved: the record before and after.
    let answers = apply(s, &[open_case(case("cas_1", "acc_1", "ent_c"))]).await;
    assert!(applied(&answers[0]), "{answers:?}");
    let opened = s.get_case("cas_1").await.unwrap().unwrap();
    let entry = one_new_audit(s, "cas_1", 0).await;
    assert_eq!(
        (
            entry.action.as_str(),
            entry.target_type.as_str(),
            entry.actor.as_str()
        ),
        ("case.open", "case", "key_test")
    );
    assert_eq!((entry.before, entry.after), (None, snapshot(&opened)));
    let answers = apply(s, &[case_action("cas_1", CaseAction::Resolve)]).await;
    assert!(applied(&answers[0]), "{answers:?}");
    let resolved = s.get_case("cas_1").await.unwrap().unwrap();
    let entry = one_new_audit(s, "cas_1", 1).await;
    assert_eq!(entry.action, "case.resolve");
    assert_eq!(
        (entry.before, entry.after),
        (snapshot(&opened), snapshot(&resolved))
    );
    // A refused case action writes nothing.
    let answers = apply(s, &[case_action("cas_1", CaseAction::Resolve)]).await;
    assert!(!applied(&answers[0]), "{answers:?}");
    assert_eq!(audit_of(s, "cas_1").await.len(), 2);

    // A hold, then its commit; a hold that does not fit is not audited.
    let expires = now() + Duration::hours(1);
    let answers = apply(
        s,
        &[
            hold("res_1", "ent_c", 1, expires),
            hold("res_2", "ent_c", 5, expires),
        ],
    )
    .await;
    assert_eq!(
        answers.iter().map(applied).collect::<Vec<_>>(),
        [true, false]
    );
    let held = s.get_reservation("res_1").await.unwrap().unwrap();
    let entry = one_new_audit(s, "res_1", 0).await;
    assert_eq!(
        (entry.action.as_str(), entry.target_type.as_str()),
        ("reservation.hold", "reservation")
    );
    assert_eq!((entry.before, entry.after), (None, snapshot(&held)));
    assert!(audit_of(s, "res_2").await.is_empty());
    let answers = apply(
        s,
        &[item(Command::Commit {
            reservation_id: "res_1".into(),
            actual: Some(Quantity::whole(1)),
        })],
    )
    .await;
    assert!(applied(&answers[0]), "{answers:?}");
    let committed = s.get_reservation("res_1").await.unwrap().unwrap();
    let entry = one_new_audit(s, "res_1", 1).await;
    assert_eq!(entry.action, "reservation.commit");
    assert_eq!(
        (entry.before, entry.after),
        (snapshot(&held), snapshot(&committed))
    );

    // A replay changes nothing and is not audited again.
    let keyed = usage("ent_c", 1, Some("k1"));
    assert!(applied(&apply(s, std::slice::from_ref(&keyed)).await[0]));
    let audited = audit_of(s, "ent_c").await.len();
    let replay = apply(s, &[keyed]).await;
    assert!(
        matches!(&replay[0], allot_store::plan::ItemAnswer::Replayed { .. }),
        "{replay:?}"
    );
    assert_eq!(audit_of(s, "ent_c").await.len(), audited);
}
