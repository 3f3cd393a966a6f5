//! The rows of the reports: flat (one JSON object per CSV line), each
//! naming its entitlement, built from `allot-core`'s figures.

use allot_core::balance::Balance;
use allot_core::forecast::{Forecast, METHOD};
use allot_core::report::{percent_used, ClosedPeriod, LimitState};
use allot_core::Quantity;
use allot_store::model::EntitlementRecord;
use chrono::NaiveDate;
use serde::Serialize;
use utoipa::ToSchema;

use crate::csv_response::CsvRow;
use crate::views::status_today;

/// Per entitlement (`channel` null) and per channel: the current period,
/// and on the entitlement's row the whole term.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConsumptionRow {
    pub entitlement_id: String,
    pub account_id: String,
    pub name: String,
    pub unit: String,
    /// As the dates imply today.
    pub status: String,
    /// Null on the entitlement's own row; the channel on a channel's row.
    pub channel: Option<String>,
    pub period_start: NaiveDate,
    pub period_end: NaiveDate,
    /// The period's (or the channel's) allotment; null when unlimited.
    #[schema(value_type = Option<f64>)]
    pub total: Option<Quantity>,
    /// Rolled over into this period (0 on channel rows).
    #[schema(value_type = f64)]
    pub carried_over: Quantity,
    #[schema(value_type = f64)]
    pub used: Quantity,
    #[schema(value_type = f64)]
    pub held: Quantity,
    /// Negative in overage; null when unlimited.
    #[schema(value_type = Option<f64>)]
    pub remaining: Option<Quantity>,
    /// (used + held) / (total + carried_over) × 100, exact to a hundredth; null when unlimited.
    #[schema(value_type = Option<f64>)]
    pub percent_used: Option<Quantity>,
    #[schema(value_type = f64)]
    pub overage: Quantity,
    /// Total × periods of the term; null when unlimited and on channel rows.
    #[schema(value_type = Option<f64>)]
    pub term_total: Option<Quantity>,
    /// Net use over the whole term (the ledger's sum); null on channel rows.
    #[schema(value_type = Option<f64>)]
    pub term_used: Option<Quantity>,
}

impl CsvRow for ConsumptionRow {
    const COLUMNS: &'static [&'static str] = &[
        "entitlement_id",
        "account_id",
        "name",
        "unit",
        "status",
        "channel",
        "period_start",
        "period_end",
        "total",
        "carried_over",
        "used",
        "held",
        "remaining",
        "percent_used",
        "overage",
        "term_total",
        "term_used",
    ];
}

/// What names an entitlement on every row.
struct Named {
    entitlement_id: String,
    account_id: String,
    name: String,
    unit: String,
}

fn named(r: &EntitlementRecord) -> Named {
    let t = &r.entitlement.terms;
    Named {
        entitlement_id: r.entitlement.id.clone(),
        account_id: t.account_id.clone(),
        name: t.name.clone(),
        unit: t.unit.as_str().to_string(),
    }
}

/// The rows of one entitlement: its own, then one per channel.
pub fn consumption_rows(
    r: &EntitlementRecord,
    b: &Balance,
    today: NaiveDate,
    term_total: Option<Quantity>,
    term_used: Quantity,
) -> Vec<ConsumptionRow> {
    let status = status_today(r, today).as_str();
    let row = |channel: Option<String>| {
        let n = named(r);
        ConsumptionRow {
            entitlement_id: n.entitlement_id,
            account_id: n.account_id,
            name: n.name,
            unit: n.unit,
            status: status.to_string(),
            channel,
            period_start: b.period.start,
            period_end: b.period.end,
            total: b.total,
            carried_over: b.carried_over,
            used: b.used,
            held: b.held,
            remaining: b.remaining,
            percent_used: percent_used(b),
            overage: b.overage,
            term_total,
            term_used: Some(term_used),
        }
    };
    let mut rows = vec![row(None)];
    for c in &b.channels {
        rows.push(ConsumptionRow {
            total: Some(c.total),
            carried_over: Quantity::ZERO,
            used: c.used,
            held: c.held,
            remaining: Some(c.remaining),
            percent_used: (c.used + c.held)
                .percent_of(c.total)
                .map(|h| Quantity::from_milli(h * 10)),
            overage: (-c.remaining).max(Quantity::ZERO),
            term_total: None,
            term_used: None,
            ..row(Some(c.channel.clone()))
        });
    }
    rows
}

/// An active entitlement at or past a threshold.
#[derive(Debug, Serialize, ToSchema)]
pub struct LimitRow {
    pub entitlement_id: String,
    pub account_id: String,
    pub name: String,
    pub unit: String,
    /// overage, exhausted or approaching: most urgent first.
    pub state: String,
    #[schema(value_type = f64)]
    pub total: Quantity,
    #[schema(value_type = f64)]
    pub carried_over: Quantity,
    #[schema(value_type = f64)]
    pub used: Quantity,
    #[schema(value_type = f64)]
    pub held: Quantity,
    #[schema(value_type = f64)]
    pub remaining: Quantity,
    #[schema(value_type = Option<f64>)]
    pub percent_used: Option<Quantity>,
    #[schema(value_type = f64)]
    pub overage: Quantity,
    /// The last day of the current period: when it resets.
    pub period_end: NaiveDate,
}

impl CsvRow for LimitRow {
    const COLUMNS: &'static [&'static str] = &[
        "entitlement_id",
        "account_id",
        "name",
        "unit",
        "state",
        "total",
        "carried_over",
        "used",
        "held",
        "remaining",
        "percent_used",
        "overage",
        "period_end",
    ];
}

/// The row of a limited entitlement in `state`; `None` when unlimited.
pub fn limit_row(r: &EntitlementRecord, b: &Balance, state: LimitState) -> Option<LimitRow> {
    let n = named(r);
    Some(LimitRow {
        entitlement_id: n.entitlement_id,
        account_id: n.account_id,
        name: n.name,
        unit: n.unit,
        state: state.as_str().to_string(),
        total: b.total?,
        carried_over: b.carried_over,
        used: b.used,
        held: b.held,
        remaining: b.remaining?,
        percent_used: percent_used(b),
        overage: b.overage,
        period_end: b.period.end,
    })
}

/// An active entitlement whose term ends soon.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExpiringRow {
    pub entitlement_id: String,
    pub account_id: String,
    pub name: String,
    pub unit: String,
    pub end_date: NaiveDate,
    /// Days from today to the end date (0: ends today).
    pub days_left: i64,
    pub auto_renew: bool,
    #[schema(value_type = Option<f64>)]
    pub total: Option<Quantity>,
    #[schema(value_type = f64)]
    pub used: Quantity,
    /// What is still unused in the current period (never below 0); null when unlimited.
    #[schema(value_type = Option<f64>)]
    pub unused: Option<Quantity>,
}

impl CsvRow for ExpiringRow {
    const COLUMNS: &'static [&'static str] = &[
        "entitlement_id",
        "account_id",
        "name",
        "unit",
        "end_date",
        "days_left",
        "auto_renew",
        "total",
        "used",
        "unused",
    ];
}

pub fn expiring_row(r: &EntitlementRecord, b: &Balance, today: NaiveDate) -> ExpiringRow {
    let n = named(r);
    let end = r.entitlement.terms.end_date;
    ExpiringRow {
        entitlement_id: n.entitlement_id,
        account_id: n.account_id,
        name: n.name,
        unit: n.unit,
        end_date: end,
        days_left: (end - today).num_days(),
        auto_renew: r.entitlement.terms.auto_renew,
        total: b.total,
        used: b.used,
        unused: b.remaining.map(|x| x.max(Quantity::ZERO)),
    }
}

/// A period that ended (the term, for an entitlement without periods).
#[derive(Debug, Serialize, ToSchema)]
pub struct UnusedRow {
    pub entitlement_id: String,
    pub account_id: String,
    pub name: String,
    pub unit: String,
    pub period_index: i64,
    pub period_start: NaiveDate,
    pub period_end: NaiveDate,
    /// This period is the last of the term: the term has ended.
    pub term_ended: bool,
    #[schema(value_type = f64)]
    pub total: Quantity,
    /// Rolled over into the period.
    #[schema(value_type = f64)]
    pub carried_in: Quantity,
    #[schema(value_type = f64)]
    pub used: Quantity,
    /// total + carried_in − used, never below 0.
    #[schema(value_type = f64)]
    pub unused: Quantity,
    #[schema(value_type = f64)]
    pub overage: Quantity,
    /// Rolled on into the next period.
    #[schema(value_type = f64)]
    pub carried_out: Quantity,
}

impl CsvRow for UnusedRow {
    const COLUMNS: &'static [&'static str] = &[
        "entitlement_id",
        "account_id",
        "name",
        "unit",
        "period_index",
        "period_start",
        "period_end",
        "term_ended",
        "total",
        "carried_in",
        "used",
        "unused",
        "overage",
        "carried_out",
    ];
}

pub fn unused_row(r: &EntitlementRecord, p: &ClosedPeriod) -> UnusedRow {
    let n = named(r);
    UnusedRow {
        entitlement_id: n.entitlement_id,
        account_id: n.account_id,
        name: n.name,
        unit: n.unit,
        period_index: p.window.index,
        period_start: p.window.start,
        period_end: p.window.end,
        term_ended: p.window.end == r.entitlement.terms.end_date,
        total: p.total,
        carried_in: p.carried_in,
        used: p.used,
        unused: p.unused,
        overage: p.overage,
        carried_out: p.carried_out,
    }
}

/// The current period summed per account and unit, or per unit.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConsumptionTotalRow {
    /// Null on a row per unit over every account.
    pub account_id: Option<String>,
    pub unit: String,
    pub entitlements: u64,
    /// Of which unlimited: their use counts in `used` and `held`, nothing in the other sums.
    pub unlimited: u64,
    #[schema(value_type = f64)]
    pub total: Quantity,
    #[schema(value_type = f64)]
    pub carried_over: Quantity,
    #[schema(value_type = f64)]
    pub used: Quantity,
    #[schema(value_type = f64)]
    pub held: Quantity,
    #[schema(value_type = f64)]
    pub remaining: Quantity,
    #[schema(value_type = f64)]
    pub overage: Quantity,
}

impl CsvRow for ConsumptionTotalRow {
    const COLUMNS: &'static [&'static str] = &[
        "account_id",
        "unit",
        "entitlements",
        "unlimited",
        "total",
        "carried_over",
        "used",
        "held",
        "remaining",
        "overage",
    ];
}

/// Unused allotment of one account in one unit, over the periods shown.
#[derive(Debug, Serialize, ToSchema)]
pub struct UnusedByAccountRow {
    pub account_id: String,
    pub unit: String,
    /// Closed periods counted.
    pub periods: u64,
    /// Allotments plus what rolled in.
    #[schema(value_type = f64)]
    pub allowed: Quantity,
    #[schema(value_type = f64)]
    pub used: Quantity,
    #[schema(value_type = f64)]
    pub unused: Quantity,
    #[schema(value_type = f64)]
    pub overage: Quantity,
}

impl CsvRow for UnusedByAccountRow {
    const COLUMNS: &'static [&'static str] = &[
        "account_id",
        "unit",
        "periods",
        "allowed",
        "used",
        "unused",
        "overage",
    ];
}

/// The burn rate and when the allotment runs out at that pace.
#[derive(Debug, Serialize, ToSchema)]
pub struct ForecastView {
    /// `linear_trailing_window`: net use over the trailing window divided by its days inside the term, projected from today's remaining.
    pub method: String,
    pub window_days: u32,
    /// Days of the window inside the term.
    pub observed_days: u32,
    #[schema(value_type = f64)]
    pub used_in_window: Quantity,
    /// Rounded to a thousandth; the projection uses the exact pace.
    #[schema(value_type = f64)]
    pub burn_rate_per_day: Quantity,
    /// unlimited, exhausted, runs_out or lasts.
    pub outlook: String,
    /// The projected day it runs out (today when exhausted); null when it lasts past `horizon`.
    pub exhausted_on: Option<NaiveDate>,
    /// The end of the current period (or term): after it the allotment resets.
    pub horizon: NaiveDate,
}

impl From<&Forecast> for ForecastView {
    fn from(f: &Forecast) -> Self {
        ForecastView {
            method: METHOD.to_string(),
            window_days: f.window_days,
            observed_days: f.observed_days,
            used_in_window: f.used_in_window,
            burn_rate_per_day: f.burn_rate_per_day,
            outlook: f.outlook.as_str().to_string(),
            exhausted_on: f.exhausted_on,
            horizon: f.horizon,
        }
    }
}

/// One entitlement's forecast.
#[derive(Debug, Serialize, ToSchema)]
pub struct ForecastRow {
    pub entitlement_id: String,
    pub account_id: String,
    pub name: String,
    pub unit: String,
    /// Null when unlimited.
    #[schema(value_type = Option<f64>)]
    pub remaining: Option<Quantity>,
    pub method: String,
    pub window_days: u32,
    pub observed_days: u32,
    #[schema(value_type = f64)]
    pub used_in_window: Quantity,
    #[schema(value_type = f64)]
    pub burn_rate_per_day: Quantity,
    pub outlook: String,
    pub exhausted_on: Option<NaiveDate>,
    pub horizon: NaiveDate,
}

impl CsvRow for ForecastRow {
    const COLUMNS: &'static [&'static str] = &[
        "entitlement_id",
        "account_id",
        "name",
        "unit",
        "remaining",
        "method",
        "window_days",
        "observed_days",
        "used_in_window",
        "burn_rate_per_day",
        "outlook",
        "exhausted_on",
        "horizon",
    ];
}

pub fn forecast_row(
    r: &EntitlementRecord,
    remaining: Option<Quantity>,
    f: &Forecast,
) -> ForecastRow {
    let n = named(r);
    let v = ForecastView::from(f);
    ForecastRow {
        entitlement_id: n.entitlement_id,
        account_id: n.account_id,
        name: n.name,
        unit: n.unit,
        remaining,
        method: v.method,
        window_days: v.window_days,
        observed_days: v.observed_days,
        used_in_window: v.used_in_window,
        burn_rate_per_day: v.burn_rate_per_day,
        outlook: v.outlook,
        exhausted_on: v.exhausted_on,
        horizon: v.horizon,
    }
}

/// Net use of one entitlement in one bucket of days.
#[derive(Debug, Serialize, ToSchema)]
pub struct UsagePointRow {
    pub entitlement_id: String,
    pub unit: String,
    /// day, week (Monday to Sunday) or month.
    pub bucket: String,
    pub bucket_start: NaiveDate,
    pub bucket_end: NaiveDate,
    #[schema(value_type = f64)]
    pub used: Quantity,
}

impl CsvRow for UsagePointRow {
    const COLUMNS: &'static [&'static str] = &[
        "entitlement_id",
        "unit",
        "bucket",
        "bucket_start",
        "bucket_end",
        "used",
    ];
}

/// The live balance with its forecast.
#[derive(Debug, Serialize, ToSchema)]
pub struct BalanceWithForecast {
    #[serde(flatten)]
    pub balance: crate::views::BalanceView,
    pub forecast: ForecastView,
}

/// An entitlement as listed: its terms and its live balance.
#[derive(Debug, Serialize, ToSchema)]
pub struct ListedEntitlement {
    #[serde(flatten)]
    pub entitlement: crate::views::EntitlementView,
    pub balance: crate::views::BalanceView,
    /// (used + held) / (total + carried_over) × 100, exact to a hundredth; null when unlimited.
    #[schema(value_type = Option<f64>)]
    pub percent_used: Option<Quantity>,
}
