//! Results: the printed table, the ratios and the JSON summary.

use serde::Serialize;

use crate::cli::Backend;
use crate::scenarios::Scenario;
use crate::stats::{Counts, Summary};
use crate::verify::Verdict;

/// How peak RSS is measured, printed with the results.
pub const RSS_METHOD: &str =
    "peak RSS = VmHWM of a fresh `allot serve` process per scenario (restarted on the same database)";

/// One measured run: allot over HTTP, a baseline loop, or the /healthz ceiling.
#[derive(Debug, Clone, Serialize)]
pub struct Measurement {
    pub target: String,
    pub summary: Summary,
    pub counts: Counts,
    pub peak_rss_kib: Option<u64>,
    /// Cores used on average by this process (load generator, or the whole baseline loop).
    pub bench_cpu_cores: Option<f64>,
    /// Cores used on average by the `allot serve` process.
    pub server_cpu_cores: Option<f64>,
    /// Cores used on average by PostgreSQL's backends of the run's database.
    pub db_cpu_cores: Option<f64>,
    /// `None` when there is nothing to verify (`/healthz`).
    pub verdict: Option<Verdict>,
}

impl Measurement {
    pub fn valid(&self) -> bool {
        self.verdict.as_ref().is_none_or(|v| v.valid)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ScenarioReport {
    pub backend: Backend,
    pub scenario: Scenario,
    pub allot: Measurement,
    /// The baseline loop, or `/healthz` for `balance`.
    pub baseline: Option<Measurement>,
    /// What `ratio` divides, e.g. `allot / sqlite loop`.
    pub ratio_label: String,
    /// Throughput ratio; `None` when either side is INVALID or missing.
    pub ratio: Option<f64>,
    pub notes: Vec<String>,
    /// Repetitions with peers (`repeat.rs`): medians and spreads.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repeated: Option<crate::repeat::Repeated>,
}

impl ScenarioReport {
    pub fn new(
        backend: Backend,
        scenario: Scenario,
        allot: Measurement,
        baseline: Option<Measurement>,
    ) -> Self {
        let ratio_label = match (&baseline, scenario) {
            (Some(_), Scenario::Balance) => "balance / healthz".to_owned(),
            (Some(base), _) => format!("allot / {}", base.target),
            (None, _) => "no baseline".to_owned(),
        };
        let ratio = baseline.as_ref().and_then(|base| {
            (allot.valid() && base.valid() && base.summary.rps > 0.0)
                .then(|| allot.summary.rps / base.summary.rps)
        });
        ScenarioReport {
            backend,
            scenario,
            allot,
            baseline,
            ratio_label,
            ratio,
            notes: Vec::new(),
            repeated: None,
        }
    }

    pub fn valid(&self) -> bool {
        self.allot.valid() && self.baseline.as_ref().is_none_or(Measurement::valid)
    }
}

/// The whole run, as printed with `--json`.
#[derive(Debug, Serialize)]
pub struct RunReport {
    pub started_at_unix: u64,
    pub cpus: usize,
    pub load_average_at_start: String,
    pub cpu_busy_before_start: String,
    pub concurrency: usize,
    pub duration_s: f64,
    pub warmup_s: f64,
    pub entitlements: usize,
    pub synchronous: String,
    pub ledger_rows: u64,
    pub rss_method: &'static str,
    pub valid: bool,
    pub scenarios: Vec<ScenarioReport>,
}

pub fn header() -> String {
    format!(
        "{:<9} {:<16} {:<18} {:>10} {:>9} {:>9} {:>9} {:>9} {:>8} {:>7} {:>6} {:>9} {:>9}  verify",
        "backend",
        "scenario",
        "target",
        "req/s",
        "p50",
        "p90",
        "p99",
        "max",
        "2xx",
        "409",
        "other",
        "peak RSS",
        "CPU b+s"
    )
}

/// The table lines of one scenario (measurements, ratio, notes).
pub fn scenario_lines(report: &ScenarioReport) -> Vec<String> {
    let mut lines = Vec::new();
    if report.repeated.is_none() {
        lines.push(measurement_line(report, &report.allot));
        if let Some(base) = &report.baseline {
            lines.push(measurement_line(report, base));
        }
    }
    let ratio = match report.ratio {
        Some(ratio) => format!("{ratio:.2}x"),
        None if report.baseline.is_some() => "INVALID".to_owned(),
        None => "n/a".to_owned(),
    };
    let median = match &report.repeated {
        Some(r) => format!(" (median of {} interleaved runs)", r.runs),
        None => String::new(),
    };
    lines.push(format!(
        "{:<9} {:<16} ratio {} = {}{median}",
        "", "", report.ratio_label, ratio
    ));
    for note in &report.notes {
        lines.push(format!("{:<9} {:<16} note: {note}", "", ""));
    }
    lines
}

pub(crate) fn measurement_line(report: &ScenarioReport, m: &Measurement) -> String {
    let s = &m.summary;
    let (rps, p50, p90, p99, max) = if m.valid() {
        (
            format!("{:.0}", s.rps),
            micros(s.p50_us),
            micros(s.p90_us),
            micros(s.p99_us),
            micros(s.max_us),
        )
    } else {
        let dash = || "-".to_owned();
        ("INVALID".to_owned(), dash(), dash(), dash(), dash())
    };
    let rss = m.peak_rss_kib.map_or_else(
        || "-".to_owned(),
        |kib| format!("{:.1}MiB", kib as f64 / 1024.0),
    );
    let cpu = match (m.bench_cpu_cores, m.server_cpu_cores) {
        (Some(bench), Some(server)) => format!("{bench:.2}+{server:.2}"),
        (Some(bench), None) => format!("{bench:.2}"),
        _ => "-".to_owned(),
    };
    let cpu = match m.db_cpu_cores {
        Some(db) => format!("{cpu}+{db:.2}"),
        None => cpu,
    };
    let verdict = m
        .verdict
        .as_ref()
        .map_or_else(|| "n/a".to_owned(), Verdict::label);
    format!(
        "{:<9} {:<16} {:<18} {:>10} {:>9} {:>9} {:>9} {:>9} {:>8} {:>7} {:>6} {:>9} {:>9}  {}",
        report.backend.name(),
        report.scenario.name(),
        m.target,
        rps,
        p50,
        p90,
        p99,
        max,
        m.counts.ok,
        m.counts.refused,
        m.counts.unexpected_total(),
        rss,
        cpu,
        verdict
    )
}

/// `850µs`, `4.12ms`, `1.30s`.
pub fn micros(us: u64) -> String {
    if us < 1_000 {
        format!("{us}µs")
    } else if us < 1_000_000 {
        format!("{:.2}ms", us as f64 / 1_000.0)
    } else {
        format!("{:.2}s", us as f64 / 1_000_000.0)
    }
}

/// The closing summary: one line per scenario with its ratio.
pub fn summary_lines(reports: &[ScenarioReport]) -> Vec<String> {
    let mut lines = vec![format!(
        "{:<9} {:<16} {:>12} {:>12}  {:<28} {:>8}",
        "backend", "scenario", "allot req/s", "base req/s", "ratio", "value"
    )];
    for report in reports {
        let rps = |m: &Measurement| {
            if m.valid() {
                format!("{:.0}", m.summary.rps)
            } else {
                "INVALID".to_owned()
            }
        };
        let base = report.baseline.as_ref().map_or_else(|| "-".to_owned(), rps);
        let ratio = match report.ratio {
            Some(r) => format!("{r:.2}x"),
            // A scenario measured against no baseline has no ratio; only a
            // failed verification is INVALID.
            None if report.baseline.is_none() && report.allot.valid() => "-".to_owned(),
            None => "INVALID".to_owned(),
        };
        lines.push(format!(
            "{:<9} {:<16} {:>12} {:>12}  {:<28} {:>8}",
            report.backend.name(),
            report.scenario.name(),
            rps(&report.allot),
            base,
            report.ratio_label,
            ratio
        ));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measurement(rps: f64, valid: bool) -> Measurement {
        Measurement {
            target: "x".to_owned(),
            summary: Summary {
                requests: 10,
                seconds: 1.0,
                rps,
                p50_us: 500,
                p90_us: 1500,
                p99_us: 2_500_000,
                max_us: 3_000_000,
            },
            counts: Counts::default(),
            peak_rss_kib: Some(2048),
            bench_cpu_cores: Some(0.5),
            server_cpu_cores: Some(1.25),
            db_cpu_cores: None,
            verdict: Some(Verdict {
                valid,
                method: "database",
                checked: 1,
                problems: if valid {
                    vec![]
                } else {
                    vec!["bad".to_owned()]
                },
            }),
        }
    }

    #[test]
    fn ratio_only_when_both_valid() {
        let ok = ScenarioReport::new(
            Backend::Sqlite,
            Scenario::ConsumeHot,
            measurement(300.0, true),
            Some(measurement(100.0, true)),
        );
        assert_eq!(ok.ratio, Some(3.0));
        let bad = ScenarioReport::new(
            Backend::Sqlite,
            Scenario::ConsumeHot,
            measurement(300.0, false),
            Some(measurement(100.0, true)),
        );
        assert_eq!(bad.ratio, None);
        assert!(!bad.valid());
        assert!(scenario_lines(&bad)[0].contains("INVALID"));
        assert!(scenario_lines(&ok)[0].contains("0.50+1.25"));
    }

    #[test]
    fn a_scenario_without_a_baseline_is_invalid_only_when_its_run_is() {
        let line = |valid| {
            let report = ScenarioReport::new(
                Backend::Sqlite,
                Scenario::ConsumeHot,
                measurement(300.0, valid),
                None,
            );
            summary_lines(&[report])[1].clone()
        };
        assert!(!line(true).contains("INVALID"), "{}", line(true));
        assert!(line(false).contains("INVALID"), "{}", line(false));
    }

    #[test]
    fn latency_formatting() {
        assert_eq!(micros(850), "850µs");
        assert_eq!(micros(4_120), "4.12ms");
        assert_eq!(micros(1_300_000), "1.30s");
    }
}
