//! API keys: admins create, list and revoke them.

use allot_store::ids::{AccountId, ApiKeyId, TypedId};
use allot_store::model::Role;
use allot_store::StoredAnswer;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;

use crate::auth::{hash_secret, new_key, reach, Permission, Principal, Reach};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, PathId};
use crate::idempotency::{answer, send, Keyed};
use crate::inputs::{short_text, CreateApiKey};
use crate::state::AppState;
use crate::views::{ApiKeyView, CreatedApiKey};

#[utoipa::path(post, path = "/v1/api-keys", operation_id = "create_api_key", tag = "api-keys", request_body = CreateApiKey,
    responses((status = 201, body = CreatedApiKey), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    keyed: Keyed,
    ApiJson(body): ApiJson<CreateApiKey>,
) -> ApiResult<Response> {
    principal.require(Permission::Administer)?;
    let role = Role::parse(&body.role).ok_or_else(|| {
        ApiError::field(
            "role",
            "must be admin, manager, agent, customer or integration",
        )
    })?;
    match (reach(role), &body.account_id) {
        (Reach::OwnAccount, None) => {
            return Err(ApiError::field(
                "account_id",
                "is required for customer keys",
            ))
        }
        (Reach::OwnAccount, Some(id))
            if match AccountId::parse(id) {
                Some(id) => state.store.get_account(&id).await?.is_none(),
                None => true,
            } =>
        {
            return Err(ApiError::field("account_id", "account does not exist"));
        }
        (Reach::OwnAccount, Some(_)) => {}
        (Reach::AllAccounts, Some(_)) => {
            return Err(ApiError::field(
                "account_id",
                "only customer keys are bound to an account",
            ))
        }
        _ => {}
    }
    let name = short_text("name", &body.name)?;
    let (key, secret) = new_key(role, body.account_id, name, state.clock.now());
    let hash = hash_secret(&secret);
    // The secret is shown once, and again only to a retry of this request.
    let render = move |key: &allot_store::model::ApiKey| {
        let created = CreatedApiKey {
            key: key.clone().into(),
            secret: secret.clone(),
        };
        answer(StatusCode::CREATED, &created)
    };
    let response = render(&key);
    state
        .store
        .insert_api_key(&key, &hash, &principal.audit(), keyed.answering(render))
        .await?;
    Ok(send(&response))
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
    keyed: Keyed,
    PathId(id): PathId<ApiKeyId>,
) -> ApiResult<Response> {
    principal.require(Permission::Administer)?;
    let key_id = id.to_string();
    let render = move |found: &bool| {
        if *found {
            StoredAnswer {
                status: StatusCode::NO_CONTENT.as_u16(),
                body: String::new(),
            }
        } else {
            let missing = ApiError::not_found("api key", &key_id);
            answer(missing.status(), &missing.body())
        }
    };
    let found = state
        .store
        .revoke_api_key(
            &id,
            state.clock.now(),
            &principal.audit(),
            keyed.answering(render.clone()),
        )
        .await?;
    // This process refuses the key from the next request on; other
    // instances within `key_cache_ms`, their write paths at once.
    state.keys.evict(&id);
    Ok(send(&render(&found)))
}
