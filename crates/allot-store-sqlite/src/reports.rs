//! The ledger summaries reports read (`allot_store::reports::ReportStore`).

use allot_core::Quantity;
use allot_store::reports::{DayUsage, PeriodUsage, ReportStore, MAX_SUMMARY_ENTITLEMENTS};
use allot_store::StoreResult;
use async_trait::async_trait;
use chrono::NaiveDate;
use rusqlite::types::Value;
use rusqlite::{params_from_iter, Connection};

use crate::convert::{all, day, placeholders};
use crate::error::{corrupt, Res};
use crate::SqliteStore;

fn usage_by_period(conn: &Connection, ids: &[String]) -> Res<Vec<PeriodUsage>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT entitlement_id, period_index, SUM(quantity_milli) FROM ledger \
         WHERE entitlement_id IN ({}) GROUP BY entitlement_id, period_index \
         ORDER BY entitlement_id, period_index",
        placeholders(ids.len())
    );
    all(
        &mut *conn.prepare_cached(&sql)?,
        params_from_iter(ids),
        |r| {
            Ok(PeriodUsage {
                entitlement_id: r.get(0)?,
                period_index: r.get(1)?,
                used: Quantity::from_milli(r.get(2)?),
            })
        },
    )
}

fn usage_by_day(
    conn: &Connection,
    ids: &[String],
    from: NaiveDate,
    to: NaiveDate,
) -> Res<Vec<DayUsage>> {
    if ids.is_empty() || from > to {
        return Ok(Vec::new());
    }
    // Times are RFC 3339 UTC text: a day's entries sort from its date on,
    // and before its date followed by "T99" (hours never reach 99).
    let sql = format!(
        "SELECT entitlement_id, substr(created_at, 1, 10), SUM(quantity_milli) FROM ledger \
         WHERE entitlement_id IN ({}) AND created_at >= ? AND created_at < ? \
         GROUP BY entitlement_id, substr(created_at, 1, 10) \
         ORDER BY entitlement_id, substr(created_at, 1, 10)",
        placeholders(ids.len())
    );
    let mut args: Vec<Value> = ids.iter().cloned().map(Value::Text).collect();
    args.push(Value::Text(day(from)));
    args.push(Value::Text(format!("{}T99", day(to))));
    all(
        &mut *conn.prepare_cached(&sql)?,
        params_from_iter(args),
        |r| {
            let text = r.get_ref(1)?.as_str()?;
            Ok(DayUsage {
                entitlement_id: r.get(0)?,
                day: NaiveDate::parse_from_str(text, "%Y-%m-%d")
                    .map_err(|_| corrupt("ledger day", text))?,
                used: Quantity::from_milli(r.get(2)?),
            })
        },
    )
}

#[async_trait]
impl ReportStore for SqliteStore {
    async fn usage_by_period(&self, entitlement_ids: &[String]) -> StoreResult<Vec<PeriodUsage>> {
        assert!(entitlement_ids.len() <= MAX_SUMMARY_ENTITLEMENTS);
        let ids = entitlement_ids.to_vec();
        self.read(move |c, _| usage_by_period(c, &ids)).await
    }

    async fn usage_by_day(
        &self,
        entitlement_ids: &[String],
        from: NaiveDate,
        to: NaiveDate,
    ) -> StoreResult<Vec<DayUsage>> {
        assert!(entitlement_ids.len() <= MAX_SUMMARY_ENTITLEMENTS);
        let ids = entitlement_ids.to_vec();
        self.read(move |c, _| usage_by_day(c, &ids, from, to)).await
    }
}
