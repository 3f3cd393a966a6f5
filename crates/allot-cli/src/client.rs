//! Client commands: talk to a running service over its HTTP API.

use clap::{Args, Subcommand};
use serde_json::{json, Value};

use crate::failure::Failure;
use crate::output::{self, Output};
use crate::render;

/// Where the service is when neither a flag, `ALLOT_URL` nor `allot login` says.
const DEFAULT_URL: &str = "http://127.0.0.1:8080";

#[derive(Debug, Clone, Args)]
pub struct Remote {
    /// The service's base URL [default: what `allot login` stored, else http://127.0.0.1:8080].
    #[arg(long = "url", env = "ALLOT_URL")]
    pub given_url: Option<String>,
    /// An API key [default: what `allot login` stored].
    #[arg(long = "key", env = "ALLOT_KEY", hide_env_values = true)]
    pub given_key: Option<String>,
    /// `table` for people (a summary, or an aligned table); for scripts
    /// `json` (the API's body) or `csv` (a header of the JSON field names).
    #[arg(short = 'o', long, value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Keep a service URL and API key for the client commands (the key is
    /// read without echo, or from standard input).
    #[command(after_help = examples!(
        "allot login --url https://allot.example.com    # asks for the key",
        "echo \"$ALLOT_KEY\" | allot login --url http://127.0.0.1:8080"
    ))]
    Login {
        /// The service's base URL.
        #[arg(long, default_value = DEFAULT_URL)]
        url: String,
    },
    /// Forget what `allot login` kept.
    #[command(after_help = examples!("allot logout"))]
    Logout,
    /// Show an entitlement's live balance.
    #[command(after_help = examples!(
        "allot balance ent_…",
        "allot balance ent_… -o json | jq .remaining"
    ))]
    Balance {
        #[command(flatten)]
        remote: Remote,
        entitlement: String,
    },
    /// Record usage against an entitlement.
    #[command(after_help = examples!(
        "allot use ent_… --quantity 1 --reference WO-4711 --idempotency-key visit-4711",
        "allot use ent_… --quantity 1.5 --channel phone"
    ))]
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
    /// Work on cases.
    #[command(after_help = examples!(
        "allot cases open --account acc_… --title \"Printer down\"",
        "allot cases resolve cas_…"
    ))]
    Cases {
        #[command(subcommand)]
        command: CasesCommand,
    },
    /// Time entries on cases.
    #[command(after_help = examples!("allot time log cas_… --minutes 20 --note \"call\""))]
    Time {
        #[command(subcommand)]
        command: TimeCommand,
    },
    /// List the entitlements that would cover a case for an account, best first.
    #[command(after_help = examples!(
        "allot eligibility acc_…",
        "allot eligibility acc_… --contact con_… --channel phone"
    ))]
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

#[derive(Debug, Subcommand)]
pub enum CasesCommand {
    /// Open a case; the entitlement is matched when not given.
    #[command(after_help = examples!(
        "allot cases open --account acc_… --title \"Printer down\"",
        "allot cases open --account acc_… --title Upgrade --entitlement ent_… --channel phone"
    ))]
    Open {
        #[command(flatten)]
        remote: Remote,
        #[arg(long)]
        account: String,
        #[arg(long)]
        title: String,
        #[arg(long)]
        contact: Option<String>,
        #[arg(long)]
        product: Option<String>,
        #[arg(long)]
        channel: Option<String>,
        #[arg(long)]
        entitlement: Option<String>,
        #[arg(long)]
        do_not_decrement: bool,
    },
    /// Resolve a case.
    #[command(after_help = examples!("allot cases resolve cas_…"))]
    Resolve {
        #[command(flatten)]
        remote: Remote,
        case: String,
    },
    /// Cancel a case.
    #[command(after_help = examples!("allot cases cancel cas_…"))]
    Cancel {
        #[command(flatten)]
        remote: Remote,
        case: String,
    },
    /// Reopen a resolved or cancelled case.
    #[command(after_help = examples!("allot cases reactivate cas_…"))]
    Reactivate {
        #[command(flatten)]
        remote: Remote,
        case: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum TimeCommand {
    /// Log time on a case (minutes or hours).
    #[command(after_help = examples!(
        "allot time log cas_… --minutes 20 --note \"call\"",
        "allot time log cas_… --hours 1.5"
    ))]
    Log {
        #[command(flatten)]
        remote: Remote,
        case: String,
        #[arg(long, conflicts_with = "hours")]
        minutes: Option<u32>,
        #[arg(long)]
        hours: Option<String>,
        #[arg(long)]
        note: Option<String>,
    },
}

impl Remote {
    pub fn client(&self) -> reqwest::Client {
        reqwest::Client::new()
    }

    /// The base URL: the flag or `ALLOT_URL`, else `allot login`'s, else the default.
    pub fn url(&self) -> String {
        self.given_url
            .clone()
            .or_else(|| crate::login::stored().map(|c| c.url))
            .unwrap_or_else(|| DEFAULT_URL.to_string())
            .trim_end_matches('/')
            .to_string()
    }

    pub(crate) fn key(&self) -> Result<String, Failure> {
        self.given_key
            .clone()
            .or_else(|| crate::login::stored().map(|c| c.key))
            .ok_or(Failure::NoKey)
    }

    /// `GET {url}{path}` with `query`.
    pub async fn get(&self, path: &str, query: &[(&str, String)]) -> Result<Value, Failure> {
        let request = self
            .client()
            .get(format!("{}{path}", self.url()))
            .query(query);
        self.send(request).await
    }

    /// `method {url}{path}` with a JSON body.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: &Value,
    ) -> Result<Value, Failure> {
        let request = self
            .client()
            .request(method, format!("{}{path}", self.url()))
            .json(body);
        self.send(request).await
    }

    /// Prints an answer as `--output` asks: for people through `human`,
    /// else as JSON or CSV (`output::print`).
    pub fn print(&self, body: &Value, human: impl Fn(&Value) -> String) -> anyhow::Result<()> {
        output::print(self.output, body, human)
    }

    /// `GET {url}{path}` with `query`, the body as text (CSV).
    pub async fn get_text(&self, path: &str, query: &[(&str, String)]) -> Result<String, Failure> {
        let response = self
            .client()
            .get(format!("{}{path}", self.url()))
            .query(query)
            .bearer_auth(self.key()?)
            .send()
            .await
            .map_err(|e| self.unreachable(e))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if !status.is_success() {
            let body = serde_json::from_str(&text).unwrap_or(Value::Null);
            return Err(Failure::answered(status.as_u16(), &body));
        }
        Ok(text)
    }

    /// The server did not answer: the request never reached it.
    pub fn unreachable(&self, e: reqwest::Error) -> Failure {
        Failure::Unreachable {
            url: self.url(),
            cause: e.to_string(),
        }
    }

    pub async fn send(&self, request: reqwest::RequestBuilder) -> Result<Value, Failure> {
        let response = request
            .bearer_auth(self.key()?)
            .send()
            .await
            .map_err(|e| self.unreachable(e))?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            return Err(Failure::answered(status.as_u16(), &body));
        }
        Ok(body)
    }
}

impl ClientCommand {
    pub async fn run(self) -> anyhow::Result<()> {
        let post = reqwest::Method::POST;
        let (remote, body, human): (Remote, Value, fn(&Value) -> String) = match self {
            ClientCommand::Login { url } => return login(url).await,
            ClientCommand::Logout => {
                let forgot = crate::login::forget()?;
                let said = if forgot {
                    "logged out\n"
                } else {
                    "not logged in\n"
                };
                return output::stdout(said.as_bytes());
            }
            ClientCommand::Balance {
                remote,
                entitlement,
            } => {
                let path = format!("/v1/entitlements/{entitlement}");
                let balance = remote.get(&format!("{path}/balance"), &[]).await?;
                // A person wants the entitlement's name and status too.
                let record = match remote.output {
                    Output::Table => remote.get(&path, &[]).await?,
                    Output::Json | Output::Csv => Value::Null,
                };
                return remote.print(&balance, |balance| render::balance(&record, balance));
            }
            ClientCommand::Use {
                remote,
                entitlement,
                quantity,
                channel,
                reference,
                idempotency_key,
            } => {
                let url = format!("{}/v1/entitlements/{entitlement}/usage", remote.url());
                let mut request = remote.client().post(url).json(
                    &json!({ "quantity": quantity, "channel": channel, "reference": reference }),
                );
                if let Some(key) = idempotency_key {
                    request = request.header("Idempotency-Key", key);
                }
                let answer = remote.send(request).await?;
                (remote, answer, render::recorded)
            }
            ClientCommand::Cases { command } => match command {
                CasesCommand::Open {
                    remote,
                    account,
                    title,
                    contact,
                    product,
                    channel,
                    entitlement,
                    do_not_decrement,
                } => {
                    let body = json!({ "account_id": account, "title": title, "contact_id": contact, "product_id": product,
                        "channel": channel, "entitlement_id": entitlement, "do_not_decrement": do_not_decrement });
                    let answer = remote.call(post, "/v1/cases", &body).await?;
                    (remote, answer, render::case)
                }
                CasesCommand::Resolve { remote, case } => action(remote, &case, "resolve").await?,
                CasesCommand::Cancel { remote, case } => action(remote, &case, "cancel").await?,
                CasesCommand::Reactivate { remote, case } => {
                    action(remote, &case, "reactivate").await?
                }
            },
            ClientCommand::Time {
                command:
                    TimeCommand::Log {
                        remote,
                        case,
                        minutes,
                        hours,
                        note,
                    },
            } => {
                let body = json!({ "minutes": minutes, "hours": hours, "note": note });
                let path = format!("/v1/cases/{case}/time-entries");
                let answer = remote.call(post, &path, &body).await?;
                (remote, answer, render::case)
            }
            ClientCommand::Eligibility {
                remote,
                account,
                contact,
                product,
                channel,
            } => {
                let query: Vec<(&str, String)> = [
                    ("contact", contact),
                    ("product", product),
                    ("channel", channel),
                ]
                .into_iter()
                .filter_map(|(k, v)| v.map(|v| (k, v)))
                .collect();
                let path = format!("/v1/accounts/{account}/eligibility");
                let answer = remote.get(&path, &query).await?;
                (remote, answer, render::eligibility)
            }
        };
        remote.print(&body, human)
    }
}

/// Checks the key against the service (any answer but 401 proves it is a
/// live key), then keeps URL and key.
async fn login(url: String) -> anyhow::Result<()> {
    let key = crate::login::read_key()?;
    let remote = Remote {
        given_url: Some(url.trim_end_matches('/').to_string()),
        given_key: Some(key.clone()),
        output: Output::Table,
    };
    match remote.get("/v1/accounts", &[("limit", "1".into())]).await {
        Ok(_) | Err(Failure::Answered { status: 403, .. }) => {}
        Err(failure) => return Err(failure.into()),
    }
    let path = crate::login::save(&crate::login::Credentials {
        url: remote.url(),
        key,
    })?;
    println!(
        "logged in to {}; key kept in {}",
        remote.url(),
        path.display()
    );
    Ok(())
}

async fn action(
    remote: Remote,
    case: &str,
    action: &str,
) -> Result<(Remote, Value, fn(&Value) -> String), Failure> {
    let path = format!("/v1/cases/{case}/{action}");
    let answer = remote
        .call(reqwest::Method::POST, &path, &json!({}))
        .await?;
    Ok((remote, answer, render::case))
}
