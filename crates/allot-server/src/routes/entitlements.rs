//! Entitlements: create, read, edit drafts, lifecycle, balance.

use allot_core::entitlement::{Entitlement, Status, Terms};
use allot_core::lifecycle::Action;
use allot_store::ids::{AccountId, ContactId, EntitlementId, ProductId, TypedId};
use allot_store::model::EntitlementRecord;
use allot_store::sequences::Act;
use allot_store::{StoredAnswer, TransitionResult};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use chrono::NaiveDate;
use serde_json::Value;

use crate::auth::{Permission, Principal};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{parse_json, ApiJson, PathId, Query};
use crate::idempotency::{answer, send, Keyed};
use crate::inputs::EntitlementInput;
use crate::report_rows::{BalanceWithForecast, ListedEntitlement};
use crate::state::AppState;
use crate::views::{EntitlementView, Listing, TransitionView};

/// Loads an entitlement the caller may see; anything else does not exist.
pub async fn visible_entitlement(
    state: &AppState,
    principal: &Principal,
    id: &EntitlementId,
) -> ApiResult<EntitlementRecord> {
    match state.store.get_entitlement(id).await? {
        Some(r) if principal.sees_account(&r.entitlement.terms.account_id) => Ok(r),
        _ => Err(ApiError::not_found("entitlement", id)),
    }
}

/// The references in a set of terms must exist: the account, and every
/// product and contact (contacts of that account).
async fn check_references(state: &AppState, terms: &Terms) -> ApiResult<()> {
    let account_exists = match AccountId::parse(&terms.account_id) {
        Some(id) => state.store.get_account(&id).await?.is_some(),
        None => false,
    };
    if !account_exists {
        return Err(ApiError::field("account_id", "account does not exist"));
    }
    for (i, id) in terms.product_ids.iter().enumerate() {
        let product = match ProductId::parse(id) {
            Some(id) => state.store.get_product(&id).await?,
            None => None,
        };
        if product.is_none() {
            return Err(ApiError::field(
                &format!("product_ids[{i}]"),
                "product does not exist",
            ));
        }
    }
    for (i, id) in terms.contact_ids.iter().enumerate() {
        let contact = match ContactId::parse(id) {
            Some(id) => state.store.get_contact(&id).await?,
            None => None,
        };
        if contact.is_none_or(|c| c.account_id != terms.account_id) {
            return Err(ApiError::field(
                &format!("contact_ids[{i}]"),
                "is not a contact of this account",
            ));
        }
    }
    super::contracts::check_contract(state, terms).await
}

#[utoipa::path(post, path = "/v1/entitlements", operation_id = "create_entitlement", tag = "entitlements", request_body = EntitlementInput,
    responses((status = 201, body = EntitlementView), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    keyed: Keyed,
    ApiJson(body): ApiJson<EntitlementInput>,
) -> ApiResult<Response> {
    principal.require(Permission::Manage)?;
    let terms = body.into_terms()?;
    check_references(&state, &terms).await?;
    let now = state.clock.now();
    let entitlement = Entitlement {
        id: EntitlementId::new(now).into_string(),
        terms,
        status: Status::Draft,
        predecessor_id: None,
    };
    let today = state.clock.today();
    let render =
        move |r: &EntitlementRecord| answer(StatusCode::CREATED, &EntitlementView::new(r, today));
    let record = state
        .store
        .insert_entitlement(
            &entitlement,
            now,
            &principal.audit(),
            keyed.answering(render),
        )
        .await?;
    Ok(send(&render(&record)))
}

#[utoipa::path(get, path = "/v1/entitlements/{id}", operation_id = "get_entitlement", tag = "entitlements", params(("id" = String, Path)),
    responses((status = 200, body = EntitlementView), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    principal: Principal,
    PathId(id): PathId<EntitlementId>,
) -> ApiResult<Json<EntitlementView>> {
    principal.require(Permission::Read)?;
    let record = visible_entitlement(&state, &principal, &id).await?;
    Ok(Json(EntitlementView::new(&record, state.clock.today())))
}

#[utoipa::path(get, path = "/v1/entitlements", operation_id = "list_entitlements", tag = "entitlements",
    params(crate::reporting::ScopeParams, crate::reporting::StatusParam,
        ("percent_used_gte" = Option<f64>, Query, description = "Only limited entitlements whose percent used today is at least this.", minimum = 0, maximum = 1000000),
        crate::extract::PageParams),
    responses((status = 200, body = Listing<ListedEntitlement>), (status = 422, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    query: Query,
) -> ApiResult<Json<Listing<ListedEntitlement>>> {
    principal.require(Permission::Read)?;
    let page = query.page()?;
    let scope = crate::reporting::Scope::parse(&query, &principal, true)?;
    let percent_gte = match query.get("percent_used_gte") {
        None => None,
        // Any number the document allows, compared with the exact percent
        // (hundredths) as a double.
        Some(v) => Some(
            v.parse::<f64>()
                .ok()
                .filter(|p| (0.0..=1_000_000.0).contains(p))
                .ok_or_else(|| {
                    ApiError::field("percent_used_gte", "must be a number from 0 to 1000000")
                })?,
        ),
    };
    let today = state.clock.today();
    let limit = page.limit as usize;
    let mut scan = crate::reporting::Scanner::new(&state, scope, page.after.clone());
    let mut items = Vec::new();
    let mut next_cursor = None;
    while let Some(batch) = scan.next().await? {
        for r in batch {
            let balance = allot_core::balance::balance(&r.entitlement, &r.counters, today);
            let percent_used = allot_core::report::percent_used(&balance);
            if percent_gte.is_some_and(|gte| percent_used.is_none_or(|p| p.as_f64() < gte)) {
                continue;
            }
            if items.len() == limit {
                next_cursor = items
                    .last()
                    .map(|i: &ListedEntitlement| i.entitlement.id.clone());
                break;
            }
            items.push(ListedEntitlement {
                entitlement: EntitlementView::new(&r, today),
                balance: balance.into(),
                percent_used,
            });
        }
        if next_cursor.is_some() {
            break;
        }
        if scan.scanned >= crate::reporting::MAX_SCAN_PER_PAGE && !scan.finished() {
            next_cursor = scan.last_read().map(str::to_string);
            break;
        }
    }
    Ok(Json(Listing { items, next_cursor }))
}

#[utoipa::path(patch, path = "/v1/entitlements/{id}", operation_id = "patch_entitlement", tag = "entitlements", params(("id" = String, Path)),
    request_body(content = Object, description = "Any fields of the create body except `unit`; drafts only."),
    responses((status = 200, body = EntitlementView), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn patch(
    State(state): State<AppState>,
    principal: Principal,
    keyed: Keyed,
    PathId(id): PathId<EntitlementId>,
    body: Bytes,
) -> ApiResult<Response> {
    let record = visible_entitlement(&state, &principal, &id).await?;
    principal.require(Permission::Manage)?;
    let changes: serde_json::Map<String, Value> = parse_json(&body)?;
    let current = &record.entitlement.terms;
    let mut merged = match serde_json::to_value(EntitlementInput::from_terms(current)) {
        Ok(Value::Object(m)) => m,
        _ => return Err(ApiError::Internal("terms did not serialize".into())),
    };
    if let Some(unit) = changes.get("unit") {
        if unit.as_str() != Some(current.unit.as_str()) {
            return Err(ApiError::field("unit", "cannot change after creation"));
        }
    }
    if changes.get("total").is_some_and(|t| !t.is_null()) && !changes.contains_key("unlimited") {
        merged.insert("unlimited".into(), Value::Bool(false));
    }
    if changes.get("unlimited") == Some(&Value::Bool(true)) && !changes.contains_key("total") {
        merged.insert("total".into(), Value::Null);
    }
    merged.extend(changes);
    let input: EntitlementInput =
        parse_json(&serde_json::to_vec(&merged).map_err(|e| ApiError::Internal(e.to_string()))?)?;
    let mut terms = input.into_terms()?;
    terms.template_id = current.template_id.clone();
    check_references(&state, &terms).await?;
    let today = state.clock.today();
    let render =
        move |r: &EntitlementRecord| answer(StatusCode::OK, &EntitlementView::new(r, today));
    let updated = state
        .store
        .update_terms(
            &id,
            &terms,
            today,
            state.clock.now(),
            &principal.audit(),
            keyed.answering(render),
        )
        .await?;
    Ok(send(&render(&updated)))
}

/// The answer to a lifecycle action: the entitlement acted on, or for
/// `renew` the new draft (201).
fn transition_answer(action: Action, result: &TransitionResult, today: NaiveDate) -> StoredAnswer {
    match (action, &result.renewal) {
        (Action::Renew, Some(renewal)) => {
            answer(StatusCode::CREATED, &EntitlementView::new(renewal, today))
        }
        (Action::Renew, None) => {
            let e = ApiError::Internal("renewal missing".into());
            answer(e.status(), &e.body())
        }
        _ => answer(
            StatusCode::OK,
            &EntitlementView::new(&result.entitlement, today),
        ),
    }
}

async fn act(
    state: &AppState,
    principal: &Principal,
    keyed: &Keyed,
    id: &EntitlementId,
    action: Action,
) -> ApiResult<Response> {
    visible_entitlement(state, principal, id).await?;
    principal.require(Permission::Manage)?;
    let now = state.clock.now();
    let today = state.clock.today();
    let renewal_id = EntitlementId::new(now).into_string();
    let render = move |r: &TransitionResult| transition_answer(action, r, today);
    let act = Act {
        id,
        action,
        audit: &principal.audit(),
        renewal_id: &renewal_id,
        today,
        now,
    };
    let result = state.store.transition(act, keyed.answering(render)).await?;
    Ok(send(&render(&result)))
}

#[utoipa::path(post, path = "/v1/entitlements/{id}/activate", operation_id = "activate_entitlement", tag = "entitlements", params(("id" = String, Path)),
    responses((status = 200, body = EntitlementView), (status = 409, body = ErrorBody)))]
pub async fn activate(
    State(state): State<AppState>,
    principal: Principal,
    keyed: Keyed,
    PathId(id): PathId<EntitlementId>,
) -> ApiResult<Response> {
    act(&state, &principal, &keyed, &id, Action::Activate).await
}

#[utoipa::path(post, path = "/v1/entitlements/{id}/deactivate", operation_id = "deactivate_entitlement", tag = "entitlements", params(("id" = String, Path)),
    responses((status = 200, body = EntitlementView), (status = 409, body = ErrorBody)))]
pub async fn deactivate(
    State(state): State<AppState>,
    principal: Principal,
    keyed: Keyed,
    PathId(id): PathId<EntitlementId>,
) -> ApiResult<Response> {
    act(&state, &principal, &keyed, &id, Action::Deactivate).await
}

#[utoipa::path(post, path = "/v1/entitlements/{id}/cancel", operation_id = "cancel_entitlement", tag = "entitlements", params(("id" = String, Path)),
    responses((status = 200, body = EntitlementView), (status = 409, body = ErrorBody)))]
pub async fn cancel(
    State(state): State<AppState>,
    principal: Principal,
    keyed: Keyed,
    PathId(id): PathId<EntitlementId>,
) -> ApiResult<Response> {
    act(&state, &principal, &keyed, &id, Action::Cancel).await
}

#[utoipa::path(post, path = "/v1/entitlements/{id}/renew", operation_id = "renew_entitlement", tag = "entitlements", params(("id" = String, Path)),
    responses((status = 201, description = "The new draft entitlement", body = EntitlementView), (status = 409, body = ErrorBody)))]
pub async fn renew(
    State(state): State<AppState>,
    principal: Principal,
    keyed: Keyed,
    PathId(id): PathId<EntitlementId>,
) -> ApiResult<Response> {
    act(&state, &principal, &keyed, &id, Action::Renew).await
}

#[utoipa::path(get, path = "/v1/entitlements/{id}/balance", operation_id = "get_balance", tag = "usage",
    params(("id" = String, Path),
        ("window_days" = Option<u32>, Query, description = "The forecast's trailing window, in days; 30 when absent.", minimum = 1, maximum = 366)),
    responses((status = 200, body = BalanceWithForecast), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn balance(
    State(state): State<AppState>,
    principal: Principal,
    PathId(id): PathId<EntitlementId>,
    query: Query,
) -> ApiResult<Json<BalanceWithForecast>> {
    principal.require(Permission::Read)?;
    let record = visible_entitlement(&state, &principal, &id).await?;
    let window = super::reports::window_days(&query)?;
    let today = state.clock.today();
    let forecast = super::reports::forecasts(&state, std::slice::from_ref(&record), window, today)
        .await?
        .pop()
        .map(|(_, f)| f)
        .ok_or_else(|| ApiError::Internal("no forecast".into()))?;
    Ok(Json(BalanceWithForecast {
        balance: allot_core::balance::balance(&record.entitlement, &record.counters, today).into(),
        forecast: (&forecast).into(),
    }))
}

#[utoipa::path(get, path = "/v1/entitlements/{id}/transitions", operation_id = "list_transitions", tag = "entitlements", params(("id" = String, Path)),
    responses((status = 200, body = Vec<TransitionView>), (status = 404, body = ErrorBody)))]
pub async fn transitions(
    State(state): State<AppState>,
    principal: Principal,
    PathId(id): PathId<EntitlementId>,
) -> ApiResult<Json<Vec<TransitionView>>> {
    principal.require(Permission::Read)?;
    visible_entitlement(&state, &principal, &id).await?;
    let rows = state.store.list_transitions(&id).await?;
    Ok(Json(rows.into_iter().map(TransitionView::from).collect()))
}
