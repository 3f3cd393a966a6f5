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
use crate::schedule::ClosedPeriod;

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
    /// Historic usage imported with overage allowed that went past the cap
    /// of a restricted entitlement (or channel): recorded, and flagged so.
    /// As a `Consume` reason it asks for exactly that: a use within the cap
    /// is recorded as `Usage`, one past it as `ImportedOverage`.
    ImportedOverage,
}

impl Reason {
    pub const ALL: [Reason; 13] = [
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
        Reason::ImportedOverage,
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
            Reason::ImportedOverage => "imported_overage",
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
            Refusal::EntitlementNotActive { status, .. } if status == "suspended" => {
                "entitlement_suspended"
            }
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

/// The reason a use is recorded with, given whether it fits: a use past
/// the cap is refused, unless it is historic usage imported with overage
/// allowed, which is recorded as `ImportedOverage`; such a use within the
/// cap is plain `Usage`.
fn past_cap(fits: Result<(), Refusal>, reason: Reason) -> Result<Reason, Refusal> {
    match (fits, reason) {
        (Ok(()), Reason::ImportedOverage) => Ok(Reason::Usage),
        (Ok(()), reason) => Ok(reason),
        (Err(_), Reason::ImportedOverage) => Ok(Reason::ImportedOverage),
        (Err(refusal), _) => Err(refusal),
    }
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
            let reason = past_cap(fits(ent, &before, channel, q), *reason)?;
            add_used(&mut after, channel, q);
            Some(entry(channel, q, reason, reference))
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
            // The channel's share can no more go below zero than the whole.
            if let Some(ch) = channel {
                let ch_used = before.channels.get(ch).map(|c| c.used).unwrap_or_default();
                if ch_used + *quantity < Quantity::ZERO {
                    return Err(Refusal::InvalidQuantity {
                        field: "quantity".into(),
                        message: format!(
                            "would take used below zero on channel {ch} (its used is {ch_used})"
                        ),
                    });
                }
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
    let closed = match reset {
        Some(_) => crate::schedule::close_periods(ent, stored, window.index).1,
        None => Vec::new(),
    };
    let (events, warnings) = consequences(ent, &before, &after, &closed);
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
    closed: &[ClosedPeriod],
) -> (Vec<EventDraft>, Vec<String>) {
    // The scheduler emits these at the boundary; a use that comes first
    // rolls the counters and emits them itself, the same way.
    let mut events: Vec<EventDraft> = closed
        .iter()
        .map(|period| EventDraft::new(EventKind::PeriodReset, &ent.id, period.payload()))
        .collect();
    let mut warnings = Vec::new();
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
    use std::collections::BTreeMap;

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
        let c = used("19.5");
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

    fn historic(n: &str, channel: Option<&str>) -> Change {
        Change::Consume {
            quantity: q(n),
            channel: channel.map(str::to_string),
            reason: Reason::ImportedOverage,
            reference: None,
        }
    }

    #[test]
    fn imported_overage_is_recorded_past_the_cap_and_flagged_only_there() {
        let ent = active(terms());
        let c = used("19.5");
        // Within the cap: plain usage.
        let within = decide(&ent, &c, &historic("0.5", None), today()).unwrap();
        assert_eq!(within.entry.unwrap().reason, Reason::Usage);
        assert_eq!(within.counters.used, q("20"));
        // Past the cap: recorded all the same, and flagged.
        let past = decide(&ent, &c, &historic("3", None), today()).unwrap();
        assert_eq!(past.entry.unwrap().reason, Reason::ImportedOverage);
        assert_eq!(past.counters.used, q("22.5"));
        // Other reasons still hold the cap.
        assert!(decide(&ent, &c, &consume("3"), today()).is_err());
        // A channel's cap too.
        let mut t = terms();
        t.channels = vec![crate::entitlement::ChannelTerm {
            channel: "phone".into(),
            total: q("1"),
        }];
        let ent = active(t);
        let over = decide(
            &ent,
            &Counters::default(),
            &historic("2", Some("phone")),
            today(),
        )
        .unwrap();
        assert_eq!(over.entry.unwrap().reason, Reason::ImportedOverage);
        assert_eq!(
            Reason::parse("imported_overage"),
            Some(Reason::ImportedOverage)
        );
    }

    #[test]
    fn unrestricted_use_goes_into_overage_with_a_warning() {
        let mut t = terms();
        t.restrict = false;
        let ent = active(t);
        let c = used("19.5");
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
        ent.status = Status::Suspended;
        let err = decide(&ent, &Counters::default(), &consume("1"), today()).unwrap_err();
        assert_eq!(err.code(), "entitlement_suspended");
        assert_eq!(
            err.to_string(),
            format!("entitlement {} is suspended, not active", ent.id)
        );
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
        let c = used("1");
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
        let c7 = used("7");
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
        let c = used("20");
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

    fn on(channel: &str, change: Change) -> Change {
        let ch = Some(channel.to_string());
        match change {
            Change::Consume {
                quantity,
                reason,
                reference,
                ..
            } => Change::Consume {
                quantity,
                channel: ch,
                reason,
                reference,
            },
            Change::GiveBack {
                quantity,
                reason,
                reference,
                ..
            } => Change::GiveBack {
                quantity,
                channel: ch,
                reason,
                reference,
            },
            Change::Hold { quantity, .. } => Change::Hold {
                quantity,
                channel: ch,
            },
            Change::Release { quantity, .. } => Change::Release {
                quantity,
                channel: ch,
            },
            Change::CommitHold {
                held,
                actual,
                reference,
                ..
            } => Change::CommitHold {
                held,
                actual,
                channel: ch,
                reference,
            },
            Change::Adjust {
                quantity,
                reference,
                ..
            } => Change::Adjust {
                quantity,
                channel: ch,
                reference,
            },
        }
    }

    fn hold(n: &str) -> Change {
        Change::Hold {
            quantity: q(n),
            channel: None,
        }
    }

    fn release(n: &str) -> Change {
        Change::Release {
            quantity: q(n),
            channel: None,
        }
    }

    fn give_back(n: &str) -> Change {
        Change::GiveBack {
            quantity: q(n),
            channel: None,
            reason: Reason::CaseCancelled,
            reference: None,
        }
    }

    fn commit(held: &str, actual: &str) -> Change {
        Change::CommitHold {
            held: q(held),
            actual: q(actual),
            channel: None,
            reference: None,
        }
    }

    fn adjust(n: &str) -> Change {
        Change::Adjust {
            quantity: q(n),
            channel: None,
            reference: None,
        }
    }

    fn used(n: &str) -> Counters {
        Counters {
            used: q(n),
            ..Default::default()
        }
    }

    fn phone(total: &str) -> Entitlement {
        let mut t = terms();
        t.channels = vec![ChannelTerm {
            channel: "phone".into(),
            total: q(total),
        }];
        active(t)
    }

    fn channel(used: &str, held: &str) -> crate::balance::ChannelCounter {
        crate::balance::ChannelCounter {
            used: q(used),
            held: q(held),
        }
    }

    /// Counters with `used` overall, of which the phone channel's are `phone`.
    fn with_phone(used: &str, phone: crate::balance::ChannelCounter) -> Counters {
        Counters {
            used: q(used),
            channels: BTreeMap::from([("phone".to_string(), phone)]),
            ..Default::default()
        }
    }

    fn kinds(a: &Applied) -> Vec<EventKind> {
        a.events.iter().map(|e| e.kind).collect()
    }

    fn invalid(field: &str, message: &str) -> Refusal {
        Refusal::InvalidQuantity {
            field: field.into(),
            message: message.into(),
        }
    }

    #[test]
    fn zero_and_negative_quantities_are_refused() {
        let ent = active(terms());
        let c = used("5");
        let positive = invalid("quantity", "must be greater than zero");
        for n in ["0", "-1", "-0.001"] {
            assert_eq!(
                decide(&ent, &c, &consume(n), today()),
                Err(positive.clone())
            );
            assert_eq!(decide(&ent, &c, &hold(n), today()), Err(positive.clone()));
            assert_eq!(
                decide(&ent, &c, &give_back(n), today()),
                Err(positive.clone())
            );
        }
        assert_eq!(
            decide(&ent, &c, &adjust("0"), today()),
            Err(invalid("quantity", "must not be zero"))
        );
        assert_eq!(
            decide(&ent, &c, &commit("1", "-1"), today()),
            Err(invalid("quantity", "must not be negative"))
        );
        let smallest = decide(&ent, &c, &consume("0.001"), today()).unwrap();
        assert_eq!(smallest.counters.used, q("5.001"));
    }

    #[test]
    fn exactly_the_cap_is_accepted_and_one_unit_over_refused() {
        let mut t = terms();
        t.unit = Unit::Cases;
        t.total = Some(q("10"));
        let ent = active(t);
        let at_cap = decide(&ent, &used("9"), &consume("1"), today()).unwrap();
        assert_eq!(at_cap.counters.used, q("10"));
        assert_eq!(remaining(&ent, &at_cap.counters), Some(Quantity::ZERO));
        assert_eq!(
            decide(&ent, &used("9"), &consume("2"), today()),
            Err(Refusal::EntitlementExhausted {
                entitlement_id: "ent_1".into(),
                remaining: q("1"),
                requested: q("2"),
            })
        );
        assert_eq!(
            decide(&ent, &used("10"), &consume("1"), today()),
            Err(Refusal::EntitlementExhausted {
                entitlement_id: "ent_1".into(),
                remaining: Quantity::ZERO,
                requested: q("1"),
            })
        );
    }

    #[test]
    fn held_and_used_together_count_against_the_cap() {
        let ent = active(terms());
        let c = Counters {
            used: q("12"),
            held: q("5"),
            ..Default::default()
        };
        let ok = decide(&ent, &c, &consume("3"), today()).unwrap();
        assert_eq!((ok.counters.used, ok.counters.held), (q("15"), q("5")));
        assert_eq!(
            decide(&ent, &c, &consume("3.001"), today()),
            Err(Refusal::EntitlementExhausted {
                entitlement_id: "ent_1".into(),
                remaining: q("3"),
                requested: q("3.001"),
            })
        );
        let held = decide(&ent, &c, &hold("3"), today()).unwrap();
        assert_eq!((held.counters.used, held.counters.held), (q("12"), q("8")));
        assert_eq!(held.entry, None);
        assert_eq!(
            decide(&ent, &c, &hold("4"), today()).unwrap_err().code(),
            "entitlement_exhausted"
        );
    }

    #[test]
    fn carried_over_allotment_raises_the_cap() {
        let ent = active(terms());
        let c = Counters {
            used: q("20"),
            carried: q("2"),
            ..Default::default()
        };
        assert_eq!(
            decide(&ent, &c, &consume("2"), today())
                .unwrap()
                .counters
                .used,
            q("22")
        );
        assert_eq!(
            decide(&ent, &c, &consume("2.5"), today())
                .unwrap_err()
                .code(),
            "entitlement_exhausted"
        );
    }

    #[test]
    fn a_channel_is_capped_by_its_total_and_by_the_overall_total() {
        let ent = phone("5");
        let c = Counters {
            held: q("1"),
            ..with_phone("16", channel("3", "1"))
        };
        // The channel has 1 left: exactly 1 fits, 1.5 does not.
        let ok = decide(&ent, &c, &on("phone", consume("1")), today()).unwrap();
        assert_eq!(ok.counters.used, q("17"));
        assert_eq!(ok.counters.channels["phone"], channel("4", "1"));
        assert_eq!(
            decide(&ent, &c, &on("phone", consume("1.5")), today()),
            Err(Refusal::ChannelExhausted {
                entitlement_id: "ent_1".into(),
                channel: "phone".into(),
                remaining: q("1"),
                requested: q("1.5"),
            })
        );
        // Overall 3 left and channel 1 left: the overall total is checked first.
        let tight = Counters {
            used: q("19"),
            ..c.clone()
        };
        assert_eq!(
            decide(&ent, &tight, &on("phone", consume("2")), today()),
            Err(Refusal::EntitlementExhausted {
                entitlement_id: "ent_1".into(),
                remaining: Quantity::ZERO,
                requested: q("2"),
            })
        );
        // A channel with room cannot take the overall total past its cap.
        let roomy = phone("50");
        assert_eq!(
            decide(&roomy, &c, &on("phone", consume("4")), today()),
            Err(Refusal::EntitlementExhausted {
                entitlement_id: "ent_1".into(),
                remaining: q("3"),
                requested: q("4"),
            })
        );
    }

    #[test]
    fn channels_are_free_when_the_terms_name_none() {
        let ent = active(terms());
        let ok = decide(
            &ent,
            &Counters::default(),
            &on("fax", consume("2")),
            today(),
        )
        .unwrap();
        assert_eq!(ok.counters.channels["fax"], channel("2", "0"));
        assert_eq!(ok.entry.unwrap().channel.as_deref(), Some("fax"));
        let ent = phone("5");
        assert_eq!(
            decide(&ent, &Counters::default(), &on("fax", hold("1")), today()),
            Err(Refusal::UnknownChannel {
                entitlement_id: "ent_1".into(),
                channel: "fax".into(),
            })
        );
    }

    #[test]
    fn holds_and_releases_move_held_on_the_channel_too() {
        let ent = phone("5");
        let c = with_phone("2", channel("2", "0"));
        let held = decide(&ent, &c, &on("phone", hold("3")), today()).unwrap();
        assert_eq!((held.counters.used, held.counters.held), (q("2"), q("3")));
        assert_eq!(held.counters.channels["phone"], channel("2", "3"));
        assert_eq!(held.entry, None);
        let released = decide(&ent, &held.counters, &on("phone", release("1")), today()).unwrap();
        assert_eq!(released.counters.held, q("2"));
        assert_eq!(released.counters.channels["phone"], channel("2", "2"));
        let all = decide(
            &ent,
            &released.counters,
            &on("phone", release("2")),
            today(),
        )
        .unwrap();
        assert_eq!(all.counters.held, Quantity::ZERO);
        assert_eq!(all.counters.channels["phone"], channel("2", "0"));
        // Releasing more than is held releases what is held, never below zero.
        let over = decide(&ent, &held.counters, &release("10"), today()).unwrap();
        assert_eq!(over.counters.held, Quantity::ZERO);
    }

    #[test]
    fn a_channel_with_nothing_used_or_held_is_dropped() {
        let ent = phone("5");
        let held = decide(&ent, &Counters::default(), &on("phone", hold("2")), today()).unwrap();
        assert_eq!(held.counters.channels["phone"], channel("0", "2"));
        let released = decide(&ent, &held.counters, &on("phone", release("2")), today()).unwrap();
        assert_eq!(released.counters, Counters::default());
    }

    #[test]
    fn committing_a_hold_uses_the_actual_amount() {
        let ent = phone("5");
        let held = decide(&ent, &Counters::default(), &on("phone", hold("4")), today()).unwrap();
        let done = decide(
            &ent,
            &held.counters,
            &on("phone", commit("4", "5")),
            today(),
        )
        .unwrap();
        assert_eq!((done.counters.used, done.counters.held), (q("5"), q("0")));
        assert_eq!(done.counters.channels["phone"], channel("5", "0"));
        assert_eq!(
            done.entry,
            Some(LedgerDraft {
                entitlement_id: "ent_1".into(),
                period_index: 0,
                channel: Some("phone".into()),
                quantity: q("5"),
                reason: Reason::ReservationCommitted,
                reference: None,
            })
        );
        assert_eq!(
            decide(
                &ent,
                &held.counters,
                &on("phone", commit("4", "5.5")),
                today()
            ),
            Err(Refusal::ChannelExhausted {
                entitlement_id: "ent_1".into(),
                channel: "phone".into(),
                remaining: q("5"),
                requested: q("5.5"),
            })
        );
        let nothing = decide(
            &ent,
            &held.counters,
            &on("phone", commit("4", "0")),
            today(),
        )
        .unwrap();
        assert_eq!(nothing.entry, None);
        assert_eq!(nothing.counters, Counters::default());
    }

    #[test]
    fn a_zero_commit_is_accepted_even_in_overage() {
        let ent = active(terms());
        let c = Counters {
            used: q("25"),
            held: q("1"),
            ..Default::default()
        };
        let done = decide(&ent, &c, &commit("1", "0"), today()).unwrap();
        assert_eq!((done.counters.used, done.counters.held), (q("25"), q("0")));
        assert_eq!(done.entry, None);
    }

    #[test]
    fn giving_back_is_limited_by_the_period_and_channel_usage() {
        let ent = phone("5");
        let c = with_phone("6", channel("2", "0"));
        let ok = decide(&ent, &c, &on("phone", give_back("3")), today()).unwrap();
        assert_eq!(ok.counters.used, q("4"));
        assert_eq!(ok.counters.channels["phone"], channel("0", "0"));
        assert_eq!(ok.entry.unwrap().quantity, q("-2"));
        let part = decide(&ent, &c, &give_back("2.5"), today()).unwrap();
        assert_eq!(part.counters.used, q("3.5"));
        assert_eq!(part.entry.unwrap().quantity, q("-2.5"));
        let nothing = decide(&ent, &Counters::default(), &give_back("1"), today()).unwrap();
        assert_eq!(nothing.entry, None);
        assert_eq!(nothing.counters, Counters::default());
    }

    #[test]
    fn an_adjustment_never_takes_a_channel_below_zero() {
        let ent = phone("10");
        let c = Counters {
            used: q("5"),
            channels: [("phone".to_string(), channel("1", "0"))].into(),
            ..Default::default()
        };
        let on_phone = |n: &str| Change::Adjust {
            quantity: q(n),
            channel: Some("phone".into()),
            reference: None,
        };
        let ok = decide(&ent, &c, &on_phone("-1"), today()).unwrap();
        assert_eq!(ok.counters.used, q("4"));
        assert_eq!(ok.counters.channels["phone"].used, Quantity::ZERO);
        assert_eq!(
            decide(&ent, &c, &on_phone("-1.001"), today()),
            Err(invalid(
                "quantity",
                "would take used below zero on channel phone (its used is 1)"
            ))
        );
    }

    #[test]
    fn an_adjustment_may_bring_used_to_exactly_zero() {
        let ent = active(terms());
        let ok = decide(&ent, &used("20"), &adjust("-20"), today()).unwrap();
        assert_eq!(ok.counters.used, Quantity::ZERO);
        assert_eq!(
            ok.entry,
            Some(LedgerDraft {
                entitlement_id: "ent_1".into(),
                period_index: 0,
                channel: None,
                quantity: q("-20"),
                reason: Reason::Adjustment,
                reference: None,
            })
        );
        assert_eq!(
            decide(&ent, &used("20"), &adjust("-20.001"), today()),
            Err(invalid(
                "quantity",
                "would take used below zero (used is 20)"
            ))
        );
        let mut t = terms();
        t.unit = Unit::Cases;
        assert_eq!(
            decide(&active(t), &used("2"), &adjust("-0.5"), today()),
            Err(invalid("quantity", "must be a whole number for cases"))
        );
    }

    #[test]
    fn rounding_applies_to_hours_only() {
        let mut t = terms();
        t.rounding = Some(q("1"));
        t.unit = Unit::Units;
        let ok = decide(&active(t), &Counters::default(), &consume("0.25"), today()).unwrap();
        assert_eq!(ok.entry.unwrap().quantity, q("0.25"));
    }

    #[test]
    fn entries_name_the_current_period() {
        let mut t = terms();
        t.period = crate::entitlement::Period::Month;
        let ent = active(t);
        let ok = decide(&ent, &used("20"), &consume("1"), day(2026, 3, 1)).unwrap();
        assert_eq!(ok.entry.as_ref().unwrap().period_index, 2);
        assert_eq!(ok.counters.used, q("1"));
        assert_eq!(ok.reset.as_ref().map(|r| r.to_index), Some(2));
        // January and February closed: one event each, January's unused 0.
        assert_eq!(
            kinds(&ok),
            vec![EventKind::PeriodReset, EventKind::PeriodReset]
        );
        assert_eq!(ok.events[0].data["used"], json!(20));
        assert_eq!(ok.events[1].data["period"]["start"], json!("2026-02-01"));
    }

    #[test]
    fn unrestricted_use_at_exactly_zero_is_exhausted_not_overage() {
        let mut t = terms();
        t.restrict = false;
        let ent = active(t);
        let zero = decide(&ent, &used("19"), &consume("1"), today()).unwrap();
        assert_eq!(kinds(&zero), vec![EventKind::Exhausted]);
        assert!(zero.warnings.is_empty());
        let over = decide(&ent, &used("20"), &consume("1.5"), today()).unwrap();
        assert_eq!(kinds(&over), vec![EventKind::Overage]);
        assert_eq!(over.events[0].data, json!({ "overage": q("1.5") }));
        assert_eq!(
            over.warnings,
            vec!["entitlement ent_1 is in overage by 1.5 hours".to_string()]
        );
        let deeper = decide(&ent, &used("21.5"), &consume("1"), today()).unwrap();
        assert_eq!(kinds(&deeper), vec![EventKind::Overage]);
    }

    #[test]
    fn giving_back_raises_no_alert() {
        let mut t = terms();
        t.restrict = false;
        t.alert_thresholds = vec![
            AlertThreshold::PercentUsed(50),
            AlertThreshold::Remaining { remaining: q("5") },
        ];
        let ent = active(t);
        let back = decide(&ent, &used("25"), &give_back("1"), today()).unwrap();
        assert_eq!(back.counters.used, q("24"));
        assert_eq!(back.events, vec![]);
        assert!(back.warnings.is_empty());
        let same = decide(
            &ent,
            &Counters {
                held: q("2"),
                ..used("25")
            },
            &commit("2", "2"),
            today(),
        )
        .unwrap();
        assert_eq!(same.events, vec![]);
        assert!(same.warnings.is_empty());
    }

    fn with_thresholds(thresholds: Vec<AlertThreshold>) -> Entitlement {
        let mut t = terms();
        t.total = Some(q("10"));
        t.restrict = false;
        t.alert_thresholds = thresholds;
        active(t)
    }

    fn thresholds_crossed(a: &Applied) -> Vec<serde_json::Value> {
        a.events
            .iter()
            .filter(|e| e.kind == EventKind::ThresholdCrossed)
            .map(|e| e.data["threshold"].clone())
            .collect()
    }

    #[test]
    fn a_percent_threshold_fires_when_hit_exactly_and_not_again() {
        let ent = with_thresholds(vec![AlertThreshold::PercentUsed(50)]);
        let hit = decide(&ent, &used("4"), &consume("1"), today()).unwrap();
        assert_eq!(thresholds_crossed(&hit), vec![json!(50)]);
        assert_eq!(
            hit.events[0].data,
            json!({ "threshold": 50, "used": 5, "remaining": 5 })
        );
        let short = decide(&ent, &used("3"), &consume("1.999"), today()).unwrap();
        assert_eq!(thresholds_crossed(&short), Vec::<serde_json::Value>::new());
        let past = decide(&ent, &used("5"), &consume("1"), today()).unwrap();
        assert_eq!(thresholds_crossed(&past), Vec::<serde_json::Value>::new());
        let jump = decide(&ent, &used("1"), &consume("8"), today()).unwrap();
        assert_eq!(thresholds_crossed(&jump), vec![json!(50)]);
    }

    #[test]
    fn a_percent_threshold_counts_held_and_carried() {
        let ent = with_thresholds(vec![AlertThreshold::PercentUsed(50)]);
        // 3 used + 1 held + 1 more = 5 of 10: crossed.
        let c = Counters {
            used: q("3"),
            held: q("1"),
            ..Default::default()
        };
        let held = decide(&ent, &c, &consume("1"), today()).unwrap();
        assert_eq!(thresholds_crossed(&held), vec![json!(50)]);
        // With 10 carried in, 50% is 10 of 20: 9 → 10 crosses, 4 → 5 does not.
        let carried = |n: &str| Counters {
            used: q(n),
            carried: q("10"),
            ..Default::default()
        };
        let hit = decide(&ent, &carried("9"), &consume("1"), today()).unwrap();
        assert_eq!(thresholds_crossed(&hit), vec![json!(50)]);
        let early = decide(&ent, &carried("4"), &consume("1"), today()).unwrap();
        assert_eq!(thresholds_crossed(&early), Vec::<serde_json::Value>::new());
    }

    #[test]
    fn a_remaining_threshold_fires_when_hit_exactly_and_not_again() {
        let ent = with_thresholds(vec![AlertThreshold::Remaining { remaining: q("2") }]);
        let hit = decide(&ent, &used("7"), &consume("1"), today()).unwrap();
        assert_eq!(thresholds_crossed(&hit), vec![json!({ "remaining": 2 })]);
        let short = decide(&ent, &used("7"), &consume("0.999"), today()).unwrap();
        assert_eq!(thresholds_crossed(&short), Vec::<serde_json::Value>::new());
        let past = decide(&ent, &used("8"), &consume("1"), today()).unwrap();
        assert_eq!(thresholds_crossed(&past), Vec::<serde_json::Value>::new());
    }

    #[test]
    fn reasons_and_refusal_codes_round_trip() {
        for r in Reason::ALL {
            assert_eq!(Reason::parse(r.as_str()), Some(r));
            assert_eq!(serde_json::to_value(r).unwrap(), json!(r.as_str()));
        }
        assert_eq!(Reason::parse("refund"), None);
        let refusals = [
            Refusal::EntitlementExhausted {
                entitlement_id: "e".into(),
                remaining: q("1"),
                requested: q("2"),
            },
            Refusal::ChannelExhausted {
                entitlement_id: "e".into(),
                channel: "c".into(),
                remaining: q("1"),
                requested: q("2"),
            },
            Refusal::EntitlementNotActive {
                entitlement_id: "e".into(),
                status: "draft".into(),
            },
            Refusal::UnknownChannel {
                entitlement_id: "e".into(),
                channel: "c".into(),
            },
            Refusal::EntitlementNotFound {
                entitlement_id: "e".into(),
            },
            invalid("quantity", "m"),
            Refusal::DuplicateReference {
                entitlement_id: "e".into(),
                reference: "r".into(),
            },
        ];
        let codes: Vec<&str> = refusals.iter().map(Refusal::code).collect();
        assert_eq!(
            codes,
            vec![
                "entitlement_exhausted",
                "channel_exhausted",
                "entitlement_not_active",
                "unknown_channel",
                "not_found",
                "invalid_quantity",
                "duplicate_reference"
            ]
        );
    }

    proptest::proptest! {
        /// For any usage before, any use and any thresholds, each alert fires
        /// exactly when its line is crossed on the way up: percent `p` when
        /// used goes from below p% of the total to at least p% (compared
        /// exactly, in whole units), the remaining floor `r` when remaining
        /// goes from above r to r or less, exhaustion at zero, overage below.
        #[test]
        fn alerts_fire_exactly_when_their_line_is_crossed(
            total in 1i64..60,
            before in 0i64..70,
            n in 1i64..30,
            p in 1u32..150,
            r in 0i64..60,
        ) {
            let ent = {
                let mut t = terms();
                t.unit = Unit::Units;
                t.total = Some(Quantity::whole(total));
                t.restrict = false;
                t.alert_thresholds = vec![
                    AlertThreshold::PercentUsed(p),
                    AlertThreshold::Remaining { remaining: Quantity::whole(r) },
                ];
                active(t)
            };
            let c = Counters { used: Quantity::whole(before), ..Default::default() };
            let change = Change::Consume {
                quantity: Quantity::whole(n),
                channel: None,
                reason: Reason::Usage,
                reference: None,
            };
            let applied = decide(&ent, &c, &change, today()).unwrap();
            let after = before + n;
            let (rem_before, rem_after) = (total - before, total - after);
            let mut expected = Vec::new();
            if before * 100 < i64::from(p) * total && after * 100 >= i64::from(p) * total {
                expected.push(json!(p));
            }
            if rem_before > r && rem_after <= r {
                expected.push(json!({ "remaining": r }));
            }
            proptest::prop_assert_eq!(thresholds_crossed(&applied), expected);
            let has = |k: EventKind| applied.events.iter().any(|e| e.kind == k);
            proptest::prop_assert_eq!(has(EventKind::Exhausted), rem_before > 0 && rem_after <= 0);
            proptest::prop_assert_eq!(has(EventKind::Overage), rem_after < 0);
            proptest::prop_assert_eq!(applied.warnings.len(), usize::from(rem_after < 0));
        }
    }
}
