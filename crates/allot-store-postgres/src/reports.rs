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
use deadpool_postgres::Pool;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use crate::entitlements::{filter_conditions, query_rows, FilterValues};
use crate::error::{Error, Res};
use crate::rows::{self, RECORD_COLS};
use crate::PostgresStore;

/// Records of `filter` meeting `extra`, whose parameters are numbered
/// after the filter's, then `tail` (ORDER BY, LIMIT) numbered after them.
async fn records(
    pool: &Pool,
    filter: &EntitlementFilter,
    extra: &(dyn Fn(usize) -> String + Sync),
    extra_args: &[&(dyn ToSql + Sync)],
    tail: &(dyn Fn(usize) -> String + Sync),
    tail_args: &[&(dyn ToSql + Sync)],
) -> Res<Vec<EntitlementRecord>> {
    let values = FilterValues::of(filter);
    let mut params: Vec<&(dyn ToSql + Sync)> = Vec::new();
    let mut conditions = filter_conditions(filter, &values, &mut params);
    conditions.push(extra(params.len()));
    params.extend_from_slice(extra_args);
    let tail = tail(params.len());
    params.extend_from_slice(tail_args);
    let sql = format!(
        "SELECT {RECORD_COLS} FROM entitlements e JOIN balances b ON b.entitlement_id = e.id \
         WHERE {} {tail}",
        conditions.join(" AND ")
    );
    query_rows(pool, &sql, &params, rows::record).await
}

/// Limited, and active by its dates on `$n+1`.
fn active_limited(n: usize) -> String {
    format!(
        "e.total_milli IS NOT NULL AND e.start_date <= ${} AND e.end_date >= ${}",
        n + 1,
        n + 1
    )
}

/// The parameters of `keys_sql` that it does not borrow from the query.
struct KeyArgs<'q> {
    values: FilterValues,
    threshold: i64,
    after: Option<(i32, i64, &'q str)>,
}

impl<'q> KeyArgs<'q> {
    fn of(q: &'q LimitQuery) -> Self {
        KeyArgs {
            values: FilterValues::of(&q.filter),
            threshold: q.threshold.saturating_mul(100),
            after: q
                .after
                .as_ref()
                .map(|k| (i32::from(k.state), k.order, k.id.as_str())),
        }
    }
}

/// `q`'s candidates as `k` (`urgency`), then the query of their keys
/// after `q.after` in order (`SELECT id, state, ord FROM k … ORDER BY`),
/// their parameters pushed on `params`.
fn keys_sql<'a>(
    q: &'a LimitQuery,
    args: &'a KeyArgs<'a>,
    params: &mut Vec<&'a (dyn ToSql + Sync)>,
) -> (String, String) {
    let mut conditions = filter_conditions(&q.filter, &args.values, params);
    conditions.push(active_limited(params.len()));
    params.push(&q.today);
    let n = params.len();
    params.push(&args.threshold);
    let mut keys = "SELECT id, state, ord FROM k".to_string();
    if let Some((state, order, id)) = &args.after {
        let n = params.len();
        keys.push_str(&format!(
            " WHERE (state, ord, id) > (${}, ${}::BIGINT, ${})",
            n + 1,
            n + 2,
            n + 3
        ));
        params.extend([state as &(dyn ToSql + Sync), order, id]);
    }
    keys.push_str(" ORDER BY state, ord, id");
    (urgency(&conditions, n + 1), keys)
}

fn urgency_key(r: &Row, at: usize) -> Res<UrgencyKey> {
    Ok(UrgencyKey {
        id: r.try_get(at)?,
        state: r.try_get::<_, i32>(at + 1)? as u8,
        order: r.try_get(at + 2)?,
    })
}

async fn approaching_limit(
    pool: &Pool,
    q: &LimitQuery,
) -> Res<Vec<(UrgencyKey, EntitlementRecord)>> {
    if q.limit == 0 {
        return Ok(Vec::new());
    }
    let args = KeyArgs::of(q);
    let limit = i64::from(q.limit);
    let mut params: Vec<&(dyn ToSql + Sync)> = Vec::new();
    let (candidates, keys) = keys_sql(q, &args, &mut params);
    params.push(&limit);
    // The keys first, then the records of the page only.
    let sql = format!(
        "{candidates}, p AS ({keys} LIMIT ${}) \
         SELECT {RECORD_COLS}, p.id, p.state, p.ord FROM p \
         JOIN entitlements e ON e.id = p.id JOIN balances b ON b.entitlement_id = e.id \
         ORDER BY p.state, p.ord, p.id",
        params.len()
    );
    query_rows(pool, &sql, &params, |r| {
        Ok((urgency_key(r, 12)?, rows::record(r)?))
    })
    .await
}

async fn urgency_keys(pool: &Pool, q: &LimitQuery) -> Res<Vec<UrgencyKey>> {
    let args = KeyArgs::of(q);
    let mut params: Vec<&(dyn ToSql + Sync)> = Vec::new();
    let (candidates, keys) = keys_sql(q, &args, &mut params);
    let sql = format!("{candidates} {keys}");
    query_rows(pool, &sql, &params, |r| urgency_key(r, 0)).await
}

async fn records_by_ids(pool: &Pool, ids: &[String]) -> Res<Vec<EntitlementRecord>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT {RECORD_COLS} FROM entitlements e JOIN balances b ON b.entitlement_id = e.id \
         WHERE e.id = ANY($1) ORDER BY e.id"
    );
    query_rows(pool, &sql, &[&ids], rows::record).await
}

/// The candidates of the approaching-limit report meeting `conditions`,
/// the threshold being `$threshold`, as `k`: id, state, order, and what
/// says whether their counters lag (period, dates, stored period index).
/// u: used + held; a: the allowance (total + carried).
fn urgency(conditions: &[String], threshold: usize) -> String {
    format!(
        "WITH s AS (SELECT e.id AS id, (b.used_milli + b.held_milli)::NUMERIC AS u, \
         (e.total_milli + b.carried_milli)::NUMERIC AS a, e.terms->>'period' AS period, \
         e.start_date AS start_date, e.end_date AS end_date, b.period_index AS period_index \
         FROM entitlements e JOIN balances b ON b.entitlement_id = e.id WHERE {}), \
         k AS (SELECT id, CASE WHEN u > a THEN 0 WHEN u = a THEN 1 ELSE 2 END AS state, \
         CASE WHEN a > 0 THEN -GREATEST(div(u * 10000, a), 0)::BIGINT \
         ELSE {NO_PERCENT}::BIGINT END AS ord, period, start_date, end_date, period_index \
         FROM s WHERE u >= a OR (a > 0 AND div(u * 10000, a) >= ${threshold}::BIGINT))",
        conditions.join(" AND ")
    )
}

fn period_at(r: &tokio_postgres::Row, i: usize) -> Res<Period> {
    let text: String = r.try_get(i)?;
    Period::parse(&text).ok_or_else(|| Error::data(format!("period {text:?}")))
}

async fn count_limit_states(pool: &Pool, q: &LimitQuery) -> Res<Vec<StateGroup>> {
    let values = FilterValues::of(&q.filter);
    let threshold = q.threshold.saturating_mul(100);
    let mut params: Vec<&(dyn ToSql + Sync)> = Vec::new();
    let mut conditions = filter_conditions(&q.filter, &values, &mut params);
    conditions.push(active_limited(params.len()));
    params.push(&q.today);
    params.push(&threshold);
    let sql = format!(
        "{} SELECT state, period, start_date, end_date, period_index, COUNT(*)::BIGINT FROM k \
         GROUP BY state, period, start_date, end_date, period_index",
        urgency(&conditions, params.len())
    );
    query_rows(pool, &sql, &params, |r| {
        Ok(StateGroup {
            state: r.try_get::<_, i32>(0)? as u8,
            period: period_at(r, 1)?,
            start_date: r.try_get(2)?,
            end_date: r.try_get(3)?,
            period_index: r.try_get(4)?,
            count: r.try_get::<_, i64>(5)? as u64,
        })
    })
    .await
}

/// Starts by `$n+1` and ends from `$n+1` to `$n+2`.
fn ending(n: usize) -> String {
    format!(
        "e.start_date <= ${a} AND e.end_date >= ${a} AND e.end_date <= ${b}",
        a = n + 1,
        b = n + 2
    )
}

async fn count_ending_between(
    pool: &Pool,
    filter: &EntitlementFilter,
    (from, to): (NaiveDate, NaiveDate),
) -> Res<u64> {
    let values = FilterValues::of(filter);
    let mut params: Vec<&(dyn ToSql + Sync)> = Vec::new();
    let mut conditions = filter_conditions(filter, &values, &mut params);
    conditions.push(ending(params.len()));
    params.extend([&from as &(dyn ToSql + Sync), &to]);
    let sql = format!(
        "SELECT COUNT(*)::BIGINT FROM entitlements e JOIN balances b ON b.entitlement_id = e.id \
         WHERE {}",
        conditions.join(" AND ")
    );
    let n = query_rows(pool, &sql, &params, |r| Ok(r.try_get::<_, i64>(0)?)).await?;
    Ok(n.first().copied().unwrap_or(0) as u64)
}

/// `closed_between`'s condition over `$n+1` (to), `$n+2` (from), `$n+3`
/// (today) and `$n+4` (28 days before today).
fn closed(n: usize) -> String {
    format!(
        "e.total_milli IS NOT NULL AND e.start_date <= ${} AND e.end_date >= ${} \
         AND (e.end_date < ${} OR (e.start_date <= ${} AND e.terms->>'period' <> 'none'))",
        n + 1,
        n + 2,
        n + 3,
        n + 4
    )
}

fn periods_since(today: NaiveDate) -> NaiveDate {
    today
        .checked_sub_days(Days::new(28))
        .unwrap_or(NaiveDate::MIN)
}

async fn count_closed_between(
    pool: &Pool,
    filter: &EntitlementFilter,
    (from, to, today): (NaiveDate, NaiveDate, NaiveDate),
) -> Res<Vec<TermGroup>> {
    let values = FilterValues::of(filter);
    let since = periods_since(today);
    let mut params: Vec<&(dyn ToSql + Sync)> = Vec::new();
    let mut conditions = filter_conditions(filter, &values, &mut params);
    conditions.push(closed(params.len()));
    conditions.push("e.total_milli > 0".into());
    params.extend([&to as &(dyn ToSql + Sync), &from, &today, &since]);
    let sql = format!(
        "SELECT e.terms->>'period' AS period, e.start_date, e.end_date, COUNT(*)::BIGINT \
         FROM entitlements e JOIN balances b ON b.entitlement_id = e.id WHERE {} \
         GROUP BY period, e.start_date, e.end_date",
        conditions.join(" AND ")
    );
    query_rows(pool, &sql, &params, |r| {
        Ok(TermGroup {
            period: period_at(r, 0)?,
            start_date: r.try_get(1)?,
            end_date: r.try_get(2)?,
            count: r.try_get::<_, i64>(3)? as u64,
        })
    })
    .await
}

async fn spent_periods(
    pool: &Pool,
    filter: &EntitlementFilter,
    (from, to, today): (NaiveDate, NaiveDate, NaiveDate),
) -> Res<Vec<(EntitlementRecord, i64)>> {
    let values = FilterValues::of(filter);
    let since = periods_since(today);
    let mut params: Vec<&(dyn ToSql + Sync)> = Vec::new();
    let mut conditions = filter_conditions(filter, &values, &mut params);
    conditions.push(closed(params.len()));
    conditions.push("e.total_milli > 0".into());
    params.extend([&to as &(dyn ToSql + Sync), &from, &today, &since]);
    // The ledger is summed for the candidates only (`c`), not as a whole.
    let sql = format!(
        "WITH c AS (SELECT e.id FROM entitlements e JOIN balances b ON b.entitlement_id = e.id \
         WHERE {}) \
         SELECT {RECORD_COLS}, l.period_index FROM entitlements e \
         JOIN balances b ON b.entitlement_id = e.id \
         JOIN (SELECT entitlement_id, period_index, SUM(quantity_milli) AS used FROM ledger \
         WHERE entitlement_id IN (SELECT id FROM c) \
         GROUP BY entitlement_id, period_index) l ON l.entitlement_id = e.id \
         WHERE e.id IN (SELECT id FROM c) AND l.used >= e.total_milli \
         ORDER BY e.id, l.period_index",
        conditions.join(" AND ")
    );
    query_rows(pool, &sql, &params, |r| {
        Ok((rows::record(r)?, r.try_get::<_, i64>(12)?))
    })
    .await
}

async fn held_near_limit(pool: &Pool, q: &LimitQuery) -> Res<Vec<EntitlementRecord>> {
    let threshold = q.threshold.min(100);
    records(
        pool,
        &q.filter,
        &|n| {
            format!(
                "{} AND b.held_milli::NUMERIC * 100 >= ${}::BIGINT * e.total_milli{}",
                active_limited(n),
                n + 2,
                // Implied by the held condition when the threshold is above
                // 0; the indexes of 0010 find these few.
                if threshold > 0 {
                    " AND e.id IN (SELECT entitlement_id FROM balances WHERE held_milli > 0 \
                     UNION ALL SELECT id FROM entitlements WHERE total_milli = 0)"
                } else {
                    ""
                }
            )
        },
        &[&q.today, &threshold],
        &|_| "ORDER BY e.id".into(),
        &[],
    )
    .await
}

async fn ending_between(
    pool: &Pool,
    filter: &EntitlementFilter,
    (from, to): (NaiveDate, NaiveDate),
    after: Option<(NaiveDate, String)>,
    limit: u32,
) -> Res<Vec<EntitlementRecord>> {
    let limit = i64::from(limit);
    // Without a cursor, before every row: ids are never empty.
    let (after_end, after_id) = after.unwrap_or((from, String::new()));
    records(
        pool,
        filter,
        &|n| {
            format!(
                "{} AND (e.end_date, e.id) > (${c}, ${d})",
                ending(n),
                c = n + 3,
                d = n + 4
            )
        },
        &[&from, &to, &after_end, &after_id],
        &|n| format!("ORDER BY e.end_date, e.id LIMIT ${}", n + 1),
        &[&limit],
    )
    .await
}

async fn closed_between(
    pool: &Pool,
    filter: &EntitlementFilter,
    (from, to, today): (NaiveDate, NaiveDate, NaiveDate),
    after: Option<String>,
    limit: u32,
) -> Res<Vec<EntitlementRecord>> {
    let limit = i64::from(limit);
    let periods_since = periods_since(today);
    let after = after.unwrap_or_default();
    records(
        pool,
        filter,
        &|n| format!("{} AND e.id > ${}", closed(n), n + 5),
        &[&to, &from, &today, &periods_since, &after],
        &|n| format!("ORDER BY e.id LIMIT ${}", n + 1),
        &[&limit],
    )
    .await
}

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

/// The rows of `sql` over the per-day sums of the ledger (`ledger_days`) of
/// `ids` from `from` to `to` (`$1` the ids, `$2`/`$3` the first and last
/// day); none when no id or no day is asked. At most a row a day an
/// entitlement, however much it used.
async fn ledger_over_days(
    pool: &Pool,
    sql: &str,
    ids: &[String],
    (from, to): (NaiveDate, NaiveDate),
) -> Res<Vec<Row>> {
    if ids.is_empty() || from > to {
        return Ok(Vec::new());
    }
    let client = pool.get().await?;
    let stmt = client.prepare_cached(sql).await?;
    Ok(client.query(&stmt, &[&ids, &from, &to]).await?)
}

async fn usage_between(
    pool: &Pool,
    ids: &[String],
    from: NaiveDate,
    to: NaiveDate,
) -> Res<Vec<SpanUsage>> {
    ledger_over_days(
        pool,
        "SELECT entitlement_id, SUM(used_milli)::BIGINT
         FROM ledger_days
         WHERE entitlement_id = ANY($1) AND day >= $2 AND day <= $3
         GROUP BY entitlement_id ORDER BY entitlement_id",
        ids,
        (from, to),
    )
    .await?
    .iter()
    .map(|r| {
        Ok(SpanUsage {
            entitlement_id: r.try_get(0)?,
            used: Quantity::from_milli(r.try_get(1)?),
        })
    })
    .collect()
}

async fn usage_by_day(
    pool: &Pool,
    ids: &[String],
    from: NaiveDate,
    to: NaiveDate,
) -> Res<Vec<DayUsage>> {
    ledger_over_days(
        pool,
        "SELECT entitlement_id, day, SUM(used_milli)::BIGINT
         FROM ledger_days
         WHERE entitlement_id = ANY($1) AND day >= $2 AND day <= $3
         GROUP BY entitlement_id, day ORDER BY entitlement_id, day",
        ids,
        (from, to),
    )
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
    async fn approaching_limit(
        &self,
        query: &LimitQuery,
    ) -> StoreResult<Vec<(UrgencyKey, EntitlementRecord)>> {
        Ok(approaching_limit(&self.pool, query).await?)
    }

    async fn held_near_limit(&self, query: &LimitQuery) -> StoreResult<Vec<EntitlementRecord>> {
        Ok(held_near_limit(&self.pool, query).await?)
    }

    async fn urgency_keys(&self, query: &LimitQuery) -> StoreResult<Vec<UrgencyKey>> {
        Ok(urgency_keys(&self.pool, query).await?)
    }

    async fn records_by_ids(&self, ids: &[String]) -> StoreResult<Vec<EntitlementRecord>> {
        assert!(ids.len() <= MAX_SUMMARY_ENTITLEMENTS);
        Ok(records_by_ids(&self.pool, ids).await?)
    }

    async fn ending_between(
        &self,
        filter: &EntitlementFilter,
        from: NaiveDate,
        to: NaiveDate,
        after: Option<(NaiveDate, String)>,
        limit: u32,
    ) -> StoreResult<Vec<EntitlementRecord>> {
        Ok(ending_between(&self.pool, filter, (from, to), after, limit).await?)
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
        Ok(closed_between(&self.pool, filter, (from, to, today), after, limit).await?)
    }

    async fn count_limit_states(&self, query: &LimitQuery) -> StoreResult<Vec<StateGroup>> {
        Ok(count_limit_states(&self.pool, query).await?)
    }

    async fn count_ending_between(
        &self,
        filter: &EntitlementFilter,
        from: NaiveDate,
        to: NaiveDate,
    ) -> StoreResult<u64> {
        Ok(count_ending_between(&self.pool, filter, (from, to)).await?)
    }

    async fn count_closed_between(
        &self,
        filter: &EntitlementFilter,
        from: NaiveDate,
        to: NaiveDate,
        today: NaiveDate,
    ) -> StoreResult<Vec<TermGroup>> {
        Ok(count_closed_between(&self.pool, filter, (from, to, today)).await?)
    }

    async fn spent_periods(
        &self,
        filter: &EntitlementFilter,
        from: NaiveDate,
        to: NaiveDate,
        today: NaiveDate,
    ) -> StoreResult<Vec<(EntitlementRecord, i64)>> {
        Ok(spent_periods(&self.pool, filter, (from, to, today)).await?)
    }

    async fn usage_by_period(&self, entitlement_ids: &[String]) -> StoreResult<Vec<PeriodUsage>> {
        assert!(entitlement_ids.len() <= MAX_SUMMARY_ENTITLEMENTS);
        Ok(usage_by_period(&self.pool, entitlement_ids).await?)
    }

    async fn usage_between(
        &self,
        entitlement_ids: &[String],
        from: NaiveDate,
        to: NaiveDate,
    ) -> StoreResult<Vec<SpanUsage>> {
        assert!(entitlement_ids.len() <= MAX_SUMMARY_ENTITLEMENTS);
        Ok(usage_between(&self.pool, entitlement_ids, from, to).await?)
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
