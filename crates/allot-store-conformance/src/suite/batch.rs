//! The write path: caps under concurrency from several instances,
//! idempotent replay, one batch in order, reservations.

use std::collections::BTreeMap;

use allot_core::decide::Refusal;
use allot_core::Quantity;
use allot_store::plan::{Command, ItemAnswer, Outcome, ReservationRefusal, ReservationStatus};
use chrono::Duration;

use crate::fixtures::*;
use crate::TestDatabase;

pub async fn the_cap_holds_with_many_writers_on_two_instances(db: &TestDatabase) {
    let store = db.store();
    active_entitlement(store.as_ref(), "ent_cap", 100).await;
    let paths = [
        write_path(db, store.clone()),
        write_path(db, db.instance().await),
    ];
    let tasks: Vec<_> = (0..32)
        .map(|task| {
            let path = paths[task % 2].clone();
            tokio::spawn(async move {
                let mut answers = Vec::new();
                for i in 0..20 {
                    let key = format!("use-{task}-{i}");
                    let answer = path.submit(usage("ent_cap", 1, Some(&key))).await.unwrap();
                    answers.push((key, answer));
                }
                answers
            })
        })
        .collect();
    let mut answers = BTreeMap::new();
    for task in tasks {
        answers.extend(task.await.unwrap());
    }
    assert_eq!(answers.len(), 640);
    assert_eq!(answers.values().filter(|a| applied(a)).count(), 100);
    for refused in answers.values().filter(|a| !applied(a)) {
        assert!(
            matches!(
                refused,
                ItemAnswer::Done {
                    outcome: Outcome::Refused {
                        refusal: Refusal::EntitlementExhausted { .. }
                    },
                }
            ),
            "{refused:?}"
        );
    }
    let used = counters(store.as_ref(), "ent_cap").await.used;
    assert_eq!(used, Quantity::whole(100));
    assert_eq!(
        ledger_sum(store.as_ref(), "ent_cap").await,
        (100, used.milli())
    );

    // Every key replays its first answer, applied or refused, on either
    // instance, and writes nothing more.
    for (n, (key, first)) in answers.iter().enumerate().step_by(16) {
        let again = paths[n % 2]
            .submit(usage("ent_cap", 1, Some(key)))
            .await
            .unwrap();
        let ItemAnswer::Done { outcome, .. } = first else {
            panic!("{first:?}")
        };
        assert_eq!(again, replay_of(outcome));
    }
    assert_eq!(ledger_sum(store.as_ref(), "ent_cap").await, (100, 100_000));
}

pub async fn a_key_replays_its_first_answer(db: &TestDatabase) {
    let store = db.store();
    active_entitlement(store.as_ref(), "ent_1", 10).await;
    let path = write_path(db, store.clone());
    let first = path.submit(usage("ent_1", 3, Some("k1"))).await.unwrap();
    let ItemAnswer::Done { outcome } = &first else {
        panic!("{first:?}")
    };
    assert!(matches!(outcome, Outcome::Applied { entries, .. } if entries.len() == 1));
    let again = path.submit(usage("ent_1", 3, Some("k1"))).await.unwrap();
    assert_eq!(again, replay_of(outcome));
    let other_body = path.submit(usage("ent_1", 4, Some("k1"))).await.unwrap();
    assert_eq!(other_body, ItemAnswer::KeyMismatch);
    assert_eq!(ledger_sum(store.as_ref(), "ent_1").await, (1, 3000));
    let record = store.get_key("key_test", "k1").await.unwrap().unwrap();
    assert_eq!(record.fingerprint, "fp-ent_1-3");
    assert!(record.answer.is_some());
}

pub async fn one_key_on_two_instances_at_once_applies_once(db: &TestDatabase) {
    let store = db.store();
    active_entitlement(store.as_ref(), "ent_1", 1000).await;
    let a = write_path(db, store.clone());
    let b = write_path(db, db.instance().await);
    for round in 0..20 {
        let key = format!("race_{round}");
        let (x, y) = tokio::join!(
            a.submit(usage("ent_1", 1, Some(&key))),
            b.submit(usage("ent_1", 1, Some(&key)))
        );
        let (x, y) = (x.unwrap(), y.unwrap());
        // Exactly one is the original; the other replays its answer.
        match (&x, &y) {
            (ItemAnswer::Done { outcome }, replayed) | (replayed, ItemAnswer::Done { outcome }) => {
                assert!(matches!(outcome, Outcome::Applied { .. }), "{outcome:?}");
                assert_eq!(*replayed, replay_of(outcome));
            }
            _ => panic!("{x:?} {y:?}"),
        }
    }
    assert_eq!(ledger_sum(store.as_ref(), "ent_1").await, (20, 20_000));
    assert_eq!(
        counters(store.as_ref(), "ent_1").await.used,
        Quantity::whole(20)
    );
}

pub async fn one_batch_decides_in_order_and_writes_once(db: &TestDatabase) {
    let store = db.store();
    let s = store.as_ref();
    active_entitlement(s, "ent_1", 3).await;
    let items: Vec<_> = (0..5)
        .map(|i| usage("ent_1", 1, Some(&format!("k{i}"))))
        .chain([usage("ent_1", 1, Some("k0")), usage("ent_none", 1, None)])
        .collect();
    let answers = apply(s, &items).await;
    let codes: Vec<_> = answers
        .iter()
        .map(|a| match a {
            ItemAnswer::Done {
                outcome: Outcome::Applied { .. },
            } => "applied",
            ItemAnswer::Replayed { .. } => "replayed",
            ItemAnswer::Done {
                outcome: Outcome::Refused { refusal },
                ..
            } => refusal.code(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        codes,
        [
            "applied",
            "applied",
            "applied",
            "entitlement_exhausted",
            "entitlement_exhausted",
            "replayed",
            "not_found"
        ]
    );
    assert!(matches!(
        &answers[6],
        ItemAnswer::Done {
            outcome: Outcome::Refused {
                refusal: Refusal::EntitlementNotFound { .. }
            },
            ..
        }
    ));
    assert_eq!(ledger_sum(s, "ent_1").await, (3, 3000));
    assert_eq!(counters(s, "ent_1").await.used, Quantity::whole(3));
    assert!(apply(s, &[]).await.is_empty());
    // The exhaustion is in the outbox, written with the batch.
    let kinds = event_kinds(s, "ent_1").await;
    assert!(
        kinds.iter().any(|k| k == "entitlement.exhausted"),
        "{kinds:?}"
    );
}

pub async fn the_write_path_finishes_an_unfinished_claim(db: &TestDatabase) {
    let store = db.store();
    let s = store.as_ref();
    active_entitlement(s, "ent_1", 10).await;
    let item = usage("ent_1", 2, Some("k1"));
    let fingerprint = item.idempotency.as_ref().unwrap().fingerprint.clone();
    // A claim as versions before answers-with-the-change left it.
    db.execute(&format!(
        "INSERT INTO idempotency_keys (scope, key, fingerprint, answer, created_at) \
         VALUES ('key_test', 'k1', '{fingerprint}', NULL, '2026-06-01T00:00:00Z')"
    ))
    .await;
    let answers = apply(s, &[item]).await;
    assert!(applied(&answers[0]), "{answers:?}");
    let record = s.get_key("key_test", "k1").await.unwrap().unwrap();
    assert!(record.answer.is_some());
    assert_eq!(ledger_sum(s, "ent_1").await, (1, 2000));
}

pub async fn reservations_hold_commit_release_and_expire(db: &TestDatabase) {
    let store = db.store();
    let s = store.as_ref();
    active_entitlement(s, "ent_1", 10).await;
    let soon = now() + Duration::minutes(1);
    let later = now() + Duration::hours(1);
    // Two holds and a use in one batch; the third hold no longer fits.
    let answers = apply(
        s,
        &[
            hold("res_1", "ent_1", 4, later),
            hold("res_2", "ent_1", 3, soon),
            usage("ent_1", 2, None),
            hold("res_3", "ent_1", 2, later),
        ],
    )
    .await;
    assert_eq!(
        answers.iter().map(applied).collect::<Vec<_>>(),
        [true, true, true, false]
    );
    assert!(s.get_reservation("res_3").await.unwrap().is_none());
    let held = s.get_reservation("res_1").await.unwrap().unwrap();
    assert_eq!(held.status, ReservationStatus::Held);
    assert_eq!(held.quantity, Quantity::whole(4));
    assert_eq!(held.reference.as_deref(), Some("ref-res_1"));
    assert_eq!(held.expires_at, later);
    let c = counters(s, "ent_1").await;
    assert_eq!((c.used, c.held), (Quantity::whole(2), Quantity::whole(7)));

    let after = now() + Duration::minutes(2);
    assert_eq!(s.expired_reservations(after, 10).await.unwrap(), ["res_2"]);
    assert!(s.expired_reservations(now(), 10).await.unwrap().is_empty());
    let answers = apply_at(
        s,
        &[
            item(Command::Commit {
                reservation_id: "res_1".into(),
                actual: Some(Quantity::whole(3)),
            }),
            item(Command::Expire {
                reservation_id: "res_2".into(),
            }),
            item(Command::Release {
                reservation_id: "res_1".into(),
            }),
            item(Command::Release {
                reservation_id: "res_none".into(),
            }),
        ],
        after,
    )
    .await;
    assert!(applied(&answers[0]) && applied(&answers[1]), "{answers:?}");
    assert!(
        matches!(&answers[2], ItemAnswer::Done {
            outcome: Outcome::ReservationRefused {
                refusal: ReservationRefusal::ReservationSettled { status, .. }
            },
            ..
        } if status == "committed"),
        "{answers:?}"
    );
    assert!(
        matches!(
            &answers[3],
            ItemAnswer::Done {
                outcome: Outcome::ReservationRefused {
                    refusal: ReservationRefusal::ReservationNotFound { .. }
                },
                ..
            }
        ),
        "{answers:?}"
    );
    let committed = s.get_reservation("res_1").await.unwrap().unwrap();
    assert_eq!(committed.status, ReservationStatus::Committed);
    assert_eq!(committed.committed_quantity, Some(Quantity::whole(3)));
    assert_eq!(committed.settled_at, Some(after));
    let expired = s.get_reservation("res_2").await.unwrap().unwrap();
    assert_eq!(expired.status, ReservationStatus::Expired);
    assert!(s.expired_reservations(after, 10).await.unwrap().is_empty());
    let c = counters(s, "ent_1").await;
    assert_eq!((c.used, c.held), (Quantity::whole(5), Quantity::ZERO));
    assert_eq!(ledger_sum(s, "ent_1").await, (2, 5000));
    let kinds = event_kinds(s, "ent_1").await;
    assert!(
        kinds.iter().any(|k| k == "reservation.expired"),
        "{kinds:?}"
    );
}
