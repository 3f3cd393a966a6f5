//! Contracts: the agreement entitlements hang off (contract → lines →
//! entitlements). Which status a contract is in, which actions move it,
//! what of a change flows **down** to its entitlements (nothing flows up),
//! the dates its lines and entitlements must keep, and what a renewal makes.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::entitlement::{Status, Terms};
use crate::events::EventKind;
use crate::invalid::{Checks, Invalid};
use crate::lifecycle::{self, effective_status};
use crate::terms::MAX_TERM_DAYS;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContractStatus {
    Draft,
    Active,
    Suspended,
    Expired,
    Cancelled,
}

impl ContractStatus {
    pub const ALL: [ContractStatus; 5] = [
        ContractStatus::Draft,
        ContractStatus::Active,
        ContractStatus::Suspended,
        ContractStatus::Expired,
        ContractStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ContractStatus::Draft => "draft",
            ContractStatus::Active => "active",
            ContractStatus::Suspended => "suspended",
            ContractStatus::Expired => "expired",
            ContractStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<ContractStatus> {
        ContractStatus::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// Cancelled and expired contracts take no new lines or entitlements.
    pub fn is_closed(self) -> bool {
        matches!(self, ContractStatus::Expired | ContractStatus::Cancelled)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContractAction {
    Activate,
    Suspend,
    Resume,
    Cancel,
    Renew,
    /// The end date passed (the scheduler's, never a client's).
    Expire,
}

impl ContractAction {
    pub fn as_str(self) -> &'static str {
        match self {
            ContractAction::Activate => "activate",
            ContractAction::Suspend => "suspend",
            ContractAction::Resume => "resume",
            ContractAction::Cancel => "cancel",
            ContractAction::Renew => "renew",
            ContractAction::Expire => "expire",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot {} a contract that is {}", action.as_str(), from.as_str())]
pub struct ContractNotAllowed {
    pub action: ContractAction,
    pub from: ContractStatus,
}

/// The status a client reads: an active contract past its end date is
/// expired even before the scheduler has stored it.
pub fn effective_contract_status(
    stored: ContractStatus,
    end: NaiveDate,
    today: NaiveDate,
) -> ContractStatus {
    if stored == ContractStatus::Active && today > end {
        ContractStatus::Expired
    } else {
        stored
    }
}

/// The status `action` moves a contract in effective status `current` to
/// (`Renew` leaves it as it is: the renewal is a new contract).
pub fn contract_transition(
    action: ContractAction,
    current: ContractStatus,
) -> Result<ContractStatus, ContractNotAllowed> {
    use ContractStatus as S;
    match (action, current) {
        (ContractAction::Activate, S::Draft) => Ok(S::Active),
        (ContractAction::Suspend, S::Active) => Ok(S::Suspended),
        (ContractAction::Resume, S::Suspended) => Ok(S::Active),
        (ContractAction::Cancel, S::Draft | S::Active | S::Suspended) => Ok(S::Cancelled),
        (ContractAction::Renew, S::Active | S::Expired) => Ok(current),
        (ContractAction::Expire, S::Active | S::Suspended) => Ok(S::Expired),
        _ => Err(ContractNotAllowed {
            action,
            from: current,
        }),
    }
}

/// What a contract's action does to one of its entitlements (stored status
/// `stored`, its dates): the status it moves to, or `None` when it is left
/// as it is. Cancel and expiry close everything not yet closed; suspend
/// pauses what is waiting or active; resume restores what its dates say.
/// Activation and renewal flow nowhere.
pub fn flow_down(
    action: ContractAction,
    stored: Status,
    start: NaiveDate,
    end: NaiveDate,
    today: NaiveDate,
) -> Option<Status> {
    let current = effective_status(stored, start, end, today);
    let open = !matches!(current, Status::Expired | Status::Cancelled);
    match action {
        ContractAction::Cancel => open.then_some(Status::Cancelled),
        ContractAction::Expire => open.then_some(Status::Expired),
        ContractAction::Suspend => lifecycle::suspended(current),
        ContractAction::Resume => lifecycle::resumed(current, start, end, today),
        ContractAction::Activate | ContractAction::Renew => None,
    }
}

/// The event an entitlement moved by its contract's action emits.
pub fn flow_event(action: ContractAction) -> Option<EventKind> {
    match action {
        ContractAction::Cancel => Some(EventKind::Cancelled),
        ContractAction::Expire => Some(EventKind::Expired),
        ContractAction::Suspend => Some(EventKind::Suspended),
        ContractAction::Resume => Some(EventKind::Resumed),
        ContractAction::Activate | ContractAction::Renew => None,
    }
}

/// A contract's own dates: an end not before the start, within the
/// longest term.
pub fn check_contract_dates(start: NaiveDate, end: NaiveDate) -> Result<(), Invalid> {
    let mut c = Checks::new();
    c.check(end >= start, "end_date", "must not be before start_date");
    c.check(
        (end - start).num_days() <= MAX_TERM_DAYS,
        "end_date",
        format!("must be at most {MAX_TERM_DAYS} days after start_date"),
    );
    c.finish()
}

/// Dates that must lie inside the contract's (a line's, an entitlement's):
/// each refusal names the field.
pub fn check_inside(
    contract: (NaiveDate, NaiveDate),
    start: NaiveDate,
    end: NaiveDate,
) -> Result<(), Invalid> {
    let (from, to) = contract;
    let mut c = Checks::new();
    c.check(
        start >= from,
        "start_date",
        format!("must not be before the contract's start_date {from}"),
    );
    c.check(
        end <= to,
        "end_date",
        format!("must not be after the contract's end_date {to}"),
    );
    c.finish()
}

/// The dates of a contract's renewal: from the day after it ends, as long
/// as it lasted.
pub fn renewal_dates(start: NaiveDate, end: NaiveDate) -> (NaiveDate, NaiveDate) {
    let from = end + chrono::Days::new(1);
    (from, from + (end - start))
}

/// The renewal of an entitlement of a renewed contract: the same terms,
/// moved by as much as the contract moved (so they stay inside the new
/// contract's dates), never the account's default until a manager says so.
/// The caller names the new contract and line.
pub fn renewed_entitlement_terms(old: &Terms, shift: chrono::Duration) -> Terms {
    crate::lifecycle::shifted_renewal(old, shift)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ContractAction as A;
    use ContractStatus as S;

    fn d(m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, m, day).unwrap()
    }

    #[test]
    fn names_round_trip_and_match_the_wire_format() {
        for status in ContractStatus::ALL {
            assert_eq!(ContractStatus::parse(status.as_str()), Some(status));
            assert_eq!(serde_json::to_value(status).unwrap(), status.as_str());
        }
        assert_eq!(ContractStatus::parse("paused"), None);
        let names: Vec<&str> = [
            A::Activate,
            A::Suspend,
            A::Resume,
            A::Cancel,
            A::Renew,
            A::Expire,
        ]
        .into_iter()
        .map(ContractAction::as_str)
        .collect();
        assert_eq!(
            names,
            ["activate", "suspend", "resume", "cancel", "renew", "expire"]
        );
        assert_eq!(serde_json::to_value(A::Resume).unwrap(), "resume");
    }

    #[test]
    fn only_expired_and_cancelled_are_closed() {
        let closed: Vec<bool> = ContractStatus::ALL.into_iter().map(S::is_closed).collect();
        assert_eq!(closed, [false, false, false, true, true]);
    }

    #[test]
    fn an_active_contract_expires_after_its_last_day() {
        let end = d(3, 31);
        assert_eq!(effective_contract_status(S::Active, end, end), S::Active);
        assert_eq!(
            effective_contract_status(S::Active, end, d(4, 1)),
            S::Expired
        );
        for stored in [S::Draft, S::Suspended, S::Cancelled, S::Expired] {
            assert_eq!(effective_contract_status(stored, end, d(4, 1)), stored);
        }
    }

    #[test]
    fn every_action_moves_only_from_its_states() {
        let allowed = [
            (A::Activate, S::Draft, S::Active),
            (A::Suspend, S::Active, S::Suspended),
            (A::Resume, S::Suspended, S::Active),
            (A::Cancel, S::Draft, S::Cancelled),
            (A::Cancel, S::Active, S::Cancelled),
            (A::Cancel, S::Suspended, S::Cancelled),
            (A::Renew, S::Active, S::Active),
            (A::Renew, S::Expired, S::Expired),
            (A::Expire, S::Active, S::Expired),
            (A::Expire, S::Suspended, S::Expired),
        ];
        for action in [
            A::Activate,
            A::Suspend,
            A::Resume,
            A::Cancel,
            A::Renew,
            A::Expire,
        ] {
            for from in ContractStatus::ALL {
                let expected = allowed
                    .iter()
                    .find(|(a, f, _)| *a == action && *f == from)
                    .map(|(_, _, to)| *to);
                match expected {
                    Some(to) => assert_eq!(contract_transition(action, from), Ok(to)),
                    None => assert_eq!(
                        contract_transition(action, from),
                        Err(ContractNotAllowed { action, from })
                    ),
                }
            }
        }
        assert_eq!(
            contract_transition(A::Resume, S::Active)
                .unwrap_err()
                .to_string(),
            "cannot resume a contract that is active"
        );
    }

    #[test]
    fn cancel_and_expiry_close_every_open_entitlement() {
        let (s, e, t) = (d(3, 1), d(3, 31), d(3, 5));
        for stored in [
            Status::Draft,
            Status::Waiting,
            Status::Active,
            Status::Suspended,
        ] {
            assert_eq!(
                flow_down(A::Cancel, stored, s, e, t),
                Some(Status::Cancelled)
            );
            assert_eq!(flow_down(A::Expire, stored, s, e, t), Some(Status::Expired));
        }
        assert_eq!(flow_down(A::Cancel, Status::Cancelled, s, e, t), None);
        assert_eq!(flow_down(A::Expire, Status::Cancelled, s, e, t), None);
        assert_eq!(flow_down(A::Cancel, Status::Expired, s, e, d(4, 1)), None);
        assert_eq!(flow_down(A::Expire, Status::Expired, s, e, d(4, 1)), None);
        // Already expired by its dates (stored active): left as it is.
        assert_eq!(flow_down(A::Cancel, Status::Active, s, e, d(4, 1)), None);
        assert_eq!(flow_down(A::Expire, Status::Active, s, e, d(4, 1)), None);
    }

    #[test]
    fn suspend_pauses_what_runs_and_resume_restores_the_dates() {
        let (s, e) = (d(3, 1), d(3, 31));
        for (action, stored, day, want) in [
            (A::Suspend, Status::Active, d(3, 5), Some(Status::Suspended)),
            (
                A::Suspend,
                Status::Waiting,
                d(2, 5),
                Some(Status::Suspended),
            ),
            // Stored waiting whose start has come: active, so it pauses too.
            (
                A::Suspend,
                Status::Waiting,
                d(3, 5),
                Some(Status::Suspended),
            ),
            (A::Suspend, Status::Draft, d(3, 5), None),
            (A::Suspend, Status::Cancelled, d(3, 5), None),
            (A::Suspend, Status::Suspended, d(3, 5), None),
            (A::Suspend, Status::Active, d(4, 5), None),
            (A::Resume, Status::Suspended, d(3, 5), Some(Status::Active)),
            (A::Resume, Status::Suspended, d(4, 5), Some(Status::Expired)),
            (A::Resume, Status::Active, d(3, 5), None),
            (A::Resume, Status::Draft, d(3, 5), None),
        ] {
            let got = flow_down(action, stored, s, e, day);
            assert_eq!(got, want, "{action:?} of {stored:?} on {day}");
        }
        for stored in [Status::Draft, Status::Active, Status::Suspended] {
            assert_eq!(flow_down(A::Activate, stored, s, e, d(3, 5)), None);
            assert_eq!(flow_down(A::Renew, stored, s, e, d(3, 5)), None);
        }
    }

    #[test]
    fn each_flow_emits_its_event() {
        let events: Vec<Option<EventKind>> = [
            A::Cancel,
            A::Expire,
            A::Suspend,
            A::Resume,
            A::Activate,
            A::Renew,
        ]
        .into_iter()
        .map(flow_event)
        .collect();
        assert_eq!(
            events,
            [
                Some(EventKind::Cancelled),
                Some(EventKind::Expired),
                Some(EventKind::Suspended),
                Some(EventKind::Resumed),
                None,
                None
            ]
        );
    }

    #[test]
    fn contract_dates_end_after_they_start_within_the_longest_term() {
        assert_eq!(check_contract_dates(d(3, 1), d(3, 1)), Ok(()));
        assert_eq!(
            check_contract_dates(d(3, 2), d(3, 1)),
            Err(Invalid::field("end_date", "must not be before start_date"))
        );
        let start = d(1, 1);
        let longest = start + chrono::Duration::days(MAX_TERM_DAYS);
        assert_eq!(check_contract_dates(start, longest), Ok(()));
        assert!(check_contract_dates(start, longest + chrono::Days::new(1)).is_err());
    }

    #[test]
    fn lines_and_entitlements_stay_inside_the_contract() {
        let contract = (d(1, 1), d(12, 31));
        assert_eq!(check_inside(contract, d(1, 1), d(12, 31)), Ok(()));
        assert_eq!(
            check_inside(contract, d(1, 1) - chrono::Days::new(1), d(6, 30)),
            Err(Invalid::field(
                "start_date",
                "must not be before the contract's start_date 2026-01-01"
            ))
        );
        assert_eq!(
            check_inside(contract, d(2, 1), d(12, 31) + chrono::Days::new(1)),
            Err(Invalid::field(
                "end_date",
                "must not be after the contract's end_date 2026-12-31"
            ))
        );
    }

    #[test]
    fn a_renewal_starts_the_day_after_and_lasts_as_long() {
        assert_eq!(renewal_dates(d(1, 1), d(3, 31)), (d(4, 1), d(6, 29)));
        let (from, to) = renewal_dates(d(1, 1), d(1, 1));
        assert_eq!((from, to), (d(1, 2), d(1, 2)));
    }

    #[test]
    fn a_renewed_entitlement_moves_with_its_contract() {
        let mut old = crate::test_support::terms();
        old.start_date = d(1, 10);
        old.end_date = d(3, 20);
        old.is_default = true;
        let new = renewed_entitlement_terms(&old, chrono::Duration::days(90));
        assert_eq!((new.start_date, new.end_date), (d(4, 10), d(6, 18)));
        assert!(!new.is_default);
        assert_eq!(new.name, old.name);
        assert_eq!(new.total, old.total);
    }
}
