//! The wire shape of webhooks and deliveries. A webhook's secret appears
//! only in the answer that made it (`CreatedWebhook`).

use allot_store::alerts::{Attempt, Delivery, Webhook};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookView {
    pub id: String,
    pub url: String,
    /// Empty: every event type.
    pub event_types: Vec<String>,
    pub account_id: Option<String>,
    pub description: Option<String>,
    pub enabled: bool,
    /// Since when every delivery failed (null after a success).
    pub failing_since: Option<DateTime<Utc>>,
    /// Why the service disabled it, if it did.
    pub disabled_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<Webhook> for WebhookView {
    fn from(w: Webhook) -> Self {
        WebhookView {
            id: w.id,
            url: w.url,
            event_types: w.event_types,
            account_id: w.account_id,
            description: w.description,
            enabled: w.enabled,
            failing_since: w.failing_since,
            disabled_reason: w.disabled_reason,
            created_at: w.created_at,
            updated_at: w.updated_at,
        }
    }
}

/// A new webhook, or a rotated secret: the secret is shown here only.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedWebhook {
    #[serde(flatten)]
    pub webhook: WebhookView,
    /// `whsec_` + base64: the key of every signature (Standard Webhooks).
    pub secret: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptView {
    pub at: DateTime<Utc>,
    /// HTTP status of the receiver, or the SMTP server's reply code.
    pub status_code: Option<u16>,
    pub latency_ms: u64,
    pub error: Option<String>,
}

impl From<Attempt> for AttemptView {
    fn from(a: Attempt) -> Self {
        AttemptView {
            at: a.at,
            status_code: a.status_code,
            latency_ms: a.latency_ms,
            error: a.error,
        }
    }
}

/// One event on its way to one webhook or one mailbox.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryView {
    pub id: String,
    /// The event, and the `webhook-id` of every try.
    pub event_id: String,
    pub event_type: String,
    /// webhook or email.
    pub channel: String,
    /// The webhook id, or the e-mail address.
    pub target: String,
    /// pending, delivered or failed (the retry schedule ran out).
    pub state: String,
    pub tries: u32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// The latest tries, oldest first.
    pub attempts: Vec<AttemptView>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<Delivery> for DeliveryView {
    fn from(d: Delivery) -> Self {
        DeliveryView {
            id: d.id,
            event_id: d.event_id,
            event_type: d.event_kind,
            channel: d.channel.as_str().into(),
            target: d.target,
            state: d.state.as_str().into(),
            tries: d.tries,
            next_attempt_at: d.next_attempt_at,
            attempts: d.attempts.into_iter().map(Into::into).collect(),
            created_at: d.created_at,
            updated_at: d.updated_at,
        }
    }
}
