//! Lifecycle actions and the status sync, including several instances.

use allot_core::entitlement::Status;
use allot_core::lifecycle::{Action, NotAllowed};
use allot_store::audit::AuditFilter;
use allot_store::StoreError;
use chrono::Duration;
use serde_json::json;

use crate::fixtures::*;
use crate::TestDatabase;

pub async fn transitions_record_who_and_emit_events(db: &TestDatabase) {
    let store = db.store();
    let s = store.as_ref();
    add_account(s, "acc_1", None).await;
    let mut t = terms("acc_1", Some(10));
    t.start_date = day(2026, 4, 1);
    t.end_date = day(2026, 4, 30);
    add_draft(s, "ent_1", t).await;

    let manager_1 = actor("manager_1");
    let activated = transition(s, "ent_1", Action::Activate, &manager_1, "", now())
        .await
        .unwrap();
    assert_eq!(activated.entitlement.entitlement.status, Status::Waiting);
    assert!(activated.renewal.is_none());
    assert_eq!(activated.entitlement, entitlement(s, "ent_1").await);

    let refused = transition(s, "ent_1", Action::Activate, &manager_1, "", now()).await;
    assert!(
        matches!(
            refused,
            Err(StoreError::Lifecycle(NotAllowed {
                action: Action::Activate,
                from: Status::Waiting
            }))
        ),
        "{refused:?}"
    );
    // Event ids sort by millisecond: a later action gets a later time.
    let later = now() + Duration::seconds(1);
    let cancelled = transition(s, "ent_1", Action::Cancel, &actor("manager_2"), "", later)
        .await
        .unwrap();
    assert_eq!(cancelled.entitlement.entitlement.status, Status::Cancelled);
    assert_eq!(cancelled.entitlement.updated_at, later);

    assert_eq!(
        steps(s, "ent_1").await,
        [
            "Draft -> Waiting: activate by manager_1",
            "Waiting -> Cancelled: cancel by manager_2"
        ]
    );
    let events = s.list_events(Some("ent_1"), &all()).await.unwrap();
    let kinds: Vec<_> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["entitlement.waiting", "entitlement.cancelled"]);
    assert_eq!(
        events[0].data,
        json!({ "from": "draft", "to": "waiting", "actor": "manager_1" })
    );
    assert_eq!(
        events[1].data,
        json!({ "from": "waiting", "to": "cancelled", "actor": "manager_2" })
    );
    let missing = act(s, "ent_none", Action::Cancel).await;
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

pub async fn renew_makes_a_draft_successor(db: &TestDatabase) {
    let store = db.store();
    let s = store.as_ref();
    add_account(s, "acc_1", None).await;
    let mut t = terms("acc_1", Some(10));
    t.start_date = day(2026, 1, 1);
    t.end_date = day(2026, 2, 28);
    t.is_default = true;
    add_draft(s, "ent_1", t.clone()).await;
    let m = actor("m");
    // Only an expired or cancelled entitlement may be renewed.
    let early = transition(s, "ent_1", Action::Renew, &m, "ent_2", now()).await;
    assert!(matches!(early, Err(StoreError::Lifecycle(_))), "{early:?}");
    // Activated after its end date: straight to expired, and final.
    let expired = transition(s, "ent_1", Action::Activate, &m, "", now())
        .await
        .unwrap();
    assert_eq!(expired.entitlement.entitlement.status, Status::Expired);
    let refused = act(s, "ent_1", Action::Cancel).await;
    assert!(
        matches!(refused, Err(StoreError::Lifecycle(_))),
        "{refused:?}"
    );

    let later = now() + Duration::seconds(1);
    let renewed = transition(s, "ent_1", Action::Renew, &m, "ent_2", later)
        .await
        .unwrap();
    assert_eq!(renewed.entitlement.entitlement.status, Status::Expired);
    assert_eq!(renewed.entitlement.updated_at, now());
    let new = renewed.renewal.expect("a renewal");
    assert_eq!(new.entitlement.id, "ent_2");
    assert_eq!(new.entitlement.status, Status::Draft);
    assert_eq!(new.entitlement.predecessor_id.as_deref(), Some("ent_1"));
    assert_eq!(new.entitlement.terms.start_date, today());
    assert_eq!(
        new.entitlement.terms.end_date - today(),
        t.end_date - t.start_date
    );
    assert!(!new.entitlement.terms.is_default);
    assert_eq!(new.counters, Default::default());
    assert_eq!(entitlement(s, "ent_2").await, new);

    assert_eq!(steps(s, "ent_2").await, ["Draft -> Draft: renew by m"]);
    let events = s.list_events(Some("ent_1"), &all()).await.unwrap();
    let kinds: Vec<_> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["entitlement.expired", "entitlement.renewed"]);
    assert_eq!(events[1].data, json!({ "renewal_id": "ent_2" }));
    assert_eq!(s.list_events(None, &all()).await.unwrap().len(), 2);
    let after_first = page(Some(&events[0].id), 10);
    assert_eq!(s.list_events(None, &after_first).await.unwrap().len(), 1);

    // The renewal activates, deactivates and cancels like any draft.
    for (action, to) in [
        (Action::Activate, Status::Active),
        (Action::Deactivate, Status::Draft),
        (Action::Activate, Status::Active),
        (Action::Cancel, Status::Cancelled),
    ] {
        let r = act(s, "ent_2", action).await.unwrap();
        assert_eq!(r.entitlement.entitlement.status, to);
    }
    assert_eq!(steps(s, "ent_2").await.len(), 5);
}

pub async fn sync_stores_the_dates_once_across_instances(db: &TestDatabase) {
    let store = db.store();
    let s = store.as_ref();
    add_account(s, "acc_1", None).await;
    // Waiting today, active from the 20th, expired after the 25th; one
    // draft that the dates never move.
    for n in 0..7 {
        let mut t = terms("acc_1", Some(10));
        t.start_date = day(2026, 3, 20);
        t.end_date = day(2026, 3, 25);
        let id = format!("ent_{n}");
        add_draft(s, &id, t).await;
        if n < 6 {
            transition(s, &id, Action::Activate, &actor("m"), "", now())
                .await
                .unwrap();
        }
    }
    assert_eq!(sync(s, now()).await, 0);

    let day_21 = at(2026, 3, 21);
    let mut instances = vec![store.clone()];
    for _ in 0..3 {
        instances.push(db.instance().await);
    }
    let runs = futures::future::join_all(
        instances
            .iter()
            .map(|store| async move { sync(store.as_ref(), day_21).await }),
    )
    .await;
    assert_eq!(runs.into_iter().sum::<u64>(), 6);
    assert_eq!(sync(s, day_21).await, 0);

    let day_27 = at(2026, 3, 27);
    let (a, b) = tokio::join!(sync(s, day_27), sync(instances[1].as_ref(), day_27));
    assert_eq!(a + b, 6);
    assert_eq!(sync(s, day_27).await, 0);
    assert_eq!(
        entitlement(s, "ent_6").await.entitlement.status,
        Status::Draft
    );

    for n in 0..6 {
        let id = format!("ent_{n}");
        assert_eq!(
            entitlement(s, &id).await.entitlement.status,
            Status::Expired
        );
        assert_eq!(
            steps(s, &id).await,
            [
                "Draft -> Waiting: activate by m",
                "Waiting -> Active: dates by system",
                "Active -> Expired: dates by system"
            ]
        );
        assert_eq!(
            event_kinds(s, &id).await,
            [
                "entitlement.waiting",
                "entitlement.activated",
                "entitlement.expired"
            ]
        );
    }
    // Each change is audited once, however many instances raced for it.
    let filter = AuditFilter {
        action: Some("entitlement.follow_dates".into()),
        ..Default::default()
    };
    let audited = s.list_audit(&filter, &all()).await.unwrap();
    assert_eq!(audited.len(), 12);
    assert!(audited.iter().all(|e| e.actor == "system"));
}
