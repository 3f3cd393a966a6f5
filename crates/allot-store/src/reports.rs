//! What reports read beside the entitlement rows: the ledger summed per
//! period and per day, one statement for many entitlements. Reads only;
//! they take no lock a write would wait on.

use allot_core::Quantity;
use async_trait::async_trait;
use chrono::NaiveDate;

use crate::error::StoreResult;

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

#[async_trait]
pub trait ReportStore {
    /// The ledger of these entitlements summed per period, ordered by
    /// entitlement and period. At most `MAX_SUMMARY_ENTITLEMENTS` ids.
    async fn usage_by_period(&self, entitlement_ids: &[String]) -> StoreResult<Vec<PeriodUsage>>;

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
