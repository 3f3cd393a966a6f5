//! What rights cost: `total = purchased rights × unit cost × billing
//! periods in the term`, and the spend of the billing period holding today.

use chrono::NaiveDate;

use crate::entitlement::Period;
use crate::period::window_at;
use crate::quantity::Quantity;

use super::terms::{SoftwareTerms, SubscriptionPeriod};

fn period_of(p: SubscriptionPeriod) -> Period {
    match p {
        SubscriptionPeriod::Monthly => Period::Month,
        SubscriptionPeriod::Quarterly => Period::Quarter,
        SubscriptionPeriod::Annually => Period::Year,
        SubscriptionPeriod::EntireTerm => Period::None,
    }
}

/// Billing periods in the term, anchored on the start date (the last one
/// may be short and still counts). A term without dates is one period.
pub fn billing_periods(terms: &SoftwareTerms) -> i64 {
    match (terms.start_date, terms.end_date) {
        (Some(start), Some(end)) if end >= start => {
            window_at(period_of(terms.subscription_period), start, end, end).index + 1
        }
        _ => 1,
    }
}

/// `rights × unit cost × periods`, exactly; saturating at the largest
/// quantity (far past any real price) instead of overflowing.
fn times(unit_cost: Quantity, rights: i64, periods: i64) -> Quantity {
    let milli = i128::from(unit_cost.milli()) * i128::from(rights) * i128::from(periods);
    Quantity::from_milli(i64::try_from(milli).unwrap_or(i64::MAX))
}

/// Purchased rights × unit cost × billing periods; `None` without a unit cost.
pub fn total_cost(terms: &SoftwareTerms) -> Option<Quantity> {
    let unit_cost = terms.unit_cost?;
    Some(times(
        unit_cost,
        terms.purchased_rights,
        billing_periods(terms),
    ))
}

/// The spend of the billing period holding `today`: purchased rights ×
/// unit cost within the term, nothing outside it; `None` without a unit cost.
pub fn current_period_spend(terms: &SoftwareTerms, today: NaiveDate) -> Option<Quantity> {
    let unit_cost = terms.unit_cost?;
    let before = terms.start_date.is_some_and(|s| today < s);
    let after = terms.end_date.is_some_and(|e| today > e);
    let periods = if before || after { 0 } else { 1 };
    Some(times(unit_cost, terms.purchased_rights, periods))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::software::terms::tests::{day, terms};
    use proptest::prelude::*;

    fn priced(period: SubscriptionPeriod, start: NaiveDate, end: NaiveDate) -> SoftwareTerms {
        let mut t = terms();
        t.unit_cost = Some(Quantity::whole(1));
        t.subscription_period = period;
        t.start_date = Some(start);
        t.end_date = Some(end);
        t
    }

    #[test]
    fn the_seed_example_costs_200_and_spends_100_this_month() {
        let t = priced(
            SubscriptionPeriod::Monthly,
            day(2026, 6, 1),
            day(2026, 7, 31),
        );
        assert_eq!(billing_periods(&t), 2);
        assert_eq!(total_cost(&t), Some(Quantity::whole(200)));
        assert_eq!(
            current_period_spend(&t, day(2026, 6, 15)),
            Some(Quantity::whole(100))
        );
    }

    #[test]
    fn periods_count_by_the_billing_period() {
        let (s, e) = (day(2026, 1, 1), day(2026, 12, 31));
        assert_eq!(
            billing_periods(&priced(SubscriptionPeriod::Monthly, s, e)),
            12
        );
        assert_eq!(
            billing_periods(&priced(SubscriptionPeriod::Quarterly, s, e)),
            4
        );
        assert_eq!(
            billing_periods(&priced(SubscriptionPeriod::Annually, s, e)),
            1
        );
        assert_eq!(
            billing_periods(&priced(SubscriptionPeriod::EntireTerm, s, e)),
            1
        );
        // A short last period still bills.
        let short = priced(
            SubscriptionPeriod::Monthly,
            day(2026, 1, 15),
            day(2026, 3, 20),
        );
        assert_eq!(billing_periods(&short), 3);
        assert_eq!(billing_periods(&terms()), 1, "no dates: one period");
        let backwards = priced(
            SubscriptionPeriod::Monthly,
            day(2026, 3, 1),
            day(2026, 1, 1),
        );
        assert_eq!(
            billing_periods(&backwards),
            1,
            "terms out of order count once"
        );
    }

    #[test]
    fn nothing_is_spent_outside_the_term_nor_priced_without_a_cost() {
        let t = priced(
            SubscriptionPeriod::Monthly,
            day(2026, 6, 1),
            day(2026, 7, 31),
        );
        assert_eq!(
            current_period_spend(&t, day(2026, 5, 31)),
            Some(Quantity::ZERO)
        );
        assert_eq!(
            current_period_spend(&t, day(2026, 8, 1)),
            Some(Quantity::ZERO)
        );
        assert_eq!(
            current_period_spend(&t, day(2026, 7, 31)),
            Some(Quantity::whole(100))
        );
        assert_eq!(total_cost(&terms()), None);
        assert_eq!(current_period_spend(&terms(), day(2026, 1, 1)), None);
        let mut perpetual = terms();
        perpetual.unit_cost = Some(Quantity::from_milli(2_500));
        assert_eq!(total_cost(&perpetual), Some(Quantity::whole(250)));
        assert_eq!(
            current_period_spend(&perpetual, day(2026, 1, 1)),
            Some(Quantity::whole(250))
        );
    }

    #[test]
    fn huge_prices_saturate_instead_of_overflowing() {
        let mut t = priced(
            SubscriptionPeriod::Monthly,
            day(2000, 1, 1),
            day(2099, 12, 31),
        );
        t.purchased_rights = crate::software::MAX_RIGHTS;
        t.unit_cost = Some(Quantity::whole(1_000_000_000_000));
        assert_eq!(total_cost(&t), Some(Quantity::from_milli(i64::MAX)));
    }

    proptest! {
        /// Over any term and billing period, the total is the sum of every
        /// period's spend: walking the term day by day, each period's
        /// spend counted once.
        #[test]
        fn total_is_the_sum_of_the_periods(
            start_offset in 0i64..400,
            length in 0i64..800,
            rights in 0i64..1000,
            cost_milli in 0i64..100_000,
            period in prop::sample::select(SubscriptionPeriod::ALL.to_vec()),
        ) {
            let start = day(2025, 1, 1) + chrono::Duration::days(start_offset);
            let end = start + chrono::Duration::days(length);
            let mut t = priced(period, start, end);
            t.purchased_rights = rights;
            t.unit_cost = Some(Quantity::from_milli(cost_milli));
            let mut sum = Quantity::ZERO;
            let mut last = None;
            let mut d = start;
            while d <= end {
                let w = window_at(period_of(period), start, end, d);
                if last != Some(w.index) {
                    sum += current_period_spend(&t, d).unwrap();
                    last = Some(w.index);
                }
                d += chrono::Duration::days(1);
            }
            prop_assert_eq!(total_cost(&t).unwrap(), sum);
        }
    }
}
