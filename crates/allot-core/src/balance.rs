//! Counters kept beside the ledger, and the balance a client reads.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::entitlement::{Entitlement, Period, Unit};
use crate::period::{window_at, Window};
use crate::quantity::Quantity;

/// Per-channel usage in the current period, plus what is held for it.
/// Stored as JSON: read back with the counters' bound, not the edge's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelCounter {
    #[serde(deserialize_with = "crate::quantity::deserialize_counter")]
    pub used: Quantity,
    #[serde(deserialize_with = "crate::quantity::deserialize_counter")]
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
            // Bounded by the number of periods skipped, at most the periods
            // of one term.
            for _ in 0..to_index - self.period_index - 1 {
                carried = (total + carried).min(cap);
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

/// Whether counters stored for period `stored_index` of a term (`period`s
/// from `start` to `end`) lag `today`'s period: read today, they roll
/// forward (`counters_today` resets them) before anything is decided.
pub fn lags(
    period: Period,
    (start, end): (NaiveDate, NaiveDate),
    stored_index: i64,
    today: NaiveDate,
) -> bool {
    window_at(period, start, end, today).index > stored_index
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
    use crate::test_support::{active, day, terms};

    fn monthly(total: i64, rollover: i64) -> Entitlement {
        let mut t = terms();
        t.period = Period::Month;
        t.total = Some(Quantity::whole(total));
        t.rollover = Quantity::whole(rollover);
        active(t)
    }

    #[test]
    fn stored_counters_lag_exactly_when_reading_them_rolls_them() {
        let mut anchored = monthly(10, 0);
        anchored.terms.start_date = day(2026, 1, 31);
        let mut quarterly = monthly(10, 0);
        quarterly.terms.period = Period::Quarter;
        let whole_term = active(terms());
        for ent in [monthly(10, 0), anchored, quarterly, whole_term] {
            let t = &ent.terms;
            let mut today = t.start_date;
            while today <= t.end_date {
                for stored_index in 0..4 {
                    let stored = Counters {
                        period_index: stored_index,
                        ..Counters::default()
                    };
                    let rolled = counters_today(&ent, &stored, today).1.is_some();
                    assert_eq!(
                        lags(t.period, (t.start_date, t.end_date), stored_index, today),
                        rolled,
                        "{:?} from {} stored {stored_index} on {today}",
                        t.period,
                        t.start_date
                    );
                }
                today = today.succ_opt().unwrap();
            }
        }
        // Before the period's first day nothing lags; on it, it does.
        let ent = monthly(10, 0);
        let dates = (ent.terms.start_date, ent.terms.end_date);
        assert!(!lags(Period::Month, dates, 1, day(2026, 2, 28)));
        assert!(lags(Period::Month, dates, 1, day(2026, 3, 1)));
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

    fn whole(n: i64) -> Quantity {
        Quantity::whole(n)
    }

    fn with_phone(mut ent: Entitlement, total: i64) -> Entitlement {
        ent.terms.channels = vec![crate::entitlement::ChannelTerm {
            channel: "phone".into(),
            total: whole(total),
        }];
        ent
    }

    #[test]
    fn unused_counts_what_was_carried_in() {
        let ent = monthly(10, 100);
        let c = Counters {
            period_index: 4,
            used: whole(5),
            held: whole(1),
            carried: whole(2),
            ..Default::default()
        };
        let (next, reset) = c.roll_to(&ent, 5);
        assert_eq!(
            reset,
            Some(PeriodReset {
                from_index: 4,
                to_index: 5,
                unused: Some(whole(7)),
                carried: whole(7),
            })
        );
        assert_eq!(
            next,
            Counters {
                period_index: 5,
                used: Quantity::ZERO,
                held: whole(1),
                carried: whole(7),
                channels: BTreeMap::new(),
            }
        );
    }

    #[test]
    fn rollover_at_and_over_its_cap() {
        let ent = monthly(10, 3);
        let carried_after = |used: i64| {
            Counters {
                used: whole(used),
                ..Default::default()
            }
            .roll_to(&ent, 1)
            .0
            .carried
        };
        assert_eq!(carried_after(9), whole(1), "under the cap");
        assert_eq!(carried_after(7), whole(3), "exactly the cap");
        assert_eq!(carried_after(6), whole(3), "one over the cap");
        assert_eq!(carried_after(10), Quantity::ZERO, "nothing left");
    }

    #[test]
    fn skipped_periods_are_counted_from_the_stored_period() {
        let ent = monthly(2, 100);
        let c = Counters {
            period_index: 2,
            used: whole(2),
            ..Default::default()
        };
        // period 2 leaves 0; 3 and 4 are empty and pass 2 each on.
        let (next, reset) = c.roll_to(&ent, 5);
        assert_eq!(next.carried, whole(4));
        assert_eq!(reset.unwrap().unused, Some(Quantity::ZERO));
        let capped = monthly(2, 3);
        assert_eq!(c.roll_to(&capped, 5).0.carried, whole(3));
        assert_eq!(c.roll_to(&capped, 3).0.carried, Quantity::ZERO);
    }

    #[test]
    fn rolling_to_the_same_or_an_earlier_period_changes_nothing() {
        let ent = monthly(10, 3);
        let c = Counters {
            period_index: 3,
            used: whole(4),
            ..Default::default()
        };
        assert_eq!(c.roll_to(&ent, 3), (c.clone(), None));
        assert_eq!(c.roll_to(&ent, 2), (c.clone(), None));
    }

    #[test]
    fn unlimited_entitlements_roll_nothing_over() {
        let mut ent = monthly(10, 3);
        ent.terms.total = None;
        let c = Counters {
            used: whole(4),
            ..Default::default()
        };
        let (next, reset) = c.roll_to(&ent, 2);
        assert_eq!(next.carried, Quantity::ZERO);
        assert_eq!(reset.unwrap().unused, None);
    }

    #[test]
    fn a_reset_keeps_only_the_channels_with_something_held() {
        let ent = monthly(10, 0);
        let c = Counters {
            used: whole(3),
            held: whole(1),
            channels: BTreeMap::from([
                (
                    "email".to_string(),
                    ChannelCounter {
                        used: whole(2),
                        held: Quantity::ZERO,
                    },
                ),
                (
                    "phone".to_string(),
                    ChannelCounter {
                        used: whole(1),
                        held: whole(1),
                    },
                ),
            ]),
            ..Default::default()
        };
        let (next, _) = c.roll_to(&ent, 1);
        assert_eq!(
            next.channels,
            BTreeMap::from([(
                "phone".to_string(),
                ChannelCounter {
                    used: Quantity::ZERO,
                    held: whole(1),
                },
            )])
        );
    }

    #[test]
    fn remaining_is_total_plus_carried_minus_used_minus_held() {
        let ent = monthly(10, 5);
        let c = Counters {
            used: whole(4),
            held: whole(2),
            carried: whole(3),
            ..Default::default()
        };
        assert_eq!(remaining(&ent, &c), Some(whole(7)));
        let mut unlimited = ent.clone();
        unlimited.terms.total = None;
        assert_eq!(remaining(&unlimited, &c), None);
    }

    #[test]
    fn channel_remaining_is_its_total_minus_used_minus_held() {
        let ent = with_phone(monthly(100, 0), 5);
        let mut c = Counters::default();
        assert_eq!(channel_remaining(&ent, &c, "phone"), Some(whole(5)));
        c.channels.insert(
            "phone".into(),
            ChannelCounter {
                used: whole(2),
                held: whole(1),
            },
        );
        assert_eq!(channel_remaining(&ent, &c, "phone"), Some(whole(2)));
        assert_eq!(channel_remaining(&ent, &c, "email"), None);
    }

    #[test]
    fn balance_reports_exact_figures_per_channel() {
        let ent = with_phone(monthly(10, 5), 4);
        let c = Counters {
            used: whole(6),
            held: whole(2),
            carried: whole(1),
            channels: BTreeMap::from([(
                "phone".to_string(),
                ChannelCounter {
                    used: whole(3),
                    held: whole(2),
                },
            )]),
            ..Default::default()
        };
        let b = balance(&ent, &c, day(2026, 1, 31));
        assert_eq!(
            b,
            Balance {
                entitlement_id: "ent_1".into(),
                unit: Unit::Hours,
                unlimited: false,
                total: Some(whole(10)),
                carried_over: whole(1),
                used: whole(6),
                held: whole(2),
                remaining: Some(whole(3)),
                overage: Quantity::ZERO,
                period: Window {
                    index: 0,
                    start: day(2026, 1, 1),
                    end: day(2026, 1, 31),
                },
                channels: vec![ChannelBalance {
                    channel: "phone".into(),
                    total: whole(4),
                    used: whole(3),
                    held: whole(2),
                    remaining: whole(-1),
                }],
            }
        );
    }

    #[test]
    fn overage_is_how_far_remaining_went_below_zero() {
        let ent = monthly(10, 0);
        let over = Counters {
            used: whole(13),
            ..Default::default()
        };
        let b = balance(&ent, &over, day(2026, 1, 15));
        assert_eq!((b.remaining, b.overage), (Some(whole(-3)), whole(3)));
        let exact = Counters {
            used: whole(10),
            ..Default::default()
        };
        let b = balance(&ent, &exact, day(2026, 1, 15));
        assert_eq!(
            (b.remaining, b.overage),
            (Some(Quantity::ZERO), Quantity::ZERO)
        );
        let mut unlimited = ent.clone();
        unlimited.terms.total = None;
        let b = balance(&unlimited, &over, day(2026, 1, 15));
        assert_eq!(
            (b.unlimited, b.remaining, b.overage),
            (true, None, Quantity::ZERO)
        );
    }

    #[test]
    fn reading_after_a_reset_shows_the_new_period() {
        let ent = monthly(10, 5);
        let c = Counters {
            used: whole(8),
            ..Default::default()
        };
        let (today, reset, window) = counters_today(&ent, &c, day(2026, 3, 10));
        assert_eq!(
            window,
            Window {
                index: 2,
                start: day(2026, 3, 1),
                end: day(2026, 3, 31),
            }
        );
        assert_eq!(
            reset,
            Some(PeriodReset {
                from_index: 0,
                to_index: 2,
                unused: Some(whole(2)),
                carried: whole(5),
            })
        );
        assert_eq!((today.period_index, today.carried), (2, whole(5)));
        assert_eq!(current_window(&ent, day(2026, 3, 10)), window);
    }
}
