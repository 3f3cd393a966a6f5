//! Software models and software entitlements: create, read, edit, publish,
//! retire, licence keys, downgrade rights, upgrades and allocations. Every
//! rule is `allot_core::software`'s, decided under the entitlement's row
//! lock in the store's sequence.

use allot_core::software::SoftwareEntitlement;
use allot_store::ids::{AccountId, AllocationId, SoftwareEntitlementId, SoftwareModelId, TypedId};
use allot_store::software::{
    Allocated, Allocation, SoftwareChange, SoftwareEntitlementRecord, SoftwareFilter,
    SoftwareModel, Upgraded,
};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use serde_json::Value;

use super::contracts::at;
use super::{fetch, listing};
use crate::auth::{Permission, Principal};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{parse_json, parse_optional_json, ApiJson, Query};
use crate::idempotency::{answer, send, Keyed};
use crate::inputs::NoFields;
use crate::software::inputs::{
    AddDowngradeRight, AddLicenseKeys, CreateAllocation, SoftwareEntitlementInput,
    SoftwareModelInput, Upgrade,
};
use crate::software::views::{
    AllocatedView, AllocationView, SoftwareEntitlementView, SoftwareModelView, UpgradedView,
};
use crate::state::AppState;
use crate::views::Listing;

async fn existing_model(state: &AppState, id: &str) -> ApiResult<Option<SoftwareModel>> {
    if SoftwareModelId::parse(id).is_none() {
        return Ok(None);
    }
    Ok(state.store.get_software_model(id).await?)
}

/// Loads a software entitlement the caller may see; anything else does not
/// exist. Customers see only their account's.
pub async fn visible_software_entitlement(
    state: &AppState,
    principal: &Principal,
    id: &str,
) -> ApiResult<SoftwareEntitlementRecord> {
    let found = if SoftwareEntitlementId::parse(id).is_some() {
        state.store.get_software_entitlement(id).await?
    } else {
        None
    };
    let seen = |r: &SoftwareEntitlementRecord| match principal.confined_to() {
        Some(account) => r.entitlement.terms.account_id.as_deref() == Some(account),
        None => true,
    };
    match found {
        Some(r) if seen(&r) => Ok(r),
        _ => Err(ApiError::not_found("software entitlement", id)),
    }
}

#[utoipa::path(post, path = "/v1/software-models", operation_id = "create_software_model", tag = "software", request_body = SoftwareModelInput,
    responses((status = 201, body = SoftwareModelView), (status = 422, body = ErrorBody)))]
pub async fn create_model(
    State(state): State<AppState>,
    principal: Principal,
    keyed: Keyed,
    ApiJson(body): ApiJson<SoftwareModelInput>,
) -> ApiResult<Response> {
    principal.require(Permission::Manage)?;
    let f = body.checked()?;
    let now = allot_store::clock::stored_time(state.clock.now());
    let model = SoftwareModel {
        id: SoftwareModelId::new(now).into_string(),
        publisher: f.publisher,
        product: f.product,
        version: f.version,
        edition: f.edition,
        platform: f.platform,
        created_at: now,
        updated_at: now,
    };
    let render = |m: &SoftwareModel| answer(StatusCode::CREATED, &SoftwareModelView::from(m));
    state
        .store
        .insert_software_model(&model, &principal.audit(), keyed.answering(render))
        .await?;
    Ok(send(&render(&model)))
}

#[utoipa::path(get, path = "/v1/software-models", operation_id = "list_software_models", tag = "software",
    params(crate::extract::PageParams),
    responses((status = 200, body = Listing<SoftwareModelView>), (status = 422, body = ErrorBody)))]
pub async fn list_models(
    State(state): State<AppState>,
    principal: Principal,
    query: Query,
) -> ApiResult<Json<Listing<SoftwareModelView>>> {
    principal.require(Permission::Read)?;
    let page = query.page()?;
    let rows = state.store.list_software_models(&fetch(&page)).await?;
    Ok(Json(listing(
        rows,
        page.limit,
        |m| m.id.clone(),
        |m| SoftwareModelView::from(&m),
    )))
}

#[utoipa::path(get, path = "/v1/software-models/{id}", operation_id = "get_software_model", tag = "software", params(("id" = String, Path)),
    responses((status = 200, body = SoftwareModelView), (status = 404, body = ErrorBody)))]
pub async fn get_model(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<SoftwareModelView>> {
    principal.require(Permission::Read)?;
    let model = existing_model(&state, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("software model", &id))?;
    Ok(Json(SoftwareModelView::from(&model)))
}

#[utoipa::path(patch, path = "/v1/software-models/{id}", operation_id = "patch_software_model", tag = "software", params(("id" = String, Path)),
    request_body(content = Object, description = "Any fields of the create body, merged into the model."),
    responses((status = 200, body = SoftwareModelView), (status = 422, body = ErrorBody)))]
pub async fn patch_model(
    State(state): State<AppState>,
    principal: Principal,
    keyed: Keyed,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    principal.require(Permission::Read)?;
    let current = existing_model(&state, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("software model", &id))?;
    principal.require(Permission::Manage)?;
    let changes: serde_json::Map<String, Value> = parse_json(&body)?;
    let input = SoftwareModelInput {
        publisher: current.publisher.clone(),
        product: current.product.clone(),
        version: current.version.clone(),
        edition: current.edition.clone(),
        platform: current.platform.clone(),
    };
    let merged = merge(&input, changes)?;
    let f = parse_json::<SoftwareModelInput>(&merged)?.checked()?;
    let model = SoftwareModel {
        publisher: f.publisher,
        product: f.product,
        version: f.version,
        edition: f.edition,
        platform: f.platform,
        updated_at: state.clock.now(),
        ..current
    };
    let render = |m: &SoftwareModel| answer(StatusCode::OK, &SoftwareModelView::from(m));
    let updated = state
        .store
        .update_software_model(&model, &principal.audit(), keyed.answering(render))
        .await?;
    Ok(send(&render(&updated)))
}

/// `changes` laid over `current`, as the JSON a client would have sent whole.
fn merge<T: serde::Serialize>(
    current: &T,
    changes: serde_json::Map<String, Value>,
) -> ApiResult<Vec<u8>> {
    let mut merged = match serde_json::to_value(current) {
        Ok(Value::Object(m)) => m,
        _ => {
            return Err(ApiError::Internal(
                "current fields did not serialize".into(),
            ))
        }
    };
    merged.extend(changes);
    serde_json::to_vec(&merged).map_err(|e| ApiError::Internal(e.to_string()))
}

/// The model and account a software entitlement names must exist.
async fn check_references(
    state: &AppState,
    terms: &allot_core::software::SoftwareTerms,
) -> ApiResult<()> {
    if existing_model(state, &terms.software_model_id)
        .await?
        .is_none()
    {
        return Err(ApiError::field(
            "software_model_id",
            "software model does not exist",
        ));
    }
    if let Some(account) = &terms.account_id {
        let exists = AccountId::parse(account).is_some()
            && state.store.get_account(account).await?.is_some();
        if !exists {
            return Err(ApiError::field("account_id", "account does not exist"));
        }
    }
    Ok(())
}

#[utoipa::path(post, path = "/v1/software-entitlements", operation_id = "create_software_entitlement", tag = "software", request_body = SoftwareEntitlementInput,
    responses((status = 201, body = SoftwareEntitlementView), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    keyed: Keyed,
    ApiJson(body): ApiJson<SoftwareEntitlementInput>,
) -> ApiResult<Response> {
    principal.require(Permission::Manage)?;
    let terms = body.into_terms()?;
    check_references(&state, &terms).await?;
    let now = allot_store::clock::stored_time(state.clock.now());
    let record = SoftwareEntitlementRecord {
        entitlement: SoftwareEntitlement::new(SoftwareEntitlementId::new(now).into_string(), terms),
        created_at: now,
        updated_at: now,
    };
    let today = state.clock.today();
    let render = move |r: &SoftwareEntitlementRecord| {
        answer(StatusCode::CREATED, &SoftwareEntitlementView::new(r, today))
    };
    state
        .store
        .insert_software_entitlement(&record, &principal.audit(), keyed.answering(render))
        .await?;
    Ok(send(&render(&record)))
}

#[utoipa::path(get, path = "/v1/software-entitlements", operation_id = "list_software_entitlements", tag = "software",
    params(("account_id" = Option<String>, Query), ("software_model_id" = Option<String>, Query), crate::extract::PageParams),
    responses((status = 200, body = Listing<SoftwareEntitlementView>), (status = 422, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    query: Query,
) -> ApiResult<Json<Listing<SoftwareEntitlementView>>> {
    principal.require(Permission::Read)?;
    let page = query.page()?;
    let mut filter = SoftwareFilter {
        account_id: query.get("account_id").map(str::to_string),
        software_model_id: query.get("software_model_id").map(str::to_string),
    };
    if let Some(account) = principal.confined_to() {
        if filter.account_id.as_deref().is_some_and(|a| a != account) {
            return Ok(Json(Listing {
                items: vec![],
                next_cursor: None,
            }));
        }
        filter.account_id = Some(account.to_string());
    }
    let rows = state
        .store
        .list_software_entitlements(&filter, &fetch(&page))
        .await?;
    let today = state.clock.today();
    Ok(Json(listing(
        rows,
        page.limit,
        |r| r.entitlement.id.clone(),
        |r| SoftwareEntitlementView::new(&r, today),
    )))
}

#[utoipa::path(get, path = "/v1/software-entitlements/{id}", operation_id = "get_software_entitlement", tag = "software", params(("id" = String, Path)),
    responses((status = 200, body = SoftwareEntitlementView), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<SoftwareEntitlementView>> {
    principal.require(Permission::Read)?;
    let record = visible_software_entitlement(&state, &principal, &id).await?;
    Ok(Json(SoftwareEntitlementView::new(
        &record,
        state.clock.today(),
    )))
}

/// Runs one change of an entitlement the caller may see and change.
async fn change(
    state: &AppState,
    principal: &Principal,
    keyed: &Keyed,
    id: &str,
    change: SoftwareChange,
) -> ApiResult<Response> {
    let today = state.clock.today();
    let render = move |r: &SoftwareEntitlementRecord| {
        answer(StatusCode::OK, &SoftwareEntitlementView::new(r, today))
    };
    let audit = principal.audit();
    let record = state
        .store
        .change_software_entitlement(id, &change, at(state, &audit), keyed.answering(render))
        .await?;
    Ok(send(&render(&record)))
}

/// A change that takes no body (`publish`, `retire`) of an entitlement the
/// caller may see and manage.
async fn without_body(
    state: &AppState,
    principal: &Principal,
    keyed: &Keyed,
    id: &str,
    body: &Bytes,
    software_change: SoftwareChange,
) -> ApiResult<Response> {
    visible_software_entitlement(state, principal, id).await?;
    principal.require(Permission::Manage)?;
    parse_optional_json::<NoFields>(body)?;
    change(state, principal, keyed, id, software_change).await
}

#[utoipa::path(patch, path = "/v1/software-entitlements/{id}", operation_id = "patch_software_entitlement", tag = "software", params(("id" = String, Path)),
    request_body(content = Object, description = "Any fields of the create body, merged into the current terms. Giving rights_per_pack or number_of_packs recomputes purchased_rights; active rights follow purchased rights when they were equal, and never go below what is allocated."),
    responses((status = 200, body = SoftwareEntitlementView), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn patch(
    State(state): State<AppState>,
    principal: Principal,
    keyed: Keyed,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let record = visible_software_entitlement(&state, &principal, &id).await?;
    principal.require(Permission::Manage)?;
    let mut changes: serde_json::Map<String, Value> = parse_json(&body)?;
    let current = &record.entitlement.terms;
    let packs_given =
        changes.contains_key("rights_per_pack") || changes.contains_key("number_of_packs");
    let mut input = SoftwareEntitlementInput::from_terms(current);
    if packs_given && !changes.contains_key("purchased_rights") {
        input.purchased_rights = None;
    }
    let purchased_changes = packs_given || changes.contains_key("purchased_rights");
    if purchased_changes
        && current.active_rights == current.purchased_rights
        && !changes.contains_key("active_rights")
    {
        changes.insert("active_rights".into(), Value::Null);
    }
    let terms = parse_json::<SoftwareEntitlementInput>(&merge(&input, changes)?)?.into_terms()?;
    check_references(&state, &terms).await?;
    self::change(
        &state,
        &principal,
        &keyed,
        &id,
        SoftwareChange::Edit(Box::new(terms)),
    )
    .await
}

#[utoipa::path(post, path = "/v1/software-entitlements/{id}/publish", operation_id = "publish_software_entitlement", tag = "software", params(("id" = String, Path)),
    request_body(content = Option<NoFields>, description = "No body, or `{}`."),
    responses((status = 200, description = "Published: `build` → `in_use`.", body = SoftwareEntitlementView), (status = 409, body = ErrorBody)))]
pub async fn publish(
    State(state): State<AppState>,
    principal: Principal,
    keyed: Keyed,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let published = SoftwareChange::Publish;
    without_body(&state, &principal, &keyed, &id, &body, published).await
}

#[utoipa::path(post, path = "/v1/software-entitlements/{id}/retire", operation_id = "retire_software_entitlement", tag = "software", params(("id" = String, Path)),
    request_body(content = Option<NoFields>, description = "No body, or `{}`."),
    responses((status = 200, description = "Retired: active rights become 0; allocations stay, covering nothing.", body = SoftwareEntitlementView), (status = 409, body = ErrorBody)))]
pub async fn retire(
    State(state): State<AppState>,
    principal: Principal,
    keyed: Keyed,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let retired = SoftwareChange::Retire;
    without_body(&state, &principal, &keyed, &id, &body, retired).await
}

#[utoipa::path(post, path = "/v1/software-entitlements/{id}/license-keys", operation_id = "add_license_keys", tag = "software", params(("id" = String, Path)),
    request_body = AddLicenseKeys,
    responses((status = 200, body = SoftwareEntitlementView), (status = 409, description = "`duplicate_license_key`: a key is already one of this entitlement's (or given twice).", body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn add_license_keys(
    State(state): State<AppState>,
    principal: Principal,
    keyed: Keyed,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    visible_software_entitlement(&state, &principal, &id).await?;
    principal.require(Permission::Manage)?;
    let keys = parse_json::<AddLicenseKeys>(&body)?.checked()?;
    change(
        &state,
        &principal,
        &keyed,
        &id,
        SoftwareChange::AddLicenseKeys(keys),
    )
    .await
}

#[utoipa::path(post, path = "/v1/software-entitlements/{id}/downgrade-rights", operation_id = "add_downgrade_right", tag = "software", params(("id" = String, Path)),
    request_body = AddDowngradeRight,
    responses((status = 200, body = SoftwareEntitlementView), (status = 422, body = ErrorBody)))]
pub async fn add_downgrade_right(
    State(state): State<AppState>,
    principal: Principal,
    keyed: Keyed,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let record = visible_software_entitlement(&state, &principal, &id).await?;
    principal.require(Permission::Manage)?;
    let input: AddDowngradeRight = parse_json(&body)?;
    if existing_model(&state, &input.software_model_id)
        .await?
        .is_none()
    {
        return Err(ApiError::field(
            "software_model_id",
            "software model does not exist",
        ));
    }
    if input.software_model_id == record.entitlement.terms.software_model_id {
        return Err(ApiError::field(
            "software_model_id",
            "is the entitlement's own model",
        ));
    }
    let right = SoftwareChange::AddDowngradeRight {
        software_model_id: input.software_model_id,
        order: input.order,
    };
    change(&state, &principal, &keyed, &id, right).await
}

#[utoipa::path(post, path = "/v1/software-entitlements/{id}/upgrade", operation_id = "upgrade_software_entitlement", tag = "software", params(("id" = String, Path)),
    request_body = Upgrade,
    responses((status = 200, description = "The rights left `from_entitlement_id` and joined this entitlement, in one transaction.", body = UpgradedView), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn upgrade(
    State(state): State<AppState>,
    principal: Principal,
    keyed: Keyed,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    visible_software_entitlement(&state, &principal, &id).await?;
    principal.require(Permission::Manage)?;
    let input: Upgrade = parse_json(&body)?;
    if !(1..=allot_core::software::MAX_RIGHTS).contains(&input.rights) {
        return Err(ApiError::field("rights", "must be from 1 to 1000000000"));
    }
    let from = &input.from_entitlement_id;
    let visible = visible_software_entitlement(&state, &principal, from).await;
    if visible.is_err() || *from == id {
        return Err(ApiError::field(
            "from_entitlement_id",
            "must be another existing software entitlement",
        ));
    }
    let today = state.clock.today();
    let render = move |u: &Upgraded| {
        let view = UpgradedView {
            entitlement: SoftwareEntitlementView::new(&u.to, today),
            from_entitlement: SoftwareEntitlementView::new(&u.from, today),
        };
        answer(StatusCode::OK, &view)
    };
    let audit = principal.audit();
    let upgraded = state
        .store
        .upgrade_software(
            &id,
            from,
            input.rights,
            at(&state, &audit),
            keyed.answering(render),
        )
        .await?;
    Ok(send(&render(&upgraded)))
}

#[utoipa::path(get, path = "/v1/software-entitlements/{id}/allocations", operation_id = "list_allocations", tag = "software",
    params(("id" = String, Path), crate::extract::PageParams),
    responses((status = 200, body = Listing<AllocationView>), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn list_allocations(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    query: Query,
) -> ApiResult<Json<Listing<AllocationView>>> {
    principal.require(Permission::Read)?;
    visible_software_entitlement(&state, &principal, &id).await?;
    let page = query.page()?;
    let rows = state.store.list_allocations(&id, &fetch(&page)).await?;
    Ok(Json(listing(
        rows,
        page.limit,
        |a| a.id.clone(),
        |a| AllocationView::from(&a),
    )))
}

#[utoipa::path(post, path = "/v1/software-entitlements/{id}/allocations", operation_id = "allocate_software", tag = "software", params(("id" = String, Path)),
    request_body = CreateAllocation,
    responses((status = 201, body = AllocatedView),
        (status = 409, description = "`rights_exhausted` (details name the entitlement, what was requested and what is `available`), `not_published`, `entitlement_retired`, `license_key_in_use`.", body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn allocate(
    State(state): State<AppState>,
    principal: Principal,
    keyed: Keyed,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    visible_software_entitlement(&state, &principal, &id).await?;
    principal.require(Permission::AllocateSoftware)?;
    let f = parse_json::<CreateAllocation>(&body)?.checked()?;
    let now = state.clock.now();
    let allocation = Allocation {
        id: AllocationId::new(now).into_string(),
        entitlement_id: id.clone(),
        user: f.user,
        device: f.device,
        quantity: f.quantity,
        license_key: f.license_key,
        created_at: now,
    };
    let today = state.clock.today();
    let render = move |a: &Allocated| {
        let view = AllocatedView {
            id: a.allocation.id.clone(),
            allocation: AllocationView::from(&a.allocation),
            entitlement: SoftwareEntitlementView::new(&a.entitlement, today),
        };
        answer(StatusCode::CREATED, &view)
    };
    let audit = principal.audit();
    let allocated = state
        .store
        .allocate_software(&allocation, at(&state, &audit), keyed.answering(render))
        .await?;
    Ok(send(&render(&allocated)))
}

#[utoipa::path(delete, path = "/v1/software-entitlements/{id}/allocations/{allocation_id}", operation_id = "free_allocation", tag = "software",
    params(("id" = String, Path), ("allocation_id" = String, Path)),
    responses((status = 200, description = "The entitlement, its rights freed.", body = SoftwareEntitlementView)))]
pub async fn free(
    State(state): State<AppState>,
    principal: Principal,
    keyed: Keyed,
    Path((id, allocation_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    visible_software_entitlement(&state, &principal, &id).await?;
    principal.require(Permission::AllocateSoftware)?;
    if AllocationId::parse(&allocation_id).is_none() {
        return Err(ApiError::not_found("allocation", &allocation_id));
    }
    let today = state.clock.today();
    let render = move |r: &SoftwareEntitlementRecord| {
        answer(StatusCode::OK, &SoftwareEntitlementView::new(r, today))
    };
    let audit = principal.audit();
    let record = state
        .store
        .free_software(
            &id,
            &allocation_id,
            at(&state, &audit),
            keyed.answering(render),
        )
        .await?;
    Ok(send(&render(&record)))
}
