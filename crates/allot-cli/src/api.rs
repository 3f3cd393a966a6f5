//! The rest of the API from the command line: accounts, contacts,
//! products, entitlements and their lifecycle, the ledger, adjustments,
//! reservations, the audit trail and API keys. Flags mirror the JSON fields;
//! `--from-file body.json` gives a whole body (flags given beside it win).

mod entitlements;

use std::path::PathBuf;

use clap::Subcommand;
use reqwest::Method;
use serde_json::{Map, Value};

use crate::client::Remote;
use crate::output::{self, Output};
use crate::paging::Paging;
use crate::render;
use entitlements::Entitlements;

#[derive(Debug, Subcommand)]
pub enum ApiCommand {
    /// Customers (accounts).
    #[command(after_help = examples!("allot accounts create --name Acme", "allot accounts list -o csv"))]
    Accounts {
        #[command(subcommand)]
        command: Accounts,
    },
    /// People of an account.
    #[command(after_help = examples!(
        "allot contacts create --account acc_… --name Jane --email jane@acme.example",
        "allot contacts list --account acc_…"
    ))]
    Contacts {
        #[command(subcommand)]
        command: Contacts,
    },
    /// What was sold.
    #[command(after_help = examples!(
        "allot products create --name \"SQL Server\" --sku SQL-CORE",
        "allot products list"
    ))]
    Products {
        #[command(subcommand)]
        command: Products,
    },
    /// Entitlements and their lifecycle.
    #[command(after_help = examples!(
        "allot entitlements create --from-file premier.json",
        "allot entitlements activate ent_…",
        "allot entitlements list --account acc_… --status active"
    ))]
    Entitlements {
        #[command(subcommand)]
        command: Entitlements,
    },
    /// The usage ledger of an entitlement.
    #[command(after_help = examples!("allot usage list ent_…"))]
    Usage {
        #[command(subcommand)]
        command: Usage,
    },
    /// Post a manager's correction to an entitlement's use.
    #[command(after_help = examples!(
        "allot adjust ent_… --quantity -1 --reason \"counted twice\"",
        "allot adjust ent_… --quantity 2 --reason \"visits on paper\" --channel phone"
    ))]
    Adjust {
        #[command(flatten)]
        remote: Remote,
        entitlement: String,
        /// Signed, not zero.
        #[arg(long, allow_hyphen_values = true)]
        quantity: String,
        #[arg(long)]
        reason: String,
        #[arg(long)]
        channel: Option<String>,
    },
    /// Hold allotment, then commit or release it.
    #[command(after_help = examples!(
        "allot reservations hold ent_… --quantity 1",
        "allot reservations commit res_…"
    ))]
    Reservations {
        #[command(subcommand)]
        command: Reservations,
    },
    /// The audit trail, newest last.
    #[command(after_help = examples!(
        "allot audit --action entitlement.activate",
        "allot audit --target-id ent_… --all -o csv"
    ))]
    Audit {
        #[command(flatten)]
        remote: Remote,
        /// The key id that made the change.
        #[arg(long)]
        actor: Option<String>,
        #[arg(long)]
        action: Option<String>,
        #[arg(long)]
        target_id: Option<String>,
        #[command(flatten)]
        paging: Paging,
    },
    /// API keys over the API (admins).
    #[command(after_help = examples!("allot api-keys create --role agent --name helpdesk", "allot api-keys list"))]
    ApiKeys {
        #[command(subcommand)]
        command: ApiKeys,
    },
}

#[derive(Debug, Subcommand)]
pub enum Accounts {
    /// Create an account.
    #[command(after_help = examples!(
        "allot accounts create --name Acme",
        "allot accounts create --name \"Acme Berlin\" --parent acc_…"
    ))]
    Create {
        #[command(flatten)]
        remote: Remote,
        #[arg(long)]
        name: Option<String>,
        /// The parent account (sites under a company).
        #[arg(long)]
        parent: Option<String>,
        #[arg(long)]
        from_file: Option<PathBuf>,
    },
    /// List accounts, a page at a time (or `--all`).
    #[command(after_help = examples!("allot accounts list", "allot accounts list --all -o csv > accounts.csv"))]
    List {
        #[command(flatten)]
        remote: Remote,
        #[command(flatten)]
        paging: Paging,
    },
    /// Show one account.
    #[command(after_help = examples!("allot accounts get acc_…"))]
    Get {
        #[command(flatten)]
        remote: Remote,
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum Contacts {
    /// Create a contact of an account.
    #[command(after_help = examples!("allot contacts create --account acc_… --name Jane --email jane@acme.example"))]
    Create {
        #[command(flatten)]
        remote: Remote,
        #[arg(long)]
        account: Option<String>,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        email: Option<String>,
        #[arg(long)]
        from_file: Option<PathBuf>,
    },
    /// List contacts, of one account or all.
    #[command(after_help = examples!("allot contacts list --account acc_…", "allot contacts list --all -o json"))]
    List {
        #[command(flatten)]
        remote: Remote,
        #[arg(long)]
        account: Option<String>,
        #[command(flatten)]
        paging: Paging,
    },
    /// Show one contact.
    #[command(after_help = examples!("allot contacts get con_…"))]
    Get {
        #[command(flatten)]
        remote: Remote,
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum Products {
    /// Create a product.
    #[command(after_help = examples!("allot products create --name \"SQL Server\" --sku SQL-CORE"))]
    Create {
        #[command(flatten)]
        remote: Remote,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        sku: Option<String>,
        #[arg(long)]
        from_file: Option<PathBuf>,
    },
    /// List products.
    #[command(after_help = examples!("allot products list", "allot products list --all -o csv"))]
    List {
        #[command(flatten)]
        remote: Remote,
        #[command(flatten)]
        paging: Paging,
    },
    /// Show one product.
    #[command(after_help = examples!("allot products get prd_…"))]
    Get {
        #[command(flatten)]
        remote: Remote,
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum Usage {
    /// The ledger of an entitlement: uses, adjustments, commits, oldest first.
    #[command(after_help = examples!("allot usage list ent_…", "allot usage list ent_… --all -o csv > ledger.csv"))]
    List {
        #[command(flatten)]
        remote: Remote,
        entitlement: String,
        #[command(flatten)]
        paging: Paging,
    },
    /// Record the uses of a JSON Lines file, up to 1,000 per request
    /// (`POST /v1/usage/batch`), with a progress bar; each line is
    /// `{"entitlement_id", "quantity", "channel"?, "reference"?, "idempotency_key"?}`
    /// and is answered on its own. Refused lines are listed at the end
    /// (exit code 3, or 6 when one was invalid).
    #[command(after_help = examples!(
        "allot usage import usage.jsonl",
        "allot usage import usage.jsonl --run-id 2026-06-15 -o json",
        "zcat usage.jsonl.gz | allot usage import -"
    ))]
    Import {
        #[command(flatten)]
        remote: Remote,
        /// The file, or `-` for standard input.
        file: std::path::PathBuf,
        /// Lines per request (1 to 1,000).
        #[arg(long, default_value_t = crate::usage_import::MAX_BATCH)]
        batch_size: usize,
        /// Makes a rerun safe: lines without their own `idempotency_key`
        /// get one from this id and their place in the file, so importing
        /// the same file again with the same id records nothing twice.
        #[arg(long)]
        run_id: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum Reservations {
    /// Hold allotment until committed, released or timed out.
    #[command(after_help = examples!("allot reservations hold ent_… --quantity 2 --timeout-seconds 600 --reference WO-17"))]
    Hold {
        #[command(flatten)]
        remote: Remote,
        entitlement: String,
        #[arg(long)]
        quantity: String,
        #[arg(long, default_value_t = 3600)]
        timeout_seconds: u32,
        #[arg(long)]
        channel: Option<String>,
        #[arg(long)]
        reference: Option<String>,
    },
    /// Turn a hold into usage, of the held amount or `--quantity`.
    #[command(after_help = examples!("allot reservations commit res_…", "allot reservations commit res_… --quantity 1"))]
    Commit {
        #[command(flatten)]
        remote: Remote,
        reservation: String,
        #[arg(long)]
        quantity: Option<String>,
    },
    /// Give a hold back unused.
    #[command(after_help = examples!("allot reservations release res_…"))]
    Release {
        #[command(flatten)]
        remote: Remote,
        reservation: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ApiKeys {
    /// Create a key; its secret is shown once, alone on the last line.
    #[command(after_help = examples!(
        "allot api-keys create --role agent --name helpdesk",
        "allot api-keys create --role customer --account acc_…"
    ))]
    Create {
        #[command(flatten)]
        remote: Remote,
        /// admin, manager, agent, customer or integration.
        #[arg(long)]
        role: String,
        /// The account a customer key is bound to.
        #[arg(long)]
        account: Option<String>,
        #[arg(long)]
        name: Option<String>,
    },
    /// List keys (never their secrets).
    #[command(after_help = examples!("allot api-keys list"))]
    List {
        #[command(flatten)]
        remote: Remote,
    },
    /// Revoke a key; takes effect on its next request.
    #[command(after_help = examples!("allot api-keys revoke key_…"))]
    Revoke {
        #[command(flatten)]
        remote: Remote,
        id: String,
    },
}

/// A quantity as given: a JSON number when it reads as one (the API takes
/// both), else the text for the API to judge.
pub(crate) fn quantity(text: &str) -> Value {
    serde_json::from_str::<serde_json::Number>(text)
        .map(Value::Number)
        .unwrap_or_else(|_| Value::String(text.to_string()))
}

/// The body: `--from-file`'s object, then every flag given over it.
pub(crate) fn body(
    from_file: &Option<PathBuf>,
    flags: Vec<(&str, Option<Value>)>,
) -> anyhow::Result<Value> {
    let mut body = match from_file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
            match serde_json::from_str(&text) {
                Ok(Value::Object(map)) => map,
                _ => anyhow::bail!("{} must hold a JSON object", path.display()),
            }
        }
        None => Map::new(),
    };
    for (name, value) in flags {
        if let Some(value) = value {
            body.insert(name.to_string(), value);
        }
    }
    Ok(Value::Object(body))
}

pub(crate) fn text(v: Option<String>) -> Option<Value> {
    v.map(Value::String)
}

pub(crate) fn page(limit: u32) -> Vec<(&'static str, String)> {
    vec![("limit", limit.to_string())]
}

impl ApiCommand {
    pub async fn run(self) -> anyhow::Result<()> {
        use render::{listed, one};
        let empty = || Value::Object(Map::new());
        let (remote, answer, human): Answered = match self {
            ApiCommand::Accounts { command } => match command {
                Accounts::Create {
                    remote,
                    name,
                    parent,
                    from_file,
                } => {
                    let body = body(
                        &from_file,
                        vec![("name", text(name)), ("parent_id", text(parent))],
                    )?;
                    let answer = remote.call(Method::POST, "/v1/accounts", &body).await?;
                    (remote, answer, Box::new(one(&["id", "name", "parent_id"])))
                }
                Accounts::List { remote, paging } => {
                    let answer = remote.list("/v1/accounts", vec![], &paging).await?;
                    (
                        remote,
                        answer,
                        Box::new(listed(&["id", "name", "parent_id"])),
                    )
                }
                Accounts::Get { remote, id } => {
                    let answer = remote.get(&format!("/v1/accounts/{id}"), &[]).await?;
                    (remote, answer, Box::new(one(&["id", "name", "parent_id"])))
                }
            },
            ApiCommand::Contacts { command } => match command {
                Contacts::Create {
                    remote,
                    account,
                    name,
                    email,
                    from_file,
                } => {
                    let body = body(
                        &from_file,
                        vec![
                            ("account_id", text(account)),
                            ("name", text(name)),
                            ("email", text(email)),
                        ],
                    )?;
                    let answer = remote.call(Method::POST, "/v1/contacts", &body).await?;
                    (
                        remote,
                        answer,
                        Box::new(one(&["id", "account_id", "name", "email"])),
                    )
                }
                Contacts::List {
                    remote,
                    account,
                    paging,
                } => {
                    let query = account.map(|a| ("account_id", a)).into_iter().collect();
                    let answer = remote.list("/v1/contacts", query, &paging).await?;
                    (
                        remote,
                        answer,
                        Box::new(listed(&["id", "account_id", "name", "email"])),
                    )
                }
                Contacts::Get { remote, id } => {
                    let answer = remote.get(&format!("/v1/contacts/{id}"), &[]).await?;
                    (
                        remote,
                        answer,
                        Box::new(one(&["id", "account_id", "name", "email"])),
                    )
                }
            },
            ApiCommand::Products { command } => match command {
                Products::Create {
                    remote,
                    name,
                    sku,
                    from_file,
                } => {
                    let body = body(&from_file, vec![("name", text(name)), ("sku", text(sku))])?;
                    let answer = remote.call(Method::POST, "/v1/products", &body).await?;
                    (remote, answer, Box::new(one(&["id", "name", "sku"])))
                }
                Products::List { remote, paging } => {
                    let answer = remote.list("/v1/products", vec![], &paging).await?;
                    (remote, answer, Box::new(listed(&["id", "name", "sku"])))
                }
                Products::Get { remote, id } => {
                    let answer = remote.get(&format!("/v1/products/{id}"), &[]).await?;
                    (remote, answer, Box::new(one(&["id", "name", "sku"])))
                }
            },
            ApiCommand::Entitlements { command } => entitlements::run(command).await?,
            ApiCommand::Usage {
                command:
                    Usage::Import {
                        remote,
                        file,
                        batch_size,
                        run_id,
                    },
            } => {
                let summary =
                    crate::usage_import::run(&remote, &file, batch_size, run_id.as_deref()).await?;
                remote.print(&summary, crate::usage_import::human)?;
                return crate::usage_import::outcome(&summary);
            }
            ApiCommand::Usage {
                command:
                    Usage::List {
                        remote,
                        entitlement,
                        paging,
                    },
            } => {
                let path = format!("/v1/entitlements/{entitlement}/usage");
                let answer = remote.list(&path, vec![], &paging).await?;
                let columns = &[
                    "id",
                    "quantity",
                    "reason",
                    "channel",
                    "reference",
                    "created_at",
                ];
                (remote, answer, Box::new(listed(columns)))
            }
            ApiCommand::Adjust {
                remote,
                entitlement,
                quantity: amount,
                reason,
                channel,
            } => {
                let body = body(
                    &None,
                    vec![
                        ("quantity", Some(quantity(&amount))),
                        ("reason", Some(Value::String(reason))),
                        ("channel", text(channel)),
                    ],
                )?;
                let path = format!("/v1/entitlements/{entitlement}/adjustments");
                let answer = remote.call(Method::POST, &path, &body).await?;
                (remote, answer, Box::new(render::recorded))
            }
            ApiCommand::Reservations { command } => match command {
                Reservations::Hold {
                    remote,
                    entitlement,
                    quantity: amount,
                    timeout_seconds,
                    channel,
                    reference,
                } => {
                    let body = body(
                        &None,
                        vec![
                            ("quantity", Some(quantity(&amount))),
                            ("timeout_seconds", Some(Value::from(timeout_seconds))),
                            ("channel", text(channel)),
                            ("reference", text(reference)),
                        ],
                    )?;
                    let path = format!("/v1/entitlements/{entitlement}/reservations");
                    let answer = remote.call(Method::POST, &path, &body).await?;
                    (remote, answer, Box::new(render::reservation))
                }
                Reservations::Commit {
                    remote,
                    reservation,
                    quantity: amount,
                } => {
                    let body = body(&None, vec![("quantity", amount.as_deref().map(quantity))])?;
                    let path = format!("/v1/reservations/{reservation}/commit");
                    let answer = remote.call(Method::POST, &path, &body).await?;
                    (remote, answer, Box::new(render::reservation))
                }
                Reservations::Release {
                    remote,
                    reservation,
                } => {
                    let path = format!("/v1/reservations/{reservation}/release");
                    let answer = remote.call(Method::POST, &path, &empty()).await?;
                    (remote, answer, Box::new(render::reservation))
                }
            },
            ApiCommand::Audit {
                remote,
                actor,
                action,
                target_id,
                paging,
            } => {
                let query = [
                    ("actor", actor),
                    ("action", action),
                    ("target_id", target_id),
                ]
                .into_iter()
                .filter_map(|(name, value)| value.map(|v| (name, v)))
                .collect();
                let answer = remote.list("/v1/audit", query, &paging).await?;
                let columns = &["at", "actor", "role", "action", "target_type", "target_id"];
                (remote, answer, Box::new(listed(columns)))
            }
            ApiCommand::ApiKeys { command } => match command {
                ApiKeys::Create {
                    remote,
                    role,
                    account,
                    name,
                } => {
                    let body = body(
                        &None,
                        vec![
                            ("role", Some(Value::String(role))),
                            ("account_id", text(account)),
                            ("name", text(name)),
                        ],
                    )?;
                    let answer = remote.call(Method::POST, "/v1/api-keys", &body).await?;
                    (remote, answer, Box::new(render::created_key))
                }
                ApiKeys::List { remote } => {
                    let answer = remote.get("/v1/api-keys", &[]).await?;
                    let columns = &["id", "role", "account_id", "name", "revoked_at"];
                    (remote, answer, Box::new(listed(columns)))
                }
                ApiKeys::Revoke { remote, id } => {
                    let path = format!("/v1/api-keys/{id}/revoke");
                    remote.call(Method::POST, &path, &empty()).await?;
                    // 204: a script reads the exit code; a person is told.
                    if remote.output == Output::Table {
                        output::stdout(format!("revoked {id}\n").as_bytes())?;
                    }
                    return Ok(());
                }
            },
        };
        remote.print(&answer, human)
    }
}

/// What a command answered, with how a person reads it.
type Answered = (Remote, Value, Box<dyn Fn(&Value) -> String>);
