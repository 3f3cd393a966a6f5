//! The batch planner both backends share: given the rows a batch touches
//! (loaded and locked by the backend), decide every item in arrival order
//! with `allot-core` and list exactly what to write. Backends only load and
//! write; they never decide.

use std::collections::{BTreeSet, HashMap};

use allot_core::balance::balance;
use allot_core::batch::{
    check_references, decide_command, reference_key, EntitlementState, Op, UsedReferences,
};
use allot_core::cases::{decide_case, CaseAction, CaseRefusal, CaseState, EntitlementFacts};
use allot_core::decide::{Change, Refusal};
use allot_core::entitlement::Entitlement;
use allot_core::events::{EventDraft, EventKind};
use allot_core::idempotency::{key_use, KeyUse};
use allot_core::matching::{eligible, CaseScope};
use allot_core::{Balance, Counters, Quantity};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::answer::StoredAnswer;
use crate::audit::{snapshot, AuditContext, AuditEntry};
use crate::ids::new_id;
use crate::model::{Event, IdempotencyRecord, LedgerEntry};

/// A held amount: counts against remaining until committed, released or expired.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    pub id: String,
    pub entitlement_id: String,
    pub quantity: Quantity,
    pub channel: Option<String>,
    pub reference: Option<String>,
    pub status: ReservationStatus,
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub settled_at: Option<DateTime<Utc>>,
    /// The amount used when committed.
    pub committed_quantity: Option<Quantity>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReservationStatus {
    Held,
    Committed,
    Released,
    Expired,
}

impl ReservationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ReservationStatus::Held => "held",
            ReservationStatus::Committed => "committed",
            ReservationStatus::Released => "released",
            ReservationStatus::Expired => "expired",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Held, Self::Committed, Self::Released, Self::Expired]
            .into_iter()
            .find(|x| x.as_str() == s)
    }
}

/// Who logged a time entry, when, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeNote {
    pub entry_id: String,
    pub actor: String,
    pub at: DateTime<Utc>,
    pub note: Option<String>,
}

/// A case as stored: the state the rules act on, and what describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseRecord {
    pub state: CaseState,
    pub account_id: String,
    pub contact_id: Option<String>,
    pub product_id: Option<String>,
    pub title: String,
    pub time_notes: Vec<TimeNote>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Deleted cases keep their row (their usage stays) but are gone for clients.
    pub deleted_at: Option<DateTime<Utc>>,
}

/// An idempotency key as used by one request.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdemKey {
    /// The API key's id: keys are scoped per API key.
    pub scope: String,
    pub key: String,
    /// A hash of method, path and body.
    pub fingerprint: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Usage or adjustments: applied all or none.
    Ledger {
        ops: Vec<Op>,
    },
    Hold {
        reservation_id: String,
        entitlement_id: String,
        quantity: Quantity,
        channel: Option<String>,
        reference: Option<String>,
        expires_at: DateTime<Utc>,
    },
    Commit {
        reservation_id: String,
        actual: Option<Quantity>,
    },
    Release {
        reservation_id: String,
    },
    /// Releases a hold whose timeout passed; a no-op if it was settled meanwhile.
    Expire {
        reservation_id: String,
    },
    /// Opens a new case on the entitlement `matching` gives it.
    OpenCase {
        case: Box<CaseRecord>,
        matching: CaseMatching,
    },
    /// Any other action on a stored case.
    Case {
        case_id: String,
        action: CaseAction,
        note: Option<TimeNote>,
    },
}

/// Where a new case's entitlement comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaseMatching {
    /// The one the case names (checked to cover it), or none.
    Given,
    /// The best covering one (`allot_core::matching::eligible`), chosen under
    /// the batch's locks among the active and waiting entitlements of the
    /// case's account and these ancestors of it (nearest first).
    Best { ancestors: Vec<String> },
}

/// What a case opened by matching says when nothing covers it.
pub const NOTHING_COVERS: &str = "no active entitlement covers this case; it is open without one";

#[derive(Debug, Clone, PartialEq)]
pub struct BatchItem {
    pub command: Command,
    pub actor: AuditContext,
    pub idempotency: Option<IdemKey>,
    /// How the item's outcome reads as a response: what its key stores.
    pub render: Render,
}

/// Renders an outcome as the response a client gets (the server's views).
/// A plain function, so a batch item stays plain data.
#[derive(Clone, Copy)]
pub struct Render(pub fn(Outcome) -> StoredAnswer);

impl Render {
    /// The outcome itself as JSON, status 200: for tools and tests that
    /// have no views of their own.
    pub const OUTCOME_JSON: Render = Render(outcome_json);

    /// By value: a handler's views take the outcome apart, and on the hot
    /// path (no key) nothing else needs it.
    pub fn answer(&self, outcome: Outcome) -> StoredAnswer {
        (self.0)(outcome)
    }
}

fn outcome_json(outcome: Outcome) -> StoredAnswer {
    StoredAnswer {
        status: 200,
        body: serde_json::to_string(&outcome).expect("outcomes serialize"),
    }
}

impl std::fmt::Debug for Render {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Render")
    }
}

impl PartialEq for Render {
    fn eq(&self, other: &Render) -> bool {
        std::ptr::fn_addr_eq(self.0, other.0)
    }
}

/// What a refused reservation action says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum ReservationRefusal {
    #[error("reservation {reservation_id} not found")]
    ReservationNotFound { reservation_id: String },
    #[error("reservation {reservation_id} is already {status}")]
    ReservationSettled {
        reservation_id: String,
        status: String,
    },
}

/// The answer to one item; stored verbatim under its idempotency key so a
/// replay answers exactly the same.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    Applied {
        entries: Vec<LedgerEntry>,
        balances: Vec<Balance>,
        warnings: Vec<String>,
        reservation: Option<Box<Reservation>>,
        #[serde(default)]
        case: Option<Box<CaseRecord>>,
    },
    Refused {
        refusal: Refusal,
    },
    CaseRefused {
        refusal: CaseRefusal,
    },
    CaseMissing {
        case_id: String,
    },
    ReservationRefused {
        refusal: ReservationRefusal,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum ItemAnswer {
    /// Decided now (applied or refused); its key, if any, stored
    /// `Render::answer` of it.
    Done { outcome: Outcome },
    /// The key was answered before: that answer, as it was sent.
    Replayed { answer: StoredAnswer },
    /// The key was used before with a different request.
    KeyMismatch,
    /// The item's API key was revoked before this transaction read it:
    /// nothing applied, nothing stored under its idempotency key.
    KeyRevoked,
}

/// The rows a batch touches, as the backend loaded (and locked) them.
#[derive(Debug, Default)]
pub struct Loaded {
    pub entitlements: HashMap<String, EntitlementState>,
    pub reservations: HashMap<String, Reservation>,
    pub cases: HashMap<String, CaseRecord>,
    /// Of the pairs `usage_references` asked for, those already in the ledger.
    pub references: UsedReferences,
    pub keys: HashMap<(String, String), IdempotencyRecord>,
    /// Of the batch's actors (`actors`), the API keys revoked, read in the
    /// transaction: the server resolves keys from a cache, so this is
    /// where a revocation stays exact for every use.
    pub revoked_actors: BTreeSet<String>,
}

/// A key to record, with its answer.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyWrite {
    pub scope: String,
    pub key: String,
    pub fingerprint: String,
    pub answer: serde_json::Value,
}

/// Everything a batch writes, in one transaction.
#[derive(Debug, Default)]
pub struct Plan {
    pub answers: Vec<ItemAnswer>,
    /// Final counters of every entitlement whose counters changed.
    pub counters: Vec<(String, Counters)>,
    pub ledger: Vec<LedgerEntry>,
    /// Reservations to insert or update (by id).
    pub reservations: Vec<Reservation>,
    /// Cases to insert or update (by id).
    pub cases: Vec<CaseRecord>,
    pub keys: Vec<KeyWrite>,
    pub events: Vec<Event>,
    /// One entry per applied item (refusals and replays change nothing).
    pub audit: Vec<AuditEntry>,
}

/// Reservations whose rows must be loaded (and locked) first.
pub fn reservation_ids(items: &[BatchItem]) -> BTreeSet<String> {
    items
        .iter()
        .filter_map(|i| match &i.command {
            Command::Commit { reservation_id, .. }
            | Command::Release { reservation_id }
            | Command::Expire { reservation_id } => Some(reservation_id.clone()),
            _ => None,
        })
        .collect()
}

/// Entitlements to load and lock, in id order (the order every writer
/// locks in, so concurrent batches never deadlock).
pub fn entitlement_ids(
    items: &[BatchItem],
    reservations: &HashMap<String, Reservation>,
    cases: &HashMap<String, CaseRecord>,
) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    for item in items {
        match &item.command {
            Command::Ledger { ops } => ids.extend(ops.iter().map(|o| o.entitlement_id.clone())),
            Command::Hold { entitlement_id, .. } => {
                ids.insert(entitlement_id.clone());
            }
            Command::Commit { reservation_id, .. }
            | Command::Release { reservation_id }
            | Command::Expire { reservation_id } => {
                if let Some(r) = reservations.get(reservation_id) {
                    ids.insert(r.entitlement_id.clone());
                }
            }
            Command::OpenCase { case, .. } => ids.extend(case.state.entitlement_id.clone()),
            Command::Case {
                case_id, action, ..
            } => {
                if let Some(c) = cases.get(case_id) {
                    ids.extend(c.state.entitlement_id.clone());
                }
                if let CaseAction::Move { to: Some(to) } = action {
                    ids.insert(to.clone());
                }
            }
        }
    }
    ids
}

/// The row an item contends for first: the write path sends items with
/// the same one to the same writer, so a hot entitlement's uses form one
/// batch instead of several queued on its row lock. Only speed depends on
/// it; the locks keep any routing correct.
pub fn contended_row(command: &Command) -> &str {
    match command {
        Command::Ledger { ops } => ops.first().map_or("", |o| o.entitlement_id.as_str()),
        Command::Hold { entitlement_id, .. } => entitlement_id,
        Command::Commit { reservation_id, .. }
        | Command::Release { reservation_id }
        | Command::Expire { reservation_id } => reservation_id,
        Command::OpenCase { case, .. } => case
            .state
            .entitlement_id
            .as_deref()
            .unwrap_or(&case.account_id),
        Command::Case { case_id, .. } => case_id,
    }
}

/// Accounts whose entitlements a case opened by matching may use: the
/// backend finds their candidates, which are locked with the batch's others.
pub fn matching_accounts(items: &[BatchItem]) -> BTreeSet<String> {
    let mut accounts = BTreeSet::new();
    for item in items {
        if let Command::OpenCase {
            case,
            matching: CaseMatching::Best { ancestors },
        } = &item.command
        {
            accounts.insert(case.account_id.clone());
            accounts.extend(ancestors.iter().cloned());
        }
    }
    accounts
}

/// Cases to load and lock first (before reservations and entitlements).
pub fn case_ids(items: &[BatchItem]) -> BTreeSet<String> {
    items
        .iter()
        .filter_map(|i| match &i.command {
            Command::Case { case_id, .. } => Some(case_id.clone()),
            _ => None,
        })
        .collect()
}

/// (entitlement, reference) pairs of direct uses in the batch: the backend
/// loads which of them the ledger already holds into `Loaded::references`.
pub fn usage_references(items: &[BatchItem]) -> BTreeSet<(String, String)> {
    items
        .iter()
        .filter_map(|i| match &i.command {
            Command::Ledger { ops } => {
                Some(ops.iter().filter_map(reference_key).collect::<Vec<_>>())
            }
            _ => None,
        })
        .flatten()
        .collect()
}

/// The distinct actors of the batch (API key ids, or `operator`), sorted:
/// whose revocation the transaction reads (`Loaded::revoked_actors`).
pub fn actors(items: &[BatchItem]) -> BTreeSet<String> {
    items.iter().map(|i| i.actor.actor.clone()).collect()
}

/// Keys to look up, sorted.
pub fn idempotency_keys(items: &[BatchItem]) -> BTreeSet<(String, String)> {
    items
        .iter()
        .filter_map(|i| {
            i.idempotency
                .as_ref()
                .map(|k| (k.scope.clone(), k.key.clone()))
        })
        .collect()
}

fn event_row(draft: EventDraft, now: DateTime<Utc>) -> Event {
    Event {
        id: new_id("evt", now),
        kind: draft.kind.as_str().to_string(),
        entitlement_id: Some(draft.entitlement_id),
        data: draft.data,
        created_at: now,
    }
}

struct Planner<'a> {
    loaded: &'a mut Loaded,
    today: NaiveDate,
    now: DateTime<Utc>,
    plan: Plan,
    touched: BTreeSet<String>,
    reservations_written: BTreeSet<String>,
    cases_written: BTreeSet<String>,
}

impl Planner<'_> {
    fn ops_outcome(
        &mut self,
        ops: &[Op],
        actor: &str,
        reservation: Option<Reservation>,
        case: Option<CaseRecord>,
    ) -> Outcome {
        if let Err(refusal) = check_references(ops, &self.loaded.references) {
            return Outcome::Refused { refusal };
        }
        match decide_command(&mut self.loaded.entitlements, ops, self.today) {
            Err(refusal) => Outcome::Refused { refusal },
            Ok(applied) => {
                self.loaded
                    .references
                    .extend(ops.iter().filter_map(reference_key));
                let mut entries = Vec::new();
                let mut warnings = Vec::new();
                let mut ids = Vec::new();
                for a in applied {
                    if let Some(draft) = a.entry {
                        let entry = LedgerEntry {
                            id: new_id("use", self.now),
                            entitlement_id: draft.entitlement_id,
                            period_index: draft.period_index,
                            channel: draft.channel,
                            quantity: draft.quantity,
                            reason: draft.reason,
                            reference: draft.reference,
                            actor: actor.to_string(),
                            created_at: self.now,
                        };
                        self.plan.ledger.push(entry.clone());
                        entries.push(entry);
                    }
                    let now = self.now;
                    self.plan
                        .events
                        .extend(a.events.into_iter().map(|e| event_row(e, now)));
                    warnings.extend(a.warnings);
                    self.touched.insert(a.entitlement_id.clone());
                    if !ids.contains(&a.entitlement_id) {
                        ids.push(a.entitlement_id);
                    }
                }
                // A case answer always shows its entitlement's balance, even when nothing changed.
                if let Some(id) = case.as_ref().and_then(|c| c.state.entitlement_id.clone()) {
                    if !ids.contains(&id) {
                        ids.push(id);
                    }
                }
                let balances = ids
                    .iter()
                    .filter_map(|id| self.loaded.entitlements.get(id))
                    .map(|s| balance(&s.entitlement, &s.counters, self.today))
                    .collect();
                if let Some(r) = &reservation {
                    self.loaded.reservations.insert(r.id.clone(), r.clone());
                    self.reservations_written.insert(r.id.clone());
                }
                if let Some(c) = &case {
                    self.loaded.cases.insert(c.state.id.clone(), c.clone());
                    self.cases_written.insert(c.state.id.clone());
                }
                Outcome::Applied {
                    entries,
                    balances,
                    warnings,
                    reservation: reservation.map(Box::new),
                    case: case.map(Box::new),
                }
            }
        }
    }

    fn held(&self, reservation_id: &str) -> Result<Reservation, Outcome> {
        let Some(r) = self.loaded.reservations.get(reservation_id) else {
            return Err(Outcome::ReservationRefused {
                refusal: ReservationRefusal::ReservationNotFound {
                    reservation_id: reservation_id.to_string(),
                },
            });
        };
        if r.status != ReservationStatus::Held {
            return Err(Outcome::ReservationRefused {
                refusal: ReservationRefusal::ReservationSettled {
                    reservation_id: reservation_id.to_string(),
                    status: r.status.as_str().to_string(),
                },
            });
        }
        Ok(r.clone())
    }

    fn decide(&mut self, item: &BatchItem) -> Outcome {
        let actor = item.actor.actor.as_str();
        match &item.command {
            Command::Ledger { ops } => self.ops_outcome(ops, actor, None, None),
            Command::Hold {
                reservation_id,
                entitlement_id,
                quantity,
                channel,
                reference,
                expires_at,
            } => {
                let op = Op {
                    entitlement_id: entitlement_id.clone(),
                    change: Change::Hold {
                        quantity: *quantity,
                        channel: channel.clone(),
                    },
                };
                let reservation = Reservation {
                    id: reservation_id.clone(),
                    entitlement_id: entitlement_id.clone(),
                    quantity: *quantity,
                    channel: channel.clone(),
                    reference: reference.clone(),
                    status: ReservationStatus::Held,
                    expires_at: *expires_at,
                    created_at: self.now,
                    settled_at: None,
                    committed_quantity: None,
                };
                self.ops_outcome(&[op], actor, Some(reservation), None)
            }
            Command::Commit {
                reservation_id,
                actual,
            } => {
                let r = match self.held(reservation_id) {
                    Ok(r) => r,
                    Err(outcome) => return outcome,
                };
                let actual = actual.unwrap_or(r.quantity);
                let op = Op {
                    entitlement_id: r.entitlement_id.clone(),
                    change: Change::CommitHold {
                        held: r.quantity,
                        actual,
                        channel: r.channel.clone(),
                        reference: r.reference.clone().or_else(|| Some(r.id.clone())),
                    },
                };
                let settled = Reservation {
                    status: ReservationStatus::Committed,
                    settled_at: Some(self.now),
                    committed_quantity: Some(actual),
                    ..r
                };
                self.ops_outcome(&[op], actor, Some(settled), None)
            }
            Command::Release { reservation_id } | Command::Expire { reservation_id } => {
                let expiring = matches!(item.command, Command::Expire { .. });
                let r = match self.held(reservation_id) {
                    Ok(r) => r,
                    Err(outcome) => return outcome,
                };
                if expiring && r.expires_at > self.now {
                    return Outcome::ReservationRefused {
                        refusal: ReservationRefusal::ReservationSettled {
                            reservation_id: r.id.clone(),
                            status: "held".into(),
                        },
                    };
                }
                let op = Op {
                    entitlement_id: r.entitlement_id.clone(),
                    change: Change::Release {
                        quantity: r.quantity,
                        channel: r.channel.clone(),
                    },
                };
                let status = if expiring {
                    ReservationStatus::Expired
                } else {
                    ReservationStatus::Released
                };
                let settled = Reservation {
                    status,
                    settled_at: Some(self.now),
                    ..r.clone()
                };
                let outcome = self.ops_outcome(&[op], actor, Some(settled), None);
                if expiring && matches!(outcome, Outcome::Applied { .. }) {
                    let draft = EventDraft::new(
                        EventKind::ReservationExpired,
                        &r.entitlement_id,
                        json!({ "reservation_id": r.id, "quantity": r.quantity }),
                    );
                    self.plan.events.push(event_row(draft, self.now));
                }
                outcome
            }
            Command::OpenCase { case, matching } => {
                let mut case = (**case).clone();
                let mut warnings = Vec::new();
                if let CaseMatching::Best { ancestors } = matching {
                    case.state.entitlement_id = self.best_match(&case, ancestors);
                    if case.state.entitlement_id.is_none() {
                        warnings.push(NOTHING_COVERS.to_string());
                    }
                }
                let mut outcome = self.case_outcome(case, &CaseAction::Open, None, actor);
                if let Outcome::Applied {
                    warnings: decided, ..
                } = &mut outcome
                {
                    warnings.append(decided);
                    *decided = warnings;
                }
                outcome
            }
            Command::Case {
                case_id,
                action,
                note,
            } => match self.loaded.cases.get(case_id) {
                Some(record) if record.deleted_at.is_none() => {
                    let record = record.clone();
                    self.case_outcome(record, action, note.clone(), actor)
                }
                _ => Outcome::CaseMissing {
                    case_id: case_id.clone(),
                },
            },
        }
    }

    /// What an item acts on, for its audit entry.
    fn audit_target(&self, item: &BatchItem) -> AuditTarget {
        let (action, kind, id) = match &item.command {
            Command::Ledger { ops } => {
                let adjust = ops
                    .iter()
                    .any(|o| matches!(o.change, allot_core::decide::Change::Adjust { .. }));
                let id = ops
                    .first()
                    .map(|o| o.entitlement_id.clone())
                    .unwrap_or_default();
                (
                    if adjust {
                        "usage.adjust"
                    } else {
                        "usage.record"
                    }
                    .to_string(),
                    "entitlement",
                    id,
                )
            }
            Command::Hold { reservation_id, .. } => (
                "reservation.hold".into(),
                "reservation",
                reservation_id.clone(),
            ),
            Command::Commit { reservation_id, .. } => (
                "reservation.commit".into(),
                "reservation",
                reservation_id.clone(),
            ),
            Command::Release { reservation_id } => (
                "reservation.release".into(),
                "reservation",
                reservation_id.clone(),
            ),
            Command::Expire { reservation_id } => (
                "reservation.expire".into(),
                "reservation",
                reservation_id.clone(),
            ),
            Command::OpenCase { case, .. } => ("case.open".into(), "case", case.state.id.clone()),
            Command::Case {
                case_id, action, ..
            } => (format!("case.{}", action.name()), "case", case_id.clone()),
        };
        AuditTarget { action, kind, id }
    }

    /// The audited state of a target: the object, or an entitlement's counters.
    fn audit_state(&self, target: &AuditTarget) -> Option<serde_json::Value> {
        match target.kind {
            "entitlement" => self
                .loaded
                .entitlements
                .get(&target.id)
                .and_then(|s| snapshot(&s.counters)),
            "reservation" => self.loaded.reservations.get(&target.id).and_then(snapshot),
            _ => self.loaded.cases.get(&target.id).and_then(snapshot),
        }
    }

    /// The entitlement matching gives a new case, from the locked states of
    /// its account's and ancestors' entitlements.
    fn best_match(&self, case: &CaseRecord, ancestors: &[String]) -> Option<String> {
        let candidates: Vec<Entitlement> = self
            .loaded
            .entitlements
            .values()
            .filter(|s| {
                let account = &s.entitlement.terms.account_id;
                *account == case.account_id || ancestors.contains(account)
            })
            .map(|s| s.entitlement.clone())
            .collect();
        let scope = CaseScope {
            account_id: &case.account_id,
            ancestors,
            contact_id: case.contact_id.as_deref(),
            product_id: case.product_id.as_deref(),
            channel: case.state.channel.as_deref(),
        };
        eligible(&candidates, &scope, self.today)
            .first()
            .map(|e| e.id.clone())
    }

    /// Decides a case action with `allot-core`, then applies its ops like any use.
    fn case_outcome(
        &mut self,
        mut record: CaseRecord,
        action: &CaseAction,
        note: Option<TimeNote>,
        actor: &str,
    ) -> Outcome {
        let entitlements = &self.loaded.entitlements;
        let facts = |id: &str| {
            entitlements
                .get(id)
                .map(|s| EntitlementFacts::of(&s.entitlement))
        };
        let effect = match decide_case(&record.state, action, &facts) {
            Ok(effect) => effect,
            Err(refusal) => return Outcome::CaseRefused { refusal },
        };
        record.state = effect.case;
        record.updated_at = self.now;
        if effect.deleted {
            record.deleted_at = Some(self.now);
        }
        match action {
            CaseAction::LogTime { .. } => record.time_notes.extend(note),
            CaseAction::DeleteTime { entry_id } => {
                record.time_notes.retain(|n| &n.entry_id != entry_id)
            }
            _ => {}
        }
        self.ops_outcome(&effect.ops, actor, None, Some(record))
    }
}

struct AuditTarget {
    action: String,
    kind: &'static str,
    id: String,
}

/// The answer a used key gives again. Keys stored by versions before
/// `StoredAnswer` hold the outcome itself: rendered now, as it would have
/// been then. What cannot be read is never guessed at.
fn replayed_answer(stored: &serde_json::Value, render: Render) -> ItemAnswer {
    if let Some(answer) = StoredAnswer::from_value(stored) {
        return ItemAnswer::Replayed { answer };
    }
    match serde_json::from_value::<Outcome>(stored.clone()) {
        Ok(outcome) => ItemAnswer::Replayed {
            answer: render.answer(outcome),
        },
        Err(_) => ItemAnswer::KeyMismatch,
    }
}

/// Decides every item of a batch in arrival order.
pub fn plan_batch(
    loaded: &mut Loaded,
    items: &[BatchItem],
    today: NaiveDate,
    now: DateTime<Utc>,
) -> Plan {
    let mut planner = Planner {
        loaded,
        today,
        now,
        plan: Plan::default(),
        touched: BTreeSet::new(),
        reservations_written: BTreeSet::new(),
        cases_written: BTreeSet::new(),
    };
    for item in items {
        // Before the key's replay: a revoked key gets nothing, not even
        // an answer it was given before.
        if planner.loaded.revoked_actors.contains(&item.actor.actor) {
            planner.plan.answers.push(ItemAnswer::KeyRevoked);
            continue;
        }
        if let Some(key) = &item.idempotency {
            let stored = planner
                .loaded
                .keys
                .get(&(key.scope.clone(), key.key.clone()));
            let stored = stored.map(|rec| (rec.fingerprint.as_str(), rec.answer.as_ref()));
            let replay = match key_use(stored, &key.fingerprint) {
                // A claim its own request never finished: the write path,
                // which records the answer with the effect, takes it over.
                KeyUse::InFlight => KeyUse::Fresh,
                other => other,
            };
            match replay {
                KeyUse::Mismatch => {
                    planner.plan.answers.push(ItemAnswer::KeyMismatch);
                    continue;
                }
                KeyUse::Replay(answer) => {
                    planner
                        .plan
                        .answers
                        .push(replayed_answer(&answer, item.render));
                    continue;
                }
                KeyUse::Fresh | KeyUse::InFlight => {}
            }
        }
        let target = planner.audit_target(item);
        let before = planner.audit_state(&target);
        let outcome = planner.decide(item);
        if matches!(outcome, Outcome::Applied { .. }) {
            let after = planner.audit_state(&target);
            let entry = AuditEntry::new(
                &item.actor,
                &target.action,
                target.kind,
                &target.id,
                before,
                after,
                now,
            );
            planner.plan.audit.push(entry);
        }
        if let Some(key) = &item.idempotency {
            let answer = item.render.answer(outcome.clone()).to_value();
            planner.loaded.keys.insert(
                (key.scope.clone(), key.key.clone()),
                IdempotencyRecord {
                    fingerprint: key.fingerprint.clone(),
                    answer: Some(answer.clone()),
                    created_at: now,
                },
            );
            planner.plan.keys.push(KeyWrite {
                scope: key.scope.clone(),
                key: key.key.clone(),
                fingerprint: key.fingerprint.clone(),
                answer,
            });
        }
        planner.plan.answers.push(ItemAnswer::Done { outcome });
    }
    let Planner {
        loaded,
        mut plan,
        touched,
        reservations_written,
        cases_written,
        ..
    } = planner;
    plan.cases = cases_written
        .into_iter()
        .filter_map(|id| loaded.cases.get(&id).cloned())
        .collect();
    plan.counters = touched
        .into_iter()
        .filter_map(|id| {
            loaded
                .entitlements
                .get(&id)
                .map(|s| (id.clone(), s.counters.clone()))
        })
        .collect();
    plan.reservations = reservations_written
        .into_iter()
        .filter_map(|id| loaded.reservations.get(&id).cloned())
        .collect();
    plan
}

#[cfg(test)]
mod tests;
