//! Client commands: talk to a running service over its HTTP API.

use anyhow::Context;
use clap::{Args, Subcommand};
use serde_json::{json, Value};

#[derive(Debug, Clone, Args)]
pub struct Remote {
    /// The service's base URL.
    #[arg(long, env = "ALLOT_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// An API key.
    #[arg(long, env = "ALLOT_KEY", hide_env_values = true)]
    pub key: String,
}

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Show an entitlement's live balance.
    Balance {
        #[command(flatten)]
        remote: Remote,
        entitlement: String,
    },
    /// Record usage against an entitlement.
    Use {
        #[command(flatten)]
        remote: Remote,
        entitlement: String,
        #[arg(long)]
        quantity: String,
        #[arg(long)]
        channel: Option<String>,
        #[arg(long)]
        reference: Option<String>,
        /// Makes a retry safe: the same key applies once.
        #[arg(long)]
        idempotency_key: Option<String>,
    },
    /// List the entitlements that would cover a case for an account, best first.
    Eligibility {
        #[command(flatten)]
        remote: Remote,
        account: String,
        #[arg(long)]
        contact: Option<String>,
        #[arg(long)]
        product: Option<String>,
        #[arg(long)]
        channel: Option<String>,
    },
}

impl Remote {
    pub fn client(&self) -> reqwest::Client {
        reqwest::Client::new()
    }

    pub async fn send(&self, request: reqwest::RequestBuilder) -> anyhow::Result<Value> {
        let response = request
            .bearer_auth(&self.key)
            .send()
            .await
            .with_context(|| format!("cannot reach {}", self.url))?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            let message = body["error"]["message"]
                .as_str()
                .unwrap_or("request failed");
            anyhow::bail!("{status}: {message}");
        }
        Ok(body)
    }
}

impl ClientCommand {
    pub async fn run(self) -> anyhow::Result<()> {
        let body = match self {
            ClientCommand::Balance {
                remote,
                entitlement,
            } => {
                let url = format!("{}/v1/entitlements/{entitlement}/balance", remote.url);
                remote.send(remote.client().get(url)).await?
            }
            ClientCommand::Use {
                remote,
                entitlement,
                quantity,
                channel,
                reference,
                idempotency_key,
            } => {
                let url = format!("{}/v1/entitlements/{entitlement}/usage", remote.url);
                let mut request = remote.client().post(url).json(
                    &json!({ "quantity": quantity, "channel": channel, "reference": reference }),
                );
                if let Some(key) = idempotency_key {
                    request = request.header("Idempotency-Key", key);
                }
                remote.send(request).await?
            }
            ClientCommand::Eligibility {
                remote,
                account,
                contact,
                product,
                channel,
            } => {
                let url = format!("{}/v1/accounts/{account}/eligibility", remote.url);
                let query: Vec<(&str, String)> = [
                    ("contact", contact),
                    ("product", product),
                    ("channel", channel),
                ]
                .into_iter()
                .filter_map(|(k, v)| v.map(|v| (k, v)))
                .collect();
                remote.send(remote.client().get(url).query(&query)).await?
            }
        };
        println!("{}", serde_json::to_string_pretty(&body)?);
        Ok(())
    }
}
