//! Schema, parties and entitlements against a real PostgreSQL.

mod common;

use allot_core::entitlement::{Status, Unit};
use allot_core::lifecycle::{Action, EditRefused};
use allot_store::model::{Contact, EntitlementFilter, Page, Product};
use allot_store::{Store, StoreError};
use common::*;

fn page(after: Option<&str>, limit: u32) -> Page {
    Page {
        after: after.map(Into::into),
        limit,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_are_idempotent_and_safe_to_race() {
    let Some(db) = fresh().await else { return };
    db.store.migrate().await.unwrap();
    let other = db.instance().await;
    let (a, b) = tokio::join!(db.store.migrate(), other.migrate());
    a.unwrap();
    b.unwrap();
    let applied = db
        .sql()
        .await
        .query("SELECT name FROM schema_migrations ORDER BY name", &[])
        .await
        .unwrap();
    let names: Vec<String> = applied.iter().map(|r| r.get(0)).collect();
    assert_eq!(names, ["0001_initial", "0002_cases", "0003_audit"]);
    db.store.ping().await.unwrap();
    assert_eq!(db.store.backend(), "postgres");
    db.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parties_round_trip_and_page() {
    let Some(db) = fresh().await else { return };
    let s = &db.store;
    for id in ["acc_a", "acc_b", "acc_c"] {
        s.insert_account(&account(id, None), &"tester".into())
            .await
            .unwrap();
    }
    assert_eq!(
        s.get_account("acc_b").await.unwrap(),
        Some(account("acc_b", None))
    );
    assert_eq!(s.get_account("acc_x").await.unwrap(), None);
    let first: Vec<String> = s
        .list_accounts(&page(None, 2))
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.id)
        .collect();
    assert_eq!(first, ["acc_a", "acc_b"]);
    let rest = s.list_accounts(&page(Some("acc_b"), 2)).await.unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].id, "acc_c");
    assert!(s.list_accounts(&page(None, 0)).await.unwrap().is_empty());

    let missing_parent = s
        .insert_account(&account("acc_orphan", Some("acc_none")), &"tester".into())
        .await;
    assert!(
        matches!(
            missing_parent,
            Err(StoreError::Conflict {
                code: "reference_missing",
                ..
            })
        ),
        "{missing_parent:?}"
    );

    let contact = Contact {
        id: "con_1".into(),
        account_id: "acc_a".into(),
        name: "Ada".into(),
        email: Some("ada@example.com".into()),
        created_at: now(),
    };
    s.insert_contact(&contact, &"tester".into()).await.unwrap();
    assert_eq!(s.get_contact("con_1").await.unwrap(), Some(contact.clone()));
    assert_eq!(
        s.list_contacts(Some("acc_a"), &page(None, 10))
            .await
            .unwrap(),
        vec![contact]
    );
    assert!(s
        .list_contacts(Some("acc_b"), &page(None, 10))
        .await
        .unwrap()
        .is_empty());
    let product = Product {
        id: "prd_1".into(),
        name: "Support".into(),
        sku: None,
        created_at: now(),
    };
    s.insert_product(&product, &"tester".into()).await.unwrap();
    assert_eq!(s.get_product("prd_1").await.unwrap(), Some(product.clone()));
    assert_eq!(
        s.list_products(&page(None, 10)).await.unwrap(),
        vec![product]
    );
    db.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ancestors_nearest_first_and_cycles_end() {
    let Some(db) = fresh().await else { return };
    let s = &db.store;
    s.insert_account(&account("acc_root", None), &"tester".into())
        .await
        .unwrap();
    s.insert_account(&account("acc_mid", Some("acc_root")), &"tester".into())
        .await
        .unwrap();
    s.insert_account(&account("acc_leaf", Some("acc_mid")), &"tester".into())
        .await
        .unwrap();
    assert_eq!(
        s.account_ancestors("acc_leaf").await.unwrap(),
        ["acc_mid", "acc_root"]
    );
    assert!(s.account_ancestors("acc_root").await.unwrap().is_empty());
    // Only possible by hand: the API never makes a cycle.
    db.sql()
        .await
        .execute(
            "UPDATE accounts SET parent_id = 'acc_leaf' WHERE id = 'acc_root'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        s.account_ancestors("acc_leaf").await.unwrap(),
        ["acc_mid", "acc_root"]
    );
    db.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entitlement_reads_back_identical() {
    let Some(db) = fresh().await else { return };
    let s = &db.store;
    s.insert_account(&account("acc_1", None), &"tester".into())
        .await
        .unwrap();
    let mut t = terms("acc_1", Some(40));
    t.channels = vec![allot_core::entitlement::ChannelTerm {
        channel: "phone".into(),
        total: "12.5".parse().unwrap(),
    }];
    t.alert_thresholds = vec![allot_core::entitlement::AlertThreshold::PercentUsed(80)];
    t.rounding = Some("0.25".parse().unwrap());
    let inserted = s
        .insert_entitlement(&draft("ent_1", t.clone()), now(), &"tester".into())
        .await
        .unwrap();
    let read = s.get_entitlement("ent_1").await.unwrap().unwrap();
    assert_eq!(read, inserted);
    assert_eq!(read.entitlement.terms, t);
    assert_eq!(read.entitlement.status, Status::Draft);
    assert_eq!(read.counters, Default::default());
    assert_eq!(read.created_at, now());
    assert_eq!(s.get_entitlement("ent_none").await.unwrap(), None);
    let missing_account = s
        .insert_entitlement(
            &draft("ent_2", terms("acc_none", None)),
            now(),
            &"tester".into(),
        )
        .await;
    assert!(matches!(
        missing_account,
        Err(StoreError::Conflict {
            code: "reference_missing",
            ..
        })
    ));
    db.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_default_per_account() {
    let Some(db) = fresh().await else { return };
    let s = &db.store;
    s.insert_account(&account("acc_1", None), &"tester".into())
        .await
        .unwrap();
    let mut t = terms("acc_1", Some(10));
    t.is_default = true;
    s.insert_entitlement(&draft("ent_1", t.clone()), now(), &"tester".into())
        .await
        .unwrap();
    match s
        .insert_entitlement(&draft("ent_2", t.clone()), now(), &"tester".into())
        .await
    {
        Err(StoreError::Conflict { code, message }) => {
            assert_eq!(code, "default_exists");
            assert_eq!(message, "account acc_1 already has a default entitlement");
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    // Nothing of the refused one was written.
    assert_eq!(s.get_entitlement("ent_2").await.unwrap(), None);
    // A second non-default is fine; making it default through an edit is not.
    let mut plain = t.clone();
    plain.is_default = false;
    s.insert_entitlement(&draft("ent_3", plain), now(), &"tester".into())
        .await
        .unwrap();
    let edit = s
        .update_terms("ent_3", &t, today(), now(), &"tester".into())
        .await;
    assert!(matches!(
        edit,
        Err(StoreError::Conflict {
            code: "default_exists",
            ..
        })
    ));
    // Once the first is cancelled the account may have another default.
    s.transition(
        "ent_1",
        Action::Activate,
        &"tester".into(),
        "",
        today(),
        now(),
    )
    .await
    .unwrap();
    s.transition(
        "ent_1",
        Action::Cancel,
        &"tester".into(),
        "",
        today(),
        now(),
    )
    .await
    .unwrap();
    s.update_terms("ent_3", &t, today(), now(), &"tester".into())
        .await
        .unwrap();
    db.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terms_edit_only_drafts() {
    let Some(db) = fresh().await else { return };
    let s = &db.store;
    s.insert_account(&account("acc_1", None), &"tester".into())
        .await
        .unwrap();
    s.insert_entitlement(
        &draft("ent_1", terms("acc_1", Some(10))),
        now(),
        &"tester".into(),
    )
    .await
    .unwrap();
    let mut edited = terms("acc_1", Some(25));
    edited.name = "Renamed".into();
    edited.owner = None;
    let later = now() + chrono::Duration::minutes(5);
    let record = s
        .update_terms("ent_1", &edited, today(), later, &"tester".into())
        .await
        .unwrap();
    assert_eq!(record.entitlement.terms, edited);
    assert_eq!(record.updated_at, later);
    assert_eq!(s.get_entitlement("ent_1").await.unwrap().unwrap(), record);
    // The copy columns follow the terms.
    let row = db
        .sql()
        .await
        .query_one(
            "SELECT total_milli, owner FROM entitlements WHERE id = 'ent_1'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, Option<i64>>(0), Some(25_000));
    assert_eq!(row.get::<_, Option<String>>(1), None);

    let mut unit_changed = edited.clone();
    unit_changed.unit = Unit::Hours;
    assert!(matches!(
        s.update_terms("ent_1", &unit_changed, today(), now(), &"tester".into())
            .await,
        Err(StoreError::Edit(EditRefused::UnitChanged))
    ));

    s.transition(
        "ent_1",
        Action::Activate,
        &"tester".into(),
        "",
        today(),
        now(),
    )
    .await
    .unwrap();
    let refused = s
        .update_terms(
            "ent_1",
            &terms("acc_1", Some(99)),
            today(),
            now(),
            &"tester".into(),
        )
        .await;
    assert!(
        matches!(
            refused,
            Err(StoreError::Edit(EditRefused::NotDraft(Status::Active)))
        ),
        "{refused:?}"
    );
    assert_eq!(
        s.get_entitlement("ent_1")
            .await
            .unwrap()
            .unwrap()
            .entitlement
            .terms,
        edited
    );
    assert!(matches!(
        s.update_terms("ent_none", &edited, today(), now(), &"tester".into())
            .await,
        Err(StoreError::NotFound {
            what: "entitlement",
            ..
        })
    ));
    db.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entitlement_filters_combine() {
    let Some(db) = fresh().await else { return };
    let s = &db.store;
    for a in ["acc_1", "acc_2", "acc_3"] {
        s.insert_account(&account(a, None), &"tester".into())
            .await
            .unwrap();
    }
    let mut hours = terms("acc_2", None);
    hours.unit = Unit::Hours;
    hours.owner = None;
    s.insert_entitlement(
        &draft("ent_1", terms("acc_1", Some(1))),
        now(),
        &"tester".into(),
    )
    .await
    .unwrap();
    s.insert_entitlement(&draft("ent_2", hours), now(), &"tester".into())
        .await
        .unwrap();
    s.insert_entitlement(
        &draft("ent_3", terms("acc_3", Some(3))),
        now(),
        &"tester".into(),
    )
    .await
    .unwrap();
    s.transition(
        "ent_3",
        Action::Activate,
        &"tester".into(),
        "",
        today(),
        now(),
    )
    .await
    .unwrap();
    let ids = |records: Vec<allot_store::model::EntitlementRecord>| -> Vec<String> {
        records.into_iter().map(|r| r.entitlement.id).collect()
    };
    let all = page(None, 10);
    assert_eq!(
        ids(s
            .list_entitlements(&Default::default(), &all)
            .await
            .unwrap()),
        ["ent_1", "ent_2", "ent_3"]
    );
    let by_account = EntitlementFilter {
        account_id: Some("acc_2".into()),
        ..Default::default()
    };
    assert_eq!(
        ids(s.list_entitlements(&by_account, &all).await.unwrap()),
        ["ent_2"]
    );
    let pooled = EntitlementFilter {
        account_ids: Some(vec!["acc_1".into(), "acc_3".into()]),
        ..Default::default()
    };
    assert_eq!(
        ids(s.list_entitlements(&pooled, &all).await.unwrap()),
        ["ent_1", "ent_3"]
    );
    let units_owned = EntitlementFilter {
        unit: Some(Unit::Units),
        owner: Some("owner_1".into()),
        stored_status: Some(vec![Status::Active, Status::Waiting]),
        ..Default::default()
    };
    assert_eq!(
        ids(s.list_entitlements(&units_owned, &all).await.unwrap()),
        ["ent_3"]
    );
    let everything = EntitlementFilter {
        account_id: Some("acc_1".into()),
        account_ids: Some(vec!["acc_1".into()]),
        unit: Some(Unit::Units),
        owner: Some("owner_1".into()),
        stored_status: Some(vec![Status::Draft]),
    };
    assert_eq!(
        ids(s.list_entitlements(&everything, &all).await.unwrap()),
        ["ent_1"]
    );
    assert_eq!(
        ids(s
            .list_entitlements(&Default::default(), &page(Some("ent_1"), 1))
            .await
            .unwrap()),
        ["ent_2"]
    );
    assert!(s
        .list_entitlements(&Default::default(), &page(None, 0))
        .await
        .unwrap()
        .is_empty());
    db.finish().await;
}
