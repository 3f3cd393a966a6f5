//! `allot import` and `allot export`: CSV files in and out.
//!
//! An import streams the file to `POST /v1/imports/{kind}` (never holding
//! it whole) with a progress bar of rows sent; the service checks every
//! row and writes all of them or none. An export streams
//! `GET …?format=csv` to standard output.

use std::io::Read;
use std::path::PathBuf;

use bytes::Bytes;
use clap::Subcommand;
use serde_json::Value;

use crate::client::Remote;
use crate::failure::Failure;
use crate::output::{self, Output};
use crate::progress::Progress;

#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// Import a CSV file: accounts, contacts, products, contracts, contract-lines, entitlements or usage. All rows or none.
    #[command(after_help = examples!(
        "allot import accounts --template > accounts.csv",
        "allot import accounts accounts.csv --dry-run",
        "allot import entitlements entitlements.csv",
        "allot import usage usage-2025.csv --allow-overage"
    ))]
    Import {
        /// accounts, contacts, products, contracts, contract-lines, entitlements or usage.
        kind: String,
        /// The CSV file: a header row naming the columns, then one row per object.
        #[arg(required_unless_present = "template")]
        file: Option<PathBuf>,
        /// Check every row, write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Usage only: record historic usage past a cap, flagged `imported_overage`.
        #[arg(long)]
        allow_overage: bool,
        /// Print an example file of this kind (every column, one row) and exit.
        #[arg(long)]
        template: bool,
        #[command(flatten)]
        remote: Remote,
    },
    /// Export a list or report as CSV to standard output (every page, streamed).
    #[command(after_help = examples!(
        "allot export accounts > accounts.csv",
        "allot export entitlements --filter account_id=acc_… --filter status=active > entitlements.csv",
        "allot export usage --filter entitlement_id=ent_… > usage.csv",
        "allot export report/unused --filter from=2026-01-01 > unused.csv"
    ))]
    Export {
        /// accounts, contacts, products, entitlements, usage (with --filter
        /// entitlement_id=…), cases, events, audit, api-keys, webhooks,
        /// notifications, software-models, software-entitlements,
        /// reconciliations, report/NAME, or a path (/v1/…).
        kind: String,
        /// A filter of the list, as its query parameter: NAME=VALUE (repeatable).
        #[arg(long = "filter", value_name = "NAME=VALUE")]
        filters: Vec<String>,
        #[command(flatten)]
        remote: Remote,
    },
}

impl ImportCommand {
    pub async fn run(self) -> anyhow::Result<()> {
        match self {
            ImportCommand::Import {
                kind,
                file,
                dry_run,
                allow_overage,
                template,
                remote,
            } => {
                if template {
                    let text = allot_server::imports::template(&kind).ok_or_else(|| {
                        anyhow::anyhow!("no import of {kind}: {}", kinds().join(", "))
                    })?;
                    return output::stdout(text.as_bytes());
                }
                let file = file.ok_or_else(|| anyhow::anyhow!("a FILE is required"))?;
                import(&remote, &kind, &file, dry_run, allow_overage).await
            }
            ImportCommand::Export {
                kind,
                filters,
                remote,
            } => export(&remote, &kind, &filters).await,
        }
    }
}

fn kinds() -> Vec<&'static str> {
    allot_server::imports::KINDS
        .iter()
        .map(|k| k.name)
        .collect()
}

/// Lines in a file (its rows, header included), read once for the bar.
fn count_lines(file: &PathBuf) -> std::io::Result<u64> {
    let mut reader = std::fs::File::open(file)?;
    let mut buf = vec![0u8; 256 * 1024];
    let mut lines = 0u64;
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            return Ok(lines);
        }
        lines += buf[..n].iter().filter(|b| **b == b'\n').count() as u64;
    }
}

async fn import(
    remote: &Remote,
    kind: &str,
    file: &PathBuf,
    dry_run: bool,
    allow_overage: bool,
) -> anyhow::Result<()> {
    let mut opened = std::fs::File::open(file)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
    let lines = count_lines(file)?;
    let progress = std::sync::Arc::new(Progress::new(
        &format!("importing {kind}"),
        Some(lines.saturating_sub(1).max(1)),
    ));
    // The file in chunks, each counted on the bar as its rows are sent.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let counting = std::sync::Arc::clone(&progress);
    let reader = tokio::task::spawn_blocking(move || {
        let mut buf = vec![0u8; 256 * 1024];
        let mut header = true;
        loop {
            match opened.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => {
                    let mut rows = buf[..n].iter().filter(|b| **b == b'\n').count() as u64;
                    if header && rows > 0 {
                        header = false;
                        rows -= 1;
                    }
                    if tx
                        .blocking_send(Ok(Bytes::copy_from_slice(&buf[..n])))
                        .is_err()
                    {
                        return;
                    }
                    counting.inc(rows);
                }
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
            }
        }
    });
    let frames = futures::stream::poll_fn(move |cx| {
        rx.poll_recv(cx)
            .map(|next| next.map(|chunk| chunk.map(http_body::Frame::data)))
    });
    let body = reqwest::Body::wrap(http_body_util::StreamBody::new(frames));
    let mut query = vec![];
    if dry_run {
        query.push(("dry_run", "true"));
    }
    if allow_overage {
        query.push(("allow_overage", "true"));
    }
    let response = remote
        .client()
        .post(format!("{}/v1/imports/{kind}", remote.url()))
        .query(&query)
        .header("content-type", "text/csv")
        .bearer_auth(remote.key()?)
        .body(body)
        .send()
        .await
        .map_err(|e| remote.unreachable(e))?;
    let _ = reader.await;
    if let Ok(progress) = std::sync::Arc::try_unwrap(progress) {
        progress.finish();
    }
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if status.is_success() {
        return remote.print(&body, summary);
    }
    let mut failure = Failure::answered(status.as_u16(), &body);
    if body["error"]["code"] == "import_rejected" {
        let report = &body["error"]["details"];
        if remote.output == Output::Table {
            // Every bad row, one line each under the error line.
            if let Failure::Answered { fields, .. } = &mut failure {
                fields.extend(problems(report).lines().map(str::to_string));
            }
        } else {
            remote.print(report, summary)?;
        }
    }
    Err(failure.into())
}

/// What an import did, for a person.
fn summary(report: &Value) -> String {
    let n = |k: &str| report[k].as_u64().unwrap_or(0);
    let what = if report["kind"] == "usage" {
        format!(
            "{} applied, {} already imported",
            n("applied"),
            n("replayed")
        )
    } else {
        format!("{} created", n("created"))
    };
    if report["dry_run"] == true {
        format!(
            "dry run: {} rows checked, all good; nothing written",
            n("rows")
        )
    } else {
        format!("imported {} rows: {what}", n("rows"))
    }
}

/// Every bad row of a refused import, one line each.
fn problems(report: &Value) -> String {
    let mut out = String::new();
    for e in report["errors"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "row {}, {}: {}{}\n",
            e["row"],
            e["column"].as_str().unwrap_or(""),
            e["reason"].as_str().unwrap_or(""),
            match e["value"].as_str() {
                Some(v) if !v.is_empty() => format!(" (was {v:?})"),
                _ => String::new(),
            }
        ));
    }
    let listed = report["errors"].as_array().map_or(0, Vec::len) as u64;
    let total = report["errors_total"].as_u64().unwrap_or(0);
    if total > listed {
        out.push_str(&format!("… and {} more\n", total - listed));
    }
    out
}

/// The path of an exportable list.
fn export_path(kind: &str, filters: &mut Vec<(String, String)>) -> anyhow::Result<String> {
    if kind.starts_with("/v1/") {
        return Ok(kind.to_string());
    }
    if let Some(report) = kind.strip_prefix("report/") {
        return Ok(format!("/v1/reports/{report}"));
    }
    let plain = [
        "accounts",
        "contracts",
        "entitlement-templates",
        "contacts",
        "products",
        "entitlements",
        "cases",
        "events",
        "audit",
        "api-keys",
        "webhooks",
        "notifications",
        "software-models",
        "software-entitlements",
        "reconciliations",
    ];
    if plain.contains(&kind) {
        return Ok(format!("/v1/{kind}"));
    }
    if kind == "usage" {
        let at = filters.iter().position(|(k, _)| k == "entitlement_id");
        let Some(at) = at else {
            anyhow::bail!("export usage needs --filter entitlement_id=ent_…");
        };
        let (_, id) = filters.remove(at);
        return Ok(format!("/v1/entitlements/{id}/usage"));
    }
    anyhow::bail!(
        "cannot export {kind}: try accounts, entitlements, usage, report/unused or a /v1/ path"
    )
}

async fn export(remote: &Remote, kind: &str, filters: &[String]) -> anyhow::Result<()> {
    let mut query: Vec<(String, String)> = filters
        .iter()
        .map(|f| {
            f.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| anyhow::anyhow!("--filter {f}: NAME=VALUE expected"))
        })
        .collect::<anyhow::Result<_>>()?;
    let path = export_path(kind, &mut query)?;
    query.push(("format".into(), "csv".into()));
    let mut response = remote
        .client()
        .get(format!("{}{path}", remote.url()))
        .query(&query)
        .header("accept", "text/csv")
        .bearer_auth(remote.key()?)
        .send()
        .await
        .map_err(|e| remote.unreachable(e))?;
    let status = response.status();
    if !status.is_success() {
        let body: Value = response.json().await.unwrap_or(Value::Null);
        return Err(Failure::answered(status.as_u16(), &body).into());
    }
    let progress = Progress::new(&format!("exporting {kind}"), None);
    let mut header = true;
    while let Some(chunk) = response.chunk().await? {
        let mut rows = chunk.iter().filter(|b| **b == b'\n').count() as u64;
        if header && rows > 0 {
            header = false;
            rows -= 1;
        }
        output::stdout(&chunk)?;
        progress.inc(rows);
    }
    progress.finish();
    Ok(())
}
