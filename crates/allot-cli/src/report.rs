//! `allot report …`: the service's reports as aligned tables for people,
//! the service's CSV unchanged for spreadsheets (`-o csv`), or its JSON
//! for scripts (`-o json`).

use clap::{Args, Subcommand};

use crate::client::Remote;
use std::io::Write;

use crate::output::Output;
use crate::render;

/// How a report is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportOutput {
    /// For people: an aligned table of the main columns.
    Table,
    /// Every column, as the service writes it (header = JSON field names).
    Csv,
    /// The API's body, unchanged.
    Json,
}

/// What every report takes: where the service is, the filters and the page.
#[derive(Debug, Clone, Args)]
pub struct ReportArgs {
    /// The service's base URL [default: what `allot login` stored, else http://127.0.0.1:8080].
    #[arg(long = "url", env = "ALLOT_URL")]
    url: Option<String>,
    /// An API key [default: what `allot login` stored].
    #[arg(long = "key", env = "ALLOT_KEY", hide_env_values = true)]
    key: Option<String>,
    #[arg(short = 'o', long, value_enum, default_value_t = ReportOutput::Table)]
    output: ReportOutput,
    /// Only this account's entitlements.
    #[arg(long)]
    account: Option<String>,
    /// cases, hours, visits or units.
    #[arg(long)]
    unit: Option<String>,
    #[arg(long)]
    owner: Option<String>,
    /// Only entitlements sold for this product.
    #[arg(long)]
    product: Option<String>,
    #[arg(long)]
    contract: Option<String>,
    #[arg(long, default_value_t = 100)]
    limit: u32,
    /// `next_cursor` of the previous page.
    #[arg(long)]
    cursor: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Used, remaining and percent used per entitlement and channel, e.g. `allot report consumption --account acc_…`.
    #[command(after_help = examples!("allot report consumption --account acc_…", "allot report consumption -o csv > consumption.csv"))]
    Consumption {
        #[command(flatten)]
        args: ReportArgs,
        /// draft, waiting, active, expired or cancelled.
        #[arg(long)]
        status: Option<String>,
    },
    /// Active entitlements in overage, exhausted, or at or above a percent used.
    #[command(after_help = examples!("allot report approaching-limit --threshold 80"))]
    ApproachingLimit {
        #[command(flatten)]
        args: ReportArgs,
        #[arg(long, default_value_t = 80)]
        threshold: u32,
    },
    /// Active entitlements ending within some days, with what is unused.
    #[command(after_help = examples!("allot report expiring --within-days 30 -o csv"))]
    Expiring {
        #[command(flatten)]
        args: ReportArgs,
        #[arg(long, default_value_t = 30)]
        within_days: u32,
    },
    /// What closed periods and ended terms left unused (for renewals).
    #[command(after_help = examples!("allot report unused --from 2026-01-01 --to 2026-12-31"))]
    Unused {
        #[command(flatten)]
        args: ReportArgs,
        /// First day (YYYY-MM-DD) a period may end on [default: a year before --to].
        #[arg(long)]
        from: Option<String>,
        /// Last day a period may end on [default: today].
        #[arg(long)]
        to: Option<String>,
    },
    /// Burn rate and the projected day each allotment runs out.
    #[command(after_help = examples!("allot report forecast --window-days 30 -o json"))]
    Forecast {
        #[command(flatten)]
        args: ReportArgs,
        /// The trailing window of the burn rate, in days.
        #[arg(long, default_value_t = 30)]
        window_days: u32,
    },
    /// Per software model and licence metric: compliant, under- or over-licensed, true-up cost and savings, reconciled now.
    #[command(after_help = examples!("allot report software-compliance", "allot report software-compliance --status under_licensed -o csv"))]
    SoftwareCompliance {
        #[command(flatten)]
        args: ReportArgs,
        /// Only this software model (swm_…).
        #[arg(long)]
        model: Option<String>,
        /// compliant, under_licensed or over_licensed.
        #[arg(long)]
        status: Option<String>,
    },
}

const CONSUMPTION: &[&str] = &[
    "entitlement_id",
    "account_id",
    "unit",
    "channel",
    "total",
    "used",
    "remaining",
    "percent_used",
    "term_used",
];
const LIMIT: &[&str] = &[
    "entitlement_id",
    "account_id",
    "unit",
    "state",
    "total",
    "used",
    "remaining",
    "percent_used",
    "period_end",
];
const EXPIRING: &[&str] = &[
    "entitlement_id",
    "account_id",
    "unit",
    "end_date",
    "days_left",
    "total",
    "used",
    "unused",
];
const UNUSED: &[&str] = &[
    "entitlement_id",
    "account_id",
    "unit",
    "period_start",
    "period_end",
    "total",
    "carried_in",
    "used",
    "unused",
];
const FORECAST: &[&str] = &[
    "entitlement_id",
    "account_id",
    "unit",
    "remaining",
    "burn_rate_per_day",
    "outlook",
    "exhausted_on",
];
const COMPLIANCE: &[&str] = &[
    "software_model_id",
    "product",
    "version",
    "license_metric",
    "status",
    "rights_owned",
    "rights_needed",
    "shortfall",
    "true_up_cost",
    "unused_rights",
    "potential_savings",
];

impl ReportCommand {
    pub async fn run(self) -> anyhow::Result<()> {
        let (args, path, columns, mut query) = match self {
            ReportCommand::Consumption { args, status } => {
                let query = status.map(|s| ("status", s)).into_iter().collect();
                (args, "consumption", CONSUMPTION, query)
            }
            ReportCommand::ApproachingLimit { args, threshold } => (
                args,
                "approaching-limit",
                LIMIT,
                vec![("threshold", threshold.to_string())],
            ),
            ReportCommand::Expiring { args, within_days } => (
                args,
                "expiring",
                EXPIRING,
                vec![("within_days", within_days.to_string())],
            ),
            ReportCommand::Unused { args, from, to } => {
                let mut query = Vec::new();
                query.extend(from.map(|f| ("from", f)));
                query.extend(to.map(|t| ("to", t)));
                (args, "unused", UNUSED, query)
            }
            ReportCommand::Forecast { args, window_days } => (
                args,
                "forecast",
                FORECAST,
                vec![("window_days", window_days.to_string())],
            ),
            ReportCommand::SoftwareCompliance {
                args,
                model,
                status,
            } => {
                let mut query = Vec::new();
                query.extend(model.map(|m| ("software_model_id", m)));
                query.extend(status.map(|s| ("status", s)));
                (args, "software-compliance", COMPLIANCE, query)
            }
        };
        query.push(("limit", args.limit.to_string()));
        for (name, value) in [
            ("account_id", &args.account),
            ("unit", &args.unit),
            ("owner", &args.owner),
            ("product_id", &args.product),
            ("contract_id", &args.contract),
            ("cursor", &args.cursor),
        ] {
            query.extend(value.clone().map(|v| (name, v)));
        }
        let remote = Remote {
            given_url: args.url,
            given_key: args.key,
            output: match args.output {
                ReportOutput::Json => Output::Json,
                ReportOutput::Table | ReportOutput::Csv => Output::Table,
            },
        };
        let path = format!("/v1/reports/{path}");
        if args.output == ReportOutput::Csv {
            query.push(("format", "csv".to_string()));
            let text = remote.get_text(&path, &query).await?;
            std::io::stdout().write_all(text.as_bytes())?;
            return Ok(());
        }
        let body = remote.get(&path, &query).await?;
        remote.print(&body, render::listed(columns))
    }
}
