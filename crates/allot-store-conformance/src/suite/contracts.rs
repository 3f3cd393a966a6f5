//! Contracts, templates and the default entitlement in storage: actions
//! flowing down in one transaction, expiry once across two instances,
//! instantiation all or none, make-default moving the default.

use allot_core::contracts::{ContractAction, ContractStatus};
use allot_core::entitlement::{Period, Status, Unit};
use allot_core::lifecycle::Action;
use allot_core::templates::{Duration, TemplateTerms};
use allot_core::{DecrementOn, Quantity};
use allot_store::contracts::{Contract, ContractAct, EntitlementTemplate, Instantiation, Moment};
use allot_store::{Store, StoreError};

use crate::fixtures::*;
use crate::TestDatabase;

fn at_now(ctx: &allot_store::AuditContext) -> Moment<'_> {
    Moment {
        audit: ctx,
        today: today(),
        now: now(),
    }
}

fn contract(id: &str, account: &str, number: &str) -> Contract {
    Contract {
        id: id.into(),
        account_id: account.into(),
        number: number.into(),
        name: None,
        start_date: day(2026, 1, 1),
        end_date: day(2026, 12, 31),
        auto_renew: false,
        status: ContractStatus::Draft,
        predecessor_id: None,
        renewed_to: None,
        created_at: now(),
        updated_at: now(),
    }
}

async fn act(store: &dyn Store, id: &str, action: ContractAction) -> Result<(), StoreError> {
    let who = tester();
    let request = ContractAct {
        id: id.into(),
        action,
        renewal_number: None,
    };
    store
        .contract_action(&request, at_now(&who), None)
        .await
        .map(|_| ())
}

async fn status_of(store: &dyn Store, id: &str) -> Status {
    store
        .get_entitlement(id)
        .await
        .unwrap()
        .unwrap()
        .entitlement
        .status
}

async fn kinds(store: &dyn Store, id: &str) -> Vec<String> {
    store
        .list_events(Some(id), &all())
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect()
}

pub async fn contract_actions_flow_down_and_expiry_runs_once(db: &TestDatabase) {
    let store = db.store();
    let s = store.as_ref();
    add_account(s, "acc_1", None).await;
    s.insert_contract(&contract("ctr_1", "acc_1", "N-1"), &tester(), None)
        .await
        .unwrap();
    let taken = s
        .insert_contract(&contract("ctr_2", "acc_1", "N-1"), &tester(), None)
        .await;
    assert!(
        matches!(
            taken,
            Err(StoreError::Conflict {
                code: "contract_number_taken",
                ..
            })
        ),
        "{taken:?}"
    );
    let mut t = terms("acc_1", Some(10));
    t.contract_id = Some("ctr_1".into());
    add_draft(s, "ent_1", t.clone()).await;
    transition(s, "ent_1", Action::Activate, &tester(), "", now())
        .await
        .unwrap();
    add_draft(s, "ent_2", t).await;

    act(s, "ctr_1", ContractAction::Activate).await.unwrap();
    act(s, "ctr_1", ContractAction::Suspend).await.unwrap();
    assert_eq!(status_of(s, "ent_1").await, Status::Suspended);
    assert_eq!(status_of(s, "ent_2").await, Status::Draft);
    act(s, "ctr_1", ContractAction::Resume).await.unwrap();
    assert_eq!(status_of(s, "ent_1").await, Status::Active);
    act(s, "ctr_1", ContractAction::Cancel).await.unwrap();
    assert_eq!(status_of(s, "ent_1").await, Status::Cancelled);
    assert_eq!(status_of(s, "ent_2").await, Status::Cancelled);
    assert_eq!(
        kinds(s, "ent_1").await,
        [
            "entitlement.activated",
            "entitlement.suspended",
            "entitlement.resumed",
            "entitlement.cancelled"
        ]
    );
    let refused = act(s, "ctr_1", ContractAction::Resume).await;
    assert!(matches!(
        refused,
        Err(StoreError::Conflict {
            code: "invalid_transition",
            ..
        })
    ));

    // Expiry: two instances at once store it, and its events, once.
    let mut ending = contract("ctr_3", "acc_1", "N-3");
    ending.end_date = day(2026, 3, 31);
    s.insert_contract(&ending, &tester(), None).await.unwrap();
    act(s, "ctr_3", ContractAction::Activate).await.unwrap();
    let mut t = terms("acc_1", Some(10));
    t.contract_id = Some("ctr_3".into());
    t.end_date = day(2026, 3, 31);
    add_draft(s, "ent_3", t).await;
    let other = db.instance().await;
    let later = day(2026, 4, 1);
    let when = at(2026, 4, 1);
    let (a, b) = tokio::join!(
        s.expire_contracts(later, when, 100),
        other.expire_contracts(later, when, 100)
    );
    assert_eq!(a.unwrap() + b.unwrap(), 1);
    assert_eq!(s.expire_contracts(later, when, 100).await.unwrap(), 0);
    assert_eq!(status_of(s, "ent_3").await, Status::Expired);
    assert_eq!(kinds(s, "ent_3").await, ["entitlement.expired"]);
    let stored = s.get_contract("ctr_3").await.unwrap().unwrap();
    assert_eq!(stored.status, ContractStatus::Expired);
}

fn bronze() -> TemplateTerms {
    TemplateTerms {
        name: "Bronze".into(),
        unit: Unit::Cases,
        total: Some(Quantity::whole(10)),
        period: Period::Quarter,
        rollover: Quantity::ZERO,
        restrict: true,
        decrement_on: DecrementOn::Creation,
        channels: vec![],
        product_ids: vec![],
        alert_thresholds: vec![],
        rounding: None,
        sla: None,
        duration: Duration::Months(12),
    }
}

pub async fn instantiation_is_all_or_nothing_and_make_default_moves_it(db: &TestDatabase) {
    let store = db.store();
    let s = store.as_ref();
    add_account(s, "acc_1", None).await;
    add_account(s, "acc_2", None).await;
    let template = EntitlementTemplate {
        id: "tpl_1".into(),
        terms: bronze(),
        created_at: now(),
        updated_at: now(),
    };
    s.insert_template(&template, &tester(), None).await.unwrap();
    let request = |accounts: &[&str]| Instantiation {
        template_id: "tpl_1".into(),
        account_ids: accounts.iter().map(|a| a.to_string()).collect(),
        start_date: Some(day(2026, 1, 1)),
        activate: true,
        contract_id: None,
        contract_line_id: None,
    };
    let who = tester();
    let refused = s
        .instantiate_template(&request(&["acc_1", "acc_9", "acc_2"]), at_now(&who), None)
        .await;
    match refused {
        Err(StoreError::Invalid(invalid)) => {
            let fields: Vec<&str> = invalid.0.iter().map(|e| e.field.as_str()).collect();
            assert_eq!(fields, ["account_ids[1]"]);
        }
        other => panic!("expected a refusal naming the account, got {other:?}"),
    }
    let filter = allot_store::model::EntitlementFilter::default();
    assert!(s
        .list_entitlements(&filter, &all())
        .await
        .unwrap()
        .is_empty());

    let made = s
        .instantiate_template(&request(&["acc_1", "acc_2"]), at_now(&who), None)
        .await
        .unwrap();
    assert_eq!(made.len(), 2);
    for r in &made {
        let back = s.get_entitlement(&r.entitlement.id).await.unwrap().unwrap();
        assert_eq!(back.entitlement.status, Status::Active);
        assert_eq!(back.entitlement.terms.template_id.as_deref(), Some("tpl_1"));
        assert_eq!(back.entitlement.terms.end_date, day(2026, 12, 31));
    }

    // Editing the template leaves what it made as it was.
    let mut edited = template.clone();
    edited.terms.total = Some(Quantity::whole(99));
    s.update_template(&edited, &tester(), None).await.unwrap();
    let kept = s
        .get_entitlement(&made[0].entitlement.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kept.entitlement.terms.total, Some(Quantity::whole(10)));

    // make-default: the old default stops being one in the same transaction.
    let (first, second) = (&made[0].entitlement.id, &made[1].entitlement.id);
    let mut t = terms("acc_1", Some(5));
    t.is_default = true;
    add_draft(s, "ent_default", t).await;
    let moved = s.make_default(first, at_now(&who), None).await.unwrap();
    assert!(moved.entitlement.terms.is_default);
    let old = s.get_entitlement("ent_default").await.unwrap().unwrap();
    assert!(!old.entitlement.terms.is_default);
    // Another account's default is not touched.
    s.make_default(second, at_now(&who), None).await.unwrap();
    let still = s.get_entitlement(first).await.unwrap().unwrap();
    assert!(still.entitlement.terms.is_default);
}
