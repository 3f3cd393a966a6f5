//! Entitlement lifecycle: draft → waiting → active → expired, cancel, renew.

use chrono::NaiveDate;
use serde::Serialize;

use crate::entitlement::{Status, Terms};
use crate::events::EventKind;

/// The state a client reads: for an activated entitlement it is whatever
/// its dates imply today, even before a background job has stored it.
pub fn effective_status(
    stored: Status,
    start: NaiveDate,
    end: NaiveDate,
    today: NaiveDate,
) -> Status {
    match stored {
        Status::Draft | Status::Cancelled | Status::Suspended => stored,
        Status::Waiting | Status::Active | Status::Expired => by_dates(start, end, today),
    }
}

fn by_dates(start: NaiveDate, end: NaiveDate, today: NaiveDate) -> Status {
    if today < start {
        Status::Waiting
    } else if today > end {
        Status::Expired
    } else {
        Status::Active
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Activate,
    Deactivate,
    Cancel,
    Renew,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Activate => "activate",
            Action::Deactivate => "deactivate",
            Action::Cancel => "cancel",
            Action::Renew => "renew",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot {} an entitlement that is {}", action.as_str(), from.as_str())]
pub struct NotAllowed {
    pub action: Action,
    pub from: Status,
}

/// The state an entitlement moves to; `Renew` leaves the old one as it is.
pub fn transition(
    action: Action,
    current: Status,
    start: NaiveDate,
    end: NaiveDate,
    today: NaiveDate,
) -> Result<Status, NotAllowed> {
    let refuse = Err(NotAllowed {
        action,
        from: current,
    });
    match (action, current) {
        (Action::Activate, Status::Draft) => Ok(by_dates(start, end, today)),
        (Action::Deactivate, Status::Waiting | Status::Active) => Ok(Status::Draft),
        (Action::Cancel, Status::Waiting | Status::Active | Status::Suspended) => {
            Ok(Status::Cancelled)
        }
        (Action::Renew, Status::Expired | Status::Cancelled) => Ok(current),
        _ => refuse,
    }
}

/// Only drafts may be edited (except who is told about them:
/// `contact_fields_only`).
pub fn editable(current: Status) -> bool {
    current == Status::Draft
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EditRefused {
    #[error("only draft entitlements can be edited; this one is {}. Deactivate it first", .0.as_str())]
    NotDraft(Status),
    #[error("unit cannot change after creation")]
    UnitChanged,
    #[error("account cannot change after creation")]
    AccountChanged,
}

/// May `current` (in effective state `status`) take the terms `new`?
pub fn check_edit(current: &Terms, status: Status, new: &Terms) -> Result<(), EditRefused> {
    if !editable(status) && !contact_fields_only(current, new) {
        return Err(EditRefused::NotDraft(status));
    }
    if current.unit != new.unit {
        return Err(EditRefused::UnitChanged);
    }
    if current.account_id != new.account_id {
        return Err(EditRefused::AccountChanged);
    }
    Ok(())
}

/// Does `new` change only who is told about it (the owner's address)?
/// Alerts must reach the right person whatever the entitlement's state, so
/// that alone may change at any time.
fn contact_fields_only(current: &Terms, new: &Terms) -> bool {
    let mut only_contact = new.clone();
    only_contact.owner_email = current.owner_email.clone();
    new.owner_email != current.owner_email && only_contact == *current
}

/// The event a transition emits, by the state it reached.
pub fn event_for(action: Action, to: Status) -> EventKind {
    match (action, to) {
        (Action::Renew, _) => EventKind::Renewed,
        (_, Status::Draft) => EventKind::Deactivated,
        (_, Status::Waiting) => EventKind::Waiting,
        (_, Status::Active) => EventKind::Activated,
        (_, Status::Expired) => EventKind::Expired,
        (_, Status::Cancelled) => EventKind::Cancelled,
        (_, Status::Suspended) => EventKind::Suspended,
    }
}

/// May an entitlement in effective state `current` become its account's
/// default? Any that is not closed (expired or cancelled).
pub fn may_be_default(current: Status) -> bool {
    !matches!(current, Status::Expired | Status::Cancelled)
}

/// The state a suspension (its contract's) moves an entitlement in
/// effective state `current` to: only a waiting or active one pauses.
pub fn suspended(current: Status) -> Option<Status> {
    matches!(current, Status::Waiting | Status::Active).then_some(Status::Suspended)
}

/// The state a resumption moves an entitlement in effective state
/// `current` to: a suspended one goes back to what its dates say today.
pub fn resumed(
    current: Status,
    start: NaiveDate,
    end: NaiveDate,
    today: NaiveDate,
) -> Option<Status> {
    (current == Status::Suspended).then(|| by_dates(start, end, today))
}

/// The terms of a renewal: same duration, starting today, everything else copied.
pub fn renewed_terms(old: &Terms, today: NaiveDate) -> Terms {
    shifted_renewal(old, today - old.start_date)
}

/// A renewal's terms: the old ones with both dates moved by `shift`. A
/// renewal becomes the account's default only if a manager says so again.
pub fn shifted_renewal(old: &Terms, shift: chrono::Duration) -> Terms {
    let mut terms = old.clone();
    terms.start_date = old.start_date + shift;
    terms.end_date = old.end_date + shift;
    terms.is_default = false;
    terms
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, m, day).unwrap()
    }

    #[test]
    fn activation_follows_the_dates() {
        let (s, e) = (d(3, 1), d(3, 31));
        assert_eq!(
            transition(Action::Activate, Status::Draft, s, e, d(2, 1)),
            Ok(Status::Waiting)
        );
        assert_eq!(
            transition(Action::Activate, Status::Draft, s, e, d(3, 1)),
            Ok(Status::Active)
        );
        assert_eq!(
            transition(Action::Activate, Status::Draft, s, e, d(3, 31)),
            Ok(Status::Active)
        );
        assert_eq!(
            transition(Action::Activate, Status::Draft, s, e, d(4, 1)),
            Ok(Status::Expired)
        );
    }

    #[test]
    fn stored_state_yields_to_the_dates() {
        let (s, e) = (d(3, 1), d(3, 31));
        assert_eq!(
            effective_status(Status::Waiting, s, e, d(3, 5)),
            Status::Active
        );
        assert_eq!(
            effective_status(Status::Active, s, e, d(4, 1)),
            Status::Expired
        );
        assert_eq!(
            effective_status(Status::Draft, s, e, d(3, 5)),
            Status::Draft
        );
        assert_eq!(
            effective_status(Status::Cancelled, s, e, d(3, 5)),
            Status::Cancelled
        );
    }

    #[test]
    fn only_allowed_transitions() {
        let (s, e, t) = (d(3, 1), d(3, 31), d(3, 5));
        assert!(transition(Action::Cancel, Status::Draft, s, e, t).is_err());
        assert!(transition(Action::Cancel, Status::Expired, s, e, t).is_err());
        assert_eq!(
            transition(Action::Cancel, Status::Waiting, s, e, t),
            Ok(Status::Cancelled)
        );
        assert_eq!(
            transition(Action::Deactivate, Status::Active, s, e, t),
            Ok(Status::Draft)
        );
        assert!(transition(Action::Deactivate, Status::Cancelled, s, e, t).is_err());
        assert!(transition(Action::Renew, Status::Active, s, e, t).is_err());
        assert!(transition(Action::Activate, Status::Active, s, e, t).is_err());
        assert_eq!(
            transition(Action::Renew, Status::Expired, s, e, t),
            Ok(Status::Expired)
        );
    }

    #[test]
    fn edits_only_drafts_and_never_the_unit() {
        let t = crate::test_support::terms();
        let mut other = t.clone();
        other.name = "renamed".into();
        assert_eq!(check_edit(&t, Status::Draft, &other), Ok(()));
        assert_eq!(
            check_edit(&t, Status::Active, &other),
            Err(EditRefused::NotDraft(Status::Active))
        );
        other.unit = crate::entitlement::Unit::Cases;
        assert_eq!(
            check_edit(&t, Status::Draft, &other),
            Err(EditRefused::UnitChanged)
        );
    }

    #[test]
    fn renewal_keeps_the_duration() {
        let mut old = crate::test_support::terms();
        old.start_date = d(1, 1);
        old.end_date = d(3, 31);
        old.is_default = true;
        let new = renewed_terms(&old, d(6, 10));
        assert_eq!(new.start_date, d(6, 10));
        assert_eq!(new.end_date - new.start_date, old.end_date - old.start_date);
        assert!(!new.is_default);
        assert_eq!(new.name, old.name);
    }

    #[test]
    fn the_first_and_last_days_are_active() {
        let (s, e) = (d(3, 1), d(3, 31));
        let on = |day| effective_status(Status::Active, s, e, day);
        assert_eq!(on(d(2, 28)), Status::Waiting);
        assert_eq!(on(d(3, 1)), Status::Active);
        assert_eq!(on(d(3, 31)), Status::Active);
        assert_eq!(on(d(4, 1)), Status::Expired);
        assert_eq!(
            effective_status(Status::Expired, s, e, d(2, 1)),
            Status::Waiting
        );
    }

    #[test]
    fn every_transition_is_named_in_its_refusal() {
        let (s, e, t) = (d(3, 1), d(3, 31), d(3, 5));
        let names: Vec<String> = [
            (Action::Activate, Status::Cancelled),
            (Action::Deactivate, Status::Draft),
            (Action::Cancel, Status::Cancelled),
            (Action::Renew, Status::Waiting),
        ]
        .into_iter()
        .map(|(a, from)| transition(a, from, s, e, t).unwrap_err().to_string())
        .collect();
        assert_eq!(
            names,
            vec![
                "cannot activate an entitlement that is cancelled",
                "cannot deactivate an entitlement that is draft",
                "cannot cancel an entitlement that is cancelled",
                "cannot renew an entitlement that is waiting",
            ]
        );
        assert_eq!(
            transition(Action::Deactivate, Status::Waiting, s, e, t),
            Ok(Status::Draft)
        );
        assert_eq!(
            transition(Action::Cancel, Status::Active, s, e, t),
            Ok(Status::Cancelled)
        );
        assert_eq!(
            transition(Action::Renew, Status::Cancelled, s, e, t),
            Ok(Status::Cancelled)
        );
    }

    #[test]
    fn each_transition_emits_the_event_of_the_state_it_reached() {
        let events: Vec<EventKind> = [
            (Action::Activate, Status::Waiting),
            (Action::Activate, Status::Active),
            (Action::Activate, Status::Expired),
            (Action::Deactivate, Status::Draft),
            (Action::Cancel, Status::Cancelled),
            (Action::Renew, Status::Expired),
        ]
        .into_iter()
        .map(|(a, to)| event_for(a, to))
        .collect();
        assert_eq!(
            events,
            vec![
                EventKind::Waiting,
                EventKind::Activated,
                EventKind::Expired,
                EventKind::Deactivated,
                EventKind::Cancelled,
                EventKind::Renewed,
            ]
        );
    }

    #[test]
    fn who_is_told_may_change_in_any_state_the_terms_only_in_a_draft() {
        let t = crate::test_support::terms();
        let mut told = t.clone();
        told.owner_email = Some("owner@example.com".into());
        for status in [
            Status::Waiting,
            Status::Active,
            Status::Expired,
            Status::Cancelled,
        ] {
            assert_eq!(check_edit(&t, status, &told), Ok(()), "{status:?}");
            let mut more = told.clone();
            more.name = format!("{} (renamed)", t.name);
            assert_eq!(
                check_edit(&t, status, &more),
                Err(EditRefused::NotDraft(status)),
                "{status:?}"
            );
        }
        // Nothing to change is no exception to "only drafts".
        assert_eq!(
            check_edit(&t, Status::Active, &t),
            Err(EditRefused::NotDraft(Status::Active))
        );
    }

    #[test]
    fn the_account_never_changes() {
        let t = crate::test_support::terms();
        let mut other = t.clone();
        other.account_id = "acc_2".into();
        assert_eq!(
            check_edit(&t, Status::Draft, &other),
            Err(EditRefused::AccountChanged)
        );
        assert!(editable(Status::Draft));
        assert!(!editable(Status::Waiting) && !editable(Status::Cancelled));
    }

    #[test]
    fn only_open_entitlements_may_be_default() {
        let may: Vec<bool> = Status::ALL.into_iter().map(may_be_default).collect();
        assert_eq!(may, [true, true, true, false, false, true]);
    }

    #[test]
    fn a_suspended_entitlement_stays_suspended_until_resumed() {
        let (s, e) = (d(3, 1), d(3, 31));
        for today in [d(2, 1), d(3, 5), d(4, 5)] {
            assert_eq!(
                effective_status(Status::Suspended, s, e, today),
                Status::Suspended
            );
        }
        assert_eq!(suspended(Status::Active), Some(Status::Suspended));
        assert_eq!(suspended(Status::Waiting), Some(Status::Suspended));
        for other in [
            Status::Draft,
            Status::Expired,
            Status::Cancelled,
            Status::Suspended,
        ] {
            assert_eq!(suspended(other), None, "{other:?}");
        }
        assert_eq!(
            resumed(Status::Suspended, s, e, d(2, 1)),
            Some(Status::Waiting)
        );
        assert_eq!(
            resumed(Status::Suspended, s, e, d(3, 5)),
            Some(Status::Active)
        );
        assert_eq!(
            resumed(Status::Suspended, s, e, d(4, 1)),
            Some(Status::Expired)
        );
        assert_eq!(resumed(Status::Active, s, e, d(3, 5)), None);
        assert_eq!(
            transition(Action::Cancel, Status::Suspended, s, e, d(3, 5)),
            Ok(Status::Cancelled)
        );
        for action in [Action::Activate, Action::Deactivate, Action::Renew] {
            assert!(transition(action, Status::Suspended, s, e, d(3, 5)).is_err());
        }
        assert_eq!(
            event_for(Action::Cancel, Status::Suspended),
            EventKind::Suspended
        );
    }

    #[test]
    fn a_renewal_ends_as_far_after_today_as_the_old_term_lasted() {
        let mut old = crate::test_support::terms();
        old.start_date = d(1, 1);
        old.end_date = d(3, 31);
        let new = renewed_terms(&old, d(6, 10));
        assert_eq!((new.start_date, new.end_date), (d(6, 10), d(9, 7)));
    }
}
