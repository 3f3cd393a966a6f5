//! What reports read beside the entitlement rows: the ledger summed per
//! period and per day, one statement for many entitlements. Reads only;
//! they take no lock a write would wait on.

use std::collections::HashMap;

use allot_core::balance::{balance, lags};
use allot_core::entitlement::Period;
use allot_core::report::{
    closed_periods, ended_between, limit_state, percent_used, window_of, LimitState,
};
use allot_core::Quantity;
use async_trait::async_trait;
use chrono::NaiveDate;

use crate::error::StoreResult;
use crate::model::{EntitlementFilter, EntitlementRecord};

/// Most entitlements one ledger summary may name (a page of a report).
pub const MAX_SUMMARY_ENTITLEMENTS: usize = 1000;

/// The net use of one entitlement in one period (`used` of that period).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeriodUsage {
    pub entitlement_id: String,
    pub period_index: i64,
    pub used: Quantity,
}

/// The net use of one entitlement on one UTC day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayUsage {
    pub entitlement_id: String,
    pub day: NaiveDate,
    pub used: Quantity,
}

/// The net use of one entitlement over a span of days.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpanUsage {
    pub entitlement_id: String,
    pub used: Quantity,
}

/// Where an entitlement stands in the approaching-limit report, most urgent
/// first: `state` (0 overage, 1 exhausted, 2 approaching), then `order`
/// (minus the percent used in hundredths, never above 0; `NO_PERCENT` when
/// there is no allowance to take a percentage of), then the id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct UrgencyKey {
    pub state: u8,
    pub order: i64,
    pub id: String,
}

/// `UrgencyKey::order` of an entitlement without a percentage: first.
pub const NO_PERCENT: i64 = -i64::MAX;

/// Which limited entitlements `approaching_limit` reads: those of
/// `filter`, active by their dates on `today` (start ≤ today ≤ end), whose
/// stored counters put them at or past `threshold` percent (or with
/// nothing remaining), after `after`, at most `limit`.
#[derive(Debug, Clone)]
pub struct LimitQuery {
    pub filter: EntitlementFilter,
    pub today: NaiveDate,
    /// Whole percent.
    pub threshold: i64,
    pub after: Option<UrgencyKey>,
    pub limit: u32,
}

/// Candidates of the approaching-limit report counted together because
/// everything that decides their row is the same: the `state` their stored
/// counters give (as `UrgencyKey::state`), and the term's dates and the
/// stored period index, which tell whether those counters lag today.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateGroup {
    pub state: u8,
    pub period: Period,
    pub start_date: NaiveDate,
    pub end_date: NaiveDate,
    pub period_index: i64,
    pub count: u64,
}

/// Entitlements counted together because their terms have the same dates
/// and periods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TermGroup {
    pub period: Period,
    pub start_date: NaiveDate,
    pub end_date: NaiveDate,
    pub count: u64,
}

#[async_trait]
pub trait ReportStore {
    /// `LimitQuery`'s entitlements (`after` and `limit` ignored) as
    /// `approaching_limit` finds them by their stored counters, counted by
    /// `StateGroup`.
    async fn count_limit_states(&self, query: &LimitQuery) -> StoreResult<Vec<StateGroup>>;

    /// How many entitlements `ending_between` finds from `from` to `to`.
    async fn count_ending_between(
        &self,
        filter: &EntitlementFilter,
        from: NaiveDate,
        to: NaiveDate,
    ) -> StoreResult<u64>;

    /// `closed_between`'s entitlements with an allotment above zero,
    /// counted by `TermGroup`.
    async fn count_closed_between(
        &self,
        filter: &EntitlementFilter,
        from: NaiveDate,
        to: NaiveDate,
        today: NaiveDate,
    ) -> StoreResult<Vec<TermGroup>>;

    /// The periods of `count_closed_between`'s entitlements whose ledger
    /// sum reaches the period's allotment (`total`): each record with the
    /// period's index, in id and index order. Only these can end a period
    /// with nothing unused.
    async fn spent_periods(
        &self,
        filter: &EntitlementFilter,
        from: NaiveDate,
        to: NaiveDate,
        today: NaiveDate,
    ) -> StoreResult<Vec<(EntitlementRecord, i64)>>;

    /// `LimitQuery`'s entitlements in `UrgencyKey` order, each with its key
    /// as the stored counters give it. Counters of a period that has since
    /// ended are as stored (the caller rolls them forward and finds those
    /// with `held_near_limit`).
    async fn approaching_limit(
        &self,
        query: &LimitQuery,
    ) -> StoreResult<Vec<(UrgencyKey, EntitlementRecord)>>;

    /// Every key `approaching_limit` finds after `query.after` (`limit`
    /// ignored), in order: a whole export sorts its candidates once, then
    /// reads their records a chunk at a time (`records_by_ids`).
    async fn urgency_keys(&self, query: &LimitQuery) -> StoreResult<Vec<UrgencyKey>>;

    /// The records of these entitlements (those that exist), in id order.
    /// At most `MAX_SUMMARY_ENTITLEMENTS` ids.
    async fn records_by_ids(&self, ids: &[String]) -> StoreResult<Vec<EntitlementRecord>>;

    /// Every limited entitlement of the query (`after` and `limit`
    /// ignored) whose held amount alone reaches the threshold of its
    /// period's allotment, `held × 100 ≥ min(threshold, 100) × total`: what
    /// any entitlement past a period reset must meet to be listed (a reset
    /// zeroes use and keeps what is held), in id order. Above a threshold
    /// of 0 only those holding something or without allotment can.
    async fn held_near_limit(&self, query: &LimitQuery) -> StoreResult<Vec<EntitlementRecord>>;

    /// Entitlements of `filter` with `start_date ≤ from` and `from ≤
    /// end_date ≤ to`, after `after` in (end date, id) order, at most `limit`.
    async fn ending_between(
        &self,
        filter: &EntitlementFilter,
        from: NaiveDate,
        to: NaiveDate,
        after: Option<(NaiveDate, String)>,
        limit: u32,
    ) -> StoreResult<Vec<EntitlementRecord>>;

    /// Limited entitlements of `filter` that may have a period closed by
    /// `today` and ending from `from` to `to`: `start_date ≤ to`,
    /// `end_date ≥ from`, and either the term ended before `today` or it
    /// has periods and began at least 28 days before `today` (no period is
    /// shorter). In id order after `after`, at most `limit`.
    async fn closed_between(
        &self,
        filter: &EntitlementFilter,
        from: NaiveDate,
        to: NaiveDate,
        today: NaiveDate,
        after: Option<String>,
        limit: u32,
    ) -> StoreResult<Vec<EntitlementRecord>>;

    /// The ledger of these entitlements summed per period, ordered by
    /// entitlement and period. At most `MAX_SUMMARY_ENTITLEMENTS` ids.
    async fn usage_by_period(&self, entitlement_ids: &[String]) -> StoreResult<Vec<PeriodUsage>>;

    /// The ledger of these entitlements summed from `from` to `to` (both
    /// included, UTC days), ordered by entitlement; entitlements without
    /// entries are absent. The forecast's window needs only this total, and
    /// one sum per entitlement reads the index in order where a sum per day
    /// must sort. At most `MAX_SUMMARY_ENTITLEMENTS` ids.
    async fn usage_between(
        &self,
        entitlement_ids: &[String],
        from: NaiveDate,
        to: NaiveDate,
    ) -> StoreResult<Vec<SpanUsage>>;

    /// The ledger of these entitlements summed per day of its time, from
    /// `from` to `to` (both included), ordered by entitlement and day; days
    /// without entries are absent. At most `MAX_SUMMARY_ENTITLEMENTS` ids.
    async fn usage_by_day(
        &self,
        entitlement_ids: &[String],
        from: NaiveDate,
        to: NaiveDate,
    ) -> StoreResult<Vec<DayUsage>>;
}

/// What the overview counts, each over the entitlements of its filter
/// (the reports' own scopes: `active` for the limit states and the
/// expiring, `ended` for the unused).
#[derive(Debug, Clone)]
pub struct CountsQuery {
    pub active: EntitlementFilter,
    pub ended: EntitlementFilter,
    pub today: NaiveDate,
    /// Whole percent, as the approaching-limit report takes it.
    pub threshold: i64,
    /// Ending from today to this day.
    pub expiring_to: NaiveDate,
    /// Periods ending from `unused_from` to `unused_to`.
    pub unused_from: NaiveDate,
    pub unused_to: NaiveDate,
}

/// The rows each report lists, counted: the approaching-limit report's
/// rows by state, the expiring report's rows, and the unused report's rows
/// that left something unused.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    pub overage: u64,
    pub exhausted: u64,
    pub approaching: u64,
    pub expiring: u64,
    pub unused: u64,
}

impl Counts {
    fn add_state(&mut self, state: LimitState, n: u64) {
        match state {
            LimitState::Overage => self.overage += n,
            LimitState::Exhausted => self.exhausted += n,
            LimitState::Approaching => self.approaching += n,
            LimitState::Below => {}
        }
    }
}

/// The state `UrgencyKey::state` numbers.
fn state_numbered(state: u8) -> LimitState {
    match state {
        0 => LimitState::Overage,
        1 => LimitState::Exhausted,
        2 => LimitState::Approaching,
        other => panic!("no limit state numbered {other}"),
    }
}

/// Counts every row of the overview's reports exactly, whatever their
/// number, in a fixed number of reads (the replay of rolled-over unused
/// reads the ledger of at most `MAX_SUMMARY_ENTITLEMENTS` entitlements at a
/// time). The store counts in groups what its stored counters and dates
/// decide; `allot-core` decides what they cannot: whether a group's
/// counters lag today (those entitlements come from `held_near_limit`, as
/// in the report, and are rolled forward), how many periods a term closed
/// in the span, and what rolled into a period whose use reached its
/// allotment.
pub async fn counts<S: ReportStore + ?Sized + Sync>(
    store: &S,
    q: &CountsQuery,
) -> StoreResult<Counts> {
    let mut counts = Counts::default();
    let limits = LimitQuery {
        filter: q.active.clone(),
        today: q.today,
        threshold: q.threshold,
        after: None,
        limit: 0,
    };
    for g in store.count_limit_states(&limits).await? {
        if !lags(
            g.period,
            (g.start_date, g.end_date),
            g.period_index,
            q.today,
        ) {
            counts.add_state(state_numbered(g.state), g.count);
        }
    }
    let threshold = Quantity::whole(q.threshold);
    for r in store.held_near_limit(&limits).await? {
        let t = &r.entitlement.terms;
        if lags(
            t.period,
            (t.start_date, t.end_date),
            r.counters.period_index,
            q.today,
        ) {
            let b = balance(&r.entitlement, &r.counters, q.today);
            counts.add_state(limit_state(b.remaining, percent_used(&b), threshold), 1);
        }
    }
    counts.expiring = store
        .count_ending_between(&q.active, q.today, q.expiring_to)
        .await?;
    counts.unused = count_unused(store, q).await?;
    Ok(counts)
}

/// Closed periods in the span that left something unused: every period
/// leaves something unless its use reached its allotment (what rolled in
/// is never negative), and then only what rolled in can leave some.
async fn count_unused<S: ReportStore + ?Sized + Sync>(
    store: &S,
    q: &CountsQuery,
) -> StoreResult<u64> {
    let (from, to, today) = (q.unused_from, q.unused_to, q.today);
    let mut periods: u64 = 0;
    for g in store
        .count_closed_between(&q.ended, from, to, today)
        .await?
    {
        periods += g.count * ended_between(g.period, (g.start_date, g.end_date), today, (from, to));
    }
    let mut spent: u64 = 0;
    let mut replay: Vec<(EntitlementRecord, i64)> = Vec::new();
    for (r, index) in store.spent_periods(&q.ended, from, to, today).await? {
        let listed = window_of(&r.entitlement, index)
            .is_some_and(|w| w.end < today && from <= w.end && w.end <= to);
        if listed {
            spent += 1;
            if r.entitlement.terms.rollover > Quantity::ZERO {
                replay.push((r, index));
            }
        }
    }
    assert!(spent <= periods, "spent periods are among the closed ones");
    let mut unused = periods - spent;
    let mut ids: Vec<String> = replay
        .iter()
        .map(|(r, _)| r.entitlement.id.clone())
        .collect();
    ids.dedup();
    let mut used: HashMap<(String, i64), Quantity> = HashMap::new();
    for chunk in ids.chunks(MAX_SUMMARY_ENTITLEMENTS) {
        for u in store.usage_by_period(chunk).await? {
            used.insert((u.entitlement_id, u.period_index), u.used);
        }
    }
    for (r, index) in &replay {
        let id = &r.entitlement.id;
        let used_in = |i| used.get(&(id.clone(), i)).copied().unwrap_or_default();
        let closed = closed_periods(&r.entitlement, today, used_in);
        if closed
            .iter()
            .any(|p| p.window.index == *index && p.unused > Quantity::ZERO)
        {
            unused += 1;
        }
    }
    Ok(unused)
}
