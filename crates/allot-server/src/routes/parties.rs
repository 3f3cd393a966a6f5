//! Accounts, contacts, products, and the eligibility check.

use allot_core::matching::{eligible, CaseScope};
use allot_store::ids::{AccountId, ContactId, ProductId, TypedId};
use allot_store::model::{Account, Contact, EntitlementFilter, EntitlementRecord, Page, Product};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;

use super::{fetch, listing};
use crate::auth::{Permission, Principal};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, PathId, Query};
use crate::idempotency::{answer, send, Keyed};
use crate::inputs::{short_text, text, CreateAccount, CreateContact, CreateProduct, MAX_TEXT};
use crate::state::AppState;
use crate::views::{
    AccountView, ContactView, Eligibility, EligibleEntitlement, EntitlementView, Listing,
    ProductView,
};

/// Loads an account the caller may see; anything else does not exist.
pub async fn visible_account(
    state: &AppState,
    principal: &Principal,
    id: &str,
) -> ApiResult<Account> {
    let id = AccountId::parse(id)
        .filter(|id| principal.sees_account(id))
        .ok_or_else(|| ApiError::not_found("account", id))?;
    state
        .store
        .get_account(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("account", &id))
}

/// An id given in a body must name an existing object: a 422 on that field otherwise.
async fn account_field(state: &AppState, field: &str, id: &str) -> ApiResult<Account> {
    let found = match AccountId::parse(id) {
        Some(id) => state.store.get_account(&id).await?,
        None => None,
    };
    found.ok_or_else(|| {
        ApiError::field(
            field,
            format!(
                "account {} does not exist",
                id.chars().take(80).collect::<String>()
            ),
        )
    })
}

#[utoipa::path(post, path = "/v1/accounts", operation_id = "create_account", tag = "accounts", request_body = CreateAccount,
    responses((status = 201, body = AccountView), (status = 409, description = "external_id_exists: another account has this external_id", body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_account(
    State(state): State<AppState>,
    principal: Principal,
    keyed: Keyed,
    ApiJson(body): ApiJson<CreateAccount>,
) -> ApiResult<Response> {
    principal.require(Permission::Manage)?;
    let name = text("name", &body.name, MAX_TEXT)?;
    if let Some(parent) = &body.parent_id {
        account_field(&state, "parent_id", parent).await?;
    }
    let manager_name = short_text("manager_name", &body.manager_name)?;
    let manager_email = crate::alerts::inputs::email("manager_email", body.manager_email)?;
    let external_id = short_text("external_id", &body.external_id)?;
    if let Some(key) = &external_id {
        crate::imports::external_id_free(&state, key).await?;
    }
    let now = state.clock.now();
    let account = Account {
        id: AccountId::new(now).into_string(),
        name,
        parent_id: body.parent_id,
        manager_name,
        manager_email,
        created_at: now,
        external_id,
    };
    let render =
        |account: &Account| answer(StatusCode::CREATED, &AccountView::from(account.clone()));
    state
        .store
        .insert_account(&account, &principal.audit(), keyed.answering(render))
        .await?;
    Ok(send(&render(&account)))
}

#[utoipa::path(get, path = "/v1/accounts/{id}", operation_id = "get_account", tag = "accounts", params(("id" = String, Path)),
    responses((status = 200, body = AccountView), (status = 404, body = ErrorBody)))]
pub async fn get_account(
    State(state): State<AppState>,
    principal: Principal,
    PathId(id): PathId<AccountId>,
) -> ApiResult<Json<AccountView>> {
    principal.require(Permission::Read)?;
    Ok(Json(visible_account(&state, &principal, &id).await?.into()))
}

#[utoipa::path(get, path = "/v1/accounts", operation_id = "list_accounts", tag = "accounts",
    params(crate::extract::PageParams),
    responses((status = 200, body = Listing<AccountView>)))]
pub async fn list_accounts(
    State(state): State<AppState>,
    principal: Principal,
    query: Query,
) -> ApiResult<Json<Listing<AccountView>>> {
    principal.require(Permission::Read)?;
    let page = query.page()?;
    if let Some(own) = principal.confined_to().map(str::to_string) {
        let rows: Vec<Account> = state
            .store
            .get_account(&own)
            .await?
            .into_iter()
            .filter(|a| page.after.is_none() && a.id == own)
            .collect();
        return Ok(Json(listing(
            rows,
            page.limit,
            |a| a.id.clone(),
            AccountView::from,
        )));
    }
    let rows = state.store.list_accounts(&fetch(&page)).await?;
    Ok(Json(listing(
        rows,
        page.limit,
        |a| a.id.clone(),
        AccountView::from,
    )))
}

#[utoipa::path(post, path = "/v1/contacts", operation_id = "create_contact", tag = "accounts", request_body = CreateContact,
    responses((status = 201, body = ContactView), (status = 422, body = ErrorBody)))]
pub async fn create_contact(
    State(state): State<AppState>,
    principal: Principal,
    keyed: Keyed,
    ApiJson(body): ApiJson<CreateContact>,
) -> ApiResult<Response> {
    principal.require(Permission::Manage)?;
    let name = text("name", &body.name, MAX_TEXT)?;
    let email = short_text("email", &body.email)?;
    if email.as_ref().is_some_and(|e| !e.contains('@')) {
        return Err(ApiError::field("email", "must be an e-mail address"));
    }
    account_field(&state, "account_id", &body.account_id).await?;
    let now = state.clock.now();
    let contact = Contact {
        id: ContactId::new(now).into_string(),
        account_id: body.account_id,
        name,
        email,
        created_at: now,
    };
    let render =
        |contact: &Contact| answer(StatusCode::CREATED, &ContactView::from(contact.clone()));
    state
        .store
        .insert_contact(&contact, &principal.audit(), keyed.answering(render))
        .await?;
    Ok(send(&render(&contact)))
}

#[utoipa::path(get, path = "/v1/contacts/{id}", operation_id = "get_contact", tag = "accounts", params(("id" = String, Path)),
    responses((status = 200, body = ContactView), (status = 404, body = ErrorBody)))]
pub async fn get_contact(
    State(state): State<AppState>,
    principal: Principal,
    PathId(id): PathId<ContactId>,
) -> ApiResult<Json<ContactView>> {
    principal.require(Permission::Read)?;
    match state.store.get_contact(&id).await? {
        Some(c) if principal.sees_account(&c.account_id) => Ok(Json(c.into())),
        _ => Err(ApiError::not_found("contact", &id)),
    }
}

#[utoipa::path(get, path = "/v1/contacts", operation_id = "list_contacts", tag = "accounts",
    params(("account_id" = Option<String>, Query), crate::extract::PageParams),
    responses((status = 200, body = Listing<ContactView>)))]
pub async fn list_contacts(
    State(state): State<AppState>,
    principal: Principal,
    query: Query,
) -> ApiResult<Json<Listing<ContactView>>> {
    principal.require(Permission::Read)?;
    let page = query.page()?;
    let mut account = query.get("account_id").map(str::to_string);
    if principal.confined_to().is_some() {
        if account.as_ref().is_some_and(|a| !principal.sees_account(a)) {
            return Ok(Json(Listing {
                items: vec![],
                next_cursor: None,
            }));
        }
        account = principal.account_id.clone();
    }
    let rows = state
        .store
        .list_contacts(account.as_deref(), &fetch(&page))
        .await?;
    Ok(Json(listing(
        rows,
        page.limit,
        |c| c.id.clone(),
        ContactView::from,
    )))
}

#[utoipa::path(post, path = "/v1/products", operation_id = "create_product", tag = "catalogue", request_body = CreateProduct,
    responses((status = 201, body = ProductView), (status = 422, body = ErrorBody)))]
pub async fn create_product(
    State(state): State<AppState>,
    principal: Principal,
    keyed: Keyed,
    ApiJson(body): ApiJson<CreateProduct>,
) -> ApiResult<Response> {
    principal.require(Permission::Manage)?;
    let name = text("name", &body.name, MAX_TEXT)?;
    let sku = short_text("sku", &body.sku)?;
    let now = state.clock.now();
    let product = Product {
        id: ProductId::new(now).into_string(),
        name,
        sku,
        created_at: now,
    };
    let render =
        |product: &Product| answer(StatusCode::CREATED, &ProductView::from(product.clone()));
    state
        .store
        .insert_product(&product, &principal.audit(), keyed.answering(render))
        .await?;
    Ok(send(&render(&product)))
}

#[utoipa::path(get, path = "/v1/products/{id}", operation_id = "get_product", tag = "catalogue", params(("id" = String, Path)),
    responses((status = 200, body = ProductView), (status = 404, body = ErrorBody)))]
pub async fn get_product(
    State(state): State<AppState>,
    principal: Principal,
    PathId(id): PathId<ProductId>,
) -> ApiResult<Json<ProductView>> {
    principal.require(Permission::Read)?;
    state
        .store
        .get_product(&id)
        .await?
        .map(|p| Json(p.into()))
        .ok_or_else(|| ApiError::not_found("product", &id))
}

#[utoipa::path(get, path = "/v1/products", operation_id = "list_products", tag = "catalogue",
    params(crate::extract::PageParams),
    responses((status = 200, body = Listing<ProductView>)))]
pub async fn list_products(
    State(state): State<AppState>,
    principal: Principal,
    query: Query,
) -> ApiResult<Json<Listing<ProductView>>> {
    principal.require(Permission::Read)?;
    let page = query.page()?;
    let rows = state.store.list_products(&fetch(&page)).await?;
    Ok(Json(listing(
        rows,
        page.limit,
        |p| p.id.clone(),
        ProductView::from,
    )))
}

#[utoipa::path(get, path = "/v1/accounts/{id}/eligibility", operation_id = "get_eligibility", tag = "accounts",
    params(("id" = String, Path), ("contact" = Option<String>, Query), ("product" = Option<String>, Query), ("channel" = Option<String>, Query)),
    responses((status = 200, body = Eligibility), (status = 404, body = ErrorBody)))]
pub async fn eligibility(
    State(state): State<AppState>,
    principal: Principal,
    PathId(id): PathId<AccountId>,
    query: Query,
) -> ApiResult<Json<Eligibility>> {
    principal.require(Permission::Read)?;
    let account = visible_account(&state, &principal, &id).await?;
    let ranked = covering(
        &state,
        &account.id,
        query.get("contact"),
        query.get("product"),
        query.get("channel"),
    )
    .await?;
    let today = state.clock.today();
    let items = ranked
        .iter()
        .map(|r| EligibleEntitlement {
            entitlement: EntitlementView::new(r, today),
            balance: allot_core::balance::balance(&r.entitlement, &r.counters, today).into(),
        })
        .collect();
    Ok(Json(Eligibility {
        account_id: account.id,
        items,
    }))
}

/// Every entitlement that covers a case of this account with this contact,
/// product and channel, best first (DESIGN 2.4; the order is `allot-core`'s).
pub async fn covering(
    state: &AppState,
    account_id: &str,
    contact: Option<&str>,
    product: Option<&str>,
    channel: Option<&str>,
) -> ApiResult<Vec<EntitlementRecord>> {
    let ancestors = state.store.account_ancestors(account_id).await?;
    let mut accounts = vec![account_id.to_string()];
    accounts.extend(ancestors.iter().cloned());
    let filter = EntitlementFilter {
        account_ids: Some(accounts),
        stored_status: Some(vec![
            allot_core::Status::Waiting,
            allot_core::Status::Active,
        ]),
        ..Default::default()
    };
    let mut records = state
        .store
        .list_entitlements(
            &filter,
            &Page {
                after: None,
                limit: 10_000,
            },
        )
        .await?;
    let scope = CaseScope {
        account_id,
        ancestors: &ancestors,
        contact_id: contact,
        product_id: product,
        channel,
    };
    let entitlements: Vec<allot_core::Entitlement> =
        records.iter().map(|r| r.entitlement.clone()).collect();
    let order: Vec<String> = eligible(&entitlements, &scope, state.clock.today())
        .into_iter()
        .map(|e| e.id.clone())
        .collect();
    records.retain(|r| order.contains(&r.entitlement.id));
    records.sort_by_key(|r| order.iter().position(|id| *id == r.entitlement.id));
    Ok(records)
}
