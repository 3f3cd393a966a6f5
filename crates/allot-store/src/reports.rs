//! What reports read beside the entitlement rows: the ledger summed per
//! period and per day, one statement for many entitlements. Reads only;
//! they take no lock a write would wait on.

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

#[async_trait]
pub trait ReportStore {
    /// `LimitQuery`'s entitlements in `UrgencyKey` order, each with its key
    /// as the stored counters give it. Counters of a period that has since
    /// ended are as stored (the caller rolls them forward and finds those
    /// with `held_near_limit`).
    async fn approaching_limit(
        &self,
        query: &LimitQuery,
    ) -> StoreResult<Vec<(UrgencyKey, EntitlementRecord)>>;

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
