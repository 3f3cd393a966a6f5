//! Periods inside a term: anchored on the start date, reset at each start.

use chrono::{Months, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::entitlement::Period;

/// One period of a term: its index (0 = the first) and inclusive dates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    pub index: i64,
    pub start: NaiveDate,
    pub end: NaiveDate,
}

fn nth_start(start: NaiveDate, months: u32, n: i64) -> NaiveDate {
    // Always count from the anchor, so 31 Jan → 28 Feb → 31 Mar never drifts.
    let total = (months as i64 * n).clamp(0, u32::MAX as i64) as u32;
    start
        .checked_add_months(Months::new(total))
        .unwrap_or(NaiveDate::MAX)
}

/// The period holding `day`, clamped to the term: days before the term fall
/// in the first period, days after it in the last.
pub fn window_at(period: Period, start: NaiveDate, end: NaiveDate, day: NaiveDate) -> Window {
    let day = day.clamp(start, end);
    let Some(months) = period.months() else {
        return Window {
            index: 0,
            start,
            end,
        };
    };
    let elapsed = months_between(start, day);
    let mut index = (elapsed / months as i64).max(0);
    while index > 0 && nth_start(start, months, index) > day {
        index -= 1;
    }
    // A start past the last representable date saturates; stop there.
    while nth_start(start, months, index + 1) <= day
        && nth_start(start, months, index + 1) > nth_start(start, months, index)
    {
        index += 1;
    }
    let window_start = nth_start(start, months, index);
    let next = nth_start(start, months, index + 1);
    let window_end = next.pred_opt().unwrap_or(next).min(end);
    Window {
        index,
        start: window_start,
        end: window_end,
    }
}

fn months_between(a: NaiveDate, b: NaiveDate) -> i64 {
    use chrono::Datelike;
    (b.year() as i64 - a.year() as i64) * 12 + (b.month() as i64 - a.month() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn whole_term_is_one_window() {
        let w = window_at(Period::None, d(2026, 1, 1), d(2026, 12, 31), d(2026, 6, 1));
        assert_eq!(
            w,
            Window {
                index: 0,
                start: d(2026, 1, 1),
                end: d(2026, 12, 31)
            }
        );
    }

    #[test]
    fn quarters_are_anchored_on_the_start_date() {
        let (s, e) = (d(2026, 2, 15), d(2027, 2, 14));
        assert_eq!(window_at(Period::Quarter, s, e, d(2026, 5, 14)).index, 0);
        let w = window_at(Period::Quarter, s, e, d(2026, 5, 15));
        assert_eq!(
            w,
            Window {
                index: 1,
                start: d(2026, 5, 15),
                end: d(2026, 8, 14)
            }
        );
        assert_eq!(window_at(Period::Quarter, s, e, d(2027, 2, 14)).end, e);
    }

    #[test]
    fn month_end_anchor_does_not_drift() {
        let (s, e) = (d(2026, 1, 31), d(2026, 12, 31));
        assert_eq!(
            window_at(Period::Month, s, e, d(2026, 2, 28)).start,
            d(2026, 2, 28)
        );
        assert_eq!(
            window_at(Period::Month, s, e, d(2026, 3, 31)).start,
            d(2026, 3, 31)
        );
        assert_eq!(window_at(Period::Month, s, e, d(2026, 3, 30)).index, 1);
    }

    #[test]
    fn terms_at_the_end_of_the_calendar_end() {
        let (s, e) = (NaiveDate::MAX - chrono::Duration::days(400), NaiveDate::MAX);
        let w = window_at(Period::Month, s, e, NaiveDate::MAX);
        assert!(w.start <= NaiveDate::MAX);
    }

    #[test]
    fn days_outside_the_term_are_clamped() {
        let (s, e) = (d(2026, 1, 1), d(2026, 12, 31));
        assert_eq!(window_at(Period::Month, s, e, d(2025, 1, 1)).index, 0);
        assert_eq!(window_at(Period::Month, s, e, d(2030, 1, 1)).index, 11);
    }

    proptest! {
        #[test]
        fn a_day_lies_in_its_window_and_windows_tile(
            start_offset in 0i64..3000, len in 0i64..2000, at in 0i64..2000, p in 0usize..4
        ) {
            let period = [Period::None, Period::Month, Period::Quarter, Period::Year][p];
            let start = d(2020, 1, 1) + chrono::Duration::days(start_offset);
            let end = start + chrono::Duration::days(len);
            let day = start + chrono::Duration::days(at.min(len));
            let w = window_at(period, start, end, day);
            prop_assert!(w.start <= day && day <= w.end);
            if w.end < end {
                let next = window_at(period, start, end, w.end.succ_opt().unwrap());
                prop_assert_eq!(next.index, w.index + 1);
                prop_assert_eq!(next.start, w.end.succ_opt().unwrap());
            }
        }
    }
}
