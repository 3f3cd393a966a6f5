//! The `webhooks` section of the OpenAPI 3.1 document: what a receiver
//! gets for each event type, with the Standard Webhooks headers.

use allot_core::events::EventKind;
use serde_json::{json, Map, Value};

/// Types the service emits today; a webhook with no `event_types` also
/// gets every type added later, in the same envelope.
fn documented() -> Vec<(&'static str, &'static str)> {
    let kinds = [
        (
            EventKind::ThresholdCrossed,
            "An alert threshold of the entitlement was crossed upward.",
        ),
        (EventKind::Exhausted, "Nothing is left of the allotment."),
        (EventKind::Overage, "Use went past the allotment."),
        (
            EventKind::PeriodReset,
            "A period closed; `unused` is what was left of it.",
        ),
        (EventKind::Activated, "The entitlement became active."),
        (
            EventKind::Waiting,
            "The entitlement was activated and waits for its start date.",
        ),
        (EventKind::Expired, "The entitlement's end date passed."),
        (
            EventKind::Deactivated,
            "The entitlement went back to draft.",
        ),
        (EventKind::Cancelled, "The entitlement was cancelled."),
        (
            EventKind::Renewed,
            "The entitlement was renewed: by hand into a draft, or automatically (`auto_renew`) into an active successor.",
        ),
        (
            EventKind::ExpiringSoon,
            "The entitlement ends within the configured number of days (`ALLOT_EXPIRING_SOON_DAYS`).",
        ),
        (
            EventKind::ReservationExpired,
            "A held reservation timed out and was released.",
        ),
    ];
    let mut out: Vec<(&str, &str)> = kinds.iter().map(|(k, d)| (k.as_str(), *d)).collect();
    out.push((
        "software.under_licensed",
        "A reconciliation found a software model newly under-licensed.",
    ));
    out.push(("webhook.test", "Sent by `POST /v1/webhooks/{id}/test`."));
    out.push((
        "webhook.disabled",
        "A webhook was disabled after every delivery failed for 5 days.",
    ));
    out
}

fn header(name: &str, description: &str) -> Value {
    json!({
        "name": name, "in": "header", "required": true,
        "description": description, "schema": { "type": "string" }
    })
}

/// The section, keyed by event type.
pub fn webhooks() -> Value {
    let headers = json!([
        header("webhook-id", "The event id: the same on every retry (deduplicate on it)."),
        header("webhook-timestamp", "Unix seconds when this try was sent."),
        header("webhook-signature", "`v1,` + base64 of HMAC-SHA256 over `{webhook-id}.{webhook-timestamp}.{body}`, keyed with the base64-decoded part of the webhook's `whsec_` secret."),
    ]);
    let mut section = Map::new();
    for (kind, description) in documented() {
        let operation = json!({
            "post": {
                "operationId": format!("webhook_{}", kind.replace('.', "_")),
                "summary": kind,
                "description": format!("{description} Delivered at least once; retried with exponential backoff (10 s × 3ⁿ, at most a day apart, ±20 % jitter) for about 3.2 days. Any 2xx answer is a delivery."),
                "parameters": headers.clone(),
                "requestBody": {
                    "required": true,
                    "content": { "application/json": { "schema": {
                        "type": "object",
                        "required": ["type", "timestamp", "data"],
                        "properties": {
                            "type": { "type": "string", "const": kind },
                            "timestamp": { "type": "string", "format": "date-time", "description": "When the event happened." },
                            "data": { "type": "object", "description": "The event's fields, as `GET /v1/events` shows them." }
                        }
                    }}}
                },
                "responses": { "2XX": { "description": "Delivered." } }
            }
        });
        section.insert(kind.to_string(), operation);
    }
    Value::Object(section)
}
