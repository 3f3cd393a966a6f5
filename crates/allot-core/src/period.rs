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

/// The start of period `n`, or `None` when it would fall past the last
/// representable date.
fn nth_start(start: NaiveDate, months: u32, n: i64) -> Option<NaiveDate> {
    // Always count from the anchor, so 31 Jan → 28 Feb → 31 Mar never drifts.
    let total = u32::try_from(months as i64 * n).ok()?;
    start.checked_add_months(Months::new(total))
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
    // Period `elapsed / months` starts in the day's calendar month or
    // earlier, so it exists; it starts after the day only when the anchor
    // lies later in its month than the day (anchor 31 Jan, day 30 Apr), and
    // then the period before holds the day. One step back at most: no loop.
    let mut index = months_between(start, day) / months as i64;
    let start_of = |n: i64| nth_start(start, months, n).unwrap_or(NaiveDate::MAX);
    if start_of(index) > day {
        index -= 1;
    }
    let window_start = start_of(index);
    // The last period of the calendar runs to the end of the term.
    let window_end = match nth_start(start, months, index + 1) {
        Some(next) => next.pred_opt().unwrap_or(next).min(end),
        None => end,
    };
    debug_assert!(window_start <= day && day <= window_end);
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
    use chrono::Datelike;
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
    fn the_last_period_of_the_calendar_holds_its_last_day() {
        let last_month = NaiveDate::MAX.with_day(1).unwrap();
        let w = window_at(Period::Month, last_month, NaiveDate::MAX, NaiveDate::MAX);
        assert_eq!(
            w,
            Window {
                index: 0,
                start: last_month,
                end: NaiveDate::MAX
            }
        );
        let (s, e) = (NaiveDate::MAX - chrono::Duration::days(400), NaiveDate::MAX);
        let w = window_at(Period::Month, s, e, NaiveDate::MAX);
        assert_eq!(w.index, 13);
        assert_eq!(w.start, s.checked_add_months(Months::new(13)).unwrap());
        assert_eq!(w.end, NaiveDate::MAX);
    }

    #[test]
    fn a_period_starts_on_its_first_day_and_ends_on_the_day_before_the_next() {
        let (s, e) = (d(2026, 1, 31), d(2028, 1, 30));
        // (day, index of its period, first day, last day)
        let expected = [
            ((2026, 2, 27), 0, (2026, 1, 31), (2026, 2, 27)),
            ((2026, 2, 28), 1, (2026, 2, 28), (2026, 3, 30)),
            ((2026, 3, 30), 1, (2026, 2, 28), (2026, 3, 30)),
            ((2026, 3, 31), 2, (2026, 3, 31), (2026, 4, 29)),
            ((2027, 1, 30), 11, (2026, 12, 31), (2027, 1, 30)),
            ((2027, 1, 31), 12, (2027, 1, 31), (2027, 2, 27)),
            ((2028, 1, 30), 23, (2027, 12, 31), (2028, 1, 30)),
        ];
        for ((y, m, day), index, (sy, sm, sd), (ey, em, ed)) in expected {
            let want = Window {
                index,
                start: d(sy, sm, sd),
                end: d(ey, em, ed),
            };
            assert_eq!(
                window_at(Period::Month, s, e, d(y, m, day)),
                want,
                "day {y}-{m}-{day}"
            );
        }
    }

    #[test]
    fn quarters_and_years_across_calendar_years() {
        use Period::{Quarter, Year};
        let (s, e) = (d(2025, 11, 30), d(2029, 11, 29));
        let day = |iso: &str| iso.parse::<NaiveDate>().unwrap();
        for (period, on, index, start, end) in [
            (Quarter, "2026-02-27", 0, "2025-11-30", "2026-02-27"),
            (Quarter, "2026-02-28", 1, "2026-02-28", "2026-05-29"),
            (Quarter, "2028-11-30", 12, "2028-11-30", "2029-02-27"),
            (Year, "2027-11-29", 1, "2026-11-30", "2027-11-29"),
            (Year, "2027-11-30", 2, "2027-11-30", "2028-11-29"),
            (Year, "2029-11-29", 3, "2028-11-30", "2029-11-29"),
        ] {
            let (on, start, end) = (day(on), day(start), day(end));
            assert_eq!(
                window_at(period, s, e, on),
                Window { index, start, end },
                "{period:?} on {on}"
            );
        }
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
