//! Cases and work order references on PostgreSQL, through the write path.

mod common;

use std::sync::Arc;

use allot_core::batch::Op;
use allot_core::cases::{CaseAction, CaseState, CaseStatus};
use allot_core::decide::{Change, Reason, Refusal};
use allot_core::entitlement::Unit;
use allot_core::lifecycle::Action;
use allot_core::Quantity;
use allot_store::model::{CaseFilter, Page};
use allot_store::plan::{BatchItem, CaseRecord, Command, ItemAnswer, Outcome};
use allot_store::{Clock, Store, WritePath, WritePathConfig};
use common::*;

fn write_path(store: Arc<dyn Store>) -> WritePath {
    let clock: Arc<dyn Clock> = Arc::new(clock());
    let config = WritePathConfig {
        max_batch: 64,
        writers: 4,
        ..WritePathConfig::default()
    };
    WritePath::start(store, clock, config)
}

fn page(after: Option<&str>, limit: u32) -> Page {
    Page {
        after: after.map(Into::into),
        limit,
    }
}

/// An account `account_id` (created if needed) with an active cases
/// entitlement `id` of `total` cases, charged on creation.
async fn cases_entitlement(store: &dyn Store, account_id: &str, id: &str, total: i64) {
    if store.get_account(account_id).await.unwrap().is_none() {
        store
            .insert_account(&account(account_id, None), &"tester".into())
            .await
            .unwrap();
    }
    let mut t = terms(account_id, Some(total));
    t.name = "Support cases".into();
    t.unit = Unit::Cases;
    store
        .insert_entitlement(&draft(id, t), now(), &"tester".into())
        .await
        .unwrap();
    store
        .transition(id, Action::Activate, &"tester".into(), "", today(), now())
        .await
        .unwrap();
}

fn case(id: &str, account_id: &str, entitlement_id: &str) -> CaseRecord {
    CaseRecord {
        state: CaseState::new(id, Some(entitlement_id.into()), None, false),
        account_id: account_id.into(),
        contact_id: None,
        product_id: Some("prd_1".into()),
        title: format!("Case {id}"),
        time_notes: vec![],
        created_at: now(),
        updated_at: now(),
        deleted_at: None,
    }
}

fn open(record: CaseRecord) -> BatchItem {
    BatchItem {
        command: Command::OpenCase {
            case: Box::new(record),
            warnings: Vec::new(),
        },
        actor: "key_test".into(),
        idempotency: None,
    }
}

fn act(case_id: &str, action: CaseAction) -> BatchItem {
    BatchItem {
        command: Command::Case {
            case_id: case_id.into(),
            action,
            note: None,
        },
        actor: "key_test".into(),
        idempotency: None,
    }
}

fn work_order(entitlement_id: &str, reference: &str) -> BatchItem {
    BatchItem {
        command: Command::Ledger {
            ops: vec![Op {
                entitlement_id: entitlement_id.into(),
                change: Change::Consume {
                    quantity: Quantity::whole(1),
                    channel: None,
                    reason: Reason::Usage,
                    reference: Some(reference.into()),
                },
            }],
        },
        actor: "key_test".into(),
        idempotency: None,
    }
}

fn outcome(answer: ItemAnswer) -> Outcome {
    match answer {
        ItemAnswer::Done {
            outcome,
            replayed: false,
        } => outcome,
        other => panic!("{other:?}"),
    }
}

async fn used(store: &dyn Store, id: &str) -> Quantity {
    store
        .get_entitlement(id)
        .await
        .unwrap()
        .unwrap()
        .counters
        .used
}

async fn ledger_sum(store: &dyn Store, id: &str) -> i64 {
    store
        .list_ledger(id, &page(None, 100))
        .await
        .unwrap()
        .iter()
        .map(|e| e.quantity.milli())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_case_uses_its_entitlement_until_cancelled() {
    let Some(db) = fresh().await else { return };
    let store = db.store.as_ref();
    cases_entitlement(store, "acc_1", "ent_c", 1).await;
    let path = write_path(db.store.clone());

    let first = outcome(
        path.submit(open(case("cas_1", "acc_1", "ent_c")))
            .await
            .unwrap(),
    );
    let Outcome::Applied {
        entries,
        case: Some(opened),
        ..
    } = &first
    else {
        panic!("{first:?}")
    };
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].reason, Reason::CaseOpened);
    assert_eq!(opened.state.charged, Quantity::whole(1));
    assert_eq!(used(store, "ent_c").await, Quantity::whole(1));
    assert_eq!(
        store.get_case("cas_1").await.unwrap().as_ref(),
        Some(&**opened)
    );

    // The entitlement is used up: the second case is refused and not stored.
    let second = outcome(
        path.submit(open(case("cas_2", "acc_1", "ent_c")))
            .await
            .unwrap(),
    );
    assert!(
        matches!(
            &second,
            Outcome::Refused {
                refusal: Refusal::EntitlementExhausted { .. }
            }
        ),
        "{second:?}"
    );
    assert_eq!(store.get_case("cas_2").await.unwrap(), None);
    assert_eq!(used(store, "ent_c").await, Quantity::whole(1));

    let cancelled = outcome(path.submit(act("cas_1", CaseAction::Cancel)).await.unwrap());
    assert!(
        matches!(cancelled, Outcome::Applied { .. }),
        "{cancelled:?}"
    );
    assert_eq!(used(store, "ent_c").await, Quantity::ZERO);
    assert_eq!(ledger_sum(store, "ent_c").await, 0);
    let stored = store.get_case("cas_1").await.unwrap().unwrap();
    assert_eq!(stored.state.status, CaseStatus::Cancelled);
    assert_eq!(stored.state.charged, Quantity::ZERO);

    // A case that was never stored is missing; a deleted one stays readable.
    let missing = outcome(
        path.submit(act("cas_x", CaseAction::Resolve))
            .await
            .unwrap(),
    );
    assert_eq!(
        missing,
        Outcome::CaseMissing {
            case_id: "cas_x".into()
        }
    );
    let deleted = outcome(path.submit(act("cas_1", CaseAction::Delete)).await.unwrap());
    assert!(matches!(deleted, Outcome::Applied { .. }), "{deleted:?}");
    assert!(store
        .get_case("cas_1")
        .await
        .unwrap()
        .unwrap()
        .deleted_at
        .is_some());
    assert!(store
        .list_cases(&CaseFilter::default(), &page(None, 10))
        .await
        .unwrap()
        .is_empty());
    let again = outcome(
        path.submit(act("cas_1", CaseAction::Reactivate))
            .await
            .unwrap(),
    );
    assert!(matches!(again, Outcome::CaseMissing { .. }), "{again:?}");
    db.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_work_order_is_recorded_once_per_entitlement() {
    let Some(db) = fresh().await else { return };
    let store = db.store.as_ref();
    active_entitlement(store, "ent_1", 10).await;
    active_entitlement(store, "ent_2", 10).await;
    let path = write_path(db.store.clone());

    let first = outcome(path.submit(work_order("ent_1", "WO-1")).await.unwrap());
    assert!(matches!(first, Outcome::Applied { .. }), "{first:?}");
    let second = outcome(path.submit(work_order("ent_1", "WO-1")).await.unwrap());
    assert_eq!(
        second,
        Outcome::Refused {
            refusal: Refusal::DuplicateReference {
                entitlement_id: "ent_1".into(),
                reference: "WO-1".into()
            }
        }
    );
    // Another entitlement, or another number, is fine.
    let other = outcome(path.submit(work_order("ent_2", "WO-1")).await.unwrap());
    assert!(matches!(other, Outcome::Applied { .. }), "{other:?}");

    // Both in one batch: the second sees the first.
    let answers = store
        .apply_batch(
            &[work_order("ent_1", "WO-2"), work_order("ent_1", "WO-2")],
            today(),
            now(),
        )
        .await
        .unwrap();
    let answers: Vec<Outcome> = answers.into_iter().map(outcome).collect();
    assert!(matches!(answers[0], Outcome::Applied { .. }), "{answers:?}");
    assert_eq!(
        answers[1],
        Outcome::Refused {
            refusal: Refusal::DuplicateReference {
                entitlement_id: "ent_1".into(),
                reference: "WO-2".into()
            }
        }
    );
    assert_eq!(used(store, "ent_1").await, Quantity::whole(2));
    assert_eq!(ledger_sum(store, "ent_1").await, 2000);
    assert_eq!(used(store, "ent_2").await, Quantity::whole(1));
    db.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cases_list_by_account_entitlement_and_status() {
    let Some(db) = fresh().await else { return };
    let store = db.store.as_ref();
    cases_entitlement(store, "acc_a", "ent_a", 10).await;
    cases_entitlement(store, "acc_b", "ent_b", 10).await;
    cases_entitlement(store, "acc_b", "ent_b2", 10).await;
    let items = vec![
        open(case("cas_1", "acc_a", "ent_a")),
        open(case("cas_2", "acc_b", "ent_b")),
        open(case("cas_3", "acc_b", "ent_b")),
        open(case("cas_4", "acc_b", "ent_b2")),
        open(case("cas_5", "acc_a", "ent_a")),
    ];
    let answers = store.apply_batch(&items, today(), now()).await.unwrap();
    for answer in answers {
        let o = outcome(answer);
        assert!(matches!(o, Outcome::Applied { .. }), "{o:?}");
    }
    let answers = store
        .apply_batch(
            &[
                act("cas_3", CaseAction::Resolve),
                act("cas_5", CaseAction::Delete),
            ],
            today(),
            now(),
        )
        .await
        .unwrap();
    for answer in answers {
        let o = outcome(answer);
        assert!(matches!(o, Outcome::Applied { .. }), "{o:?}");
    }

    let ids = |filter: CaseFilter, after: Option<&'static str>, limit: u32| async move {
        store
            .list_cases(&filter, &page(after, limit))
            .await
            .unwrap()
            .into_iter()
            .map(|c| c.state.id)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        ids(CaseFilter::default(), None, 10).await,
        ["cas_1", "cas_2", "cas_3", "cas_4"]
    );
    assert_eq!(
        ids(CaseFilter::default(), None, 2).await,
        ["cas_1", "cas_2"]
    );
    assert_eq!(
        ids(CaseFilter::default(), Some("cas_2"), 10).await,
        ["cas_3", "cas_4"]
    );
    assert!(ids(CaseFilter::default(), None, 0).await.is_empty());
    let by_account = CaseFilter {
        account_id: Some("acc_a".into()),
        ..CaseFilter::default()
    };
    assert_eq!(ids(by_account, None, 10).await, ["cas_1"]);
    let by_entitlement = CaseFilter {
        entitlement_id: Some("ent_b".into()),
        ..CaseFilter::default()
    };
    assert_eq!(ids(by_entitlement, None, 10).await, ["cas_2", "cas_3"]);
    let open_on_b = CaseFilter {
        account_id: Some("acc_b".into()),
        status: Some(CaseStatus::Open),
        ..CaseFilter::default()
    };
    assert_eq!(ids(open_on_b, None, 10).await, ["cas_2", "cas_4"]);
    let resolved = CaseFilter {
        account_id: Some("acc_b".into()),
        entitlement_id: Some("ent_b".into()),
        status: Some(CaseStatus::Resolved),
    };
    assert_eq!(ids(resolved, None, 10).await, ["cas_3"]);
    let nothing = CaseFilter {
        account_id: Some("acc_a".into()),
        entitlement_id: Some("ent_b".into()),
        ..CaseFilter::default()
    };
    assert!(ids(nothing, None, 10).await.is_empty());
    // The copies beside the record follow it.
    let row = db
        .sql()
        .await
        .query_one(
            "SELECT status, entitlement_id, deleted_at IS NOT NULL FROM cases WHERE id = 'cas_5'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "open");
    assert_eq!(row.get::<_, Option<String>>(1).as_deref(), Some("ent_a"));
    assert!(row.get::<_, bool>(2));
    db.finish().await;
}
