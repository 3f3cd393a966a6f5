use std::collections::HashMap;

use allot_core::batch::{EntitlementState, Op};
use allot_core::decide::{Change, Reason};
use allot_core::entitlement::{DecrementOn, Entitlement, Period, Status, Terms, Unit};
use allot_core::{Counters, Quantity};
use chrono::{NaiveDate, TimeZone, Utc};

use super::*;

fn ent(id: &str, total: i64) -> EntitlementState {
    let terms = Terms {
        account_id: "acc_1".into(),
        name: "Visits".into(),
        description: None,
        owner: None,
        unit: Unit::Visits,
        total: Some(Quantity::whole(total)),
        period: Period::None,
        rollover: Quantity::ZERO,
        restrict: true,
        decrement_on: DecrementOn::Creation,
        start_date: NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
        end_date: NaiveDate::from_ymd_opt(2026, 12, 31).unwrap(),
        channels: vec![],
        product_ids: vec![],
        contact_ids: vec![],
        is_default: false,
        pooled: false,
        alert_thresholds: vec![],
        rounding: None,
        auto_renew: false,
        contract_id: None,
        sla: None,
    };
    EntitlementState {
        entitlement: Entitlement {
            id: id.into(),
            terms,
            status: Status::Active,
            predecessor_id: None,
        },
        counters: Counters::default(),
    }
}

fn usage(id: &str, key: Option<(&str, &str)>) -> BatchItem {
    BatchItem {
        command: Command::Ledger {
            ops: vec![Op {
                entitlement_id: id.into(),
                change: Change::Consume {
                    quantity: Quantity::whole(1),
                    channel: None,
                    reason: Reason::Visit,
                    reference: None,
                },
            }],
        },
        actor: "key_1".into(),
        idempotency: key.map(|(k, fp)| IdemKey {
            scope: "key_1".into(),
            key: k.into(),
            fingerprint: fp.into(),
        }),
        render: Render::OUTCOME_JSON,
    }
}

fn loaded(total: i64) -> Loaded {
    Loaded {
        entitlements: HashMap::from([("ent_1".into(), ent("ent_1", total))]),
        ..Default::default()
    }
}

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 6, 1).unwrap()
}

#[test]
fn items_are_decided_in_arrival_order_against_the_cap() {
    let mut l = loaded(2);
    let items: Vec<BatchItem> = (0..4).map(|_| usage("ent_1", None)).collect();
    let plan = plan_batch(&mut l, &items, today(), Utc::now());
    let applied = plan
        .answers
        .iter()
        .map(|a| {
            matches!(
                a,
                ItemAnswer::Done {
                    outcome: Outcome::Applied { .. },
                    ..
                }
            )
        })
        .collect::<Vec<_>>();
    assert_eq!(applied, vec![true, true, false, false]);
    assert_eq!(plan.ledger.len(), 2);
    assert_eq!(
        plan.counters,
        vec![(
            "ent_1".to_string(),
            Counters {
                used: Quantity::whole(2),
                ..Default::default()
            }
        )]
    );
}

#[test]
fn a_key_used_twice_in_a_batch_applies_once() {
    let mut l = loaded(10);
    let items = vec![
        usage("ent_1", Some(("k", "fp"))),
        usage("ent_1", Some(("k", "fp"))),
        usage("ent_1", Some(("k", "other"))),
    ];
    let plan = plan_batch(&mut l, &items, today(), Utc::now());
    assert_eq!(plan.ledger.len(), 1);
    assert_eq!(plan.keys.len(), 1);
    assert_eq!(plan.answers[2], ItemAnswer::KeyMismatch);
    let (ItemAnswer::Done { outcome }, ItemAnswer::Replayed { answer }) =
        (&plan.answers[0], &plan.answers[1])
    else {
        panic!("expected done then replayed: {:?}", plan.answers)
    };
    assert_eq!(*answer, Render::OUTCOME_JSON.answer(outcome));
}

#[test]
fn a_stored_key_replays_its_answer() {
    let mut l = loaded(10);
    let first = plan_batch(
        &mut l,
        &[usage("ent_1", Some(("k", "fp")))],
        today(),
        Utc::now(),
    );
    let stored = first.keys[0].clone();
    let mut l2 = loaded(10);
    l2.keys.insert(
        ("key_1".into(), "k".into()),
        IdempotencyRecord {
            fingerprint: stored.fingerprint,
            answer: Some(stored.answer),
            created_at: Utc::now(),
        },
    );
    let again = plan_batch(
        &mut l2,
        &[usage("ent_1", Some(("k", "fp")))],
        today(),
        Utc::now(),
    );
    assert!(again.ledger.is_empty() && again.counters.is_empty());
    let ItemAnswer::Replayed { answer } = &again.answers[0] else {
        panic!("not replayed: {:?}", again.answers)
    };
    let ItemAnswer::Done { outcome: original } = &first.answers[0] else {
        panic!("not applied: {:?}", first.answers)
    };
    assert_eq!(*answer, Render::OUTCOME_JSON.answer(original));
}

#[test]
fn holds_commit_and_expire() {
    let mut l = loaded(3);
    let now = Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap();
    let hold = |id: &str, n: i64| BatchItem {
        command: Command::Hold {
            reservation_id: id.into(),
            entitlement_id: "ent_1".into(),
            quantity: Quantity::whole(n),
            channel: None,
            reference: None,
            expires_at: now + chrono::Duration::seconds(60),
        },
        actor: "key_1".into(),
        idempotency: None,
        render: Render::OUTCOME_JSON,
    };
    let plan = plan_batch(
        &mut l,
        &[hold("res_1", 2), hold("res_2", 2), usage("ent_1", None)],
        today(),
        now,
    );
    assert!(matches!(
        plan.answers[1],
        ItemAnswer::Done {
            outcome: Outcome::Refused { .. },
            ..
        }
    ));
    assert!(matches!(
        plan.answers[2],
        ItemAnswer::Done {
            outcome: Outcome::Applied { .. },
            ..
        }
    ));
    assert_eq!(plan.reservations.len(), 1);
    let commit = BatchItem {
        command: Command::Commit {
            reservation_id: "res_1".into(),
            actual: Some(Quantity::whole(1)),
        },
        actor: "key_1".into(),
        idempotency: None,
        render: Render::OUTCOME_JSON,
    };
    let expire = BatchItem {
        command: Command::Expire {
            reservation_id: "res_1".into(),
        },
        actor: "system".into(),
        idempotency: None,
        render: Render::OUTCOME_JSON,
    };
    let plan = plan_batch(
        &mut l,
        &[commit, expire],
        today(),
        now + chrono::Duration::seconds(120),
    );
    assert!(matches!(
        plan.answers[1],
        ItemAnswer::Done {
            outcome: Outcome::ReservationRefused { .. },
            ..
        }
    ));
    let c = &l.entitlements["ent_1"].counters;
    assert_eq!((c.used, c.held), (Quantity::whole(2), Quantity::ZERO));
    assert_eq!(plan.reservations[0].status, ReservationStatus::Committed);
}
