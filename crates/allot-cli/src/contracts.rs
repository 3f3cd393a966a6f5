//! `allot contracts` and `allot templates`: contracts with their lines and
//! actions (which flow down to their entitlements), entitlement templates
//! and their instantiation (waiting on the job, with progress, above 100
//! accounts).

use std::path::PathBuf;
use std::time::Duration;

use clap::Subcommand;
use reqwest::Method;
use serde_json::{json, Map, Value};

use crate::api::{body, quantity, text};
use crate::client::Remote;
use crate::paging::Paging;
use crate::progress::Progress;
use crate::render::{listed, one};

#[derive(Debug, Subcommand)]
pub enum ContractCommand {
    /// Contracts: entitlements hang off them, e.g. `allot contracts create --account acc_… --number CTR-1 --start 2026-01-01 --end 2026-12-31`.
    #[command(after_help = examples!(
        "allot contracts list --account acc_…",
        "allot contracts suspend ctr_…"
    ))]
    Contracts {
        #[command(subcommand)]
        command: Contracts,
    },
    /// Entitlement templates (tiers), e.g. `allot templates instantiate tpl_… --accounts accounts.txt --activate`.
    #[command(after_help = examples!(
        "allot templates list",
        "allot templates instantiate tpl_… --account acc_1 --account acc_2 --activate"
    ))]
    Templates {
        #[command(subcommand)]
        command: Templates,
    },
}

#[derive(Debug, Subcommand)]
pub enum Contracts {
    /// Create a draft contract.
    #[command(after_help = examples!(
        "allot contracts create --account acc_… --number CTR-2026-001 --start 2026-01-01 --end 2026-12-31",
        "allot contracts create --account acc_… --number CTR-7 --start 2026-01-01 --end 2026-12-31 --auto-renew"
    ))]
    Create {
        #[command(flatten)]
        remote: Remote,
        #[arg(long)]
        account: Option<String>,
        #[arg(long)]
        number: Option<String>,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        start: Option<String>,
        #[arg(long)]
        end: Option<String>,
        #[arg(long)]
        auto_renew: bool,
        #[arg(long)]
        from_file: Option<PathBuf>,
    },
    /// List contracts, by account or status.
    #[command(after_help = examples!(
        "allot contracts list --account acc_… --status active",
        "allot contracts list --all -o csv > contracts.csv"
    ))]
    List {
        #[command(flatten)]
        remote: Remote,
        #[arg(long)]
        account: Option<String>,
        /// draft, active, suspended, expired or cancelled.
        #[arg(long)]
        status: Option<String>,
        #[command(flatten)]
        paging: Paging,
    },
    #[command(after_help = examples!("allot contracts get ctr_…"))]
    Get {
        #[command(flatten)]
        remote: Remote,
        id: String,
    },
    /// Add a line (product, quantity, template, dates inside the contract's).
    #[command(after_help = examples!(
        "allot contracts add-line ctr_… --product prd_… --quantity 25 --template tpl_…"
    ))]
    AddLine {
        #[command(flatten)]
        remote: Remote,
        id: String,
        #[arg(long)]
        product: Option<String>,
        #[arg(long)]
        quantity: Option<String>,
        #[arg(long)]
        template: Option<String>,
        #[arg(long)]
        start: Option<String>,
        #[arg(long)]
        end: Option<String>,
    },
    #[command(after_help = examples!("allot contracts lines ctr_…"))]
    Lines {
        #[command(flatten)]
        remote: Remote,
        id: String,
        #[command(flatten)]
        paging: Paging,
    },
    /// The entitlements naming the contract.
    #[command(after_help = examples!("allot contracts entitlements ctr_… -o csv"))]
    Entitlements {
        #[command(flatten)]
        remote: Remote,
        id: String,
        #[command(flatten)]
        paging: Paging,
    },
    /// Draft → active.
    #[command(after_help = examples!("allot contracts activate ctr_…"))]
    Activate {
        #[command(flatten)]
        remote: Remote,
        id: String,
    },
    /// Pause the contract and its entitlements (they refuse usage until resumed).
    #[command(after_help = examples!("allot contracts suspend ctr_…"))]
    Suspend {
        #[command(flatten)]
        remote: Remote,
        id: String,
    },
    /// Restore a suspended contract and its entitlements.
    #[command(after_help = examples!("allot contracts resume ctr_…"))]
    Resume {
        #[command(flatten)]
        remote: Remote,
        id: String,
    },
    /// Cancel the contract and every entitlement of it not yet closed.
    #[command(after_help = examples!("allot contracts cancel ctr_…"))]
    Cancel {
        #[command(flatten)]
        remote: Remote,
        id: String,
    },
    /// A new contract from the day after this one ends, with draft renewals of its entitlements.
    #[command(after_help = examples!("allot contracts renew ctr_…", "allot contracts renew ctr_… --number CTR-2027-001"))]
    Renew {
        #[command(flatten)]
        remote: Remote,
        id: String,
        #[arg(long)]
        number: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum Templates {
    /// Create a template from a JSON file (the API's body), flags over it.
    #[command(after_help = examples!(
        "allot templates create --from-file gold.json",
        "allot templates create --name Bronze --unit cases --total 10 --period quarter --months 12"
    ))]
    Create {
        #[command(flatten)]
        remote: Remote,
        #[arg(long)]
        name: Option<String>,
        /// cases, hours, visits or units.
        #[arg(long)]
        unit: Option<String>,
        #[arg(long)]
        total: Option<String>,
        #[arg(long)]
        unlimited: bool,
        /// none, month, quarter or year.
        #[arg(long)]
        period: Option<String>,
        #[arg(long)]
        months: Option<u32>,
        #[arg(long)]
        days: Option<u32>,
        #[arg(long)]
        from_file: Option<PathBuf>,
    },
    #[command(after_help = examples!("allot templates list -o csv"))]
    List {
        #[command(flatten)]
        remote: Remote,
        #[command(flatten)]
        paging: Paging,
    },
    #[command(after_help = examples!("allot templates get tpl_…"))]
    Get {
        #[command(flatten)]
        remote: Remote,
        id: String,
    },
    /// Change a template; entitlements already made from it keep their terms.
    #[command(after_help = examples!("allot templates edit tpl_… --total 30"))]
    Edit {
        #[command(flatten)]
        remote: Remote,
        id: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        total: Option<String>,
        #[arg(long)]
        from_file: Option<PathBuf>,
    },
    #[command(after_help = examples!("allot templates delete tpl_…"))]
    Delete {
        #[command(flatten)]
        remote: Remote,
        id: String,
    },
    /// One entitlement per account, all or none; above 100 accounts waits on the job, showing progress.
    #[command(after_help = examples!(
        "allot templates instantiate tpl_… --account acc_1 --account acc_2 --activate",
        "allot templates instantiate tpl_… --accounts-file accounts.txt --start 2026-07-01"
    ))]
    Instantiate {
        #[command(flatten)]
        remote: Remote,
        id: String,
        #[arg(long = "account")]
        accounts: Vec<String>,
        /// One account id per line.
        #[arg(long)]
        accounts_file: Option<PathBuf>,
        #[arg(long)]
        start: Option<String>,
        #[arg(long)]
        activate: bool,
        #[arg(long)]
        contract: Option<String>,
        #[arg(long)]
        contract_line: Option<String>,
    },
    /// Show a job (an instantiation above 100 accounts).
    #[command(after_help = examples!("allot templates job job_…"))]
    Job {
        #[command(flatten)]
        remote: Remote,
        id: String,
    },
}

const CONTRACT: &[&str] = &[
    "id",
    "number",
    "account_id",
    "status",
    "start_date",
    "end_date",
    "auto_renew",
];
const LINE: &[&str] = &[
    "id",
    "product_id",
    "quantity",
    "template_id",
    "start_date",
    "end_date",
];
const TEMPLATE: &[&str] = &["id", "name", "unit", "total", "period", "restrict"];
const ENTITLEMENT: &[&str] = &[
    "id",
    "account_id",
    "name",
    "status",
    "start_date",
    "end_date",
    "template_id",
];
const JOB: &[&str] = &["id", "kind", "status", "done", "total"];

type Answered = (Remote, Value, Box<dyn Fn(&Value) -> String>);

fn empty() -> Value {
    Value::Object(Map::new())
}

/// What an action answers, for a person: the contract's new status and
/// what it moved.
fn acted(b: &Value) -> String {
    let moved = b["entitlements"].as_array().map_or(0, Vec::len);
    format!(
        "contract {} ({}) is {}; {moved} entitlement(s) moved or made",
        b["contract"]["id"].as_str().unwrap_or(""),
        b["contract"]["number"].as_str().unwrap_or(""),
        b["contract"]["status"].as_str().unwrap_or("")
    )
}

impl ContractCommand {
    pub async fn run(self) -> anyhow::Result<()> {
        let (remote, answer, human) = match self {
            ContractCommand::Contracts { command } => command.answer().await?,
            ContractCommand::Templates { command } => command.answer().await?,
        };
        remote.print(&answer, human)
    }
}

impl Contracts {
    async fn answer(self) -> anyhow::Result<Answered> {
        Ok(match self {
            Contracts::Create {
                remote,
                account,
                number,
                name,
                start,
                end,
                auto_renew,
                from_file,
            } => {
                let body = body(
                    &from_file,
                    vec![
                        ("account_id", text(account)),
                        ("number", text(number)),
                        ("name", text(name)),
                        ("start_date", text(start)),
                        ("end_date", text(end)),
                        ("auto_renew", auto_renew.then_some(Value::Bool(true))),
                    ],
                )?;
                let answer = remote.call(Method::POST, "/v1/contracts", &body).await?;
                (remote, answer, Box::new(one(CONTRACT)))
            }
            Contracts::List {
                remote,
                account,
                status,
                paging,
            } => {
                let mut filters = Vec::new();
                filters.extend(account.map(|a| ("account_id", a)));
                filters.extend(status.map(|s| ("status", s)));
                let answer = remote.list("/v1/contracts", filters, &paging).await?;
                (remote, answer, Box::new(listed(CONTRACT)))
            }
            Contracts::Get { remote, id } => {
                let answer = remote.get(&format!("/v1/contracts/{id}"), &[]).await?;
                (remote, answer, Box::new(one(CONTRACT)))
            }
            Contracts::AddLine {
                remote,
                id,
                product,
                quantity: amount,
                template,
                start,
                end,
            } => {
                let body = body(
                    &None,
                    vec![
                        ("product_id", text(product)),
                        ("quantity", amount.as_deref().map(quantity)),
                        ("template_id", text(template)),
                        ("start_date", text(start)),
                        ("end_date", text(end)),
                    ],
                )?;
                let path = format!("/v1/contracts/{id}/lines");
                let answer = remote.call(Method::POST, &path, &body).await?;
                (remote, answer, Box::new(one(LINE)))
            }
            Contracts::Lines { remote, id, paging } => {
                let path = format!("/v1/contracts/{id}/lines");
                let answer = remote.list(&path, Vec::new(), &paging).await?;
                (remote, answer, Box::new(listed(LINE)))
            }
            Contracts::Entitlements { remote, id, paging } => {
                let path = format!("/v1/contracts/{id}/entitlements");
                let answer = remote.list(&path, Vec::new(), &paging).await?;
                (remote, answer, Box::new(listed(ENTITLEMENT)))
            }
            Contracts::Activate { remote, id } => action(remote, &id, "activate", empty()).await?,
            Contracts::Suspend { remote, id } => action(remote, &id, "suspend", empty()).await?,
            Contracts::Resume { remote, id } => action(remote, &id, "resume", empty()).await?,
            Contracts::Cancel { remote, id } => action(remote, &id, "cancel", empty()).await?,
            Contracts::Renew { remote, id, number } => {
                let body = body(&None, vec![("number", text(number))])?;
                action(remote, &id, "renew", body).await?
            }
        })
    }
}

async fn action(remote: Remote, id: &str, name: &str, body: Value) -> anyhow::Result<Answered> {
    let path = format!("/v1/contracts/{id}/{name}");
    let answer = remote.call(Method::POST, &path, &body).await?;
    Ok((remote, answer, Box::new(acted)))
}

impl Templates {
    async fn answer(self) -> anyhow::Result<Answered> {
        Ok(match self {
            Templates::Create {
                remote,
                name,
                unit,
                total,
                unlimited,
                period,
                months,
                days,
                from_file,
            } => {
                let duration = match (months, days) {
                    (None, None) => None,
                    (m, d) => Some(
                        json!({ "months": m, "days": d })
                            .as_object()
                            .map(|o| {
                                o.iter()
                                    .filter(|(_, v)| !v.is_null())
                                    .map(|(k, v)| (k.clone(), v.clone()))
                                    .collect::<Map<_, _>>()
                            })
                            .map(Value::Object)
                            .unwrap_or_default(),
                    ),
                };
                let body = body(
                    &from_file,
                    vec![
                        ("name", text(name)),
                        ("unit", text(unit)),
                        ("total", total.as_deref().map(quantity)),
                        ("unlimited", unlimited.then_some(Value::Bool(true))),
                        ("period", text(period)),
                        ("duration", duration),
                    ],
                )?;
                let body = with_defaults(body);
                let answer = remote
                    .call(Method::POST, "/v1/entitlement-templates", &body)
                    .await?;
                (remote, answer, Box::new(one(TEMPLATE)))
            }
            Templates::List { remote, paging } => {
                let answer = remote
                    .list("/v1/entitlement-templates", Vec::new(), &paging)
                    .await?;
                (remote, answer, Box::new(listed(TEMPLATE)))
            }
            Templates::Get { remote, id } => {
                let answer = remote
                    .get(&format!("/v1/entitlement-templates/{id}"), &[])
                    .await?;
                (remote, answer, Box::new(one(TEMPLATE)))
            }
            Templates::Edit {
                remote,
                id,
                name,
                total,
                from_file,
            } => {
                let body = body(
                    &from_file,
                    vec![
                        ("name", text(name)),
                        ("total", total.as_deref().map(quantity)),
                    ],
                )?;
                let path = format!("/v1/entitlement-templates/{id}");
                let answer = remote.call(Method::PATCH, &path, &body).await?;
                (remote, answer, Box::new(one(TEMPLATE)))
            }
            Templates::Delete { remote, id } => {
                let path = format!("/v1/entitlement-templates/{id}");
                remote.call(Method::DELETE, &path, &empty()).await?;
                let answer = json!({ "deleted": id });
                (remote, answer, Box::new(one(&["deleted"])))
            }
            Templates::Instantiate {
                remote,
                id,
                mut accounts,
                accounts_file,
                start,
                activate,
                contract,
                contract_line,
            } => {
                if let Some(path) = accounts_file {
                    let listed = std::fs::read_to_string(&path)
                        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
                    accounts.extend(
                        listed
                            .lines()
                            .map(str::trim)
                            .filter(|l| !l.is_empty())
                            .map(str::to_string),
                    );
                }
                let body = body(
                    &None,
                    vec![
                        ("account_ids", Some(json!(accounts))),
                        ("start_date", text(start)),
                        ("activate", activate.then_some(Value::Bool(true))),
                        ("contract_id", text(contract)),
                        ("contract_line_id", text(contract_line)),
                    ],
                )?;
                let path = format!("/v1/entitlement-templates/{id}/instantiate");
                let answer = remote.call(Method::POST, &path, &body).await?;
                if answer.get("items").is_some() {
                    (remote, answer, Box::new(listed(ENTITLEMENT)))
                } else {
                    let job = wait(&remote, answer).await?;
                    (remote, job, Box::new(one(JOB)))
                }
            }
            Templates::Job { remote, id } => {
                let answer = remote.get(&format!("/v1/jobs/{id}"), &[]).await?;
                (remote, answer, Box::new(one(JOB)))
            }
        })
    }
}

/// What a template body needs that a person rarely says: restricted, used
/// on creation.
fn with_defaults(mut body: Value) -> Value {
    if let Some(map) = body.as_object_mut() {
        map.entry("restrict").or_insert(Value::Bool(true));
        map.entry("decrement_on")
            .or_insert(Value::String("creation".into()));
    }
    body
}

/// Polls a job until it is done, showing its progress; fails as the job did.
async fn wait(remote: &Remote, mut job: Value) -> anyhow::Result<Value> {
    let id = job["id"].as_str().unwrap_or_default().to_string();
    let total = job["total"].as_u64();
    let progress = Progress::new("instantiating", total);
    let mut shown = 0;
    while job["status"] == "running" {
        tokio::time::sleep(Duration::from_millis(250)).await;
        job = remote.get(&format!("/v1/jobs/{id}"), &[]).await?;
        let done = job["done"].as_u64().unwrap_or(0);
        progress.inc(done.saturating_sub(shown));
        shown = done;
    }
    progress.finish();
    if job["status"] == "failed" {
        anyhow::bail!(
            "job {id} failed: {}",
            job["error"]["error"]["message"].as_str().unwrap_or("")
        );
    }
    Ok(job)
}
