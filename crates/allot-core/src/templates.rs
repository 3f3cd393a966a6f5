//! Entitlement templates: a tier (Bronze 10 cases a quarter, Gold
//! unlimited…) written once and instantiated for each customer. A template
//! gives an entitlement its terms at creation; the entitlement keeps them,
//! and the template's id, whatever the template becomes later.

use chrono::{Days, Months, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::entitlement::{AlertThreshold, ChannelTerm, DecrementOn, Period, Terms, Unit};
use crate::invalid::{FieldError, Invalid};
use crate::quantity::Quantity;
use crate::terms::validate_terms;

/// Longest template duration (100 years).
pub const MAX_MONTHS: u32 = 1200;
pub const MAX_DAYS: u32 = 36_600;

/// How long an instantiated entitlement runs, from its start date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Duration {
    Months(u32),
    Days(u32),
}

impl Duration {
    /// The last day of a term of this length starting on `start` (a month
    /// from January 1 ends January 31), `None` past the calendar.
    pub fn end_date(self, start: NaiveDate) -> Option<NaiveDate> {
        let after = match self {
            Duration::Months(m) => start.checked_add_months(Months::new(m)),
            Duration::Days(d) => start.checked_add_days(Days::new(u64::from(d))),
        }?;
        after.pred_opt()
    }
}

/// What a template sets on every entitlement made from it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateTerms {
    pub name: String,
    pub unit: Unit,
    /// `None`: unlimited.
    pub total: Option<Quantity>,
    pub period: Period,
    pub rollover: Quantity,
    pub restrict: bool,
    pub decrement_on: DecrementOn,
    pub channels: Vec<ChannelTerm>,
    pub product_ids: Vec<String>,
    pub alert_thresholds: Vec<AlertThreshold>,
    pub rounding: Option<Quantity>,
    pub sla: Option<String>,
    pub duration: Duration,
}

/// Where and when one entitlement of a template goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement<'a> {
    pub template_id: &'a str,
    pub account_id: &'a str,
    pub start_date: NaiveDate,
    pub contract_id: Option<&'a str>,
    pub contract_line_id: Option<&'a str>,
}

/// The terms of the entitlement `template` makes at `place`: the
/// template's terms, its name, the duration counted from the start date,
/// and where it came from. `None` when the term would end past the calendar.
pub fn terms_for(template: &TemplateTerms, place: &Placement<'_>) -> Option<Terms> {
    let end_date = template.duration.end_date(place.start_date)?;
    Some(Terms {
        account_id: place.account_id.to_string(),
        name: template.name.clone(),
        description: None,
        owner: None,
        owner_email: None,
        unit: template.unit,
        total: template.total,
        period: template.period,
        rollover: template.rollover,
        restrict: template.restrict,
        decrement_on: template.decrement_on,
        start_date: place.start_date,
        end_date,
        channels: template.channels.clone(),
        product_ids: template.product_ids.clone(),
        contact_ids: Vec::new(),
        is_default: false,
        pooled: false,
        alert_thresholds: template.alert_thresholds.clone(),
        rounding: template.rounding,
        auto_renew: false,
        contract_id: place.contract_id.map(str::to_string),
        sla: template.sla.clone(),
        contract_line_id: place.contract_line_id.map(str::to_string),
        template_id: Some(place.template_id.to_string()),
    })
}

/// What a template must satisfy: the duration within bounds, and the terms
/// it makes valid (checked on a sample start, `sample`) — so every
/// instantiation that fits the calendar makes valid terms.
pub fn validate_template(template: &TemplateTerms, sample: NaiveDate) -> Result<(), Invalid> {
    let duration_ok = match template.duration {
        Duration::Months(m) => (1..=MAX_MONTHS).contains(&m),
        Duration::Days(d) => (1..=MAX_DAYS).contains(&d),
    };
    let mut errors = Vec::new();
    if !duration_ok {
        errors.push(FieldError {
            field: "duration".into(),
            message: format!("must be 1 to {MAX_MONTHS} months or 1 to {MAX_DAYS} days"),
        });
    }
    let place = Placement {
        template_id: "template",
        account_id: "account",
        start_date: sample,
        contract_id: None,
        contract_line_id: None,
    };
    if let Some(terms) = terms_for(template, &place) {
        if let Err(Invalid(found)) = validate_terms(&terms) {
            // Dates come from the duration, already checked above.
            errors.extend(
                found
                    .into_iter()
                    .filter(|e| e.field != "end_date" && e.field != "start_date"),
            );
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Invalid(errors))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    pub(crate) fn gold() -> TemplateTerms {
        TemplateTerms {
            name: "Gold".into(),
            unit: Unit::Cases,
            total: Some(Quantity::whole(25)),
            period: Period::Quarter,
            rollover: Quantity::whole(5),
            restrict: true,
            decrement_on: DecrementOn::Resolution,
            channels: vec![ChannelTerm {
                channel: "phone".into(),
                total: Quantity::whole(10),
            }],
            product_ids: vec!["prd_1".into()],
            alert_thresholds: vec![AlertThreshold::PercentUsed(80)],
            rounding: None,
            sla: Some("4h".into()),
            duration: Duration::Months(12),
        }
    }

    #[test]
    fn a_duration_ends_the_day_before_it_would_start_again() {
        assert_eq!(
            Duration::Months(12).end_date(d(2026, 1, 1)),
            Some(d(2026, 12, 31))
        );
        assert_eq!(
            Duration::Months(1).end_date(d(2026, 1, 31)),
            Some(d(2026, 2, 27))
        );
        assert_eq!(
            Duration::Days(30).end_date(d(2026, 1, 1)),
            Some(d(2026, 1, 30))
        );
        assert_eq!(
            Duration::Days(1).end_date(d(2026, 1, 1)),
            Some(d(2026, 1, 1))
        );
        assert_eq!(Duration::Months(1).end_date(NaiveDate::MAX), None);
        assert_eq!(Duration::Days(1).end_date(NaiveDate::MAX), None);
        assert_eq!(
            serde_json::to_value(Duration::Months(3)).unwrap(),
            serde_json::json!({ "months": 3 })
        );
    }

    #[test]
    fn an_instance_takes_every_term_of_the_template_and_names_its_origin() {
        let t = gold();
        let place = Placement {
            template_id: "tpl_1",
            account_id: "acc_9",
            start_date: d(2026, 4, 1),
            contract_id: Some("ctr_1"),
            contract_line_id: Some("cln_1"),
        };
        let terms = terms_for(&t, &place).unwrap();
        assert_eq!(terms.account_id, "acc_9");
        assert_eq!(terms.name, "Gold");
        assert_eq!(terms.unit, Unit::Cases);
        assert_eq!(terms.total, Some(Quantity::whole(25)));
        assert_eq!(terms.period, Period::Quarter);
        assert_eq!(terms.rollover, Quantity::whole(5));
        assert!(terms.restrict);
        assert_eq!(terms.decrement_on, DecrementOn::Resolution);
        assert_eq!(
            (terms.start_date, terms.end_date),
            (d(2026, 4, 1), d(2027, 3, 31))
        );
        assert_eq!(terms.channels, t.channels);
        assert_eq!(terms.product_ids, vec!["prd_1".to_string()]);
        assert_eq!(terms.alert_thresholds, t.alert_thresholds);
        assert_eq!(terms.sla.as_deref(), Some("4h"));
        assert_eq!(terms.contract_id.as_deref(), Some("ctr_1"));
        assert_eq!(terms.contract_line_id.as_deref(), Some("cln_1"));
        assert_eq!(terms.template_id.as_deref(), Some("tpl_1"));
        assert!(!terms.is_default && !terms.pooled && !terms.auto_renew);
        assert_eq!(validate_terms(&terms), Ok(()));
        let mut hours = t.clone();
        hours.unit = Unit::Hours;
        hours.rounding = Some(Quantity::whole(1));
        assert_eq!(
            terms_for(&hours, &place).unwrap().rounding,
            Some(Quantity::whole(1))
        );
        let late = Placement {
            start_date: NaiveDate::MAX,
            ..place
        };
        assert_eq!(terms_for(&t, &late), None);
    }

    fn fields(t: &TemplateTerms) -> Vec<String> {
        validate_template(t, d(2026, 1, 1))
            .err()
            .map(|e| e.0.into_iter().map(|f| f.field).collect())
            .unwrap_or_default()
    }

    #[test]
    fn a_template_is_held_to_the_rules_of_the_terms_it_makes() {
        assert_eq!(validate_template(&gold(), d(2026, 1, 1)), Ok(()));
        let mut t = gold();
        t.total = Some("2.5".parse().unwrap());
        assert_eq!(fields(&t), vec!["total"]);
        let mut t = gold();
        t.name = " ".into();
        assert_eq!(fields(&t), vec!["name"]);
    }

    #[test]
    fn a_duration_is_between_one_and_its_bound() {
        for (duration, ok) in [
            (Duration::Months(0), false),
            (Duration::Months(1), true),
            (Duration::Months(MAX_MONTHS), true),
            (Duration::Months(MAX_MONTHS + 1), false),
            (Duration::Days(0), false),
            (Duration::Days(1), true),
            (Duration::Days(MAX_DAYS), true),
            (Duration::Days(MAX_DAYS + 1), false),
        ] {
            let t = TemplateTerms { duration, ..gold() };
            let expected: Vec<String> = if ok { vec![] } else { vec!["duration".into()] };
            assert_eq!(fields(&t), expected, "{duration:?}");
        }
        let err = validate_template(
            &TemplateTerms {
                duration: Duration::Days(0),
                ..gold()
            },
            d(2026, 1, 1),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "duration: must be 1 to 1200 months or 1 to 36600 days"
        );
    }
}
