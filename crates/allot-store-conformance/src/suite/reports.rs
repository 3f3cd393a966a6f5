//! The ledger summaries reports read.

use allot_core::batch::Op;
use allot_core::decide::Change;
use allot_core::entitlement::Period;
use allot_core::Quantity;
use allot_store::model::{EntitlementFilter, Page};
use allot_store::plan::Command;
use allot_store::reports::{DayUsage, LimitQuery, PeriodUsage, SpanUsage, UrgencyKey};
use chrono::{TimeZone, Utc};

use crate::fixtures::*;
use crate::TestDatabase;

pub async fn ledger_sums_by_period_and_by_day(db: &TestDatabase) {
    let store = db.store();
    let s = store.as_ref();
    add_account(s, "acc_r", None).await;
    let mut monthly = terms("acc_r", Some(100));
    monthly.period = Period::Month;
    add_draft(s, "ent_r1", monthly).await;
    activate(s, "ent_r1").await;
    active_entitlement(s, "ent_r2", 100).await;
    let last_second_of_january = Utc.with_ymd_and_hms(2026, 1, 31, 23, 59, 59).unwrap();
    apply_at(s, &[usage("ent_r1", 2, None)], at(2026, 1, 5)).await;
    apply_at(
        s,
        &[usage("ent_r1", 3, None), usage("ent_r2", 1, None)],
        at(2026, 1, 5),
    )
    .await;
    apply_at(s, &[usage("ent_r1", 7, None)], last_second_of_january).await;
    apply_at(s, &[usage("ent_r1", 4, None)], at(2026, 2, 1)).await;
    apply_at(s, &[usage("ent_r1", 1, None)], at(2026, 3, 2)).await;

    let ids: Vec<String> = ["ent_r1", "ent_r2", "ent_none"].map(String::from).to_vec();
    let per_period = |id: &str, period_index: i64, used: i64| PeriodUsage {
        entitlement_id: id.into(),
        period_index,
        used: Quantity::whole(used),
    };
    assert_eq!(
        s.usage_by_period(&ids).await.unwrap(),
        vec![
            per_period("ent_r1", 0, 12),
            per_period("ent_r1", 1, 4),
            per_period("ent_r1", 2, 1),
            per_period("ent_r2", 0, 1),
        ]
    );
    assert!(s.usage_by_period(&[]).await.unwrap().is_empty());

    let per_day = |id: &str, on: chrono::NaiveDate, used: i64| DayUsage {
        entitlement_id: id.into(),
        day: on,
        used: Quantity::whole(used),
    };
    assert_eq!(
        s.usage_by_day(&ids, day(2026, 1, 5), day(2026, 2, 1))
            .await
            .unwrap(),
        vec![
            per_day("ent_r1", day(2026, 1, 5), 5),
            per_day("ent_r1", day(2026, 1, 31), 7),
            per_day("ent_r1", day(2026, 2, 1), 4),
            per_day("ent_r2", day(2026, 1, 5), 1),
        ]
    );
    // Both ends are whole days: the last second of a day is in it, the
    // first second of the next is not.
    assert_eq!(
        s.usage_by_day(&ids, day(2026, 1, 6), day(2026, 1, 31))
            .await
            .unwrap(),
        vec![per_day("ent_r1", day(2026, 1, 31), 7)]
    );
    let per_span = |id: &str, used: i64| SpanUsage {
        entitlement_id: id.into(),
        used: Quantity::whole(used),
    };
    assert_eq!(
        s.usage_between(&ids, day(2026, 1, 5), day(2026, 2, 1))
            .await
            .unwrap(),
        vec![per_span("ent_r1", 16), per_span("ent_r2", 1)]
    );
    assert_eq!(
        s.usage_between(&ids, day(2026, 1, 6), day(2026, 1, 31))
            .await
            .unwrap(),
        vec![per_span("ent_r1", 7)]
    );
    assert!(s
        .usage_between(&ids, day(2026, 2, 2), day(2026, 2, 1))
        .await
        .unwrap()
        .is_empty());
    assert!(s
        .usage_by_day(&ids, day(2026, 2, 2), day(2026, 2, 1))
        .await
        .unwrap()
        .is_empty());
}

/// The per-day sums the window reads are kept in the write transaction:
/// after uses, give-backs and several uses of one entitlement in one batch,
/// over days, they equal the ledger summed by UTC day.
pub async fn day_sums_follow_the_ledger(db: &TestDatabase) {
    let store = db.store();
    let s = store.as_ref();
    active_entitlement(s, "ent_d1", 1_000).await;
    active_entitlement(s, "ent_d2", 1_000).await;
    let give_back = |id: &str, units: i64| {
        item(Command::Ledger {
            ops: vec![Op {
                entitlement_id: id.into(),
                change: Change::Adjust {
                    quantity: Quantity::whole(-units),
                    channel: None,
                    reference: Some("goodwill".into()),
                },
            }],
        })
    };
    let last_second = Utc.with_ymd_and_hms(2026, 1, 5, 23, 59, 59).unwrap();
    let batches = [
        (
            vec![usage("ent_d1", 2, None), usage("ent_d1", 3, None)],
            at(2026, 1, 5),
        ),
        (
            vec![usage("ent_d2", 4, None), give_back("ent_d1", 1)],
            last_second,
        ),
        (
            vec![usage("ent_d1", 7, None), usage("ent_d2", 1, None)],
            at(2026, 1, 6),
        ),
        (vec![give_back("ent_d2", 5)], at(2026, 1, 6)),
        (vec![usage("ent_d1", 1, None)], at(2026, 1, 9)),
    ];
    for (items, when) in &batches {
        apply_at(s, items, *when).await;
    }
    let ids: Vec<String> = ["ent_d1", "ent_d2"].map(String::from).to_vec();
    let mut from_ledger: Vec<DayUsage> = Vec::new();
    for id in &ids {
        let page = Page {
            after: None,
            limit: 100,
        };
        let mut entries = s.list_ledger(id, &page).await.unwrap();
        entries.sort_by_key(|e| e.created_at);
        for e in entries {
            match from_ledger.last_mut() {
                Some(d) if d.entitlement_id == *id && d.day == e.created_at.date_naive() => {
                    d.used += e.quantity;
                }
                _ => from_ledger.push(DayUsage {
                    entitlement_id: id.clone(),
                    day: e.created_at.date_naive(),
                    used: e.quantity,
                }),
            }
        }
    }
    assert_eq!(
        s.usage_by_day(&ids, day(2026, 1, 1), day(2026, 1, 31))
            .await
            .unwrap(),
        from_ledger
    );
    assert_eq!(from_ledger.len(), 5, "{from_ledger:?}");
    let span = |used: i64| Quantity::whole(used);
    let spans = s
        .usage_between(&ids, day(2026, 1, 5), day(2026, 1, 6))
        .await
        .unwrap();
    assert_eq!(
        spans.iter().map(|u| u.used).collect::<Vec<_>>(),
        vec![span(2 + 3 - 1 + 7), span(0)]
    );
}

/// A whole export's one sorted read (`urgency_keys`) gives the keys the
/// paged read (`approaching_limit`) gives, after any of them; its records
/// come by id (`records_by_ids`).
pub async fn urgency_keys_follow_the_paged_order(db: &TestDatabase) {
    let store = db.store();
    let s = store.as_ref();
    for (id, used) in [
        ("ent_u1", 85),
        ("ent_u2", 100),
        ("ent_u3", 95),
        ("ent_u4", 90),
        ("ent_u5", 10),
        ("ent_u6", 90),
    ] {
        active_entitlement(s, id, 100).await;
        apply_at(s, &[usage(id, used, None)], now()).await;
    }
    let mut query = LimitQuery {
        filter: EntitlementFilter::default(),
        today: today(),
        threshold: 80,
        after: None,
        limit: 100,
    };
    let paged: Vec<UrgencyKey> = s
        .approaching_limit(&query)
        .await
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    let order: Vec<&str> = paged.iter().map(|k| k.id.as_str()).collect();
    assert_eq!(order, ["ent_u2", "ent_u3", "ent_u4", "ent_u6", "ent_u1"]);
    assert_eq!(s.urgency_keys(&query).await.unwrap(), paged);
    query.after = Some(paged[2].clone());
    assert_eq!(s.urgency_keys(&query).await.unwrap(), paged[3..]);

    let ids: Vec<String> = ["ent_u4", "ent_none", "ent_u1"].map(String::from).to_vec();
    let found: Vec<(String, Quantity)> = s
        .records_by_ids(&ids)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.entitlement.id, r.counters.used))
        .collect();
    assert_eq!(
        found,
        [
            ("ent_u1".to_string(), Quantity::whole(85)),
            ("ent_u4".to_string(), Quantity::whole(90))
        ]
    );
    assert!(s.records_by_ids(&[]).await.unwrap().is_empty());
}
