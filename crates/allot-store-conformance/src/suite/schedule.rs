//! The scheduler: what the dates owe entitlements, emitted once however
//! many instances run it and however late it runs.

use allot_core::entitlement::{Period, Status};
use serde_json::json;

use crate::fixtures::*;
use crate::TestDatabase;

/// The successors of `id`, oldest first, following `renewed_to`.
async fn renewals(s: &dyn allot_store::Store, id: &str) -> Vec<String> {
    let mut chain = Vec::new();
    let mut next = entitlement(s, id).await.renewed_to;
    while let Some(successor) = next {
        let record = entitlement(s, &successor).await;
        let from = chain.last().map_or(id, String::as_str);
        assert_eq!(record.entitlement.predecessor_id.as_deref(), Some(from));
        next = record.renewed_to;
        chain.push(successor);
    }
    chain
}

pub async fn dates_owe_each_event_once_across_instances(db: &TestDatabase) {
    let store = db.store();
    let s = store.as_ref();
    add_account(s, "acc_1", None).await;
    // A five-day term that begins and ends while nobody looks.
    let mut t = terms("acc_1", Some(10));
    (t.start_date, t.end_date) = (day(2026, 3, 20), day(2026, 3, 25));
    add_draft(s, "ent_a", t).await;
    activate(s, "ent_a").await;
    // Quarterly, 3 of 10 used in the first quarter.
    let mut t = terms("acc_1", Some(10));
    t.period = Period::Quarter;
    add_draft(s, "ent_q", t).await;
    activate(s, "ent_q").await;
    assert!(applied(&apply(s, &[usage("ent_q", 3, None)]).await[0]));
    // Renews itself: 25 days each.
    let mut t = terms("acc_1", Some(5));
    (t.start_date, t.end_date, t.auto_renew) = (day(2026, 3, 1), day(2026, 3, 25), true);
    add_draft(s, "ent_r", t).await;
    activate(s, "ent_r").await;

    // 15 days before its end, ent_r is owed its 30-day notice.
    assert_eq!(schedule(s, now()).await, 1);
    assert_eq!(schedule(s, now()).await, 0);

    let april = at(2026, 4, 2);
    let mut instances = vec![store.clone()];
    for _ in 0..2 {
        instances.push(db.instance().await);
    }
    let runs = futures::future::join_all(
        instances
            .iter()
            .map(|store| async move { schedule(store.as_ref(), april).await }),
    )
    .await;
    assert_eq!(runs.into_iter().sum::<u64>(), 7);
    assert_eq!(schedule(instances[2].as_ref(), april).await, 0);

    assert_eq!(
        event_kinds(s, "ent_a").await,
        [
            "entitlement.waiting",
            "entitlement.activated",
            "entitlement.expired"
        ]
    );
    assert_eq!(
        steps(s, "ent_a").await,
        [
            "Draft -> Waiting: activate by tester",
            "Waiting -> Active: dates by system",
            "Active -> Expired: dates by system"
        ]
    );
    assert_eq!(
        event_kinds(s, "ent_q").await,
        ["entitlement.activated", "entitlement.period_reset"]
    );
    let reset = s.list_events(Some("ent_q"), &all()).await.unwrap()[1].clone();
    assert_eq!(
        reset.data,
        json!({
            "period": { "index": 0, "start": "2026-01-01", "end": "2026-03-31" },
            "next_period": { "index": 1, "start": "2026-04-01", "end": "2026-06-30" },
            "total": 10, "carried_in": 0, "used": 3, "unused": 7, "carried_over": 0
        })
    );
    assert_eq!(
        (
            counters(s, "ent_q").await.period_index,
            counters(s, "ent_q").await.used.milli()
        ),
        (1, 0)
    );
    assert_eq!(
        event_kinds(s, "ent_r").await,
        [
            "entitlement.activated",
            "entitlement.expiring_soon",
            "entitlement.expired",
            "entitlement.renewed"
        ]
    );
    let chain = renewals(s, "ent_r").await;
    assert_eq!(chain.len(), 1);
    let successor = entitlement(s, &chain[0]).await;
    assert_eq!(successor.entitlement.status, Status::Active);
    let t = &successor.entitlement.terms;
    assert_eq!(
        (t.start_date, t.end_date, t.auto_renew, t.total),
        (
            day(2026, 3, 26),
            day(2026, 4, 19),
            true,
            entitlement(s, "ent_r").await.entitlement.terms.total
        )
    );
    assert_eq!(
        event_kinds(s, &chain[0]).await,
        ["entitlement.activated", "entitlement.expiring_soon"]
    );

    // Down from 2 April to 1 June: the successor expired and renewed, its
    // renewal's whole term passed, and the third covers today.
    let june = at(2026, 6, 1);
    let (a, b) = tokio::join!(schedule(s, june), schedule(instances[1].as_ref(), june));
    assert_eq!(a + b, 7);
    assert_eq!(schedule(s, june).await, 0);
    let chain = renewals(s, "ent_r").await;
    assert_eq!(chain.len(), 3);
    assert_eq!(
        event_kinds(s, &chain[1]).await,
        [
            "entitlement.activated",
            "entitlement.expired",
            "entitlement.renewed"
        ]
    );
    let last = entitlement(s, &chain[2]).await;
    assert_eq!(
        (last.entitlement.status, last.entitlement.terms.start_date),
        (Status::Active, day(2026, 5, 15))
    );
    assert_eq!(
        event_kinds(s, &chain[2]).await,
        ["entitlement.activated", "entitlement.expiring_soon"]
    );
    let notice = s.list_events(Some(&chain[2]), &all()).await.unwrap()[1].clone();
    assert_eq!(
        notice.data,
        json!({ "days_before": 7, "days_left": 7, "end_date": "2026-06-08" })
    );
}

/// A renewal made by hand first is the renewal: `auto_renew` adds none.
pub async fn a_manual_renewal_stands_for_the_automatic_one(db: &TestDatabase) {
    let store = db.store();
    let s = store.as_ref();
    add_account(s, "acc_1", None).await;
    let mut t = terms("acc_1", Some(5));
    (t.start_date, t.end_date, t.auto_renew) = (day(2026, 3, 1), day(2026, 3, 5), true);
    add_draft(s, "ent_1", t).await;
    activate(s, "ent_1").await;
    let renewed = act(s, "ent_1", allot_core::lifecycle::Action::Renew).await;
    let renewed = renewed.unwrap_or_else(|e| panic!("{e:?}"));
    assert!(renewed.renewal.is_some());
    assert_eq!(
        renewed.entitlement.renewed_to.as_deref(),
        Some(renewed.renewal.as_ref().unwrap().entitlement.id.as_str())
    );
    assert_eq!(schedule(s, now()).await, 0);
    assert_eq!(
        event_kinds(s, "ent_1").await,
        ["entitlement.expired", "entitlement.renewed"]
    );
    assert_eq!(renewals(s, "ent_1").await.len(), 1);
}
