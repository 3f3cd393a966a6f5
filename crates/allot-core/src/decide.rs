//! The decision at the moment of use: may this change be applied, and what
//! does it write? Everything that touches `used` or `held` is decided here.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::balance::{channel_remaining, counters_today, remaining, Counters, PeriodReset};
use crate::entitlement::{AlertThreshold, Entitlement, Status, Unit};
use crate::events::{EventDraft, EventKind};
use crate::lifecycle::effective_status;
use crate::quantity::Quantity;

/// Why a ledger entry was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    Usage,
    Visit,
    Adjustment,
    CaseOpened,
    CaseCancelled,
    CaseResolved,
    CaseReactivated,
    CaseMovedOut,
    CaseMovedIn,
    TimeLogged,
    TimeEntryDeleted,
    ReservationCommitted,
}

impl Reason {
    pub const ALL: [Reason; 12] = [
        Reason::Usage,
        Reason::Visit,
        Reason::Adjustment,
        Reason::CaseOpened,
        Reason::CaseCancelled,
        Reason::CaseResolved,
        Reason::CaseReactivated,
        Reason::CaseMovedOut,
        Reason::CaseMovedIn,
        Reason::TimeLogged,
        Reason::TimeEntryDeleted,
        Reason::ReservationCommitted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Usage => "usage",
            Reason::Visit => "visit",
            Reason::Adjustment => "adjustment",
            Reason::CaseOpened => "case_opened",
            Reason::CaseCancelled => "case_cancelled",
            Reason::CaseResolved => "case_resolved",
            Reason::CaseReactivated => "case_reactivated",
            Reason::CaseMovedOut => "case_moved_out",
            Reason::CaseMovedIn => "case_moved_in",
            Reason::TimeLogged => "time_logged",
            Reason::TimeEntryDeleted => "time_entry_deleted",
            Reason::ReservationCommitted => "reservation_committed",
        }
    }

    pub fn parse(s: &str) -> Option<Reason> {
        Reason::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// A change to one entitlement's usage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Change {
    /// A use: needs an active entitlement; refused past the cap when restricted;
    /// hours round up to the entitlement's increment.
    Consume {
        quantity: Quantity,
        channel: Option<String>,
        reason: Reason,
        reference: Option<String>,
    },
    /// Gives an earlier use back; never takes the period's usage below zero.
    GiveBack {
        quantity: Quantity,
        channel: Option<String>,
        reason: Reason,
        reference: Option<String>,
    },
    /// A manager's signed correction; not capped, never below zero used.
    Adjust {
        quantity: Quantity,
        channel: Option<String>,
        reference: Option<String>,
    },
    /// Holds an amount against remaining, as a use would be checked.
    Hold {
        quantity: Quantity,
        channel: Option<String>,
    },
    /// Drops a hold.
    Release {
        quantity: Quantity,
        channel: Option<String>,
    },
    /// Turns a hold into usage, possibly of a different amount.
    CommitHold {
        held: Quantity,
        actual: Quantity,
        channel: Option<String>,
        reference: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum Refusal {
    #[error("entitlement {entitlement_id} has {remaining} remaining; {requested} requested")]
    EntitlementExhausted {
        entitlement_id: String,
        remaining: Quantity,
        requested: Quantity,
    },
    #[error("channel {channel} of entitlement {entitlement_id} has {remaining} remaining; {requested} requested")]
    ChannelExhausted {
        entitlement_id: String,
        channel: String,
        remaining: Quantity,
        requested: Quantity,
    },
    #[error("entitlement {entitlement_id} is {status}, not active")]
    EntitlementNotActive {
        entitlement_id: String,
        status: String,
    },
    #[error("entitlement {entitlement_id} has no terms for channel {channel}")]
    UnknownChannel {
        entitlement_id: String,
        channel: String,
    },
    #[error("entitlement {entitlement_id} does not exist")]
    EntitlementNotFound { entitlement_id: String },
    #[error("{field}: {message}")]
    InvalidQuantity { field: String, message: String },
    #[error("reference {reference} was already recorded on entitlement {entitlement_id}")]
    DuplicateReference {
        entitlement_id: String,
        reference: String,
    },
}

impl Refusal {
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::EntitlementExhausted { .. } => "entitlement_exhausted",
            Refusal::ChannelExhausted { .. } => "channel_exhausted",
            Refusal::EntitlementNotActive { .. } => "entitlement_not_active",
            Refusal::UnknownChannel { .. } => "unknown_channel",
            Refusal::EntitlementNotFound { .. } => "not_found",
            Refusal::InvalidQuantity { .. } => "invalid_quantity",
            Refusal::DuplicateReference { .. } => "duplicate_reference",
        }
    }
}

/// A ledger entry to append.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerDraft {
    pub entitlement_id: String,
    pub period_index: i64,
    pub channel: Option<String>,
    pub quantity: Quantity,
    pub reason: Reason,
    pub reference: Option<String>,
}

/// What deciding one change produced.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    pub entitlement_id: String,
    pub entry: Option<LedgerDraft>,
    pub counters: Counters,
    pub reset: Option<PeriodReset>,
    pub events: Vec<EventDraft>,
    pub warnings: Vec<String>,
}

fn whole_ok(unit: Unit, q: Quantity, field: &str) -> Result<(), Refusal> {
    if unit.is_whole_only() && !q.is_whole() {
        return Err(Refusal::InvalidQuantity {
            field: field.into(),
            message: format!("must be a whole number for {}", unit.as_str()),
        });
    }
    Ok(())
}

fn positive(q: Quantity, field: &str) -> Result<(), Refusal> {
    if q.milli() <= 0 {
        return Err(Refusal::InvalidQuantity {
            field: field.into(),
            message: "must be greater than zero".into(),
        });
    }
    Ok(())
}

fn channel_checked(ent: &Entitlement, channel: &Option<String>) -> Result<(), Refusal> {
    if let Some(ch) = channel {
        if !ent.terms.channels.is_empty() && ent.channel_total(ch).is_none() {
            return Err(Refusal::UnknownChannel {
                entitlement_id: ent.id.clone(),
                channel: ch.clone(),
            });
        }
    }
    Ok(())
}

fn require_active(ent: &Entitlement, today: NaiveDate) -> Result<(), Refusal> {
    let t = &ent.terms;
    let status = effective_status(ent.status, t.start_date, t.end_date, today);
    if status != Status::Active {
        return Err(Refusal::EntitlementNotActive {
            entitlement_id: ent.id.clone(),
            status: status.as_str().into(),
        });
    }
    Ok(())
}

/// Refuses taking `extra` more when a restricted entitlement (or the named
/// channel) would go below zero.
fn fits(
    ent: &Entitlement,
    c: &Counters,
    channel: &Option<String>,
    extra: Quantity,
) -> Result<(), Refusal> {
    if !ent.terms.restrict || extra.milli() <= 0 {
        return Ok(());
    }
    if let Some(rem) = remaining(ent, c) {
        if rem < extra {
            return Err(Refusal::EntitlementExhausted {
                entitlement_id: ent.id.clone(),
                remaining: rem,
                requested: extra,
            });
        }
    }
    if let Some(ch) = channel {
        if let Some(rem) = channel_remaining(ent, c, ch) {
            if rem < extra {
                return Err(Refusal::ChannelExhausted {
                    entitlement_id: ent.id.clone(),
                    channel: ch.clone(),
                    remaining: rem,
                    requested: extra,
                });
            }
        }
    }
    Ok(())
}

fn add_used(c: &mut Counters, channel: &Option<String>, q: Quantity) {
    c.used += q;
    if let Some(ch) = channel {
        c.channels.entry(ch.clone()).or_default().used += q;
    }
}

fn add_held(c: &mut Counters, channel: &Option<String>, q: Quantity) {
    c.held += q;
    if let Some(ch) = channel {
        let counter = c.channels.entry(ch.clone()).or_default();
        counter.held += q;
        if counter.used.is_zero() && counter.held.is_zero() {
            c.channels.remove(ch);
        }
    }
}

/// Decides one change against an entitlement and its stored counters.
pub fn decide(
    ent: &Entitlement,
    stored: &Counters,
    change: &Change,
    today: NaiveDate,
) -> Result<Applied, Refusal> {
    let unit = ent.terms.unit;
    let (before, reset, window) = counters_today(ent, stored, today);
    let mut after = before.clone();
    let entry = |channel: &Option<String>,
                 quantity: Quantity,
                 reason: Reason,
                 reference: &Option<String>| LedgerDraft {
        entitlement_id: ent.id.clone(),
        period_index: window.index,
        channel: channel.clone(),
        quantity,
        reason,
        reference: reference.clone(),
    };
    let written = match change {
        Change::Consume {
            quantity,
            channel,
            reason,
            reference,
        } => {
            positive(*quantity, "quantity")?;
            whole_ok(unit, *quantity, "quantity")?;
            require_active(ent, today)?;
            channel_checked(ent, channel)?;
            let q = match ent.terms.rounding {
                Some(inc) if unit == Unit::Hours => quantity.round_up_to(inc),
                _ => *quantity,
            };
            fits(ent, &before, channel, q)?;
            add_used(&mut after, channel, q);
            Some(entry(channel, q, *reason, reference))
        }
        Change::GiveBack {
            quantity,
            channel,
            reason,
            reference,
        } => {
            positive(*quantity, "quantity")?;
            let mut q = (*quantity).min(before.used);
            if let Some(ch) = channel {
                let ch_used = before.channels.get(ch).map(|c| c.used).unwrap_or_default();
                q = q.min(ch_used);
            }
            if q.milli() > 0 {
                add_used(&mut after, channel, -q);
                Some(entry(channel, -q, *reason, reference))
            } else {
                None
            }
        }
        Change::Adjust {
            quantity,
            channel,
            reference,
        } => {
            if quantity.is_zero() {
                return Err(Refusal::InvalidQuantity {
                    field: "quantity".into(),
                    message: "must not be zero".into(),
                });
            }
            whole_ok(unit, *quantity, "quantity")?;
            channel_checked(ent, channel)?;
            if before.used + *quantity < Quantity::ZERO {
                return Err(Refusal::InvalidQuantity {
                    field: "quantity".into(),
                    message: format!("would take used below zero (used is {})", before.used),
                });
            }
            add_used(&mut after, channel, *quantity);
            Some(entry(channel, *quantity, Reason::Adjustment, reference))
        }
        Change::Hold { quantity, channel } => {
            positive(*quantity, "quantity")?;
            whole_ok(unit, *quantity, "quantity")?;
            require_active(ent, today)?;
            channel_checked(ent, channel)?;
            fits(ent, &before, channel, *quantity)?;
            add_held(&mut after, channel, *quantity);
            None
        }
        Change::Release { quantity, channel } => {
            add_held(&mut after, channel, -(*quantity).min(before.held));
            None
        }
        Change::CommitHold {
            held,
            actual,
            channel,
            reference,
        } => {
            whole_ok(unit, *actual, "quantity")?;
            if actual.is_negative() {
                return Err(Refusal::InvalidQuantity {
                    field: "quantity".into(),
                    message: "must not be negative".into(),
                });
            }
            add_held(&mut after, channel, -(*held).min(before.held));
            fits(ent, &after, channel, *actual)?;
            if actual.is_zero() {
                None
            } else {
                add_used(&mut after, channel, *actual);
                Some(entry(
                    channel,
                    *actual,
                    Reason::ReservationCommitted,
                    reference,
                ))
            }
        }
    };
    if !after.within_bounds() {
        return Err(Refusal::InvalidQuantity {
            field: "quantity".into(),
            message: format!(
                "would take the entitlement's counters past {}, the most Allot keeps",
                crate::quantity::MAX_COUNTER_WHOLE
            ),
        });
    }
    let (events, warnings) = consequences(ent, &before, &after, reset.as_ref());
    Ok(Applied {
        entitlement_id: ent.id.clone(),
        entry: written,
        counters: after,
        reset,
        events,
        warnings,
    })
}

/// Alerts a change causes: thresholds crossed upward, exhaustion, overage.
fn consequences(
    ent: &Entitlement,
    before: &Counters,
    after: &Counters,
    reset: Option<&PeriodReset>,
) -> (Vec<EventDraft>, Vec<String>) {
    let mut events = Vec::new();
    let mut warnings = Vec::new();
    if let Some(reset) = reset {
        events.push(EventDraft::new(
            EventKind::PeriodReset,
            &ent.id,
            json!(reset),
        ));
    }
    let (Some(rem_before), Some(rem_after), Some(total)) = (
        remaining(ent, before),
        remaining(ent, after),
        ent.terms.total,
    ) else {
        return (events, warnings);
    };
    if rem_after >= rem_before {
        return (events, warnings);
    }
    let allowance = total + after.carried;
    let consumed = |c: &Counters| c.used + c.held;
    for threshold in &ent.terms.alert_thresholds {
        let crossed = match *threshold {
            AlertThreshold::PercentUsed(p) => {
                let bar = p as i64 * 100;
                let pct = |c: &Counters| consumed(c).percent_of(allowance).unwrap_or(i64::MAX);
                pct(before) < bar && pct(after) >= bar
            }
            AlertThreshold::Remaining { remaining } => {
                rem_before > remaining && rem_after <= remaining
            }
        };
        if crossed {
            events.push(EventDraft::new(
                EventKind::ThresholdCrossed,
                &ent.id,
                json!({ "threshold": threshold, "used": after.used, "remaining": rem_after }),
            ));
        }
    }
    if rem_before > Quantity::ZERO && rem_after <= Quantity::ZERO {
        events.push(EventDraft::new(
            EventKind::Exhausted,
            &ent.id,
            json!({ "remaining": rem_after }),
        ));
    }
    if rem_after < Quantity::ZERO {
        let overage = -rem_after;
        events.push(EventDraft::new(
            EventKind::Overage,
            &ent.id,
            json!({ "overage": overage }),
        ));
        warnings.push(format!(
            "entitlement {} is in overage by {} {}",
            ent.id,
            overage,
            ent.terms.unit.as_str()
        ));
    }
    (events, warnings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entitlement::ChannelTerm;
    use crate::test_support::{active, day, terms};

    fn q(s: &str) -> Quantity {
        s.parse().unwrap()
    }

    fn consume(n: &str) -> Change {
        Change::Consume {
            quantity: q(n),
            channel: None,
            reason: Reason::Usage,
            reference: None,
        }
    }

    fn today() -> NaiveDate {
        day(2026, 6, 1)
    }

    #[test]
    fn restricted_use_past_the_cap_is_refused() {
        let ent = active(terms());
        let c = Counters {
            used: q("19.5"),
            ..Default::default()
        };
        let err = decide(&ent, &c, &consume("1"), today()).unwrap_err();
        assert_eq!(
            err,
            Refusal::EntitlementExhausted {
                entitlement_id: "ent_1".into(),
                remaining: q("0.5"),
                requested: q("1")
            }
        );
        let ok = decide(&ent, &c, &consume("0.5"), today()).unwrap();
        assert_eq!(ok.counters.used, q("20"));
        assert!(ok.events.iter().any(|e| e.kind == EventKind::Exhausted));
    }

    #[test]
    fn unrestricted_use_goes_into_overage_with_a_warning() {
        let mut t = terms();
        t.restrict = false;
        let ent = active(t);
        let c = Counters {
            used: q("19.5"),
            ..Default::default()
        };
        let ok = decide(&ent, &c, &consume("2"), today()).unwrap();
        assert_eq!(remaining(&ent, &ok.counters), Some(q("-1.5")));
        assert_eq!(ok.warnings.len(), 1);
        assert!(ok.events.iter().any(|e| e.kind == EventKind::Overage));
    }

    #[test]
    fn a_use_that_would_take_a_counter_past_its_bound_is_refused_not_wrapped() {
        let mut t = terms();
        t.restrict = false;
        let ent = active(t);
        let largest = Quantity::whole(crate::quantity::MAX_COUNTER_WHOLE);
        let c = Counters {
            used: largest - q("1"),
            ..Default::default()
        };
        let ok = decide(&ent, &c, &consume("1"), today()).unwrap();
        assert_eq!(ok.counters.used, largest);
        let err = decide(&ent, &ok.counters, &consume("0.001"), today()).unwrap_err();
        assert!(
            matches!(&err, Refusal::InvalidQuantity { field, .. } if field == "quantity"),
            "{err:?}"
        );
        let adjust = Change::Adjust {
            quantity: Quantity::whole(crate::quantity::MAX_WHOLE),
            channel: None,
            reference: None,
        };
        assert!(decide(&ent, &ok.counters, &adjust, today()).is_err());
    }

    #[test]
    fn hours_round_up_per_use() {
        let mut t = terms();
        t.rounding = Some(q("0.25"));
        let ent = active(t);
        let ok = decide(&ent, &Counters::default(), &consume("0.1"), today()).unwrap();
        assert_eq!(ok.entry.unwrap().quantity, q("0.25"));
    }

    #[test]
    fn cases_are_whole() {
        let mut t = terms();
        t.unit = Unit::Cases;
        let ent = active(t);
        let err = decide(&ent, &Counters::default(), &consume("1.5"), today()).unwrap_err();
        assert_eq!(err.code(), "invalid_quantity");
    }

    #[test]
    fn only_active_entitlements_are_used() {
        let mut ent = active(terms());
        let err = decide(&ent, &Counters::default(), &consume("1"), day(2027, 1, 1)).unwrap_err();
        assert_eq!(err.code(), "entitlement_not_active");
        ent.status = Status::Draft;
        assert!(decide(&ent, &Counters::default(), &consume("1"), today()).is_err());
    }

    #[test]
    fn channels_cap_their_share() {
        let mut t = terms();
        t.channels = vec![ChannelTerm {
            channel: "phone".into(),
            total: q("2"),
        }];
        let ent = active(t);
        let use_on = |ch: &str, n: &str| Change::Consume {
            quantity: q(n),
            channel: Some(ch.into()),
            reason: Reason::Usage,
            reference: None,
        };
        let a = decide(&ent, &Counters::default(), &use_on("phone", "2"), today()).unwrap();
        assert_eq!(
            decide(&ent, &a.counters, &use_on("phone", "1"), today())
                .unwrap_err()
                .code(),
            "channel_exhausted"
        );
        assert_eq!(
            decide(&ent, &a.counters, &use_on("fax", "1"), today())
                .unwrap_err()
                .code(),
            "unknown_channel"
        );
        assert_eq!(
            decide(&ent, &a.counters, &consume("1"), today())
                .unwrap()
                .counters
                .used,
            q("3")
        );
    }

    #[test]
    fn holds_count_against_remaining_and_commit_settles_them() {
        let ent = active(terms());
        let hold = Change::Hold {
            quantity: q("15"),
            channel: None,
        };
        let held = decide(&ent, &Counters::default(), &hold, today()).unwrap();
        assert_eq!(
            decide(&ent, &held.counters, &consume("6"), today())
                .unwrap_err()
                .code(),
            "entitlement_exhausted"
        );
        let commit = Change::CommitHold {
            held: q("15"),
            actual: q("18"),
            channel: None,
            reference: None,
        };
        let done = decide(&ent, &held.counters, &commit, today()).unwrap();
        assert_eq!((done.counters.used, done.counters.held), (q("18"), q("0")));
        let too_much = Change::CommitHold {
            held: q("15"),
            actual: q("21"),
            channel: None,
            reference: None,
        };
        assert!(decide(&ent, &held.counters, &too_much, today()).is_err());
    }

    #[test]
    fn give_back_never_goes_below_zero() {
        let ent = active(terms());
        let c = Counters {
            used: q("1"),
            ..Default::default()
        };
        let back = Change::GiveBack {
            quantity: q("3"),
            channel: None,
            reason: Reason::CaseCancelled,
            reference: None,
        };
        let ok = decide(&ent, &c, &back, today()).unwrap();
        assert_eq!(ok.entry.unwrap().quantity, q("-1"));
        assert_eq!(ok.counters.used, Quantity::ZERO);
    }

    #[test]
    fn thresholds_fire_once_when_crossed() {
        let mut t = terms();
        t.unit = Unit::Cases;
        t.total = Some(q("10"));
        t.alert_thresholds = vec![
            AlertThreshold::PercentUsed(80),
            AlertThreshold::Remaining { remaining: q("1") },
        ];
        let ent = active(t);
        let c7 = Counters {
            used: q("7"),
            ..Default::default()
        };
        let a = decide(&ent, &c7, &consume("1"), today()).unwrap();
        assert_eq!(
            a.events
                .iter()
                .filter(|e| e.kind == EventKind::ThresholdCrossed)
                .count(),
            1
        );
        let b = decide(&ent, &a.counters, &consume("1"), today()).unwrap();
        assert_eq!(
            b.events
                .iter()
                .filter(|e| e.kind == EventKind::ThresholdCrossed)
                .count(),
            1
        );
        let c = decide(&ent, &b.counters, &consume("1"), today()).unwrap();
        let kinds: Vec<EventKind> = c.events.iter().map(|e| e.kind).collect();
        assert_eq!(kinds, vec![EventKind::Exhausted]);
    }

    #[test]
    fn adjustments_are_signed_and_uncapped() {
        let ent = active(terms());
        let c = Counters {
            used: q("20"),
            ..Default::default()
        };
        let up = Change::Adjust {
            quantity: q("3"),
            channel: None,
            reference: None,
        };
        assert_eq!(
            decide(&ent, &c, &up, today()).unwrap().counters.used,
            q("23")
        );
        let down = Change::Adjust {
            quantity: q("-21"),
            channel: None,
            reference: None,
        };
        assert_eq!(
            decide(&ent, &c, &down, today()).unwrap_err().code(),
            "invalid_quantity"
        );
    }
}
