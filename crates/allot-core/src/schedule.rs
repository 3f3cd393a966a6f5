//! What the dates owe an entitlement on a day, whether or not anyone uses
//! it: its status moving (`activated`, `expired`), each period that closed
//! (`period_reset`, with what was left unused), a notice N days before the
//! end (`expiring_soon`), and for `auto_renew` the successor's terms. The
//! store's scheduler asks `agenda` under the entitlement's lock and
//! records what it emitted there, so nothing is emitted twice.

use std::fmt;

use chrono::{Months, NaiveDate};
use serde_json::{json, Value};

use crate::balance::Counters;
use crate::entitlement::{Entitlement, Status, Terms};
use crate::lifecycle::{self, effective_status, renewed_terms, Action};
use crate::period::{window_at, Window};
use crate::quantity::Quantity;
use crate::terms::validate_terms;

/// Most notice days one organization configures.
pub const MAX_NOTICES: usize = 8;
/// The earliest notice: ten years before the end.
pub const MAX_NOTICE_DAYS: u32 = 3660;

/// The days before an end date on which `entitlement.expiring_soon` is
/// emitted (`ALLOT_EXPIRING_SOON_DAYS`, default `30,7`); kept ascending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpiringSoon(Vec<u32>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expiring-soon days must be a comma-separated list of at most {MAX_NOTICES} whole numbers of days from 0 to {MAX_NOTICE_DAYS} (e.g. 30,7): {0}")]
pub struct BadNoticeDays(pub String);

impl Default for ExpiringSoon {
    fn default() -> Self {
        ExpiringSoon(vec![7, 30])
    }
}

impl ExpiringSoon {
    /// `"30,7"`; an empty text means no notices.
    pub fn parse(text: &str) -> Result<ExpiringSoon, BadNoticeDays> {
        let bad = || BadNoticeDays(text.to_string());
        if text.trim().is_empty() {
            return Ok(ExpiringSoon(Vec::new()));
        }
        let mut days = text
            .split(',')
            .map(|item| item.trim().parse::<u32>().map_err(|_| bad()))
            .collect::<Result<Vec<u32>, _>>()?;
        days.sort_unstable();
        days.dedup();
        if days.len() > MAX_NOTICES || days.iter().any(|d| *d > MAX_NOTICE_DAYS) {
            return Err(bad());
        }
        Ok(ExpiringSoon(days))
    }

    /// Ascending.
    pub fn days(&self) -> &[u32] {
        &self.0
    }

    /// The notice a term ending on `end` is due on `today`: the nearest
    /// threshold already reached. A late look (after downtime) sends only
    /// that one: "30 days left" is not news five days before the end.
    pub fn due(&self, end: NaiveDate, today: NaiveDate) -> Option<u32> {
        let left = (end - today).num_days();
        if left < 0 {
            return None;
        }
        self.0.iter().copied().find(|n| i64::from(*n) >= left)
    }

    /// The first day after `today` on which a nearer threshold is reached.
    pub fn next_after(&self, end: NaiveDate, today: NaiveDate) -> Option<NaiveDate> {
        self.0
            .iter()
            .filter_map(|n| end.checked_sub_days(chrono::Days::new(u64::from(*n))))
            .filter(|on| *on > today)
            .min()
    }
}

/// As configured: descending, `30,7`.
impl fmt::Display for ExpiringSoon {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days: Vec<String> = self.0.iter().rev().map(u32::to_string).collect();
        f.write_str(&days.join(","))
    }
}

/// An `entitlement.expiring_soon` notice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// The threshold reached: one of the configured days.
    pub days_before: u32,
    /// Days from today to the end date (the end date itself is still covered).
    pub days_left: i64,
    pub end_date: NaiveDate,
}

impl Notice {
    /// The event's data, version 1.
    pub fn payload(&self) -> Value {
        json!({
            "days_before": self.days_before,
            "days_left": self.days_left,
            "end_date": self.end_date,
        })
    }
}

/// A period that ended: its window and what happened in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClosedPeriod {
    pub period: Window,
    pub next: Window,
    /// The period's allotment; `None` when unlimited.
    pub total: Option<Quantity>,
    /// Rolled over into the closed period from the one before.
    pub carried_in: Quantity,
    pub used: Quantity,
    /// total + carried in − used, never below zero; `None` when unlimited.
    pub unused: Option<Quantity>,
    /// What of `unused` rolls into the next period (up to the rollover cap).
    pub carried_over: Quantity,
}

fn window_json(w: &Window) -> Value {
    json!({ "index": w.index, "start": w.start, "end": w.end })
}

impl ClosedPeriod {
    /// The data of `entitlement.period_reset`, version 1.
    pub fn payload(&self) -> Value {
        json!({
            "period": window_json(&self.period),
            "next_period": window_json(&self.next),
            "total": self.total,
            "carried_in": self.carried_in,
            "used": self.used,
            "unused": self.unused,
            "carried_over": self.carried_over,
        })
    }
}

/// The last period of a term that ended: what its expiry reports, so the
/// unused figure of a whole-term entitlement (no period reset) is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastPeriod {
    pub period: Window,
    pub total: Option<Quantity>,
    pub carried_in: Quantity,
    pub used: Quantity,
    /// total + carried in − used, never below zero; `None` when unlimited.
    pub unused: Option<Quantity>,
}

impl LastPeriod {
    /// Version 1, within the data of `entitlement.expired`.
    pub fn payload(&self) -> Value {
        json!({
            "period": window_json(&self.period),
            "total": self.total,
            "carried_in": self.carried_in,
            "used": self.used,
            "unused": self.unused,
        })
    }
}

/// The period `counters` stand in, as it ended.
pub fn last_period(ent: &Entitlement, counters: &Counters) -> LastPeriod {
    let total = ent.terms.total;
    LastPeriod {
        period: window_of(ent, counters.period_index),
        total,
        carried_in: counters.carried,
        used: counters.used,
        unused: total.map(|t| (t + counters.carried - counters.used).max(Quantity::ZERO)),
    }
}

/// Period `index` of the entitlement's term.
pub fn window_of(ent: &Entitlement, index: i64) -> Window {
    let t = &ent.terms;
    let first_day = match (t.period.months(), u32::try_from(index)) {
        (Some(months), Ok(n)) => months
            .checked_mul(n)
            .and_then(|m| t.start_date.checked_add_months(Months::new(m)))
            .unwrap_or(t.end_date),
        _ => t.start_date,
    };
    window_at(t.period, t.start_date, t.end_date, first_day)
}

/// Rolls `stored` forward to period `to_index` one period at a time,
/// describing each period closed on the way. The counters reached are
/// those of `Counters::roll_to` in one step (a period nobody used passes
/// its whole allotment on, up to the cap). At most one entry per period of
/// the term.
pub fn close_periods(
    ent: &Entitlement,
    stored: &Counters,
    to_index: i64,
) -> (Counters, Vec<ClosedPeriod>) {
    let mut counters = stored.clone();
    let mut closed = Vec::new();
    while counters.period_index < to_index {
        let index = counters.period_index;
        let (next, reset) = counters.roll_to(ent, index + 1);
        let reset = reset.expect("rolling to a later period resets");
        closed.push(ClosedPeriod {
            period: window_of(ent, index),
            next: window_of(ent, index + 1),
            total: ent.terms.total,
            carried_in: counters.carried,
            used: counters.used,
            unused: reset.unused,
            carried_over: reset.carried,
        });
        counters = next;
    }
    (counters, closed)
}

/// The terms of an automatic renewal: those of `old`, for as long, from the
/// day after its end. `None` when that term would leave the dates Allot
/// accepts.
pub fn renewal_terms(old: &Terms) -> Option<Terms> {
    let start = old.end_date.succ_opt()?;
    start.checked_add_signed(old.end_date - old.start_date)?;
    let terms = renewed_terms(old, start);
    validate_terms(&terms).ok()?;
    Some(terms)
}

/// The steps an automatic renewal takes on creation: activated, and
/// expired too when its whole term is already past (a renewal made late,
/// after downtime, is still activated first). Its start, the day after its
/// predecessor's end, is never after `today`.
pub fn renewal_steps(terms: &Terms, today: NaiveDate) -> Vec<(Status, Status)> {
    let to = lifecycle::transition(
        Action::Activate,
        Status::Draft,
        terms.start_date,
        terms.end_date,
        today,
    )
    .unwrap_or(Status::Draft);
    match to {
        Status::Expired => vec![
            (Status::Draft, Status::Active),
            (Status::Active, Status::Expired),
        ],
        _ => vec![(Status::Draft, to)],
    }
}

/// What the scheduler knows of an entitlement, read under its lock.
#[derive(Debug, Clone, Copy)]
pub struct Observed<'a> {
    pub entitlement: &'a Entitlement,
    pub counters: &'a Counters,
    /// The `expiring_soon` thresholds already sent for the current end date.
    pub notices_sent: &'a [u32],
    /// Whether a successor exists (an earlier renewal, automatic or not).
    pub renewed: bool,
}

/// What is due for one entitlement today, and when to look again.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Agenda {
    /// The steps from the stored status to the one its dates imply: two
    /// (waiting → active → expired) when a whole term passed unseen.
    pub steps: Vec<(Status, Status)>,
    pub closed: Vec<ClosedPeriod>,
    /// The counters after `closed`, when any period closed.
    pub counters: Option<Counters>,
    pub notice: Option<Notice>,
    /// When the term ended today (or unseen before): its last period.
    pub last_period: Option<LastPeriod>,
    pub renewal: Option<Terms>,
    /// The next day something may fall due; `None`: nothing will.
    pub next_due: Option<NaiveDate>,
}

impl Agenda {
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
            && self.closed.is_empty()
            && self.notice.is_none()
            && self.renewal.is_none()
    }
}

/// What the dates owe `seen` today. Drafts and cancelled entitlements are
/// owed nothing.
pub fn agenda(seen: &Observed<'_>, notices: &ExpiringSoon, today: NaiveDate) -> Agenda {
    let e = seen.entitlement;
    let t = &e.terms;
    if !matches!(e.status, Status::Waiting | Status::Active | Status::Expired) {
        return Agenda::default();
    }
    let status = effective_status(e.status, t.start_date, t.end_date, today);
    let to_index = window_at(t.period, t.start_date, t.end_date, today).index;
    let (counters, closed) = close_periods(e, seen.counters, to_index);
    let notice = match status {
        Status::Active => notices
            .due(t.end_date, today)
            .filter(|n| !seen.notices_sent.contains(n))
            .map(|days_before| Notice {
                days_before,
                days_left: (t.end_date - today).num_days(),
                end_date: t.end_date,
            }),
        _ => None,
    };
    let renewal = match status {
        Status::Expired if t.auto_renew && !seen.renewed => renewal_terms(t),
        _ => None,
    };
    let steps = status_steps(e.status, status);
    let last_period = match steps.last() {
        Some((_, Status::Expired)) => Some(last_period(e, &counters)),
        _ => None,
    };
    Agenda {
        steps,
        last_period,
        counters: (!closed.is_empty()).then_some(counters),
        closed,
        notice,
        renewal,
        next_due: next_due(t, status, notices, today),
    }
}

/// Each state an activated entitlement passes through from `stored` to
/// `now`, so that a term that began and ended unseen is still activated,
/// then expired.
pub fn status_steps(stored: Status, now: Status) -> Vec<(Status, Status)> {
    match (stored, now) {
        (Status::Waiting, Status::Expired) => vec![
            (Status::Waiting, Status::Active),
            (Status::Active, Status::Expired),
        ],
        _ if stored == now => Vec::new(),
        _ => vec![(stored, now)],
    }
}

fn next_due(
    t: &Terms,
    status: Status,
    notices: &ExpiringSoon,
    today: NaiveDate,
) -> Option<NaiveDate> {
    match status {
        Status::Waiting => Some(t.start_date),
        // The current period ends with the term at the latest: the day
        // after it is the next reset or the expiry, whichever comes.
        Status::Active => [
            window_at(t.period, t.start_date, t.end_date, today)
                .end
                .succ_opt(),
            notices.next_after(t.end_date, today),
        ]
        .into_iter()
        .flatten()
        .min(),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
