//! Counters kept beside the ledger, and the balance a client reads.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::entitlement::{Entitlement, Unit};
use crate::period::{window_at, Window};
use crate::quantity::Quantity;

/// Per-channel usage in the current period, plus what is held for it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelCounter {
    pub used: Quantity,
    pub held: Quantity,
}

/// What is stored for an entitlement beside its ledger. `used` always
/// equals the sum of the ledger entries of period `period_index`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    pub period_index: i64,
    pub used: Quantity,
    /// Held by open reservations; held amounts outlive a period reset.
    pub held: Quantity,
    /// Unused allotment carried in from the previous period.
    pub carried: Quantity,
    pub channels: BTreeMap<String, ChannelCounter>,
}

/// A period that ended, with what was left unused and what rolled over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeriodReset {
    pub from_index: i64,
    pub to_index: i64,
    pub unused: Option<Quantity>,
    pub carried: Quantity,
}

impl Counters {
    /// Whether every counter is within `MAX_COUNTER_WHOLE`: the decision
    /// refuses a change that would leave them outside.
    pub fn within_bounds(&self) -> bool {
        [self.used, self.held, self.carried]
            .into_iter()
            .chain(self.channels.values().flat_map(|c| [c.used, c.held]))
            .all(Quantity::within_counter_bounds)
    }

    /// Advances to period `to_index`: usage resets, unused allotment rolls
    /// over up to the entitlement's rollover cap. Held amounts stay.
    pub fn roll_to(&self, ent: &Entitlement, to_index: i64) -> (Counters, Option<PeriodReset>) {
        if to_index <= self.period_index {
            return (self.clone(), None);
        }
        let unused = ent
            .terms
            .total
            .map(|t| (t + self.carried - self.used).max(Quantity::ZERO));
        let mut carried = Quantity::ZERO;
        if let Some(total) = ent.terms.total {
            let cap = ent.terms.rollover;
            carried = unused.unwrap_or_default().min(cap);
            // Periods with no usage at all between the two each pass their
            // full allotment (plus what they received) on, up to the cap.
            let mut skipped = to_index - self.period_index - 1;
            while skipped > 0 && carried < cap {
                carried = (total + carried).min(cap);
                skipped -= 1;
            }
        }
        let channels = self
            .channels
            .iter()
            .filter(|(_, c)| !c.held.is_zero())
            .map(|(k, c)| {
                (
                    k.clone(),
                    ChannelCounter {
                        used: Quantity::ZERO,
                        held: c.held,
                    },
                )
            })
            .collect();
        let next = Counters {
            period_index: to_index,
            used: Quantity::ZERO,
            held: self.held,
            carried,
            channels,
        };
        let reset = PeriodReset {
            from_index: self.period_index,
            to_index,
            unused,
            carried,
        };
        (next, Some(reset))
    }
}

/// One channel's live balance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelBalance {
    pub channel: String,
    pub total: Quantity,
    pub used: Quantity,
    pub held: Quantity,
    pub remaining: Quantity,
}

/// The live balance of an entitlement in its current period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Balance {
    pub entitlement_id: String,
    pub unit: Unit,
    pub unlimited: bool,
    /// The period's allotment, without what rolled over into it.
    pub total: Option<Quantity>,
    pub carried_over: Quantity,
    pub used: Quantity,
    pub held: Quantity,
    /// total + carried_over − used − held; negative when in overage.
    pub remaining: Option<Quantity>,
    pub overage: Quantity,
    pub period: Window,
    pub channels: Vec<ChannelBalance>,
}

/// The current period's window for `today`.
pub fn current_window(ent: &Entitlement, today: NaiveDate) -> Window {
    let t = &ent.terms;
    window_at(t.period, t.start_date, t.end_date, today)
}

/// Counters as they stand today, rolling forward if a period has begun since
/// they were stored. Reads never need a write to see a reset.
pub fn counters_today(
    ent: &Entitlement,
    stored: &Counters,
    today: NaiveDate,
) -> (Counters, Option<PeriodReset>, Window) {
    let window = current_window(ent, today);
    let (counters, reset) = stored.roll_to(ent, window.index);
    (counters, reset, window)
}

pub fn remaining(ent: &Entitlement, c: &Counters) -> Option<Quantity> {
    ent.terms.total.map(|t| t + c.carried - c.used - c.held)
}

pub fn channel_remaining(ent: &Entitlement, c: &Counters, channel: &str) -> Option<Quantity> {
    let total = ent.channel_total(channel)?;
    let counter = c.channels.get(channel).cloned().unwrap_or_default();
    Some(total - counter.used - counter.held)
}

pub fn balance(ent: &Entitlement, stored: &Counters, today: NaiveDate) -> Balance {
    let (c, _, window) = counters_today(ent, stored, today);
    let remaining = remaining(ent, &c);
    let channels = ent
        .terms
        .channels
        .iter()
        .map(|term| {
            let counter = c.channels.get(&term.channel).cloned().unwrap_or_default();
            ChannelBalance {
                channel: term.channel.clone(),
                total: term.total,
                used: counter.used,
                held: counter.held,
                remaining: term.total - counter.used - counter.held,
            }
        })
        .collect();
    Balance {
        entitlement_id: ent.id.clone(),
        unit: ent.terms.unit,
        unlimited: ent.terms.total.is_none(),
        total: ent.terms.total,
        carried_over: c.carried,
        used: c.used,
        held: c.held,
        remaining,
        overage: remaining
            .map(|r| (-r).max(Quantity::ZERO))
            .unwrap_or_default(),
        period: window,
        channels,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entitlement::Period;
    use crate::test_support::{active, day, terms};

    fn monthly(total: i64, rollover: i64) -> Entitlement {
        let mut t = terms();
        t.period = Period::Month;
        t.total = Some(Quantity::whole(total));
        t.rollover = Quantity::whole(rollover);
        active(t)
    }

    #[test]
    fn counters_are_within_bounds_up_to_the_largest_counter_and_not_past_it() {
        let largest = Quantity::whole(crate::quantity::MAX_COUNTER_WHOLE);
        let mut c = Counters {
            used: largest,
            held: -largest,
            ..Default::default()
        };
        assert!(c.within_bounds());
        c.channels.insert(
            "phone".into(),
            ChannelCounter {
                used: Quantity::ZERO,
                held: largest + Quantity::from_milli(1),
            },
        );
        assert!(!c.within_bounds());
        c.channels.clear();
        c.carried = -largest - Quantity::from_milli(1);
        assert!(!c.within_bounds());
    }

    #[test]
    fn reset_carries_unused_up_to_the_cap() {
        let ent = monthly(10, 3);
        let c = Counters {
            used: Quantity::whole(4),
            ..Default::default()
        };
        let (next, reset) = c.roll_to(&ent, 1);
        assert_eq!(next.used, Quantity::ZERO);
        assert_eq!(next.carried, Quantity::whole(3));
        assert_eq!(reset.unwrap().unused, Some(Quantity::whole(6)));
    }

    #[test]
    fn overage_carries_nothing() {
        let ent = monthly(10, 3);
        let c = Counters {
            used: Quantity::whole(12),
            ..Default::default()
        };
        assert_eq!(c.roll_to(&ent, 1).0.carried, Quantity::ZERO);
    }

    #[test]
    fn skipped_periods_roll_their_full_allotment() {
        let ent = monthly(2, 5);
        let c = Counters {
            used: Quantity::whole(2),
            ..Default::default()
        };
        // period 0 leaves 0, periods 1 and 2 are empty: 0 → 2 → 4
        assert_eq!(c.roll_to(&ent, 3).0.carried, Quantity::whole(4));
    }

    #[test]
    fn balance_rolls_forward_on_read() {
        let ent = monthly(10, 0);
        let c = Counters {
            used: Quantity::whole(7),
            held: Quantity::whole(1),
            ..Default::default()
        };
        let b = balance(&ent, &c, day(2026, 1, 20));
        assert_eq!(b.remaining, Some(Quantity::whole(2)));
        let b = balance(&ent, &c, day(2026, 2, 1));
        assert_eq!(
            (b.used, b.held, b.remaining),
            (Quantity::ZERO, Quantity::whole(1), Some(Quantity::whole(9)))
        );
        assert_eq!(b.period.start, day(2026, 2, 1));
    }
}
