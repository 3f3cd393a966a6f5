//! Who is told: the account manager (`PATCH /v1/accounts/{id}`) and the
//! e-mail deliveries sent to them and to entitlement owners
//! (`GET /v1/notifications`).

use allot_store::alerts::{AccountManager, Channel};
use allot_store::model::Account;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;

use super::parties::visible_account;
use super::{fetch, listing};
use crate::alerts::inputs::email;
use crate::alerts::views::DeliveryView;
use crate::auth::{Permission, Principal};
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, Query};
use crate::idempotency::{answer, send, Keyed};
use crate::inputs::{short_text, PatchAccount};
use crate::state::AppState;
use crate::views::{AccountView, Listing};

#[utoipa::path(patch, path = "/v1/accounts/{id}", operation_id = "patch_account", tag = "accounts", params(("id" = String, Path)),
    request_body = PatchAccount,
    responses((status = 200, body = AccountView), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn patch_account(
    State(state): State<AppState>,
    principal: Principal,
    keyed: Keyed,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<PatchAccount>,
) -> ApiResult<Response> {
    let current = visible_account(&state, &principal, &id).await?;
    principal.require(Permission::Manage)?;
    let manager_name = match body.manager_name {
        Some(name) => short_text("manager_name", &name)?,
        None => current.manager_name,
    };
    let manager_email = match body.manager_email {
        Some(address) => email("manager_email", address)?,
        None => current.manager_email,
    };
    let manager = AccountManager {
        manager_name,
        manager_email,
    };
    let render = |a: &Account| answer(StatusCode::OK, &AccountView::from(a.clone()));
    let account = state
        .store
        .update_account_manager(
            &id,
            &manager,
            state.clock.now(),
            &principal.audit(),
            keyed.answering(render),
        )
        .await?;
    Ok(send(&render(&account)))
}

#[utoipa::path(get, path = "/v1/notifications", operation_id = "list_notifications", tag = "webhooks",
    params(("to" = Option<String>, Query, description = "Only those sent to this address."), crate::extract::PageParams),
    responses((status = 200, body = Listing<DeliveryView>)))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    query: Query,
) -> ApiResult<Json<Listing<DeliveryView>>> {
    principal.require(Permission::Manage)?;
    let page = query.page()?;
    let rows = state
        .store
        .list_deliveries(Channel::Email, query.get("to"), &fetch(&page))
        .await?;
    Ok(Json(listing(
        rows,
        page.limit,
        |d| d.id.clone(),
        DeliveryView::from,
    )))
}
