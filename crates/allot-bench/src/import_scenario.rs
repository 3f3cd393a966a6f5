//! Scenario `import` (`allot-bench --import`): CSV files through
//! `POST /v1/imports/{kind}` against a raw bulk insert of the same rows in
//! the same run.
//!
//! Per backend: a fresh database and `allot serve`; accounts (one per 100
//! entitlements) imported first, then the entitlements file (100,000 active
//! entitlements; 10,000 with `--quick`), then the usage file (1,000,000
//! rows spread over them, each with its idempotency key; 100,000 with
//! `--quick`). Each file is written to disk first and streamed; its time is
//! from the first byte sent to the report. The server's peak RSS (`VmHWM`)
//! is read after each file.
//!
//! The baseline: the rows the import wrote (`entitlements` with their
//! `balances`, and `ledger`), read back from the server's database and
//! inserted into a fresh migrated database with the fastest plain bulk
//! insert: `COPY … FROM STDIN` on PostgreSQL (the text the server's
//! database gives with `COPY … TO STDOUT`), one prepared `INSERT` in one
//! transaction on SQLite. The ratio is import rows/s over baseline rows/s.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use futures::SinkExt;

use crate::cli::{Args, Backend};
use crate::pg;
use crate::server::{RunningServer, ServerSpec};

/// Sizes: (entitlements, usage rows).
fn sizes(quick: bool) -> (usize, usize) {
    if quick {
        (10_000, 100_000)
    } else {
        (100_000, 1_000_000)
    }
}

struct Measured {
    kind: &'static str,
    rows: usize,
    file_bytes: u64,
    seconds: f64,
    baseline_seconds: f64,
    peak_rss_kib: Option<u64>,
}

impl Measured {
    fn line(&self, backend: Backend) -> String {
        let rate = self.rows as f64 / self.seconds;
        let base = self.rows as f64 / self.baseline_seconds;
        format!(
            "{:<8} {:<12} {:>9} rows {:>8.1} MiB  import {:>9.0} rows/s ({:>6.2} s)  baseline {:>9.0} rows/s ({:>6.2} s)  ratio {:>5.2}x  server peak RSS {}",
            backend.name(),
            self.kind,
            self.rows,
            self.file_bytes as f64 / 1_048_576.0,
            rate,
            self.seconds,
            base,
            self.baseline_seconds,
            rate / base,
            self.peak_rss_kib
                .map_or_else(|| "?".into(), |k| format!("{:.0} MiB", k as f64 / 1024.0)),
        )
    }
}

fn write_file(path: &Path, header: &str, rows: impl Iterator<Item = String>) -> Result<u64> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(out, "{header}")?;
    for row in rows {
        writeln!(out, "{row}")?;
    }
    out.flush()?;
    Ok(std::fs::metadata(path)?.len())
}

/// Streams `file` to the import route; the time it took and the report.
async fn import(server: &RunningServer, key: &str, kind: &str, file: &Path) -> Result<f64> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(3600))
        .build()?;
    let bytes = tokio::fs::read(file).await?;
    let started = Instant::now();
    let response = client
        .post(format!("{}/v1/imports/{kind}", server.base_url))
        .bearer_auth(key)
        .header("content-type", "text/csv")
        .body(bytes)
        .send()
        .await?;
    let status = response.status();
    let text = response.text().await?;
    let seconds = started.elapsed().as_secs_f64();
    if !status.is_success() {
        bail!("import {kind}: {status}: {}", &text[..text.len().min(2000)]);
    }
    let report: serde_json::Value = serde_json::from_str(&text)?;
    if report["committed"] != true {
        bail!("import {kind} did not commit: {text}");
    }
    Ok(seconds)
}

fn entitlement_id(i: usize) -> String {
    format!("ent_bench{i:012}")
}

pub async fn run(args: &Args, bin: &Path, run_dir: &Path, tag: &str) -> Result<()> {
    let (entitlements, usage) = sizes(args.quick);
    let accounts = entitlements.div_ceil(100);
    println!(
        "allot-bench import: {accounts} accounts, {entitlements} entitlements, {usage} usage rows per backend; server peak RSS is VmHWM after each file"
    );
    let files = run_dir.join("import-files");
    std::fs::create_dir_all(&files)?;
    let accounts_csv = files.join("accounts.csv");
    write_file(
        &accounts_csv,
        "name,external_id",
        (0..accounts).map(|a| format!("Account {a},EXT-{a}")),
    )?;
    let entitlements_csv = files.join("entitlements.csv");
    let entitlements_bytes = write_file(
        &entitlements_csv,
        "id,account_external_id,name,unit,total,restrict,start_date,end_date,status",
        (0..entitlements).map(|i| {
            format!(
                "{},EXT-{},Support {i},units,1000000,true,2020-01-01,2099-12-31,active",
                entitlement_id(i),
                i / 100
            )
        }),
    )?;
    let usage_csv = files.join("usage.csv");
    let usage_bytes = write_file(
        &usage_csv,
        "entitlement_id,quantity,idempotency_key",
        (0..usage).map(|u| {
            format!(
                "{},1,bench-{u}",
                entitlement_id((u.wrapping_mul(7919)) % entitlements)
            )
        }),
    )?;
    let backends: Vec<Backend> = args.plan()?.backends;
    for backend in backends {
        let (db_url, baseline_url) = match backend {
            Backend::Sqlite => (
                format!(
                    "sqlite://{}",
                    run_dir.join(format!("import-{tag}.db")).display()
                ),
                format!(
                    "sqlite://{}",
                    run_dir.join(format!("import-{tag}-raw.db")).display()
                ),
            ),
            Backend::Postgres => (
                pg::create_database(&args.pg_url, &format!("allot_import_{tag}")).await?,
                pg::create_database(&args.pg_url, &format!("allot_import_raw_{tag}")).await?,
            ),
        };
        let spec = ServerSpec {
            bin: bin.to_path_buf(),
            db_url: db_url.clone(),
            synchronous: args.synchronous,
            log: run_dir.join(format!("import-{}.log", backend.name())),
        };
        let key = spec.prepare()?;
        let server = spec.start().await?;
        import(&server, &key, "accounts", &accounts_csv).await?;
        let ent_seconds = import(&server, &key, "entitlements", &entitlements_csv).await?;
        let ent_rss = server.peak_rss_kib();
        let usage_seconds = import(&server, &key, "usage", &usage_csv).await?;
        let usage_rss = server.peak_rss_kib();
        server.stop().await?;
        // The baseline database: the same schema, empty.
        let raw = ServerSpec {
            db_url: baseline_url.clone(),
            log: run_dir.join(format!("import-raw-{}.log", backend.name())),
            ..spec.clone()
        };
        raw.prepare()?;
        let accounts_rows_s = copy_table(backend, &db_url, &baseline_url, "accounts").await?;
        let _ = accounts_rows_s;
        let ent_base = copy_table(backend, &db_url, &baseline_url, "entitlements").await?
            + copy_table(backend, &db_url, &baseline_url, "balances").await?;
        let usage_base = copy_table(backend, &db_url, &baseline_url, "ledger").await?;
        let measured = [
            Measured {
                kind: "entitlements",
                rows: entitlements,
                file_bytes: entitlements_bytes,
                seconds: ent_seconds,
                baseline_seconds: ent_base,
                peak_rss_kib: ent_rss,
            },
            Measured {
                kind: "usage",
                rows: usage,
                file_bytes: usage_bytes,
                seconds: usage_seconds,
                baseline_seconds: usage_base,
                peak_rss_kib: usage_rss,
            },
        ];
        for m in &measured {
            println!("{}", m.line(backend));
        }
        if backend == Backend::Postgres && !args.keep_data {
            let _ = pg::drop_database(&args.pg_url, &format!("allot_import_{tag}")).await;
            let _ = pg::drop_database(&args.pg_url, &format!("allot_import_raw_{tag}")).await;
        }
    }
    if !args.keep_data {
        let _ = std::fs::remove_dir_all(&files);
    }
    Ok(())
}

fn sqlite_path(url: &str) -> Result<PathBuf> {
    url.strip_prefix("sqlite://")
        .map(PathBuf::from)
        .context("not a sqlite:// URL")
}

/// Reads every row of `table` from `from` and bulk inserts it into `to`;
/// returns the seconds the insert alone took.
async fn copy_table(backend: Backend, from: &str, to: &str, table: &str) -> Result<f64> {
    match backend {
        Backend::Sqlite => {
            let (from, to, table) = (sqlite_path(from)?, sqlite_path(to)?, table.to_string());
            tokio::task::spawn_blocking(move || sqlite_copy(&from, &to, &table)).await?
        }
        Backend::Postgres => {
            let source = pg::connect(from).await?;
            let target = pg::connect(to).await?;
            let mut text = Vec::new();
            let reader = source.copy_out(&format!("COPY {table} TO STDOUT")).await?;
            futures::pin_mut!(reader);
            while let Some(chunk) = futures::StreamExt::next(&mut reader).await {
                text.extend_from_slice(&chunk?);
            }
            let started = Instant::now();
            let sink = target.copy_in(&format!("COPY {table} FROM STDIN")).await?;
            futures::pin_mut!(sink);
            for piece in text.chunks(1 << 20) {
                sink.send(bytes::Bytes::copy_from_slice(piece)).await?;
            }
            sink.finish().await?;
            Ok(started.elapsed().as_secs_f64())
        }
    }
}

fn sqlite_copy(from: &Path, to: &Path, table: &str) -> Result<f64> {
    let source = rusqlite::Connection::open(from)?;
    let mut stmt = source.prepare(&format!("SELECT * FROM {table}"))?;
    let columns: Vec<String> = stmt.column_names().iter().map(|c| c.to_string()).collect();
    let width = columns.len();
    let rows: Vec<Vec<rusqlite::types::Value>> = stmt
        .query_map([], |r| {
            (0..width)
                .map(|i| r.get::<_, rusqlite::types::Value>(i))
                .collect()
        })?
        .collect::<Result<_, _>>()?;
    let mut target = rusqlite::Connection::open(to)?;
    target.pragma_update(None, "journal_mode", "WAL")?;
    target.pragma_update(None, "synchronous", "NORMAL")?;
    let started = Instant::now();
    let tx = target.transaction()?;
    {
        let sql = format!(
            "INSERT INTO {table} ({}) VALUES ({})",
            columns.join(", "),
            vec!["?"; width].join(", ")
        );
        let mut insert = tx.prepare(&sql)?;
        for row in &rows {
            insert.execute(rusqlite::params_from_iter(row.iter()))?;
        }
    }
    tx.commit()?;
    Ok(started.elapsed().as_secs_f64())
}
