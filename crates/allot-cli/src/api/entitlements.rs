//! `allot entitlements`: create, edit, list, get, and the lifecycle.

use std::path::PathBuf;

use clap::Subcommand;
use reqwest::Method;
use serde_json::{Map, Value};

use super::{body, quantity, text, Answered};
use crate::client::Remote;
use crate::paging::Paging;
use crate::render;

#[derive(Debug, Subcommand)]
pub enum Entitlements {
    /// Create a draft from flags, a JSON file, or both (flags win).
    #[command(after_help = examples!(
        "allot entitlements create --account acc_… --name \"Premier cases\" --unit cases \\",
        "    --total 10 --period quarter --start 2026-01-01 --end 2026-12-31",
        "allot entitlements create --from-file premier.json --account acc_…"
    ))]
    Create {
        #[command(flatten)]
        remote: Remote,
        #[command(flatten)]
        fields: EntitlementFields,
    },
    /// Change a draft's terms (only the fields given).
    #[command(after_help = examples!("allot entitlements edit ent_… --total 12 --rollover 2"))]
    Edit {
        #[command(flatten)]
        remote: Remote,
        id: String,
        #[command(flatten)]
        fields: EntitlementFields,
    },
    /// List entitlements, filtered by account, status or unit.
    #[command(after_help = examples!(
        "allot entitlements list --account acc_… --status active",
        "allot entitlements list --all -o csv > entitlements.csv"
    ))]
    List {
        #[command(flatten)]
        remote: Remote,
        #[arg(long)]
        account: Option<String>,
        /// draft, waiting, active, expired or cancelled.
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        unit: Option<String>,
        #[command(flatten)]
        paging: Paging,
    },
    /// Show one entitlement's terms and status.
    #[command(after_help = examples!("allot entitlements get ent_…", "allot entitlements get ent_… -o json"))]
    Get {
        #[command(flatten)]
        remote: Remote,
        id: String,
    },
    /// Put a draft into force (waiting until its start date).
    #[command(after_help = examples!("allot entitlements activate ent_…"))]
    Activate {
        #[command(flatten)]
        remote: Remote,
        id: String,
    },
    /// Return an active or waiting entitlement to draft, to edit it.
    #[command(after_help = examples!("allot entitlements deactivate ent_…"))]
    Deactivate {
        #[command(flatten)]
        remote: Remote,
        id: String,
    },
    /// End a waiting or active entitlement now.
    #[command(after_help = examples!("allot entitlements cancel ent_…"))]
    Cancel {
        #[command(flatten)]
        remote: Remote,
        id: String,
    },
    /// Create the successor draft of an expired or cancelled entitlement.
    #[command(after_help = examples!("allot entitlements renew ent_…"))]
    Renew {
        #[command(flatten)]
        remote: Remote,
        id: String,
    },
    /// Make an entitlement its account's default; the previous default stops being one.
    #[command(after_help = examples!("allot entitlements make-default ent_…"))]
    MakeDefault {
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

/// One entitlement for a person: its terms as well as what the list shows.
const ENTITLEMENT_FIELDS: &[&str] = &[
    "id",
    "account_id",
    "name",
    "unit",
    "total",
    "period",
    "rollover",
    "restrict",
    "decrement_on",
    "status",
    "start_date",
    "end_date",
    "predecessor_id",
];

pub async fn run(command: Entitlements) -> anyhow::Result<Answered> {
    let one = || Box::new(render::one(ENTITLEMENT_FIELDS));
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
            paging,
        } => {
            let query = [("account_id", account), ("status", status), ("unit", unit)]
                .into_iter()
                .filter_map(|(name, value)| value.map(|v| (name, v)))
                .collect();
            let answer = remote.list("/v1/entitlements", query, &paging).await?;
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
        Entitlements::MakeDefault { remote, id } => lifecycle(remote, &id, "make-default").await?,
    })
}

async fn lifecycle(remote: Remote, id: &str, action: &str) -> anyhow::Result<Answered> {
    let path = format!("/v1/entitlements/{id}/{action}");
    let answer = remote
        .call(Method::POST, &path, &Value::Object(Map::new()))
        .await?;
    Ok((remote, answer, Box::new(render::one(ENTITLEMENT_FIELDS))))
}
