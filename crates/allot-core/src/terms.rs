//! The rules an entitlement's terms must satisfy before they are stored.

use std::collections::HashSet;

use chrono::Datelike;

use crate::entitlement::{AlertThreshold, Period, Terms, Unit};
use crate::invalid::{Checks, Invalid};
use crate::quantity::Quantity;

/// The longest term accepted: a guard against typo'd years.
pub const MAX_TERM_DAYS: i64 = 366 * 100;
pub const MAX_NAME_LEN: usize = 200;
pub const MAX_TEXT_LEN: usize = 4000;
pub const MAX_CHANNELS: usize = 32;
pub const MAX_SCOPE_IDS: usize = 1000;

fn quantity_ok(checks: &mut Checks, unit: Unit, field: &str, q: Quantity) {
    checks.check(!q.is_negative(), field, "must not be negative");
    if unit.is_whole_only() {
        checks.check(
            q.is_whole(),
            field,
            format!("must be a whole number for {}", unit.as_str()),
        );
    }
}

pub fn validate_terms(t: &Terms) -> Result<(), Invalid> {
    let mut c = Checks::new();
    c.check(!t.name.trim().is_empty(), "name", "must not be empty");
    c.check(
        t.name.chars().count() <= MAX_NAME_LEN,
        "name",
        format!("must be at most {MAX_NAME_LEN} characters"),
    );
    c.check(
        !t.account_id.trim().is_empty(),
        "account_id",
        "must not be empty",
    );
    for (field, text) in [
        ("description", &t.description),
        ("owner", &t.owner),
        ("sla", &t.sla),
    ] {
        if let Some(text) = text {
            c.check(
                text.chars().count() <= MAX_TEXT_LEN,
                field,
                format!("must be at most {MAX_TEXT_LEN} characters"),
            );
        }
    }
    if let Some(email) = &t.owner_email {
        c.check(
            crate::alerts::is_email_address(email),
            "owner_email",
            "must be an e-mail address",
        );
    }
    if let Some(total) = t.total {
        quantity_ok(&mut c, t.unit, "total", total);
    }
    c.check(
        t.end_date >= t.start_date,
        "end_date",
        "must not be before start_date",
    );
    for (field, date) in [("start_date", t.start_date), ("end_date", t.end_date)] {
        c.check(
            (1900..=9999).contains(&date.year()),
            field,
            "year must be from 1900 to 9999",
        );
    }
    c.check(
        (t.end_date - t.start_date).num_days() <= MAX_TERM_DAYS,
        "end_date",
        "term must be at most 100 years",
    );
    quantity_ok(&mut c, t.unit, "rollover", t.rollover);
    if !t.rollover.is_zero() {
        c.check(
            t.period != Period::None,
            "rollover",
            "needs a period (month, quarter or year)",
        );
        c.check(
            t.total.is_some(),
            "rollover",
            "has no meaning for an unlimited entitlement",
        );
    }
    c.check(
        t.channels.len() <= MAX_CHANNELS,
        "channels",
        format!("at most {MAX_CHANNELS} channels"),
    );
    let mut seen = HashSet::new();
    for (i, ch) in t.channels.iter().enumerate() {
        let field = format!("channels[{i}].channel");
        c.check(!ch.channel.trim().is_empty(), &field, "must not be empty");
        c.check(
            ch.channel.chars().count() <= 64,
            &field,
            "must be at most 64 characters",
        );
        c.check(seen.insert(ch.channel.as_str()), &field, "appears twice");
        quantity_ok(&mut c, t.unit, &format!("channels[{i}].total"), ch.total);
    }
    c.check(
        t.product_ids.len() <= MAX_SCOPE_IDS,
        "product_ids",
        "too many entries",
    );
    c.check(
        t.contact_ids.len() <= MAX_SCOPE_IDS,
        "contact_ids",
        "too many entries",
    );
    for (i, threshold) in t.alert_thresholds.iter().enumerate() {
        let field = format!("alert_thresholds[{i}]");
        match threshold {
            AlertThreshold::PercentUsed(p) => c.check(
                (1..=1000).contains(p),
                &field,
                "percent must be between 1 and 1000",
            ),
            AlertThreshold::Remaining { remaining } => {
                quantity_ok(&mut c, t.unit, &field, *remaining)
            }
        }
    }
    if let Some(rounding) = t.rounding {
        c.check(t.unit == Unit::Hours, "rounding", "applies only to hours");
        c.check(
            rounding.milli() > 0,
            "rounding",
            "must be greater than zero",
        );
        c.check(
            rounding <= Quantity::whole(24),
            "rounding",
            "must be at most 24 hours",
        );
    }
    c.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entitlement::{AlertThreshold, ChannelTerm};
    use chrono::NaiveDate;

    use crate::test_support::terms;

    fn fields(t: &Terms) -> Vec<String> {
        validate_terms(t)
            .err()
            .map(|e| e.0.into_iter().map(|f| f.field).collect())
            .unwrap_or_default()
    }

    #[test]
    fn accepts_valid_terms() {
        assert_eq!(validate_terms(&terms()), Ok(()));
    }

    #[test]
    fn end_before_start_is_refused() {
        let mut t = terms();
        t.end_date = NaiveDate::from_ymd_opt(2025, 1, 1).unwrap();
        assert_eq!(fields(&t), vec!["end_date"]);
    }

    #[test]
    fn whole_units_refuse_fractions() {
        let mut t = terms();
        t.unit = Unit::Cases;
        t.total = Some("2.5".parse().unwrap());
        assert_eq!(fields(&t), vec!["total"]);
    }

    #[test]
    fn rollover_needs_a_period() {
        let mut t = terms();
        t.rollover = Quantity::whole(2);
        assert_eq!(fields(&t), vec!["rollover"]);
        t.period = Period::Month;
        assert_eq!(fields(&t), Vec::<String>::new());
    }

    #[test]
    fn channels_are_unique_and_rounding_is_for_hours() {
        let mut t = terms();
        t.channels = vec![
            ChannelTerm {
                channel: "phone".into(),
                total: Quantity::whole(1),
            },
            ChannelTerm {
                channel: "phone".into(),
                total: Quantity::whole(1),
            },
        ];
        t.unit = Unit::Visits;
        t.rounding = Some("0.25".parse().unwrap());
        assert_eq!(fields(&t), vec!["channels[1].channel", "rounding"]);
    }

    fn with(f: impl FnOnce(&mut Terms)) -> Vec<String> {
        let mut t = terms();
        f(&mut t);
        fields(&t)
    }

    fn none() -> Vec<String> {
        Vec::new()
    }

    #[test]
    fn lengths_and_counts_are_accepted_up_to_their_limit() {
        let long = |n: usize| "x".repeat(n);
        assert_eq!(with(|t| t.name = long(MAX_NAME_LEN)), none());
        assert_eq!(with(|t| t.name = long(MAX_NAME_LEN + 1)), vec!["name"]);
        assert_eq!(with(|t| t.name = "  ".into()), vec!["name"]);
        assert_eq!(with(|t| t.account_id = " ".into()), vec!["account_id"]);
        assert_eq!(with(|t| t.description = Some(long(MAX_TEXT_LEN))), none());
        assert_eq!(
            with(|t| t.description = Some(long(MAX_TEXT_LEN + 1))),
            vec!["description"]
        );
        assert_eq!(with(|t| t.sla = Some(long(MAX_TEXT_LEN + 1))), vec!["sla"]);
        let channels = |n: usize| {
            (0..n)
                .map(|i| ChannelTerm {
                    channel: format!("ch{i}"),
                    total: Quantity::whole(1),
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(with(|t| t.channels = channels(MAX_CHANNELS)), none());
        assert_eq!(
            with(|t| t.channels = channels(MAX_CHANNELS + 1)),
            vec!["channels"]
        );
        let channel = |name: String| {
            vec![ChannelTerm {
                channel: name,
                total: Quantity::whole(1),
            }]
        };
        assert_eq!(with(|t| t.channels = channel(long(64))), none());
        assert_eq!(
            with(|t| t.channels = channel(long(65))),
            vec!["channels[0].channel"]
        );
        assert_eq!(
            with(|t| t.channels = channel(" ".into())),
            vec!["channels[0].channel"]
        );
        let ids = |n: usize| vec!["id".to_string(); n];
        assert_eq!(with(|t| t.product_ids = ids(MAX_SCOPE_IDS)), none());
        assert_eq!(
            with(|t| t.product_ids = ids(MAX_SCOPE_IDS + 1)),
            vec!["product_ids"]
        );
        assert_eq!(with(|t| t.contact_ids = ids(MAX_SCOPE_IDS)), none());
        assert_eq!(
            with(|t| t.contact_ids = ids(MAX_SCOPE_IDS + 1)),
            vec!["contact_ids"]
        );
    }

    #[test]
    fn a_term_may_last_one_day_and_at_most_a_hundred_years() {
        let start = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
        let days = |n: i64| start + chrono::Duration::days(n);
        assert_eq!(with(|t| t.end_date = start), none());
        assert_eq!(with(|t| t.end_date = days(MAX_TERM_DAYS)), none());
        assert_eq!(
            with(|t| t.end_date = days(MAX_TERM_DAYS + 1)),
            vec!["end_date"]
        );
        assert_eq!(MAX_TERM_DAYS, 36_600);
        let y = |year: i32| NaiveDate::from_ymd_opt(year, 1, 1).unwrap();
        assert_eq!(
            with(|t| {
                t.start_date = y(1899);
                t.end_date = y(1900);
            }),
            vec!["start_date"]
        );
        assert_eq!(
            with(|t| {
                t.start_date = y(1900);
                t.end_date = NaiveDate::from_ymd_opt(9999, 12, 31).unwrap();
            }),
            vec!["end_date"]
        );
        assert_eq!(
            with(|t| t.end_date = NaiveDate::from_ymd_opt(10000, 1, 1).unwrap()),
            vec!["end_date", "end_date"]
        );
    }

    #[test]
    fn quantities_are_never_negative() {
        let minus = || Some(Quantity::whole(-1));
        assert_eq!(with(|t| t.total = minus()), vec!["total"]);
        assert_eq!(with(|t| t.total = Some(Quantity::ZERO)), none());
        assert_eq!(
            with(|t| {
                t.period = Period::Month;
                t.rollover = Quantity::whole(-1);
            }),
            vec!["rollover"]
        );
        assert_eq!(
            with(|t| {
                t.channels = vec![ChannelTerm {
                    channel: "phone".into(),
                    total: Quantity::whole(-1),
                }]
            }),
            vec!["channels[0].total"]
        );
        assert_eq!(
            with(|t| {
                t.alert_thresholds = vec![AlertThreshold::Remaining {
                    remaining: Quantity::whole(-1),
                }]
            }),
            vec!["alert_thresholds[0]"]
        );
        assert_eq!(
            with(|t| {
                t.unit = Unit::Visits;
                t.alert_thresholds = vec![AlertThreshold::Remaining {
                    remaining: "0.5".parse().unwrap(),
                }]
            }),
            vec!["alert_thresholds[0]"]
        );
    }

    #[test]
    fn rollover_needs_a_total() {
        assert_eq!(
            with(|t| {
                t.period = Period::Month;
                t.total = None;
                t.rollover = Quantity::whole(1);
            }),
            vec!["rollover"]
        );
        assert_eq!(
            with(|t| {
                t.total = None;
                t.rollover = Quantity::ZERO;
            }),
            none()
        );
    }

    #[test]
    fn percent_thresholds_run_from_1_to_1000() {
        let pct = |p: u32| with(|t| t.alert_thresholds = vec![AlertThreshold::PercentUsed(p)]);
        assert_eq!(pct(1), none());
        assert_eq!(pct(1000), none());
        assert_eq!(pct(0), vec!["alert_thresholds[0]"]);
        assert_eq!(pct(1001), vec!["alert_thresholds[0]"]);
    }

    #[test]
    fn rounding_is_a_positive_increment_of_at_most_a_day() {
        let rounding = |r: &str| with(|t| t.rounding = Some(r.parse().unwrap()));
        assert_eq!(rounding("0.001"), none());
        assert_eq!(rounding("24"), none());
        assert_eq!(rounding("24.001"), vec!["rounding"]);
        assert_eq!(rounding("0"), vec!["rounding"]);
        assert_eq!(rounding("-0.25"), vec!["rounding"]);
    }
}
