//! Batch ingestion: `POST /v1/usage/batch` takes up to 1,000 uses in one
//! request, as `{"items": […]}` or as a CloudEvents 1.0 JSON batch
//! (`application/cloudevents-batch+json`). Each item is decided on its own
//! by the one write path, in request order, all of them in one transaction;
//! the answer lists each item's status and entry or error, in request order.
//! A bad item is answered 422 there and spoils nothing else.

use allot_core::batch::Op;
use allot_core::decide::{Change, Reason, Refusal};
use allot_core::invalid::Invalid;
use allot_core::Quantity;
use allot_store::ids::{EntitlementId, TypedId};
use allot_store::plan::{BatchItem, Command, IdemKey, ItemAnswer, Outcome, Render};
use allot_store::StoredAnswer;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::auth::{Permission, Principal};
use crate::error::{ApiError, ApiResult, ErrorDetail};
use crate::extract::{parse_json, read_body};
use crate::idempotency::{answer, fingerprint, key_from, REPLAYED};
use crate::inputs::{schemas, short_text};
use crate::routes::entitlements::visible_entitlement;
use crate::state::AppState;
use crate::views::LedgerEntryView;

/// Most items one request may carry.
pub const MAX_ITEMS: usize = 1000;
/// Largest body the batch route takes (1,000 CloudEvents with room to spare).
pub const BATCH_BODY_LIMIT: usize = 2 * 1024 * 1024;
/// The CloudEvents JSON batch format (CloudEvents 1.0, JSON event format §4).
pub const CLOUDEVENTS_BATCH: &str = "application/cloudevents-batch+json";
/// One CloudEvent in structured mode: taken as a batch of one.
pub const CLOUDEVENT: &str = "application/cloudevents+json";
/// What an item's fingerprint is made of: the route, and its own body.
const ITEM_PATH: &str = "/v1/usage/batch#item";
const MAX_KEY_LEN: usize = 255;

/// `{"items": [...]}`: the uses, decided in this order.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UsageBatch {
    /// 1 to 1,000 uses, each a `UsageBatchItem`. Each is checked on its own:
    /// an item that is not one (not an object, a field missing, of the
    /// wrong form or unknown) is answered 422 in its place, naming
    /// `items[n].field`, and the others still apply. The document
    /// therefore accepts any item here; the item's form is
    /// `#/components/schemas/UsageBatchItem`.
    #[schema(value_type = Vec<Value>, min_items = 1, max_items = 1000)]
    pub items: Vec<Value>,
}

/// One use of a batch.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UsageBatchItem {
    #[schema(schema_with = schemas::id)]
    pub entitlement_id: String,
    /// Positive; whole for cases and visits; hours up to 3 decimals.
    #[schema(schema_with = schemas::positive_quantity)]
    pub quantity: Quantity,
    /// One of the entitlement's channels.
    #[schema(schema_with = schemas::optional_text)]
    pub channel: Option<String>,
    /// e.g. a work order number.
    #[schema(schema_with = schemas::optional_text)]
    pub reference: Option<String>,
    /// Makes this item safe to send again: the same key with the same item
    /// answers what it answered the first time (per API key, kept 24 h).
    #[schema(min_length = 1, max_length = 255)]
    pub idempotency_key: Option<String>,
}

/// A CloudEvent (1.0, JSON format) carrying one use: `subject` is the
/// entitlement, `data` the use; `source` + `id` make it unique, so an event
/// sent again is a duplicate and answers what it answered the first time.
/// Other attributes (`time`, extensions, …) are accepted and not read.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CloudEvent {
    /// Must be `1.0`.
    pub specversion: String,
    #[schema(min_length = 1)]
    pub id: String,
    #[schema(min_length = 1)]
    pub source: String,
    /// The producer's event type, e.g. `com.example.usage`; not interpreted.
    #[serde(rename = "type")]
    #[schema(min_length = 1)]
    pub kind: String,
    /// The entitlement id.
    #[schema(schema_with = schemas::id)]
    pub subject: String,
    /// `application/json` when given.
    pub datacontenttype: Option<String>,
    pub data: CloudEventData,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CloudEventData {
    #[schema(schema_with = schemas::positive_quantity)]
    pub quantity: Quantity,
    #[schema(schema_with = schemas::optional_text)]
    pub channel: Option<String>,
    #[schema(schema_with = schemas::optional_text)]
    pub reference: Option<String>,
}

/// The answer: one entry per item, in request order.
#[derive(Debug, Serialize, ToSchema)]
pub struct UsageBatchAnswer {
    pub items: Vec<UsageBatchItemAnswer>,
}

/// What happened to one item: 201 with its ledger entry, or its error
/// (409 `entitlement_exhausted`, …; 422 naming the item's field, e.g.
/// `items[3].quantity`, or `idempotency_key_reused`).
#[derive(Debug, Serialize, ToSchema)]
pub struct UsageBatchItemAnswer {
    /// 201, 409 or 422.
    pub status: u16,
    pub entry: Option<LedgerEntryView>,
    pub error: Option<ErrorDetail>,
    /// Present when this is the stored answer to the same item sent before.
    pub replayed: Option<bool>,
}

/// What an item stores under its key and answers: `{"entry"}` or `{"error"}`.
#[derive(Serialize)]
struct Recorded {
    entry: Option<LedgerEntryView>,
}

/// An item's answer, as stored under its key (its fields named from the
/// item, so a replay at another position reads the same).
const ITEM_ANSWER: Render = Render(|o| item_answer(o, "entitlement_id"));
/// A CloudEvent's: its entitlement is its `subject`.
const EVENT_ANSWER: Render = Render(|o| item_answer(o, "subject"));

fn item_answer(outcome: Outcome, id_field: &str) -> StoredAnswer {
    match outcome {
        Outcome::Applied { entries, .. } => answer(
            StatusCode::CREATED,
            &Recorded {
                entry: entries.into_iter().next().map(Into::into),
            },
        ),
        other => {
            let error = match ApiError::from_outcome(other) {
                // The id is the item's own field: an unknown one is bad input.
                ApiError::Refused(Refusal::EntitlementNotFound { .. }) => {
                    ApiError::field(id_field, "no such entitlement")
                }
                error => error,
            };
            error_answer(&error)
        }
    }
}

fn error_answer(error: &ApiError) -> StoredAnswer {
    if let ApiError::Internal(detail) = error {
        tracing::error!(%detail, "internal error");
    }
    answer(error.status(), &error.body())
}

/// A use, parsed at the edge, before its key and command are made.
struct Use {
    render: Render,
    entitlement_id: String,
    quantity: Quantity,
    channel: Option<String>,
    reference: Option<String>,
}

#[utoipa::path(post, path = "/v1/usage/batch", operation_id = "record_usage_batch", tag = "usage",
    params(("Idempotency-Key" = Option<String>, Header, description = "Gives every item without its own key the key `<this>/<n>` (n its position from 0), so the whole request is safe to send again.")),
    request_body(description = "`application/json`: `{\"items\": [...]}`; `application/cloudevents-batch+json`: a JSON array of CloudEvents 1.0, each a `CloudEvent` and each answered in its place (any item is accepted here: one that is not a CloudEvent is answered 422 naming `items[n].field`); `application/cloudevents+json`: one event (any object, answered in its place like a batch's item).",
        content((UsageBatch = "application/json"), (Vec<Value> = "application/cloudevents-batch+json"), (Object = "application/cloudevents+json"))),
    responses((status = 200, description = "Each item's answer, in request order; `idempotent-replayed: true` when every item was a replay.", body = UsageBatchAnswer),
        (status = 409, description = "idempotency_key_in_flight: an item's key is being applied by another request; nothing was applied", body = crate::error::ErrorBody),
        (status = 413, description = "payload_too_large: the body is over 2 MiB", body = crate::error::ErrorBody),
        (status = 422, description = "`items` (or the body) is not 1 to 1,000 items; nothing was applied", body = crate::error::ErrorBody)))]
pub async fn record_batch(
    State(state): State<AppState>,
    principal: Principal,
    request: Request,
) -> ApiResult<Response> {
    principal.require(Permission::RecordUsage)?;
    let headers = request.headers().clone();
    let request_key = key_from(&headers)?;
    let body = read_body(request, &state).await?;
    let uses = match media_type(&headers).as_deref() {
        Some(CLOUDEVENTS_BATCH) => cloud_events(&body, true)?,
        Some(CLOUDEVENT) => cloud_events(&body, false)?,
        _ => json_items(&body)?,
    };
    // Per position: the answer given at the edge, or None for the write path.
    let mut answered: Vec<Option<StoredAnswer>> = Vec::with_capacity(uses.len());
    let mut items = Vec::with_capacity(uses.len());
    let mut renders = Vec::with_capacity(uses.len());
    for (n, (result, key)) in uses.into_iter().enumerate() {
        let key = key.or_else(|| {
            request_key.as_ref().map(|k| {
                let item = format!("{k}/{n}");
                let print = fingerprint("POST", ITEM_PATH, item.as_bytes());
                (item, print)
            })
        });
        let checked = match result {
            Ok(one) => visible(&state, &principal, &one.entitlement_id)
                .await
                .map(|()| one),
            Err(error) => Err(error),
        };
        match checked {
            Ok(one) => {
                renders.push(one.render);
                items.push(batch_item(&principal, one, key));
                answered.push(None);
            }
            Err(error) => answered.push(Some(error_answer(&at_item(n, error)))),
        }
    }
    let decided = state.writes.submit_all(items).await?;
    // Every item is the caller's: its key, revoked since it was resolved,
    // refuses the whole request (nothing was applied).
    if decided.iter().any(|a| matches!(a, ItemAnswer::KeyRevoked)) {
        return Err(ApiError::Unauthorized);
    }
    let mut decided = decided.into_iter().zip(renders);
    let mut out = String::with_capacity(answered.len() * 320 + 16);
    out.push_str("{\"items\":[");
    let mut all_replayed = !answered.is_empty();
    for (n, given) in answered.into_iter().enumerate() {
        if n > 0 {
            out.push(',');
        }
        let (stored, replayed) = match given {
            Some(stored) => (stored, false),
            None => match decided.next() {
                Some((ItemAnswer::Done { outcome }, render)) => {
                    (at_position(n, render.answer(outcome)), false)
                }
                Some((ItemAnswer::Replayed { answer }, _)) => (at_position(n, answer), true),
                Some((ItemAnswer::KeyMismatch, _)) => (error_answer(&ApiError::KeyReused), false),
                Some((ItemAnswer::KeyRevoked, _)) => (error_answer(&ApiError::Unauthorized), false),
                None => (
                    error_answer(&ApiError::Internal("an item went unanswered".into())),
                    false,
                ),
            },
        };
        all_replayed &= replayed;
        push_item(&mut out, &stored, replayed);
    }
    out.push_str("]}");
    let mut response = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        out,
    )
        .into_response();
    if all_replayed {
        response
            .headers_mut()
            .insert(REPLAYED, HeaderValue::from_static("true"));
    }
    Ok(response)
}

/// `{"status": S, <the stored body's fields>}`, plus `"replayed": true`.
fn push_item(out: &mut String, stored: &StoredAnswer, replayed: bool) {
    out.push_str("{\"status\":");
    out.push_str(&stored.status.to_string());
    if replayed {
        out.push_str(",\"replayed\":true");
    }
    let body = stored.body.trim();
    match body.strip_prefix('{') {
        Some(rest) if rest.trim_start().starts_with('}') => out.push('}'),
        Some(rest) => {
            out.push(',');
            out.push_str(rest);
        }
        // Every stored item answer is an object; anything else is kept whole.
        None => {
            out.push_str(",\"body\":");
            out.push_str(body);
            out.push('}');
        }
    }
}

fn batch_item(principal: &Principal, one: Use, key: Option<(String, String)>) -> BatchItem {
    let render = one.render;
    let op = Op {
        entitlement_id: one.entitlement_id,
        change: Change::Consume {
            quantity: one.quantity,
            channel: one.channel,
            reason: Reason::Usage,
            reference: one.reference,
        },
    };
    BatchItem {
        command: Command::Ledger { ops: vec![op] },
        actor: principal.audit(),
        idempotency: key.map(|(key, fingerprint)| IdemKey {
            scope: principal.key_id.clone(),
            key,
            fingerprint,
        }),
        render,
    }
}

/// To a confined (customer) key, another account's entitlement does not
/// exist; others skip the read (the write path finds unknown ids).
async fn visible(state: &AppState, principal: &Principal, id: &str) -> ApiResult<()> {
    if principal.confined_to().is_none() {
        return Ok(());
    }
    let unknown = || ApiError::field("entitlement_id", "no such entitlement");
    let id = EntitlementId::parse(id).ok_or_else(unknown)?;
    visible_entitlement(state, principal, &id)
        .await
        .map(|_| ())
        .map_err(|_| unknown())
}

/// An item's errors name its fields from the top of the body: `items[3].quantity`.
fn at_item(n: usize, error: ApiError) -> ApiError {
    match error {
        ApiError::Invalid(Invalid(fields)) => ApiError::Invalid(Invalid(
            fields
                .into_iter()
                .map(|mut f| {
                    f.field = if f.field.is_empty() {
                        format!("items[{n}]")
                    } else {
                        format!("items[{n}].{}", f.field)
                    };
                    f
                })
                .collect(),
        )),
        other => other,
    }
}

/// A decided 422 names the item's fields from the top of the body, as the
/// edge's do: only the (rare) field errors are read and written again.
fn at_position(n: usize, stored: StoredAnswer) -> StoredAnswer {
    if stored.status != 422 {
        return stored;
    }
    let Ok(mut body) = serde_json::from_str::<Value>(&stored.body) else {
        return stored;
    };
    let Some(fields) = body
        .pointer_mut("/error/details/fields")
        .and_then(Value::as_array_mut)
    else {
        return stored;
    };
    for field in fields {
        if let Some(name) = field.get("field").and_then(Value::as_str) {
            field["field"] = Value::String(format!("items[{n}].{name}"));
        }
    }
    StoredAnswer {
        status: stored.status,
        body: body.to_string(),
    }
}

fn media_type(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    Some(value.split(';').next()?.trim().to_ascii_lowercase())
}

type Uses = Vec<(Result<Use, ApiError>, Option<(String, String)>)>;

/// The request holds 1 to `MAX_ITEMS` items.
fn count(n: usize, field: &str) -> ApiResult<()> {
    if n == 0 || n > MAX_ITEMS {
        return Err(ApiError::field(
            field,
            format!("must hold 1 to {MAX_ITEMS} items, not {n}"),
        ));
    }
    Ok(())
}

fn json_items(body: &[u8]) -> ApiResult<Uses> {
    let batch: UsageBatch = parse_json(body)?;
    count(batch.items.len(), "items")?;
    Ok(batch.items.into_iter().map(json_item).collect())
}

fn json_item(value: Value) -> (Result<Use, ApiError>, Option<(String, String)>) {
    if !value.is_object() {
        return (Err(ApiError::field("", "must be a JSON object")), None);
    }
    let bytes = serde_json::to_vec(&value).unwrap_or_default();
    let item: UsageBatchItem = match parse_json(&bytes) {
        Ok(item) => item,
        Err(error) => return (Err(error), None),
    };
    let key = match item.idempotency_key.as_deref().map(str::trim) {
        None => None,
        Some(key) if key.is_empty() || key.chars().count() > MAX_KEY_LEN => {
            let error = ApiError::field(
                "idempotency_key",
                format!("must be 1 to {MAX_KEY_LEN} characters"),
            );
            return (Err(error), None);
        }
        Some(key) => Some((key.to_string(), fingerprint("POST", ITEM_PATH, &bytes))),
    };
    let used = checked_use(
        item.entitlement_id,
        item.quantity,
        &item.channel,
        &item.reference,
        "entitlement_id",
        "",
    );
    (used, key)
}

/// The checks every use gets at the edge; `prefix` places quantity,
/// channel and reference (`data.` in a CloudEvent).
fn checked_use(
    entitlement_id: String,
    quantity: Quantity,
    channel: &Option<String>,
    reference: &Option<String>,
    id_field: &str,
    prefix: &str,
) -> Result<Use, ApiError> {
    if EntitlementId::parse(&entitlement_id).is_none() {
        return Err(ApiError::field(id_field, "no such entitlement"));
    }
    if quantity.is_zero() || quantity.is_negative() {
        return Err(ApiError::field(
            &format!("{prefix}quantity"),
            "must be positive",
        ));
    }
    Ok(Use {
        render: if id_field == "subject" {
            EVENT_ANSWER
        } else {
            ITEM_ANSWER
        },
        entitlement_id,
        quantity,
        channel: short_text(&format!("{prefix}channel"), channel)?,
        reference: short_text(&format!("{prefix}reference"), reference)?,
    })
}

/// A CloudEvents JSON batch (an array), or one event when `batch` is false.
fn cloud_events(body: &[u8], batch: bool) -> ApiResult<Uses> {
    let values: Vec<Value> = if batch {
        let first = body.iter().find(|b| !b.is_ascii_whitespace());
        if first != Some(&b'[') {
            return match serde_json::from_slice::<Value>(body) {
                Err(e) => Err(ApiError::BadRequest {
                    code: "malformed_json",
                    message: format!("malformed JSON: {e}"),
                }),
                Ok(_) => Err(ApiError::field(
                    "body",
                    "must be a JSON array of CloudEvents",
                )),
            };
        }
        serde_json::from_slice(body).map_err(|e| ApiError::BadRequest {
            code: "malformed_json",
            message: format!("malformed JSON: {e}"),
        })?
    } else {
        let value: Value = parse_json(body)?;
        vec![value]
    };
    count(values.len(), "body")?;
    Ok(values.into_iter().map(cloud_event).collect())
}

fn cloud_event(value: Value) -> (Result<Use, ApiError>, Option<(String, String)>) {
    if !value.is_object() {
        return (Err(ApiError::field("", "must be a JSON object")), None);
    }
    let bytes = serde_json::to_vec(&value).unwrap_or_default();
    let event: CloudEvent = match parse_json(&bytes) {
        Ok(event) => event,
        Err(error) => return (Err(error), None),
    };
    if event.specversion != "1.0" {
        return (Err(ApiError::field("specversion", "must be \"1.0\"")), None);
    }
    for (field, value) in [
        ("id", &event.id),
        ("source", &event.source),
        ("type", &event.kind),
    ] {
        if value.is_empty() {
            return (Err(ApiError::field(field, "must not be empty")), None);
        }
    }
    if let Some(kind) = &event.datacontenttype {
        let json = kind.split(';').next().unwrap_or_default().trim();
        if !json.eq_ignore_ascii_case("application/json") {
            let error = ApiError::field("datacontenttype", "must be application/json");
            return (Err(error), None);
        }
    }
    // source + id identify the event: the same pair again is the same event,
    // whatever else it carries (CloudEvents 1.0, `id`).
    let mut hash = Sha256::new();
    hash.update(event.source.as_bytes());
    hash.update([0]);
    hash.update(event.id.as_bytes());
    let key = format!("ce:{}", hex::encode(hash.finalize()));
    let print = fingerprint("POST", ITEM_PATH, b"cloudevent");
    let data = event.data;
    let used = checked_use(
        event.subject,
        data.quantity,
        &data.channel,
        &data.reference,
        "subject",
        "data.",
    );
    (used, Some((key, print)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_item_answer_is_its_body_with_its_status() {
        let mut out = String::new();
        let stored = StoredAnswer {
            status: 201,
            body: r#"{"entry":{"id":"use_1"}}"#.into(),
        };
        push_item(&mut out, &stored, true);
        let value: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"status": 201, "replayed": true, "entry": {"id": "use_1"}})
        );
        let mut out = String::new();
        push_item(
            &mut out,
            &StoredAnswer {
                status: 204,
                body: "{ }".into(),
            },
            false,
        );
        assert_eq!(out, r#"{"status":204}"#);
    }

    #[test]
    fn item_errors_name_the_item() {
        let error = at_item(3, ApiError::field("quantity", "must be positive"));
        let body = error.body();
        assert_eq!(
            body["error"]["details"]["fields"][0]["field"],
            "items[3].quantity"
        );
    }
}
