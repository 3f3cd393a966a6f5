//! What a case action does to usage (DESIGN 2.4).
//!
//! [`decide_case`] takes a case as stored, one [`CaseAction`] and a way to
//! look up the facts of an entitlement ([`EntitlementFacts`]: unit,
//! decrement_on, rounding), and answers with the case as it is after the
//! action and the [`Op`]s the action writes. It does not check caps, status
//! or channels of the entitlements: the batch planner applies the ops with
//! [`crate::batch::decide_command`], all or none, and that is where a use
//! may be refused.
//!
//! # How the ops are found
//!
//! Every case has, for its applied entitlement, a *target*: what it should
//! have charged there given its status, `do_not_decrement` and the
//! entitlement's facts ([`charge_targets`]). An action changes the case
//! (status, time entries, applied entitlement) and then charges or gives
//! back the difference between what the case has charged and its target,
//! with the action's [`Reason`]. That one rule gives every rule of the
//! product issue:
//!
//! | unit  | decrement_on | charged while                                  |
//! |-------|--------------|------------------------------------------------|
//! | cases | creation     | 1 while the case is not cancelled               |
//! | cases | resolution   | 1 while the case is resolved                    |
//! | hours | creation     | every time entry, whatever the status           |
//! | hours | resolution   | every time entry while the case is resolved     |
//! | visits, units | any  | nothing (visits are recorded separately)        |
//!
//! With `do_not_decrement`, or without an applied entitlement, nothing is
//! charged. Each time entry is charged and given back on its own, with the
//! amount it was rounded to, so every ledger entry names one case (every op
//! carries `reference: Some(case_id)` and the case's channel).
//!
//! # Decisions where the product issue is silent
//!
//! - **Cancelling a resolved case, decrement on resolution**, gives back what
//!   the resolution used (the 1 case, or the resolved hours), reason
//!   `case_cancelled`: usage in resolution mode exists only while the case is
//!   resolved. Reactivating that cancelled case makes it open and uncharged.
//! - **Cancelling a case, hours, decrement on creation** gives nothing back:
//!   the time was spent. Reactivating it changes nothing either.
//! - **Logging time on a resolved case, hours, decrement on resolution**
//!   charges the entry at once (reason `time_logged`): the case is already
//!   resolved, and reactivating it gives the entry back with the others.
//! - **Time entries** are refused (`unit_not_hours`) on a case whose applied
//!   entitlement is not in hours. On a case with no entitlement they are
//!   recorded uncharged. Moving a case keeps its time entries; whether they
//!   are charged on the new entitlement follows its facts (so uncharged
//!   entries are charged when the case moves onto an hours entitlement that
//!   decrements on creation).
//! - **Rounding** applies per entry and per entitlement: [`TimeEntry`] keeps
//!   the hours as logged and the hours as rounded for the applied
//!   entitlement; a move re-rounds with the new entitlement's increment
//!   (which is also what `decide` would do with the consumed amount).
//! - **Deleting a time entry** is allowed whatever the case's status (it
//!   corrects a mistake); a charged entry is given back (`time_entry_deleted`).
//! - **Deleting a case** writes nothing, whatever its status and unit: the
//!   case simply ends ([`CaseEffect::deleted`]), its usage stays.
//! - **`Open`** is accepted only on a fresh case (open, nothing charged, no
//!   time entries); anything else is `invalid_case_transition`.
//! - **`Move`** onto the case's current entitlement is a no-op; onto an
//!   unknown one is refused. The old entitlement's facts are not needed (what
//!   is charged is on the case), so a case can move off an entitlement that
//!   no longer exists.
//! - A stored case whose charges disagree with its target (e.g. the
//!   `do_not_decrement` flag was switched on after it was charged) is put
//!   right by its next action, with that action's reason.
//!
//! `CaseState` gained two things over the sketch in the issue: `channel`
//! (so ops count against the case's channel terms) and
//! `TimeEntry::logged` (so a move can re-round).

use serde::{Deserialize, Serialize};

use crate::batch::Op;
use crate::decide::{Change, Reason};
use crate::entitlement::{DecrementOn, Entitlement, Unit};
use crate::quantity::Quantity;

/// The most a single time entry may log.
pub const MAX_HOURS_PER_ENTRY: Quantity = Quantity::whole(24);
/// The most time entries one case keeps: bounds the ops a move of the case
/// writes (one per charged entry).
pub const MAX_TIME_ENTRIES: usize = 1_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseStatus {
    Open,
    Resolved,
    Cancelled,
}

impl CaseStatus {
    pub const ALL: [CaseStatus; 3] = [
        CaseStatus::Open,
        CaseStatus::Resolved,
        CaseStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CaseStatus::Open => "open",
            CaseStatus::Resolved => "resolved",
            CaseStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<CaseStatus> {
        CaseStatus::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

impl std::fmt::Display for CaseStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a case needs to know about the entitlement applied to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntitlementFacts {
    pub unit: Unit,
    pub decrement_on: DecrementOn,
    /// Hours increment each time entry rounds up to.
    pub rounding: Option<Quantity>,
}

impl EntitlementFacts {
    pub fn of(ent: &Entitlement) -> EntitlementFacts {
        EntitlementFacts {
            unit: ent.terms.unit,
            decrement_on: ent.terms.decrement_on,
            rounding: ent.terms.rounding,
        }
    }
}

/// Hours of a time entry as counted on an entitlement: rounded up to its
/// increment when it is an hours entitlement with rounding, else as logged.
pub fn rounded_hours(facts: Option<&EntitlementFacts>, logged: Quantity) -> Quantity {
    match facts {
        Some(EntitlementFacts {
            unit: Unit::Hours,
            rounding: Some(inc),
            ..
        }) => logged.round_up_to(*inc),
        _ => logged,
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeEntry {
    pub id: String,
    /// As the agent logged it.
    pub logged: Quantity,
    /// Rounded for the applied entitlement; what is (or would be) charged.
    pub hours: Quantity,
    /// Whether `hours` is currently used on the applied entitlement.
    pub charged: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseState {
    pub id: String,
    pub status: CaseStatus,
    pub entitlement_id: Option<String>,
    /// The case's channel; ops count against it.
    pub channel: Option<String>,
    pub do_not_decrement: bool,
    /// The case count charged to the applied entitlement: 0 or 1.
    pub charged: Quantity,
    pub time_entries: Vec<TimeEntry>,
}

impl CaseState {
    /// A case about to be opened: open, nothing charged, no time entries.
    pub fn new(
        id: impl Into<String>,
        entitlement_id: Option<String>,
        channel: Option<String>,
        do_not_decrement: bool,
    ) -> CaseState {
        CaseState {
            id: id.into(),
            status: CaseStatus::Open,
            entitlement_id,
            channel,
            do_not_decrement,
            charged: Quantity::ZERO,
            time_entries: Vec::new(),
        }
    }

    /// Hours of the charged time entries.
    pub fn charged_hours(&self) -> Quantity {
        self.time_entries
            .iter()
            .filter(|e| e.charged)
            .map(|e| e.hours)
            .sum()
    }

    fn is_fresh(&self) -> bool {
        self.status == CaseStatus::Open && self.charged.is_zero() && self.time_entries.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum CaseAction {
    Open,
    Resolve,
    Cancel,
    Reactivate,
    Delete,
    LogTime { entry_id: String, hours: Quantity },
    DeleteTime { entry_id: String },
    Move { to: Option<String> },
}

impl CaseAction {
    pub fn name(&self) -> &'static str {
        match self {
            CaseAction::Open => "open",
            CaseAction::Resolve => "resolve",
            CaseAction::Cancel => "cancel",
            CaseAction::Reactivate => "reactivate",
            CaseAction::Delete => "delete",
            CaseAction::LogTime { .. } => "log_time",
            CaseAction::DeleteTime { .. } => "delete_time",
            CaseAction::Move { .. } => "move",
        }
    }
}

/// The case after an action, and the ops to apply (all or none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseEffect {
    pub case: CaseState,
    pub ops: Vec<Op>,
    /// The case ends (the action was `Delete`); `case` is its last state.
    pub deleted: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum CaseRefusal {
    #[error("case {case_id} is {from}; cannot {action} it")]
    InvalidCaseTransition {
        case_id: String,
        from: CaseStatus,
        action: String,
    },
    #[error("case {case_id} has no time entry {entry_id}")]
    TimeEntryNotFound { case_id: String, entry_id: String },
    #[error("case {case_id} already has a time entry {entry_id}")]
    DuplicateTimeEntry { case_id: String, entry_id: String },
    #[error("time entry {entry_id}: hours must be greater than 0 and at most 24; got {hours}")]
    InvalidHours { entry_id: String, hours: Quantity },
    #[error("entitlement {entitlement_id} counts {}, not hours; time entries cannot be logged against it", .unit.as_str())]
    UnitNotHours { entitlement_id: String, unit: Unit },
    #[error("entitlement {entitlement_id} does not exist")]
    EntitlementNotFound { entitlement_id: String },
    #[error("case {case_id} already has {max} time entries, the most a case keeps")]
    TooManyTimeEntries { case_id: String, max: usize },
}

impl CaseRefusal {
    /// Stable machine-readable code; the same as the serialized `code` tag.
    pub fn code(&self) -> &'static str {
        match self {
            CaseRefusal::InvalidCaseTransition { .. } => "invalid_case_transition",
            CaseRefusal::TimeEntryNotFound { .. } => "time_entry_not_found",
            CaseRefusal::DuplicateTimeEntry { .. } => "duplicate_time_entry",
            CaseRefusal::InvalidHours { .. } => "invalid_hours",
            CaseRefusal::UnitNotHours { .. } => "unit_not_hours",
            CaseRefusal::EntitlementNotFound { .. } => "entitlement_not_found",
            CaseRefusal::TooManyTimeEntries { .. } => "too_many_time_entries",
        }
    }
}

/// What a case should have charged on its applied entitlement: (the case
/// count, every time entry).
pub fn charge_targets(
    status: CaseStatus,
    do_not_decrement: bool,
    facts: Option<&EntitlementFacts>,
) -> (bool, bool) {
    let Some(f) = facts else {
        return (false, false);
    };
    if do_not_decrement {
        return (false, false);
    }
    match (f.unit, f.decrement_on) {
        (Unit::Cases, DecrementOn::Creation) => (status != CaseStatus::Cancelled, false),
        (Unit::Cases, DecrementOn::Resolution) => (status == CaseStatus::Resolved, false),
        (Unit::Hours, DecrementOn::Creation) => (false, true),
        (Unit::Hours, DecrementOn::Resolution) => (false, status == CaseStatus::Resolved),
        (Unit::Visits | Unit::Units, _) => (false, false),
    }
}

/// Decides one action on a case. `facts` looks up an entitlement's facts by
/// id; `None` means the entitlement does not exist and the action is refused.
pub fn decide_case(
    case: &CaseState,
    action: &CaseAction,
    facts: &dyn Fn(&str) -> Option<EntitlementFacts>,
) -> Result<CaseEffect, CaseRefusal> {
    let lookup = |id: &str| {
        facts(id).ok_or_else(|| CaseRefusal::EntitlementNotFound {
            entitlement_id: id.to_string(),
        })
    };
    let transition = || CaseRefusal::InvalidCaseTransition {
        case_id: case.id.clone(),
        from: case.status,
        action: action.name().to_string(),
    };
    let mut after = case.clone();
    let mut ops = Vec::new();
    let current = match &case.entitlement_id {
        Some(id) if !matches!(action, CaseAction::Delete | CaseAction::Move { .. }) => {
            Some(lookup(id)?)
        }
        _ => None,
    };
    let reason = match action {
        CaseAction::Delete => {
            return Ok(CaseEffect {
                case: after,
                ops,
                deleted: true,
            })
        }
        CaseAction::Move { to } => {
            if *to == case.entitlement_id {
                return Ok(CaseEffect {
                    case: after,
                    ops,
                    deleted: false,
                });
            }
            let new_facts = match to {
                Some(id) => Some(lookup(id)?),
                None => None,
            };
            if let Some(old) = &case.entitlement_id {
                if case.charged.milli() > 0 {
                    ops.push(give_back(case, old, case.charged, Reason::CaseMovedOut));
                }
                for entry in case.time_entries.iter().filter(|e| e.charged) {
                    ops.push(give_back(case, old, entry.hours, Reason::CaseMovedOut));
                }
            }
            after.charged = Quantity::ZERO;
            for entry in &mut after.time_entries {
                entry.charged = false;
                entry.hours = rounded_hours(new_facts.as_ref(), entry.logged);
            }
            after.entitlement_id = to.clone();
            settle(
                &mut after,
                new_facts.as_ref(),
                Reason::CaseMovedIn,
                &mut ops,
            );
            return Ok(CaseEffect {
                case: after,
                ops,
                deleted: false,
            });
        }
        CaseAction::Open => {
            if !case.is_fresh() {
                return Err(transition());
            }
            Reason::CaseOpened
        }
        CaseAction::Resolve => {
            if case.status != CaseStatus::Open {
                return Err(transition());
            }
            after.status = CaseStatus::Resolved;
            Reason::CaseResolved
        }
        CaseAction::Cancel => {
            if case.status == CaseStatus::Cancelled {
                return Err(transition());
            }
            after.status = CaseStatus::Cancelled;
            Reason::CaseCancelled
        }
        CaseAction::Reactivate => {
            if case.status == CaseStatus::Open {
                return Err(transition());
            }
            after.status = CaseStatus::Open;
            Reason::CaseReactivated
        }
        CaseAction::LogTime { entry_id, hours } => {
            if case.status == CaseStatus::Cancelled {
                return Err(transition());
            }
            if let (Some(id), Some(f)) = (&case.entitlement_id, &current) {
                if f.unit != Unit::Hours {
                    return Err(CaseRefusal::UnitNotHours {
                        entitlement_id: id.clone(),
                        unit: f.unit,
                    });
                }
            }
            if hours.milli() <= 0 || *hours > MAX_HOURS_PER_ENTRY {
                return Err(CaseRefusal::InvalidHours {
                    entry_id: entry_id.clone(),
                    hours: *hours,
                });
            }
            if case.time_entries.len() >= MAX_TIME_ENTRIES {
                return Err(CaseRefusal::TooManyTimeEntries {
                    case_id: case.id.clone(),
                    max: MAX_TIME_ENTRIES,
                });
            }
            if case.time_entries.iter().any(|e| e.id == *entry_id) {
                return Err(CaseRefusal::DuplicateTimeEntry {
                    case_id: case.id.clone(),
                    entry_id: entry_id.clone(),
                });
            }
            after.time_entries.push(TimeEntry {
                id: entry_id.clone(),
                logged: *hours,
                hours: rounded_hours(current.as_ref(), *hours),
                charged: false,
            });
            Reason::TimeLogged
        }
        CaseAction::DeleteTime { entry_id } => {
            let pos = case
                .time_entries
                .iter()
                .position(|e| e.id == *entry_id)
                .ok_or_else(|| CaseRefusal::TimeEntryNotFound {
                    case_id: case.id.clone(),
                    entry_id: entry_id.clone(),
                })?;
            let entry = after.time_entries.remove(pos);
            if let (true, Some(id)) = (entry.charged, &case.entitlement_id) {
                ops.push(give_back(case, id, entry.hours, Reason::TimeEntryDeleted));
            }
            Reason::TimeEntryDeleted
        }
    };
    settle(&mut after, current.as_ref(), reason, &mut ops);
    Ok(CaseEffect {
        case: after,
        ops,
        deleted: false,
    })
}

/// Charges or gives back, on the case's applied entitlement, whatever
/// separates what it has charged from its target.
fn settle(
    case: &mut CaseState,
    facts: Option<&EntitlementFacts>,
    reason: Reason,
    ops: &mut Vec<Op>,
) {
    let Some(ent_id) = case.entitlement_id.clone() else {
        return;
    };
    let (count, time) = charge_targets(case.status, case.do_not_decrement, facts);
    if count && case.charged.is_zero() {
        ops.push(consume(case, &ent_id, Quantity::whole(1), reason));
        case.charged = Quantity::whole(1);
    } else if !count && case.charged.milli() > 0 {
        ops.push(give_back(case, &ent_id, case.charged, reason));
        case.charged = Quantity::ZERO;
    }
    let mut entry_ops = Vec::new();
    for entry in case.time_entries.iter_mut().filter(|e| e.charged != time) {
        entry.charged = time;
        let quantity = entry.hours;
        entry_ops.push((quantity, time));
    }
    for (quantity, charge) in entry_ops {
        if quantity.milli() <= 0 {
            continue;
        }
        ops.push(if charge {
            consume(case, &ent_id, quantity, reason)
        } else {
            give_back(case, &ent_id, quantity, reason)
        });
    }
}

fn consume(case: &CaseState, ent_id: &str, quantity: Quantity, reason: Reason) -> Op {
    Op {
        entitlement_id: ent_id.to_string(),
        change: Change::Consume {
            quantity,
            channel: case.channel.clone(),
            reason,
            reference: Some(case.id.clone()),
        },
    }
}

fn give_back(case: &CaseState, ent_id: &str, quantity: Quantity, reason: Reason) -> Op {
    Op {
        entitlement_id: ent_id.to_string(),
        change: Change::GiveBack {
            quantity,
            channel: case.channel.clone(),
            reason,
            reference: Some(case.id.clone()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    use crate::balance::Counters;
    use crate::batch::{decide_command, EntitlementState};
    use crate::test_support::{active, day, terms};
    use proptest::prelude::*;

    fn q(s: &str) -> Quantity {
        s.parse().unwrap()
    }

    fn f(unit: Unit, decrement_on: DecrementOn, rounding: Option<&str>) -> EntitlementFacts {
        EntitlementFacts {
            unit,
            decrement_on,
            rounding: rounding.map(q),
        }
    }

    const CASES_CREATION: EntitlementFacts = EntitlementFacts {
        unit: Unit::Cases,
        decrement_on: DecrementOn::Creation,
        rounding: None,
    };
    const CASES_RESOLUTION: EntitlementFacts = EntitlementFacts {
        unit: Unit::Cases,
        decrement_on: DecrementOn::Resolution,
        rounding: None,
    };

    /// Runs actions against a case applied to "ent_1" with `facts` (and
    /// "ent_2" with `other`), failing on any refusal; returns each step's ops.
    struct World {
        facts: HashMap<String, EntitlementFacts>,
        case: CaseState,
    }

    impl World {
        fn new(facts: EntitlementFacts) -> World {
            World::with(facts, CASES_CREATION, false)
        }

        fn with(facts: EntitlementFacts, other: EntitlementFacts, dnd: bool) -> World {
            World {
                facts: HashMap::from([("ent_1".into(), facts), ("ent_2".into(), other)]),
                case: CaseState::new("case_1", Some("ent_1".into()), None, dnd),
            }
        }

        fn try_do(&mut self, action: CaseAction) -> Result<CaseEffect, CaseRefusal> {
            let lookup = |id: &str| self.facts.get(id).copied();
            let effect = decide_case(&self.case, &action, &lookup)?;
            self.case = effect.case.clone();
            Ok(effect)
        }

        /// Decides `action` without keeping its effect.
        fn peek(&self, action: CaseAction) -> CaseEffect {
            let lookup = |id: &str| self.facts.get(id).copied();
            decide_case(&self.case, &action, &lookup).expect("accepted")
        }

        /// The ops as (entitlement, signed quantity, reason).
        fn act(&mut self, action: CaseAction) -> Vec<(String, Quantity, Reason)> {
            let effect = self.try_do(action).expect("accepted");
            effect.ops.iter().map(summary).collect()
        }
    }

    fn summary(op: &Op) -> (String, Quantity, Reason) {
        match &op.change {
            Change::Consume {
                quantity,
                reason,
                reference,
                ..
            } => {
                assert_eq!(reference.as_deref(), Some("case_1"));
                (op.entitlement_id.clone(), *quantity, *reason)
            }
            Change::GiveBack {
                quantity,
                reason,
                reference,
                ..
            } => {
                assert_eq!(reference.as_deref(), Some("case_1"));
                (op.entitlement_id.clone(), -*quantity, *reason)
            }
            other => panic!("unexpected change {other:?}"),
        }
    }

    fn on1(n: &str, reason: Reason) -> (String, Quantity, Reason) {
        ("ent_1".into(), q(n), reason)
    }

    fn on2(n: &str, reason: Reason) -> (String, Quantity, Reason) {
        ("ent_2".into(), q(n), reason)
    }

    fn log(id: &str, hours: &str) -> CaseAction {
        CaseAction::LogTime {
            entry_id: id.into(),
            hours: q(hours),
        }
    }

    fn del_time(id: &str) -> CaseAction {
        CaseAction::DeleteTime {
            entry_id: id.into(),
        }
    }

    fn move_to(id: Option<&str>) -> CaseAction {
        CaseAction::Move {
            to: id.map(String::from),
        }
    }

    use CaseAction::{Cancel, Delete, Open, Reactivate, Resolve};

    #[test]
    fn cases_creation_opening_uses_one_and_resolving_nothing() {
        let mut w = World::new(CASES_CREATION);
        assert_eq!(w.act(Open), vec![on1("1", Reason::CaseOpened)]);
        assert_eq!(w.case.charged, q("1"));
        assert_eq!(w.act(Resolve), vec![]);
        assert_eq!(w.act(Reactivate), vec![], "reactivating a resolved case");
        assert_eq!(w.case.status, CaseStatus::Open);
    }

    #[test]
    fn cases_creation_cancelling_gives_back_and_reactivating_uses_again() {
        let mut w = World::new(CASES_CREATION);
        w.act(Open);
        assert_eq!(w.act(Cancel), vec![on1("-1", Reason::CaseCancelled)]);
        assert_eq!(w.case.charged, Quantity::ZERO);
        assert_eq!(w.act(Reactivate), vec![on1("1", Reason::CaseReactivated)]);
        w.act(Resolve);
        assert_eq!(
            w.act(Cancel),
            vec![on1("-1", Reason::CaseCancelled)],
            "cancelling a resolved case"
        );
    }

    #[test]
    fn cases_creation_cancelling_an_uncharged_case_gives_nothing_back() {
        let mut w = World::new(CASES_CREATION);
        w.case.do_not_decrement = true;
        w.act(Open);
        assert_eq!(w.act(Cancel), vec![]);
    }

    #[test]
    fn deleting_a_case_gives_nothing_back() {
        for facts in [
            CASES_CREATION,
            CASES_RESOLUTION,
            f(Unit::Hours, DecrementOn::Creation, None),
        ] {
            let mut w = World::new(facts);
            w.act(Open);
            if facts.unit == Unit::Hours {
                w.act(log("t1", "2"));
            } else {
                w.act(Resolve);
            }
            let before = w.case.clone();
            let effect = w.try_do(Delete).unwrap();
            assert!(effect.deleted);
            assert!(effect.ops.is_empty());
            assert_eq!(effect.case, before);
        }
    }

    #[test]
    fn cases_resolution_resolving_uses_one_and_reactivating_gives_it_back() {
        let mut w = World::new(CASES_RESOLUTION);
        assert_eq!(w.act(Open), vec![]);
        assert_eq!(w.act(Resolve), vec![on1("1", Reason::CaseResolved)]);
        assert_eq!(w.act(Reactivate), vec![on1("-1", Reason::CaseReactivated)]);
        assert_eq!(w.case.charged, Quantity::ZERO);
    }

    #[test]
    fn cases_resolution_cancelling_and_reactivating_a_cancelled_case() {
        let mut w = World::new(CASES_RESOLUTION);
        w.act(Open);
        assert_eq!(w.act(Cancel), vec![], "cancelling an open case");
        assert_eq!(w.act(Reactivate), vec![], "reactivating a cancelled case");
        assert_eq!(w.case.status, CaseStatus::Open);
        assert_eq!(w.case.charged, Quantity::ZERO);
        w.act(Resolve);
        assert_eq!(
            w.act(Cancel),
            vec![on1("-1", Reason::CaseCancelled)],
            "cancelling a resolved case gives the resolution back"
        );
        assert_eq!(w.act(Reactivate), vec![]);
    }

    #[test]
    fn hours_creation_each_entry_is_used_at_once_rounded_up() {
        let mut w = World::new(f(Unit::Hours, DecrementOn::Creation, Some("0.25")));
        assert_eq!(w.act(Open), vec![], "opening uses no hours");
        assert_eq!(
            w.act(log("t1", "0.1")),
            vec![on1("0.25", Reason::TimeLogged)]
        );
        assert_eq!(
            w.act(log("t2", "1.3")),
            vec![on1("1.5", Reason::TimeLogged)]
        );
        assert_eq!(w.case.charged_hours(), q("1.75"));
        assert_eq!(w.case.time_entries[0].logged, q("0.1"));
        assert_eq!(
            w.act(del_time("t1")),
            vec![on1("-0.25", Reason::TimeEntryDeleted)]
        );
        assert_eq!(w.act(Resolve), vec![]);
        assert_eq!(w.act(Reactivate), vec![]);
    }

    #[test]
    fn hours_creation_cancelling_keeps_the_time_spent() {
        let mut w = World::new(f(Unit::Hours, DecrementOn::Creation, None));
        w.act(Open);
        w.act(log("t1", "2"));
        assert_eq!(w.act(Cancel), vec![]);
        assert_eq!(w.case.charged_hours(), q("2"));
        assert_eq!(w.act(Reactivate), vec![]);
        assert_eq!(w.case.charged_hours(), q("2"));
    }

    #[test]
    fn hours_resolution_entries_are_used_per_entry_at_resolution() {
        let mut w = World::new(f(Unit::Hours, DecrementOn::Resolution, Some("0.5")));
        w.act(Open);
        assert_eq!(w.act(log("t1", "0.2")), vec![]);
        assert_eq!(w.act(log("t2", "1")), vec![]);
        assert_eq!(w.act(log("t3", "0.7")), vec![]);
        assert_eq!(w.act(del_time("t3")), vec![], "an uncharged entry");
        assert!(w.case.time_entries.iter().all(|e| !e.charged));
        assert_eq!(
            w.act(Resolve),
            vec![
                on1("0.5", Reason::CaseResolved),
                on1("1", Reason::CaseResolved)
            ]
        );
        assert!(w.case.time_entries.iter().all(|e| e.charged));
        assert_eq!(
            w.act(del_time("t2")),
            vec![on1("-1", Reason::TimeEntryDeleted)],
            "a charged entry"
        );
        assert_eq!(
            w.act(log("t4", "2")),
            vec![on1("2", Reason::TimeLogged)],
            "time logged on a resolved case is used at once"
        );
        assert_eq!(
            w.act(Reactivate),
            vec![
                on1("-0.5", Reason::CaseReactivated),
                on1("-2", Reason::CaseReactivated)
            ]
        );
        assert!(w.case.time_entries.iter().all(|e| !e.charged));
        w.act(Resolve);
        assert_eq!(
            w.act(Cancel),
            vec![
                on1("-0.5", Reason::CaseCancelled),
                on1("-2", Reason::CaseCancelled)
            ]
        );
    }

    #[test]
    fn visits_and_units_cases_use_nothing() {
        for unit in [Unit::Visits, Unit::Units] {
            for mode in [DecrementOn::Creation, DecrementOn::Resolution] {
                let mut w = World::new(f(unit, mode, None));
                for action in [Open, Resolve, Reactivate, Cancel, Reactivate, Resolve] {
                    assert_eq!(w.act(action), vec![]);
                }
                let err = w.try_do(log("t1", "1")).unwrap_err();
                assert_eq!(err.code(), "unit_not_hours");
                assert!(err.to_string().contains(unit.as_str()));
            }
        }
    }

    #[test]
    fn do_not_decrement_never_writes_but_records_time() {
        let all = [
            CASES_CREATION,
            CASES_RESOLUTION,
            f(Unit::Hours, DecrementOn::Creation, Some("1")),
            f(Unit::Hours, DecrementOn::Resolution, None),
        ];
        for facts in all {
            for other in all {
                let mut w = World::with(facts, other, true);
                w.act(Open);
                if facts.unit == Unit::Hours {
                    assert_eq!(w.act(log("t1", "1.5")), vec![]);
                    assert_eq!(w.case.time_entries.len(), 1);
                    assert!(!w.case.time_entries[0].charged);
                }
                for action in [Resolve, Reactivate, Cancel, Reactivate, Resolve] {
                    assert_eq!(w.act(action), vec![]);
                }
                assert_eq!(w.act(move_to(Some("ent_2"))), vec![]);
                assert_eq!(w.act(move_to(None)), vec![]);
                assert_eq!(w.case.charged, Quantity::ZERO);
            }
        }
    }

    #[test]
    fn moving_an_open_case_between_creation_mode_entitlements() {
        let mut w = World::with(CASES_CREATION, CASES_CREATION, false);
        w.act(Open);
        assert_eq!(
            w.act(move_to(Some("ent_2"))),
            vec![
                on1("-1", Reason::CaseMovedOut),
                on2("1", Reason::CaseMovedIn)
            ]
        );
        assert_eq!(w.case.entitlement_id.as_deref(), Some("ent_2"));
        assert_eq!(w.case.charged, q("1"));
        assert_eq!(w.act(move_to(Some("ent_2"))), vec![], "same entitlement");
    }

    #[test]
    fn moving_charges_what_the_new_facts_imply() {
        // Open case, creation → resolution: given back, nothing charged.
        let mut w = World::with(CASES_CREATION, CASES_RESOLUTION, false);
        w.act(Open);
        assert_eq!(
            w.act(move_to(Some("ent_2"))),
            vec![on1("-1", Reason::CaseMovedOut)]
        );
        // Resolved there, moved back to creation mode: still charged 1.
        w.act(Resolve);
        assert_eq!(
            w.act(move_to(Some("ent_1"))),
            vec![
                on2("-1", Reason::CaseMovedOut),
                on1("1", Reason::CaseMovedIn)
            ]
        );
        // Off any entitlement: given back, nothing charged.
        assert_eq!(w.act(move_to(None)), vec![on1("-1", Reason::CaseMovedOut)]);
        assert_eq!(w.case.entitlement_id, None);
        assert_eq!(w.act(Reactivate), vec![]);
        assert_eq!(
            w.act(move_to(Some("ent_1"))),
            vec![on1("1", Reason::CaseMovedIn)]
        );
    }

    #[test]
    fn moving_hours_re_rounds_and_re_charges_time_entries() {
        let mut w = World::with(
            f(Unit::Hours, DecrementOn::Creation, Some("0.25")),
            f(Unit::Hours, DecrementOn::Resolution, Some("1")),
            false,
        );
        w.act(Open);
        w.act(log("t1", "0.1"));
        w.act(log("t2", "1.3"));
        // Open case onto a resolution-mode entitlement: all given back.
        assert_eq!(
            w.act(move_to(Some("ent_2"))),
            vec![
                on1("-0.25", Reason::CaseMovedOut),
                on1("-1.5", Reason::CaseMovedOut)
            ]
        );
        assert_eq!(w.case.time_entries[0].hours, q("1"));
        assert_eq!(w.case.time_entries[1].hours, q("2"));
        assert_eq!(
            w.act(Resolve),
            vec![
                on2("1", Reason::CaseResolved),
                on2("2", Reason::CaseResolved)
            ]
        );
        // Resolved case back onto the creation-mode one.
        assert_eq!(
            w.act(move_to(Some("ent_1"))),
            vec![
                on2("-1", Reason::CaseMovedOut),
                on2("-2", Reason::CaseMovedOut),
                on1("0.25", Reason::CaseMovedIn),
                on1("1.5", Reason::CaseMovedIn)
            ]
        );
    }

    #[test]
    fn moving_between_units_keeps_time_entries_uncharged() {
        let mut w = World::with(
            f(Unit::Hours, DecrementOn::Creation, None),
            CASES_CREATION,
            false,
        );
        w.act(Open);
        w.act(log("t1", "3"));
        assert_eq!(
            w.act(move_to(Some("ent_2"))),
            vec![
                on1("-3", Reason::CaseMovedOut),
                on2("1", Reason::CaseMovedIn)
            ]
        );
        assert_eq!(w.case.time_entries.len(), 1);
        assert!(!w.case.time_entries[0].charged);
        assert_eq!(
            w.act(del_time("t1")),
            vec![],
            "an uncharged entry can still be deleted"
        );
    }

    #[test]
    fn time_without_an_entitlement_is_recorded_uncharged() {
        let mut w = World::new(CASES_CREATION);
        w.case.entitlement_id = None;
        assert_eq!(w.act(Open), vec![]);
        assert_eq!(w.act(log("t1", "0.1")), vec![]);
        assert_eq!(w.case.time_entries[0].hours, q("0.1"));
        w.facts.insert(
            "ent_3".into(),
            f(Unit::Hours, DecrementOn::Creation, Some("0.5")),
        );
        assert_eq!(
            w.act(move_to(Some("ent_3"))),
            vec![("ent_3".into(), q("0.5"), Reason::CaseMovedIn)]
        );
    }

    #[test]
    fn a_case_keeps_at_most_max_time_entries_and_a_move_stays_within_max_ops() {
        let mut w = World::new(f(Unit::Hours, DecrementOn::Creation, None));
        w.act(Open);
        for i in 0..MAX_TIME_ENTRIES {
            w.act(log(&format!("t{i}"), "0.001"));
        }
        assert_eq!(
            w.try_do(log("one-more", "0.001")).unwrap_err(),
            CaseRefusal::TooManyTimeEntries {
                case_id: "case_1".into(),
                max: MAX_TIME_ENTRIES,
            }
        );
        w.facts
            .insert("ent_2".into(), f(Unit::Hours, DecrementOn::Creation, None));
        let moved = w.act(move_to(Some("ent_2")));
        assert_eq!(moved.len(), 2 * MAX_TIME_ENTRIES);
        assert!(moved.len() <= crate::batch::MAX_OPS);
    }

    #[test]
    fn invalid_actions_are_refused() {
        let mut w = World::new(f(Unit::Hours, DecrementOn::Creation, None));
        assert_eq!(
            w.try_do(Reactivate).unwrap_err(),
            CaseRefusal::InvalidCaseTransition {
                case_id: "case_1".into(),
                from: CaseStatus::Open,
                action: "reactivate".into()
            }
        );
        w.act(Open);
        w.act(log("t1", "1"));
        let code = |w: &mut World, a: CaseAction| w.try_do(a).unwrap_err().code();
        assert_eq!(code(&mut w, Open), "invalid_case_transition");
        assert_eq!(code(&mut w, log("t1", "1")), "duplicate_time_entry");
        for bad in ["0", "-1", "24.001"] {
            assert_eq!(code(&mut w, log("t2", bad)), "invalid_hours");
        }
        w.act(log("t2", "24"));
        assert_eq!(code(&mut w, del_time("t9")), "time_entry_not_found");
        assert_eq!(
            code(&mut w, move_to(Some("ent_x"))),
            "entitlement_not_found"
        );
        w.act(Resolve);
        assert_eq!(code(&mut w, Resolve), "invalid_case_transition");
        w.act(Cancel);
        assert_eq!(code(&mut w, Cancel), "invalid_case_transition");
        assert_eq!(code(&mut w, Resolve), "invalid_case_transition");
        assert_eq!(code(&mut w, log("t3", "1")), "invalid_case_transition");
        w.case.entitlement_id = Some("gone".into());
        assert_eq!(code(&mut w, Reactivate), "entitlement_not_found");
    }

    #[test]
    fn refusals_serialize_with_their_code() {
        let refusals = [
            CaseRefusal::InvalidCaseTransition {
                case_id: "c".into(),
                from: CaseStatus::Resolved,
                action: "resolve".into(),
            },
            CaseRefusal::TimeEntryNotFound {
                case_id: "c".into(),
                entry_id: "t".into(),
            },
            CaseRefusal::DuplicateTimeEntry {
                case_id: "c".into(),
                entry_id: "t".into(),
            },
            CaseRefusal::InvalidHours {
                entry_id: "t".into(),
                hours: q("25"),
            },
            CaseRefusal::UnitNotHours {
                entitlement_id: "e".into(),
                unit: Unit::Visits,
            },
            CaseRefusal::EntitlementNotFound {
                entitlement_id: "e".into(),
            },
        ];
        for r in refusals {
            let json = serde_json::to_value(&r).unwrap();
            assert_eq!(json["code"], r.code());
            assert_eq!(serde_json::from_value::<CaseRefusal>(json).unwrap(), r);
        }
        for s in CaseStatus::ALL {
            assert_eq!(CaseStatus::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        let action: CaseAction =
            serde_json::from_str(r#"{"action":"log_time","entry_id":"t1","hours":1.5}"#).unwrap();
        assert_eq!(action, log("t1", "1.5"));
    }

    #[test]
    fn a_case_moves_off_or_is_deleted_from_an_entitlement_that_is_gone() {
        let mut w = World::new(CASES_CREATION);
        w.act(Open);
        w.case.entitlement_id = Some("gone".into());
        assert_eq!(
            w.try_do(Resolve).unwrap_err(),
            CaseRefusal::EntitlementNotFound {
                entitlement_id: "gone".into()
            }
        );
        let deleted = w.peek(Delete);
        assert!(deleted.deleted && deleted.ops.is_empty());
        assert_eq!(
            w.act(move_to(Some("ent_2"))),
            vec![
                ("gone".into(), q("-1"), Reason::CaseMovedOut),
                on2("1", Reason::CaseMovedIn)
            ]
        );
    }

    #[test]
    fn refusals_name_the_status_in_words() {
        let refusal = CaseRefusal::InvalidCaseTransition {
            case_id: "case_1".into(),
            from: CaseStatus::Resolved,
            action: "resolve".into(),
        };
        assert_eq!(
            refusal.to_string(),
            "case case_1 is resolved; cannot resolve it"
        );
        assert_eq!(CaseStatus::Cancelled.to_string(), "cancelled");
    }

    #[test]
    fn ops_carry_the_case_channel_and_apply_through_the_batch() {
        let mut t = terms();
        t.unit = Unit::Cases;
        t.total = Some(q("1"));
        let ent = active(t);
        let mut states = HashMap::from([(
            "ent_1".to_string(),
            EntitlementState {
                entitlement: ent.clone(),
                counters: Counters::default(),
            },
        )]);
        let lookup = |_: &str| Some(EntitlementFacts::of(&ent));
        let fresh = CaseState::new("case_1", Some("ent_1".into()), Some("phone".into()), false);
        let opened = decide_case(&fresh, &Open, &lookup).unwrap();
        match &opened.ops[0].change {
            Change::Consume { channel, .. } => assert_eq!(channel.as_deref(), Some("phone")),
            other => panic!("{other:?}"),
        }
        let today = day(2026, 6, 1);
        decide_command(&mut states, &opened.ops, today).unwrap();
        assert_eq!(states["ent_1"].counters.used, q("1"));
        // A second case is refused by the cap in `decide`, not here.
        let second = CaseState::new("case_2", Some("ent_1".into()), None, false);
        let effect = decide_case(&second, &Open, &lookup).unwrap();
        let err = decide_command(&mut states, &effect.ops, today).unwrap_err();
        assert_eq!(err.code(), "entitlement_exhausted");
    }

    // ---- model-based ----------------------------------------------------

    #[derive(Debug, Clone)]
    enum Step {
        Resolve,
        Cancel,
        Reactivate,
        Delete,
        Log(u8, i64),
        DeleteTime(u8),
        /// 0: none, 1: ent_a, 2: ent_b, 3: an unknown entitlement.
        Move(u8),
    }

    const ENTS: [&str; 2] = ["ent_a", "ent_b"];

    fn move_target(m: u8) -> Option<String> {
        match m {
            0 => None,
            1 => Some("ent_a".into()),
            2 => Some("ent_b".into()),
            _ => Some("ent_x".into()),
        }
    }

    fn facts_strategy() -> impl Strategy<Value = EntitlementFacts> {
        (
            prop_oneof![Just(Unit::Cases), Just(Unit::Hours), Just(Unit::Visits)],
            prop_oneof![Just(DecrementOn::Creation), Just(DecrementOn::Resolution)],
            prop_oneof![Just(None), Just(Some(q("0.25"))), Just(Some(q("1")))],
        )
            .prop_map(|(unit, decrement_on, rounding)| EntitlementFacts {
                unit,
                decrement_on,
                rounding,
            })
    }

    fn step_strategy() -> impl Strategy<Value = Step> {
        let hours = prop_oneof![
            1 => Just(0i64),
            1 => -2_000i64..0,
            8 => 1i64..=24_000,
            1 => 24_001i64..30_000,
        ];
        prop_oneof![
            3 => Just(Step::Resolve),
            3 => Just(Step::Cancel),
            3 => Just(Step::Reactivate),
            1 => Just(Step::Delete),
            6 => (0u8..5, hours).prop_map(|(id, h)| Step::Log(id, h)),
            2 => (0u8..5).prop_map(Step::DeleteTime),
            3 => (0u8..4).prop_map(Step::Move),
        ]
    }

    /// An independent account of the case: status, entitlement and the
    /// hours as logged; what it should have charged is computed from these.
    #[derive(Debug)]
    struct Model {
        status: CaseStatus,
        ent: Option<String>,
        dnd: bool,
        entries: Vec<(String, i64)>,
    }

    impl Model {
        fn expected_used(&self, ent: &str, f: &EntitlementFacts) -> i64 {
            if self.dnd || self.ent.as_deref() != Some(ent) {
                return 0;
            }
            let creation = f.decrement_on == DecrementOn::Creation;
            let resolved = self.status == CaseStatus::Resolved;
            match f.unit {
                Unit::Cases => {
                    let charged = (creation && self.status != CaseStatus::Cancelled)
                        || (!creation && resolved);
                    if charged {
                        1000
                    } else {
                        0
                    }
                }
                Unit::Hours if creation || resolved => {
                    let inc = f.rounding.map(|r| r.milli()).unwrap_or(1);
                    self.entries
                        .iter()
                        .map(|(_, h)| (h + inc - 1) / inc * inc)
                        .sum()
                }
                _ => 0,
            }
        }

        /// The refusal code the step must get, if any.
        fn refusal(&self, step: &Step, facts: &HashMap<String, EntitlementFacts>) -> Option<&str> {
            let status = self.status;
            match step {
                Step::Resolve if status != CaseStatus::Open => Some("invalid_case_transition"),
                Step::Cancel if status == CaseStatus::Cancelled => Some("invalid_case_transition"),
                Step::Reactivate if status == CaseStatus::Open => Some("invalid_case_transition"),
                Step::Log(id, h) => {
                    let unit = self.ent.as_ref().map(|e| facts[e].unit);
                    if status == CaseStatus::Cancelled {
                        Some("invalid_case_transition")
                    } else if unit.is_some_and(|u| u != Unit::Hours) {
                        Some("unit_not_hours")
                    } else if *h <= 0 || *h > 24_000 {
                        Some("invalid_hours")
                    } else if self.entries.iter().any(|(e, _)| *e == format!("t{id}")) {
                        Some("duplicate_time_entry")
                    } else {
                        None
                    }
                }
                Step::DeleteTime(id)
                    if !self.entries.iter().any(|(e, _)| *e == format!("t{id}")) =>
                {
                    Some("time_entry_not_found")
                }
                Step::Move(3) => Some("entitlement_not_found"),
                _ => None,
            }
        }

        fn apply(&mut self, step: &Step) {
            match step {
                Step::Resolve => self.status = CaseStatus::Resolved,
                Step::Cancel => self.status = CaseStatus::Cancelled,
                Step::Reactivate => self.status = CaseStatus::Open,
                Step::Delete => {}
                Step::Log(id, h) => self.entries.push((format!("t{id}"), *h)),
                Step::DeleteTime(id) => self.entries.retain(|(e, _)| *e != format!("t{id}")),
                Step::Move(m) => self.ent = move_target(*m),
            }
        }
    }

    fn to_action(step: &Step) -> CaseAction {
        match step {
            Step::Resolve => Resolve,
            Step::Cancel => Cancel,
            Step::Reactivate => Reactivate,
            Step::Delete => Delete,
            Step::Log(id, h) => CaseAction::LogTime {
                entry_id: format!("t{id}"),
                hours: Quantity::from_milli(*h),
            },
            Step::DeleteTime(id) => CaseAction::DeleteTime {
                entry_id: format!("t{id}"),
            },
            Step::Move(m) => CaseAction::Move {
                to: move_target(*m),
            },
        }
    }

    fn ent_state(id: &str, f: &EntitlementFacts) -> EntitlementState {
        let mut t = terms();
        t.unit = f.unit;
        t.decrement_on = f.decrement_on;
        t.rounding = f.rounding;
        t.total = Some(Quantity::whole(1_000_000));
        t.restrict = false;
        let mut entitlement = active(t);
        entitlement.id = id.into();
        EntitlementState {
            entitlement,
            counters: Counters::default(),
        }
    }

    /// What was written per entitlement: the ledger entries `decide`
    /// produced and the signed quantities of the ops asked for.
    #[derive(Default)]
    struct Books {
        ledger: HashMap<String, i64>,
        op_sums: HashMap<String, i64>,
    }

    impl Books {
        /// Decides `action`, applies its ops, and books them; returns
        /// whether the case was deleted.
        fn run(
            &mut self,
            case: &mut CaseState,
            states: &mut HashMap<String, EntitlementState>,
            action: &CaseAction,
            lookup: &dyn Fn(&str) -> Option<EntitlementFacts>,
        ) -> Result<bool, CaseRefusal> {
            let effect = decide_case(case, action, lookup)?;
            let applied = decide_command(states, &effect.ops, day(2026, 6, 1))
                .expect("unrestricted entitlements accept every op");
            for op in &effect.ops {
                let signed = match &op.change {
                    Change::Consume {
                        quantity,
                        reference,
                        ..
                    } => {
                        assert_eq!(reference.as_deref(), Some("case_1"));
                        quantity.milli()
                    }
                    Change::GiveBack {
                        quantity,
                        reference,
                        ..
                    } => {
                        assert_eq!(reference.as_deref(), Some("case_1"));
                        -quantity.milli()
                    }
                    other => panic!("unexpected change {other:?}"),
                };
                *self.op_sums.entry(op.entitlement_id.clone()).or_default() += signed;
            }
            for a in applied {
                if let Some(entry) = a.entry {
                    *self.ledger.entry(entry.entitlement_id).or_default() += entry.quantity.milli();
                }
            }
            *case = effect.case;
            Ok(effect.deleted)
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Any sequence of case actions, applied through `decide_case` and
        /// then `decide_command`, leaves each entitlement's `used` equal to
        /// its ledger, to the ops' sum, and to what the model says the case
        /// should have charged there; refused actions change nothing.
        #[test]
        fn case_usage_agrees_with_a_simple_model(
            fa in facts_strategy(),
            fb in facts_strategy(),
            start in 0u8..3,
            dnd: bool,
            channel: bool,
            steps in proptest::collection::vec(step_strategy(), 0..40),
        ) {
            prop_assume!(fa != fb);
            let facts: HashMap<String, EntitlementFacts> =
                HashMap::from([("ent_a".to_string(), fa), ("ent_b".to_string(), fb)]);
            let lookup = |id: &str| facts.get(id).copied();
            let mut states: HashMap<String, EntitlementState> = facts
                .iter()
                .map(|(id, f)| (id.clone(), ent_state(id, f)))
                .collect();
            let mut books = Books::default();
            let mut model = Model { status: CaseStatus::Open, ent: move_target(start), dnd, entries: vec![] };
            let mut case = CaseState::new(
                "case_1",
                model.ent.clone(),
                channel.then(|| "phone".to_string()),
                dnd,
            );

            books.run(&mut case, &mut states, &Open, &lookup).expect("a fresh case opens");
            for step in steps {
                let before_case = case.clone();
                let before_used: Vec<Quantity> = ENTS.iter().map(|e| states[*e].counters.used).collect();
                let expected_refusal = model.refusal(&step, &facts);
                let result = books.run(&mut case, &mut states, &to_action(&step), &lookup);
                match (&result, expected_refusal) {
                    (Err(err), Some(code)) => {
                        prop_assert_eq!(err.code(), code);
                        prop_assert_eq!(&case, &before_case);
                        let after_used: Vec<Quantity> = ENTS.iter().map(|e| states[*e].counters.used).collect();
                        prop_assert_eq!(after_used, before_used);
                    }
                    (Ok(_), None) => model.apply(&step),
                    _ => prop_assert!(false, "{:?}: got {:?}, model expected refusal {:?}", step, result, expected_refusal),
                }
                prop_assert_eq!(case.status, model.status);
                prop_assert_eq!(&case.entitlement_id, &model.ent);
                let ids: Vec<&str> = case.time_entries.iter().map(|e| e.id.as_str()).collect();
                let model_ids: Vec<&str> = model.entries.iter().map(|(e, _)| e.as_str()).collect();
                prop_assert_eq!(ids, model_ids);
                for ent in ENTS {
                    let used = states[ent].counters.used.milli();
                    let expected = model.expected_used(ent, &facts[ent]);
                    prop_assert_eq!(used, *books.ledger.get(ent).unwrap_or(&0), "ledger of {}", ent);
                    prop_assert_eq!(used, *books.op_sums.get(ent).unwrap_or(&0), "ops of {}", ent);
                    prop_assert_eq!(used, expected, "model for {} after {:?}: {:?}", ent, step, case);
                    if channel {
                        let ch = states[ent].counters.channels.get("phone").map(|c| c.used.milli()).unwrap_or(0);
                        prop_assert_eq!(ch, used);
                    }
                }
                if matches!(result, Ok(true)) {
                    break;
                }
            }
        }
    }
}
