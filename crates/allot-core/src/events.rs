//! Events a change causes; stored in the same transaction (outbox).

use serde::Serialize;
use serde_json::{json, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    ThresholdCrossed,
    Exhausted,
    Overage,
    PeriodReset,
    Activated,
    Waiting,
    Expired,
    Deactivated,
    Cancelled,
    Renewed,
    ReservationExpired,
    ExpiringSoon,
    Suspended,
    Resumed,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::ThresholdCrossed => "entitlement.threshold_crossed",
            EventKind::Exhausted => "entitlement.exhausted",
            EventKind::Overage => "entitlement.overage",
            EventKind::PeriodReset => "entitlement.period_reset",
            EventKind::Activated => "entitlement.activated",
            EventKind::Waiting => "entitlement.waiting",
            EventKind::Expired => "entitlement.expired",
            EventKind::Deactivated => "entitlement.deactivated",
            EventKind::Cancelled => "entitlement.cancelled",
            EventKind::Renewed => "entitlement.renewed",
            EventKind::ReservationExpired => "reservation.expired",
            EventKind::ExpiringSoon => "entitlement.expiring_soon",
            EventKind::Suspended => "entitlement.suspended",
            EventKind::Resumed => "entitlement.resumed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventDraft {
    pub kind: EventKind,
    pub entitlement_id: String,
    pub data: Value,
}

impl EventDraft {
    pub fn new(kind: EventKind, entitlement_id: &str, data: Value) -> Self {
        EventDraft {
            kind,
            entitlement_id: entitlement_id.to_string(),
            data,
        }
    }

    pub fn bare(kind: EventKind, entitlement_id: &str) -> Self {
        Self::new(kind, entitlement_id, json!({}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_names_are_the_outbox_wire_names() {
        let names: Vec<&str> = [
            EventKind::ThresholdCrossed,
            EventKind::Exhausted,
            EventKind::Overage,
            EventKind::PeriodReset,
            EventKind::Activated,
            EventKind::Waiting,
            EventKind::Expired,
            EventKind::Deactivated,
            EventKind::Cancelled,
            EventKind::Renewed,
            EventKind::ReservationExpired,
            EventKind::ExpiringSoon,
            EventKind::Suspended,
            EventKind::Resumed,
        ]
        .into_iter()
        .map(EventKind::as_str)
        .collect();
        assert_eq!(
            names,
            vec![
                "entitlement.threshold_crossed",
                "entitlement.exhausted",
                "entitlement.overage",
                "entitlement.period_reset",
                "entitlement.activated",
                "entitlement.waiting",
                "entitlement.expired",
                "entitlement.deactivated",
                "entitlement.cancelled",
                "entitlement.renewed",
                "reservation.expired",
                "entitlement.expiring_soon",
                "entitlement.suspended",
                "entitlement.resumed",
            ]
        );
    }

    #[test]
    fn a_bare_event_has_empty_data() {
        assert_eq!(
            EventDraft::bare(EventKind::Renewed, "ent_1"),
            EventDraft {
                kind: EventKind::Renewed,
                entitlement_id: "ent_1".into(),
                data: json!({}),
            }
        );
    }
}
