//! The write path on PostgreSQL: caps under concurrency from several
//! instances, idempotent replay, reservations.

mod common;

use std::sync::Arc;

use allot_core::decide::Refusal;
use allot_core::Quantity;
use allot_store::model::{KeyClaim, Page};
use allot_store::plan::{BatchItem, Command, ItemAnswer, Outcome, ReservationStatus};
use allot_store::{Clock, Store, WritePath, WritePathConfig};
use common::*;

fn write_path(store: Arc<dyn Store>, clock: &allot_store::ManualClock) -> WritePath {
    let clock: Arc<dyn Clock> = Arc::new(clock.clone());
    let config = WritePathConfig {
        max_batch: 64,
        writers: 4,
        ..WritePathConfig::default()
    };
    WritePath::start(store, clock, config)
}

async fn ledger_sum(store: &dyn Store, entitlement_id: &str) -> (usize, i64) {
    let mut page = Page {
        after: None,
        limit: 100,
    };
    let (mut rows, mut sum) = (0, 0);
    loop {
        let entries = store.list_ledger(entitlement_id, &page).await.unwrap();
        let Some(last) = entries.last() else { break };
        page.after = Some(last.id.clone());
        rows += entries.len();
        sum += entries.iter().map(|e| e.quantity.milli()).sum::<i64>();
    }
    (rows, sum)
}

fn applied(answer: &ItemAnswer) -> bool {
    matches!(
        answer,
        ItemAnswer::Done {
            outcome: Outcome::Applied { .. },
            ..
        }
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cap_holds_with_many_writers_on_two_instances() {
    let Some(db) = fresh().await else { return };
    active_entitlement(db.store.as_ref(), "ent_cap", 100).await;
    let clock = clock();
    let paths = [
        write_path(db.store.clone(), &clock),
        write_path(db.instance().await, &clock),
    ];
    let tasks: Vec<_> = (0..32)
        .map(|task| {
            let path = paths[task % 2].clone();
            tokio::spawn(async move {
                let mut answers = Vec::new();
                for _ in 0..20 {
                    answers.push(path.submit(usage("ent_cap", 1, None)).await.unwrap());
                }
                answers
            })
        })
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        answers.extend(task.await.unwrap());
    }
    assert_eq!(answers.len(), 640);
    assert_eq!(answers.iter().filter(|a| applied(a)).count(), 100);
    for refused in answers.iter().filter(|a| !applied(a)) {
        assert!(
            matches!(
                refused,
                ItemAnswer::Done {
                    outcome: Outcome::Refused {
                        refusal: Refusal::EntitlementExhausted { .. }
                    },
                    replayed: false
                }
            ),
            "{refused:?}"
        );
    }
    let record = db.store.get_entitlement("ent_cap").await.unwrap().unwrap();
    assert_eq!(record.counters.used, Quantity::whole(100));
    assert_eq!(
        ledger_sum(db.store.as_ref(), "ent_cap").await,
        (100, record.counters.used.milli())
    );
    db.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_replays_its_first_answer() {
    let Some(db) = fresh().await else { return };
    active_entitlement(db.store.as_ref(), "ent_1", 10).await;
    let path = write_path(db.store.clone(), &clock());
    let first = path.submit(usage("ent_1", 3, Some("k1"))).await.unwrap();
    let ItemAnswer::Done {
        outcome,
        replayed: false,
    } = &first
    else {
        panic!("{first:?}")
    };
    assert!(matches!(outcome, Outcome::Applied { entries, .. } if entries.len() == 1));
    let again = path.submit(usage("ent_1", 3, Some("k1"))).await.unwrap();
    assert_eq!(
        again,
        ItemAnswer::Done {
            outcome: outcome.clone(),
            replayed: true
        }
    );
    let other_body = path.submit(usage("ent_1", 4, Some("k1"))).await.unwrap();
    assert_eq!(other_body, ItemAnswer::KeyMismatch);
    assert_eq!(ledger_sum(db.store.as_ref(), "ent_1").await, (1, 3000));
    let record = db.store.get_key("key_test", "k1").await.unwrap().unwrap();
    assert_eq!(record.fingerprint, "fp-ent_1-3");
    assert!(record.answer.is_some());
    db.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_key_on_two_instances_at_once_applies_once() {
    let Some(db) = fresh().await else { return };
    active_entitlement(db.store.as_ref(), "ent_1", 1000).await;
    let clock = clock();
    let a = write_path(db.store.clone(), &clock);
    let b = write_path(db.instance().await, &clock);
    for round in 0..20 {
        let key = format!("race_{round}");
        let (x, y) = tokio::join!(
            a.submit(usage("ent_1", 1, Some(&key))),
            b.submit(usage("ent_1", 1, Some(&key)))
        );
        let (x, y) = (x.unwrap(), y.unwrap());
        let (
            ItemAnswer::Done {
                outcome: ox,
                replayed: rx,
            },
            ItemAnswer::Done {
                outcome: oy,
                replayed: ry,
            },
        ) = (&x, &y)
        else {
            panic!("{x:?} {y:?}")
        };
        assert_eq!(ox, oy);
        assert!(rx ^ ry, "exactly one is the original: {rx} {ry}");
    }
    assert_eq!(ledger_sum(db.store.as_ref(), "ent_1").await, (20, 20_000));
    let record = db.store.get_entitlement("ent_1").await.unwrap().unwrap();
    assert_eq!(record.counters.used, Quantity::whole(20));
    db.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_write_path_finishes_an_unfinished_claim() {
    let Some(db) = fresh().await else { return };
    active_entitlement(db.store.as_ref(), "ent_1", 10).await;
    let item = usage("ent_1", 2, Some("k1"));
    let fingerprint = item.idempotency.as_ref().unwrap().fingerprint.clone();
    let stale = now() - chrono::Duration::minutes(1);
    let claim = db
        .store
        .claim_key("key_test", "k1", &fingerprint, now(), stale)
        .await
        .unwrap();
    assert_eq!(claim, KeyClaim::Claimed);
    let answers = db.store.apply_batch(&[item], today(), now()).await.unwrap();
    assert!(applied(&answers[0]));
    let record = db.store.get_key("key_test", "k1").await.unwrap().unwrap();
    assert!(record.answer.is_some());
    db.finish().await;
}

fn reservation_item(command: Command) -> BatchItem {
    BatchItem {
        command,
        actor: "key_test".into(),
        idempotency: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reservations_hold_commit_release_and_expire() {
    let Some(db) = fresh().await else { return };
    let s = db.store.as_ref();
    active_entitlement(s, "ent_1", 10).await;
    let hold = |id: &str, units: i64, minutes: i64| {
        reservation_item(Command::Hold {
            reservation_id: id.into(),
            entitlement_id: "ent_1".into(),
            quantity: Quantity::whole(units),
            channel: None,
            reference: Some(format!("ref-{id}")),
            expires_at: now() + chrono::Duration::minutes(minutes),
        })
    };
    // Two holds and a use in one batch; the third hold no longer fits.
    let answers = s
        .apply_batch(
            &[
                hold("res_1", 4, 10),
                hold("res_2", 3, 1),
                usage("ent_1", 2, None),
                hold("res_3", 2, 5),
            ],
            today(),
            now(),
        )
        .await
        .unwrap();
    assert_eq!(answers.iter().filter(|a| applied(a)).count(), 3);
    assert!(s.get_reservation("res_3").await.unwrap().is_none());
    let held = s.get_reservation("res_1").await.unwrap().unwrap();
    assert_eq!(held.status, ReservationStatus::Held);
    assert_eq!(held.quantity, Quantity::whole(4));
    assert_eq!(held.reference.as_deref(), Some("ref-res_1"));
    let counters = s.get_entitlement("ent_1").await.unwrap().unwrap().counters;
    assert_eq!(
        (counters.used, counters.held),
        (Quantity::whole(2), Quantity::whole(7))
    );

    let later = now() + chrono::Duration::minutes(2);
    assert_eq!(s.expired_reservations(later, 10).await.unwrap(), ["res_2"]);
    assert!(s.expired_reservations(now(), 10).await.unwrap().is_empty());
    let answers = s
        .apply_batch(
            &[
                reservation_item(Command::Commit {
                    reservation_id: "res_1".into(),
                    actual: Some(Quantity::whole(3)),
                }),
                reservation_item(Command::Expire {
                    reservation_id: "res_2".into(),
                }),
                reservation_item(Command::Release {
                    reservation_id: "res_1".into(),
                }),
                reservation_item(Command::Release {
                    reservation_id: "res_none".into(),
                }),
            ],
            today(),
            later,
        )
        .await
        .unwrap();
    assert!(applied(&answers[0]) && applied(&answers[1]));
    assert!(matches!(
        &answers[2],
        ItemAnswer::Done {
            outcome: Outcome::ReservationRefused { .. },
            ..
        }
    ));
    assert!(matches!(
        &answers[3],
        ItemAnswer::Done {
            outcome: Outcome::ReservationRefused { .. },
            ..
        }
    ));
    let committed = s.get_reservation("res_1").await.unwrap().unwrap();
    assert_eq!(committed.status, ReservationStatus::Committed);
    assert_eq!(committed.committed_quantity, Some(Quantity::whole(3)));
    assert_eq!(committed.settled_at, Some(later));
    let expired = s.get_reservation("res_2").await.unwrap().unwrap();
    assert_eq!(expired.status, ReservationStatus::Expired);
    assert!(s.expired_reservations(later, 10).await.unwrap().is_empty());
    let counters = s.get_entitlement("ent_1").await.unwrap().unwrap().counters;
    assert_eq!(
        (counters.used, counters.held),
        (Quantity::whole(5), Quantity::ZERO)
    );
    assert_eq!(ledger_sum(s, "ent_1").await, (2, 5000));
    let kinds: Vec<String> = s
        .list_events(
            Some("ent_1"),
            &Page {
                after: None,
                limit: 100,
            },
        )
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert!(
        kinds.iter().any(|k| k == "reservation.expired"),
        "{kinds:?}"
    );
    db.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_entitlements_are_refused_not_failed() {
    let Some(db) = fresh().await else { return };
    let answers = db
        .store
        .apply_batch(&[usage("ent_none", 1, None)], today(), now())
        .await
        .unwrap();
    assert!(matches!(
        &answers[0],
        ItemAnswer::Done {
            outcome: Outcome::Refused {
                refusal: Refusal::EntitlementNotFound { .. }
            },
            ..
        }
    ));
    assert!(db
        .store
        .apply_batch(&[], today(), now())
        .await
        .unwrap()
        .is_empty());
    db.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_committed_by_another_instance_meanwhile_is_replayed() {
    let Some(db) = fresh().await else { return };
    active_entitlement(db.store.as_ref(), "ent_1", 10).await;
    let item = usage("ent_1", 1, Some("k1"));
    let fingerprint = item.idempotency.as_ref().unwrap().fingerprint.clone();
    // What the other instance answered: recognisable, since ours would apply.
    let theirs = Outcome::Refused {
        refusal: Refusal::EntitlementNotFound {
            entitlement_id: "ent_1".into(),
        },
    };
    let mut other = db.sql().await;
    let tx = other.transaction().await.unwrap();
    tx.execute(
        "INSERT INTO idempotency_keys (scope, key, fingerprint, answer, created_at)
         VALUES ('key_test', 'k1', $1, $2, now())",
        &[&fingerprint, &serde_json::to_value(&theirs).unwrap()],
    )
    .await
    .unwrap();
    // Ours loads no key (theirs is uncommitted), plans, then waits on the
    // key's index entry until theirs commits.
    let store = db.store.clone();
    let ours = tokio::spawn(async move { store.apply_batch(&[item], today(), now()).await });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    tx.commit().await.unwrap();
    let answers = ours.await.unwrap().unwrap();
    assert_eq!(
        answers,
        [ItemAnswer::Done {
            outcome: theirs,
            replayed: true
        }]
    );
    assert_eq!(ledger_sum(db.store.as_ref(), "ent_1").await, (0, 0));
    let record = db.store.get_entitlement("ent_1").await.unwrap().unwrap();
    assert_eq!(record.counters.used, Quantity::ZERO);
    db.finish().await;
}
