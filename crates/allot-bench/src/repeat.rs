//! Repetitions and peers: each consume scenario is measured several times,
//! interleaved (allot, the loop, the single-connection loop, naive-http,
//! allot, …), and each ratio is the median of the repetitions' ratios with
//! its spread. Then the goals of the throughput issue, met or missed.

use std::sync::Arc;

use anyhow::Result;
use serde::Serialize;

use crate::allot_target::Allot;
use crate::baseline::Baseline;
use crate::cli::{Backend, Synchronous};
use crate::http_load::HttpTarget;
use crate::naive_http::NaiveHttp;
use crate::report::{measurement_line, Measurement, ScenarioReport};
use crate::runner::{failed, measurement, timed_http, Bench};
use crate::scenarios::{Op, Scenario};
use crate::stats::Tally;
use crate::verify::{self, used_by_id};

/// Scenarios measured with repetitions and peers.
pub fn repeated(scenario: Scenario) -> bool {
    matches!(
        scenario,
        Scenario::ConsumeUniform
            | Scenario::ConsumeZipf
            | Scenario::ConsumeHot
            | Scenario::ConsumeBatch
    )
}

/// What one backend's repeated scenarios run against.
pub struct Sides<'a> {
    pub allot: &'a Allot,
    pub baseline: &'a Baseline,
    pub naive: Option<&'a NaiveHttp>,
    pub ids: &'a Arc<Vec<String>>,
}

/// Median and range of one figure over the repetitions.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Spread {
    pub fn of(values: &[f64]) -> Option<Spread> {
        let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
        if sorted.is_empty() {
            return None;
        }
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let median = if n % 2 == 1 {
            sorted[n / 2]
        } else {
            (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
        };
        Some(Spread {
            median,
            min: sorted[0],
            max: sorted[n - 1],
        })
    }

    fn ratio(&self) -> String {
        format!("{:.2}x [{:.2}-{:.2}]", self.median, self.min, self.max)
    }
}

/// The repetitions of one scenario, summed up.
#[derive(Debug, Clone, Serialize)]
pub struct Repeated {
    pub runs: usize,
    pub allot_rps: Option<Spread>,
    pub loop_rps: Option<Spread>,
    pub loop1_rps: Option<Spread>,
    pub naive_rps: Option<Spread>,
    pub vs_loop: Option<Spread>,
    /// Against the better of the two loops of the same repetition.
    pub vs_best_loop: Option<Spread>,
    pub vs_naive: Option<Spread>,
    pub allot_p99_us: Option<Spread>,
    pub allot_cores: Option<Spread>,
    pub peak_rss_kib: Option<u64>,
    /// allot's side (load generator + server + database backends) used at
    /// least 90 % of the machine's cores.
    pub cpu_bound: bool,
}

struct Rep {
    allot: Measurement,
    looped: Measurement,
    loop1: Measurement,
    naive: Option<Measurement>,
}

fn rps(m: &Measurement) -> Option<f64> {
    m.valid().then_some(m.summary.rps)
}

fn cores(m: &Measurement) -> f64 {
    m.bench_cpu_cores.unwrap_or(0.0)
        + m.server_cpu_cores.unwrap_or(0.0)
        + m.db_cpu_cores.unwrap_or(0.0)
}

impl Bench {
    fn repetitions(&self) -> usize {
        self.args
            .repetitions
            .unwrap_or(if self.args.quick { 3 } else { 5 })
            .max(1)
    }

    pub async fn measure_repeated(
        &self,
        backend: Backend,
        scenario: Scenario,
        sides: &Sides<'_>,
    ) -> ScenarioReport {
        let runs = self.repetitions();
        let mut reps = Vec::with_capacity(runs);
        for run in 1..=runs {
            let name = format!("[{}] {} {run}/{runs}", backend.name(), scenario.name());
            eprintln!("{name}: allot");
            let allot = match self.measure_allot(sides.allot, sides.ids, scenario).await {
                Ok((m, _)) => m,
                Err(err) => failed("allot", &err),
            };
            let target = sides.baseline.target();
            eprintln!("{name}: {target}");
            let looped = self
                .measure_loop(sides.baseline, scenario, None)
                .await
                .unwrap_or_else(|err| failed(target, &err));
            eprintln!("{name}: {target} (1 conn)");
            let loop1 = self
                .measure_loop(sides.baseline, scenario, Some(1))
                .await
                .unwrap_or_else(|err| failed(target, &err));
            let naive = match (sides.naive, scenario) {
                (Some(naive), s) if s != Scenario::ConsumeBatch => {
                    eprintln!("{name}: naive-http");
                    Some(
                        self.measure_naive(naive, scenario)
                            .await
                            .unwrap_or_else(|err| failed("naive-http", &err)),
                    )
                }
                _ => None,
            };
            let rep = Rep {
                allot,
                looped,
                loop1,
                naive,
            };
            let mut shown = vec![&rep.allot, &rep.looped, &rep.loop1];
            shown.extend(rep.naive.as_ref());
            let stub = ScenarioReport::new(backend, scenario, rep.allot.clone(), None);
            for m in shown {
                println!("{}", measurement_line(&stub, m));
            }
            reps.push(rep);
        }
        summarize(backend, scenario, reps)
    }

    async fn measure_naive(&self, naive: &NaiveHttp, scenario: Scenario) -> Result<Measurement> {
        let ids = Arc::new(self.layout.baseline_ids());
        let before = naive.rows().await?;
        let tally = Arc::new(Tally::new(ids.len()));
        let server = naive.start().await?;
        let loaded = async {
            let target = HttpTarget::new(&server.url, &naive.secret).await?;
            let job = self.job(scenario, Op::Usage);
            let db = self.db_name(naive_backend(naive), "naive");
            timed_http(
                &target,
                &ids,
                &job,
                &tally,
                Some(server.pid()),
                db.as_deref(),
            )
            .await
        }
        .await;
        let rss = server.peak_rss_kib();
        server.stop().await;
        let (outcome, cpu) = loaded?;
        let after = naive.rows().await?;
        let mut verdict = verify::check("database", &after, &ids, &used_by_id(&before), &tally);
        self.check_outcome(scenario, &outcome, &mut verdict);
        Ok(measurement("naive-http", outcome, cpu, rss, verdict))
    }
}

fn naive_backend(naive: &NaiveHttp) -> Backend {
    if naive.is_postgres() {
        Backend::Postgres
    } else {
        Backend::Sqlite
    }
}

fn summarize(backend: Backend, scenario: Scenario, reps: Vec<Rep>) -> ScenarioReport {
    let valid = reps.iter().all(|r| {
        r.allot.valid()
            && r.looped.valid()
            && r.loop1.valid()
            && r.naive.as_ref().is_none_or(Measurement::valid)
    });
    let collect = |f: &dyn Fn(&Rep) -> Option<f64>| -> Option<Spread> {
        let values: Option<Vec<f64>> = reps.iter().map(f).collect();
        values.and_then(|v| Spread::of(&v))
    };
    let vs_loop = collect(&|r| Some(rps(&r.allot)? / rps(&r.looped)?));
    let repeated = Repeated {
        runs: reps.len(),
        allot_rps: collect(&|r| rps(&r.allot)),
        loop_rps: collect(&|r| rps(&r.looped)),
        loop1_rps: collect(&|r| rps(&r.loop1)),
        naive_rps: collect(&|r| r.naive.as_ref().and_then(rps)),
        vs_loop,
        vs_best_loop: collect(&|r| Some(rps(&r.allot)? / rps(&r.looped)?.max(rps(&r.loop1)?))),
        vs_naive: collect(&|r| Some(rps(&r.allot)? / rps(r.naive.as_ref()?)?)),
        allot_p99_us: collect(&|r| Some(r.allot.summary.p99_us as f64)),
        allot_cores: collect(&|r| Some(cores(&r.allot))),
        peak_rss_kib: reps.iter().filter_map(|r| r.allot.peak_rss_kib).max(),
        cpu_bound: false,
    };
    let cpus = std::thread::available_parallelism().map_or(1, usize::from) as f64;
    let cpu_bound = repeated.allot_cores.is_some_and(|c| c.median >= 0.9 * cpus);
    // The repetition whose ratio is the median stands for the scenario.
    let median_rep = vs_loop.and_then(|spread| {
        reps.iter().position(|r| {
            rps(&r.allot)
                .zip(rps(&r.looped))
                .is_some_and(|(a, b)| (a / b - spread.median).abs() < 1e-9)
        })
    });
    let chosen = median_rep.unwrap_or(0).min(reps.len().saturating_sub(1));
    let mut reps = reps;
    let rep = reps.swap_remove(chosen);
    let mut report = ScenarioReport::new(backend, scenario, rep.allot, Some(rep.looped));
    report.ratio = if valid {
        repeated.vs_loop.map(|s| s.median)
    } else {
        None
    };
    report.repeated = Some(Repeated {
        cpu_bound,
        ..repeated
    });
    report
}

/// The medians table, one line per repeated scenario.
pub fn summary_lines(reports: &[ScenarioReport]) -> Vec<String> {
    let mut lines = vec![format!(
        "{:<9} {:<16} {:>10} {:>10} {:>10} {:>10}  {:<22} {:<22} {:<22} {:>8} {:>6}  {}",
        "backend",
        "scenario",
        "allot/s",
        "loop/s",
        "loop1/s",
        "naive/s",
        "allot/loop [spread]",
        "allot/best loop",
        "allot/naive-http",
        "p99",
        "cores",
        "bound"
    )];
    let rate =
        |s: &Option<Spread>| s.map_or_else(|| "-".to_owned(), |s| format!("{:.0}", s.median));
    let ratio = |s: &Option<Spread>| s.map_or_else(|| "-".to_owned(), |s| s.ratio());
    for report in reports {
        let Some(r) = &report.repeated else { continue };
        lines.push(format!(
            "{:<9} {:<16} {:>10} {:>10} {:>10} {:>10}  {:<22} {:<22} {:<22} {:>8} {:>6}  {}",
            report.backend.name(),
            report.scenario.name(),
            rate(&r.allot_rps),
            rate(&r.loop_rps),
            rate(&r.loop1_rps),
            rate(&r.naive_rps),
            ratio(&r.vs_loop),
            ratio(&r.vs_best_loop),
            ratio(&r.vs_naive),
            r.allot_p99_us.map_or_else(
                || "-".to_owned(),
                |p| crate::report::micros(p.median as u64)
            ),
            r.allot_cores
                .map_or_else(|| "-".to_owned(), |c| format!("{:.2}", c.median)),
            if r.cpu_bound { "CPU" } else { "not CPU" },
        ));
    }
    lines
}

/// One goal of the issue: what was measured against what was asked.
struct Goal {
    what: String,
    measured: Option<f64>,
    goal: f64,
    /// true: measured must be at least the goal; false: at most.
    at_least: bool,
    unit: &'static str,
}

impl Goal {
    fn line(&self) -> String {
        let (value, verdict) = match self.measured {
            None => ("not measured".to_owned(), "-".to_owned()),
            Some(m) => {
                let met = if self.at_least {
                    m >= self.goal
                } else {
                    m <= self.goal
                };
                let by = if self.at_least {
                    m / self.goal
                } else {
                    self.goal / m
                };
                (
                    format!("{m:.2}{}", self.unit),
                    format!(
                        "{} ({:.2} of the goal)",
                        if met { "met" } else { "MISSED" },
                        by
                    ),
                )
            }
        };
        let op = if self.at_least { ">=" } else { "<=" };
        format!(
            "{:<58} {:>14}  {op} {:<8} {}",
            self.what,
            value,
            format!("{}{}", self.goal, self.unit),
            verdict
        )
    }
}

/// The goals table of the throughput issue, from this run's medians.
pub fn goal_lines(reports: &[ScenarioReport], synchronous: Synchronous) -> Vec<String> {
    let find = |backend: Backend, scenario: Scenario| {
        reports
            .iter()
            .find(|r| r.backend == backend && r.scenario == scenario)
    };
    let rep = |backend, scenario, f: fn(&Repeated) -> Option<Spread>| {
        find(backend, scenario)
            .and_then(|r| r.repeated.as_ref())
            .and_then(f)
            .map(|s| s.median)
    };
    let healthz = |backend| {
        find(backend, Scenario::Balance)
            .and_then(|r| r.baseline.as_ref())
            .and_then(rps)
    };
    let sync = match synchronous {
        Synchronous::Normal => "NORMAL",
        Synchronous::Full => "FULL",
    };
    let (s, p) = (Backend::Sqlite, Backend::Postgres);
    let mut goals = Vec::new();
    let mut push = |what: String, measured: Option<f64>, goal: f64, at_least: bool, unit| {
        goals.push(Goal {
            what,
            measured,
            goal,
            at_least,
            unit,
        })
    };
    if synchronous == Synchronous::Normal {
        push(
            format!("SQLite {sync} consume-uniform / naive-http"),
            rep(s, Scenario::ConsumeUniform, |r| r.vs_naive),
            2.0,
            true,
            "x",
        );
        push(
            format!("SQLite {sync} consume-uniform / best in-process loop"),
            rep(s, Scenario::ConsumeUniform, |r| r.vs_best_loop),
            1.2,
            true,
            "x",
        );
        push(
            format!("SQLite {sync} consume-hot / best in-process loop"),
            rep(s, Scenario::ConsumeHot, |r| r.vs_best_loop),
            1.5,
            true,
            "x",
        );
        push(
            format!("SQLite {sync} consume-batch uses/s / best loop"),
            rep(s, Scenario::ConsumeBatch, |r| r.vs_best_loop),
            5.0,
            true,
            "x",
        );
    } else {
        push(
            format!("SQLite {sync} consume-uniform / loop"),
            rep(s, Scenario::ConsumeUniform, |r| r.vs_loop),
            4.0,
            true,
            "x",
        );
    }
    push(
        "PostgreSQL consume-uniform / loop".into(),
        rep(p, Scenario::ConsumeUniform, |r| r.vs_loop),
        2.0,
        true,
        "x",
    );
    push(
        "PostgreSQL consume-hot / loop".into(),
        rep(p, Scenario::ConsumeHot, |r| r.vs_loop),
        10.0,
        true,
        "x",
    );
    let uniform = rep(s, Scenario::ConsumeUniform, |r| r.allot_rps);
    push(
        format!("SQLite {sync} consume-uniform / healthz"),
        uniform.zip(healthz(s)).map(|(a, h)| a / h),
        0.4,
        true,
        "x",
    );
    push(
        "SQLite balance / healthz".into(),
        find(s, Scenario::Balance).and_then(|r| r.ratio),
        0.6,
        true,
        "x",
    );
    push(
        "PostgreSQL balance / healthz".into(),
        find(p, Scenario::Balance).and_then(|r| r.ratio),
        0.35,
        true,
        "x",
    );
    let worst_p99 = reports
        .iter()
        .filter_map(|r| r.repeated.as_ref())
        .filter_map(|r| r.allot_p99_us.map(|p| p.median / 1000.0))
        .reduce(f64::max);
    push(
        "p99 at 64 clients, worst consume scenario (median)".into(),
        worst_p99,
        20.0,
        false,
        "ms",
    );
    let rss = reports
        .iter()
        .filter_map(|r| r.allot.peak_rss_kib)
        .max()
        .map(|k| k as f64 / 1024.0);
    push("peak RSS, worst scenario".into(), rss, 100.0, false, "MiB");
    let mut lines = vec![format!(
        "{:<58} {:>14}  {:<11} {}",
        "goal (medians of this run)", "measured", "goal", "verdict"
    )];
    lines.extend(goals.iter().map(Goal::line));
    lines.push("p50 with 10 M ledger rows vs empty: not part of this run (--ledger-rows)".into());
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spreads() {
        let s = Spread::of(&[3.0, 1.0, 2.0]).unwrap();
        assert_eq!((s.median, s.min, s.max), (2.0, 1.0, 3.0));
        let s = Spread::of(&[4.0, 1.0, 2.0, 3.0]).unwrap();
        assert_eq!(s.median, 2.5);
        assert!(Spread::of(&[]).is_none());
    }

    #[test]
    fn goals_say_met_or_missed() {
        let goal = Goal {
            what: "x".into(),
            measured: Some(1.0),
            goal: 2.0,
            at_least: true,
            unit: "x",
        };
        assert!(goal.line().contains("MISSED (0.50 of the goal)"));
        let goal = Goal {
            what: "p99".into(),
            measured: Some(10.0),
            goal: 20.0,
            at_least: false,
            unit: "ms",
        };
        assert!(goal.line().contains("met (2.00 of the goal)"));
    }
}
