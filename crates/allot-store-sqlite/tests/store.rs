//! The store against a real SQLite file: schema, parties, entitlements,
//! lifecycle, idempotency keys and API keys.

mod support;

use std::sync::Arc;

use allot_core::entitlement::{AlertThreshold, ChannelTerm, Period, Status, Unit};
use allot_core::lifecycle::{Action, EditRefused};
use allot_core::Quantity;
use allot_store::model::{ApiKey, Contact, EntitlementFilter, KeyClaim, Page, Product, Role};
use allot_store::{Store, StoreError};
use allot_store_sqlite::{SqliteOptions, SqliteStore};
use chrono::Duration;
use serde_json::json;
use support::*;

fn page(after: Option<&str>, limit: u32) -> Page {
    Page {
        after: after.map(Into::into),
        limit,
    }
}

#[tokio::test]
async fn migrations_apply_once_even_from_two_stores_at_once() {
    let db = TempDb::new("migrate");
    let a = SqliteStore::open(&db.url(), SqliteOptions::default())
        .await
        .unwrap();
    let b = SqliteStore::open(&db.url(), SqliteOptions::default())
        .await
        .unwrap();
    let (ra, rb) = tokio::join!(a.migrate(), b.migrate());
    ra.unwrap();
    rb.unwrap();
    a.migrate().await.unwrap();
    a.ping().await.unwrap();
    assert_eq!(a.backend(), "sqlite");
    let applied: i64 = db
        .raw()
        .query_row("SELECT COUNT(*) FROM schema_migrations", [], |r| r.get(0))
        .unwrap();
    assert_eq!(applied, 3, "every migration, once each");
}

#[tokio::test]
async fn in_memory_and_reader_less_stores_work() {
    for (url, readers) in [("sqlite::memory:", 4), (":memory:", 0)] {
        let options = SqliteOptions {
            readers,
            ..Default::default()
        };
        let store = SqliteStore::open(url, options).await.unwrap();
        store.migrate().await.unwrap();
        store
            .insert_account(&account("acc_1", None), &"tester".into())
            .await
            .unwrap();
        assert!(store.get_account("acc_1").await.unwrap().is_some());
    }
}

#[tokio::test]
async fn parties_round_trip_and_paginate() {
    let (store, _db) = store("parties").await;
    for id in ["acc_a", "acc_b", "acc_c"] {
        store
            .insert_account(&account(id, None), &"tester".into())
            .await
            .unwrap();
    }
    store
        .insert_account(&account("acc_d", Some("acc_a")), &"tester".into())
        .await
        .unwrap();
    assert_eq!(
        store.get_account("acc_d").await.unwrap(),
        Some(account("acc_d", Some("acc_a")))
    );
    assert_eq!(store.get_account("acc_x").await.unwrap(), None);

    let ids = |v: Vec<allot_store::model::Account>| v.into_iter().map(|a| a.id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.list_accounts(&page(None, 2)).await.unwrap()),
        ["acc_a", "acc_b"]
    );
    assert_eq!(
        ids(store.list_accounts(&page(Some("acc_b"), 10)).await.unwrap()),
        ["acc_c", "acc_d"]
    );
    assert!(store
        .list_accounts(&page(None, 0))
        .await
        .unwrap()
        .is_empty());

    let missing_parent = store
        .insert_account(&account("acc_e", Some("acc_nope")), &"tester".into())
        .await;
    assert!(matches!(
        missing_parent,
        Err(StoreError::Conflict {
            code: "reference_missing",
            ..
        })
    ));

    let contact = Contact {
        id: "con_1".into(),
        account_id: "acc_a".into(),
        name: "Ada".into(),
        email: Some("ada@example.com".into()),
        created_at: now(),
    };
    store
        .insert_contact(&contact, &"tester".into())
        .await
        .unwrap();
    assert_eq!(
        store.get_contact("con_1").await.unwrap(),
        Some(contact.clone())
    );
    assert_eq!(
        store
            .list_contacts(Some("acc_a"), &page(None, 10))
            .await
            .unwrap(),
        [contact]
    );
    assert!(store
        .list_contacts(Some("acc_b"), &page(None, 10))
        .await
        .unwrap()
        .is_empty());

    let product = Product {
        id: "prd_1".into(),
        name: "Widget".into(),
        sku: None,
        created_at: now(),
    };
    store
        .insert_product(&product, &"tester".into())
        .await
        .unwrap();
    assert_eq!(
        store.get_product("prd_1").await.unwrap(),
        Some(product.clone())
    );
    assert_eq!(
        store.list_products(&page(None, 5)).await.unwrap(),
        [product]
    );
}

#[tokio::test]
async fn ancestors_walk_up_and_stop_on_a_cycle() {
    let (store, db) = store("ancestors").await;
    store
        .insert_account(&account("acc_a", None), &"tester".into())
        .await
        .unwrap();
    store
        .insert_account(&account("acc_b", Some("acc_a")), &"tester".into())
        .await
        .unwrap();
    store
        .insert_account(&account("acc_c", Some("acc_b")), &"tester".into())
        .await
        .unwrap();
    assert_eq!(
        store.account_ancestors("acc_c").await.unwrap(),
        ["acc_b", "acc_a"]
    );
    assert!(store.account_ancestors("acc_a").await.unwrap().is_empty());
    db.raw()
        .execute(
            "UPDATE accounts SET parent_id = 'acc_c' WHERE id = 'acc_a'",
            [],
        )
        .unwrap();
    assert_eq!(
        store.account_ancestors("acc_c").await.unwrap(),
        ["acc_b", "acc_a"]
    );
}

#[tokio::test]
async fn entitlements_read_back_identical_and_filter() {
    let (store, db) = store("entitlements").await;
    store
        .insert_account(&account("acc_1", None), &"tester".into())
        .await
        .unwrap();
    store
        .insert_account(&account("acc_2", None), &"tester".into())
        .await
        .unwrap();
    let mut rich = terms("acc_1", Some(40));
    rich.unit = Unit::Hours;
    rich.owner = Some("usr_7".into());
    rich.description = Some("Gold, with \"quotes\" and ünïcode".into());
    rich.period = Period::Month;
    rich.rollover = Quantity::from_milli(2_500);
    rich.channels = vec![ChannelTerm {
        channel: "phone".into(),
        total: Quantity::whole(30),
    }];
    rich.alert_thresholds = vec![
        AlertThreshold::PercentUsed(80),
        AlertThreshold::Remaining {
            remaining: Quantity::whole(2),
        },
    ];
    rich.rounding = Some(Quantity::from_milli(250));
    rich.is_default = true;
    let created = store
        .insert_entitlement(&draft("ent_1", rich.clone()), now(), &"tester".into())
        .await
        .unwrap();
    assert_eq!(created.entitlement.terms, rich);
    assert_eq!(created.counters, Default::default());
    let read = store.get_entitlement("ent_1").await.unwrap().unwrap();
    assert_eq!(read, created);
    assert_eq!(read.entitlement.status, Status::Draft);

    let (total, restrict, is_default, unit): (Option<i64>, bool, bool, String) = db
        .raw()
        .query_row(
            "SELECT total_milli, restrict, is_default, unit FROM entitlements WHERE id = 'ent_1'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    assert_eq!(
        (total, restrict, is_default, unit.as_str()),
        (Some(40_000), true, true, "hours")
    );

    store
        .insert_entitlement(
            &draft("ent_2", terms("acc_1", None)),
            now(),
            &"tester".into(),
        )
        .await
        .unwrap();
    store
        .insert_entitlement(
            &draft("ent_3", terms("acc_2", Some(5))),
            now(),
            &"tester".into(),
        )
        .await
        .unwrap();
    let ids = |v: Vec<allot_store::model::EntitlementRecord>| {
        v.into_iter().map(|r| r.entitlement.id).collect::<Vec<_>>()
    };
    let list = |f: EntitlementFilter, p: Page| {
        let store = store.clone();
        async move { ids(store.list_entitlements(&f, &p).await.unwrap()) }
    };
    assert_eq!(
        list(Default::default(), page(None, 10)).await,
        ["ent_1", "ent_2", "ent_3"]
    );
    assert_eq!(
        list(Default::default(), page(Some("ent_1"), 1)).await,
        ["ent_2"]
    );
    let by_account = EntitlementFilter {
        account_id: Some("acc_1".into()),
        ..Default::default()
    };
    assert_eq!(list(by_account, page(None, 10)).await, ["ent_1", "ent_2"]);
    let by_accounts = EntitlementFilter {
        account_ids: Some(vec!["acc_2".into(), "acc_9".into()]),
        ..Default::default()
    };
    assert_eq!(list(by_accounts, page(None, 10)).await, ["ent_3"]);
    let none = EntitlementFilter {
        account_ids: Some(vec![]),
        ..Default::default()
    };
    assert!(list(none, page(None, 10)).await.is_empty());
    let combined = EntitlementFilter {
        unit: Some(Unit::Hours),
        owner: Some("usr_7".into()),
        stored_status: Some(vec![Status::Draft, Status::Active]),
        ..Default::default()
    };
    assert_eq!(list(combined, page(None, 10)).await, ["ent_1"]);
    let active = EntitlementFilter {
        stored_status: Some(vec![Status::Active]),
        ..Default::default()
    };
    assert!(list(active, page(None, 10)).await.is_empty());
    assert!(store.get_entitlement("ent_404").await.unwrap().is_none());

    let orphan = store
        .insert_entitlement(
            &draft("ent_9", terms("acc_404", None)),
            now(),
            &"tester".into(),
        )
        .await;
    assert!(matches!(
        orphan,
        Err(StoreError::Conflict {
            code: "reference_missing",
            ..
        })
    ));
}

#[tokio::test]
async fn one_default_per_account() {
    let (store, _db) = store("default").await;
    store
        .insert_account(&account("acc_1", None), &"tester".into())
        .await
        .unwrap();
    let mut t = terms("acc_1", Some(10));
    t.is_default = true;
    store
        .insert_entitlement(&draft("ent_1", t.clone()), now(), &"tester".into())
        .await
        .unwrap();
    let err = store
        .insert_entitlement(&draft("ent_2", t.clone()), now(), &"tester".into())
        .await
        .unwrap_err();
    match err {
        StoreError::Conflict { code, message } => {
            assert_eq!(code, "default_exists");
            assert_eq!(message, "account acc_1 already has a default entitlement");
        }
        other => panic!("{other:?}"),
    }
    // A non-default draft may not be edited into a second default either.
    t.is_default = false;
    store
        .insert_entitlement(&draft("ent_2", t.clone()), now(), &"tester".into())
        .await
        .unwrap();
    t.is_default = true;
    let err = store
        .update_terms("ent_2", &t, today(), now(), &"tester".into())
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        StoreError::Conflict {
            code: "default_exists",
            ..
        }
    ));
    // Once the first is cancelled, the account may have a new default.
    store
        .transition(
            "ent_1",
            Action::Activate,
            &"usr_1".into(),
            "",
            today(),
            now(),
        )
        .await
        .unwrap();
    store
        .transition("ent_1", Action::Cancel, &"usr_1".into(), "", today(), now())
        .await
        .unwrap();
    store
        .update_terms("ent_2", &t, today(), now(), &"tester".into())
        .await
        .unwrap();
}

#[tokio::test]
async fn only_drafts_take_new_terms() {
    let (store, _db) = store("update").await;
    store
        .insert_account(&account("acc_1", None), &"tester".into())
        .await
        .unwrap();
    store
        .insert_entitlement(
            &draft("ent_1", terms("acc_1", Some(10))),
            now(),
            &"tester".into(),
        )
        .await
        .unwrap();
    let mut t = terms("acc_1", Some(12));
    t.name = "Renamed".into();
    let later = now() + Duration::hours(1);
    let updated = store
        .update_terms("ent_1", &t, today(), later, &"tester".into())
        .await
        .unwrap();
    assert_eq!(updated.entitlement.terms, t);
    assert_eq!(updated.updated_at, later);
    assert_eq!(updated.created_at, now());

    let mut other_unit = t.clone();
    other_unit.unit = Unit::Hours;
    let err = store
        .update_terms("ent_1", &other_unit, today(), now(), &"tester".into())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Edit(EditRefused::UnitChanged)));

    store
        .transition(
            "ent_1",
            Action::Activate,
            &"usr_1".into(),
            "",
            today(),
            now(),
        )
        .await
        .unwrap();
    let err = store
        .update_terms("ent_1", &t, today(), now(), &"tester".into())
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        StoreError::Edit(EditRefused::NotDraft(Status::Active))
    ));
    let stored = store.get_entitlement("ent_1").await.unwrap().unwrap();
    assert_eq!(stored.entitlement.terms, t);

    let err = store
        .update_terms("ent_404", &t, today(), now(), &"tester".into())
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        StoreError::NotFound {
            what: "entitlement",
            ..
        }
    ));
}

#[tokio::test]
async fn transitions_record_history_and_renewal_makes_a_draft() {
    let (store, _db) = store("transition").await;
    store
        .insert_account(&account("acc_1", None), &"tester".into())
        .await
        .unwrap();
    let mut t = terms("acc_1", Some(10));
    t.is_default = true;
    t.start_date = day(2026, 3, 1);
    t.end_date = day(2026, 5, 31);
    store
        .insert_entitlement(&draft("ent_1", t.clone()), now(), &"tester".into())
        .await
        .unwrap();

    // Activated after its end date: straight to expired.
    let r = store
        .transition(
            "ent_1",
            Action::Activate,
            &"usr_1".into(),
            "",
            today(),
            now(),
        )
        .await
        .unwrap();
    assert_eq!(r.entitlement.entitlement.status, Status::Expired);
    assert!(r.renewal.is_none());
    let err = store
        .transition("ent_1", Action::Cancel, &"usr_1".into(), "", today(), now())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Lifecycle(_)));
    let err = store
        .transition(
            "ent_404",
            Action::Cancel,
            &"usr_1".into(),
            "",
            today(),
            now(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }));

    let later = now() + Duration::minutes(5);
    let r = store
        .transition(
            "ent_1",
            Action::Renew,
            &"usr_2".into(),
            "ent_2",
            today(),
            later,
        )
        .await
        .unwrap();
    assert_eq!(r.entitlement.entitlement.status, Status::Expired);
    assert_eq!(r.entitlement.updated_at, now());
    let renewal = r.renewal.unwrap();
    assert_eq!(renewal.entitlement.id, "ent_2");
    assert_eq!(renewal.entitlement.status, Status::Draft);
    assert_eq!(renewal.entitlement.predecessor_id.as_deref(), Some("ent_1"));
    assert_eq!(renewal.entitlement.terms.start_date, today());
    assert_eq!(
        renewal.entitlement.terms.end_date,
        today() + (t.end_date - t.start_date)
    );
    assert!(!renewal.entitlement.terms.is_default);
    assert_eq!(store.get_entitlement("ent_2").await.unwrap(), Some(renewal));

    let history = store.list_transitions("ent_1").await.unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(
        (history[0].from_status, history[0].to_status),
        (Status::Draft, Status::Expired)
    );
    assert_eq!(
        (history[0].action.as_str(), history[0].actor.as_str()),
        ("activate", "usr_1")
    );
    let history = store.list_transitions("ent_2").await.unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(
        (history[0].from_status, history[0].to_status),
        (Status::Draft, Status::Draft)
    );
    assert_eq!(history[0].action, "renew");

    let events = store
        .list_events(Some("ent_1"), &page(None, 10))
        .await
        .unwrap();
    let kinds: Vec<_> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["entitlement.expired", "entitlement.renewed"]);
    assert_eq!(
        events[0].data,
        json!({"from": "draft", "to": "expired", "actor": "usr_1"})
    );
    assert_eq!(events[1].data, json!({"renewal_id": "ent_2"}));
    assert_eq!(
        store
            .list_events(None, &page(None, 10))
            .await
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        store
            .list_events(None, &page(Some(&events[0].id), 10))
            .await
            .unwrap()
            .len(),
        1
    );

    // The renewal activates, deactivates and cancels like any draft.
    for (action, to) in [
        (Action::Activate, Status::Active),
        (Action::Deactivate, Status::Draft),
        (Action::Activate, Status::Active),
        (Action::Cancel, Status::Cancelled),
    ] {
        let r = store
            .transition("ent_2", action, &"usr_1".into(), "", today(), now())
            .await
            .unwrap();
        assert_eq!(r.entitlement.entitlement.status, to);
    }
    assert_eq!(store.list_transitions("ent_2").await.unwrap().len(), 5);
}

#[tokio::test]
async fn sync_statuses_moves_lagging_states_once() {
    let (store, _db) = store("sync").await;
    store
        .insert_account(&account("acc_1", None), &"tester".into())
        .await
        .unwrap();
    let mut t = terms("acc_1", Some(10));
    t.start_date = day(2026, 7, 1);
    t.end_date = day(2026, 7, 31);
    store
        .insert_entitlement(&draft("ent_1", t.clone()), now(), &"tester".into())
        .await
        .unwrap();
    store
        .insert_entitlement(&draft("ent_2", t), now(), &"tester".into())
        .await
        .unwrap();
    store
        .transition(
            "ent_1",
            Action::Activate,
            &"usr_1".into(),
            "",
            today(),
            now(),
        )
        .await
        .unwrap();
    assert_eq!(store.sync_statuses(today(), now()).await.unwrap(), 0);

    let (july, july_now) = (day(2026, 7, 2), now() + Duration::days(31));
    assert_eq!(store.sync_statuses(july, july_now).await.unwrap(), 1);
    assert_eq!(store.sync_statuses(july, july_now).await.unwrap(), 0);
    let r = store.get_entitlement("ent_1").await.unwrap().unwrap();
    assert_eq!(r.entitlement.status, Status::Active);
    assert_eq!(
        store
            .get_entitlement("ent_2")
            .await
            .unwrap()
            .unwrap()
            .entitlement
            .status,
        Status::Draft
    );

    // Two runs at once still record the change once.
    // (A later `now`: event ids only sort by time to the millisecond.)
    let (august, august_now) = (day(2026, 8, 1), july_now + Duration::days(30));
    let (a, b) = tokio::join!(
        store.sync_statuses(august, august_now),
        store.sync_statuses(august, august_now)
    );
    assert_eq!(a.unwrap() + b.unwrap(), 1);
    let history = store.list_transitions("ent_1").await.unwrap();
    let steps: Vec<_> = history
        .iter()
        .map(|t| {
            (
                t.from_status,
                t.to_status,
                t.action.as_str(),
                t.actor.as_str(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            (Status::Draft, Status::Waiting, "activate", "usr_1"),
            (Status::Waiting, Status::Active, "dates", "system"),
            (Status::Active, Status::Expired, "dates", "system"),
        ]
    );
    let kinds: Vec<_> = store
        .list_events(Some("ent_1"), &page(None, 10))
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        kinds,
        [
            "entitlement.waiting",
            "entitlement.activated",
            "entitlement.expired"
        ]
    );
}

#[tokio::test]
async fn idempotency_keys_claim_finish_and_expire() {
    let (store, _db) = store("keys").await;
    let stale_before = now() - Duration::minutes(5);
    let claim = |key: &'static str, fp: &'static str, at| {
        let store = store.clone();
        async move {
            store
                .claim_key("key_1", key, fp, at, at - Duration::minutes(5))
                .await
                .unwrap()
        }
    };
    assert_eq!(claim("k1", "fp", now()).await, KeyClaim::Claimed);
    let KeyClaim::Existing(pending) = claim("k1", "fp", now()).await else {
        panic!()
    };
    assert_eq!(
        (pending.fingerprint.as_str(), pending.answer.as_ref()),
        ("fp", None)
    );
    assert_eq!(pending.created_at, now());

    store
        .finish_key("key_1", "k1", &json!({"status": 201}))
        .await
        .unwrap();
    let KeyClaim::Existing(done) = claim("k1", "other", now()).await else {
        panic!()
    };
    assert_eq!(done.answer, Some(json!({"status": 201})));
    assert_eq!(store.get_key("key_1", "k1").await.unwrap(), Some(done));
    // Finished keys are never taken over, however old.
    assert!(matches!(
        claim("k1", "fp", now() + Duration::days(1)).await,
        KeyClaim::Existing(_)
    ));

    // An unfinished claim is taken over once stale, not before.
    assert_eq!(claim("k2", "fp", now()).await, KeyClaim::Claimed);
    assert!(matches!(
        claim("k2", "fp2", now() + Duration::minutes(1)).await,
        KeyClaim::Existing(_)
    ));
    assert_eq!(
        claim("k2", "fp2", now() + Duration::minutes(6)).await,
        KeyClaim::Claimed
    );
    assert_eq!(
        store
            .get_key("key_1", "k2")
            .await
            .unwrap()
            .unwrap()
            .fingerprint,
        "fp2"
    );

    // Abandon drops only unfinished claims.
    store.abandon_key("key_1", "k2").await.unwrap();
    store.abandon_key("key_1", "k1").await.unwrap();
    assert!(store.get_key("key_1", "k2").await.unwrap().is_none());
    assert!(store.get_key("key_1", "k1").await.unwrap().is_some());
    assert_eq!(
        store
            .claim_key("key_2", "k1", "fp", now(), stale_before)
            .await
            .unwrap(),
        KeyClaim::Claimed
    );

    assert_eq!(
        store
            .purge_keys(now() + Duration::seconds(1))
            .await
            .unwrap(),
        2
    );
    assert!(store.get_key("key_1", "k1").await.unwrap().is_none());
}

#[tokio::test]
async fn api_keys_by_hash_and_revocation() {
    let (store, _db) = store("api_keys").await;
    store
        .insert_account(&account("acc_1", None), &"tester".into())
        .await
        .unwrap();
    assert_eq!(store.count_api_keys().await.unwrap(), 0);
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
    store
        .insert_api_key(&admin, "hash_a", &"tester".into())
        .await
        .unwrap();
    store
        .insert_api_key(&customer, "hash_c", &"tester".into())
        .await
        .unwrap();
    assert_eq!(
        store.api_key_by_hash("hash_c").await.unwrap(),
        Some(customer.clone())
    );
    assert_eq!(store.api_key_by_hash("hash_x").await.unwrap(), None);
    assert_eq!(store.count_api_keys().await.unwrap(), 2);

    let first = now() + Duration::hours(1);
    assert!(store
        .revoke_api_key("key_c", first, &"tester".into())
        .await
        .unwrap());
    assert!(store
        .revoke_api_key("key_c", first + Duration::hours(1), &"tester".into())
        .await
        .unwrap());
    assert!(!store
        .revoke_api_key("key_x", first, &"tester".into())
        .await
        .unwrap());
    let revoked = store.api_key_by_hash("hash_c").await.unwrap().unwrap();
    assert_eq!(revoked.revoked_at, Some(first));
    assert_eq!(store.list_api_keys().await.unwrap(), [admin, revoked]);
    assert_eq!(store.count_api_keys().await.unwrap(), 2);
}

#[tokio::test]
async fn a_store_shared_across_tasks_reads_its_own_writes() {
    let (store, _db) = store("shared").await;
    let store: Arc<dyn Store> = store;
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let id = format!("acc_{i:02}");
                store
                    .insert_account(&account(&id, None), &"tester".into())
                    .await
                    .unwrap();
                store.get_account(&id).await.unwrap().unwrap()
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(
        store.list_accounts(&page(None, 100)).await.unwrap().len(),
        16
    );
}
