//! API keys: admins create, list and revoke them.

use allot_store::ids::has_prefix;
use allot_store::model::Role;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;

use crate::auth::{create_key, Permission, Principal};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::ApiJson;
use crate::inputs::{short_text, CreateApiKey};
use crate::state::AppState;
use crate::views::{ApiKeyView, CreatedApiKey};

#[utoipa::path(post, path = "/v1/api-keys", operation_id = "create_api_key", tag = "api-keys", request_body = CreateApiKey,
    responses((status = 201, body = CreatedApiKey), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(body): ApiJson<CreateApiKey>,
) -> ApiResult<(StatusCode, Json<CreatedApiKey>)> {
    principal.require(Permission::Administer)?;
    let role = Role::parse(&body.role).ok_or_else(|| {
        ApiError::field(
            "role",
            "must be admin, manager, agent, customer or integration",
        )
    })?;
    match (role, &body.account_id) {
        (Role::Customer, None) => {
            return Err(ApiError::field(
                "account_id",
                "is required for customer keys",
            ))
        }
        (Role::Customer, Some(id))
            if !has_prefix(id, "acc") || state.store.get_account(id).await?.is_none() =>
        {
            return Err(ApiError::field("account_id", "account does not exist"));
        }
        (Role::Customer, Some(_)) => {}
        (_, Some(_)) => {
            return Err(ApiError::field(
                "account_id",
                "only customer keys are bound to an account",
            ))
        }
        _ => {}
    }
    let name = short_text("name", &body.name)?;
    let (key, secret) = create_key(
        state.store.as_ref(),
        role,
        body.account_id,
        name,
        state.clock.now(),
        &principal.audit(),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedApiKey {
            key: key.into(),
            secret,
        }),
    ))
}

#[utoipa::path(get, path = "/v1/api-keys", operation_id = "list_api_keys", tag = "api-keys", responses((status = 200, body = Vec<ApiKeyView>)))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
) -> ApiResult<Json<Vec<ApiKeyView>>> {
    principal.require(Permission::Administer)?;
    Ok(Json(
        state
            .store
            .list_api_keys()
            .await?
            .into_iter()
            .map(Into::into)
            .collect(),
    ))
}

#[utoipa::path(post, path = "/v1/api-keys/{id}/revoke", operation_id = "revoke_api_key", tag = "api-keys", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn revoke(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    principal.require(Permission::Administer)?;
    if has_prefix(&id, "key")
        && state
            .store
            .revoke_api_key(&id, state.clock.now(), &principal.audit())
            .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("api key", &id))
    }
}
