//! Command-line flags and the run plan derived from them.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Parser, ValueEnum};

use crate::scenarios::Scenario;

/// Load generator for `allot serve`, with raw-database baselines in the same run.
#[derive(Parser, Debug, Clone)]
#[command(name = "allot-bench", version)]
pub struct Args {
    /// Storage backend(s) to benchmark.
    #[arg(long, value_enum, default_value_t = BackendChoice::Sqlite)]
    pub backend: BackendChoice,

    /// Admin URL of the PostgreSQL server; fresh databases are created through it.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    pub pg_url: String,

    /// Requests in flight (closed loop): HTTP connections for allot, workers for baselines.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,

    /// Measured time per duration-based scenario (e.g. `10s`, `500ms`, `1m`).
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,

    /// Unmeasured warm-up before each duration-based scenario.
    #[arg(long, value_parser = parse_duration)]
    pub warmup: Option<Duration>,

    /// Short run (under a minute): 2s scenarios, 1,000 entitlements, exhaust cap 1,000.
    #[arg(long)]
    pub quick: bool,

    /// Comma-separated subset of scenarios to run (default: all but `reports`, `software` and `dashboard`,
    /// which load their own fixture and run only when named).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub scenarios: Vec<Scenario>,

    /// SQLite durability for the server and the SQLite baseline.
    #[arg(long, value_enum, default_value_t = Synchronous::Normal)]
    pub synchronous: Synchronous,

    /// The `allot` binary (default: <workspace>/target/release/allot, built if missing).
    #[arg(long)]
    pub allot_bin: Option<PathBuf>,

    /// Target an already running server instead of starting one (needs --key).
    #[arg(long, requires = "key")]
    pub url: Option<String>,

    /// Admin API key for --url.
    #[arg(long, requires = "url")]
    pub key: Option<String>,

    /// With --url: the server's database URL (sqlite:///path or postgres://...), for verification.
    #[arg(long, requires = "url")]
    pub server_db: Option<String>,

    /// Pre-fill the ledger with this many rows before consume-uniform.
    #[arg(long, default_value_t = 0)]
    pub ledger_rows: u64,

    /// Number of pooled entitlements (default 10,000; 1,000 with --quick).
    #[arg(long)]
    pub entitlements: Option<usize>,

    /// Tokio worker threads of the load generator (1 = current-thread runtime).
    #[arg(long, default_value_t = 1)]
    pub client_threads: usize,

    /// Entitlements created concurrently during setup.
    #[arg(long, default_value_t = 32)]
    pub setup_concurrency: usize,

    /// Keep the bench databases and server logs instead of deleting them.
    #[arg(long)]
    pub keep_data: bool,

    /// Also print a machine-readable JSON summary.
    #[arg(long)]
    pub json: bool,

    /// Run only the `overload` scenario (8x the sustainable rate; see overload.rs).
    #[arg(long)]
    pub overload: bool,

    /// With --overload: a setting for allot serve, NAME=VALUE (repeatable).
    #[arg(long)]
    pub overload_env: Vec<String>,
    /// Internal: serve the naive-http peer over this database (the bench
    /// starts itself with it).
    #[arg(long, hide = true)]
    pub naive_serve: Option<String>,

    /// Internal: the naive-http peer's listen address.
    #[arg(long, hide = true, default_value = "127.0.0.1:0")]
    pub naive_listen: String,

    /// Measured repetitions of each consume scenario, interleaved (allot,
    /// loops, naive-http, allot, …); ratios are their medians (default 5, 3
    /// with --quick).
    #[arg(long)]
    pub repetitions: Option<usize>,
    /// Run the `import` scenario instead (import_scenario.rs): CSV imports of
    /// entitlements and usage against a raw bulk insert of the same rows.
    #[arg(long, conflicts_with = "url")]
    pub import: bool,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendChoice {
    Sqlite,
    Postgres,
    Both,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Synchronous {
    Normal,
    Full,
}

impl Synchronous {
    pub fn pragma(self) -> &'static str {
        match self {
            Synchronous::Normal => "NORMAL",
            Synchronous::Full => "FULL",
        }
    }

    pub fn env_value(self) -> &'static str {
        match self {
            Synchronous::Normal => "normal",
            Synchronous::Full => "full",
        }
    }
}

/// Sizes and durations resolved from the flags.
#[derive(Debug, Clone)]
pub struct Plan {
    pub backends: Vec<Backend>,
    pub scenarios: Vec<Scenario>,
    pub concurrency: usize,
    pub duration: Duration,
    pub warmup: Duration,
    pub entitlements: usize,
    pub exhaust_cap: u64,
    pub exhaust_requests: u64,
}

impl Args {
    pub fn plan(&self) -> Result<Plan> {
        if self.concurrency == 0 {
            bail!("--concurrency must be at least 1");
        }
        let backends = match self.backend {
            BackendChoice::Sqlite => vec![Backend::Sqlite],
            BackendChoice::Postgres => vec![Backend::Postgres],
            BackendChoice::Both => vec![Backend::Sqlite, Backend::Postgres],
        };
        if self.url.is_some() && backends.len() > 1 {
            bail!("--url targets one server: pick --backend sqlite or postgres (the baseline to compare with)");
        }
        let mut scenarios = if self.scenarios.is_empty() {
            Scenario::ALL.to_vec()
        } else {
            self.scenarios.clone()
        };
        scenarios.sort_by_key(|s| s.order());
        scenarios.dedup();
        let (duration, warmup, entitlements, exhaust_cap) = if self.quick {
            (
                Duration::from_secs(2),
                Duration::from_millis(250),
                1_000,
                1_000,
            )
        } else {
            (
                Duration::from_secs(10),
                Duration::from_secs(1),
                10_000,
                10_000,
            )
        };
        let entitlements = self.entitlements.unwrap_or(entitlements);
        if entitlements == 0 {
            bail!("--entitlements must be at least 1");
        }
        Ok(Plan {
            backends,
            scenarios,
            concurrency: self.concurrency,
            duration: self.duration.unwrap_or(duration),
            warmup: self.warmup.unwrap_or(warmup),
            entitlements,
            exhaust_cap,
            exhaust_requests: exhaust_cap * 2,
        })
    }
}

/// Parses `10s`, `250ms`, `1m` or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| c.is_ascii_alphabetic()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let value: f64 = number
        .trim()
        .parse()
        .with_context(|| format!("bad duration {text:?}"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        _ => bail!("bad duration unit in {text:?} (use ms, s or m)"),
    };
    if !(seconds.is_finite() && seconds > 0.0) {
        bail!("duration must be positive: {text:?}");
    }
    Ok(Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("2").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("1m").unwrap(), Duration::from_secs(60));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("5h").is_err());
    }

    #[test]
    fn quick_plan_is_small() {
        let args = Args::parse_from(["allot-bench", "--quick", "--backend", "both"]);
        let plan = args.plan().unwrap();
        assert_eq!(plan.entitlements, 1_000);
        assert_eq!(plan.exhaust_requests, 2_000);
        assert_eq!(plan.backends.len(), 2);
        assert_eq!(plan.scenarios.len(), Scenario::ALL.len());
    }
}
