//! What every store test builds from: the dates, the one `Terms` fixture,
//! batch items, and one helper per store call the tests make in passing
//! (a test of a method itself calls it directly).

use std::sync::Arc;

use allot_core::batch::Op;
use allot_core::cases::{CaseAction, CaseState};
use allot_core::decide::{Change, Reason};
use allot_core::entitlement::{Entitlement, Status, Terms, Unit};
use allot_core::lifecycle::Action;
use allot_core::{Counters, Quantity};
use allot_store::audit::{AuditContext, AuditEntry, AuditFilter};
use allot_store::model::{Account, EntitlementRecord, Page};
use allot_store::plan::{
    BatchItem, CaseMatching, CaseRecord, Command, IdemKey, ItemAnswer, Outcome, Render,
};
use allot_store::sequences::Act;
use allot_store::{
    Clock, ManualClock, Store, StoreResult, TransitionResult, WritePath, WritePathConfig,
};
use chrono::{DateTime, NaiveDate, TimeZone, Utc};

use crate::TestDatabase;

pub use allot_core::test_support::day;

/// Noon on a day.
pub fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, 12, 0, 0).unwrap()
}

/// The tests' "now": mid-March 2026.
pub fn now() -> DateTime<Utc> {
    at(2026, 3, 10)
}

pub fn today() -> NaiveDate {
    now().date_naive()
}

pub fn page(after: Option<&str>, limit: u32) -> Page {
    Page {
        after: after.map(Into::into),
        limit,
    }
}

pub fn all() -> Page {
    page(None, 1000)
}

/// An actor known by key id alone.
pub fn actor(id: &str) -> AuditContext {
    id.into()
}

pub fn tester() -> AuditContext {
    actor("tester")
}

pub fn account(id: &str, parent: Option<&str>) -> Account {
    Account {
        id: id.into(),
        name: format!("Account {id}"),
        parent_id: parent.map(Into::into),
        manager_name: None,
        manager_email: None,
        created_at: now(),
        external_id: None,
    }
}

/// The one `Terms` fixture (`allot_core::test_support::terms`: hours, over
/// 2026, restricted) for another account and total.
pub fn terms(account_id: &str, total: Option<i64>) -> Terms {
    Terms {
        account_id: account_id.into(),
        total: total.map(Quantity::whole),
        ..allot_core::test_support::terms()
    }
}

pub fn draft(id: &str, terms: Terms) -> Entitlement {
    Entitlement {
        id: id.into(),
        terms,
        status: Status::Draft,
        predecessor_id: None,
    }
}

pub async fn insert_account(
    store: &dyn Store,
    account: &Account,
    who: &AuditContext,
) -> StoreResult<()> {
    store.insert_account(account, who, None).await
}

pub async fn add_account(store: &dyn Store, id: &str, parent: Option<&str>) -> Account {
    let account = account(id, parent);
    insert_account(store, &account, &tester()).await.unwrap();
    account
}

/// Inserts the draft `id` with `terms`, created at `at` by `who`.
pub async fn insert_draft(
    store: &dyn Store,
    id: &str,
    terms: Terms,
    at: DateTime<Utc>,
    who: &AuditContext,
) -> StoreResult<EntitlementRecord> {
    store
        .insert_entitlement(&draft(id, terms), at, who, None)
        .await
}

pub async fn add_draft(store: &dyn Store, id: &str, terms: Terms) -> EntitlementRecord {
    insert_draft(store, id, terms, now(), &tester())
        .await
        .unwrap()
}

/// Replaces a draft's terms at `when`, as `who`.
pub async fn edit_as(
    store: &dyn Store,
    id: &str,
    terms: &Terms,
    when: DateTime<Utc>,
    who: &AuditContext,
) -> StoreResult<EntitlementRecord> {
    store
        .update_terms(id, terms, when.date_naive(), when, who, None)
        .await
}

/// Replaces a draft's terms at `when`, as the tester.
pub async fn edit(
    store: &dyn Store,
    id: &str,
    terms: &Terms,
    when: DateTime<Utc>,
) -> StoreResult<EntitlementRecord> {
    edit_as(store, id, terms, when, &tester()).await
}

/// A lifecycle action by `who` at `when`; `renewal_id` names a renewal.
pub async fn transition(
    store: &dyn Store,
    id: &str,
    action: Action,
    who: &AuditContext,
    renewal_id: &str,
    when: DateTime<Utc>,
) -> StoreResult<TransitionResult> {
    store
        .transition(
            Act {
                id,
                action,
                audit: who,
                renewal_id,
                today: when.date_naive(),
                now: when,
            },
            None,
        )
        .await
}

/// `action` by the tester, now, refused or not.
pub async fn act(store: &dyn Store, id: &str, action: Action) -> StoreResult<TransitionResult> {
    transition(store, id, action, &tester(), "", now()).await
}

pub async fn activate(store: &dyn Store, id: &str) -> EntitlementRecord {
    act(store, id, Action::Activate).await.unwrap().entitlement
}

pub async fn sync(store: &dyn Store, when: DateTime<Utc>) -> u64 {
    store.sync_statuses(when.date_naive(), when).await.unwrap()
}

pub async fn entitlement(store: &dyn Store, id: &str) -> EntitlementRecord {
    store.get_entitlement(id).await.unwrap().expect(id)
}

pub async fn counters(store: &dyn Store, id: &str) -> Counters {
    entitlement(store, id).await.counters
}

/// An account `acc_<id>` with one active entitlement `id` of `total`.
pub async fn active_entitlement(store: &dyn Store, id: &str, total: i64) -> EntitlementRecord {
    let account_id = format!("acc_{id}");
    add_account(store, &account_id, None).await;
    add_draft(store, id, terms(&account_id, Some(total))).await;
    activate(store, id).await
}

/// An active entitlement `id` of `total` cases, charged when a case opens,
/// on `account_id` (created if needed).
pub async fn cases_entitlement(store: &dyn Store, account_id: &str, id: &str, total: i64) {
    if store.get_account(account_id).await.unwrap().is_none() {
        add_account(store, account_id, None).await;
    }
    let mut t = terms(account_id, Some(total));
    t.unit = Unit::Cases;
    add_draft(store, id, t).await;
    activate(store, id).await;
}

/// An item of the batch, by `key_test`, without a key.
pub fn item(command: Command) -> BatchItem {
    BatchItem {
        command,
        actor: actor("key_test"),
        idempotency: None,
        render: Render::OUTCOME_JSON,
    }
}

/// What a key that answered `outcome` answers again.
pub fn replay_of(outcome: &Outcome) -> ItemAnswer {
    ItemAnswer::Replayed {
        answer: Render::OUTCOME_JSON.answer(outcome.clone()),
    }
}

/// A use of `units`, under idempotency key `key` when given (the
/// fingerprint names the entitlement and the units).
pub fn usage(entitlement_id: &str, units: i64, key: Option<&str>) -> BatchItem {
    consume(entitlement_id, units, None, key)
}

/// A use of one unit for a work order `reference`.
pub fn work_order(entitlement_id: &str, reference: &str) -> BatchItem {
    consume(entitlement_id, 1, Some(reference), None)
}

fn consume(
    entitlement_id: &str,
    units: i64,
    reference: Option<&str>,
    key: Option<&str>,
) -> BatchItem {
    BatchItem {
        idempotency: key.map(|k| IdemKey {
            scope: "key_test".into(),
            key: k.into(),
            fingerprint: format!("fp-{entitlement_id}-{units}"),
        }),
        ..item(Command::Ledger {
            ops: vec![Op {
                entitlement_id: entitlement_id.into(),
                change: Change::Consume {
                    quantity: Quantity::whole(units),
                    channel: None,
                    reason: Reason::Usage,
                    reference: reference.map(Into::into),
                },
            }],
        })
    }
}

/// A hold of `units` on `entitlement_id` until `expires_at`.
pub fn hold(id: &str, entitlement_id: &str, units: i64, expires_at: DateTime<Utc>) -> BatchItem {
    item(Command::Hold {
        reservation_id: id.into(),
        entitlement_id: entitlement_id.into(),
        quantity: Quantity::whole(units),
        channel: None,
        reference: Some(format!("ref-{id}")),
        expires_at,
    })
}

pub fn case(id: &str, account_id: &str, entitlement_id: &str) -> CaseRecord {
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

pub fn open_case(record: CaseRecord) -> BatchItem {
    item(Command::OpenCase {
        case: Box::new(record),
        matching: CaseMatching::Given,
    })
}

pub fn case_action(case_id: &str, action: CaseAction) -> BatchItem {
    item(Command::Case {
        case_id: case_id.into(),
        action,
        note: None,
    })
}

/// Applies one batch now.
pub async fn apply(store: &dyn Store, items: &[BatchItem]) -> Vec<ItemAnswer> {
    apply_at(store, items, now()).await
}

pub async fn apply_at(
    store: &dyn Store,
    items: &[BatchItem],
    when: DateTime<Utc>,
) -> Vec<ItemAnswer> {
    let answers = store
        .apply_batch(items, when.date_naive(), when)
        .await
        .unwrap();
    assert_eq!(answers.len(), items.len(), "one answer per item");
    answers
}

/// A write path over `store` at the tests' "now", run as the server runs
/// this backend.
pub fn write_path(db: &TestDatabase, store: Arc<dyn Store>) -> WritePath {
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(now()));
    let config = WritePathConfig {
        max_batch: 64,
        writers: db.writers,
        ..WritePathConfig::default()
    };
    WritePath::start(store, clock, config)
}

pub fn applied(answer: &ItemAnswer) -> bool {
    matches!(
        answer,
        ItemAnswer::Done {
            outcome: Outcome::Applied { .. },
            ..
        }
    )
}

/// The outcome of an item that was not a replay.
pub fn outcome(answer: ItemAnswer) -> Outcome {
    match answer {
        ItemAnswer::Done { outcome } => outcome,
        other => panic!("{other:?}"),
    }
}

/// How many ledger rows `entitlement_id` has, and their sum in thousandths,
/// read page by page.
pub async fn ledger_sum(store: &dyn Store, entitlement_id: &str) -> (usize, i64) {
    let mut page = page(None, 100);
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

/// The transitions of `entitlement_id`, in order, as
/// "Draft -> Waiting: activate by usr_1".
pub async fn steps(store: &dyn Store, entitlement_id: &str) -> Vec<String> {
    store
        .list_transitions(entitlement_id)
        .await
        .unwrap()
        .into_iter()
        .map(|t| {
            let (from, to) = (t.from_status, t.to_status);
            format!("{from:?} -> {to:?}: {} by {}", t.action, t.actor)
        })
        .collect()
}

/// The kinds of the events of `entitlement_id`, in order.
pub async fn event_kinds(store: &dyn Store, entitlement_id: &str) -> Vec<String> {
    store
        .list_events(Some(entitlement_id), &all())
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect()
}

pub async fn audit_of(store: &dyn Store, target_id: &str) -> Vec<AuditEntry> {
    let filter = AuditFilter {
        target_id: Some(target_id.into()),
        ..AuditFilter::default()
    };
    store.list_audit(&filter, &all()).await.unwrap()
}

/// The one entry `target_id` gained since it had `seen`.
pub async fn one_new_audit(store: &dyn Store, target_id: &str, seen: usize) -> AuditEntry {
    let entries = audit_of(store, target_id).await;
    assert_eq!(entries.len(), seen + 1, "{entries:#?}");
    entries.last().unwrap().clone()
}

/// Scheduler passes of `store` at `when` (its UTC day), three entitlements
/// a pass, until nothing is owed a look; the events they emitted.
pub async fn schedule(store: &dyn Store, when: DateTime<Utc>) -> u64 {
    let notices = allot_core::schedule::ExpiringSoon::default();
    let mut events = 0;
    for _ in 0..100 {
        let pass = store
            .run_schedule(&notices, when.date_naive(), when, 3)
            .await
            .unwrap();
        if pass.looked_at == 0 {
            return events;
        }
        events += pass.events;
    }
    panic!("the scheduler still finds work after 100 passes");
}
