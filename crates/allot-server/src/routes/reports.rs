//! Reports: consumption, approaching the limit, expiring, unused at period
//! end, forecast and usage over time. Each is a page of flat rows naming
//! their entitlement, as JSON or CSV, confined to a customer's account.

use std::collections::{BTreeMap, HashMap};

use allot_core::balance::{balance, counters_today, Balance};
use allot_core::entitlement::Status;
use allot_core::forecast::{forecast, Forecast, Pace, DEFAULT_WINDOW_DAYS, MAX_WINDOW_DAYS};
use allot_core::report::{
    closed_periods, limit_state, percent_used, periods_in_term, Bucket, LimitState,
};
use allot_core::Quantity;
use allot_store::ids::{EntitlementId, TypedId};
use allot_store::model::EntitlementRecord;
use allot_store::reports::{LimitQuery, UrgencyKey, MAX_SUMMARY_ENTITLEMENTS, NO_PERCENT};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::Extension;
use chrono::{Days, NaiveDate};

use crate::auth::{Permission, Principal};
use crate::csv_response::{respond, streamed, Format, RowSink};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::export::WholeList;
use crate::extract::Query;
use crate::report_rows::*;
use crate::reporting::{foreign_cursor, keyed_page, IdOrder, Pager, Position, Scope, Source};
use crate::routes::entitlements::visible_entitlement;
use crate::state::AppState;
use crate::views::Listing;

/// The longest span of days a report window may cover (ten years).
pub const MAX_SPAN_DAYS: i64 = 3660;

fn ids(batch: &[EntitlementRecord]) -> Vec<String> {
    batch.iter().map(|r| r.entitlement.id.clone()).collect()
}

/// A whole number parameter within bounds, or its default.
pub(crate) fn bounded(
    query: &Query,
    name: &str,
    default: u32,
    min: u32,
    max: u32,
) -> ApiResult<u32> {
    match query.get(name) {
        None => Ok(default),
        Some(v) => v
            .parse::<u32>()
            .ok()
            .filter(|n| (min..=max).contains(n))
            .ok_or_else(|| {
                ApiError::field(name, format!("must be a whole number from {min} to {max}"))
            }),
    }
}

/// A day of the years 1900 to 9999, as entitlement dates are (the
/// document states it with a pattern).
fn date(query: &Query, name: &str) -> ApiResult<Option<NaiveDate>> {
    use chrono::Datelike;
    query
        .get(name)
        .map(|v| {
            NaiveDate::parse_from_str(v, "%Y-%m-%d")
                .ok()
                .filter(|d| (1900..=9999).contains(&d.year()))
                .ok_or_else(|| {
                    ApiError::field(
                        name,
                        "must be a date (YYYY-MM-DD) of the years 1900 to 9999",
                    )
                })
        })
        .transpose()
}

/// `from` and `to` (both included), `to` defaulting to today and `from`
/// to `default_days` before it.
pub(crate) fn span(
    query: &Query,
    today: NaiveDate,
    default_days: u64,
) -> ApiResult<(NaiveDate, NaiveDate)> {
    let to = date(query, "to")?.unwrap_or(today);
    let from = match date(query, "from")? {
        Some(from) => from,
        None => to
            .checked_sub_days(Days::new(default_days))
            .unwrap_or(NaiveDate::MIN),
    };
    if from > to {
        return Err(ApiError::field("from", "must not be after to"));
    }
    if (to - from).num_days() > MAX_SPAN_DAYS {
        return Err(ApiError::field(
            "from",
            format!("must be at most {MAX_SPAN_DAYS} days before to"),
        ));
    }
    Ok((from, to))
}

pub(crate) fn start(
    principal: &Principal,
    query: &Query,
    headers: &HeaderMap,
) -> ApiResult<Format> {
    principal.require(Permission::Read)?;
    Format::of(query, headers)
}

pub(crate) fn balance_today(r: &EntitlementRecord, today: NaiveDate) -> Balance {
    balance(&r.entitlement, &r.counters, today)
}

#[utoipa::path(get, path = "/v1/reports/consumption", operation_id = "report_consumption", tag = "reports",
    params(crate::reporting::ScopeParams, crate::reporting::StatusParam, crate::reporting::FormatParam, crate::extract::PageParams),
    responses((status = 200, description = "A row per entitlement (`channel` null) and per channel, in entitlement id order; `text/csv` with the same rows.", content((Listing<ConsumptionRow> = "application/json"), (String = "text/csv")), headers(("next-cursor" = String, description = "On a CSV answer: the cursor of the next page (absent on the last)."))),
        (status = 422, body = ErrorBody)))]
pub async fn consumption(
    State(state): State<AppState>,
    principal: Principal,
    query: Query,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let format = start(&principal, &query, &headers)?;
    let page = query.page()?;
    let scope = Scope::parse(&query, &principal, true)?;
    let today = state.clock.today();
    let mut run = IdOrder::start(&state, scope, &page);
    while let Some(batch) = run.next_batch().await? {
        let mut term_used: HashMap<String, Quantity> = HashMap::new();
        for u in state.store.usage_by_period(&ids(&batch)).await? {
            *term_used.entry(u.entitlement_id).or_default() += u.used;
        }
        for r in &batch {
            let b = balance_today(r, today);
            let term_total = b.total.and_then(|t| {
                t.milli()
                    .checked_mul(periods_in_term(&r.entitlement))
                    .map(Quantity::from_milli)
            });
            let used = term_used
                .get(&r.entitlement.id)
                .copied()
                .unwrap_or_default();
            for (rank, row) in consumption_rows(r, &b, today, term_total, used)
                .into_iter()
                .enumerate()
            {
                run.push(Position::new(&r.entitlement.id, rank as u32), row);
            }
        }
    }
    respond(format, run.finish(|row| row))
}

#[utoipa::path(get, path = "/v1/reports/approaching-limit", operation_id = "report_approaching_limit", tag = "reports",
    params(("threshold" = Option<u32>, Query, description = "Percent used at or above which an entitlement is listed; 80 when absent.", minimum = 0, maximum = 1000),
        crate::reporting::ScopeParams, crate::reporting::FormatParam, crate::extract::PageParams),
    responses((status = 200, description = "Active limited entitlements in overage, exhausted, or at or above the threshold: most urgent first (overage, exhausted, then by percent used).", content((Listing<LimitRow> = "application/json"), (String = "text/csv")), headers(("next-cursor" = String, description = "On a CSV answer: the cursor of the next page (absent on the last)."))),
        (status = 422, body = ErrorBody)))]
pub async fn approaching_limit(
    State(state): State<AppState>,
    principal: Principal,
    whole: Option<Extension<WholeList>>,
    query: Query,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let format = start(&principal, &query, &headers)?;
    let page = query.page()?;
    let percent = i64::from(bounded(&query, "threshold", 80, 0, 1000)?);
    let urgency = Urgency {
        scope: Scope::parse(&query, &principal, false)?.by_default(&[Status::Active]),
        today: state.clock.today(),
        threshold: Quantity::whole(percent),
    };
    let after = page.after.as_deref().map(urgency_cursor).transpose()?;
    let limit = page.limit as usize;
    let mut read = LimitQuery {
        filter: urgency.scope.store_filter(),
        today: urgency.today,
        threshold: percent,
        after: after.clone(),
        limit: page.limit + 1,
    };
    let mut rows = Vec::new();
    if !urgency.scope.matches_nothing() {
        for r in state.store.held_near_limit(&read).await? {
            if urgency.stale(&r) {
                rows.extend(
                    urgency
                        .listed(&r)
                        .filter(|(k, _)| after.as_ref().is_none_or(|a| k > a)),
                );
            }
        }
        if whole.is_some() && format == Format::Csv {
            rows.sort_by(|a, b| a.0.cmp(&b.0));
            let keys = state.store.urgency_keys(&read).await?;
            return Ok(streamed(move |sink| {
                urgency.export(state, keys, rows, sink)
            }));
        }
        let mut fresh = 0;
        loop {
            let batch = state.store.approaching_limit(&read).await?;
            let last = batch.len() < read.limit as usize;
            for (key, r) in batch {
                read.after = Some(key);
                if let Some(row) = urgency.listed(&r).filter(|_| !urgency.stale(&r)) {
                    rows.push(row);
                    fresh += 1;
                }
            }
            if last || fresh > limit {
                break;
            }
        }
    }
    let page = keyed_page(rows, limit, |k| format!("{}~{}~{}", k.state, k.order, k.id));
    respond(format, page)
}

/// What decides the approaching-limit report's rows.
struct Urgency {
    scope: Scope,
    today: NaiveDate,
    threshold: Quantity,
}

impl Urgency {
    /// The row of an entitlement the report lists, with its place.
    fn listed(&self, r: &EntitlementRecord) -> Option<(UrgencyKey, LimitRow)> {
        if !self.scope.keeps(r, self.today) {
            return None;
        }
        let b = balance_today(r, self.today);
        let standing = limit_state(b.remaining, percent_used(&b), self.threshold);
        if standing == LimitState::Below {
            return None;
        }
        let row = limit_row(r, &b, standing)?;
        let key = UrgencyKey {
            state: standing as u8,
            order: row
                .percent_used
                .map_or(NO_PERCENT, |p| -(p.milli() / 10).max(0)),
            id: r.entitlement.id.clone(),
        };
        Some((key, row))
    }

    /// A period that began after the stored counters: the store's key is
    /// that of the period before, so these come from their own read
    /// (`held_near_limit`), rolled forward here.
    fn stale(&self, r: &EntitlementRecord) -> bool {
        counters_today(&r.entitlement, &r.counters, self.today)
            .1
            .is_some()
    }

    /// The whole list after the cursor: the store's `keys` in order (one
    /// sort), their records read a chunk at a time, with the `stale` rows
    /// (sorted) merged in at their places.
    async fn export(
        self,
        state: AppState,
        keys: Vec<UrgencyKey>,
        stale: Vec<(UrgencyKey, LimitRow)>,
        sink: RowSink<LimitRow>,
    ) -> ApiResult<()> {
        let mut stale = stale.into_iter().peekable();
        for chunk in keys.chunks(MAX_SUMMARY_ENTITLEMENTS) {
            let ids: Vec<String> = chunk.iter().map(|k| k.id.clone()).collect();
            let records = state.store.records_by_ids(&ids).await?;
            let mut out = Vec::with_capacity(chunk.len());
            for k in chunk {
                let Ok(at) = records.binary_search_by(|r| r.entitlement.id.cmp(&k.id)) else {
                    continue;
                };
                let r = &records[at];
                if self.stale(r) {
                    continue;
                }
                if let Some((key, row)) = self.listed(r) {
                    while let Some((_, before)) = stale.next_if(|(s, _)| *s < key) {
                        out.push(before);
                    }
                    out.push(row);
                }
            }
            if !sink.send(&out).await? {
                return Ok(());
            }
        }
        let rest: Vec<LimitRow> = stale.map(|(_, row)| row).collect();
        sink.send(&rest).await?;
        Ok(())
    }
}

/// The place a cursor of the approaching-limit report names.
fn urgency_cursor(text: &str) -> ApiResult<UrgencyKey> {
    let mut parts = text.splitn(3, '~');
    let (Some(state), Some(order), Some(id)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(foreign_cursor());
    };
    Ok(UrgencyKey {
        state: state.parse().map_err(|_| foreign_cursor())?,
        order: order.parse().map_err(|_| foreign_cursor())?,
        id: id.to_string(),
    })
}

#[utoipa::path(get, path = "/v1/reports/expiring", operation_id = "report_expiring", tag = "reports",
    params(("within_days" = Option<u32>, Query, description = "Ending from today to this many days ahead; 30 when absent.", minimum = 0, maximum = 3660),
        crate::reporting::ScopeParams, crate::reporting::FormatParam, crate::extract::PageParams),
    responses((status = 200, description = "Active entitlements ending soonest first, with what is still unused in the current period.", content((Listing<ExpiringRow> = "application/json"), (String = "text/csv")), headers(("next-cursor" = String, description = "On a CSV answer: the cursor of the next page (absent on the last)."))),
        (status = 422, body = ErrorBody)))]
pub async fn expiring(
    State(state): State<AppState>,
    principal: Principal,
    query: Query,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let format = start(&principal, &query, &headers)?;
    let page = query.page()?;
    let within = bounded(&query, "within_days", 30, 0, MAX_SPAN_DAYS as u32)?;
    let scope = Scope::parse(&query, &principal, false)?.by_default(&[Status::Active]);
    let today = state.clock.today();
    let last = today
        .checked_add_days(Days::new(u64::from(within)))
        .unwrap_or(NaiveDate::MAX);
    let mut after = match page.after.as_deref() {
        None => None,
        Some(text) => {
            let (end, id) = text.split_once('~').ok_or_else(foreign_cursor)?;
            let end = NaiveDate::parse_from_str(end, "%Y-%m-%d").map_err(|_| foreign_cursor())?;
            Some((end, id.to_string()))
        }
    };
    let limit = page.limit as usize;
    let filter = scope.store_filter();
    let mut rows = Vec::new();
    while !scope.matches_nothing() && rows.len() <= limit {
        let batch = state
            .store
            .ending_between(&filter, today, last, after.clone(), page.limit + 1)
            .await?;
        let done = batch.len() <= limit;
        for r in batch {
            let key = (r.entitlement.terms.end_date, r.entitlement.id.clone());
            if scope.keeps(&r, today) {
                rows.push((
                    key.clone(),
                    expiring_row(&r, &balance_today(&r, today), today),
                ));
            }
            after = Some(key);
        }
        if done {
            break;
        }
    }
    respond(
        format,
        keyed_page(rows, limit, |(end, id)| format!("{end}~{id}")),
    )
}

#[utoipa::path(get, path = "/v1/reports/unused", operation_id = "report_unused", tag = "reports",
    params(("from" = Option<NaiveDate>, Query, pattern = "^(?:19[0-9]{2}|[2-9][0-9]{3})-", description = "Periods ending on or after this day; a year before `to` when absent."),
        ("to" = Option<NaiveDate>, Query, pattern = "^(?:19[0-9]{2}|[2-9][0-9]{3})-", description = "Periods ending on or before this day; today when absent."),
        crate::reporting::ScopeParams, crate::reporting::FormatParam, crate::extract::PageParams),
    responses((status = 200, description = "Each closed period (the term, without periods) of active and expired limited entitlements ending in the window: total, what rolled in, used, unused. Computed from the ledger.", content((Listing<UnusedRow> = "application/json"), (String = "text/csv")), headers(("next-cursor" = String, description = "On a CSV answer: the cursor of the next page (absent on the last)."))),
        (status = 422, body = ErrorBody)))]
pub async fn unused(
    State(state): State<AppState>,
    principal: Principal,
    query: Query,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let format = start(&principal, &query, &headers)?;
    let page = query.page()?;
    let today = state.clock.today();
    let (from, to) = span(&query, today, 365)?;
    let scope =
        Scope::parse(&query, &principal, false)?.by_default(&[Status::Active, Status::Expired]);
    let source = Source::ClosedBetween { from, to, today };
    let mut run = IdOrder::start_of(&state, scope, &page, source);
    while let Some(batch) = run.next_batch().await? {
        for (r, periods) in closed_in(&state, &batch, today).await? {
            for p in periods
                .iter()
                .filter(|p| from <= p.window.end && p.window.end <= to)
            {
                run.push(
                    Position::new(&r.entitlement.id, p.window.index as u32),
                    unused_row(r, p),
                );
            }
        }
    }
    respond(format, run.finish(|row| row))
}

/// The closed periods of each limited entitlement of a batch.
pub(crate) async fn closed_in<'r>(
    state: &AppState,
    batch: &'r [EntitlementRecord],
    today: NaiveDate,
) -> ApiResult<Vec<(&'r EntitlementRecord, Vec<allot_core::report::ClosedPeriod>)>> {
    let limited: Vec<&EntitlementRecord> = batch
        .iter()
        .filter(|r| r.entitlement.terms.total.is_some())
        .collect();
    let ids: Vec<String> = limited.iter().map(|r| r.entitlement.id.clone()).collect();
    let mut used: HashMap<(String, i64), Quantity> = HashMap::new();
    for u in state.store.usage_by_period(&ids).await? {
        used.insert((u.entitlement_id, u.period_index), u.used);
    }
    Ok(limited
        .into_iter()
        .map(|r| {
            let id = r.entitlement.id.clone();
            let used_in = |index| used.get(&(id.clone(), index)).copied().unwrap_or_default();
            (r, closed_periods(&r.entitlement, today, used_in))
        })
        .collect())
}

/// The forecast of each entitlement of a batch, over `window_days`.
pub async fn forecasts(
    state: &AppState,
    batch: &[EntitlementRecord],
    window_days: u32,
    today: NaiveDate,
) -> ApiResult<Vec<(Option<Quantity>, Forecast)>> {
    let window_start = Pace {
        today,
        window_days,
        term_start: today,
        horizon: today,
        used_in_window: Quantity::ZERO,
        remaining: None,
    }
    .window_start();
    let used: HashMap<String, Quantity> = state
        .store
        .usage_between(&ids(batch), window_start, today)
        .await?
        .into_iter()
        .map(|u| (u.entitlement_id, u.used))
        .collect();
    Ok(batch
        .iter()
        .map(|r| {
            let b = balance_today(r, today);
            let pace = Pace {
                today,
                window_days,
                term_start: r.entitlement.terms.start_date,
                horizon: b.period.end,
                used_in_window: used.get(&r.entitlement.id).copied().unwrap_or_default(),
                remaining: b.remaining,
            };
            (b.remaining, forecast(&pace))
        })
        .collect())
}

/// `?window_days=`, 1 to `MAX_WINDOW_DAYS`.
pub fn window_days(query: &Query) -> ApiResult<u32> {
    bounded(
        query,
        "window_days",
        DEFAULT_WINDOW_DAYS,
        1,
        MAX_WINDOW_DAYS,
    )
}

#[utoipa::path(get, path = "/v1/reports/forecast", operation_id = "report_forecast", tag = "reports",
    params(("window_days" = Option<u32>, Query, description = "The trailing window of the burn rate, in days; 30 when absent.", minimum = 1, maximum = 366),
        crate::reporting::ScopeParams, crate::reporting::FormatParam, crate::extract::PageParams),
    responses((status = 200, description = "Burn rate and projected exhaustion of active entitlements, in entitlement id order.", content((Listing<ForecastRow> = "application/json"), (String = "text/csv")), headers(("next-cursor" = String, description = "On a CSV answer: the cursor of the next page (absent on the last)."))),
        (status = 422, body = ErrorBody)))]
pub async fn forecast_report(
    State(state): State<AppState>,
    principal: Principal,
    query: Query,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let format = start(&principal, &query, &headers)?;
    let page = query.page()?;
    let window = window_days(&query)?;
    let scope = Scope::parse(&query, &principal, false)?.by_default(&[Status::Active]);
    let today = state.clock.today();
    let mut run = IdOrder::start(&state, scope, &page);
    while let Some(batch) = run.next_batch().await? {
        let projected = forecasts(&state, &batch, window, today).await?;
        for (r, (remaining, f)) in batch.iter().zip(projected) {
            run.push(
                Position::new(&r.entitlement.id, 0),
                forecast_row(r, remaining, &f),
            );
        }
    }
    respond(format, run.finish(|row| row))
}

#[utoipa::path(get, path = "/v1/reports/usage-over-time", operation_id = "report_usage_over_time", tag = "reports",
    params(("entitlement_id" = Option<String>, Query, description = "One entitlement's series; this or `account_id` is required."),
        ("account_id" = Option<String>, Query, description = "A series per entitlement of the account."),
        ("bucket" = Option<String>, Query, description = "day, week (ISO, from Monday) or month; day when absent.", pattern = "^(day|week|month)$"),
        ("from" = Option<NaiveDate>, Query, pattern = "^(?:19[0-9]{2}|[2-9][0-9]{3})-", description = "First day; 29 days before `to` when absent."),
        ("to" = Option<NaiveDate>, Query, pattern = "^(?:19[0-9]{2}|[2-9][0-9]{3})-", description = "Last day; today when absent."),
        crate::reporting::FormatParam, crate::extract::PageParams),
    responses((status = 200, description = "Net use per bucket, every bucket overlapping the days asked (zero when nothing was used), by entitlement then bucket.", content((Listing<UsagePointRow> = "application/json"), (String = "text/csv")), headers(("next-cursor" = String, description = "On a CSV answer: the cursor of the next page (absent on the last)."))),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn usage_over_time(
    State(state): State<AppState>,
    principal: Principal,
    query: Query,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let format = start(&principal, &query, &headers)?;
    let page = query.page()?;
    let bucket = match query.get("bucket") {
        None => Bucket::Day,
        Some(b) => Bucket::parse(b)
            .ok_or_else(|| ApiError::field("bucket", "must be day, week or month"))?,
    };
    let today = state.clock.today();
    let (from, to) = span(&query, today, 29)?;
    let (first, last) = (bucket.start(from), bucket.end(to));
    let mut pager = Pager::new(&page);
    let series = |pager: &mut Pager<UsagePointRow>,
                  r: &EntitlementRecord,
                  used: &BTreeMap<NaiveDate, Quantity>| {
        let mut at = first;
        let mut rank = 0u32;
        while at <= last && !pager.full() {
            let end = bucket.end(at);
            let sum: Quantity = used.range(at..=end).map(|(_, q)| *q).sum();
            pager.push(
                Position::new(&r.entitlement.id, rank),
                UsagePointRow {
                    entitlement_id: r.entitlement.id.clone(),
                    unit: r.entitlement.terms.unit.as_str().to_string(),
                    bucket: bucket.as_str().to_string(),
                    bucket_start: at,
                    bucket_end: end,
                    used: sum,
                },
            );
            rank += 1;
            at = match end.succ_opt() {
                Some(next) => next,
                None => break,
            };
        }
    };
    match (query.get("entitlement_id"), query.get("account_id")) {
        (Some(id), _) => {
            let typed = EntitlementId::parse(id)
                .ok_or_else(|| ApiError::not_found(EntitlementId::NOUN, id))?;
            let r = visible_entitlement(&state, &principal, &typed).await?;
            let used = daily(&state, std::slice::from_ref(&r), first, last).await?;
            series(&mut pager, &r, used.get(id).unwrap_or(&BTreeMap::new()));
        }
        (None, Some(_)) => {
            let scope = Scope::parse(&query, &principal, false)?;
            let mut run = IdOrder::start(&state, scope, &page);
            run.rows_each(buckets(bucket, first, last));
            while let Some(batch) = run.next_batch().await? {
                let used = daily(&state, &batch, first, last).await?;
                for r in &batch {
                    let empty = BTreeMap::new();
                    series(
                        &mut run.pager,
                        r,
                        used.get(&r.entitlement.id).unwrap_or(&empty),
                    );
                }
            }
            return respond(format, run.finish(|row| row));
        }
        (None, None) => {
            return Err(ApiError::field(
                "entitlement_id",
                "this or account_id is required",
            ));
        }
    }
    respond(format, pager.finish(None, |row| row))
}

/// How many buckets run from `first` to `last`.
fn buckets(bucket: Bucket, first: NaiveDate, last: NaiveDate) -> u32 {
    let (mut at, mut n) = (first, 0);
    while at <= last {
        n += 1;
        match bucket.end(at).succ_opt() {
            Some(next) => at = next,
            None => break,
        }
    }
    n
}

/// Net use per entitlement and day.
async fn daily(
    state: &AppState,
    batch: &[EntitlementRecord],
    from: NaiveDate,
    to: NaiveDate,
) -> ApiResult<HashMap<String, BTreeMap<NaiveDate, Quantity>>> {
    let mut out: HashMap<String, BTreeMap<NaiveDate, Quantity>> = HashMap::new();
    for u in state.store.usage_by_day(&ids(batch), from, to).await? {
        out.entry(u.entitlement_id)
            .or_default()
            .insert(u.day, u.used);
    }
    Ok(out)
}
