//! One backend's run: set up allot and the baseline, then measure and verify each scenario.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::api::Api;
use crate::baseline_postgres::PgBaseline;
use crate::baseline_sqlite::SqliteBaseline;
use crate::cli::{Args, Backend, Plan};
use crate::http_load::{self, HttpTarget};
use crate::ledger_fill;
use crate::pg;
use crate::report::{Measurement, ScenarioReport};
use crate::scenarios::{Layout, LoadJob, Op, Scenario};
use crate::server::{RunningServer, ServerSpec};
use crate::server_db::ServerDb;
use crate::stats::{new_histogram, Outcome, Stop, Summary, Tally};
use crate::verify::{self, used_by_id, BalanceRow, Verdict, MILLI};

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

/// The allot server under test.
enum Allot {
    /// A child `allot serve`, restarted for every scenario.
    Managed {
        spec: ServerSpec,
        key: String,
        db: ServerDb,
    },
    /// A server given with `--url`.
    External {
        url: String,
        key: String,
        db: Option<ServerDb>,
    },
}

enum Baseline {
    Sqlite(SqliteBaseline),
    Postgres(PgBaseline),
}

impl Baseline {
    fn target(&self) -> &'static str {
        match self {
            Baseline::Sqlite(_) => "sqlite loop",
            Baseline::Postgres(_) => "postgres loop",
        }
    }

    async fn rows(&self) -> Result<Vec<BalanceRow>> {
        match self {
            Baseline::Sqlite(base) => {
                let base = base.clone();
                tokio::task::spawn_blocking(move || base.rows()).await?
            }
            Baseline::Postgres(base) => base.rows().await,
        }
    }
}

/// Databases to drop when the backend is done.
struct Cleanup {
    admin_url: String,
    databases: Vec<String>,
}

impl Bench {
    pub async fn run_backend(&self, backend: Backend) -> Result<Vec<ScenarioReport>> {
        let mut cleanup = Cleanup {
            admin_url: self.args.pg_url.clone(),
            databases: Vec::new(),
        };
        let result = self.run_backend_inner(backend, &mut cleanup).await;
        if !self.args.keep_data {
            for db in &cleanup.databases {
                if let Err(err) = pg::drop_database(&cleanup.admin_url, db).await {
                    eprintln!("warning: could not drop database {db}: {err:#}");
                }
            }
        }
        result
    }

    async fn run_backend_inner(
        &self,
        backend: Backend,
        cleanup: &mut Cleanup,
    ) -> Result<Vec<ScenarioReport>> {
        let allot = self.prepare_allot(backend, cleanup).await?;
        let ids = Arc::new(self.create_entitlements(&allot).await?);
        let baseline = self.prepare_baseline(backend, cleanup).await?;
        let mut reports = Vec::new();
        for &scenario in &self.plan.scenarios {
            if scenario == Scenario::ConsumeUniform && self.args.ledger_rows > 0 {
                self.prefill(&allot, &baseline, &ids).await?;
            }
            eprintln!("[{}] {}: allot", backend.name(), scenario.name());
            let (measured, healthz) = match self.measure_allot(&allot, &ids, scenario).await {
                Ok(measured) => measured,
                Err(err) => (failed("allot", &err), None),
            };
            let base = match healthz {
                Some(healthz) => Some(healthz),
                None if scenario == Scenario::Balance => None,
                None => {
                    eprintln!(
                        "[{}] {}: {}",
                        backend.name(),
                        scenario.name(),
                        baseline.target()
                    );
                    match self.measure_baseline(&baseline, scenario).await {
                        Ok(measured) => measured,
                        Err(err) => Some(failed(baseline.target(), &err)),
                    }
                }
            };
            let mut report = ScenarioReport::new(backend, scenario, measured, base);
            if scenario == Scenario::ConsumeUniform && self.args.ledger_rows > 0 {
                report.notes.push(format!(
                    "ledger pre-filled with {} rows in both databases",
                    self.args.ledger_rows
                ));
            }
            for line in crate::report::scenario_lines(&report) {
                println!("{line}");
            }
            reports.push(report);
        }
        Ok(reports)
    }

    async fn prepare_allot(&self, backend: Backend, cleanup: &mut Cleanup) -> Result<Allot> {
        if let (Some(url), Some(key)) = (&self.args.url, &self.args.key) {
            let db = self
                .args
                .server_db
                .as_deref()
                .map(ServerDb::parse)
                .transpose()?;
            return Ok(Allot::External {
                url: url.clone(),
                key: key.clone(),
                db,
            });
        }
        let db_url = match backend {
            Backend::Sqlite => {
                let path = self.run_dir.join("allot-server.db");
                format!("sqlite://{}", path.display())
            }
            Backend::Postgres => {
                let name = format!("allot_bench_srv_{}", self.tag);
                let url = pg::create_database(&self.args.pg_url, &name).await?;
                cleanup.databases.push(name);
                url
            }
        };
        let bin = self.allot_bin.clone().context("no allot binary resolved")?;
        let spec = ServerSpec {
            bin,
            db_url: db_url.clone(),
            synchronous: self.args.synchronous,
            log: self.run_dir.join(format!("allot-{}.log", backend.name())),
        };
        let key = spec.prepare()?;
        Ok(Allot::Managed {
            spec,
            key,
            db: ServerDb::parse(&db_url)?,
        })
    }

    async fn create_entitlements(&self, allot: &Allot) -> Result<Vec<String>> {
        let began = Instant::now();
        let (server, url, key) = self.start(allot).await?;
        let created = async {
            let api = Api::new(&url, &key)?;
            api.create_layout(&self.layout, self.args.setup_concurrency)
                .await
        }
        .await;
        stop(server).await?;
        let ids = created?;
        eprintln!(
            "setup: {} entitlements created over HTTP in {:.1}s",
            ids.len(),
            began.elapsed().as_secs_f64()
        );
        Ok(ids)
    }

    async fn prepare_baseline(&self, backend: Backend, cleanup: &mut Cleanup) -> Result<Baseline> {
        match backend {
            Backend::Sqlite => {
                let path = self.run_dir.join("baseline.db");
                let (sync, layout) = (self.args.synchronous, self.layout);
                let base = tokio::task::spawn_blocking(move || {
                    SqliteBaseline::create(&path, sync, &layout)
                })
                .await??;
                Ok(Baseline::Sqlite(base))
            }
            Backend::Postgres => {
                let name = format!("allot_bench_base_{}", self.tag);
                let url = pg::create_database(&self.args.pg_url, &name).await?;
                cleanup.databases.push(name);
                Ok(Baseline::Postgres(
                    PgBaseline::create(&url, &self.layout).await?,
                ))
            }
        }
    }

    async fn prefill(&self, allot: &Allot, baseline: &Baseline, ids: &[String]) -> Result<()> {
        let rows = self.args.ledger_rows;
        let pool = self.layout.pool;
        let began = Instant::now();
        match allot {
            Allot::Managed { db, .. } => {
                ledger_fill::prefill_server(db, &ids[..pool], rows).await?
            }
            Allot::External { db: Some(db), .. } => {
                eprintln!("warning: pre-filling the ledger of a running server");
                ledger_fill::prefill_server(db, &ids[..pool], rows).await?;
            }
            Allot::External { db: None, .. } => {
                anyhow::bail!("--ledger-rows with --url needs --server-db")
            }
        }
        let base_ids = self.layout.baseline_ids();
        match baseline {
            Baseline::Sqlite(base) => {
                let base = base.clone();
                tokio::task::spawn_blocking(move || base.prefill_ledger(&base_ids[..pool], rows))
                    .await??;
            }
            Baseline::Postgres(base) => base.prefill_ledger(&base_ids[..pool], rows).await?,
        }
        eprintln!(
            "setup: {rows} ledger rows pre-filled in {:.1}s",
            began.elapsed().as_secs_f64()
        );
        Ok(())
    }

    /// Starts a fresh server (managed) or returns the external one.
    async fn start(&self, allot: &Allot) -> Result<(Option<RunningServer>, String, String)> {
        match allot {
            Allot::Managed { spec, key, .. } => {
                let server = spec.start().await?;
                let url = server.base_url.clone();
                Ok((Some(server), url, key.clone()))
            }
            Allot::External { url, key, .. } => Ok((None, url.clone(), key.clone())),
        }
    }

    async fn allot_rows(
        &self,
        allot: &Allot,
        ids: &[String],
    ) -> Result<(Vec<BalanceRow>, &'static str)> {
        match allot {
            Allot::Managed { db, .. } | Allot::External { db: Some(db), .. } => {
                Ok((db.rows().await?, "database"))
            }
            Allot::External { url, key, db: None } => {
                let api = Api::new(url, key)?;
                let balances = api.balances(ids, self.args.setup_concurrency).await?;
                let rows = ids
                    .iter()
                    .zip(balances)
                    .map(|(id, balance)| BalanceRow {
                        id: id.clone(),
                        used_milli: (balance.used * MILLI as f64).round() as i64,
                        ledger_milli: None,
                        cap_milli: balance.total.map(|t| (t * MILLI as f64).round() as i64),
                        restricted: true,
                    })
                    .collect();
                Ok((rows, "api"))
            }
        }
    }

    fn job(&self, scenario: Scenario, op: Op) -> LoadJob {
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
    async fn measure_allot(
        &self,
        allot: &Allot,
        ids: &Arc<Vec<String>>,
        scenario: Scenario,
    ) -> Result<(Measurement, Option<Measurement>)> {
        let (before, _) = self.allot_rows(allot, ids).await?;
        let tally = Arc::new(Tally::new(ids.len()));
        let (server, url, key) = self.start(allot).await?;
        let loaded = async {
            let target = HttpTarget::new(&url, &key).await?;
            let op = if scenario == Scenario::Balance {
                Op::Balance
            } else {
                Op::Usage
            };
            let outcome =
                http_load::run(&target, ids, &self.job(scenario, op), Arc::clone(&tally)).await?;
            let healthz = if scenario == Scenario::Balance {
                Some(
                    http_load::run(
                        &target,
                        ids,
                        &self.job(scenario, Op::Healthz),
                        Arc::clone(&tally),
                    )
                    .await?,
                )
            } else {
                None
            };
            Ok::<_, anyhow::Error>((outcome, healthz))
        }
        .await;
        let peak_rss_kib = server.as_ref().and_then(RunningServer::peak_rss_kib);
        stop(server).await?;
        let (outcome, healthz) = loaded?;
        let (after, method) = self.allot_rows(allot, ids).await?;
        let mut verdict = verify::check(method, &after, ids, &used_by_id(&before), &tally);
        self.check_outcome(scenario, &outcome, &mut verdict);
        let measured = Measurement {
            target: if scenario == Scenario::Balance {
                "allot balance".to_owned()
            } else {
                "allot".to_owned()
            },
            summary: outcome.summary,
            counts: outcome.counts,
            peak_rss_kib,
            verdict: Some(verdict),
        };
        let healthz = healthz.map(|health| {
            let mut verdict = Verdict {
                valid: true,
                method: "status",
                checked: 0,
                problems: Vec::new(),
            };
            unexpected_problem(&health, &mut verdict);
            Measurement {
                target: "allot /healthz".to_owned(),
                summary: health.summary,
                counts: health.counts,
                peak_rss_kib,
                verdict: Some(verdict),
            }
        });
        Ok((measured, healthz))
    }

    async fn measure_baseline(
        &self,
        baseline: &Baseline,
        scenario: Scenario,
    ) -> Result<Option<Measurement>> {
        let ids = Arc::new(self.layout.baseline_ids());
        let before = baseline.rows().await?;
        let tally = Arc::new(Tally::new(ids.len()));
        let job = self.job(scenario, Op::Usage);
        let outcome = match baseline {
            Baseline::Sqlite(base) => {
                let (base, ids, tally) = (base.clone(), Arc::clone(&ids), Arc::clone(&tally));
                tokio::task::spawn_blocking(move || base.run(&ids, &job, &tally)).await??
            }
            Baseline::Postgres(base) => {
                base.run(Arc::clone(&ids), &job, Arc::clone(&tally)).await?
            }
        };
        let after = baseline.rows().await?;
        let mut verdict = verify::check("database", &after, &ids, &used_by_id(&before), &tally);
        self.check_outcome(scenario, &outcome, &mut verdict);
        Ok(Some(Measurement {
            target: baseline.target().to_owned(),
            summary: outcome.summary,
            counts: outcome.counts,
            peak_rss_kib: None,
            verdict: Some(verdict),
        }))
    }

    /// Exhaust must accept exactly the cap and refuse the rest; nothing may fail unexpectedly.
    fn check_outcome(&self, scenario: Scenario, outcome: &Outcome, verdict: &mut Verdict) {
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

/// A run that could not complete: INVALID, with the error as its problem.
fn failed(target: &str, err: &anyhow::Error) -> Measurement {
    eprintln!("error: {target}: {err:#}");
    Measurement {
        target: target.to_owned(),
        summary: Summary::new(&new_histogram(), Duration::ZERO),
        counts: Default::default(),
        peak_rss_kib: None,
        verdict: Some(Verdict {
            valid: false,
            method: "none",
            checked: 0,
            problems: vec![format!("run failed: {err:#}")],
        }),
    }
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

async fn stop(server: Option<RunningServer>) -> Result<()> {
    match server {
        Some(server) => server.stop().await,
        None => Ok(()),
    }
}
