//! Every multi-step write, written once for every backend: begin (the
//! caller's `WriteTx`), lock in id order, read what the locks protect,
//! decide with `allot-core` (or the batch planner), write, commit. Backends
//! supply the steps (`backend::WriteTx`); the order of the steps lives here.

use std::collections::HashMap;

use allot_core::batch::EntitlementState;
use allot_core::entitlement::{Entitlement, Status, Terms};
use allot_core::lifecycle::{self, check_edit, effective_status, event_for, renewed_terms, Action};
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::json;

use crate::answer::Answering;
use crate::audit::{snapshot, AuditContext, AuditEntry};
use crate::backend::{Changes, WriteTx};
use crate::clock::stored_time;
use crate::error::StoreError;
use crate::ids::new_id;
use crate::model::{Account, ApiKey, Contact, EntitlementRecord, Event, Product, Transition};
use crate::plan::{self, plan_batch, BatchItem, ItemAnswer, KeyWrite, Loaded, Plan};
use crate::store::TransitionResult;

/// Most entitlements one `sync_statuses` call moves; the job calls again.
pub const SYNC_LIMIT: u32 = 1_000;
/// Most candidates matching weighs for the cases of one batch.
pub const MATCHING_LIMIT: u32 = 10_000;

/// The write path's transaction: lock what the batch touches (cases, then
/// reservations, then entitlements — with the candidates of cases opened by
/// matching — each in id order), read the idempotency keys and which of
/// the batch's API keys are revoked, and only then
/// the work-order references the locks protect; plan every item in arrival
/// order; write the plan; commit.
pub async fn apply_batch<T: WriteTx>(
    tx: T,
    items: &[BatchItem],
    today: NaiveDate,
    now: DateTime<Utc>,
) -> Result<Vec<ItemAnswer>, T::Error> {
    let answers = plan_and_write(&tx, items, today, now).await?;
    tx.commit().await?;
    Ok(answers)
}

/// The write path's steps inside a transaction the caller commits (or
/// not): lock, read, plan, write. `apply_batch` commits after one call; an
/// import (`imports::run_import`) calls it once per chunk of its file and
/// commits once at the end, or rolls everything back.
pub async fn plan_and_write<T: WriteTx>(
    tx: &T,
    items: &[BatchItem],
    today: NaiveDate,
    now: DateTime<Utc>,
) -> Result<Vec<ItemAnswer>, T::Error> {
    plan_and_write_audited(tx, items, today, now, |_, _| {}).await
}

/// `plan_and_write`, with `audit` given the plan's changes before they are
/// written: an import puts one entry for the chunk in place of the plan's
/// one per applied item (`imports::chunk_audit`). Nothing else may change.
pub async fn plan_and_write_audited<T: WriteTx>(
    tx: &T,
    items: &[BatchItem],
    today: NaiveDate,
    now: DateTime<Utc>,
    audit_hook: impl FnOnce(&mut Vec<AuditEntry>, &[crate::model::LedgerEntry]),
) -> Result<Vec<ItemAnswer>, T::Error> {
    let now = stored_time(now);
    let mut loaded = Loaded::default();
    for case in tx.lock_cases(&plan::case_ids(items)).await? {
        loaded.cases.insert(case.state.id.clone(), case);
    }
    for reservation in tx.lock_reservations(&plan::reservation_ids(items)).await? {
        loaded
            .reservations
            .insert(reservation.id.clone(), reservation);
    }
    let mut entitlement_ids = plan::entitlement_ids(items, &loaded.reservations, &loaded.cases);
    let accounts = plan::matching_accounts(items);
    if !accounts.is_empty() {
        entitlement_ids.extend(tx.entitlements_of(&accounts, MATCHING_LIMIT).await?);
    }
    let key_names = plan::idempotency_keys(items);
    let actors = plan::actors(items);
    // Independent of each other: a backend may send them together.
    let (entitlements, keys, revoked) = futures::join!(
        tx.lock_entitlements(&entitlement_ids),
        tx.load_keys(&key_names),
        tx.revoked_keys(&actors)
    );
    loaded.entitlements = states(entitlements?);
    loaded.keys = keys?;
    loaded.revoked_actors = revoked?;
    loaded.references = tx.load_references(&plan::usage_references(items)).await?;
    let plan = plan_batch(&mut loaded, items, today, now);
    assert_eq!(plan.answers.len(), items.len(), "one answer per batch item");
    assert_counters_hold(&plan);
    let Plan {
        answers,
        counters,
        ledger,
        reservations,
        cases,
        keys,
        events,
        audit: audit_entries,
    } = plan;
    let mut audit = audit_entries;
    audit_hook(&mut audit, &ledger);
    let changes = Changes {
        counters,
        ledger,
        reservations,
        cases,
        answers: keys,
        events,
        audit,
        ..Changes::default()
    };
    tx.write(&changes, now).await?;
    if cfg!(debug_assertions) {
        assert_used_is_the_ledger(tx, &changes).await?;
    }
    Ok(answers)
}

/// `used == Σ ledger of the current period` for every entitlement the batch
/// wrote, read back inside the transaction (debug builds: it costs a query).
async fn assert_used_is_the_ledger<T: WriteTx>(tx: &T, changes: &Changes) -> Result<(), T::Error> {
    let periods: Vec<(String, i64)> = changes
        .counters
        .iter()
        .map(|(id, c)| (id.clone(), c.period_index))
        .collect();
    let sums = tx.ledger_sums(&periods).await?;
    assert_eq!(sums.len(), periods.len(), "one sum per period asked");
    for ((id, counters), sum) in changes.counters.iter().zip(sums) {
        assert_eq!(
            counters.used, sum,
            "entitlement {id}: used must equal the ledger of period {}",
            counters.period_index
        );
    }
    Ok(())
}

/// No batch writes counters below zero: use is given back at most down to
/// nothing, and a hold is released at most once (the rules are
/// `allot-core`'s; this checks that what is written obeys them).
fn assert_counters_hold(plan: &Plan) {
    for (id, counters) in &plan.counters {
        assert!(
            !counters.used.is_negative() && !counters.held.is_negative(),
            "entitlement {id} would be written with negative counters: {counters:?}"
        );
        for (channel, c) in &counters.channels {
            assert!(
                !c.used.is_negative() && !c.held.is_negative(),
                "channel {channel} of entitlement {id} would be written with negative counters"
            );
        }
    }
}

fn states(records: Vec<EntitlementRecord>) -> HashMap<String, EntitlementState> {
    records
        .into_iter()
        .map(|r| {
            let id = r.entitlement.id.clone();
            let state = EntitlementState {
                entitlement: r.entitlement,
                counters: r.counters,
            };
            (id, state)
        })
        .collect()
}

async fn lock_one<T: WriteTx>(tx: &T, id: &str) -> Result<EntitlementRecord, T::Error> {
    let ids = std::iter::once(id.to_string()).collect();
    let mut found = tx.lock_entitlements(&ids).await?;
    assert!(found.len() <= 1, "one row per entitlement id");
    found
        .pop()
        .ok_or_else(|| StoreError::not_found("entitlement", id).into())
}

/// Writes `changes` and the request's answer for `result`, if it has a key,
/// and commits: the answer is recorded exactly when the change is.
async fn finish<T: WriteTx, R>(
    tx: T,
    mut changes: Changes,
    answer: Option<&Answering<R>>,
    result: &R,
    now: DateTime<Utc>,
) -> Result<(), T::Error> {
    changes.answers.extend(answer.map(|a| a.write(result)));
    tx.write(&changes, now).await?;
    tx.commit().await
}

/// Records one answer on its own (a refused request changes nothing else).
pub async fn record_answer<T: WriteTx>(
    tx: T,
    answer: KeyWrite,
    now: DateTime<Utc>,
) -> Result<(), T::Error> {
    let changes = Changes {
        answers: vec![answer],
        ..Changes::default()
    };
    tx.write(&changes, now).await?;
    tx.commit().await
}

/// What a created row's audit entry says.
struct Created<'a> {
    action: &'a str,
    kind: &'a str,
    id: &'a str,
}

fn created<S: serde::Serialize>(
    ctx: &AuditContext,
    what: Created<'_>,
    after: &S,
    at: DateTime<Utc>,
) -> AuditEntry {
    AuditEntry::new(
        ctx,
        what.action,
        what.kind,
        what.id,
        None,
        snapshot(after),
        at,
    )
}

/// An account, contact or product: what its audit entry calls it, and
/// where it goes among the `Changes`.
pub trait Party: serde::Serialize + Clone {
    /// `account`, `contact` or `product`.
    const KIND: &'static str;
    fn id(&self) -> &str;
    fn created_at(&self) -> DateTime<Utc>;
    fn add_to(self, changes: &mut Changes);
}

impl Party for Account {
    const KIND: &'static str = "account";
    fn id(&self) -> &str {
        &self.id
    }
    fn created_at(&self) -> DateTime<Utc> {
        self.created_at
    }
    fn add_to(self, changes: &mut Changes) {
        changes.accounts.push(self);
    }
}

impl Party for Contact {
    const KIND: &'static str = "contact";
    fn id(&self) -> &str {
        &self.id
    }
    fn created_at(&self) -> DateTime<Utc> {
        self.created_at
    }
    fn add_to(self, changes: &mut Changes) {
        changes.contacts.push(self);
    }
}

impl Party for Product {
    const KIND: &'static str = "product";
    fn id(&self) -> &str {
        &self.id
    }
    fn created_at(&self) -> DateTime<Utc> {
        self.created_at
    }
    fn add_to(self, changes: &mut Changes) {
        changes.products.push(self);
    }
}

/// Creates an account, contact or product, audited `<kind>.create`.
pub async fn insert_party<T: WriteTx, P: Party>(
    tx: T,
    party: &P,
    ctx: &AuditContext,
    answer: Option<&Answering<P>>,
) -> Result<(), T::Error> {
    let action = format!("{}.create", P::KIND);
    let what = Created {
        action: &action,
        kind: P::KIND,
        id: party.id(),
    };
    let at = party.created_at();
    let mut changes = Changes {
        audit: vec![created(ctx, what, party, at)],
        ..Changes::default()
    };
    party.clone().add_to(&mut changes);
    finish(tx, changes, answer, party, at).await
}

pub async fn insert_api_key<T: WriteTx>(
    tx: T,
    key: &ApiKey,
    secret_hash: &str,
    ctx: &AuditContext,
    answer: Option<&Answering<ApiKey>>,
) -> Result<(), T::Error> {
    let what = Created {
        action: "api_key.create",
        kind: "api_key",
        id: &key.id,
    };
    let changes = Changes {
        audit: vec![created(ctx, what, key, key.created_at)],
        api_keys: vec![(key.clone(), secret_hash.to_string())],
        ..Changes::default()
    };
    finish(tx, changes, answer, key, key.created_at).await
}

/// Revokes a key once: whether the key exists. Revoking a revoked key
/// changes nothing and is not audited.
pub async fn revoke_api_key<T: WriteTx>(
    tx: T,
    id: &str,
    now: DateTime<Utc>,
    ctx: &AuditContext,
    answer: Option<&Answering<bool>>,
) -> Result<bool, T::Error> {
    let now = stored_time(now);
    let Some(before) = tx.lock_api_key(id).await? else {
        finish(tx, Changes::default(), answer, &false, now).await?;
        return Ok(false);
    };
    if before.revoked_at.is_some() {
        finish(tx, Changes::default(), answer, &true, now).await?;
        return Ok(true);
    }
    let after = ApiKey {
        revoked_at: Some(now),
        ..before.clone()
    };
    let entry = AuditEntry::new(
        ctx,
        "api_key.revoke",
        "api_key",
        id,
        snapshot(&before),
        snapshot(&after),
        now,
    );
    let changes = Changes {
        revoked_keys: vec![(id.to_string(), now)],
        audit: vec![entry],
        ..Changes::default()
    };
    finish(tx, changes, answer, &true, now).await?;
    Ok(true)
}

/// A new draft with zeroed counters. A second default entitlement for an
/// account fails in `write` as `Conflict { code: "default_exists" }`.
pub async fn insert_entitlement<T: WriteTx>(
    tx: T,
    entitlement: &Entitlement,
    now: DateTime<Utc>,
    ctx: &AuditContext,
    answer: Option<&Answering<EntitlementRecord>>,
) -> Result<EntitlementRecord, T::Error> {
    let now = stored_time(now);
    let record = fresh_record(entitlement.clone(), now);
    let what = Created {
        action: "entitlement.create",
        kind: "entitlement",
        id: &entitlement.id,
    };
    let changes = Changes {
        audit: vec![created(ctx, what, &record, now)],
        new_entitlements: vec![entitlement.clone()],
        ..Changes::default()
    };
    finish(tx, changes, answer, &record, now).await?;
    Ok(record)
}

pub(crate) fn fresh_record(entitlement: Entitlement, now: DateTime<Utc>) -> EntitlementRecord {
    EntitlementRecord {
        entitlement,
        renewed_to: None,
        counters: Default::default(),
        created_at: now,
        updated_at: now,
    }
}

/// Replaces the terms of a draft under its row lock; anything else is
/// refused per `lifecycle::check_edit` on the effective status.
pub async fn update_terms<T: WriteTx>(
    tx: T,
    id: &str,
    terms: &Terms,
    today: NaiveDate,
    now: DateTime<Utc>,
    ctx: &AuditContext,
    answer: Option<&Answering<EntitlementRecord>>,
) -> Result<EntitlementRecord, T::Error> {
    let now = stored_time(now);
    let before = lock_one(&tx, id).await?;
    let current = &before.entitlement;
    let (start, end) = (current.terms.start_date, current.terms.end_date);
    let effective = effective_status(current.status, start, end, today);
    check_edit(&current.terms, effective, terms).map_err(StoreError::Edit)?;
    let mut after = before.clone();
    after.entitlement.terms = terms.clone();
    after.updated_at = now;
    let entry = AuditEntry::new(
        ctx,
        "entitlement.update",
        "entitlement",
        id,
        snapshot(&before),
        snapshot(&after),
        now,
    );
    let changes = Changes {
        entitlements: vec![after.entitlement.clone()],
        audit: vec![entry],
        ..Changes::default()
    };
    finish(tx, changes, answer, &after, now).await?;
    Ok(after)
}

/// A lifecycle action asked for by a person or a client.
#[derive(Debug, Clone, Copy)]
pub struct Act<'a> {
    pub id: &'a str,
    pub action: Action,
    pub audit: &'a AuditContext,
    /// The id the new draft gets when `action` is `Renew`.
    pub renewal_id: &'a str,
    pub today: NaiveDate,
    pub now: DateTime<Utc>,
}

pub(crate) fn event(
    kind: &str,
    entitlement_id: &str,
    data: serde_json::Value,
    now: DateTime<Utc>,
) -> Event {
    Event {
        id: new_id("evt", now),
        kind: kind.to_string(),
        entitlement_id: Some(entitlement_id.to_string()),
        data,
        created_at: now,
    }
}

pub(crate) fn transition_row(
    id: &str,
    from: Status,
    to: Status,
    action: &str,
    actor: &str,
    at: DateTime<Utc>,
) -> Transition {
    Transition {
        entitlement_id: id.to_string(),
        from_status: from,
        to_status: to,
        action: action.to_string(),
        actor: actor.to_string(),
        at,
    }
}

/// Applies a lifecycle action under the row lock (per
/// `lifecycle::transition` on the effective status), recording the
/// transition, its event and its audit entry.
pub async fn transition<T: WriteTx>(
    tx: T,
    act: Act<'_>,
    answer: Option<&Answering<TransitionResult>>,
) -> Result<TransitionResult, T::Error> {
    let now = stored_time(act.now);
    let actor = act.audit.actor.as_str();
    let before = lock_one(&tx, act.id).await?;
    let terms = &before.entitlement.terms;
    let effective = effective_status(
        before.entitlement.status,
        terms.start_date,
        terms.end_date,
        act.today,
    );
    let to = lifecycle::transition(
        act.action,
        effective,
        terms.start_date,
        terms.end_date,
        act.today,
    )
    .map_err(StoreError::Lifecycle)?;
    let kind = event_for(act.action, to).as_str();
    let mut changes = Changes::default();
    let (entitlement, renewal) = if act.action == Action::Renew {
        let renewal = Entitlement {
            id: act.renewal_id.to_string(),
            terms: renewed_terms(terms, act.today),
            status: Status::Draft,
            predecessor_id: Some(act.id.to_string()),
        };
        changes.new_entitlements.push(renewal.clone());
        changes.transitions.push(transition_row(
            act.renewal_id,
            Status::Draft,
            Status::Draft,
            act.action.as_str(),
            actor,
            now,
        ));
        let data = json!({ "renewal_id": act.renewal_id });
        changes.events.push(event(kind, act.id, data, now));
        let renewed = EntitlementRecord {
            renewed_to: Some(act.renewal_id.to_string()),
            ..before.clone()
        };
        (renewed, Some(fresh_record(renewal, now)))
    } else {
        let mut after = before.clone();
        after.entitlement.status = to;
        after.updated_at = now;
        changes.entitlements.push(after.entitlement.clone());
        changes.transitions.push(transition_row(
            act.id,
            effective,
            to,
            act.action.as_str(),
            actor,
            now,
        ));
        let data = json!({ "from": effective, "to": to, "actor": actor });
        changes.events.push(event(kind, act.id, data, now));
        (after, None)
    };
    let after = match &renewal {
        Some(renewal) => Some(json!({ "renewal": snapshot(renewal) })),
        None => snapshot(&entitlement),
    };
    changes.audit.push(AuditEntry::new(
        act.audit,
        &format!("entitlement.{}", act.action.as_str()),
        "entitlement",
        act.id,
        snapshot(&before),
        after,
        now,
    ));
    let result = TransitionResult {
        entitlement,
        renewal,
    };
    finish(tx, changes, answer, &result, now).await?;
    Ok(result)
}

/// Stores the date-implied status of activated entitlements whose stored
/// status lags, with a transition, an event and an audit entry each. The
/// lagging rows are locked first, so an instance running this at the same
/// time finds them moved and records nothing twice. Moves at most
/// `SYNC_LIMIT`; returns how many moved.
pub async fn sync_statuses<T: WriteTx>(
    tx: T,
    today: NaiveDate,
    now: DateTime<Utc>,
) -> Result<u64, T::Error> {
    let now = stored_time(now);
    let mut changes = Changes::default();
    for record in tx.lock_lagging(today, SYNC_LIMIT).await? {
        let e = &record.entitlement;
        let to = effective_status(e.status, e.terms.start_date, e.terms.end_date, today);
        if to != e.status {
            let step = [(e.status, to)];
            follow_dates(&mut changes, record.entitlement, &step, now);
        }
    }
    let moved = changes.entitlements.len() as u64;
    if moved == 0 {
        return Ok(0);
    }
    tx.write(&changes, now).await?;
    tx.commit().await?;
    Ok(moved)
}

/// Stores the status the dates moved `entitlement` to (the last of
/// `steps`), with its event, a transition (`dates`, by the system) per
/// step, and one audit entry.
pub(crate) fn follow_dates(
    changes: &mut Changes,
    entitlement: Entitlement,
    steps: &[(Status, Status)],
    now: DateTime<Utc>,
) {
    for &(from, to) in steps {
        status_event(changes, &entitlement.id, from, to, now);
    }
    store_status(changes, entitlement, steps, now);
}

/// The event of one step the dates made.
pub(crate) fn status_event(
    changes: &mut Changes,
    id: &str,
    from: Status,
    to: Status,
    now: DateTime<Utc>,
) {
    let data = json!({ "from": from, "to": to, "actor": "system" });
    let kind = event_for(Action::Activate, to).as_str();
    changes.events.push(event(kind, id, data, now));
}

/// `follow_dates` without the events.
pub(crate) fn store_status(
    changes: &mut Changes,
    mut entitlement: Entitlement,
    steps: &[(Status, Status)],
    now: DateTime<Utc>,
) {
    let (Some((from, _)), Some((_, to))) = (steps.first().copied(), steps.last().copied()) else {
        return;
    };
    let id = entitlement.id.clone();
    for &(from, to) in steps {
        changes
            .transitions
            .push(transition_row(&id, from, to, "dates", "system", now));
    }
    entitlement.status = to;
    changes.entitlements.push(entitlement);
    changes.audit.push(AuditEntry::new(
        &AuditContext::system(),
        "entitlement.follow_dates",
        "entitlement",
        &id,
        Some(json!({ "status": from })),
        Some(json!({ "status": to })),
        now,
    ));
}
