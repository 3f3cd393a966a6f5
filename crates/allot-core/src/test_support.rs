//! Fixtures shared by the rule tests in this crate and, through the
//! `test-support` feature, by the store conformance suite: the one `Terms`.

use chrono::NaiveDate;

use crate::entitlement::{DecrementOn, Entitlement, Period, Status, Terms, Unit};
use crate::quantity::Quantity;

pub fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

pub fn terms() -> Terms {
    Terms {
        account_id: "acc_1".into(),
        name: "Gold support".into(),
        description: None,
        owner: None,
        owner_email: None,
        unit: Unit::Hours,
        total: Some(Quantity::whole(20)),
        period: Period::None,
        rollover: Quantity::ZERO,
        restrict: true,
        decrement_on: DecrementOn::Creation,
        start_date: day(2026, 1, 1),
        end_date: day(2026, 12, 31),
        channels: vec![],
        product_ids: vec![],
        contact_ids: vec![],
        is_default: false,
        pooled: false,
        alert_thresholds: vec![],
        rounding: None,
        auto_renew: false,
        contract_id: None,
        contract_line_id: None,
        template_id: None,
        sla: None,
    }
}

pub fn active(terms: Terms) -> Entitlement {
    Entitlement {
        id: "ent_1".into(),
        terms,
        status: Status::Active,
        predecessor_id: None,
    }
}
