//! Software entitlements from the command line: models, entitlements,
//! allocations, reconciliation, and importing installations from CSV.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;

use clap::Subcommand;
use reqwest::Method;
use serde_json::{json, Value};

use crate::api::{body, page, quantity, text};
use crate::client::Remote;
use crate::render::{listed, one};

/// Rows per request when importing (the API takes at most 10,000).
const IMPORT_CHUNK: usize = 5_000;

#[derive(Debug, Subcommand)]
pub enum SoftwareCommand {
    /// Licence rights, e.g. `allot software allocate swe_… --user ann --quantity 1`.
    #[command(after_help = examples!("allot software models list", "allot software reconcile"))]
    Software {
        #[command(subcommand)]
        command: Box<Software>,
    },
    /// What is installed, e.g. `allot installations import found.csv`.
    #[command(after_help = examples!("allot installations import found.csv"))]
    Installations {
        #[command(subcommand)]
        command: Installations,
    },
}

#[derive(Debug, Subcommand)]
pub enum Software {
    /// Software titles, e.g. `allot software models create --publisher Microsoft --product "SQL Server" --version 2022`.
    #[command(after_help = examples!("allot software models create --publisher Microsoft --product Visio --version 2024"))]
    Models {
        #[command(subcommand)]
        command: Models,
    },
    /// Rights bought, e.g. `allot software entitlements create --model swm_… --metric per_core --type perpetual --rights-per-pack 2 --packs 8`.
    #[command(after_help = examples!("allot software entitlements list --account acc_…"))]
    Entitlements {
        #[command(subcommand)]
        command: Entitlements,
    },
    /// Allocate rights to a user or a device.
    #[command(after_help = examples!("allot software allocate swe_… --user ann --quantity 1"))]
    Allocate {
        #[command(flatten)]
        remote: Remote,
        entitlement: String,
        #[arg(long)]
        user: Option<String>,
        #[arg(long)]
        device: Option<String>,
        #[arg(long, default_value_t = 1)]
        quantity: i64,
        #[arg(long)]
        license_key: Option<String>,
    },
    /// Reconcile rights owned against installations (one model, or all).
    #[command(after_help = examples!("allot software reconcile", "allot software reconcile --model swm_… -o json"))]
    Reconcile {
        #[command(flatten)]
        remote: Remote,
        #[arg(long)]
        model: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum Models {
    #[command(after_help = examples!("allot software models create --publisher Microsoft --product Visio --version 2024"))]
    Create {
        #[command(flatten)]
        remote: Remote,
        #[arg(long)]
        publisher: Option<String>,
        #[arg(long)]
        product: Option<String>,
        #[arg(long)]
        version: Option<String>,
        #[arg(long)]
        edition: Option<String>,
        #[arg(long)]
        platform: Option<String>,
        #[arg(long)]
        from_file: Option<PathBuf>,
    },
    #[command(after_help = examples!("allot software models list -o csv"))]
    List {
        #[command(flatten)]
        remote: Remote,
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    #[command(after_help = examples!("allot software models get swm_…"))]
    Get {
        #[command(flatten)]
        remote: Remote,
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum Entitlements {
    /// Creates rights in `build`; publish them to allocate.
    #[command(after_help = examples!("allot software entitlements create --model swm_… --metric per_user --type perpetual --rights 10"))]
    Create {
        #[command(flatten)]
        fields: Box<RightsFields>,
    },
    #[command(after_help = examples!("allot software entitlements list --model swm_…"))]
    List {
        #[command(flatten)]
        remote: Remote,
        #[arg(long)]
        model: Option<String>,
        #[arg(long)]
        account: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    #[command(after_help = examples!("allot software entitlements get swe_…"))]
    Get {
        #[command(flatten)]
        remote: Remote,
        id: String,
    },
    #[command(after_help = examples!("allot software entitlements publish swe_…"))]
    Publish {
        #[command(flatten)]
        remote: Remote,
        id: String,
    },
    #[command(after_help = examples!("allot software entitlements retire swe_…"))]
    Retire {
        #[command(flatten)]
        remote: Remote,
        id: String,
    },
}

/// What `software entitlements create` sends; flags mirror the JSON fields.
#[derive(Debug, clap::Args)]
pub struct RightsFields {
    #[command(flatten)]
    remote: Remote,
    #[arg(long)]
    model: Option<String>,
    #[arg(long)]
    account: Option<String>,
    /// per_user, per_device, per_core, per_install, concurrent or consumption.
    #[arg(long)]
    metric: Option<String>,
    /// perpetual, subscription, perpetual_with_assurance, assurance, step_up or subscription_step_up.
    #[arg(long = "type")]
    license_type: Option<String>,
    #[arg(long)]
    agreement: Option<String>,
    #[arg(long)]
    rights: Option<i64>,
    #[arg(long)]
    rights_per_pack: Option<i64>,
    #[arg(long)]
    packs: Option<i64>,
    #[arg(long)]
    unit_cost: Option<String>,
    #[arg(long)]
    currency: Option<String>,
    /// monthly, quarterly, annually or entire_term.
    #[arg(long)]
    period: Option<String>,
    #[arg(long)]
    start: Option<String>,
    #[arg(long)]
    end: Option<String>,
    #[arg(long)]
    from_file: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Installations {
    /// Sends a CSV file (header `software_model_id,device,user,cores,seen_at`)
    /// in chunks, showing progress on standard error.
    #[command(after_help = examples!("allot installations import found.csv"))]
    Import {
        #[command(flatten)]
        remote: Remote,
        file: PathBuf,
    },
}

const MODEL: &[&str] = &["id", "publisher", "product", "version", "edition"];
const ENTITLEMENT: &[&str] = &[
    "id",
    "software_model_id",
    "state",
    "license_metric",
    "purchased_rights",
    "active_rights",
    "allocated_rights",
    "allocations_available",
    "total_cost",
    "current_period_spend",
];

type Answered = (Remote, Value, Box<dyn Fn(&Value) -> String>);

fn int(v: Option<i64>) -> Option<Value> {
    v.map(Value::from)
}

impl SoftwareCommand {
    pub async fn run(self) -> anyhow::Result<()> {
        let (remote, answer, human): Answered = match self {
            SoftwareCommand::Software { command } => command.answer().await?,
            SoftwareCommand::Installations {
                command: Installations::Import { remote, file },
            } => {
                let total = import(&remote, &file).await?;
                let answer = json!({ "recorded": total });
                (remote, answer, Box::new(one(&["recorded"])))
            }
        };
        remote.print(&answer, human)
    }
}

impl Software {
    async fn answer(self) -> anyhow::Result<Answered> {
        Ok(match self {
            Software::Models { command } => match command {
                Models::Create {
                    remote,
                    publisher,
                    product,
                    version,
                    edition,
                    platform,
                    from_file,
                } => {
                    let body = body(
                        &from_file,
                        vec![
                            ("publisher", text(publisher)),
                            ("product", text(product)),
                            ("version", text(version)),
                            ("edition", text(edition)),
                            ("platform", text(platform)),
                        ],
                    )?;
                    let answer = remote
                        .call(Method::POST, "/v1/software-models", &body)
                        .await?;
                    (remote, answer, Box::new(one(MODEL)))
                }
                Models::List { remote, limit } => {
                    let answer = remote.get("/v1/software-models", &page(limit)).await?;
                    (remote, answer, Box::new(listed(MODEL)))
                }
                Models::Get { remote, id } => {
                    let answer = remote
                        .get(&format!("/v1/software-models/{id}"), &[])
                        .await?;
                    (remote, answer, Box::new(one(MODEL)))
                }
            },
            Software::Entitlements { command } => command.answer().await?,
            Software::Allocate {
                remote,
                entitlement,
                user,
                device,
                quantity: rights,
                license_key,
            } => {
                let body = body(
                    &None,
                    vec![
                        ("user", text(user)),
                        ("device", text(device)),
                        ("quantity", int(Some(rights))),
                        ("license_key", text(license_key)),
                    ],
                )?;
                let path = format!("/v1/software-entitlements/{entitlement}/allocations");
                let answer = remote.call(Method::POST, &path, &body).await?;
                let human = |b: &Value| {
                    format!(
                        "allocated {} ({} right(s)); {} available",
                        b["id"].as_str().unwrap_or(""),
                        b["allocation"]["quantity"],
                        b["entitlement"]["allocations_available"]
                    )
                };
                (remote, answer, Box::new(human))
            }
            Software::Reconcile { remote, model } => {
                let body = body(&None, vec![("software_model_id", text(model))])?;
                let answer = remote
                    .call(Method::POST, "/v1/reconciliations", &body)
                    .await?;
                let human = |b: &Value| {
                    listed(&[
                        "software_model_id",
                        "license_metric",
                        "status",
                        "rights_owned",
                        "rights_needed",
                        "shortfall",
                        "true_up_cost",
                        "unused_rights",
                        "potential_savings",
                    ])(b)
                };
                (remote, answer, Box::new(human))
            }
        })
    }
}

impl Entitlements {
    async fn answer(self) -> anyhow::Result<Answered> {
        Ok(match self {
            Entitlements::Create { fields } => {
                let RightsFields {
                    remote,
                    model,
                    account,
                    metric,
                    license_type,
                    agreement,
                    rights,
                    rights_per_pack,
                    packs,
                    unit_cost,
                    currency,
                    period,
                    start,
                    end,
                    from_file,
                } = *fields;
                let body = body(
                    &from_file,
                    vec![
                        ("software_model_id", text(model)),
                        ("account_id", text(account)),
                        ("license_metric", text(metric)),
                        ("license_type", text(license_type)),
                        ("agreement_type", text(agreement)),
                        ("purchased_rights", int(rights)),
                        ("rights_per_pack", int(rights_per_pack)),
                        ("number_of_packs", int(packs)),
                        ("unit_cost", unit_cost.as_deref().map(quantity)),
                        ("currency", text(currency)),
                        ("subscription_period", text(period)),
                        ("start_date", text(start)),
                        ("end_date", text(end)),
                    ],
                )?;
                let answer = remote
                    .call(Method::POST, "/v1/software-entitlements", &body)
                    .await?;
                (remote, answer, Box::new(one(ENTITLEMENT)))
            }
            Entitlements::List {
                remote,
                model,
                account,
                limit,
            } => {
                let mut query = page(limit);
                query.extend(model.map(|m| ("software_model_id", m)));
                query.extend(account.map(|a| ("account_id", a)));
                let answer = remote.get("/v1/software-entitlements", &query).await?;
                (remote, answer, Box::new(listed(ENTITLEMENT)))
            }
            Entitlements::Get { remote, id } => {
                let answer = remote
                    .get(&format!("/v1/software-entitlements/{id}"), &[])
                    .await?;
                (remote, answer, Box::new(one(ENTITLEMENT)))
            }
            Entitlements::Publish { remote, id } => {
                let path = format!("/v1/software-entitlements/{id}/publish");
                let answer = remote.call(Method::POST, &path, &json!({})).await?;
                (remote, answer, Box::new(one(ENTITLEMENT)))
            }
            Entitlements::Retire { remote, id } => {
                let path = format!("/v1/software-entitlements/{id}/retire");
                let answer = remote.call(Method::POST, &path, &json!({})).await?;
                (remote, answer, Box::new(one(ENTITLEMENT)))
            }
        })
    }
}

/// Streams the file in chunks of `IMPORT_CHUNK` rows, each sent with the
/// header row; returns how many were recorded. A chunk refused stops the
/// import (earlier chunks stay recorded: installations are idempotent, so
/// running it again after a fix is safe).
async fn import(remote: &Remote, file: &PathBuf) -> anyhow::Result<u64> {
    let opened = std::fs::File::open(file)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
    let size = opened.metadata().map(|m| m.len()).unwrap_or(0).max(1);
    let mut lines = BufReader::new(opened).lines();
    let header = match lines.next() {
        Some(line) => line?,
        None => anyhow::bail!("{} is empty: a header row is required", file.display()),
    };
    let (mut total, mut read) = (0u64, header.len() as u64 + 1);
    let mut chunk = Vec::with_capacity(IMPORT_CHUNK);
    let mut lines = lines.peekable();
    while lines.peek().is_some() {
        chunk.clear();
        for line in lines.by_ref().take(IMPORT_CHUNK) {
            let line = line?;
            read += line.len() as u64 + 1;
            if !line.trim().is_empty() {
                chunk.push(line);
            }
        }
        if chunk.is_empty() {
            continue;
        }
        let body = format!("{header}\n{}\n", chunk.join("\n"));
        let request = remote
            .client()
            .post(format!("{}/v1/installations", remote.url()))
            .header("content-type", "text/csv")
            .body(body);
        let answer = remote.send(request).await?;
        total += answer["recorded"].as_u64().unwrap_or(0);
        progress(total, read.min(size) * 100 / size);
    }
    eprintln!();
    Ok(total)
}

fn progress(rows: u64, percent: u64) {
    let filled = (percent / 5) as usize;
    eprint!(
        "\r[{}{}] {percent:>3}% · {rows} installations",
        "#".repeat(filled),
        " ".repeat(20 - filled.min(20))
    );
    let _ = std::io::stderr().flush();
}
