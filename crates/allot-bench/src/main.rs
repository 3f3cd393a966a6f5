//! `allot-bench`: drives `allot serve` in closed loop and compares it with raw database loops.

#![forbid(unsafe_code)]

mod allot_target;
mod api;
mod baseline;
mod baseline_postgres;
mod baseline_sqlite;
mod batch_load;
mod cli;
mod cpu;
mod db_cpu;
mod http_load;
mod import_scenario;
mod ledger_fill;
mod naive_http;
mod overload;
mod pg;
mod repeat;
mod report;
mod runner;
mod scenario_dashboard;
mod scenario_reports;
mod scenario_reports_fixture;
mod scenario_software;
mod scenarios;
mod server;
mod server_db;
mod stats;
mod verify;

use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Result;
use clap::Parser;
use rand::Rng;

use crate::cli::Args;
use crate::report::{RunReport, RSS_METHOD};
use crate::runner::Bench;
use crate::scenarios::Layout;

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(db) = &args.naive_serve {
        return match naive_http::serve(db, &args.naive_listen, args.synchronous) {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("naive-http: {err:#}");
                ExitCode::FAILURE
            }
        };
    }
    let runtime = if args.client_threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.client_threads)
            .enable_all()
            .build()
    };
    let runtime = match runtime {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the tokio runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("error: at least one run failed verification (INVALID)");
            ExitCode::FAILURE
        }
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs every backend; returns whether every run verified.
async fn run(args: Args) -> Result<bool> {
    if args.overload {
        return overload::run(&args).await;
    }
    let plan = args.plan()?;
    let needs_pool = plan.scenarios.iter().any(|s| s.needs_pool());
    let layout = Layout {
        pool: if needs_pool { plan.entitlements } else { 0 },
        exhaust_cap: plan.exhaust_cap,
    };
    let tag = hex::encode(rand::thread_rng().gen::<[u8; 4]>());
    let run_dir = server::target_dir()
        .join("allot-bench")
        .join(format!("run-{tag}"));
    std::fs::create_dir_all(&run_dir)?;
    let allot_bin = if args.url.is_some() {
        None
    } else {
        let bin = server::ensure_binary(args.allot_bin.as_deref())?;
        Some(server::pin_binary(&bin, &run_dir)?)
    };
    if let (true, Some(bin)) = (args.import, &allot_bin) {
        import_scenario::run(&args, bin, &run_dir, &tag).await?;
        if !args.keep_data {
            let _ = std::fs::remove_dir_all(&run_dir);
        }
        return Ok(true);
    }
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    let load = cpu::load_average();
    let busy = cpu::machine_busy_percent().await;
    println!(
        "allot-bench: {cpus} CPUs (load average {load}; {busy} CPU busy in the second before start), concurrency {}, {:?} per scenario (+{:?} warm-up), {} pooled entitlements, exhaust cap {} with {} requests, synchronous={}",
        plan.concurrency,
        plan.duration,
        plan.warmup,
        layout.pool,
        plan.exhaust_cap,
        plan.exhaust_requests,
        args.synchronous.env_value(),
    );
    println!("{RSS_METHOD}; latency is per request, closed loop; the balance scenario's baseline is /healthz");
    println!("CPU b+s = average cores used by allot-bench (the load generator, or the whole baseline loop) + by allot serve");
    println!("{}", report::header());
    let bench = Bench {
        args: args.clone(),
        plan: plan.clone(),
        layout,
        tag,
        run_dir: run_dir.clone(),
        allot_bin,
    };
    let mut reports = Vec::new();
    for &backend in &plan.backends {
        reports.extend(bench.run_backend(backend).await?);
    }
    let valid = reports.iter().all(|r| r.valid());
    println!();
    for line in report::summary_lines(&reports) {
        println!("{line}");
    }
    println!();
    for line in repeat::summary_lines(&reports) {
        println!("{line}");
    }
    println!();
    for line in repeat::goal_lines(&reports, args.synchronous) {
        println!("{line}");
    }
    if args.json {
        let summary = RunReport {
            started_at_unix: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            cpus,
            load_average_at_start: load,
            cpu_busy_before_start: busy,
            concurrency: plan.concurrency,
            duration_s: plan.duration.as_secs_f64(),
            warmup_s: plan.warmup.as_secs_f64(),
            entitlements: layout.pool,
            synchronous: args.synchronous.env_value().to_owned(),
            ledger_rows: args.ledger_rows,
            rss_method: RSS_METHOD,
            valid,
            scenarios: reports,
        };
        println!("{}", serde_json::to_string_pretty(&summary)?);
    }
    if args.keep_data || !valid {
        eprintln!("bench data kept in {}", run_dir.display());
    } else {
        std::fs::remove_dir_all(&run_dir)?;
    }
    Ok(valid)
}
