//! `dashboard`: every dashboard page over the `reports` fixture (10,000 entitlements, 100 per
//! account, 100,000 ledger rows; shapes in `scenario_reports.rs`), signed in with the admin key
//! like a browser (cookie, CSRF token). Each page is asked for `RUNS` times in a row after one
//! warm-up; the measurement is the server's own time from the page's `Server-Timing` header
//! (`page;dur=…`), the client's round trip on localhost and the page's call count go in the
//! notes. The goal is a p99 under 100 ms per page.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};

use crate::allot_target::Started;
use crate::cli::Backend;
use crate::pg::DropList;
use crate::report::ScenarioReport;
use crate::runner::Bench;
use crate::scenario_reports::{managed, server_db, timing_measurement, verdict, Sizes};
use crate::scenarios::{Layout, Scenario};

/// Entitlements in the fixture, and its ledger rows.
const ENTITLEMENTS: u64 = 10_000;
const LEDGER_ROWS: u64 = 100_000;
/// Timed requests per page (after one warm-up), and with `--quick`.
const RUNS: usize = 50;
const QUICK_RUNS: usize = 15;
/// The goal of the issue: every page under this server time.
const GOAL_MS: f64 = 100.0;

/// The pages: (name, path).
fn pages() -> Vec<(&'static str, String)> {
    let account = "acc_b000042";
    let ent = "ent_b0004203";
    vec![
        ("overview", "/".to_owned()),
        ("accounts", "/accounts".to_owned()),
        ("account search", "/accounts?q=bench+42".to_owned()),
        ("account", format!("/accounts/{account}")),
        ("entitlement", format!("/entitlements/{ent}")),
        (
            "report approaching",
            "/reports?report=approaching-limit".to_owned(),
        ),
        (
            "report expiring",
            "/reports?report=expiring&within_days=30".to_owned(),
        ),
        (
            "report consumption",
            format!("/reports?report=consumption&account_id={account}"),
        ),
        (
            "report csv",
            format!("/reports/download?report=consumption&account_id={account}"),
        ),
        ("software", "/software".to_owned()),
        ("agent", format!("/agent?account={account}")),
        ("webhooks", "/webhooks".to_owned()),
        ("audit", "/audit".to_owned()),
    ]
}

pub async fn run(
    bench: &Bench,
    backend: Backend,
    drops: &mut DropList,
) -> Result<Vec<ScenarioReport>> {
    let sizes = Sizes {
        entitlements: ENTITLEMENTS,
        ledger_rows: LEDGER_ROWS,
        ..Sizes::of(true)
    };
    let allot = managed(bench, backend, drops).await?;
    let db = server_db(&allot)?.clone();
    // One entitlement over HTTP: its terms are the fixture's template.
    let layout = Layout {
        pool: 1,
        exhaust_cap: 1000,
    };
    let ids = allot.create_entitlements(&layout, 1).await?;
    let began = Instant::now();
    crate::scenario_reports_fixture::load(&db, &ids[0], sizes).await?;
    eprintln!(
        "setup: {} entitlements and {} ledger rows bulk-loaded in {:.1}s",
        sizes.entitlements,
        sizes.ledger_rows,
        began.elapsed().as_secs_f64()
    );
    let started = allot.start().await?;
    let result = async {
        crate::scenario_reports_fixture::settle(&db).await?;
        measure(bench, backend, &started).await
    }
    .await;
    started.stop().await?;
    result
}

/// A signed-in browser without JavaScript: the session cookie.
struct Browser {
    http: reqwest::Client,
    url: String,
    cookie: String,
}

fn cookie_of(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with(&format!("{name}=")))
        .and_then(|c| c.split(';').next())
        .map(str::to_owned)
}

fn csrf_of(html: &str) -> Option<String> {
    let marker = r#"name="csrf" value=""#;
    let at = html.find(marker)? + marker.len();
    Some(html[at..].split('"').next()?.to_owned())
}

impl Browser {
    async fn sign_in(started: &Started) -> Result<Self> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(120))
            .build()?;
        let form = http.get(format!("{}/sign-in", started.url)).send().await?;
        let pre = form
            .headers()
            .get(SET_COOKIE)
            .and_then(|v| v.to_str().ok())
            .and_then(|c| c.split(';').next())
            .context("the sign-in form sets no cookie")?
            .to_owned();
        let token = csrf_of(&form.text().await?).context("no CSRF token on the sign-in form")?;
        let answer = http
            .post(format!("{}/sign-in", started.url))
            .header(COOKIE, pre)
            .form(&[("csrf", token.as_str()), ("key", started.key.as_str())])
            .send()
            .await?;
        if answer.status() != reqwest::StatusCode::SEE_OTHER {
            bail!("sign-in answered {}", answer.status());
        }
        let cookie = cookie_of(&answer, "allot_session").context("no session cookie")?;
        Ok(Browser {
            http,
            url: started.url.clone(),
            cookie,
        })
    }

    /// One page: (client round trip, server time from `Server-Timing`, calls, body length).
    async fn get(&self, path: &str) -> Result<(Duration, Duration, u32, usize)> {
        let began = Instant::now();
        let r = self
            .http
            .get(format!("{}{path}", self.url))
            .header(COOKIE, &self.cookie)
            .send()
            .await?;
        let status = r.status();
        let timing = r
            .headers()
            .get("server-timing")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let location = r.headers().get(LOCATION).cloned();
        let body = r.bytes().await?;
        let round_trip = began.elapsed();
        if !status.is_success() {
            bail!("GET {path} -> {status} (location {location:?})");
        }
        let timing = timing.with_context(|| format!("GET {path}: no Server-Timing"))?;
        let (server, calls) = parse_timing(&timing)
            .with_context(|| format!("GET {path}: Server-Timing {timing:?}"))?;
        Ok((round_trip, server, calls, body.len()))
    }
}

/// `page;dur=12.34, calls;desc="5"` → (12.34 ms, 5).
fn parse_timing(value: &str) -> Option<(Duration, u32)> {
    let mut dur = None;
    let mut calls = None;
    for part in value.split(',') {
        let part = part.trim();
        if let Some(ms) = part.strip_prefix("page;dur=") {
            dur = ms.parse::<f64>().ok();
        } else if let Some(n) = part.strip_prefix("calls;desc=") {
            calls = n.trim_matches('"').parse().ok();
        }
    }
    Some((Duration::from_secs_f64(dur? / 1000.0), calls?))
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

async fn measure(
    bench: &Bench,
    backend: Backend,
    started: &Started,
) -> Result<Vec<ScenarioReport>> {
    let runs = if bench.args.quick { QUICK_RUNS } else { RUNS };
    let browser = Browser::sign_in(started).await?;
    let mut reports = Vec::new();
    for (name, path) in pages() {
        eprintln!("[{}] dashboard: {name}", backend.name());
        browser.get(&path).await?;
        let mut server = Vec::with_capacity(runs);
        let mut trips = Vec::with_capacity(runs);
        let mut calls = Vec::new();
        let mut bytes = 0;
        for _ in 0..runs {
            let (trip, took, n, len) = browser.get(&path).await?;
            trips.push(trip);
            server.push(took);
            calls.push(n);
            bytes = len;
        }
        trips.sort();
        let mut sorted = server.clone();
        sorted.sort();
        let (p50, p99) = (percentile(&sorted, 0.5), percentile(&sorted, 0.99));
        calls.sort_unstable();
        calls.dedup();
        let mut problems = Vec::new();
        if calls.len() != 1 {
            problems.push(format!("calls varied between requests: {calls:?}"));
        }
        let mut report = ScenarioReport::new(
            backend,
            Scenario::Dashboard,
            timing_measurement(
                &format!("{name} (server)"),
                &server,
                verdict("status 200", server.len(), problems),
            ),
            None,
        );
        report.notes.push(format!(
            "GET {path}: server p50 {p50:.1} ms, p99 {p99:.1} ms ({}); round trip p50 {:.1} ms, p99 {:.1} ms; {} calls; {bytes} bytes; {runs} runs; {ENTITLEMENTS} entitlements",
            if p99 < GOAL_MS { "under the 100 ms goal" } else { "OVER the 100 ms goal" },
            percentile(&trips, 0.5),
            percentile(&trips, 0.99),
            calls.first().copied().unwrap_or(0),
        ));
        for line in crate::report::scenario_lines(&report) {
            println!("{line}");
        }
        reports.push(report);
    }
    Ok(reports)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_timing_gives_the_page_time_and_its_calls() {
        let (d, n) = parse_timing(r#"page;dur=12.50, calls;desc="7""#).unwrap();
        assert_eq!(d, Duration::from_micros(12_500));
        assert_eq!(n, 7);
        assert!(parse_timing("page;dur=1").is_none());
        let sorted: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&sorted, 0.5), 51.0);
        assert_eq!(percentile(&sorted, 0.99), 99.0);
    }
}
