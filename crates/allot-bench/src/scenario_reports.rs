//! `reports`: every report's first page and full CSV export over a bulk-loaded fixture, each
//! against a hand-written SQL query producing the same rows on the server's own database in the
//! same run; then usage write throughput with and without reports running continuously.
//!
//! The fixture (entitlements, balances, ledger) is loaded with `INSERT … SELECT` straight into
//! the server's database while it is stopped, then the server's own scheduler settles it (a
//! `schedule` row per entitlement) before anything is measured. Shapes, for entitlement `n` of N
//! (ids `ent_b0000000`…, accounts `acc_b000000`…, 100 entitlements per account):
//! - n % 10 == 9: expired (started 400 days ago, ended 1 + n % 30 days ago); else active
//!   (started 180 days ago, ends in n % 400 days);
//! - total by n % 5: 100, 120, 90, 1000, 1000 cases; one period over the whole term;
//! - ledger: L rows of 1 case round-robin over the N entitlements, created at noon UTC
//!   1 + (row / N) % 60 days ago; balances = the ledger's sums.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use rusqlite::{Connection, OpenFlags};

use crate::allot_target::{Allot, Started};
use crate::cli::Backend;
use crate::http_load::{self, HttpTarget};
use crate::pg::{self, DropList};
use crate::report::{Measurement, ScenarioReport};
use crate::runner::Bench;
use crate::scenarios::{Layout, LoadJob, Op, Pick, Scenario};
use crate::server_db::ServerDb;
use crate::stats::{new_histogram, record, Counts, Stop, Summary, Tally};
use crate::verify::Verdict;

/// Sizes of the fixture and of the measurement.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    pub entitlements: u64,
    pub ledger_rows: u64,
    pub first_page_runs: usize,
    pub export_runs: usize,
    pub write_seconds: u64,
}

impl Sizes {
    pub fn of(quick: bool) -> Self {
        if quick {
            Sizes {
                entitlements: 10_000,
                ledger_rows: 1_000_000,
                first_page_runs: 11,
                export_runs: 3,
                write_seconds: 5,
            }
        } else {
            Sizes {
                entitlements: 100_000,
                ledger_rows: 10_000_000,
                first_page_runs: 11,
                export_runs: 3,
                write_seconds: 10,
            }
        }
    }
}

/// Entitlements created over HTTP for the write load (cap 1e9 each).
const WRITE_POOL: usize = 200;
/// Rows per page of a CSV export (the service's most).
const EXPORT_LIMIT: u32 = 1000;
const FIRST_PAGE: u32 = 100;

/// One report: its path and the SQL that produces its rows (first column: entitlement id).
struct ReportQuery {
    name: &'static str,
    path: String,
    sqlite: String,
    postgres: String,
}

fn queries() -> Vec<ReportQuery> {
    let used = |filter: &str| {
        format!(
            "(SELECT COALESCE(SUM(l.quantity_milli), 0) FROM ledger l WHERE l.entitlement_id = e.id{filter})"
        )
    };
    let base = "FROM entitlements e JOIN balances b ON b.entitlement_id = e.id";
    let both =
        |name: &'static str, path: &str, sql: &dyn Fn(&str, &str, &str) -> String| ReportQuery {
            name,
            path: path.to_owned(),
            sqlite: sql(
                "date('now')",
                "date('now', '+30 days')",
                "date('now', '-365 days')",
            ),
            postgres: sql("CURRENT_DATE", "CURRENT_DATE + 30", "CURRENT_DATE - 365"),
        };
    let active = |today: &str| {
        format!("e.status = 'active' AND e.start_date <= {today} AND e.end_date >= {today}")
    };
    vec![
        both("consumption", "/v1/reports/consumption", &|_, _, _| {
            format!(
                "SELECT e.id, e.account_id, e.status, e.start_date, e.end_date, e.total_milli, \
                 b.used_milli, b.held_milli, b.carried_milli, {} AS term_used {base} ORDER BY e.id",
                used("")
            )
        }),
        both(
            "approaching-limit",
            "/v1/reports/approaching-limit?threshold=80",
            &|today, _, _| {
                format!(
                    "SELECT e.id, e.account_id, e.total_milli, b.used_milli, b.held_milli, \
                     b.carried_milli {base} WHERE {} AND e.total_milli IS NOT NULL \
                     AND (b.used_milli + b.held_milli) * 100 >= 80 * (e.total_milli + b.carried_milli) \
                     ORDER BY CASE WHEN b.used_milli + b.held_milli > e.total_milli + b.carried_milli THEN 0 \
                     WHEN b.used_milli + b.held_milli = e.total_milli + b.carried_milli THEN 1 ELSE 2 END, \
                     (b.used_milli + b.held_milli) * 1.0 / (e.total_milli + b.carried_milli) DESC, e.id",
                    active(today)
                )
            },
        ),
        both(
            "expiring",
            "/v1/reports/expiring?within_days=30",
            &|today, in30, _| {
                format!(
                    "SELECT e.id, e.account_id, e.end_date, e.total_milli, b.used_milli, b.held_milli \
                     {base} WHERE {} AND e.end_date <= {in30} ORDER BY e.end_date, e.id",
                    active(today)
                )
            },
        ),
        both("unused", "/v1/reports/unused", &|today, _, year_ago| {
            format!(
                "SELECT e.id, e.account_id, e.total_milli, b.carried_milli, {} AS used {base} \
                 WHERE e.total_milli IS NOT NULL AND e.status IN ('active', 'expired') \
                 AND e.end_date < {today} AND e.end_date >= {year_ago} ORDER BY e.id",
                used(" AND l.period_index = 0")
            )
        }),
        ReportQuery {
            name: "forecast",
            path: "/v1/reports/forecast?window_days=30".to_owned(),
            sqlite: format!(
                "SELECT e.id, e.account_id, e.total_milli, b.used_milli, b.held_milli, {} {base} \
                 WHERE {} ORDER BY e.id",
                used(" AND l.created_at >= date('now', '-29 days')"),
                active("date('now')")
            ),
            postgres: format!(
                "SELECT e.id, e.account_id, e.total_milli, b.used_milli, b.held_milli, {} {base} \
                 WHERE {} ORDER BY e.id",
                used(" AND l.created_at >= CURRENT_DATE - 29"),
                active("CURRENT_DATE")
            ),
        },
        ReportQuery {
            name: "usage-over-time",
            path: "/v1/reports/usage-over-time?account_id=acc_b000000&bucket=day".to_owned(),
            sqlite: format!(
                "WITH RECURSIVE d(day) AS (SELECT date('now', '-29 days') UNION ALL \
                 SELECT date(day, '+1 day') FROM d WHERE day < date('now')) \
                 SELECT e.id, d.day, {} FROM entitlements e CROSS JOIN d \
                 WHERE e.account_id = 'acc_b000000' ORDER BY e.id, d.day",
                used(" AND l.created_at >= d.day AND l.created_at < d.day || 'T99'")
            ),
            postgres: format!(
                "SELECT e.id, d.day, {} FROM entitlements e CROSS JOIN \
                 (SELECT generate_series(CURRENT_DATE - 29, CURRENT_DATE, INTERVAL '1 day')::date AS day) d \
                 WHERE e.account_id = 'acc_b000000' ORDER BY e.id, d.day",
                used(" AND l.created_at >= d.day AND l.created_at < d.day + 1")
            ),
        },
    ]
}

/// The server's database, read for the baselines (SQLite read-only; PostgreSQL in UTC).
pub enum RawDb {
    Sqlite(std::path::PathBuf),
    Postgres(tokio_postgres::Client),
}

impl RawDb {
    pub async fn open(db: &ServerDb) -> Result<Self> {
        Ok(match db {
            ServerDb::Sqlite(path) => RawDb::Sqlite(path.clone()),
            ServerDb::Postgres(url) => {
                let client = pg::connect(url).await?;
                client.batch_execute("SET TIME ZONE 'UTC'").await?;
                RawDb::Postgres(client)
            }
        })
    }

    /// Runs `sql`, reads every row and column; returns the first column (text) of each row.
    pub async fn keys(&self, sql: &str, sqlite: &str) -> Result<Vec<String>> {
        match self {
            RawDb::Sqlite(path) => {
                let (path, sql) = (path.clone(), sqlite.to_owned());
                tokio::task::spawn_blocking(move || sqlite_keys(&path, &sql)).await?
            }
            RawDb::Postgres(client) => {
                let rows = client
                    .query(sql, &[])
                    .await
                    .with_context(|| sql.to_owned())?;
                let mut keys = Vec::with_capacity(rows.len());
                for row in &rows {
                    keys.push(row.try_get::<_, String>(0)?);
                    for i in 1..row.len() {
                        let _ = row.try_get::<_, Option<Raw>>(i);
                    }
                }
                Ok(keys)
            }
        }
    }
}

/// Any PostgreSQL value, taken as its bytes (the baseline reads every column).
struct Raw;

impl<'a> tokio_postgres::types::FromSql<'a> for Raw {
    fn from_sql(
        _: &tokio_postgres::types::Type,
        _: &'a [u8],
    ) -> std::result::Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Raw)
    }

    fn accepts(_: &tokio_postgres::types::Type) -> bool {
        true
    }
}

thread_local! {
    static SQLITE: std::cell::RefCell<Option<(std::path::PathBuf, Connection)>> =
        const { std::cell::RefCell::new(None) };
}

fn sqlite_keys(path: &std::path::Path, sql: &str) -> Result<Vec<String>> {
    SQLITE.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.as_ref().is_none_or(|(p, _)| p != path) {
            let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
            conn.busy_timeout(Duration::from_secs(60))?;
            *slot = Some((path.to_path_buf(), conn));
        }
        let conn = &slot.as_ref().expect("opened above").1;
        let mut statement = conn.prepare_cached(sql).with_context(|| sql.to_owned())?;
        let columns = statement.column_count();
        let mut rows = statement.query([])?;
        let mut keys = Vec::new();
        while let Some(row) = rows.next()? {
            keys.push(row.get::<_, String>(0)?);
            for i in 1..columns {
                let _ = row.get_ref(i)?;
            }
        }
        Ok(keys)
    })
}

fn with_limit(sql: &str, limit: Option<u32>) -> String {
    match limit {
        Some(n) => format!("{sql} LIMIT {n}"),
        None => sql.to_owned(),
    }
}

/// Times `runs` calls of `f`; returns the timings and the last result.
pub async fn timed<T, F, Fut>(runs: usize, mut f: F) -> Result<(Vec<Duration>, T)>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let mut times = Vec::with_capacity(runs);
    let mut last = None;
    for _ in 0..runs.max(1) {
        let began = Instant::now();
        let out = f().await?;
        times.push(began.elapsed());
        last = Some(out);
    }
    Ok((times, last.expect("at least one run")))
}

/// A measurement of sequential timings: latency percentiles, rate = runs / total time.
pub fn timing_measurement(target: &str, times: &[Duration], verdict: Verdict) -> Measurement {
    let mut hist = new_histogram();
    for t in times {
        record(&mut hist, *t);
    }
    let total: Duration = times.iter().sum();
    Measurement {
        target: target.to_owned(),
        summary: Summary::new(&hist, total),
        counts: Counts {
            ok: times.len() as u64,
            ..Counts::default()
        },
        peak_rss_kib: None,
        bench_cpu_cores: None,
        server_cpu_cores: None,
        db_cpu_cores: None,
        verdict: Some(verdict),
    }
}

pub fn verdict(method: &'static str, checked: usize, problems: Vec<String>) -> Verdict {
    Verdict {
        valid: problems.is_empty(),
        method,
        checked,
        problems,
    }
}

/// allot against the baseline, the ratio being baseline p50 / allot p50 (≥ 0.5 is the goal).
pub fn p50_report(
    backend: Backend,
    scenario: Scenario,
    allot: Measurement,
    base: Measurement,
    note: String,
) -> ScenarioReport {
    let (a, b) = (allot.summary.p50_us, base.summary.p50_us);
    let mut report = ScenarioReport::new(backend, scenario, allot, Some(base));
    report.ratio_label = "sql p50 / allot p50".to_owned();
    report.ratio = (report.valid() && a > 0).then(|| b as f64 / a as f64);
    report.notes.push(note);
    report
}

/// The first difference between two key lists, if any.
fn same_rows(what: &str, allot: &[String], sql: &[String]) -> Vec<String> {
    if allot == sql {
        return Vec::new();
    }
    let at = allot
        .iter()
        .zip(sql)
        .position(|(a, b)| a != b)
        .unwrap_or(allot.len().min(sql.len()));
    vec![format!(
        "{what}: allot gave {} rows, SQL {}; first difference at row {at}: {:?} vs {:?}",
        allot.len(),
        sql.len(),
        allot.get(at),
        sql.get(at)
    )]
}

/// A reqwest client for the report calls.
pub fn client() -> Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .timeout(Duration::from_secs(600))
        .pool_max_idle_per_host(128)
        .build()?)
}

async fn first_page(http: &reqwest::Client, started: &Started, path: &str) -> Result<Vec<String>> {
    let sep = if path.contains('?') { '&' } else { '?' };
    let url = format!("{}{path}{sep}limit={FIRST_PAGE}", started.url);
    let response = http.get(&url).bearer_auth(&started.key).send().await?;
    let status = response.status();
    let body: serde_json::Value = response.json().await?;
    if !status.is_success() {
        bail!("GET {path} -> {status}: {body}");
    }
    Ok(body["items"]
        .as_array()
        .context("no items")?
        .iter()
        .filter_map(|i| i["entitlement_id"].as_str().map(str::to_owned))
        .collect())
}

/// Every page of the CSV, following `next-cursor`; returns the first column of each line and
/// the number of pages.
async fn csv_export(
    http: &reqwest::Client,
    started: &Started,
    path: &str,
) -> Result<(Vec<String>, usize)> {
    let sep = if path.contains('?') { '&' } else { '?' };
    let mut keys = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut url = format!("{}{path}{sep}format=csv&limit={EXPORT_LIMIT}", started.url);
        if let Some(c) = &cursor {
            url.push_str("&cursor=");
            url.push_str(&urlencode(c));
        }
        let response = http.get(&url).bearer_auth(&started.key).send().await?;
        let status = response.status();
        let next = response
            .headers()
            .get("next-cursor")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let text = response.text().await?;
        if !status.is_success() {
            bail!("GET {path} (csv) -> {status}: {text}");
        }
        pages += 1;
        keys.extend(
            text.lines()
                .skip(1)
                .map(|line| line.split(',').next().unwrap_or_default().to_owned()),
        );
        match next {
            Some(c) => cursor = Some(c),
            None => return Ok((keys, pages)),
        }
    }
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A managed allot on a fresh database (the standalone scenarios need the database itself).
pub async fn managed(bench: &Bench, backend: Backend, drops: &mut DropList) -> Result<Allot> {
    if bench.args.url.is_some() {
        bail!("this scenario loads its fixture into the database: run it without --url");
    }
    bench.prepare_allot(backend, drops).await
}

pub fn server_db(allot: &Allot) -> Result<&ServerDb> {
    match allot {
        Allot::Managed { db, .. } => Ok(db),
        Allot::External { .. } => bail!("no database to load"),
    }
}

pub async fn run(
    bench: &Bench,
    backend: Backend,
    drops: &mut DropList,
) -> Result<Vec<ScenarioReport>> {
    let sizes = Sizes::of(bench.args.quick);
    let allot = managed(bench, backend, drops).await?;
    let db = server_db(&allot)?.clone();
    // The write pool over HTTP; its first entitlement's terms are the fixture's template.
    let layout = Layout {
        pool: WRITE_POOL,
        exhaust_cap: 1000,
    };
    let ids = allot
        .create_entitlements(&layout, bench.args.setup_concurrency)
        .await?;
    let began = Instant::now();
    crate::scenario_reports_fixture::load(&db, &ids[0], sizes).await?;
    eprintln!(
        "setup: {} entitlements and {} ledger rows bulk-loaded into the server's database in {:.1}s",
        sizes.entitlements,
        sizes.ledger_rows,
        began.elapsed().as_secs_f64()
    );
    let started = allot.start().await?;
    let result = measure(bench, backend, &db, &started, &ids[..WRITE_POOL], sizes).await;
    started.stop().await?;
    result
}

async fn measure(
    bench: &Bench,
    backend: Backend,
    db: &ServerDb,
    started: &Started,
    write_ids: &[String],
    sizes: Sizes,
) -> Result<Vec<ScenarioReport>> {
    let began = Instant::now();
    crate::scenario_reports_fixture::settle(db).await?;
    eprintln!(
        "setup: the scheduler settled the fixture in {:.1}s",
        began.elapsed().as_secs_f64()
    );
    let raw = RawDb::open(db).await?;
    let http = client()?;
    let mut reports = Vec::new();
    let fixture = format!(
        "{} bulk-loaded entitlements + {} over HTTP, {} ledger rows",
        sizes.entitlements,
        WRITE_POOL + 2,
        sizes.ledger_rows
    );
    for q in queries() {
        eprintln!("[{}] reports: {}", backend.name(), q.name);
        // First page.
        let (allot_times, allot_keys) = timed(sizes.first_page_runs, || {
            first_page(&http, started, &q.path)
        })
        .await?;
        let (pg_sql, lite_sql) = (
            with_limit(&q.postgres, Some(FIRST_PAGE)),
            with_limit(&q.sqlite, Some(FIRST_PAGE)),
        );
        let (sql_times, sql_keys) =
            timed(sizes.first_page_runs, || raw.keys(&pg_sql, &lite_sql)).await?;
        let problems = same_rows("first page", &allot_keys, &sql_keys);
        let checked = allot_keys.len();
        reports.push(p50_report(
            backend,
            Scenario::Reports,
            timing_measurement(
                &format!("{} p1", q.name),
                &allot_times,
                verdict("same rows", checked, problems.clone()),
            ),
            timing_measurement(
                "sql p1",
                &sql_times,
                verdict("same rows", checked, problems),
            ),
            format!("{}: first page ({FIRST_PAGE} rows), {fixture}", q.name),
        ));
        print_last(&reports);
        // Full CSV export, page by page.
        let (allot_times, (allot_keys, pages)) =
            timed(sizes.export_runs, || csv_export(&http, started, &q.path)).await?;
        let (sql_times, sql_keys) =
            timed(sizes.export_runs, || raw.keys(&q.postgres, &q.sqlite)).await?;
        let problems = same_rows("export", &allot_keys, &sql_keys);
        let checked = allot_keys.len();
        reports.push(p50_report(
            backend,
            Scenario::Reports,
            timing_measurement(
                &format!("{} csv", q.name),
                &allot_times,
                verdict("same rows", checked, problems.clone()),
            ),
            timing_measurement("sql all", &sql_times, verdict("same rows", checked, problems)),
            format!(
                "{}: full CSV export, {} rows in {pages} pages of {EXPORT_LIMIT} (next-cursor followed), {fixture}",
                q.name,
                allot_keys.len()
            ),
        ));
        print_last(&reports);
    }
    reports.push(write_throughput(bench, backend, started, write_ids, sizes).await?);
    print_last(&reports);
    Ok(reports)
}

fn print_last(reports: &[ScenarioReport]) {
    if let Some(last) = reports.last() {
        for line in crate::report::scenario_lines(last) {
            println!("{line}");
        }
    }
}

/// Usage writes alone, then with one client reading reports without pause.
async fn write_throughput(
    bench: &Bench,
    backend: Backend,
    started: &Started,
    write_ids: &[String],
    sizes: Sizes,
) -> Result<ScenarioReport> {
    let target = HttpTarget::new(&started.url, &started.key).await?;
    let ids: Vec<String> = write_ids.to_vec();
    let job = LoadJob {
        op: Op::Usage,
        pick: Pick::Uniform(ids.len()),
        concurrency: bench.plan.concurrency,
        stop: Stop::For(Duration::from_secs(sizes.write_seconds)),
        warmup: Duration::from_secs(1),
    };
    eprintln!("[{}] reports: usage writes alone", backend.name());
    let alone = http_load::run(&target, &ids, &job, Arc::new(Tally::new(ids.len()))).await?;
    eprintln!(
        "[{}] reports: usage writes while reports run",
        backend.name()
    );
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (stop, http, started_url, key) = (
            Arc::clone(&stop),
            client()?,
            started.url.clone(),
            started.key.clone(),
        );
        tokio::spawn(async move {
            let shadow = Started {
                server: None,
                url: started_url,
                key,
            };
            let mut served = 0u64;
            while !stop.load(Ordering::Relaxed) {
                for q in queries() {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    first_page(&http, &shadow, &q.path).await?;
                    served += 1;
                }
            }
            Ok::<u64, anyhow::Error>(served)
        })
    };
    let during = http_load::run(&target, &ids, &job, Arc::new(Tally::new(ids.len()))).await;
    stop.store(true, Ordering::Relaxed);
    let served = reader.await??;
    let during = during?;
    let check = |outcome: &crate::stats::Outcome| {
        let mut problems = Vec::new();
        if outcome.counts.unexpected_total() > 0 || outcome.counts.refused > 0 {
            problems.push(format!(
                "{} refused, unexpected: {:?}",
                outcome.counts.refused, outcome.counts.unexpected
            ));
        }
        verdict("status", outcome.counts.ok as usize, problems)
    };
    let measurement = |target: &str, outcome: &crate::stats::Outcome| Measurement {
        target: target.to_owned(),
        summary: outcome.summary.clone(),
        counts: outcome.counts.clone(),
        peak_rss_kib: None,
        bench_cpu_cores: None,
        server_cpu_cores: None,
        db_cpu_cores: None,
        verdict: Some(check(outcome)),
    };
    let mut report = ScenarioReport::new(
        backend,
        Scenario::Reports,
        measurement("usage + reports", &during),
        Some(measurement("usage alone", &alone)),
    );
    report.ratio_label = "writes with / without reports".to_owned();
    report.notes.push(format!(
        "usage writes, {} in flight over {} entitlements, {}s each; {served} report first pages served meanwhile",
        bench.plan.concurrency,
        ids.len(),
        sizes.write_seconds
    ));
    Ok(report)
}
