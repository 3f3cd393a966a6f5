//! One webhook delivery: a signed POST (Standard Webhooks) over a
//! connection of its own to the addresses the guard checked, bounded by a
//! timeout, following no redirect and reading no response body, so a
//! hostile receiver costs only its own delivery.

use std::future::Future;
use std::time::{Duration, Instant};

use allot_core::alerts::{decode_secret, sign};
use allot_store::alerts::{Attempt, WebhookRow};
use allot_store::model::Event;
use chrono::{DateTime, Utc};
use serde_json::json;

use super::guard;

/// The body every receiver gets: `{"type", "timestamp", "data"}`.
pub fn body(event: &Event) -> Vec<u8> {
    let payload = json!({
        "type": event.kind,
        "timestamp": event.created_at,
        "data": event.data,
    });
    serde_json::to_vec(&payload).unwrap_or_default()
}

/// What one try came to.
#[derive(Debug)]
pub struct Tried {
    pub attempt: Attempt,
    pub delivered: bool,
}

impl Tried {
    /// A try made at `now`, timed while `trying` comes to its status code
    /// and error (delivered when there is none).
    pub async fn timed(
        now: DateTime<Utc>,
        trying: impl Future<Output = (Option<u16>, Option<String>)>,
    ) -> Tried {
        let started = Instant::now();
        let (status_code, error) = trying.await;
        let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        Tried {
            delivered: error.is_none(),
            attempt: Attempt {
                at: now,
                status_code,
                latency_ms,
                error,
            },
        }
    }
}

pub struct Settings {
    pub allow_private: bool,
    pub timeout: Duration,
}

/// Posts `event` to the webhook, signed with its secret. A 2xx answer is
/// delivered; anything else, a refusal of the guard included, is a failed
/// try the schedule retries.
pub async fn deliver(
    row: &WebhookRow,
    event: &Event,
    now: DateTime<Utc>,
    settings: &Settings,
) -> Tried {
    Tried::timed(now, async {
        match post(row, event, now, settings).await {
            Ok(status) if (200..300).contains(&status) => (Some(status), None),
            Ok(status) => (Some(status), Some(format!("answered {status}"))),
            Err(e) => (None, Some(e)),
        }
    })
    .await
}

async fn post(
    row: &WebhookRow,
    event: &Event,
    now: DateTime<Utc>,
    settings: &Settings,
) -> Result<u16, String> {
    let target = guard::check(&row.webhook.url, settings.allow_private)
        .await
        .map_err(|reason| format!("url refused: {reason}"))?;
    let key = decode_secret(&row.secret).ok_or("the stored secret is not a whsec_ secret")?;
    let body = body(event);
    let timestamp = now.timestamp();
    let signature = sign(&key, &event.id, timestamp, &body);
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(settings.timeout)
        .connect_timeout(settings.timeout)
        .resolve_to_addrs(&target.host, &target.addrs)
        .pool_max_idle_per_host(0)
        .build()
        .map_err(|e| format!("client: {e}"))?;
    let response = client
        .post(target.url)
        .header("content-type", "application/json")
        .header("user-agent", "allot-webhooks")
        .header("webhook-id", &event.id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(body)
        .send()
        .await
        .map_err(describe)?;
    Ok(response.status().as_u16())
}

fn describe(e: reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "could not connect".into()
    } else {
        format!("request failed: {e}")
    }
}
