//! Cases and work order references, through the write path.

use allot_core::cases::{CaseAction, CaseStatus};
use allot_core::decide::{Reason, Refusal};
use allot_core::Quantity;
use allot_store::model::CaseFilter;
use allot_store::plan::Outcome;

use crate::fixtures::*;
use crate::TestDatabase;

pub async fn a_case_uses_its_entitlement_until_cancelled(db: &TestDatabase) {
    let store = db.store();
    let s = store.as_ref();
    cases_entitlement(s, "acc_1", "ent_c", 1).await;
    let path = write_path(db, store.clone());
    let submit = |item| {
        let path = path.clone();
        async move { outcome(path.submit(item).await.unwrap()) }
    };

    let first = submit(open_case(case("cas_1", "acc_1", "ent_c"))).await;
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
    assert_eq!(counters(s, "ent_c").await.used, Quantity::whole(1));
    assert_eq!(s.get_case("cas_1").await.unwrap().as_ref(), Some(&**opened));

    // The entitlement is used up: the second case is refused and not stored.
    let second = submit(open_case(case("cas_2", "acc_1", "ent_c"))).await;
    assert!(
        matches!(
            &second,
            Outcome::Refused {
                refusal: Refusal::EntitlementExhausted { .. }
            }
        ),
        "{second:?}"
    );
    assert_eq!(s.get_case("cas_2").await.unwrap(), None);
    assert_eq!(counters(s, "ent_c").await.used, Quantity::whole(1));

    let cancelled = submit(case_action("cas_1", CaseAction::Cancel)).await;
    assert!(
        matches!(cancelled, Outcome::Applied { .. }),
        "{cancelled:?}"
    );
    assert_eq!(counters(s, "ent_c").await.used, Quantity::ZERO);
    assert_eq!(ledger_sum(s, "ent_c").await, (2, 0));
    let stored = s.get_case("cas_1").await.unwrap().unwrap();
    assert_eq!(stored.state.status, CaseStatus::Cancelled);
    assert_eq!(stored.state.charged, Quantity::ZERO);

    // A case that was never stored is missing; a deleted one stays readable.
    let missing = submit(case_action("cas_x", CaseAction::Resolve)).await;
    assert_eq!(
        missing,
        Outcome::CaseMissing {
            case_id: "cas_x".into()
        }
    );
    let deleted = submit(case_action("cas_1", CaseAction::Delete)).await;
    assert!(matches!(deleted, Outcome::Applied { .. }), "{deleted:?}");
    let stored = s.get_case("cas_1").await.unwrap().unwrap();
    assert!(stored.deleted_at.is_some());
    assert!(s
        .list_cases(&CaseFilter::default(), &page(None, 10))
        .await
        .unwrap()
        .is_empty());
    let again = submit(case_action("cas_1", CaseAction::Reactivate)).await;
    assert!(matches!(again, Outcome::CaseMissing { .. }), "{again:?}");
}

pub async fn a_work_order_is_recorded_once_per_entitlement(db: &TestDatabase) {
    let store = db.store();
    let s = store.as_ref();
    active_entitlement(s, "ent_1", 10).await;
    active_entitlement(s, "ent_2", 10).await;
    let path = write_path(db, store.clone());
    let submit = |item| {
        let path = path.clone();
        async move { outcome(path.submit(item).await.unwrap()) }
    };
    let duplicate = |reference: &str| Outcome::Refused {
        refusal: Refusal::DuplicateReference {
            entitlement_id: "ent_1".into(),
            reference: reference.into(),
        },
    };

    let first = submit(work_order("ent_1", "WO-1")).await;
    assert!(matches!(first, Outcome::Applied { .. }), "{first:?}");
    assert_eq!(submit(work_order("ent_1", "WO-1")).await, duplicate("WO-1"));
    // Another entitlement, or another number, is fine.
    let other = submit(work_order("ent_2", "WO-1")).await;
    assert!(matches!(other, Outcome::Applied { .. }), "{other:?}");

    // Both in one batch: the second sees the first.
    let answers: Vec<Outcome> = apply(
        s,
        &[work_order("ent_1", "WO-2"), work_order("ent_1", "WO-2")],
    )
    .await
    .into_iter()
    .map(outcome)
    .collect();
    assert!(matches!(answers[0], Outcome::Applied { .. }), "{answers:?}");
    assert_eq!(answers[1], duplicate("WO-2"));
    assert_eq!(counters(s, "ent_1").await.used, Quantity::whole(2));
    assert_eq!(ledger_sum(s, "ent_1").await, (2, 2000));
    assert_eq!(counters(s, "ent_2").await.used, Quantity::whole(1));
}

pub async fn cases_list_by_account_entitlement_and_status(db: &TestDatabase) {
    let store = db.store();
    let s = store.as_ref();
    cases_entitlement(s, "acc_a", "ent_a", 10).await;
    cases_entitlement(s, "acc_b", "ent_b", 10).await;
    cases_entitlement(s, "acc_b", "ent_b2", 10).await;
    let opened = apply(
        s,
        &[
            open_case(case("cas_1", "acc_a", "ent_a")),
            open_case(case("cas_2", "acc_b", "ent_b")),
            open_case(case("cas_3", "acc_b", "ent_b")),
            open_case(case("cas_4", "acc_b", "ent_b2")),
            open_case(case("cas_5", "acc_a", "ent_a")),
        ],
    )
    .await;
    let acted = apply(
        s,
        &[
            case_action("cas_3", CaseAction::Resolve),
            case_action("cas_5", CaseAction::Delete),
        ],
    )
    .await;
    for answer in opened.into_iter().chain(acted) {
        let o = outcome(answer);
        assert!(matches!(o, Outcome::Applied { .. }), "{o:?}");
    }

    let ids = |filter: CaseFilter, after: Option<&'static str>, limit: u32| async move {
        s.list_cases(&filter, &page(after, limit))
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
    let copies = db
        .query_text(
            "SELECT status, entitlement_id, \
             CASE WHEN deleted_at IS NULL THEN 'live' ELSE 'deleted' END \
             FROM cases WHERE id = 'cas_5'",
        )
        .await;
    let text = |v: &str| Some(v.to_string());
    assert_eq!(copies, [[text("open"), text("ent_a"), text("deleted")]]);
}
