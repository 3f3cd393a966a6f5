//! Deciding a batch: many commands, in arrival order, against the state of
//! the entitlements they touch, as one unit that the store commits once.

use std::collections::{HashMap, HashSet};

use chrono::NaiveDate;

use crate::balance::Counters;
use crate::decide::{decide, Applied, Change, Reason, Refusal};
use crate::entitlement::Entitlement;

/// An entitlement and its counters as loaded (and locked) by the store.
#[derive(Debug, Clone)]
pub struct EntitlementState {
    pub entitlement: Entitlement,
    pub counters: Counters,
}

/// One change to one entitlement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Op {
    pub entitlement_id: String,
    pub change: Change,
}

/// (entitlement id, reference) pairs already recorded by direct uses.
pub type UsedReferences = HashSet<(String, String)>;

/// A direct use (usage or visit) with a reference: a work order number may
/// be recorded once per entitlement. Case ops reference their case many
/// times and are not direct uses.
pub fn reference_key(op: &Op) -> Option<(String, String)> {
    match &op.change {
        Change::Consume {
            reason: Reason::Usage | Reason::Visit,
            reference: Some(r),
            ..
        } => Some((op.entitlement_id.clone(), r.clone())),
        _ => None,
    }
}

/// Refuses a command that records a reference already used on its entitlement.
pub fn check_references(ops: &[Op], used: &UsedReferences) -> Result<(), Refusal> {
    let mut seen = HashSet::new();
    for key in ops.iter().filter_map(reference_key) {
        if used.contains(&key) || !seen.insert(key.clone()) {
            return Err(Refusal::DuplicateReference {
                entitlement_id: key.0,
                reference: key.1,
            });
        }
    }
    Ok(())
}

/// The most ops one command carries: a use is one op; a case action at most
/// a move's, which gives back the case and each time entry on the old
/// entitlement and charges them on the new (`cases::MAX_TIME_ENTRIES`).
pub const MAX_OPS: usize = 2_002;
const _: () = assert!(MAX_OPS >= 2 * (crate::cases::MAX_TIME_ENTRIES + 1));

/// Applies a command's ops all or none: a refusal of any op leaves `states`
/// untouched. Later commands in the batch see the effect of earlier ones.
pub fn decide_command(
    states: &mut HashMap<String, EntitlementState>,
    ops: &[Op],
    today: NaiveDate,
) -> Result<Vec<Applied>, Refusal> {
    assert!(
        ops.len() <= MAX_OPS,
        "a command has at most {MAX_OPS} ops, not {}",
        ops.len()
    );
    let mut scratch: HashMap<&str, Counters> = HashMap::new();
    let mut applied = Vec::with_capacity(ops.len());
    for op in ops {
        let state = states
            .get(&op.entitlement_id)
            .ok_or_else(|| Refusal::EntitlementNotFound {
                entitlement_id: op.entitlement_id.clone(),
            })?;
        let current = scratch
            .get(op.entitlement_id.as_str())
            .unwrap_or(&state.counters);
        let result = decide(&state.entitlement, current, &op.change, today)?;
        scratch.insert(op.entitlement_id.as_str(), result.counters.clone());
        applied.push(result);
    }
    let finals: Vec<(String, Counters)> = scratch
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    for (id, counters) in finals {
        if let Some(state) = states.get_mut(&id) {
            state.counters = counters;
        }
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balance::remaining;
    use crate::entitlement::Period;
    use crate::quantity::Quantity;
    use crate::test_support::{active, day, terms};
    use proptest::prelude::*;

    fn state(total: i64, restrict: bool, period: Period, rollover: i64) -> EntitlementState {
        let mut t = terms();
        t.unit = crate::entitlement::Unit::Units;
        t.total = Some(Quantity::whole(total));
        t.restrict = restrict;
        t.period = period;
        t.rollover = Quantity::whole(rollover);
        EntitlementState {
            entitlement: active(t),
            counters: Counters::default(),
        }
    }

    fn consume(id: &str, n: i64) -> Op {
        Op {
            entitlement_id: id.into(),
            change: Change::Consume {
                quantity: Quantity::whole(n),
                channel: None,
                reason: Reason::Usage,
                reference: None,
            },
        }
    }

    #[test]
    fn a_command_of_exactly_max_ops_is_decided() {
        let mut states =
            HashMap::from([("ent_1".to_string(), state(1_000_000, true, Period::None, 0))]);
        let ops: Vec<Op> = (0..MAX_OPS).map(|_| consume("ent_1", 1)).collect();
        let applied = decide_command(&mut states, &ops, day(2026, 6, 1)).unwrap();
        assert_eq!(applied.len(), MAX_OPS);
        assert_eq!(
            states["ent_1"].counters.used,
            Quantity::whole(MAX_OPS as i64)
        );
    }

    #[test]
    #[should_panic(expected = "at most")]
    fn a_command_of_more_than_max_ops_is_a_bug_not_a_decision() {
        let mut states =
            HashMap::from([("ent_1".to_string(), state(1_000_000, true, Period::None, 0))]);
        let ops: Vec<Op> = (0..=MAX_OPS).map(|_| consume("ent_1", 1)).collect();
        let _ = decide_command(&mut states, &ops, day(2026, 6, 1));
    }

    #[test]
    fn a_refused_op_undoes_the_whole_command() {
        let mut states = HashMap::from([("ent_1".to_string(), state(5, true, Period::None, 0))]);
        let today = day(2026, 6, 1);
        let err = decide_command(
            &mut states,
            &[consume("ent_1", 3), consume("ent_1", 3)],
            today,
        )
        .unwrap_err();
        assert_eq!(err.code(), "entitlement_exhausted");
        assert_eq!(states["ent_1"].counters.used, Quantity::ZERO);
        assert!(decide_command(&mut states, &[consume("ent_1", 3)], today).is_ok());
        assert_eq!(states["ent_1"].counters.used, Quantity::whole(3));
    }

    #[test]
    fn a_reference_is_recorded_once_per_entitlement() {
        let visit = |id: &str, r: &str| Op {
            entitlement_id: id.into(),
            change: Change::Consume {
                quantity: Quantity::whole(1),
                channel: None,
                reason: Reason::Visit,
                reference: Some(r.into()),
            },
        };
        let used = UsedReferences::from([("ent_1".to_string(), "WO-1".to_string())]);
        assert_eq!(
            check_references(&[visit("ent_1", "WO-1")], &used)
                .unwrap_err()
                .code(),
            "duplicate_reference"
        );
        assert!(check_references(&[visit("ent_2", "WO-1")], &used).is_ok());
        assert!(
            check_references(&[visit("ent_1", "WO-2"), visit("ent_1", "WO-2")], &used).is_err()
        );
        let case_op = Op {
            entitlement_id: "ent_1".into(),
            change: Change::Consume {
                quantity: Quantity::whole(1),
                channel: None,
                reason: Reason::CaseOpened,
                reference: Some("WO-1".into()),
            },
        };
        assert!(check_references(&[case_op], &used).is_ok());
    }

    #[test]
    fn unknown_entitlements_are_refused() {
        let mut states = HashMap::new();
        let err = decide_command(&mut states, &[consume("ent_x", 1)], day(2026, 6, 1)).unwrap_err();
        assert_eq!(err.code(), "not_found");
    }

    /// The model: a plain list of accepted uses per month, and the rule
    /// "accept while the month's uses plus this one fit in total + carried".
    #[derive(Debug, Default)]
    struct Model {
        month_used: HashMap<i64, i64>,
        carried: HashMap<i64, i64>,
    }

    impl Model {
        fn carried_into(&mut self, month: i64, total: i64, rollover: i64) -> i64 {
            if month == 0 {
                return 0;
            }
            if let Some(c) = self.carried.get(&month) {
                return *c;
            }
            let prev_carry = self.carried_into(month - 1, total, rollover);
            let prev_used = *self.month_used.get(&(month - 1)).unwrap_or(&0);
            let c = (total + prev_carry - prev_used).max(0).min(rollover);
            self.carried.insert(month, c);
            c
        }
    }

    proptest! {
        /// Balances, periods and rollover against the model: for any
        /// sequence of uses over the months of a year, every decision and
        /// every counter agrees with the model, and a restricted
        /// entitlement never exceeds total + carried.
        #[test]
        fn batches_agree_with_a_simple_model(
            total in 0i64..20,
            rollover in 0i64..10,
            restrict: bool,
            uses in proptest::collection::vec((0i64..12, 1i64..6), 0..60),
        ) {
            let mut uses = uses;
            uses.sort_by_key(|(m, _)| *m);
            let mut states = HashMap::from([("ent_1".to_string(), state(total, restrict, Period::Month, rollover))]);
            let mut model = Model::default();
            let mut ledger: Vec<(i64, i64)> = Vec::new();
            for (month, n) in uses {
                let today = day(2026, 1 + month as u32, 15);
                let carried = model.carried_into(month, total, rollover);
                let used = *model.month_used.get(&month).unwrap_or(&0);
                let fits = !restrict || used + n <= total + carried;
                let result = decide_command(&mut states, &[consume("ent_1", n)], today);
                prop_assert_eq!(result.is_ok(), fits);
                if let Ok(applied) = result {
                    let entry = applied[0].entry.clone().unwrap();
                    prop_assert_eq!(entry.period_index, month);
                    ledger.push((month, entry.quantity.milli() / 1000));
                    *model.month_used.entry(month).or_default() += n;
                }
                let s = &states["ent_1"];
                let ledger_sum: i64 = ledger.iter().filter(|(m, _)| *m == s.counters.period_index).map(|(_, q)| q).sum();
                prop_assert_eq!(s.counters.used.milli(), ledger_sum * 1000);
                prop_assert_eq!(s.counters.carried.milli(), model.carried_into(s.counters.period_index, total, rollover) * 1000);
                if restrict {
                    prop_assert!(remaining(&s.entitlement, &s.counters).unwrap() >= Quantity::ZERO);
                }
            }
        }
    }
}
