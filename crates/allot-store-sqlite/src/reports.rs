//! The ledger summaries reports read (`allot_store::reports::ReportStore`).

use allot_core::Quantity;
use allot_store::model::{EntitlementFilter, EntitlementRecord};
use allot_store::reports::{
    DayUsage, LimitQuery, PeriodUsage, ReportStore, SpanUsage, UrgencyKey,
    MAX_SUMMARY_ENTITLEMENTS, NO_PERCENT,
};
use allot_store::StoreResult;
use async_trait::async_trait;
use chrono::{Days, NaiveDate};
use rusqlite::types::Value;
use rusqlite::{params_from_iter, Connection};

use crate::cache::TermsCache;
use crate::convert::{all, day, placeholders};
use crate::entitlements::{filter_conditions, record, RECORD};
use crate::error::{corrupt, Res};
use crate::SqliteStore;

/// Records of `filter` meeting `extra` (with `extra_args`), then `tail`
/// (ORDER BY, LIMIT) with `tail_args`.
fn records(
    conn: &Connection,
    cache: &TermsCache,
    filter: &EntitlementFilter,
    extra: &[String],
    extra_args: Vec<Value>,
    tail: &str,
) -> Res<Vec<EntitlementRecord>> {
    let Some((mut conditions, mut args)) = filter_conditions(filter) else {
        return Ok(Vec::new());
    };
    conditions.extend(extra.iter().cloned());
    args.extend(extra_args);
    let sql = format!("{RECORD} WHERE {} {tail}", conditions.join(" AND "));
    all(
        &mut *conn.prepare_cached(&sql)?,
        params_from_iter(args),
        |r| record(r, cache),
    )
}

/// Limited, and active by its dates on `?`, `?` (today twice).
const ACTIVE_LIMITED: &str = "e.total_milli IS NOT NULL AND e.start_date <= ? AND e.end_date >= ?";

fn approaching_limit(
    conn: &Connection,
    cache: &TermsCache,
    q: &LimitQuery,
) -> Res<Vec<(UrgencyKey, EntitlementRecord)>> {
    let Some((mut conditions, mut args)) = filter_conditions(&q.filter) else {
        return Ok(Vec::new());
    };
    if q.limit == 0 {
        return Ok(Vec::new());
    }
    conditions.push(ACTIVE_LIMITED.into());
    args.extend([Value::Text(day(q.today)), Value::Text(day(q.today))]);
    // u: used + held; a: the allowance (total + carried).
    let mut sql = format!(
        "WITH s AS (SELECT e.id AS id, b.used_milli + b.held_milli AS u, \
         e.total_milli + b.carried_milli AS a \
         FROM entitlements e JOIN balances b ON b.entitlement_id = e.id WHERE {}), \
         k AS (SELECT id, CASE WHEN u > a THEN 0 WHEN u = a THEN 1 ELSE 2 END AS state, \
         CASE WHEN a > 0 THEN -MAX(CAST(u * 10000 / a AS INTEGER), 0) ELSE {NO_PERCENT} END AS ord \
         FROM s WHERE u >= a OR (a > 0 AND u * 10000 / a >= ?)) \
         SELECT id, state, ord FROM k",
        conditions.join(" AND ")
    );
    args.push(Value::Integer(q.threshold.saturating_mul(100)));
    if let Some(after) = &q.after {
        sql.push_str(" WHERE state > ? OR (state = ? AND (ord > ? OR (ord = ? AND id > ?)))");
        let (state, order) = (i64::from(after.state), after.order);
        args.extend([
            Value::Integer(state),
            Value::Integer(state),
            Value::Integer(order),
            Value::Integer(order),
            Value::Text(after.id.clone()),
        ]);
    }
    sql.push_str(" ORDER BY state, ord, id LIMIT ?");
    args.push(Value::Integer(i64::from(q.limit)));
    // The keys first (the allowance of every candidate), then the records
    // of the page only.
    let keys = all(
        &mut *conn.prepare_cached(&sql)?,
        params_from_iter(args),
        |r| {
            Ok(UrgencyKey {
                id: r.get(0)?,
                state: r.get::<_, i64>(1)? as u8,
                order: r.get(2)?,
            })
        },
    )?;
    let ids: Vec<String> = keys.iter().map(|k| k.id.clone()).collect();
    let mut found = by_ids(conn, cache, &ids)?;
    Ok(keys
        .into_iter()
        .filter_map(|k| {
            let r = found.remove(&k.id)?;
            Some((k, r))
        })
        .collect())
}

/// The records of `ids` (those that exist), by id.
fn by_ids(
    conn: &Connection,
    cache: &TermsCache,
    ids: &[String],
) -> Res<std::collections::HashMap<String, EntitlementRecord>> {
    if ids.is_empty() {
        return Ok(Default::default());
    }
    let sql = format!("{RECORD} WHERE e.id IN ({})", placeholders(ids.len()));
    Ok(all(
        &mut *conn.prepare_cached(&sql)?,
        params_from_iter(ids),
        |r| record(r, cache),
    )?
    .into_iter()
    .map(|r| (r.entitlement.id.clone(), r))
    .collect())
}

/// Holds something, or has no allotment (the indexes of 0010 find both):
/// implied by the held condition when the threshold is above 0.
const HOLDING_OR_NONE: &str = "e.id IN (SELECT entitlement_id FROM balances WHERE held_milli > 0 \
     UNION ALL SELECT id FROM entitlements WHERE total_milli = 0)";

fn held_near_limit(
    conn: &Connection,
    cache: &TermsCache,
    q: &LimitQuery,
) -> Res<Vec<EntitlementRecord>> {
    let threshold = q.threshold.min(100);
    let mut extra = vec![
        ACTIVE_LIMITED.to_string(),
        "b.held_milli * 100 >= ? * e.total_milli".into(),
    ];
    if threshold > 0 {
        extra.push(HOLDING_OR_NONE.into());
    }
    let args = vec![
        Value::Text(day(q.today)),
        Value::Text(day(q.today)),
        Value::Integer(threshold),
    ];
    records(conn, cache, &q.filter, &extra, args, "ORDER BY e.id")
}

fn ending_between(
    conn: &Connection,
    cache: &TermsCache,
    filter: &EntitlementFilter,
    (from, to): (NaiveDate, NaiveDate),
    after: Option<(NaiveDate, String)>,
    limit: u32,
) -> Res<Vec<EntitlementRecord>> {
    let mut extra = vec!["e.start_date <= ? AND e.end_date >= ? AND e.end_date <= ?".to_string()];
    let mut args = vec![
        Value::Text(day(from)),
        Value::Text(day(from)),
        Value::Text(day(to)),
    ];
    if let Some((end, id)) = after {
        extra.push("(e.end_date, e.id) > (?, ?)".into());
        args.extend([Value::Text(day(end)), Value::Text(id)]);
    }
    args.push(Value::Integer(i64::from(limit)));
    records(
        conn,
        cache,
        filter,
        &extra,
        args,
        "ORDER BY e.end_date, e.id LIMIT ?",
    )
}

fn closed_between(
    conn: &Connection,
    cache: &TermsCache,
    filter: &EntitlementFilter,
    (from, to, today): (NaiveDate, NaiveDate, NaiveDate),
    after: Option<String>,
    limit: u32,
) -> Res<Vec<EntitlementRecord>> {
    let periods_since = today
        .checked_sub_days(Days::new(28))
        .unwrap_or(NaiveDate::MIN);
    let mut extra = vec![
        "e.total_milli IS NOT NULL AND e.start_date <= ? AND e.end_date >= ? \
         AND (e.end_date < ? OR (e.start_date <= ? \
         AND json_extract(e.terms, '$.period') <> 'none'))"
            .to_string(),
    ];
    let mut args = vec![
        Value::Text(day(to)),
        Value::Text(day(from)),
        Value::Text(day(today)),
        Value::Text(day(periods_since)),
    ];
    if let Some(id) = after {
        extra.push("e.id > ?".into());
        args.push(Value::Text(id));
    }
    args.push(Value::Integer(i64::from(limit)));
    records(conn, cache, filter, &extra, args, "ORDER BY e.id LIMIT ?")
}

fn usage_by_period(conn: &Connection, ids: &[String]) -> Res<Vec<PeriodUsage>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT entitlement_id, period_index, SUM(quantity_milli) FROM ledger          WHERE entitlement_id IN ({}) GROUP BY entitlement_id, period_index          ORDER BY entitlement_id, period_index",
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

fn usage_between(
    conn: &Connection,
    ids: &[String],
    from: NaiveDate,
    to: NaiveDate,
) -> Res<Vec<SpanUsage>> {
    if ids.is_empty() || from > to {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT entitlement_id, SUM(quantity_milli) FROM ledger \
         WHERE entitlement_id IN ({}) AND created_at >= ? AND created_at < ? \
         GROUP BY entitlement_id ORDER BY entitlement_id",
        placeholders(ids.len())
    );
    let mut args: Vec<Value> = ids.iter().cloned().map(Value::Text).collect();
    args.push(Value::Text(day(from)));
    args.push(Value::Text(format!("{}T99", day(to))));
    all(
        &mut *conn.prepare_cached(&sql)?,
        params_from_iter(args),
        |r| {
            Ok(SpanUsage {
                entitlement_id: r.get(0)?,
                used: Quantity::from_milli(r.get(1)?),
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
        "SELECT entitlement_id, substr(created_at, 1, 10), SUM(quantity_milli) FROM ledger          WHERE entitlement_id IN ({}) AND created_at >= ? AND created_at < ?          GROUP BY entitlement_id, substr(created_at, 1, 10)          ORDER BY entitlement_id, substr(created_at, 1, 10)",
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
    async fn approaching_limit(
        &self,
        query: &LimitQuery,
    ) -> StoreResult<Vec<(UrgencyKey, EntitlementRecord)>> {
        let q = query.clone();
        self.read(move |c, cache| approaching_limit(c, cache, &q))
            .await
    }

    async fn held_near_limit(&self, query: &LimitQuery) -> StoreResult<Vec<EntitlementRecord>> {
        let q = query.clone();
        self.read(move |c, cache| held_near_limit(c, cache, &q))
            .await
    }

    async fn ending_between(
        &self,
        filter: &EntitlementFilter,
        from: NaiveDate,
        to: NaiveDate,
        after: Option<(NaiveDate, String)>,
        limit: u32,
    ) -> StoreResult<Vec<EntitlementRecord>> {
        let filter = filter.clone();
        self.read(move |c, cache| ending_between(c, cache, &filter, (from, to), after, limit))
            .await
    }

    async fn closed_between(
        &self,
        filter: &EntitlementFilter,
        from: NaiveDate,
        to: NaiveDate,
        today: NaiveDate,
        after: Option<String>,
        limit: u32,
    ) -> StoreResult<Vec<EntitlementRecord>> {
        let filter = filter.clone();
        self.read(move |c, cache| {
            closed_between(c, cache, &filter, (from, to, today), after, limit)
        })
        .await
    }

    async fn usage_by_period(&self, entitlement_ids: &[String]) -> StoreResult<Vec<PeriodUsage>> {
        assert!(entitlement_ids.len() <= MAX_SUMMARY_ENTITLEMENTS);
        let ids = entitlement_ids.to_vec();
        self.read(move |c, _| usage_by_period(c, &ids)).await
    }

    async fn usage_between(
        &self,
        entitlement_ids: &[String],
        from: NaiveDate,
        to: NaiveDate,
    ) -> StoreResult<Vec<SpanUsage>> {
        assert!(entitlement_ids.len() <= MAX_SUMMARY_ENTITLEMENTS);
        let ids = entitlement_ids.to_vec();
        self.read(move |c, _| usage_between(c, &ids, from, to))
            .await
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
