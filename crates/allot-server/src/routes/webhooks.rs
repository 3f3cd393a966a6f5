//! Webhooks (Standard Webhooks): create (the secret shown once), list,
//! read, edit, delete, rotate the secret, send a test event, and the
//! deliveries of each with a manual retry. Admins and managers only.

use allot_core::alerts::encode_secret;
use allot_store::alerts::{Channel, Delivery, Webhook, WebhookChange, WebhookEdit, WebhookRow};
use allot_store::ids::{AccountId, DeliveryId, TypedId, WebhookId};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use rand::RngCore;

use super::{fetch, listing};
use crate::alerts::guard;
use crate::alerts::inputs::{event_types, CreateWebhook, PatchWebhook};
use crate::alerts::views::{CreatedWebhook, DeliveryView, WebhookView};
use crate::auth::{Permission, Principal};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, Query};
use crate::idempotency::{answer, send, Keyed};
use crate::inputs::short_text;
use crate::state::AppState;
use crate::views::Listing;

/// A fresh `whsec_` secret: 24 random bytes.
fn new_secret() -> String {
    let mut key = [0u8; 24];
    rand::thread_rng().fill_bytes(&mut key);
    encode_secret(&key)
}

async fn checked_url(state: &AppState, url: &str) -> ApiResult<String> {
    let allow = state.alerts.webhook_allow_private;
    guard::check(url, allow)
        .await
        .map_err(|reason| ApiError::field("url", reason))?;
    Ok(url.to_string())
}

async fn webhook(state: &AppState, id: &str) -> ApiResult<WebhookRow> {
    let found = if WebhookId::parse(id).is_some() {
        state.store.get_webhook(id).await?
    } else {
        None
    };
    found.ok_or_else(|| ApiError::not_found("webhook", id))
}

fn created(row: &WebhookRow, status: StatusCode) -> allot_store::StoredAnswer {
    let body = CreatedWebhook {
        webhook: row.webhook.clone().into(),
        secret: row.secret.clone(),
    };
    answer(status, &body)
}

#[utoipa::path(post, path = "/v1/webhooks", operation_id = "create_webhook", tag = "webhooks", request_body = CreateWebhook,
    responses((status = 201, body = CreatedWebhook), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    keyed: Keyed,
    ApiJson(body): ApiJson<CreateWebhook>,
) -> ApiResult<Response> {
    principal.require(Permission::Manage)?;
    let url = checked_url(&state, &body.url).await?;
    let event_types = event_types(body.event_types.unwrap_or_default())?;
    let description = short_text("description", &body.description)?;
    if let Some(account) = &body.account_id {
        let exists = AccountId::parse(account).is_some()
            && state.store.get_account(account).await?.is_some();
        if !exists {
            return Err(ApiError::field("account_id", "account does not exist"));
        }
    }
    let now = state.clock.now();
    let row = WebhookRow {
        webhook: Webhook {
            id: WebhookId::new(now).into_string(),
            url,
            event_types,
            account_id: body.account_id,
            description,
            enabled: true,
            failing_since: None,
            disabled_reason: None,
            created_at: allot_store::clock::stored_time(now),
            updated_at: allot_store::clock::stored_time(now),
        },
        secret: new_secret(),
    };
    // The secret is shown once, and again only to a retry of this request.
    let render = |row: &WebhookRow| created(row, StatusCode::CREATED);
    state
        .store
        .insert_webhook(&row, &principal.audit(), keyed.answering(render))
        .await?;
    Ok(send(&render(&row)))
}

#[utoipa::path(get, path = "/v1/webhooks", operation_id = "list_webhooks", tag = "webhooks",
    params(crate::extract::PageParams),
    responses((status = 200, body = Listing<WebhookView>)))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    query: Query,
) -> ApiResult<Json<Listing<WebhookView>>> {
    principal.require(Permission::Manage)?;
    let page = query.page()?;
    let rows = state.store.list_webhooks(&fetch(&page)).await?;
    Ok(Json(listing(
        rows,
        page.limit,
        |w| w.id.clone(),
        WebhookView::from,
    )))
}

#[utoipa::path(get, path = "/v1/webhooks/{id}", operation_id = "get_webhook", tag = "webhooks", params(("id" = String, Path)),
    responses((status = 200, body = WebhookView), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<WebhookView>> {
    principal.require(Permission::Manage)?;
    Ok(Json(webhook(&state, &id).await?.webhook.into()))
}

#[utoipa::path(patch, path = "/v1/webhooks/{id}", operation_id = "patch_webhook", tag = "webhooks", params(("id" = String, Path)),
    request_body = PatchWebhook,
    responses((status = 200, body = WebhookView), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn patch(
    State(state): State<AppState>,
    principal: Principal,
    keyed: Keyed,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<PatchWebhook>,
) -> ApiResult<Response> {
    principal.require(Permission::Manage)?;
    webhook(&state, &id).await?;
    let url = match &body.url {
        Some(url) => Some(checked_url(&state, url).await?),
        None => None,
    };
    let description = match &body.description {
        Some(d) => Some(short_text("description", d)?),
        None => None,
    };
    let edit = WebhookEdit {
        url,
        event_types: body.event_types.map(event_types).transpose()?,
        description,
        enabled: body.enabled,
    };
    let render = |row: &WebhookRow| answer(StatusCode::OK, &WebhookView::from(row.webhook.clone()));
    change(
        &state,
        &principal,
        &keyed,
        &id,
        WebhookChange::Edit(edit),
        render,
    )
    .await
}

/// Makes one change of a webhook, answered as `render` says.
async fn change(
    state: &AppState,
    principal: &Principal,
    keyed: &Keyed,
    id: &str,
    change: WebhookChange,
    render: impl Fn(&WebhookRow) -> allot_store::StoredAnswer + Copy + Send + Sync + 'static,
) -> ApiResult<Response> {
    let row = state
        .store
        .change_webhook(
            id,
            &change,
            state.clock.now(),
            &principal.audit(),
            keyed.answering(render),
        )
        .await?;
    Ok(send(&render(&row)))
}

#[utoipa::path(delete, path = "/v1/webhooks/{id}", operation_id = "delete_webhook", tag = "webhooks", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    principal: Principal,
    keyed: Keyed,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    principal.require(Permission::Manage)?;
    webhook(&state, &id).await?;
    let webhook_id = id.clone();
    let render = move |found: &bool| {
        if *found {
            allot_store::StoredAnswer {
                status: StatusCode::NO_CONTENT.as_u16(),
                body: String::new(),
            }
        } else {
            let missing = ApiError::not_found("webhook", &webhook_id);
            answer(missing.status(), &missing.body())
        }
    };
    let found = state
        .store
        .delete_webhook(
            &id,
            state.clock.now(),
            &principal.audit(),
            keyed.answering(render.clone()),
        )
        .await?;
    Ok(send(&render(&found)))
}

#[utoipa::path(post, path = "/v1/webhooks/{id}/rotate-secret", operation_id = "rotate_webhook_secret", tag = "webhooks",
    params(("id" = String, Path)),
    responses((status = 200, body = CreatedWebhook), (status = 404, body = ErrorBody)))]
pub async fn rotate_secret(
    State(state): State<AppState>,
    principal: Principal,
    keyed: Keyed,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    principal.require(Permission::Manage)?;
    webhook(&state, &id).await?;
    let change = WebhookChange::Rotate {
        secret: new_secret(),
    };
    let render = |row: &WebhookRow| created(row, StatusCode::OK);
    self::change(&state, &principal, &keyed, &id, change, render).await
}

#[utoipa::path(post, path = "/v1/webhooks/{id}/test", operation_id = "test_webhook", tag = "webhooks",
    params(("id" = String, Path)),
    responses((status = 202, body = DeliveryView), (status = 404, body = ErrorBody)))]
pub async fn test(
    State(state): State<AppState>,
    principal: Principal,
    keyed: Keyed,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    principal.require(Permission::Manage)?;
    webhook(&state, &id).await?;
    let render = |d: &Delivery| answer(StatusCode::ACCEPTED, &DeliveryView::from(d.clone()));
    let delivery = state
        .store
        .send_test_event(
            &id,
            state.clock.now(),
            &principal.audit(),
            keyed.answering(render),
        )
        .await?;
    Ok(send(&render(&delivery)))
}

#[utoipa::path(get, path = "/v1/webhooks/{id}/deliveries", operation_id = "list_webhook_deliveries", tag = "webhooks",
    params(("id" = String, Path), crate::extract::PageParams),
    responses((status = 200, body = Listing<DeliveryView>), (status = 404, body = ErrorBody)))]
pub async fn deliveries(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    query: Query,
) -> ApiResult<Json<Listing<DeliveryView>>> {
    principal.require(Permission::Manage)?;
    let page = query.page()?;
    webhook(&state, &id).await?;
    let rows = state
        .store
        .list_deliveries(Channel::Webhook, Some(&id), &fetch(&page))
        .await?;
    Ok(Json(listing(
        rows,
        page.limit,
        |d| d.id.clone(),
        DeliveryView::from,
    )))
}

#[utoipa::path(post, path = "/v1/webhooks/{id}/deliveries/{delivery_id}/retry", operation_id = "retry_webhook_delivery", tag = "webhooks",
    params(("id" = String, Path), ("delivery_id" = String, Path)),
    responses((status = 202, body = DeliveryView), (status = 404, body = ErrorBody)))]
pub async fn retry(
    State(state): State<AppState>,
    principal: Principal,
    keyed: Keyed,
    Path((id, delivery_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    principal.require(Permission::Manage)?;
    webhook(&state, &id).await?;
    let found = if DeliveryId::parse(&delivery_id).is_some() {
        state.store.get_delivery(&delivery_id).await?
    } else {
        None
    };
    match found {
        Some(d) if d.channel == Channel::Webhook && d.target == id => {}
        _ => return Err(ApiError::not_found("delivery", &delivery_id)),
    }
    let render = |d: &Delivery| answer(StatusCode::ACCEPTED, &DeliveryView::from(d.clone()));
    let delivery = state
        .store
        .retry_delivery(
            &delivery_id,
            state.clock.now(),
            &principal.audit(),
            keyed.answering(render),
        )
        .await?;
    Ok(send(&render(&delivery)))
}
