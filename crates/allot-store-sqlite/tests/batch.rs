//! The write path against a real SQLite file: caps under concurrency,
//! idempotent replays and reservations.

mod support;

use std::sync::Arc;

use allot_core::batch::Op;
use allot_core::decide::{Change, Reason};
use allot_core::lifecycle::Action;
use allot_core::Quantity;
use allot_store::model::Page;
use allot_store::plan::{
    BatchItem, Command, IdemKey, ItemAnswer, Outcome, ReservationRefusal, ReservationStatus,
};
use allot_store::{ManualClock, Store, WritePath, WritePathConfig};
use chrono::Duration;
use support::*;

fn use_one(entitlement_id: &str, key: Option<(&str, &str)>) -> BatchItem {
    BatchItem {
        command: Command::Ledger {
            ops: vec![Op {
                entitlement_id: entitlement_id.into(),
                change: Change::Consume {
                    quantity: Quantity::whole(1),
                    channel: None,
                    reason: Reason::Visit,
                    reference: None,
                },
            }],
        },
        actor: "key_1".into(),
        idempotency: key.map(|(key, fingerprint)| IdemKey {
            scope: "key_1".into(),
            key: key.into(),
            fingerprint: fingerprint.into(),
        }),
    }
}

/// A store with active entitlement `ent_1` (restricted, `total` visits).
async fn active_store(name: &str, total: i64) -> (Arc<dyn Store>, TempDb) {
    let (store, db) = store(name).await;
    store
        .insert_account(&account("acc_1", None), &"tester".into())
        .await
        .unwrap();
    store
        .insert_entitlement(
            &draft("ent_1", terms("acc_1", Some(total))),
            now(),
            &"tester".into(),
        )
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
    (store, db)
}

fn sums(db: &TempDb) -> (i64, i64, i64) {
    db.raw()
        .query_row(
            "SELECT b.used_milli, (SELECT COALESCE(SUM(quantity_milli), 0) FROM ledger), \
             (SELECT COUNT(*) FROM ledger) FROM balances b WHERE b.entitlement_id = 'ent_1'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_cap_holds_under_concurrency_and_keys_replay() {
    let (store, db) = active_store("cap", 100).await;
    let clock = Arc::new(ManualClock::new(now()));
    let path = WritePath::start(store.clone(), clock.clone(), WritePathConfig::default());
    let tasks: Vec<_> = (0..32)
        .map(|task| {
            let path = path.clone();
            tokio::spawn(async move {
                let mut applied = 0;
                for i in 0..20 {
                    let key = format!("use-{task}-{i}");
                    match path
                        .submit(use_one("ent_1", Some((&key, "fp"))))
                        .await
                        .unwrap()
                    {
                        ItemAnswer::Done {
                            outcome: Outcome::Applied { .. },
                            replayed: false,
                        } => applied += 1,
                        ItemAnswer::Done {
                            outcome: Outcome::Refused { refusal },
                            ..
                        } => {
                            assert_eq!(refusal.code(), "entitlement_exhausted")
                        }
                        other => panic!("{other:?}"),
                    }
                }
                applied
            })
        })
        .collect();
    let mut applied = 0;
    for t in tasks {
        applied += t.await.unwrap();
    }
    assert_eq!(applied, 100);
    assert_eq!(sums(&db), (100_000, 100_000, 100));
    let record = store.get_entitlement("ent_1").await.unwrap().unwrap();
    assert_eq!(record.counters.used, Quantity::whole(100));
    let page = Page {
        after: None,
        limit: 1000,
    };
    assert_eq!(store.list_ledger("ent_1", &page).await.unwrap().len(), 100);

    // Find a key that was applied and replay it: same answer, no new row.
    let mut replayed_one = false;
    for i in 0..20 {
        let key = format!("use-0-{i}");
        let first = store.get_key("key_1", &key).await.unwrap().unwrap();
        let again = path
            .submit(use_one("ent_1", Some((&key, "fp"))))
            .await
            .unwrap();
        let ItemAnswer::Done {
            outcome,
            replayed: true,
        } = again
        else {
            panic!("{again:?}")
        };
        assert_eq!(Some(serde_json::to_value(&outcome).unwrap()), first.answer);
        replayed_one |= matches!(outcome, Outcome::Applied { .. });
    }
    assert!(replayed_one);
    assert_eq!(sums(&db), (100_000, 100_000, 100));
    let mismatch = path
        .submit(use_one("ent_1", Some(("use-0-0", "other"))))
        .await
        .unwrap();
    assert_eq!(mismatch, ItemAnswer::KeyMismatch);
}

#[tokio::test]
async fn one_batch_decides_in_order_and_writes_once() {
    let (store, db) = active_store("order", 3).await;
    let items: Vec<_> = (0..5)
        .map(|i| use_one("ent_1", Some((&format!("k{i}"), "fp"))))
        .chain([
            use_one("ent_1", Some(("k0", "fp"))),
            use_one("ent_404", None),
        ])
        .collect();
    let answers = store.apply_batch(&items, today(), now()).await.unwrap();
    let codes: Vec<_> = answers
        .iter()
        .map(|a| match a {
            ItemAnswer::Done {
                outcome: Outcome::Applied { .. },
                replayed,
            } => {
                if *replayed {
                    "replayed"
                } else {
                    "applied"
                }
            }
            ItemAnswer::Done {
                outcome: Outcome::Refused { refusal },
                ..
            } => refusal.code(),
            _ => "other",
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
    assert_eq!(sums(&db), (3_000, 3_000, 3));
    assert!(store
        .apply_batch(&[], today(), now())
        .await
        .unwrap()
        .is_empty());
    // The exhaustion is in the outbox, written with the batch.
    let events = store
        .list_events(
            Some("ent_1"),
            &Page {
                after: None,
                limit: 50,
            },
        )
        .await
        .unwrap();
    assert!(
        events.iter().any(|e| e.kind == "entitlement.exhausted"),
        "{events:?}"
    );
}

#[tokio::test]
async fn an_unfinished_claim_gives_way_to_the_batch_answer() {
    let (store, _db) = active_store("claim", 3).await;
    store
        .claim_key("key_1", "k", "fp", now(), now())
        .await
        .unwrap();
    let answers = store
        .apply_batch(&[use_one("ent_1", Some(("k", "fp")))], today(), now())
        .await
        .unwrap();
    assert!(matches!(
        answers[0],
        ItemAnswer::Done {
            outcome: Outcome::Applied { .. },
            replayed: false
        }
    ));
    assert!(store
        .get_key("key_1", "k")
        .await
        .unwrap()
        .unwrap()
        .answer
        .is_some());
}

#[tokio::test]
async fn reservations_hold_commit_release_and_expire() {
    let (store, db) = active_store("reservations", 10).await;
    let hold = |id: &str, n: i64, expires: chrono::DateTime<chrono::Utc>| BatchItem {
        command: Command::Hold {
            reservation_id: id.into(),
            entitlement_id: "ent_1".into(),
            quantity: Quantity::whole(n),
            channel: None,
            reference: Some(format!("ref-{id}")),
            expires_at: expires,
        },
        actor: "key_1".into(),
        idempotency: None,
    };
    let item = |command| BatchItem {
        command,
        actor: "key_1".into(),
        idempotency: None,
    };
    let soon = now() + Duration::minutes(1);
    let later = now() + Duration::hours(1);
    let answers = store
        .apply_batch(
            &[
                hold("res_1", 4, later),
                hold("res_2", 3, soon),
                hold("res_3", 2, later),
                hold("res_4", 5, later),
            ],
            today(),
            now(),
        )
        .await
        .unwrap();
    let applied = answers
        .iter()
        .filter(|a| {
            matches!(
                a,
                ItemAnswer::Done {
                    outcome: Outcome::Applied { .. },
                    ..
                }
            )
        })
        .count();
    assert_eq!(applied, 3, "the fourth hold exceeds what is left");
    let held = store
        .get_entitlement("ent_1")
        .await
        .unwrap()
        .unwrap()
        .counters
        .held;
    assert_eq!(held, Quantity::whole(9));
    assert!(store.get_reservation("res_4").await.unwrap().is_none());

    let after = now() + Duration::minutes(2);
    assert_eq!(
        store.expired_reservations(after, 10).await.unwrap(),
        ["res_2"]
    );
    let answers = store
        .apply_batch(
            &[
                item(Command::Commit {
                    reservation_id: "res_1".into(),
                    actual: Some(Quantity::whole(3)),
                }),
                item(Command::Release {
                    reservation_id: "res_3".into(),
                }),
                item(Command::Expire {
                    reservation_id: "res_2".into(),
                }),
                item(Command::Release {
                    reservation_id: "res_1".into(),
                }),
                item(Command::Expire {
                    reservation_id: "res_9".into(),
                }),
            ],
            today(),
            after,
        )
        .await
        .unwrap();
    assert!(matches!(&answers[3], ItemAnswer::Done {
        outcome: Outcome::ReservationRefused { refusal: ReservationRefusal::ReservationSettled { status, .. } }, ..
    } if status == "committed"));
    assert!(matches!(
        &answers[4],
        ItemAnswer::Done {
            outcome: Outcome::ReservationRefused {
                refusal: ReservationRefusal::ReservationNotFound { .. }
            },
            ..
        }
    ));
    let r1 = store.get_reservation("res_1").await.unwrap().unwrap();
    assert_eq!(r1.status, ReservationStatus::Committed);
    assert_eq!(r1.committed_quantity, Some(Quantity::whole(3)));
    assert_eq!(r1.settled_at, Some(after));
    assert_eq!(r1.reference.as_deref(), Some("ref-res_1"));
    assert_eq!(r1.expires_at, later);
    assert_eq!(
        store
            .get_reservation("res_2")
            .await
            .unwrap()
            .unwrap()
            .status,
        ReservationStatus::Expired
    );
    assert_eq!(
        store
            .get_reservation("res_3")
            .await
            .unwrap()
            .unwrap()
            .status,
        ReservationStatus::Released
    );
    assert!(store
        .expired_reservations(after, 10)
        .await
        .unwrap()
        .is_empty());

    let counters = store
        .get_entitlement("ent_1")
        .await
        .unwrap()
        .unwrap()
        .counters;
    assert_eq!(
        (counters.used, counters.held),
        (Quantity::whole(3), Quantity::ZERO)
    );
    assert_eq!(sums(&db), (3_000, 3_000, 1));
    let events = store
        .list_events(
            Some("ent_1"),
            &Page {
                after: None,
                limit: 50,
            },
        )
        .await
        .unwrap();
    assert!(events.iter().any(|e| e.kind == "reservation.expired"));
}
