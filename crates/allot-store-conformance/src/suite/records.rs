//! Schema, parties and entitlements.

use allot_core::entitlement::{AlertThreshold, ChannelTerm, Period, Status, Unit};
use allot_core::lifecycle::{Action, EditRefused};
use allot_core::Quantity;
use allot_store::model::{Contact, EntitlementFilter, EntitlementRecord, Page, Product};
use allot_store::{Store, StoreError};
use chrono::Duration;

use crate::fixtures::*;
use crate::TestDatabase;

pub async fn migrations_apply_once_even_when_raced(db: &TestDatabase) {
    let store = db.store();
    store.migrate().await.unwrap();
    let other = db.instance().await;
    let (a, b) = tokio::join!(store.migrate(), other.migrate());
    a.unwrap();
    b.unwrap();
    let applied: Vec<Option<String>> = db
        .query_text("SELECT name FROM schema_migrations ORDER BY name")
        .await
        .into_iter()
        .map(|mut row| row.remove(0))
        .collect();
    let shipped: Vec<Option<String>> = db.migrations().into_iter().map(Some).collect();
    assert!(!shipped.is_empty());
    assert_eq!(applied, shipped, "every migration, once each");
    store.ping().await.unwrap();
    assert_eq!(store.backend(), db.backend);
}

pub async fn parties_round_trip_and_page(db: &TestDatabase) {
    let store = db.store();
    let s = store.as_ref();
    for id in ["acc_a", "acc_b", "acc_c"] {
        add_account(s, id, None).await;
    }
    let child = add_account(s, "acc_d", Some("acc_a")).await;
    assert_eq!(s.get_account("acc_d").await.unwrap(), Some(child));
    assert_eq!(s.get_account("acc_x").await.unwrap(), None);
    let ids = |page: Page| async move {
        s.list_accounts(&page)
            .await
            .unwrap()
            .into_iter()
            .map(|a| a.id)
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(page(None, 2)).await, ["acc_a", "acc_b"]);
    assert_eq!(ids(page(Some("acc_b"), 10)).await, ["acc_c", "acc_d"]);
    assert!(ids(page(None, 0)).await.is_empty());

    let missing_parent = insert_account(s, &account("acc_e", Some("acc_none")), &tester()).await;
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
    assert_eq!(s.get_account("acc_e").await.unwrap(), None);

    let contact = Contact {
        id: "con_1".into(),
        account_id: "acc_a".into(),
        name: "Ada".into(),
        email: Some("ada@example.com".into()),
        created_at: now(),
    };
    s.insert_contact(&contact, &tester(), None).await.unwrap();
    assert_eq!(s.get_contact("con_1").await.unwrap(), Some(contact.clone()));
    assert_eq!(
        s.list_contacts(Some("acc_a"), &page(None, 10))
            .await
            .unwrap(),
        [contact]
    );
    assert!(s
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
    s.insert_product(&product, &tester(), None).await.unwrap();
    assert_eq!(s.get_product("prd_1").await.unwrap(), Some(product.clone()));
    assert_eq!(s.list_products(&page(None, 5)).await.unwrap(), [product]);
}

pub async fn ancestors_nearest_first_and_cycles_end(db: &TestDatabase) {
    let store = db.store();
    let s = store.as_ref();
    add_account(s, "acc_root", None).await;
    add_account(s, "acc_mid", Some("acc_root")).await;
    add_account(s, "acc_leaf", Some("acc_mid")).await;
    assert_eq!(
        s.account_ancestors("acc_leaf").await.unwrap(),
        ["acc_mid", "acc_root"]
    );
    assert!(s.account_ancestors("acc_root").await.unwrap().is_empty());
    // Only possible by hand: the API never makes a cycle.
    db.execute("UPDATE accounts SET parent_id = 'acc_leaf' WHERE id = 'acc_root'")
        .await;
    assert_eq!(
        s.account_ancestors("acc_leaf").await.unwrap(),
        ["acc_mid", "acc_root"]
    );
}

pub async fn entitlement_reads_back_identical(db: &TestDatabase) {
    let store = db.store();
    let s = store.as_ref();
    add_account(s, "acc_1", None).await;
    let mut rich = terms("acc_1", Some(40));
    rich.owner = Some("usr_7".into());
    rich.description = Some("Gold, with \"quotes\" and ünïcode".into());
    rich.period = Period::Month;
    rich.rollover = Quantity::from_milli(2_500);
    rich.channels = vec![ChannelTerm {
        channel: "phone".into(),
        total: "12.5".parse().unwrap(),
    }];
    rich.alert_thresholds = vec![
        AlertThreshold::PercentUsed(80),
        AlertThreshold::Remaining {
            remaining: Quantity::whole(2),
        },
    ];
    rich.rounding = Some("0.25".parse().unwrap());
    rich.product_ids = vec!["prd_1".into()];
    rich.sla = Some("4h".into());
    rich.is_default = true;
    let created = add_draft(s, "ent_1", rich.clone()).await;
    assert_eq!(created.entitlement.terms, rich);
    assert_eq!(created.entitlement.status, Status::Draft);
    assert_eq!(created.counters, Default::default());
    assert_eq!((created.created_at, created.updated_at), (now(), now()));
    assert_eq!(entitlement(s, "ent_1").await, created);
    assert_eq!(s.get_entitlement("ent_none").await.unwrap(), None);

    // The copy columns beside the terms.
    let copies = db
        .query_text(
            "SELECT CAST(total_milli AS TEXT), unit, owner, \
             CASE WHEN is_default THEN 'yes' ELSE 'no' END \
             FROM entitlements WHERE id = 'ent_1'",
        )
        .await;
    let text = |v: &str| Some(v.to_string());
    assert_eq!(
        copies,
        [[text("40000"), text("hours"), text("usr_7"), text("yes")]]
    );

    let orphan = insert_draft(s, "ent_2", terms("acc_none", None), now(), &tester()).await;
    assert!(
        matches!(
            orphan,
            Err(StoreError::Conflict {
                code: "reference_missing",
                ..
            })
        ),
        "{orphan:?}"
    );
    assert_eq!(s.get_entitlement("ent_2").await.unwrap(), None);
}

pub async fn entitlement_filters_combine(db: &TestDatabase) {
    let store = db.store();
    let s = store.as_ref();
    for a in ["acc_1", "acc_2", "acc_3"] {
        add_account(s, a, None).await;
    }
    let owned = |account_id: &str, total| {
        let mut t = terms(account_id, total);
        t.owner = Some("owner_1".into());
        t
    };
    let mut visits = terms("acc_2", None);
    visits.unit = Unit::Visits;
    add_draft(s, "ent_1", owned("acc_1", Some(1))).await;
    add_draft(s, "ent_2", visits).await;
    add_draft(s, "ent_3", owned("acc_3", Some(3))).await;
    activate(s, "ent_3").await;
    let ids = |filter: EntitlementFilter, page: Page| async move {
        s.list_entitlements(&filter, &page)
            .await
            .unwrap()
            .into_iter()
            .map(|r: EntitlementRecord| r.entitlement.id)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        ids(Default::default(), all()).await,
        ["ent_1", "ent_2", "ent_3"]
    );
    assert_eq!(
        ids(Default::default(), page(Some("ent_1"), 1)).await,
        ["ent_2"]
    );
    assert!(ids(Default::default(), page(None, 0)).await.is_empty());
    let by_account = EntitlementFilter {
        account_id: Some("acc_2".into()),
        ..Default::default()
    };
    assert_eq!(ids(by_account, all()).await, ["ent_2"]);
    let pooled = EntitlementFilter {
        account_ids: Some(vec!["acc_1".into(), "acc_3".into(), "acc_9".into()]),
        ..Default::default()
    };
    assert_eq!(ids(pooled, all()).await, ["ent_1", "ent_3"]);
    let no_accounts = EntitlementFilter {
        account_ids: Some(vec![]),
        ..Default::default()
    };
    assert!(ids(no_accounts, all()).await.is_empty());
    let hours_owned_live = EntitlementFilter {
        unit: Some(Unit::Hours),
        owner: Some("owner_1".into()),
        stored_status: Some(vec![Status::Active, Status::Waiting]),
        ..Default::default()
    };
    assert_eq!(ids(hours_owned_live, all()).await, ["ent_3"]);
    let everything = EntitlementFilter {
        account_id: Some("acc_1".into()),
        account_ids: Some(vec!["acc_1".into()]),
        unit: Some(Unit::Hours),
        owner: Some("owner_1".into()),
        stored_status: Some(vec![Status::Draft]),
    };
    assert_eq!(ids(everything, all()).await, ["ent_1"]);
    let cancelled = EntitlementFilter {
        stored_status: Some(vec![Status::Cancelled]),
        ..Default::default()
    };
    assert!(ids(cancelled, all()).await.is_empty());
}

pub async fn one_default_per_account(db: &TestDatabase) {
    let store = db.store();
    let s = store.as_ref();
    add_account(s, "acc_1", None).await;
    let mut t = terms("acc_1", Some(10));
    t.is_default = true;
    add_draft(s, "ent_1", t.clone()).await;
    match insert_draft(s, "ent_2", t.clone(), now(), &tester()).await {
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
    add_draft(s, "ent_3", plain).await;
    let refused = edit(s, "ent_3", &t, now()).await;
    assert!(
        matches!(
            refused,
            Err(StoreError::Conflict {
                code: "default_exists",
                ..
            })
        ),
        "{refused:?}"
    );
    // Once the first is cancelled the account may have another default.
    activate(s, "ent_1").await;
    act(s, "ent_1", Action::Cancel).await.unwrap();
    edit(s, "ent_3", &t, now()).await.unwrap();
}

pub async fn terms_edit_only_drafts(db: &TestDatabase) {
    let store = db.store();
    let s = store.as_ref();
    add_account(s, "acc_1", None).await;
    let mut first = terms("acc_1", Some(10));
    first.owner = Some("owner_1".into());
    add_draft(s, "ent_1", first).await;
    let mut edited = terms("acc_1", Some(25));
    edited.name = "Renamed".into();
    let later = now() + Duration::minutes(5);
    let record = edit(s, "ent_1", &edited, later).await.unwrap();
    assert_eq!(record.entitlement.terms, edited);
    assert_eq!((record.created_at, record.updated_at), (now(), later));
    assert_eq!(entitlement(s, "ent_1").await, record);
    // The copy columns follow the terms.
    let copies = db
        .query_text("SELECT CAST(total_milli AS TEXT), owner FROM entitlements WHERE id = 'ent_1'")
        .await;
    assert_eq!(copies, [[Some("25000".to_string()), None]]);

    let mut unit_changed = edited.clone();
    unit_changed.unit = Unit::Visits;
    let refused = edit(s, "ent_1", &unit_changed, now()).await;
    assert!(
        matches!(refused, Err(StoreError::Edit(EditRefused::UnitChanged))),
        "{refused:?}"
    );

    activate(s, "ent_1").await;
    let refused = edit(s, "ent_1", &terms("acc_1", Some(99)), now()).await;
    assert!(
        matches!(
            refused,
            Err(StoreError::Edit(EditRefused::NotDraft(Status::Active)))
        ),
        "{refused:?}"
    );
    assert_eq!(entitlement(s, "ent_1").await.entitlement.terms, edited);
    let missing = edit(s, "ent_none", &edited, now()).await;
    assert!(
        matches!(
            missing,
            Err(StoreError::NotFound {
                what: "entitlement",
                ..
            })
        ),
        "{missing:?}"
    );
}

pub async fn a_store_shared_across_tasks_reads_its_own_writes(db: &TestDatabase) {
    let store: std::sync::Arc<dyn Store> = db.store();
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let id = format!("acc_{i:02}");
                add_account(store.as_ref(), &id, None).await;
                store.get_account(&id).await.unwrap().unwrap()
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(store.list_accounts(&all()).await.unwrap().len(), 16);
}
