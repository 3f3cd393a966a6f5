//! The service entitlement: what a customer may use, over which dates.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::quantity::Quantity;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    Cases,
    Hours,
    Visits,
    Units,
}

impl Unit {
    pub const ALL: [Unit; 4] = [Unit::Cases, Unit::Hours, Unit::Visits, Unit::Units];

    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Cases => "cases",
            Unit::Hours => "hours",
            Unit::Visits => "visits",
            Unit::Units => "units",
        }
    }

    pub fn parse(s: &str) -> Option<Unit> {
        Unit::ALL.into_iter().find(|u| u.as_str() == s)
    }

    /// Cases and visits are counted, never split.
    pub fn is_whole_only(self) -> bool {
        matches!(self, Unit::Cases | Unit::Visits)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    #[default]
    None,
    Month,
    Quarter,
    Year,
}

impl Period {
    pub fn as_str(self) -> &'static str {
        match self {
            Period::None => "none",
            Period::Month => "month",
            Period::Quarter => "quarter",
            Period::Year => "year",
        }
    }

    pub fn parse(s: &str) -> Option<Period> {
        [Period::None, Period::Month, Period::Quarter, Period::Year]
            .into_iter()
            .find(|p| p.as_str() == s)
    }

    /// Length in months; `None` for a period spanning the whole term.
    pub fn months(self) -> Option<u32> {
        match self {
            Period::None => None,
            Period::Month => Some(1),
            Period::Quarter => Some(3),
            Period::Year => Some(12),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum DecrementOn {
    #[default]
    Creation,
    Resolution,
}

impl DecrementOn {
    pub fn as_str(self) -> &'static str {
        match self {
            DecrementOn::Creation => "creation",
            DecrementOn::Resolution => "resolution",
        }
    }

    pub fn parse(s: &str) -> Option<DecrementOn> {
        match s {
            "creation" => Some(DecrementOn::Creation),
            "resolution" => Some(DecrementOn::Resolution),
            _ => None,
        }
    }
}

/// The stored lifecycle state. `Waiting`, `Active` and `Expired` are the
/// states of an activated entitlement; which of them holds on a given day
/// is decided by its dates (see `lifecycle::effective_status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Draft,
    Waiting,
    Active,
    Expired,
    Cancelled,
    /// Paused by its contract: refuses usage until the contract resumes.
    Suspended,
}

impl Status {
    pub const ALL: [Status; 6] = [
        Status::Draft,
        Status::Waiting,
        Status::Active,
        Status::Expired,
        Status::Cancelled,
        Status::Suspended,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Draft => "draft",
            Status::Waiting => "waiting",
            Status::Active => "active",
            Status::Expired => "expired",
            Status::Cancelled => "cancelled",
            Status::Suspended => "suspended",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// A per-channel cap, e.g. phone 80 h, email 20 h.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelTerm {
    pub channel: String,
    pub total: Quantity,
}

/// An alert threshold: a percentage used, or an absolute remaining floor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AlertThreshold {
    PercentUsed(u32),
    Remaining { remaining: Quantity },
}

/// Everything a manager sets on an entitlement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Terms {
    pub account_id: String,
    pub name: String,
    pub description: Option<String>,
    pub owner: Option<String>,
    /// Who hears about this entitlement's alerts besides the account manager.
    #[serde(default)]
    pub owner_email: Option<String>,
    pub unit: Unit,
    /// `None` means unlimited: coverage by dates only.
    pub total: Option<Quantity>,
    pub period: Period,
    pub rollover: Quantity,
    pub restrict: bool,
    pub decrement_on: DecrementOn,
    pub start_date: NaiveDate,
    pub end_date: NaiveDate,
    pub channels: Vec<ChannelTerm>,
    pub product_ids: Vec<String>,
    pub contact_ids: Vec<String>,
    pub is_default: bool,
    pub pooled: bool,
    pub alert_thresholds: Vec<AlertThreshold>,
    pub rounding: Option<Quantity>,
    pub auto_renew: bool,
    pub contract_id: Option<String>,
    pub sla: Option<String>,
    /// The line of `contract_id` this entitlement delivers.
    #[serde(default)]
    pub contract_line_id: Option<String>,
    /// The template it was made from (editing the template later changes
    /// nothing here).
    #[serde(default)]
    pub template_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entitlement {
    pub id: String,
    pub terms: Terms,
    pub status: Status,
    pub predecessor_id: Option<String>,
}

impl Entitlement {
    pub fn channel_total(&self, channel: &str) -> Option<Quantity> {
        self.terms
            .channels
            .iter()
            .find(|c| c.channel == channel)
            .map(|c| c.total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_match_the_wire_format() {
        for unit in Unit::ALL {
            assert_eq!(Unit::parse(unit.as_str()), Some(unit));
            assert_eq!(serde_json::to_value(unit).unwrap(), unit.as_str());
        }
        for period in [Period::None, Period::Month, Period::Quarter, Period::Year] {
            assert_eq!(Period::parse(period.as_str()), Some(period));
            assert_eq!(serde_json::to_value(period).unwrap(), period.as_str());
        }
        for on in [DecrementOn::Creation, DecrementOn::Resolution] {
            assert_eq!(DecrementOn::parse(on.as_str()), Some(on));
            assert_eq!(serde_json::to_value(on).unwrap(), on.as_str());
        }
        for status in Status::ALL {
            assert_eq!(Status::parse(status.as_str()), Some(status));
            assert_eq!(serde_json::to_value(status).unwrap(), status.as_str());
        }
        assert_eq!(Unit::parse("litres"), None);
        assert_eq!(Period::parse("week"), None);
        assert_eq!(DecrementOn::parse("closure"), None);
        assert_eq!(Status::parse("paused"), None);
    }

    #[test]
    fn periods_have_their_length_in_months() {
        let months: Vec<Option<u32>> = [Period::None, Period::Month, Period::Quarter, Period::Year]
            .into_iter()
            .map(Period::months)
            .collect();
        assert_eq!(months, vec![None, Some(1), Some(3), Some(12)]);
    }

    #[test]
    fn only_cases_and_visits_are_whole() {
        let whole: Vec<bool> = Unit::ALL.into_iter().map(Unit::is_whole_only).collect();
        assert_eq!(whole, vec![true, false, true, false]);
    }

    #[test]
    fn a_channel_total_is_found_by_name() {
        let mut ent = crate::test_support::active(crate::test_support::terms());
        ent.terms.channels = vec![
            ChannelTerm {
                channel: "phone".into(),
                total: Quantity::whole(3),
            },
            ChannelTerm {
                channel: "email".into(),
                total: Quantity::whole(5),
            },
        ];
        assert_eq!(ent.channel_total("email"), Some(Quantity::whole(5)));
        assert_eq!(ent.channel_total("phone"), Some(Quantity::whole(3)));
        assert_eq!(ent.channel_total("fax"), None);
    }
}
