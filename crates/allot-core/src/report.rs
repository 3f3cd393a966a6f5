//! The figures reports show: percent used, how close to the limit, what a
//! closed period left unused, and the calendar buckets of a usage series.

use chrono::{Datelike, Days, Months, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::balance::{Balance, Counters};
use crate::entitlement::{Entitlement, Period};
use crate::period::{window_at, Window};
use crate::quantity::Quantity;

/// Used and held over the allowance (the period's total plus what rolled
/// into it), as a percentage exact to a hundredth: the measure alert
/// thresholds use. `None` when unlimited or when nothing is allowed.
pub fn percent_used(b: &Balance) -> Option<Quantity> {
    let allowance = b.total? + b.carried_over;
    // percent_of gives hundredths of a percent; a Quantity counts thousandths.
    (b.used + b.held)
        .percent_of(allowance)
        .map(|hundredths| Quantity::from_milli(hundredths * 10))
}

/// Where an entitlement stands against its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitState {
    /// Used past the allowance (only without restrict).
    Overage,
    /// Nothing remains.
    Exhausted,
    /// At or above the asked threshold.
    Approaching,
    Below,
}

impl LimitState {
    pub fn as_str(self) -> &'static str {
        match self {
            LimitState::Overage => "overage",
            LimitState::Exhausted => "exhausted",
            LimitState::Approaching => "approaching",
            LimitState::Below => "below",
        }
    }
}

/// `threshold` is a percentage used; `remaining` is today's (`None` when
/// unlimited, which is never near a limit).
pub fn limit_state(
    remaining: Option<Quantity>,
    percent: Option<Quantity>,
    threshold: Quantity,
) -> LimitState {
    match remaining {
        None => LimitState::Below,
        Some(r) if r.is_negative() => LimitState::Overage,
        Some(r) if r.is_zero() => LimitState::Exhausted,
        Some(_) if percent.is_some_and(|p| p >= threshold) => LimitState::Approaching,
        Some(_) => LimitState::Below,
    }
}

/// Period `index` of the term, or `None` past its end.
pub fn window_of(ent: &Entitlement, index: i64) -> Option<Window> {
    let t = &ent.terms;
    window_numbered(t.period, t.start_date, t.end_date, index)
}

/// Period `index` of a term cut into `period`s from `start` to `end`, or
/// `None` past its end.
fn window_numbered(period: Period, start: NaiveDate, end: NaiveDate, index: i64) -> Option<Window> {
    let day = match period.months() {
        None if index == 0 => start,
        None => return None,
        Some(months) => {
            let months = u32::try_from(i64::from(months).checked_mul(index)?).ok()?;
            start.checked_add_months(Months::new(months))?
        }
    };
    (day <= end).then(|| window_at(period, start, end, day))
}

/// The periods of a term (`period`s from `start` to `end`) that ended
/// before `today`, in order: the windows `closed_periods` replays.
/// Bounded by the periods of the term.
pub fn ended_windows(
    period: Period,
    start: NaiveDate,
    end: NaiveDate,
    today: NaiveDate,
) -> impl Iterator<Item = Window> {
    let periods = window_at(period, start, end, end).index + 1;
    (0..periods).map_while(move |index| {
        window_numbered(period, start, end, index).filter(|w| w.end < today)
    })
}

/// How many periods of a term ended before `today` on a day from `from` to
/// `to`: the rows of the unused report a limited entitlement with these
/// dates may have (each leaves something unused unless its use reached
/// its allowance).
pub fn ended_between(
    period: Period,
    (start, end): (NaiveDate, NaiveDate),
    today: NaiveDate,
    (from, to): (NaiveDate, NaiveDate),
) -> u64 {
    ended_windows(period, start, end, today)
        .filter(|w| from <= w.end && w.end <= to)
        .count() as u64
}

/// A period that has ended, and what it left.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClosedPeriod {
    pub window: Window,
    /// The period's allotment, without what rolled into it.
    pub total: Quantity,
    pub carried_in: Quantity,
    pub used: Quantity,
    /// total + carried_in − used, never below zero.
    pub unused: Quantity,
    /// Used past total + carried_in.
    pub overage: Quantity,
    /// What rolled on into the next period.
    pub carried_out: Quantity,
}

/// The periods of a limited entitlement that ended before `today`, from
/// the net use of each (`used_in(index)`, the ledger's sum), replaying the
/// resets and rollovers as `Counters::roll_to` makes them. Unlimited
/// entitlements leave nothing unused. Bounded by the periods of the term.
pub fn closed_periods(
    ent: &Entitlement,
    today: NaiveDate,
    used_in: impl Fn(i64) -> Quantity,
) -> Vec<ClosedPeriod> {
    let Some(total) = ent.terms.total else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut carried = Quantity::ZERO;
    let t = &ent.terms;
    for window in ended_windows(t.period, t.start_date, t.end_date, today) {
        let index = window.index;
        let counters = Counters {
            period_index: index,
            used: used_in(index),
            carried,
            ..Counters::default()
        };
        let (next, _) = counters.roll_to(ent, index + 1);
        let allowance = total + carried;
        out.push(ClosedPeriod {
            window,
            total,
            carried_in: carried,
            used: counters.used,
            unused: (allowance - counters.used).max(Quantity::ZERO),
            overage: (counters.used - allowance).max(Quantity::ZERO),
            carried_out: next.carried,
        });
        carried = next.carried;
    }
    out
}

/// The span of a usage series' point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Bucket {
    Day,
    /// ISO weeks, Monday to Sunday.
    Week,
    /// Calendar months.
    Month,
}

impl Bucket {
    pub const ALL: [Bucket; 3] = [Bucket::Day, Bucket::Week, Bucket::Month];

    pub fn as_str(self) -> &'static str {
        match self {
            Bucket::Day => "day",
            Bucket::Week => "week",
            Bucket::Month => "month",
        }
    }

    pub fn parse(s: &str) -> Option<Bucket> {
        Bucket::ALL.into_iter().find(|b| b.as_str() == s)
    }

    /// The first day of the bucket holding `day`.
    pub fn start(self, day: NaiveDate) -> NaiveDate {
        match self {
            Bucket::Day => day,
            Bucket::Week => day
                .checked_sub_days(Days::new(u64::from(day.weekday().num_days_from_monday())))
                .unwrap_or(NaiveDate::MIN),
            Bucket::Month => day.with_day(1).unwrap_or(day),
        }
    }

    /// The last day of the bucket holding `day`.
    pub fn end(self, day: NaiveDate) -> NaiveDate {
        let start = self.start(day);
        let next = match self {
            Bucket::Day => start.checked_add_days(Days::new(1)),
            Bucket::Week => start.checked_add_days(Days::new(7)),
            Bucket::Month => start.checked_add_months(Months::new(1)),
        };
        next.and_then(|n| n.pred_opt()).unwrap_or(NaiveDate::MAX)
    }
}

/// How many periods the term has (1 without periods).
pub fn periods_in_term(ent: &Entitlement) -> i64 {
    let t = &ent.terms;
    window_at(t.period, t.start_date, t.end_date, t.end_date).index + 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balance::balance;
    use crate::entitlement::Period;
    use crate::test_support::{active, day, terms};

    fn whole(n: i64) -> Quantity {
        Quantity::whole(n)
    }

    fn monthly(total: i64, rollover: i64) -> Entitlement {
        let mut t = terms();
        t.period = Period::Month;
        t.total = Some(whole(total));
        t.rollover = whole(rollover);
        active(t)
    }

    #[test]
    fn percent_used_counts_holds_and_what_rolled_in() {
        let ent = monthly(10, 5);
        let c = Counters {
            used: whole(4),
            held: whole(1),
            carried: whole(5),
            ..Default::default()
        };
        let today = day(2026, 1, 15);
        let percent = |ent: &Entitlement, c: &Counters| percent_used(&balance(ent, c, today));
        assert_eq!(percent(&ent, &c), Some(Quantity::from_milli(33_330)));
        let c = Counters {
            used: whole(12),
            ..Default::default()
        };
        assert_eq!(percent(&ent, &c), Some(whole(120)));
        let mut unlimited = ent.clone();
        unlimited.terms.total = None;
        assert_eq!(percent(&unlimited, &c), None);
        let mut nothing = ent;
        nothing.terms.total = Some(Quantity::ZERO);
        assert_eq!(percent(&nothing, &c), None);
    }

    #[test]
    fn limit_states_order_the_most_urgent_first() {
        let eighty = whole(80);
        let state =
            |r: Option<i64>, p: Option<i64>| limit_state(r.map(whole), p.map(whole), eighty);
        assert_eq!(state(Some(-1), Some(110)), LimitState::Overage);
        assert_eq!(state(Some(0), Some(100)), LimitState::Exhausted);
        assert_eq!(state(Some(2), Some(80)), LimitState::Approaching);
        assert_eq!(state(Some(3), Some(79)), LimitState::Below);
        assert_eq!(state(None, None), LimitState::Below);
        assert!(LimitState::Overage < LimitState::Exhausted);
        assert!(LimitState::Exhausted < LimitState::Approaching);
        assert!(LimitState::Approaching < LimitState::Below);
        for s in [
            LimitState::Overage,
            LimitState::Exhausted,
            LimitState::Approaching,
            LimitState::Below,
        ] {
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
    }

    #[test]
    fn a_term_counts_its_periods() {
        assert_eq!(periods_in_term(&monthly(10, 0)), 12);
        assert_eq!(periods_in_term(&active(terms())), 1);
        let mut quarters = terms();
        quarters.period = Period::Quarter;
        quarters.end_date = day(2026, 4, 1);
        let quarters = active(quarters);
        assert_eq!(periods_in_term(&quarters), 2);
        // The last period may be a single day: the term's last.
        let last = window_of(&quarters, 1).unwrap();
        assert_eq!((last.start, last.end), (day(2026, 4, 1), day(2026, 4, 1)));
    }

    #[test]
    fn windows_by_index_stop_at_the_end_of_the_term() {
        let ent = monthly(10, 0);
        let w = window_of(&ent, 1).unwrap();
        assert_eq!(
            (w.index, w.start, w.end),
            (1, day(2026, 2, 1), day(2026, 2, 28))
        );
        assert_eq!(window_of(&ent, 11).unwrap().end, day(2026, 12, 31));
        assert_eq!(window_of(&ent, 12), None);
        let whole_term = active(terms());
        assert_eq!(window_of(&whole_term, 0).unwrap().end, day(2026, 12, 31));
        assert_eq!(window_of(&whole_term, 1), None);
    }

    #[test]
    fn closed_periods_replay_rollover_and_overage() {
        let mut ent = monthly(10, 3);
        ent.terms.restrict = false;
        let used = |i: i64| match i {
            0 => whole(4),
            1 => whole(15),
            _ => Quantity::ZERO,
        };
        // 1 April: January, February and March have ended.
        let closed = closed_periods(&ent, day(2026, 4, 1), used);
        let figures: Vec<_> = closed
            .iter()
            .map(|p| {
                (
                    p.window.index,
                    p.carried_in,
                    p.used,
                    p.unused,
                    p.overage,
                    p.carried_out,
                )
            })
            .collect();
        assert_eq!(
            figures,
            vec![
                (0, whole(0), whole(4), whole(6), whole(0), whole(3)),
                (1, whole(3), whole(15), whole(0), whole(2), whole(0)),
                (2, whole(0), whole(0), whole(10), whole(0), whole(3)),
            ]
        );
        assert_eq!(closed[2].window.end, day(2026, 3, 31));
        // On the last day of March, March has not ended.
        assert_eq!(closed_periods(&ent, day(2026, 3, 31), used).len(), 2);
        // What rolled in is spent before it rolls on: 3 in, 11 used of 13.
        let used = |i: i64| if i == 0 { whole(4) } else { whole(11) };
        let february = &closed_periods(&ent, day(2026, 3, 1), used)[1];
        assert_eq!(
            (february.carried_in, february.unused, february.carried_out),
            (whole(3), whole(2), whole(2))
        );
    }

    #[test]
    fn periods_ended_between_are_the_closed_periods_ending_in_the_span() {
        let mut anchored = monthly(10, 0);
        anchored.terms.start_date = day(2026, 1, 31);
        let mut quarterly = monthly(10, 0);
        quarterly.terms.period = Period::Quarter;
        quarterly.terms.end_date = day(2026, 11, 15);
        let whole_term = active(terms());
        let spans = [
            (day(2025, 6, 1), day(2026, 6, 1)),
            (day(2026, 2, 27), day(2026, 3, 31)),
            (day(2026, 3, 1), day(2026, 2, 1)),
            (day(2026, 12, 31), day(2027, 1, 1)),
        ];
        for ent in [monthly(10, 0), anchored, quarterly, whole_term] {
            let t = &ent.terms;
            let mut today = t.start_date;
            while today <= day(2027, 1, 2) {
                for (from, to) in spans {
                    let listed = closed_periods(&ent, today, |_| Quantity::ZERO)
                        .iter()
                        .filter(|p| from <= p.window.end && p.window.end <= to)
                        .count() as u64;
                    let counted =
                        ended_between(t.period, (t.start_date, t.end_date), today, (from, to));
                    assert_eq!(counted, listed, "{:?} on {today}, {from}..{to}", t.period);
                }
                today = today.succ_opt().unwrap();
            }
        }
        // Twelve months by 1 January: a year of them ended within the year.
        let ent = monthly(10, 0);
        let (s, e) = (ent.terms.start_date, ent.terms.end_date);
        assert_eq!(
            ended_between(Period::Month, (s, e), day(2027, 1, 1), (s, e)),
            12
        );
        assert_eq!(
            ended_between(Period::Month, (s, e), day(2026, 12, 31), (s, e)),
            11
        );
    }

    #[test]
    fn a_term_without_periods_closes_when_it_ends() {
        let ent = active(terms());
        let used = |_| whole(5);
        assert!(closed_periods(&ent, day(2026, 12, 31), used).is_empty());
        let closed = closed_periods(&ent, day(2027, 1, 1), used);
        assert_eq!(closed.len(), 1);
        assert_eq!((closed[0].unused, closed[0].total), (whole(15), whole(20)));
        let mut unlimited = ent;
        unlimited.terms.total = None;
        assert!(closed_periods(&unlimited, day(2027, 1, 1), used).is_empty());
    }

    #[test]
    fn buckets_start_on_the_day_the_monday_and_the_first() {
        let d = day(2026, 3, 19); // a Thursday
        assert_eq!(Bucket::Day.start(d), d);
        assert_eq!(Bucket::Week.start(d), day(2026, 3, 16));
        assert_eq!(Bucket::Week.start(day(2026, 3, 16)), day(2026, 3, 16));
        assert_eq!(Bucket::Week.start(day(2026, 3, 22)), day(2026, 3, 16));
        assert_eq!(Bucket::Month.start(d), day(2026, 3, 1));
        assert_eq!(Bucket::Day.end(d), d);
        assert_eq!(Bucket::Week.end(d), day(2026, 3, 22));
        assert_eq!(Bucket::Month.end(d), day(2026, 3, 31));
        assert_eq!(Bucket::Month.end(day(2026, 2, 1)), day(2026, 2, 28));
        for b in Bucket::ALL {
            assert_eq!(Bucket::parse(b.as_str()), Some(b));
        }
        assert_eq!(Bucket::parse("year"), None);
    }
}
