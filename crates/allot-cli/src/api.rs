//! The rest of the API from the command line: accounts, contacts,
//! products, entitlements and their lifecycle, the ledger, adjustments,
//! reservations, the audit trail and API keys. Flags mirror the JSON fields;
//! `--from-file body.json` gives a whole body (flags given beside it win).

use std::path::PathBuf;

use clap::Subcommand;
use reqwest::Method;
use serde_json::{Map, Value};

use crate::client::Remote;
use crate::render;

#[derive(Debug, Subcommand)]
pub enum ApiCommand {
    /// Customers (accounts), e.g. `allot accounts create --name Acme`.
    Accounts {
        #[command(subcommand)]
        command: Accounts,
    },
    /// People of an account, e.g. `allot contacts create --account acc_… --name Jane`.
    Contacts {
        #[command(subcommand)]
        command: Contacts,
    },
    /// What was sold, e.g. `allot products create --name "SQL Server" --sku SQL-CORE`.
    Products {
        #[command(subcommand)]
        command: Products,
    },
    /// Entitlements and their lifecycle, e.g. `allot entitlements activate ent_…`.
    Entitlements {
        #[command(subcommand)]
        command: Entitlements,
    },
    /// The usage ledger of an entitlement, e.g. `allot usage list ent_…`.
    Usage {
        #[command(subcommand)]
        command: Usage,
    },
    /// Post a manager's correction, e.g. `allot adjust ent_… --quantity -1 --reason "double count"`.
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
    /// Hold, commit or release allotment, e.g. `allot reservations hold ent_… --quantity 1`.
    Reservations {
        #[command(subcommand)]
        command: Reservations,
    },
    /// The audit trail, newest last, e.g. `allot audit --action entitlement.activate`.
    Audit {
        #[command(flatten)]
        remote: Remote,
        #[arg(long)]
        actor: Option<String>,
        #[arg(long)]
        action: Option<String>,
        #[arg(long)]
        target_id: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// API keys over the API (admins), e.g. `allot api-keys create --role agent`.
    ApiKeys {
        #[command(subcommand)]
        command: ApiKeys,
    },
}

#[derive(Debug, Subcommand)]
pub enum Accounts {
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
    List {
        #[command(flatten)]
        remote: Remote,
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    Get {
        #[command(flatten)]
        remote: Remote,
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum Contacts {
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
    List {
        #[command(flatten)]
        remote: Remote,
        #[arg(long)]
        account: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    Get {
        #[command(flatten)]
        remote: Remote,
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum Products {
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
    List {
        #[command(flatten)]
        remote: Remote,
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    Get {
        #[command(flatten)]
        remote: Remote,
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum Entitlements {
    /// Create a draft, e.g. `--account acc_… --name "Premier cases" --unit cases --total 10
    /// --period quarter --start 2026-01-01 --end 2026-12-31` (or `--from-file`).
    Create {
        #[command(flatten)]
        remote: Remote,
        #[command(flatten)]
        fields: EntitlementFields,
    },
    /// Change a draft's terms (only the fields given).
    Edit {
        #[command(flatten)]
        remote: Remote,
        id: String,
        #[command(flatten)]
        fields: EntitlementFields,
    },
    List {
        #[command(flatten)]
        remote: Remote,
        #[arg(long)]
        account: Option<String>,
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        unit: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    Get {
        #[command(flatten)]
        remote: Remote,
        id: String,
    },
    Activate {
        #[command(flatten)]
        remote: Remote,
        id: String,
    },
    Deactivate {
        #[command(flatten)]
        remote: Remote,
        id: String,
    },
    Cancel {
        #[command(flatten)]
        remote: Remote,
        id: String,
    },
    /// Create the successor draft of an expired or cancelled entitlement.
    Renew {
        #[command(flatten)]
        remote: Remote,
        id: String,
    },
}

#[derive(Debug, Clone, clap::Args)]
pub struct EntitlementFields {
    #[arg(long)]
    account: Option<String>,
    #[arg(long)]
    name: Option<String>,
    /// cases, hours, visits or units.
    #[arg(long)]
    unit: Option<String>,
    #[arg(long)]
    total: Option<String>,
    /// none, month, quarter or year.
    #[arg(long)]
    period: Option<String>,
    #[arg(long)]
    rollover: Option<String>,
    #[arg(long)]
    start: Option<String>,
    #[arg(long)]
    end: Option<String>,
    /// true: a use past the cap is refused; false: it goes into overage.
    #[arg(long)]
    restrict: Option<bool>,
    /// creation or resolution.
    #[arg(long)]
    decrement_on: Option<String>,
    #[arg(long)]
    owner: Option<String>,
    #[arg(long)]
    from_file: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Usage {
    List {
        #[command(flatten)]
        remote: Remote,
        entitlement: String,
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
}

#[derive(Debug, Subcommand)]
pub enum Reservations {
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
    Commit {
        #[command(flatten)]
        remote: Remote,
        reservation: String,
        #[arg(long)]
        quantity: Option<String>,
    },
    Release {
        #[command(flatten)]
        remote: Remote,
        reservation: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ApiKeys {
    /// The secret is shown once.
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
    List {
        #[command(flatten)]
        remote: Remote,
    },
    /// Takes effect on the key's next request.
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

impl EntitlementFields {
    fn body(self) -> anyhow::Result<Value> {
        body(
            &self.from_file,
            vec![
                ("account_id", text(self.account)),
                ("name", text(self.name)),
                ("unit", text(self.unit)),
                ("total", self.total.as_deref().map(quantity)),
                ("period", text(self.period)),
                ("rollover", self.rollover.as_deref().map(quantity)),
                ("start_date", text(self.start)),
                ("end_date", text(self.end)),
                ("restrict", self.restrict.map(Value::Bool)),
                ("decrement_on", text(self.decrement_on)),
                ("owner", text(self.owner)),
            ],
        )
    }
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
                Accounts::List { remote, limit } => {
                    let answer = remote.get("/v1/accounts", &page(limit)).await?;
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
                    limit,
                } => {
                    let mut query = page(limit);
                    query.extend(account.map(|a| ("account_id", a)));
                    let answer = remote.get("/v1/contacts", &query).await?;
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
                Products::List { remote, limit } => {
                    let answer = remote.get("/v1/products", &page(limit)).await?;
                    (remote, answer, Box::new(listed(&["id", "name", "sku"])))
                }
                Products::Get { remote, id } => {
                    let answer = remote.get(&format!("/v1/products/{id}"), &[]).await?;
                    (remote, answer, Box::new(one(&["id", "name", "sku"])))
                }
            },
            ApiCommand::Entitlements { command } => entitlements(command).await?,
            ApiCommand::Usage {
                command:
                    Usage::List {
                        remote,
                        entitlement,
                        limit,
                    },
            } => {
                let path = format!("/v1/entitlements/{entitlement}/usage");
                let answer = remote.get(&path, &page(limit)).await?;
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
                limit,
            } => {
                let mut query = page(limit);
                query.extend(actor.map(|a| ("actor", a)));
                query.extend(action.map(|a| ("action", a)));
                query.extend(target_id.map(|t| ("target_id", t)));
                let answer = remote.get("/v1/audit", &query).await?;
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
                    println!("revoked {id}");
                    return Ok(());
                }
            },
        };
        remote.print(&answer, human)
    }
}

const ENTITLEMENT_COLUMNS: &[&str] = &[
    "id",
    "account_id",
    "name",
    "unit",
    "total",
    "period",
    "status",
    "start_date",
    "end_date",
];

type Answered = (Remote, Value, Box<dyn Fn(&Value) -> String>);

async fn entitlements(command: Entitlements) -> anyhow::Result<Answered> {
    let one = || Box::new(render::one(ENTITLEMENT_COLUMNS));
    Ok(match command {
        Entitlements::Create { remote, fields } => {
            let answer = remote
                .call(Method::POST, "/v1/entitlements", &fields.body()?)
                .await?;
            (remote, answer, one())
        }
        Entitlements::Edit { remote, id, fields } => {
            let path = format!("/v1/entitlements/{id}");
            let answer = remote.call(Method::PATCH, &path, &fields.body()?).await?;
            (remote, answer, one())
        }
        Entitlements::List {
            remote,
            account,
            status,
            unit,
            limit,
        } => {
            let mut query = page(limit);
            query.extend(account.map(|a| ("account_id", a)));
            query.extend(status.map(|s| ("status", s)));
            query.extend(unit.map(|u| ("unit", u)));
            let answer = remote.get("/v1/entitlements", &query).await?;
            (
                remote,
                answer,
                Box::new(render::listed(ENTITLEMENT_COLUMNS)),
            )
        }
        Entitlements::Get { remote, id } => {
            let answer = remote.get(&format!("/v1/entitlements/{id}"), &[]).await?;
            (remote, answer, one())
        }
        Entitlements::Activate { remote, id } => lifecycle(remote, &id, "activate").await?,
        Entitlements::Deactivate { remote, id } => lifecycle(remote, &id, "deactivate").await?,
        Entitlements::Cancel { remote, id } => lifecycle(remote, &id, "cancel").await?,
        Entitlements::Renew { remote, id } => lifecycle(remote, &id, "renew").await?,
    })
}

async fn lifecycle(remote: Remote, id: &str, action: &str) -> anyhow::Result<Answered> {
    let path = format!("/v1/entitlements/{id}/{action}");
    let answer = remote
        .call(Method::POST, &path, &Value::Object(Map::new()))
        .await?;
    Ok((remote, answer, Box::new(render::one(ENTITLEMENT_COLUMNS))))
}
