//! The names a software entitlement is written with, and what its terms
//! must satisfy.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::invalid::{Checks, Invalid};
use crate::quantity::Quantity;

use super::MAX_RIGHTS;

macro_rules! names {
    ($(#[$doc:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            pub fn parse(s: &str) -> Option<$name> {
                Self::ALL.iter().copied().find(|v| v.as_str() == s)
            }
        }
    };
}

names!(
    /// What one right counts.
    LicenseMetric {
        PerUser = "per_user",
        PerDevice = "per_device",
        PerCore = "per_core",
        PerInstall = "per_install",
        Concurrent = "concurrent",
        Consumption = "consumption",
    }
);

names!(
    /// How the rights were bought.
    LicenseType {
        Perpetual = "perpetual",
        Subscription = "subscription",
        PerpetualWithAssurance = "perpetual_with_assurance",
        Assurance = "assurance",
        StepUp = "step_up",
        SubscriptionStepUp = "subscription_step_up",
    }
);

names!(
    /// The agreement the rights come under.
    AgreementType {
        None = "none",
        Ea = "ea",
        Ela = "ela",
        Ula = "ula",
        Volume = "volume",
        Oem = "oem",
    }
);

names!(
    /// How often the rights are billed.
    SubscriptionPeriod {
        Monthly = "monthly",
        Quarterly = "quarterly",
        Annually = "annually",
        EntireTerm = "entire_term",
    }
);

impl LicenseType {
    /// Subscriptions follow their dates: in use only within them.
    pub fn follows_dates(self) -> bool {
        matches!(
            self,
            LicenseType::Subscription | LicenseType::SubscriptionStepUp
        )
    }
}

impl AgreementType {
    /// Enterprise-wide agreements cover every installation of the title.
    pub fn enterprise_wide(self) -> bool {
        matches!(
            self,
            AgreementType::Ea | AgreementType::Ela | AgreementType::Ula
        )
    }
}

impl SubscriptionPeriod {
    /// Length in months; `None` for one period spanning the whole term.
    pub fn months(self) -> Option<u32> {
        match self {
            SubscriptionPeriod::Monthly => Some(1),
            SubscriptionPeriod::Quarterly => Some(3),
            SubscriptionPeriod::Annually => Some(12),
            SubscriptionPeriod::EntireTerm => None,
        }
    }
}

/// What was bought, as a client writes it (rights already computed by
/// `purchased_rights`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SoftwareTerms {
    pub software_model_id: String,
    pub account_id: Option<String>,
    pub display_name: Option<String>,
    pub publisher_part_number: Option<String>,
    pub license_metric: LicenseMetric,
    pub license_type: LicenseType,
    pub agreement_type: AgreementType,
    pub rights_per_pack: Option<i64>,
    pub number_of_packs: Option<i64>,
    pub purchased_rights: i64,
    pub active_rights: i64,
    /// No cap: allocations are never refused for want of rights.
    pub unlimited: bool,
    pub unit_cost: Option<Quantity>,
    pub currency: Option<String>,
    pub subscription_period: SubscriptionPeriod,
    pub start_date: Option<NaiveDate>,
    pub end_date: Option<NaiveDate>,
    pub contract_id: Option<String>,
    pub asset_tag: Option<String>,
    pub cost_center: Option<String>,
    pub vendor: Option<String>,
    pub po_number: Option<String>,
}

/// Purchased rights from what the client gave: `rights_per_pack ×
/// number_of_packs` when both are given (a different `purchased_rights`
/// beside them is refused), else `purchased_rights`, else nothing.
pub fn purchased_rights(
    rights_per_pack: Option<i64>,
    number_of_packs: Option<i64>,
    purchased: Option<i64>,
) -> Result<i64, Invalid> {
    let mut checks = Checks::new();
    for (field, value) in [
        ("rights_per_pack", rights_per_pack),
        ("number_of_packs", number_of_packs),
        ("purchased_rights", purchased),
    ] {
        if value.is_some_and(|v| !(0..=MAX_RIGHTS).contains(&v)) {
            checks.push(field, format!("must be from 0 to {MAX_RIGHTS}"));
        }
    }
    checks.finish()?;
    match (rights_per_pack, number_of_packs, purchased) {
        (Some(per), Some(packs), given) => {
            let product = per
                .checked_mul(packs)
                .filter(|p| *p <= MAX_RIGHTS)
                .ok_or_else(|| {
                    Invalid::field(
                        "number_of_packs",
                        format!("rights_per_pack × number_of_packs must be at most {MAX_RIGHTS}"),
                    )
                })?;
            match given {
                Some(p) if p != product => Err(Invalid::field(
                    "purchased_rights",
                    format!("must equal rights_per_pack × number_of_packs ({product}) when all three are given"),
                )),
                _ => Ok(product),
            }
        }
        (Some(_), None, _) => Err(Invalid::field(
            "number_of_packs",
            "is required with rights_per_pack",
        )),
        (None, Some(_), _) => Err(Invalid::field(
            "rights_per_pack",
            "is required with number_of_packs",
        )),
        (None, None, given) => Ok(given.unwrap_or(0)),
    }
}

/// What a software entitlement's terms must satisfy.
pub fn validate(terms: &SoftwareTerms) -> Result<(), Invalid> {
    let mut checks = Checks::new();
    let rights_ok = (0..=MAX_RIGHTS).contains(&terms.purchased_rights);
    checks.check(
        rights_ok,
        "purchased_rights",
        format!("must be from 0 to {MAX_RIGHTS}"),
    );
    checks.check(
        terms.active_rights >= 0 && terms.active_rights <= terms.purchased_rights,
        "active_rights",
        "must be from 0 to purchased_rights",
    );
    checks.check(
        terms.unit_cost.is_none_or(|c| !c.is_negative()),
        "unit_cost",
        "must not be negative",
    );
    checks.check(
        terms
            .currency
            .as_deref()
            .is_none_or(|c| c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase())),
        "currency",
        "must be three capital letters (ISO 4217)",
    );
    if let (Some(start), Some(end)) = (terms.start_date, terms.end_date) {
        checks.check(end >= start, "end_date", "must not be before start_date");
    }
    if terms.license_type.follows_dates() {
        checks.check(
            terms.start_date.is_some(),
            "start_date",
            "is required for a subscription",
        );
        checks.check(
            terms.end_date.is_some(),
            "end_date",
            "is required for a subscription",
        );
    }
    if terms.subscription_period != SubscriptionPeriod::EntireTerm {
        checks.check(
            terms.start_date.is_some() && terms.end_date.is_some(),
            "subscription_period",
            "needs start_date and end_date to count its billing periods",
        );
    }
    checks.finish()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    /// 100 perpetual per-user rights on model `swm_1`.
    pub(crate) fn terms() -> SoftwareTerms {
        SoftwareTerms {
            software_model_id: "swm_1".into(),
            account_id: None,
            display_name: None,
            publisher_part_number: None,
            license_metric: LicenseMetric::PerUser,
            license_type: LicenseType::Perpetual,
            agreement_type: AgreementType::None,
            rights_per_pack: None,
            number_of_packs: None,
            purchased_rights: 100,
            active_rights: 100,
            unlimited: false,
            unit_cost: None,
            currency: None,
            subscription_period: SubscriptionPeriod::EntireTerm,
            start_date: None,
            end_date: None,
            contract_id: None,
            asset_tag: None,
            cost_center: None,
            vendor: None,
            po_number: None,
        }
    }

    fn field(e: Invalid) -> String {
        e.0[0].field.clone()
    }

    #[test]
    fn billing_periods_need_both_dates() {
        let mut t = terms();
        t.subscription_period = SubscriptionPeriod::Monthly;
        for (start, end) in [
            (Some(day(2026, 1, 1)), None),
            (None, Some(day(2026, 12, 31))),
            (None, None),
        ] {
            t.start_date = start;
            t.end_date = end;
            assert_eq!(
                field(validate(&t).unwrap_err()),
                "subscription_period",
                "{start:?} {end:?}"
            );
        }
        t.start_date = Some(day(2026, 1, 1));
        t.end_date = Some(day(2026, 12, 31));
        assert_eq!(validate(&t), Ok(()));
    }

    #[test]
    fn packs_make_the_purchased_rights() {
        assert_eq!(purchased_rights(Some(2), Some(8), None), Ok(16));
        assert_eq!(purchased_rights(Some(2), Some(8), Some(16)), Ok(16));
        assert_eq!(purchased_rights(None, None, Some(5)), Ok(5));
        assert_eq!(purchased_rights(None, None, None), Ok(0));
        let e = purchased_rights(Some(2), Some(8), Some(15)).unwrap_err();
        assert_eq!(field(e), "purchased_rights");
        assert_eq!(
            field(purchased_rights(Some(2), None, None).unwrap_err()),
            "number_of_packs"
        );
        assert_eq!(
            field(purchased_rights(None, Some(2), None).unwrap_err()),
            "rights_per_pack"
        );
        assert_eq!(
            field(purchased_rights(Some(-1), Some(2), None).unwrap_err()),
            "rights_per_pack"
        );
        let too_many = purchased_rights(Some(MAX_RIGHTS), Some(2), None).unwrap_err();
        assert_eq!(field(too_many), "number_of_packs");
        assert_eq!(
            purchased_rights(Some(MAX_RIGHTS), Some(1), None),
            Ok(MAX_RIGHTS)
        );
    }

    #[test]
    fn active_rights_never_exceed_purchased() {
        let mut t = terms();
        assert_eq!(validate(&t), Ok(()));
        t.active_rights = 101;
        assert_eq!(field(validate(&t).unwrap_err()), "active_rights");
        t.active_rights = -1;
        assert_eq!(field(validate(&t).unwrap_err()), "active_rights");
        t.active_rights = 100;
        t.purchased_rights = MAX_RIGHTS + 1;
        assert_eq!(field(validate(&t).unwrap_err()), "purchased_rights");
    }

    #[test]
    fn subscriptions_need_their_dates_and_periods_a_term() {
        let mut t = terms();
        t.license_type = LicenseType::Subscription;
        let e = validate(&t).unwrap_err();
        assert_eq!(e.0.len(), 2);
        t.start_date = Some(day(2026, 1, 1));
        t.end_date = Some(day(2025, 12, 31));
        assert_eq!(field(validate(&t).unwrap_err()), "end_date");
        t.end_date = Some(day(2026, 1, 1));
        assert_eq!(validate(&t), Ok(()));
        let mut p = terms();
        p.subscription_period = SubscriptionPeriod::Monthly;
        assert_eq!(field(validate(&p).unwrap_err()), "subscription_period");
    }

    #[test]
    fn costs_and_currencies_are_checked() {
        let mut t = terms();
        t.unit_cost = Some(Quantity::from_milli(-1));
        assert_eq!(field(validate(&t).unwrap_err()), "unit_cost");
        t.unit_cost = Some(Quantity::ZERO);
        t.currency = Some("usd".into());
        assert_eq!(field(validate(&t).unwrap_err()), "currency");
        t.currency = Some("USD".into());
        assert_eq!(validate(&t), Ok(()));
    }

    #[test]
    fn names_round_trip_and_classify() {
        for m in LicenseMetric::ALL {
            assert_eq!(LicenseMetric::parse(m.as_str()), Some(*m));
        }
        for t in LicenseType::ALL {
            assert_eq!(LicenseType::parse(t.as_str()), Some(*t));
        }
        for a in AgreementType::ALL {
            assert_eq!(AgreementType::parse(a.as_str()), Some(*a));
            assert_eq!(
                a.enterprise_wide(),
                matches!(a.as_str(), "ea" | "ela" | "ula")
            );
        }
        for p in SubscriptionPeriod::ALL {
            assert_eq!(SubscriptionPeriod::parse(p.as_str()), Some(*p));
        }
        assert!(LicenseType::Subscription.follows_dates());
        assert!(LicenseType::SubscriptionStepUp.follows_dates());
        assert!(!LicenseType::PerpetualWithAssurance.follows_dates());
        assert_eq!(SubscriptionPeriod::Quarterly.months(), Some(3));
        assert_eq!(SubscriptionPeriod::EntireTerm.months(), None);
    }
}
