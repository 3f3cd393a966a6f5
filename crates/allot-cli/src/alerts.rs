//! Alerts from the command line: webhooks (create, list, their
//! deliveries, a manual retry) and `events tail`, which follows the event
//! feed one line per event.

use std::time::Duration;

use clap::Subcommand;
use reqwest::Method;
use serde_json::{json, Value};

use crate::client::Remote;
use crate::render::{listed, one};

#[derive(Debug, Subcommand)]
pub enum AlertCommand {
    /// Signed webhooks, e.g. `allot webhooks create https://hooks.example.com/allot`.
    #[command(after_help = examples!("allot webhooks create https://hooks.example.com/allot", "allot webhooks list"))]
    Webhooks {
        #[command(subcommand)]
        command: Webhooks,
    },
    /// The event feed, e.g. `allot events tail`.
    #[command(after_help = examples!("allot events tail", "allot events tail --from-start --once"))]
    Events {
        #[command(subcommand)]
        command: Events,
    },
}

#[derive(Debug, Subcommand)]
pub enum Webhooks {
    /// Create a webhook; its signing secret is printed once.
    #[command(after_help = examples!("allot webhooks create https://hooks.example.com/allot --event-type entitlement.exhausted"))]
    Create {
        #[command(flatten)]
        remote: Remote,
        /// Where deliveries are posted (http or https).
        url: String,
        /// An event type to send (repeat the flag); none: every type.
        #[arg(long = "event-type")]
        event_types: Vec<String>,
        /// Only this account's events.
        #[arg(long)]
        account: Option<String>,
        #[arg(long)]
        description: Option<String>,
    },
    /// The webhooks, newest last.
    #[command(after_help = examples!("allot webhooks list -o json"))]
    List {
        #[command(flatten)]
        remote: Remote,
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// The deliveries of a webhook, oldest first.
    #[command(after_help = examples!("allot webhooks deliveries whk_…"))]
    Deliveries {
        #[command(flatten)]
        remote: Remote,
        webhook: String,
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Try a delivery again now.
    #[command(after_help = examples!("allot webhooks retry whk_… dlv_…"))]
    Retry {
        #[command(flatten)]
        remote: Remote,
        webhook: String,
        delivery: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum Events {
    /// Print events as they are written, one line each: time, type,
    /// entitlement, id, data.
    #[command(after_help = examples!("allot events tail"))]
    Tail {
        #[command(flatten)]
        remote: Remote,
        /// Print the events already written first.
        #[arg(long)]
        from_start: bool,
        /// Stop once caught up instead of following.
        #[arg(long)]
        once: bool,
        /// How often to ask for new events, in milliseconds.
        #[arg(long, default_value_t = 1000)]
        every_ms: u64,
    },
}

const WEBHOOK: &[&str] = &["id", "url", "event_types", "enabled", "failing_since"];
/// A new webhook: its secret is shown this once.
const CREATED: &[&str] = &["id", "url", "event_types", "enabled", "secret"];
const DELIVERY: &[&str] = &["id", "event_type", "state", "tries", "next_attempt_at"];
/// Events asked for per request while catching up.
const PAGE: u32 = 1000;

impl AlertCommand {
    pub async fn run(self) -> anyhow::Result<()> {
        match self {
            AlertCommand::Webhooks { command } => webhooks(command).await,
            AlertCommand::Events {
                command:
                    Events::Tail {
                        remote,
                        from_start,
                        once,
                        every_ms,
                    },
            } => {
                tail(
                    remote,
                    from_start,
                    once,
                    Duration::from_millis(every_ms.max(50)),
                )
                .await
            }
        }
    }
}

async fn webhooks(command: Webhooks) -> anyhow::Result<()> {
    match command {
        Webhooks::Create {
            remote,
            url,
            event_types,
            account,
            description,
        } => {
            let body = json!({
                "url": url, "event_types": event_types,
                "account_id": account, "description": description,
            });
            let answer = remote.call(Method::POST, "/v1/webhooks", &body).await?;
            remote.print(&answer, one(CREATED))
        }
        Webhooks::List { remote, limit } => {
            let query = [("limit", limit.to_string())];
            let answer = remote.get("/v1/webhooks", &query).await?;
            remote.print(&answer, listed(WEBHOOK))
        }
        Webhooks::Deliveries {
            remote,
            webhook,
            limit,
        } => {
            let query = [("limit", limit.to_string())];
            let path = format!("/v1/webhooks/{webhook}/deliveries");
            let answer = remote.get(&path, &query).await?;
            remote.print(&answer, listed(DELIVERY))
        }
        Webhooks::Retry {
            remote,
            webhook,
            delivery,
        } => {
            let path = format!("/v1/webhooks/{webhook}/deliveries/{delivery}/retry");
            let answer = remote.call(Method::POST, &path, &json!({})).await?;
            remote.print(&answer, one(DELIVERY))
        }
    }
}

fn line(event: &Value) -> String {
    let text = |v: &Value| v.as_str().map_or_else(|| "-".to_string(), str::to_string);
    format!(
        "{} {} {} {} {}",
        text(&event["created_at"]),
        text(&event["kind"]),
        text(&event["entitlement_id"]),
        text(&event["id"]),
        event["data"]
    )
}

/// Pages through the feed after `cursor`, printing (when `print`) every
/// event; returns the last id seen.
async fn catch_up(
    remote: &Remote,
    mut cursor: Option<String>,
    print: bool,
) -> anyhow::Result<Option<String>> {
    loop {
        let mut query = vec![("limit", PAGE.to_string())];
        if let Some(after) = &cursor {
            query.push(("cursor", after.clone()));
        }
        let page = remote.get("/v1/events", &query).await?;
        let items = page["items"].as_array().cloned().unwrap_or_default();
        for event in &items {
            if print {
                println!("{}", line(event));
            }
        }
        if let Some(last) = items.last().and_then(|e| e["id"].as_str()) {
            cursor = Some(last.to_string());
        }
        if page["next_cursor"].is_null() {
            return Ok(cursor);
        }
    }
}

async fn tail(remote: Remote, from_start: bool, once: bool, every: Duration) -> anyhow::Result<()> {
    let mut cursor = catch_up(&remote, None, from_start).await?;
    if once {
        return Ok(());
    }
    loop {
        tokio::time::sleep(every).await;
        cursor = catch_up(&remote, cursor, true).await?;
    }
}
