//! Setup and read-back calls to the allot HTTP API (not measured).

use std::time::Duration;

use anyhow::{bail, Context, Result};
use futures::stream::{self, StreamExt, TryStreamExt};
use serde_json::{json, Value};

use crate::scenarios::Layout;

#[derive(Debug, Clone)]
pub struct Api {
    client: reqwest::Client,
    base: String,
    bearer: String,
}

/// What `GET /v1/entitlements/{id}/balance` reports, in units.
#[derive(Debug, Clone, Copy)]
pub struct Balance {
    pub total: Option<f64>,
    pub used: f64,
}

impl Api {
    pub fn new(base: &str, key: &str) -> Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(64)
            .build()?;
        Ok(Api {
            client,
            base: base.trim_end_matches('/').to_owned(),
            bearer: format!("Bearer {key}"),
        })
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value> {
        let mut request = self
            .client
            .request(method.clone(), format!("{}{path}", self.base))
            .header("authorization", &self.bearer);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("{method} {path}"))?;
        let status = response.status();
        let text = response.text().await?;
        if !status.is_success() {
            bail!("{method} {path} -> {status}: {text}");
        }
        if text.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text).with_context(|| format!("{method} {path}: bad JSON {text}"))
    }

    fn id_of(value: &Value, what: &str) -> Result<String> {
        value
            .get("id")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .with_context(|| format!("{what} response has no id: {value}"))
    }

    pub async fn create_account(&self, name: &str) -> Result<String> {
        let value = self
            .call(
                reqwest::Method::POST,
                "/v1/accounts",
                Some(json!({ "name": name })),
            )
            .await?;
        Self::id_of(&value, "account")
    }

    /// Creates and activates a restricted entitlement with `cap` units.
    pub async fn create_entitlement(&self, account: &str, name: &str, cap: u64) -> Result<String> {
        let body = json!({
            "account_id": account,
            "name": name,
            "unit": "units",
            "total": cap,
            "restrict": true,
            "decrement_on": "creation",
            "start_date": "2026-01-01",
            "end_date": "2030-12-31",
        });
        let value = self
            .call(reqwest::Method::POST, "/v1/entitlements", Some(body))
            .await?;
        let id = Self::id_of(&value, "entitlement")?;
        let activated = self
            .call(
                reqwest::Method::POST,
                &format!("/v1/entitlements/{id}/activate"),
                None,
            )
            .await?;
        let status = activated.get("status").and_then(Value::as_str);
        if status != Some("active") {
            bail!("activating {id} gave status {status:?}");
        }
        Ok(id)
    }

    pub async fn balance(&self, id: &str) -> Result<Balance> {
        let value = self
            .call(
                reqwest::Method::GET,
                &format!("/v1/entitlements/{id}/balance"),
                None,
            )
            .await?;
        let used = value
            .get("used")
            .and_then(Value::as_f64)
            .with_context(|| format!("balance of {id} has no numeric used: {value}"))?;
        let total = value.get("total").and_then(Value::as_f64);
        Ok(Balance { total, used })
    }

    /// Creates every entitlement of `layout` (pool, hot, exhaust), `parallel` at a time.
    pub async fn create_layout(&self, layout: &Layout, parallel: usize) -> Result<Vec<String>> {
        let account = self.create_account("allot-bench").await?;
        let account = &account;
        stream::iter(0..layout.len())
            .map(|index| async move {
                let name = if index == layout.hot() {
                    "bench-hot".to_owned()
                } else if index == layout.exhaust() {
                    "bench-exhaust".to_owned()
                } else {
                    format!("bench-pool-{index}")
                };
                self.create_entitlement(account, &name, layout.cap_of(index))
                    .await
            })
            .buffered(parallel.max(1))
            .try_collect()
            .await
    }

    /// Balances of the given entitlements, `parallel` at a time.
    pub async fn balances(&self, ids: &[String], parallel: usize) -> Result<Vec<Balance>> {
        stream::iter(ids)
            .map(|id| self.balance(id))
            .buffered(parallel.max(1))
            .try_collect()
            .await
    }
}
