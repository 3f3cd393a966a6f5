//! The ledger summaries reports read (`allot_store::reports::ReportStore`).

use allot_core::entitlement::Period;
use allot_core::Quantity;
use allot_store::model::{EntitlementFilter, EntitlementRecord};
use allot_store::reports::{
    DayUsage, LimitQuery, PeriodUsage, ReportStore, SpanUsage, StateGroup, TermGroup, UrgencyKey,
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
    if q.limit == 0 {
        return Ok(Vec::new());
    }
    // The keys first (the allowance of every candidate), then the records
    // of the page only.
    let keys = urgency_keys(conn, q, Some(q.limit))?;
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

/// The keys of `q`'s candidates after `q.after`, in order, at most `limit`.
fn urgency_keys(conn: &Connection, q: &LimitQuery, limit: Option<u32>) -> Res<Vec<UrgencyKey>> {
    let Some((mut conditions, mut args)) = filter_conditions(&q.filter) else {
        return Ok(Vec::new());
    };
    conditions.push(ACTIVE_LIMITED.into());
    args.extend([Value::Text(day(q.today)), Value::Text(day(q.today))]);
    let mut sql = format!("{} SELECT id, state, ord FROM k", urgency(&conditions));
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
    sql.push_str(" ORDER BY state, ord, id");
    if let Some(limit) = limit {
        sql.push_str(" LIMIT ?");
        args.push(Value::Integer(i64::from(limit)));
    }
    all(
        &mut *conn.prepare_cached(&sql)?,
        params_from_iter(args),
        |r| {
            Ok(UrgencyKey {
                id: r.get(0)?,
                state: r.get::<_, i64>(1)? as u8,
                order: r.get(2)?,
            })
        },
    )
}

/// The candidates of the approaching-limit report meeting `conditions`
/// (then the threshold, `?`) as `k`: id, state, order, and what says
/// whether their counters lag (period, dates, stored period index).
/// u: used + held; a: the allowance (total + carried).
fn urgency(conditions: &[String]) -> String {
    format!(
        "WITH s AS (SELECT e.id AS id, b.used_milli + b.held_milli AS u, \
         e.total_milli + b.carried_milli AS a, json_extract(e.terms, '$.period') AS period, \
         e.start_date AS start_date, e.end_date AS end_date, b.period_index AS period_index \
         FROM entitlements e JOIN balances b ON b.entitlement_id = e.id WHERE {}), \
         k AS (SELECT id, CASE WHEN u > a THEN 0 WHEN u = a THEN 1 ELSE 2 END AS state, \
         CASE WHEN a > 0 THEN -MAX(CAST(u * 10000 / a AS INTEGER), 0) ELSE {NO_PERCENT} END AS ord, \
         period, start_date, end_date, period_index \
         FROM s WHERE u >= a OR (a > 0 AND u * 10000 / a >= ?))",
        conditions.join(" AND ")
    )
}

fn date_at(r: &rusqlite::Row, i: usize) -> Res<NaiveDate> {
    let text = r.get_ref(i)?.as_str()?;
    NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| corrupt("date", text))
}

fn period_at(r: &rusqlite::Row, i: usize) -> Res<Period> {
    let text = r.get_ref(i)?.as_str()?;
    Period::parse(text).ok_or_else(|| corrupt("period", text))
}

fn count_limit_states(conn: &Connection, q: &LimitQuery) -> Res<Vec<StateGroup>> {
    let Some((mut conditions, mut args)) = filter_conditions(&q.filter) else {
        return Ok(Vec::new());
    };
    conditions.push(ACTIVE_LIMITED.into());
    args.extend([Value::Text(day(q.today)), Value::Text(day(q.today))]);
    args.push(Value::Integer(q.threshold.saturating_mul(100)));
    let sql = format!(
        "{} SELECT state, period, start_date, end_date, period_index, COUNT(*) FROM k \
         GROUP BY state, period, start_date, end_date, period_index",
        urgency(&conditions)
    );
    all(
        &mut *conn.prepare_cached(&sql)?,
        params_from_iter(args),
        |r| {
            Ok(StateGroup {
                state: r.get::<_, i64>(0)? as u8,
                period: period_at(r, 1)?,
                start_date: date_at(r, 2)?,
                end_date: date_at(r, 3)?,
                period_index: r.get(4)?,
                count: r.get::<_, i64>(5)? as u64,
            })
        },
    )
}

fn count_ending_between(
    conn: &Connection,
    filter: &EntitlementFilter,
    (from, to): (NaiveDate, NaiveDate),
) -> Res<u64> {
    let Some((mut conditions, mut args)) = filter_conditions(filter) else {
        return Ok(0);
    };
    conditions.push(ENDING_BETWEEN.into());
    args.extend([
        Value::Text(day(from)),
        Value::Text(day(from)),
        Value::Text(day(to)),
    ]);
    let sql = format!(
        "SELECT COUNT(*) FROM entitlements e JOIN balances b ON b.entitlement_id = e.id \
         WHERE {}",
        conditions.join(" AND ")
    );
    let n: i64 = conn
        .prepare_cached(&sql)?
        .query_row(params_from_iter(args), |r| r.get(0))?;
    Ok(n as u64)
}

/// Starts by `from` (`?`) and ends from `from` to `to` (`?`, `?`).
const ENDING_BETWEEN: &str = "e.start_date <= ? AND e.end_date >= ? AND e.end_date <= ?";

/// `closed_between`'s condition, with `closed_args`' arguments.
const CLOSED_BETWEEN: &str = "e.total_milli IS NOT NULL AND e.start_date <= ? AND e.end_date >= ? \
     AND (e.end_date < ? OR (e.start_date <= ? \
     AND json_extract(e.terms, '$.period') <> 'none'))";

fn closed_args(from: NaiveDate, to: NaiveDate, today: NaiveDate) -> Vec<Value> {
    let periods_since = today
        .checked_sub_days(Days::new(28))
        .unwrap_or(NaiveDate::MIN);
    vec![
        Value::Text(day(to)),
        Value::Text(day(from)),
        Value::Text(day(today)),
        Value::Text(day(periods_since)),
    ]
}

fn count_closed_between(
    conn: &Connection,
    filter: &EntitlementFilter,
    (from, to, today): (NaiveDate, NaiveDate, NaiveDate),
) -> Res<Vec<TermGroup>> {
    let Some((mut conditions, mut args)) = filter_conditions(filter) else {
        return Ok(Vec::new());
    };
    conditions.push(CLOSED_BETWEEN.into());
    conditions.push("e.total_milli > 0".into());
    args.extend(closed_args(from, to, today));
    let sql = format!(
        "SELECT json_extract(e.terms, '$.period') AS period, e.start_date, e.end_date, COUNT(*) \
         FROM entitlements e JOIN balances b ON b.entitlement_id = e.id WHERE {} \
         GROUP BY period, e.start_date, e.end_date",
        conditions.join(" AND ")
    );
    all(
        &mut *conn.prepare_cached(&sql)?,
        params_from_iter(args),
        |r| {
            Ok(TermGroup {
                period: period_at(r, 0)?,
                start_date: date_at(r, 1)?,
                end_date: date_at(r, 2)?,
                count: r.get::<_, i64>(3)? as u64,
            })
        },
    )
}

fn spent_periods(
    conn: &Connection,
    cache: &TermsCache,
    filter: &EntitlementFilter,
    (from, to, today): (NaiveDate, NaiveDate, NaiveDate),
) -> Res<Vec<(EntitlementRecord, i64)>> {
    let Some((mut conditions, mut args)) = filter_conditions(filter) else {
        return Ok(Vec::new());
    };
    conditions.push(CLOSED_BETWEEN.into());
    conditions.push("e.total_milli > 0".into());
    args.extend(closed_args(from, to, today));
    // The record's columns, then the period's index.
    let (columns, joined) = RECORD
        .split_once(" FROM entitlements e ")
        .expect("RECORD reads entitlements e");
    // The ledger is summed for the candidates only (`c`), not as a whole:
    // summing every entitlement's periods cost the overview most of its time.
    let sql = format!(
        "WITH c AS (SELECT e.id FROM entitlements e JOIN balances b ON b.entitlement_id = e.id \
         WHERE {}) \
         {columns}, l.period_index FROM entitlements e {joined} \
         JOIN (SELECT entitlement_id, period_index, SUM(quantity_milli) AS used FROM ledger \
         WHERE entitlement_id IN (SELECT id FROM c) \
         GROUP BY entitlement_id, period_index) l ON l.entitlement_id = e.id \
         WHERE e.id IN (SELECT id FROM c) AND l.used >= e.total_milli \
         ORDER BY e.id, l.period_index",
        conditions.join(" AND ")
    );
    all(
        &mut *conn.prepare_cached(&sql)?,
        params_from_iter(args),
        |r| Ok((record(r, cache)?, r.get(12)?)),
    )
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
    let mut extra = vec![ENDING_BETWEEN.to_string()];
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
    let mut extra = vec![CLOSED_BETWEEN.to_string()];
    let mut args = closed_args(from, to, today);
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

/// `SELECT {columns}` over the per-day sums of the ledger (`ledger_days`)
/// of `ids` from `from` to `to`, both included, grouped and ordered by
/// `group`; none when no id or no day is asked. At most a row a day an
/// entitlement, however much it used.
fn ledger_over_days<T>(
    conn: &Connection,
    (columns, group): (&str, &str),
    ids: &[String],
    (from, to): (NaiveDate, NaiveDate),
    row: impl Fn(&rusqlite::Row) -> Res<T>,
) -> Res<Vec<T>> {
    if ids.is_empty() || from > to {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT {columns} FROM ledger_days \
         WHERE entitlement_id IN ({}) AND day >= ? AND day <= ? \
         GROUP BY {group} ORDER BY {group}",
        placeholders(ids.len())
    );
    let mut args: Vec<Value> = ids.iter().cloned().map(Value::Text).collect();
    args.push(Value::Text(day(from)));
    args.push(Value::Text(day(to)));
    all(
        &mut *conn.prepare_cached(&sql)?,
        params_from_iter(args),
        row,
    )
}

fn usage_between(
    conn: &Connection,
    ids: &[String],
    from: NaiveDate,
    to: NaiveDate,
) -> Res<Vec<SpanUsage>> {
    ledger_over_days(
        conn,
        ("entitlement_id, SUM(used_milli)", "entitlement_id"),
        ids,
        (from, to),
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
    ledger_over_days(
        conn,
        (
            "entitlement_id, day, SUM(used_milli)",
            "entitlement_id, day",
        ),
        ids,
        (from, to),
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

    async fn urgency_keys(&self, query: &LimitQuery) -> StoreResult<Vec<UrgencyKey>> {
        let q = query.clone();
        self.read(move |c, _| urgency_keys(c, &q, None)).await
    }

    async fn records_by_ids(&self, ids: &[String]) -> StoreResult<Vec<EntitlementRecord>> {
        assert!(ids.len() <= MAX_SUMMARY_ENTITLEMENTS);
        let ids = ids.to_vec();
        self.read(move |c, cache| {
            let mut found: Vec<EntitlementRecord> = by_ids(c, cache, &ids)?.into_values().collect();
            found.sort_by(|a, b| a.entitlement.id.cmp(&b.entitlement.id));
            Ok(found)
        })
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

    async fn count_limit_states(&self, query: &LimitQuery) -> StoreResult<Vec<StateGroup>> {
        let q = query.clone();
        self.read(move |c, _| count_limit_states(c, &q)).await
    }

    async fn count_ending_between(
        &self,
        filter: &EntitlementFilter,
        from: NaiveDate,
        to: NaiveDate,
    ) -> StoreResult<u64> {
        let filter = filter.clone();
        self.read(move |c, _| count_ending_between(c, &filter, (from, to)))
            .await
    }

    async fn count_closed_between(
        &self,
        filter: &EntitlementFilter,
        from: NaiveDate,
        to: NaiveDate,
        today: NaiveDate,
    ) -> StoreResult<Vec<TermGroup>> {
        let filter = filter.clone();
        self.read(move |c, _| count_closed_between(c, &filter, (from, to, today)))
            .await
    }

    async fn spent_periods(
        &self,
        filter: &EntitlementFilter,
        from: NaiveDate,
        to: NaiveDate,
        today: NaiveDate,
    ) -> StoreResult<Vec<(EntitlementRecord, i64)>> {
        let filter = filter.clone();
        self.read(move |c, cache| spent_periods(c, cache, &filter, (from, to, today)))
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
        let read = move |c: &Connection, _: &TermsCache| usage_between(c, &ids, from, to);
        // One entitlement's window (a balance's forecast) is at most a row
        // a day: a point read. A page's windows go to the pool.
        if entitlement_ids.len() == 1 {
            self.point_read(read).await
        } else {
            self.read(read).await
        }
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
