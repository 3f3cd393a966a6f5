//! Burn rate and forecast: the day an allotment runs out at its current pace.
//!
//! The pace is linear over a trailing window: the net use recorded in the
//! last `window_days` days (today included) divided by the days of that
//! window the term had begun. Projected forward from today's remaining,
//! the allotment runs out on the first day the projected use reaches it,
//! provided that day falls inside the current period (the term when the
//! entitlement has no periods); after a reset the allotment is whole again.

use chrono::{Days, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::quantity::Quantity;

/// How the projection is made, as stated in every forecast.
pub const METHOD: &str = "linear_trailing_window";

/// The trailing window when none is asked for.
pub const DEFAULT_WINDOW_DAYS: u32 = 30;
/// The longest trailing window: a little over a year of history.
pub const MAX_WINDOW_DAYS: u32 = 366;

/// What the forecast looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pace {
    pub today: NaiveDate,
    pub window_days: u32,
    /// The first day of the term: days before it are not part of the pace.
    pub term_start: NaiveDate,
    /// The last day the current allotment lasts (end of period or term).
    pub horizon: NaiveDate,
    /// Net use recorded from `window_start()` to today, both included.
    pub used_in_window: Quantity,
    /// What remains today; `None` when unlimited.
    pub remaining: Option<Quantity>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outlook {
    /// Nothing to run out of.
    Unlimited,
    /// Nothing (or less than nothing) remains today.
    Exhausted,
    /// At this pace it runs out on `exhausted_on`, within the horizon.
    RunsOut,
    /// At this pace it lasts past the horizon (or nothing is being used).
    Lasts,
}

impl Outlook {
    pub fn as_str(self) -> &'static str {
        match self {
            Outlook::Unlimited => "unlimited",
            Outlook::Exhausted => "exhausted",
            Outlook::RunsOut => "runs_out",
            Outlook::Lasts => "lasts",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forecast {
    pub window_days: u32,
    /// Days of the window inside the term (0 before the term starts).
    pub observed_days: u32,
    pub used_in_window: Quantity,
    /// used_in_window / observed_days, rounded half up to a thousandth
    /// (shown only; the projection uses the exact fraction).
    pub burn_rate_per_day: Quantity,
    pub outlook: Outlook,
    /// The projected day the allotment runs out; today when exhausted.
    pub exhausted_on: Option<NaiveDate>,
    pub horizon: NaiveDate,
}

impl Pace {
    /// The first day of the trailing window.
    pub fn window_start(&self) -> NaiveDate {
        let back = u64::from(self.window_days.max(1) - 1);
        self.today
            .checked_sub_days(Days::new(back))
            .unwrap_or(NaiveDate::MIN)
    }
}

pub fn forecast(pace: &Pace) -> Forecast {
    let from = pace.window_start().max(pace.term_start);
    let observed_days = if pace.today < from {
        0
    } else {
        // Bounded by the window, so it fits.
        ((pace.today - from).num_days() + 1) as u32
    };
    let used = pace.used_in_window.milli();
    let burn_rate_per_day = if observed_days == 0 {
        Quantity::ZERO
    } else {
        let days = i64::from(observed_days);
        Quantity::from_milli((2 * used + days).div_euclid(2 * days))
    };
    let (outlook, exhausted_on) = match pace.remaining {
        None => (Outlook::Unlimited, None),
        Some(r) if r.milli() <= 0 => (Outlook::Exhausted, Some(pace.today)),
        Some(r) if used > 0 && observed_days > 0 => {
            // The first whole day d with d × used / observed ≥ remaining.
            // All three are positive here.
            let days = (r.milli().unsigned_abs() as u128 * u128::from(observed_days))
                .div_ceil(used.unsigned_abs() as u128);
            let on = u64::try_from(days)
                .ok()
                .and_then(|d| pace.today.checked_add_days(Days::new(d)))
                .filter(|on| *on <= pace.horizon);
            match on {
                Some(on) => (Outlook::RunsOut, Some(on)),
                None => (Outlook::Lasts, None),
            }
        }
        Some(_) => (Outlook::Lasts, None),
    };
    Forecast {
        window_days: pace.window_days,
        observed_days,
        used_in_window: pace.used_in_window,
        burn_rate_per_day,
        outlook,
        exhausted_on,
        horizon: pace.horizon,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::day;
    use proptest::prelude::*;

    fn whole(n: i64) -> Quantity {
        Quantity::whole(n)
    }

    /// Total 20, term 2026, one case every 3 days from 1 January: by
    /// 30 January ten cases (1, 4, …, 28 January) are used.
    fn every_third_day(window_days: u32) -> Pace {
        let today = day(2026, 1, 30);
        let start = day(2026, 1, 1);
        let window_start = today - chrono::Duration::days(i64::from(window_days) - 1);
        let cases = (0..)
            .map(|k| start + chrono::Duration::days(3 * k))
            .take_while(|d| *d <= today)
            .filter(|d| *d >= window_start)
            .count() as i64;
        Pace {
            today,
            window_days,
            term_start: start,
            horizon: day(2026, 12, 31),
            used_in_window: whole(cases),
            remaining: Some(whole(20 - 10)),
        }
    }

    #[test]
    fn one_case_every_three_days_runs_out_thirty_days_later() {
        let f = forecast(&every_third_day(30));
        assert_eq!(f.observed_days, 30);
        assert_eq!(f.used_in_window, whole(10));
        assert_eq!(f.burn_rate_per_day, Quantity::from_milli(333));
        assert_eq!(f.outlook, Outlook::RunsOut);
        // 10 remaining at 1/3 a day: 30 days after 30 January.
        assert_eq!(f.exhausted_on, Some(day(2026, 3, 1)));
        // A shorter window sees the same pace: 5 cases in 15 days.
        let short = forecast(&every_third_day(15));
        assert_eq!((short.used_in_window, short.observed_days), (whole(5), 15));
        assert_eq!(short.exhausted_on, Some(day(2026, 3, 1)));
    }

    #[test]
    fn days_before_the_term_do_not_slow_the_pace() {
        let pace = Pace {
            today: day(2026, 1, 10),
            window_days: 30,
            term_start: day(2026, 1, 1),
            horizon: day(2026, 1, 31),
            used_in_window: whole(5),
            remaining: Some(whole(5)),
        };
        let f = forecast(&pace);
        assert_eq!(f.observed_days, 10);
        assert_eq!(f.burn_rate_per_day, Quantity::from_milli(500));
        assert_eq!(f.exhausted_on, Some(day(2026, 1, 20)));
        let before = forecast(&Pace {
            term_start: day(2026, 2, 1),
            ..pace.clone()
        });
        assert_eq!(before.observed_days, 0);
        let first_day = forecast(&Pace {
            term_start: day(2026, 1, 10),
            ..pace.clone()
        });
        assert_eq!(first_day.observed_days, 1);
        assert_eq!(first_day.exhausted_on, Some(day(2026, 1, 11)));
        assert_eq!(
            (before.outlook, before.exhausted_on),
            (Outlook::Lasts, None)
        );
    }

    #[test]
    fn a_date_past_the_horizon_is_no_exhaustion() {
        let pace = Pace {
            today: day(2026, 1, 10),
            window_days: 10,
            term_start: day(2026, 1, 1),
            horizon: day(2026, 1, 20),
            used_in_window: whole(10),
            remaining: Some(whole(10)),
        };
        // 1 a day: the 10 remaining last exactly to the horizon.
        assert_eq!(forecast(&pace).exhausted_on, Some(day(2026, 1, 20)));
        let longer = forecast(&Pace {
            remaining: Some(Quantity::from_milli(10_001)),
            ..pace.clone()
        });
        assert_eq!(
            (longer.outlook, longer.exhausted_on),
            (Outlook::Lasts, None)
        );
    }

    #[test]
    fn unlimited_exhausted_and_idle_entitlements() {
        let pace = Pace {
            today: day(2026, 3, 1),
            window_days: 30,
            term_start: day(2026, 1, 1),
            horizon: day(2026, 12, 31),
            used_in_window: whole(3),
            remaining: None,
        };
        assert_eq!(forecast(&pace).outlook, Outlook::Unlimited);
        let over = forecast(&Pace {
            remaining: Some(whole(-2)),
            ..pace.clone()
        });
        assert_eq!(
            (over.outlook, over.exhausted_on),
            (Outlook::Exhausted, Some(day(2026, 3, 1)))
        );
        let zero = forecast(&Pace {
            remaining: Some(Quantity::ZERO),
            ..pace.clone()
        });
        assert_eq!(zero.outlook, Outlook::Exhausted);
        for used in [Quantity::ZERO, whole(-1)] {
            let idle = forecast(&Pace {
                remaining: Some(whole(4)),
                used_in_window: used,
                ..pace.clone()
            });
            assert_eq!((idle.outlook, idle.exhausted_on), (Outlook::Lasts, None));
        }
    }

    #[test]
    fn the_rate_rounds_half_up_to_a_thousandth() {
        let rate = |used: i64, days: u32| {
            forecast(&Pace {
                today: day(2026, 6, 30),
                window_days: days,
                term_start: day(2026, 1, 1),
                horizon: day(2026, 12, 31),
                used_in_window: Quantity::from_milli(used),
                remaining: Some(whole(1)),
            })
            .burn_rate_per_day
            .milli()
        };
        assert_eq!(rate(2000, 3), 667);
        assert_eq!(rate(1000, 3), 333);
        assert_eq!(rate(1, 2), 1);
        assert_eq!(rate(-1000, 3), -333);
    }

    #[test]
    fn outlooks_have_their_wire_names() {
        for o in [
            Outlook::Unlimited,
            Outlook::Exhausted,
            Outlook::RunsOut,
            Outlook::Lasts,
        ] {
            assert_eq!(serde_json::to_value(o).unwrap(), o.as_str());
        }
    }

    proptest! {
        /// The projected day is the first on which the pace has used up
        /// what remains: the day before, it had not.
        #[test]
        fn the_projected_day_is_the_first_that_uses_it_up(
            used in 1_000i64..1_000_000, remaining in 1i64..1_000_000, days in 1u32..=366,
        ) {
            let today = day(2026, 1, 1) + chrono::Duration::days(400);
            let pace = Pace {
                today,
                window_days: days,
                term_start: day(2026, 1, 1),
                horizon: NaiveDate::MAX,
                used_in_window: Quantity::from_milli(used),
                remaining: Some(Quantity::from_milli(remaining)),
            };
            let f = forecast(&pace);
            prop_assert_eq!(f.outlook, Outlook::RunsOut);
            let d = i128::from((f.exhausted_on.unwrap() - today).num_days());
            let (used, remaining, days) = (i128::from(used), i128::from(remaining), i128::from(days));
            prop_assert!(d * used >= remaining * days);
            prop_assert!((d - 1) * used < remaining * days);
        }
    }
}
