//! `allot usage import FILE.jsonl`: a JSON Lines file of uses streamed
//! through `POST /v1/usage/batch`, up to 1,000 lines per request, with a
//! progress bar. Each line is one batch item (`entitlement_id`, `quantity`,
//! and optionally `channel`, `reference`, `idempotency_key`); every line is
//! answered on its own, and the refused ones are listed with their line
//! number at the end.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use anyhow::Context;
use serde_json::{json, Value};

use crate::client::Remote;
use crate::failure::Failure;
use crate::progress::Progress;

/// Most items the service takes in one request.
pub const MAX_BATCH: usize = 1000;
/// Refusals listed in the summary; the rest are counted.
const MAX_LISTED: usize = 100;

/// What an import did, as printed (`-o json` prints it as is).
struct Tally {
    lines: u64,
    accepted: u64,
    replayed: u64,
    refused: Vec<Value>,
    refused_total: u64,
}

/// Imports `file` (`-` for standard input) in requests of `batch` lines.
/// `run_id` makes every request safe to send again: a rerun with the same
/// id replays what was already recorded instead of recording it twice.
pub async fn run(
    remote: &Remote,
    file: &Path,
    batch: usize,
    run_id: Option<&str>,
) -> anyhow::Result<Value> {
    if batch == 0 || batch > MAX_BATCH {
        anyhow::bail!("--batch-size must be 1 to {MAX_BATCH}");
    }
    let stdin = file.as_os_str() == "-";
    let total = if stdin {
        None
    } else {
        Some(count_lines(file)?)
    };
    let reader: Box<dyn Read> = if stdin {
        Box::new(std::io::stdin())
    } else {
        Box::new(std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?)
    };
    let progress = Progress::new("importing usage", total);
    let mut tally = Tally {
        lines: 0,
        accepted: 0,
        replayed: 0,
        refused: Vec::new(),
        refused_total: 0,
    };
    let mut items = Vec::with_capacity(batch);
    // The file line number of each item in `items`.
    let mut numbers = Vec::with_capacity(batch);
    for (n, line) in BufReader::new(reader).lines().enumerate() {
        let number = n as u64 + 1;
        let line = line.with_context(|| format!("reading line {number}"))?;
        if line.trim().is_empty() {
            continue;
        }
        let item: Value = serde_json::from_str(&line).map_err(|e| {
            anyhow::anyhow!(
                "line {number} is not JSON ({e}); {} lines before it were sent",
                tally.lines
            )
        })?;
        items.push(item);
        numbers.push(number);
        if items.len() == batch {
            send(remote, &mut items, &mut numbers, run_id, &mut tally).await?;
            progress.inc(batch as u64);
        }
    }
    let rest = items.len() as u64;
    if rest > 0 {
        send(remote, &mut items, &mut numbers, run_id, &mut tally).await?;
        progress.inc(rest);
    }
    progress.finish();
    Ok(json!({
        "lines": tally.lines,
        "accepted": tally.accepted,
        "replayed": tally.replayed,
        "refused": tally.refused_total,
        "refusals": tally.refused,
    }))
}

/// Non-blank lines, for the progress bar's total.
fn count_lines(file: &Path) -> anyhow::Result<u64> {
    let reader = BufReader::new(
        std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?,
    );
    let mut count = 0;
    for line in reader.lines() {
        if !line?.trim().is_empty() {
            count += 1;
        }
    }
    Ok(count)
}

async fn send(
    remote: &Remote,
    items: &mut Vec<Value>,
    numbers: &mut Vec<u64>,
    run_id: Option<&str>,
    tally: &mut Tally,
) -> Result<(), Failure> {
    let url = format!("{}/v1/usage/batch", remote.url());
    let body = json!({ "items": std::mem::take(items) });
    let mut request = remote.client().post(url).json(&body);
    if let (Some(run), Some(first)) = (run_id, numbers.first()) {
        request = request.header("Idempotency-Key", format!("{run}:{first}"));
    }
    let answer = remote.send(request).await?;
    let answers = answer["items"].as_array().cloned().unwrap_or_default();
    for (number, item) in numbers.drain(..).zip(answers) {
        tally.lines += 1;
        let status = item["status"].as_u64().unwrap_or(0);
        if status == 201 {
            tally.accepted += 1;
            if item["replayed"] == json!(true) {
                tally.replayed += 1;
            }
            continue;
        }
        tally.refused_total += 1;
        if tally.refused.len() < MAX_LISTED {
            let error = &item["error"];
            let fields: Vec<String> = error["details"]["fields"]
                .as_array()
                .map(|fields| {
                    fields
                        .iter()
                        .map(|f| {
                            let field = f["field"].as_str().unwrap_or("?");
                            // The service names items from 0 within a request.
                            let field = field.split_once("].").map_or(field, |(_, rest)| rest);
                            format!("{field}: {}", f["message"].as_str().unwrap_or(""))
                        })
                        .collect()
                })
                .unwrap_or_default();
            tally.refused.push(json!({
                "line": number,
                "status": status,
                "code": error["code"],
                "message": if fields.is_empty() { error["message"].clone() } else { json!(fields.join("; ")) },
            }));
        }
    }
    Ok(())
}

/// What a person reads: the counts, then each refused line.
pub fn human(summary: &Value) -> String {
    let count = |k: &str| summary[k].as_u64().unwrap_or(0);
    let mut out = format!(
        "{} lines: {} recorded ({} of them already, replayed), {} refused\n",
        count("lines"),
        count("accepted"),
        count("replayed"),
        count("refused"),
    );
    for refusal in summary["refusals"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "  line {}: {} {}: {}\n",
            refusal["line"],
            refusal["status"],
            refusal["code"].as_str().unwrap_or(""),
            refusal["message"].as_str().unwrap_or(""),
        ));
    }
    let listed = summary["refusals"].as_array().map_or(0, Vec::len) as u64;
    if count("refused") > listed {
        out.push_str(&format!("  … and {} more\n", count("refused") - listed));
    }
    out.trim_end().to_string()
}

/// Success when every line was recorded; else the failure a script can
/// tell apart: 6 when a line was invalid (422), 3 when refused by a rule.
pub fn outcome(summary: &Value) -> anyhow::Result<()> {
    let refused = summary["refused"].as_u64().unwrap_or(0);
    if refused == 0 {
        return Ok(());
    }
    let invalid = summary["refusals"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|r| r["status"] == json!(422));
    Err(Failure::Answered {
        status: if invalid { 422 } else { 409 },
        code: "lines_refused".into(),
        message: format!("{refused} lines were not recorded"),
        fields: Vec::new(),
    }
    .into())
}
