//! Lifecycle actions and the status sync, including several instances.

mod common;

use allot_core::entitlement::Status;
use allot_core::lifecycle::{Action, NotAllowed};
use allot_store::model::Page;
use allot_store::{Store, StoreError};
use common::*;
use serde_json::json;

fn all() -> Page {
    Page {
        after: None,
        limit: 1000,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transitions_record_who_and_emit_events() {
    let Some(db) = fresh().await else { return };
    let s = &db.store;
    s.insert_account(&account("acc_1", None), &"tester".into())
        .await
        .unwrap();
    let mut t = terms("acc_1", Some(10));
    t.start_date = day(2026, 4, 1);
    t.end_date = day(2026, 4, 30);
    s.insert_entitlement(&draft("ent_1", t), now(), &"tester".into())
        .await
        .unwrap();

    let activated = s
        .transition(
            "ent_1",
            Action::Activate,
            &"manager_1".into(),
            "",
            today(),
            now(),
        )
        .await
        .unwrap();
    assert_eq!(activated.entitlement.entitlement.status, Status::Waiting);
    assert!(activated.renewal.is_none());
    assert_eq!(
        activated.entitlement,
        s.get_entitlement("ent_1").await.unwrap().unwrap()
    );

    let refused = s
        .transition(
            "ent_1",
            Action::Activate,
            &"manager_1".into(),
            "",
            today(),
            now(),
        )
        .await;
    assert!(matches!(
        refused,
        Err(StoreError::Lifecycle(NotAllowed {
            action: Action::Activate,
            from: Status::Waiting
        }))
    ));
    // Event ids sort by millisecond: a later action gets a later time.
    let later = now() + chrono::Duration::seconds(1);
    let cancelled = s
        .transition(
            "ent_1",
            Action::Cancel,
            &"manager_2".into(),
            "",
            today(),
            later,
        )
        .await
        .unwrap();
    assert_eq!(cancelled.entitlement.entitlement.status, Status::Cancelled);

    let transitions = s.list_transitions("ent_1").await.unwrap();
    let steps: Vec<_> = transitions
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
            (Status::Draft, Status::Waiting, "activate", "manager_1"),
            (Status::Waiting, Status::Cancelled, "cancel", "manager_2"),
        ]
    );
    let events = s.list_events(Some("ent_1"), &all()).await.unwrap();
    let kinds: Vec<_> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["entitlement.waiting", "entitlement.cancelled"]);
    assert_eq!(
        events[1].data,
        json!({ "from": "waiting", "to": "cancelled", "actor": "manager_2" })
    );
    assert!(matches!(
        s.transition("ent_none", Action::Cancel, &"x".into(), "", today(), now())
            .await,
        Err(StoreError::NotFound {
            what: "entitlement",
            ..
        })
    ));
    db.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renew_makes_a_draft_successor() {
    let Some(db) = fresh().await else { return };
    let s = &db.store;
    s.insert_account(&account("acc_1", None), &"tester".into())
        .await
        .unwrap();
    let mut t = terms("acc_1", Some(10));
    t.start_date = day(2026, 1, 1);
    t.end_date = day(2026, 2, 28);
    t.is_default = true;
    s.insert_entitlement(&draft("ent_1", t.clone()), now(), &"tester".into())
        .await
        .unwrap();
    // Only an expired or cancelled entitlement may be renewed.
    assert!(matches!(
        s.transition("ent_1", Action::Renew, &"m".into(), "ent_2", today(), now())
            .await,
        Err(StoreError::Lifecycle(_))
    ));
    let expired = s
        .transition("ent_1", Action::Activate, &"m".into(), "", today(), now())
        .await
        .unwrap();
    assert_eq!(expired.entitlement.entitlement.status, Status::Expired);

    let later = now() + chrono::Duration::seconds(1);
    let renewed = s
        .transition("ent_1", Action::Renew, &"m".into(), "ent_2", today(), later)
        .await
        .unwrap();
    assert_eq!(renewed.entitlement.entitlement.status, Status::Expired);
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
    assert_eq!(s.get_entitlement("ent_2").await.unwrap().unwrap(), new);

    let steps = s.list_transitions("ent_2").await.unwrap();
    assert_eq!(steps.len(), 1);
    assert_eq!(
        (
            steps[0].from_status,
            steps[0].to_status,
            steps[0].action.as_str()
        ),
        (Status::Draft, Status::Draft, "renew")
    );
    let events = s.list_events(Some("ent_1"), &all()).await.unwrap();
    let last = events.last().unwrap();
    assert_eq!(last.kind, "entitlement.renewed");
    assert_eq!(last.data, json!({ "renewal_id": "ent_2" }));
    db.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_stores_the_dates_once_across_instances() {
    let Some(db) = fresh().await else { return };
    let s = &db.store;
    s.insert_account(&account("acc_1", None), &"tester".into())
        .await
        .unwrap();
    // Waiting today, active from the 20th, expired after the 25th.
    for n in 0..6 {
        let mut t = terms("acc_1", Some(10));
        t.start_date = day(2026, 3, 20);
        t.end_date = day(2026, 3, 25);
        let id = format!("ent_{n}");
        s.insert_entitlement(&draft(&id, t), now(), &"tester".into())
            .await
            .unwrap();
        s.transition(&id, Action::Activate, &"m".into(), "", today(), now())
            .await
            .unwrap();
    }
    assert_eq!(s.sync_statuses(today(), now()).await.unwrap(), 0);

    let day_21 = at(2026, 3, 21);
    let others = [
        db.instance().await,
        db.instance().await,
        db.instance().await,
    ];
    let runs = futures::future::join_all(
        std::iter::once(s.clone())
            .chain(others.iter().cloned())
            .map(|store| async move { store.sync_statuses(day_21.date_naive(), day_21).await }),
    )
    .await;
    let changed: u64 = runs.into_iter().map(Result::unwrap).sum();
    assert_eq!(changed, 6);
    assert_eq!(
        s.sync_statuses(day_21.date_naive(), day_21).await.unwrap(),
        0
    );

    let day_27 = at(2026, 3, 27);
    assert_eq!(
        s.sync_statuses(day_27.date_naive(), day_27).await.unwrap(),
        6
    );
    assert_eq!(
        s.sync_statuses(day_27.date_naive(), day_27).await.unwrap(),
        0
    );

    for n in 0..6 {
        let id = format!("ent_{n}");
        let record = s.get_entitlement(&id).await.unwrap().unwrap();
        assert_eq!(record.entitlement.status, Status::Expired);
        let steps: Vec<_> = s
            .list_transitions(&id)
            .await
            .unwrap()
            .into_iter()
            .map(|t| (t.from_status, t.to_status, t.action, t.actor))
            .collect();
        assert_eq!(
            steps,
            [
                (
                    Status::Draft,
                    Status::Waiting,
                    "activate".into(),
                    "m".into()
                ),
                (
                    Status::Waiting,
                    Status::Active,
                    "dates".into(),
                    "system".into()
                ),
                (
                    Status::Active,
                    Status::Expired,
                    "dates".into(),
                    "system".into()
                ),
            ]
        );
        let kinds: Vec<String> = s
            .list_events(Some(&id), &all())
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
    // Each change is audited once, however many instances raced for it.
    let filter = allot_store::audit::AuditFilter {
        action: Some("entitlement.follow_dates".into()),
        ..Default::default()
    };
    let audited = s.list_audit(&filter, &all()).await.unwrap();
    assert_eq!(audited.len(), 12);
    assert!(audited.iter().all(|e| e.actor == "system"));
    db.finish().await;
}
