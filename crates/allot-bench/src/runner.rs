//! One backend's run: set up allot and the baseline, then measure and verify each scenario.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::allot_target::{Allot, ManagedSetup};
use crate::baseline::Baseline;
use crate::cli::{Args, Backend, Plan};
use crate::cpu::CpuMeter;
use crate::http_load::{self, HttpTarget};
use crate::pg::DropList;
use crate::report::{Measurement, ScenarioReport};
use crate::scenarios::{Layout, LoadJob, Op, Scenario};
use crate::stats::{new_histogram, Outcome, Stop, Summary, Tally};
use crate::verify::{self, used_by_id, Verdict};

/// Settings shared by every backend of one invocation.
#[derive(Debug)]
pub struct Bench {
    pub args: Args,
    pub plan: Plan,
    pub layout: Layout,
    pub tag: String,
    pub run_dir: PathBuf,
    pub allot_bin: Option<PathBuf>,
}

/// Cores used by (this process, the server, the database's backends) during one run.
pub(crate) type CpuCores = (Option<f64>, Option<f64>, Option<f64>);

impl Bench {
    pub async fn run_backend(&self, backend: Backend) -> Result<Vec<ScenarioReport>> {
        let mut drops = DropList::new(&self.args.pg_url);
        let result = self.run_backend_inner(backend, &mut drops).await;
        if !self.args.keep_data {
            drops.drop_all().await;
        }
        result
    }

    async fn run_backend_inner(
        &self,
        backend: Backend,
        drops: &mut DropList,
    ) -> Result<Vec<ScenarioReport>> {
        let mut reports = Vec::new();
        for &scenario in self.plan.scenarios.iter().filter(|s| s.standalone()) {
            let found = match scenario {
                Scenario::Reports => crate::scenario_reports::run(self, backend, drops).await,
                Scenario::Dashboard => crate::scenario_dashboard::run(self, backend, drops).await,
                _ => crate::scenario_software::run(self, backend, drops).await,
            };
            match found {
                Ok(found) => reports.extend(found),
                Err(err) => eprintln!("error: [{}] {}: {err:#}", backend.name(), scenario.name()),
            }
        }
        if self.plan.scenarios.iter().all(|s| s.standalone()) {
            return Ok(reports);
        }
        let allot = self.prepare_allot(backend, drops).await?;
        let ids = allot
            .create_entitlements(&self.layout, self.args.setup_concurrency)
            .await?;
        let ids = Arc::new(ids);
        let baseline = Baseline::prepare(
            backend,
            self.layout,
            &self.run_dir,
            self.args.synchronous,
            &self.args.pg_url,
            &self.tag,
            drops,
        )
        .await?;
        let naive = if self.args.url.is_none()
            && self
                .plan
                .scenarios
                .iter()
                .any(|s| crate::repeat::repeated(*s))
        {
            Some(
                crate::naive_http::NaiveHttp::prepare(
                    backend,
                    self.layout,
                    &self.run_dir,
                    self.args.synchronous,
                    &self.args.pg_url,
                    &self.tag,
                    drops,
                )
                .await?,
            )
        } else {
            None
        };
        for &scenario in self.plan.scenarios.iter().filter(|s| !s.standalone()) {
            let prefilled = scenario == Scenario::ConsumeUniform && self.args.ledger_rows > 0;
            if prefilled {
                self.prefill(&allot, &baseline, &ids).await?;
            }
            let report = if crate::repeat::repeated(scenario) && !prefilled {
                let sides = crate::repeat::Sides {
                    allot: &allot,
                    baseline: &baseline,
                    naive: naive.as_ref(),
                    ids: &ids,
                };
                self.measure_repeated(backend, scenario, &sides).await
            } else {
                self.measure_scenario(backend, scenario, &allot, &baseline, &ids, prefilled)
                    .await
            };
            for line in crate::report::scenario_lines(&report) {
                println!("{line}");
            }
            reports.push(report);
        }
        Ok(reports)
    }

    pub(crate) async fn prepare_allot(
        &self,
        backend: Backend,
        drops: &mut DropList,
    ) -> Result<Allot> {
        if let (Some(url), Some(key)) = (&self.args.url, &self.args.key) {
            return Allot::external(url, key, self.args.server_db.as_deref());
        }
        let bin = self
            .allot_bin
            .as_deref()
            .context("no allot binary resolved")?;
        let setup = ManagedSetup {
            bin,
            run_dir: &self.run_dir,
            pg_admin_url: &self.args.pg_url,
            tag: &self.tag,
            synchronous: self.args.synchronous,
        };
        Allot::managed(backend, &setup, drops).await
    }

    async fn prefill(&self, allot: &Allot, baseline: &Baseline, ids: &[String]) -> Result<()> {
        let (rows, pool) = (self.args.ledger_rows, self.layout.pool);
        let began = Instant::now();
        allot.prefill(&ids[..pool], rows).await?;
        let base_ids = self.layout.baseline_ids()[..pool].to_vec();
        baseline.prefill(base_ids, rows).await?;
        eprintln!(
            "setup: {rows} ledger rows pre-filled in {:.1}s",
            began.elapsed().as_secs_f64()
        );
        Ok(())
    }

    /// allot, then its baseline (or `/healthz` for `balance`); a failed run becomes INVALID.
    async fn measure_scenario(
        &self,
        backend: Backend,
        scenario: Scenario,
        allot: &Allot,
        baseline: &Baseline,
        ids: &Arc<Vec<String>>,
        prefilled: bool,
    ) -> ScenarioReport {
        eprintln!("[{}] {}: allot", backend.name(), scenario.name());
        let (measured, healthz) = match self.measure_allot(allot, ids, scenario).await {
            Ok(measured) => measured,
            Err(err) => (failed("allot", &err), None),
        };
        let base = if scenario == Scenario::Balance {
            healthz
        } else {
            let target = baseline.target();
            eprintln!("[{}] {}: {target}", backend.name(), scenario.name());
            Some(
                self.measure_baseline(baseline, scenario)
                    .await
                    .unwrap_or_else(|err| failed(target, &err)),
            )
        };
        let mut report = ScenarioReport::new(backend, scenario, measured, base);
        if scenario == Scenario::ConsumeBatch {
            report.notes.push(format!(
                "allot req/s counts uses ({} per request; 2xx/latency per request)",
                crate::batch_load::USES_PER_REQUEST
            ));
        }
        if prefilled {
            report.notes.push(format!(
                "ledger pre-filled with {} rows in both databases",
                self.args.ledger_rows
            ));
        }
        report
    }

    pub(crate) fn job(&self, scenario: Scenario, op: Op) -> LoadJob {
        let (stop, warmup) = if scenario == Scenario::ConsumeExhaust {
            (Stop::Requests(self.plan.exhaust_requests), Duration::ZERO)
        } else {
            (Stop::For(self.plan.duration), self.plan.warmup)
        };
        LoadJob {
            op,
            pick: self.layout.pick_for(scenario),
            concurrency: self.plan.concurrency,
            stop,
            warmup,
        }
    }

    /// Measures allot on a fresh server; for `balance`, also `/healthz` on the same server.
    pub(crate) async fn measure_allot(
        &self,
        allot: &Allot,
        ids: &Arc<Vec<String>>,
        scenario: Scenario,
    ) -> Result<(Measurement, Option<Measurement>)> {
        let parallel = self.args.setup_concurrency;
        let (before, _) = allot.rows(ids, parallel).await?;
        let tally = Arc::new(Tally::new(ids.len()));
        let started = allot.start().await?;
        let server_pid = started.pid();
        let loaded = async {
            let target = HttpTarget::new(&started.url, &started.key).await?;
            let op = match scenario {
                Scenario::Balance => Op::Balance,
                Scenario::ConsumeBatch => Op::UsageBatch,
                _ => Op::Usage,
            };
            let job = self.job(scenario, op);
            let db = self.db_name(backend_of(allot), "srv");
            let main = timed_http(&target, ids, &job, &tally, server_pid, db.as_deref()).await?;
            let healthz = if scenario == Scenario::Balance {
                let job = self.job(scenario, Op::Healthz);
                Some(timed_http(&target, ids, &job, &tally, server_pid, db.as_deref()).await?)
            } else {
                None
            };
            Ok::<_, anyhow::Error>((main, healthz))
        }
        .await;
        let peak_rss_kib = started.peak_rss_kib();
        started.stop().await?;
        let ((outcome, cpu), healthz) = loaded?;
        let (after, method) = allot.rows(ids, parallel).await?;
        let mut verdict = verify::check(method, &after, ids, &used_by_id(&before), &tally);
        self.check_outcome(scenario, &outcome, &mut verdict);
        let target = if scenario == Scenario::Balance {
            "allot balance"
        } else {
            "allot"
        };
        let measured = measurement(target, outcome, cpu, peak_rss_kib, verdict);
        let healthz = healthz.map(|(health, cpu)| {
            let mut verdict = Verdict {
                valid: true,
                method: "status",
                checked: 0,
                problems: Vec::new(),
            };
            unexpected_problem(&health, &mut verdict);
            measurement("allot /healthz", health, cpu, peak_rss_kib, verdict)
        });
        Ok((measured, healthz))
    }

    async fn measure_baseline(
        &self,
        baseline: &Baseline,
        scenario: Scenario,
    ) -> Result<Measurement> {
        self.measure_loop(baseline, scenario, None).await
    }

    /// The loop with the run's concurrency, or with `connections` of its own.
    pub(crate) async fn measure_loop(
        &self,
        baseline: &Baseline,
        scenario: Scenario,
        connections: Option<usize>,
    ) -> Result<Measurement> {
        let ids = Arc::new(self.layout.baseline_ids());
        let before = baseline.rows().await?;
        let tally = Arc::new(Tally::new(ids.len()));
        let meter = CpuMeter::own();
        let mut job = self.job(scenario, Op::Usage);
        if let Some(connections) = connections {
            job.concurrency = connections;
        }
        let backend = match baseline {
            Baseline::Sqlite(_) => Backend::Sqlite,
            Baseline::Postgres(_) => Backend::Postgres,
        };
        let db = self
            .db_name(backend, "base")
            .map(|d| crate::db_cpu::DbCpuMeter::start(&d));
        let outcome = baseline
            .run(Arc::clone(&ids), job, Arc::clone(&tally))
            .await?;
        let cpu = (meter.cores(), None, db.and_then(|m| m.cores()));
        let after = baseline.rows().await?;
        let mut verdict = verify::check("database", &after, &ids, &used_by_id(&before), &tally);
        self.check_outcome(scenario, &outcome, &mut verdict);
        let target = match connections {
            Some(1) => format!("{} (1 conn)", baseline.target()),
            Some(n) => format!("{} ({n} conns)", baseline.target()),
            None => baseline.target().to_owned(),
        };
        Ok(measurement(&target, outcome, cpu, None, verdict))
    }

    /// The PostgreSQL database of one side of the run (`srv`, `base`,
    /// `naive`), whose backends' CPU is counted; none on SQLite.
    pub(crate) fn db_name(&self, backend: Backend, side: &str) -> Option<String> {
        match (backend, &self.args.url) {
            (Backend::Postgres, None) => Some(format!("allot_bench_{side}_{}", self.tag)),
            (Backend::Postgres, Some(_)) => self
                .args
                .server_db
                .as_deref()
                .filter(|_| side == "srv")
                .and_then(crate::db_cpu::database_of),
            (Backend::Sqlite, _) => None,
        }
    }

    /// Exhaust must accept exactly the cap and refuse the rest; nothing may fail unexpectedly.
    pub(crate) fn check_outcome(
        &self,
        scenario: Scenario,
        outcome: &Outcome,
        verdict: &mut Verdict,
    ) {
        unexpected_problem(outcome, verdict);
        if scenario == Scenario::ConsumeExhaust {
            let cap = self.plan.exhaust_cap;
            let refused = self.plan.exhaust_requests - cap;
            if outcome.counts.ok != cap || outcome.counts.refused != refused {
                verdict.add_problem(format!(
                    "exhaust: {} accepted / {} refused, expected {cap} / {refused}",
                    outcome.counts.ok, outcome.counts.refused
                ));
            }
        } else if outcome.counts.refused > 0 {
            verdict.add_problem(format!("{} unexpected refusals", outcome.counts.refused));
        }
    }
}

pub(crate) async fn timed_http(
    target: &HttpTarget,
    ids: &[String],
    job: &LoadJob,
    tally: &Arc<Tally>,
    server_pid: Option<u32>,
    db: Option<&str>,
) -> Result<(Outcome, CpuCores)> {
    let bench = CpuMeter::own();
    let server = server_pid.map(CpuMeter::start);
    let db = db.map(crate::db_cpu::DbCpuMeter::start);
    let outcome = http_load::run(target, ids, job, Arc::clone(tally)).await?;
    let cores = (
        bench.cores(),
        server.and_then(|meter| meter.cores()),
        db.and_then(|meter| meter.cores()),
    );
    Ok((outcome, cores))
}

/// The backend a server runs on, from its database URL.
fn backend_of(allot: &Allot) -> Backend {
    if allot.is_postgres() {
        Backend::Postgres
    } else {
        Backend::Sqlite
    }
}

pub(crate) fn measurement(
    target: &str,
    outcome: Outcome,
    cpu: CpuCores,
    peak_rss_kib: Option<u64>,
    verdict: Verdict,
) -> Measurement {
    Measurement {
        target: target.to_owned(),
        summary: outcome.summary,
        counts: outcome.counts,
        peak_rss_kib,
        bench_cpu_cores: cpu.0,
        server_cpu_cores: cpu.1,
        db_cpu_cores: cpu.2,
        verdict: Some(verdict),
    }
}

/// A run that could not complete: INVALID, with the error as its problem.
pub(crate) fn failed(target: &str, err: &anyhow::Error) -> Measurement {
    eprintln!("error: {target}: {err:#}");
    let outcome = Outcome {
        summary: Summary::new(&new_histogram(), Duration::ZERO),
        counts: Default::default(),
    };
    let verdict = Verdict {
        valid: false,
        method: "none",
        checked: 0,
        problems: vec![format!("run failed: {err:#}")],
    };
    measurement(target, outcome, (None, None, None), None, verdict)
}

fn unexpected_problem(outcome: &Outcome, verdict: &mut Verdict) {
    if outcome.counts.unexpected_total() > 0 {
        let kinds: Vec<String> = outcome
            .counts
            .unexpected
            .iter()
            .map(|(kind, n)| format!("{n}x {kind}"))
            .collect();
        verdict.add_problem(format!("unexpected responses: {}", kinds.join(", ")));
    }
}
