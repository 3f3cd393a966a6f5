//! The ledger summaries reports read (`allot_store::reports::ReportStore`).

use allot_core::Quantity;
use allot_store::reports::{DayUsage, PeriodUsage, ReportStore, MAX_SUMMARY_ENTITLEMENTS};
use allot_store::StoreResult;
use async_trait::async_trait;
use chrono::{DateTime, Days, NaiveDate, Utc};
use deadpool_postgres::Pool;

use crate::error::Res;
use crate::PostgresStore;

async fn usage_by_period(pool: &Pool, ids: &[String]) -> Res<Vec<PeriodUsage>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let client = pool.get().await?;
    let stmt = client
        .prepare_cached(
            "SELECT entitlement_id, period_index, SUM(quantity_milli)::BIGINT FROM ledger
             WHERE entitlement_id = ANY($1) GROUP BY entitlement_id, period_index
             ORDER BY entitlement_id, period_index",
        )
        .await?;
    client
        .query(&stmt, &[&ids])
        .await?
        .iter()
        .map(|r| {
            Ok(PeriodUsage {
                entitlement_id: r.try_get(0)?,
                period_index: r.try_get(1)?,
                used: Quantity::from_milli(r.try_get(2)?),
            })
        })
        .collect()
}

/// Midnight UTC at the start of `day`.
fn midnight(day: NaiveDate) -> DateTime<Utc> {
    day.and_time(chrono::NaiveTime::MIN).and_utc()
}

async fn usage_by_day(
    pool: &Pool,
    ids: &[String],
    from: NaiveDate,
    to: NaiveDate,
) -> Res<Vec<DayUsage>> {
    if ids.is_empty() || from > to {
        return Ok(Vec::new());
    }
    let until = to.checked_add_days(Days::new(1)).unwrap_or(NaiveDate::MAX);
    let client = pool.get().await?;
    let stmt = client
        .prepare_cached(
            "SELECT entitlement_id, (created_at AT TIME ZONE 'UTC')::DATE AS day,
                    SUM(quantity_milli)::BIGINT
             FROM ledger
             WHERE entitlement_id = ANY($1) AND created_at >= $2 AND created_at < $3
             GROUP BY entitlement_id, day ORDER BY entitlement_id, day",
        )
        .await?;
    client
        .query(&stmt, &[&ids, &midnight(from), &midnight(until)])
        .await?
        .iter()
        .map(|r| {
            Ok(DayUsage {
                entitlement_id: r.try_get(0)?,
                day: r.try_get(1)?,
                used: Quantity::from_milli(r.try_get(2)?),
            })
        })
        .collect()
}

#[async_trait]
impl ReportStore for PostgresStore {
    async fn usage_by_period(&self, entitlement_ids: &[String]) -> StoreResult<Vec<PeriodUsage>> {
        assert!(entitlement_ids.len() <= MAX_SUMMARY_ENTITLEMENTS);
        Ok(usage_by_period(&self.pool, entitlement_ids).await?)
    }

    async fn usage_by_day(
        &self,
        entitlement_ids: &[String],
        from: NaiveDate,
        to: NaiveDate,
    ) -> StoreResult<Vec<DayUsage>> {
        assert!(entitlement_ids.len() <= MAX_SUMMARY_ENTITLEMENTS);
        Ok(usage_by_day(&self.pool, entitlement_ids, from, to).await?)
    }
}
