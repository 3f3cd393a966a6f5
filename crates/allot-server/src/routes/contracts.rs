//! Contracts: create, read, lines, the entitlements hanging off them, and
//! the actions (activate, suspend, resume, cancel, renew) that flow down to
//! those entitlements; and `make-default` on an entitlement. Every rule is
//! `allot_core::contracts`' (or `lifecycle`'s), decided under the
//! contract's lock in the store's sequence.

use allot_core::contracts::ContractStatus;
use allot_core::contracts::{check_inside, effective_contract_status, ContractAction};
use allot_core::entitlement::Terms;
use allot_core::invalid::Invalid;
use allot_store::contracts::{
    Contract, ContractAct, ContractActed, ContractFilter, ContractLine, Moment,
};
use allot_store::ids::{
    AccountId, ContractId, ContractLineId, EntitlementId, ProductId, TemplateId, TypedId,
};
use allot_store::model::EntitlementRecord;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;

use super::entitlements::visible_entitlement;
use super::{fetch, listing};
use crate::auth::{Permission, Principal};
use crate::contracts::inputs::{ContractInput, ContractLineInput, RenewContract};
use crate::contracts::views::{ContractActionView, ContractLineView, ContractView};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{parse_optional_json, ApiJson, PathId, Query};
use crate::idempotency::{answer, send, Keyed};
use crate::inputs::NoFields;
use crate::state::AppState;
use crate::views::{EntitlementView, Listing};

pub(crate) fn at<'a>(state: &AppState, audit: &'a allot_store::AuditContext) -> Moment<'a> {
    Moment {
        audit,
        today: state.clock.today(),
        now: state.clock.now(),
    }
}

/// Loads a contract the caller may see; anything else does not exist.
pub async fn visible_contract(
    state: &AppState,
    principal: &Principal,
    id: &ContractId,
) -> ApiResult<Contract> {
    match state.store.get_contract(id).await? {
        Some(c) if principal.sees_account(&c.account_id) => Ok(c),
        _ => Err(ApiError::not_found("contract", id)),
    }
}

/// An entitlement naming a contract (and a line of it) must name an
/// existing, open contract of its own account, with dates inside the
/// contract's (and the line's).
pub async fn check_contract(state: &AppState, terms: &Terms) -> ApiResult<()> {
    let Some(contract_id) = &terms.contract_id else {
        if terms.contract_line_id.is_some() {
            return Err(ApiError::field(
                "contract_id",
                "is required with contract_line_id",
            ));
        }
        return Ok(());
    };
    let contract = match ContractId::parse(contract_id) {
        Some(id) => state.store.get_contract(&id).await?,
        None => None,
    };
    let Some(contract) = contract else {
        return Err(ApiError::field("contract_id", "contract does not exist"));
    };
    if contract.account_id != terms.account_id {
        return Err(ApiError::field(
            "contract_id",
            "is a contract of another account",
        ));
    }
    let status = effective_contract_status(contract.status, contract.end_date, state.clock.today());
    if status.is_closed() {
        return Err(ApiError::Conflict {
            code: "contract_closed",
            message: format!("contract {} is {}", contract.id, status.as_str()),
            details: serde_json::Value::Null,
        });
    }
    check_inside(
        (contract.start_date, contract.end_date),
        terms.start_date,
        terms.end_date,
    )?;
    if let Some(line_id) = &terms.contract_line_id {
        let line = match ContractLineId::parse(line_id) {
            Some(id) => state.store.get_contract_line(&id).await?,
            None => None,
        };
        let Some(line) = line.filter(|l| l.contract_id == contract.id) else {
            return Err(ApiError::field(
                "contract_line_id",
                "is not a line of contract_id",
            ));
        };
        check_inside(
            (line.start_date, line.end_date),
            terms.start_date,
            terms.end_date,
        )
        .map_err(|Invalid(errors)| {
            ApiError::Invalid(Invalid(
                errors
                    .into_iter()
                    .map(|mut e| {
                        e.message = e.message.replace("contract's", "contract line's");
                        e
                    })
                    .collect(),
            ))
        })?;
    }
    Ok(())
}

#[utoipa::path(post, path = "/v1/contracts", operation_id = "create_contract", tag = "contracts", request_body = ContractInput,
    responses((status = 201, body = ContractView), (status = 409, description = "`contract_number_taken`", body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    keyed: Keyed,
    ApiJson(body): ApiJson<ContractInput>,
) -> ApiResult<Response> {
    principal.require(Permission::Manage)?;
    let f = body.checked()?;
    if AccountId::parse(&f.account_id).is_none() || !principal.sees_account(&f.account_id) {
        return Err(ApiError::field("account_id", "account does not exist"));
    }
    let now = allot_store::clock::stored_time(state.clock.now());
    let contract = Contract {
        id: ContractId::new(now).into_string(),
        account_id: f.account_id,
        number: f.number,
        name: f.name,
        start_date: f.start_date,
        end_date: f.end_date,
        auto_renew: f.auto_renew,
        status: ContractStatus::Draft,
        predecessor_id: None,
        renewed_to: None,
        created_at: now,
        updated_at: now,
    };
    let today = state.clock.today();
    let render = move |c: &Contract| answer(StatusCode::CREATED, &ContractView::new(c, today));
    state
        .store
        .insert_contract(&contract, &principal.audit(), keyed.answering(render))
        .await?;
    Ok(send(&render(&contract)))
}

#[utoipa::path(get, path = "/v1/contracts", operation_id = "list_contracts", tag = "contracts",
    params(("account_id" = Option<String>, Query, description = "Only this account's contracts."),
        ("status" = Option<String>, Query, description = "draft, active, suspended, expired or cancelled (as stored; an active contract past its end reads expired once the scheduler has run).", pattern = "^(draft|active|suspended|expired|cancelled)$"),
        crate::extract::PageParams),
    responses((status = 200, body = Listing<ContractView>), (status = 422, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    query: Query,
) -> ApiResult<Json<Listing<ContractView>>> {
    principal.require(Permission::Read)?;
    let page = query.page()?;
    let stored_status = match query.get("status") {
        Some(s) => Some(
            ContractStatus::parse(s)
                .ok_or_else(|| ApiError::field("status", "unknown contract status"))?,
        ),
        None => None,
    };
    let account_id = match (principal.confined_to(), query.get("account_id")) {
        (Some(own), Some(asked)) if own != asked => {
            return Ok(Json(Listing {
                items: Vec::new(),
                next_cursor: None,
            }))
        }
        (Some(own), _) => Some(own.to_string()),
        (None, asked) => asked.map(str::to_string),
    };
    let filter = ContractFilter {
        account_id,
        stored_status,
    };
    let rows = state.store.list_contracts(&filter, &fetch(&page)).await?;
    let today = state.clock.today();
    Ok(Json(listing(
        rows,
        page.limit,
        |c| c.id.clone(),
        |c| ContractView::new(&c, today),
    )))
}

#[utoipa::path(get, path = "/v1/contracts/{id}", operation_id = "get_contract", tag = "contracts", params(("id" = String, Path)),
    responses((status = 200, body = ContractView), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    principal: Principal,
    PathId(id): PathId<ContractId>,
) -> ApiResult<Json<ContractView>> {
    principal.require(Permission::Read)?;
    let contract = visible_contract(&state, &principal, &id).await?;
    Ok(Json(ContractView::new(&contract, state.clock.today())))
}

#[utoipa::path(post, path = "/v1/contracts/{id}/lines", operation_id = "create_contract_line", tag = "contracts", params(("id" = String, Path)),
    request_body = ContractLineInput,
    responses((status = 201, body = ContractLineView), (status = 404, body = ErrorBody), (status = 409, description = "`contract_closed`", body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_line(
    State(state): State<AppState>,
    principal: Principal,
    keyed: Keyed,
    PathId(id): PathId<ContractId>,
    ApiJson(body): ApiJson<ContractLineInput>,
) -> ApiResult<Response> {
    let contract = visible_contract(&state, &principal, &id).await?;
    principal.require(Permission::Manage)?;
    if body
        .product_id
        .as_deref()
        .is_some_and(|p| ProductId::parse(p).is_none())
    {
        return Err(ApiError::field("product_id", "product does not exist"));
    }
    if body
        .template_id
        .as_deref()
        .is_some_and(|t| TemplateId::parse(t).is_none())
    {
        return Err(ApiError::field("template_id", "template does not exist"));
    }
    if body.quantity.is_some_and(|q| q.is_negative()) {
        return Err(ApiError::field("quantity", "must not be negative"));
    }
    let now = allot_store::clock::stored_time(state.clock.now());
    let line = ContractLine {
        id: ContractLineId::new(now).into_string(),
        contract_id: contract.id.clone(),
        product_id: body.product_id,
        quantity: body.quantity,
        template_id: body.template_id,
        start_date: body.start_date.unwrap_or(contract.start_date),
        end_date: body.end_date.unwrap_or(contract.end_date),
        created_at: now,
    };
    let render = |l: &ContractLine| answer(StatusCode::CREATED, &ContractLineView::from(l));
    let audit = principal.audit();
    let made = state
        .store
        .insert_contract_line(&line, at(&state, &audit), keyed.answering(render))
        .await?;
    Ok(send(&render(&made)))
}

#[utoipa::path(get, path = "/v1/contracts/{id}/lines", operation_id = "list_contract_lines", tag = "contracts", params(("id" = String, Path), crate::extract::PageParams),
    responses((status = 200, body = Listing<ContractLineView>), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn list_lines(
    State(state): State<AppState>,
    principal: Principal,
    PathId(id): PathId<ContractId>,
    query: Query,
) -> ApiResult<Json<Listing<ContractLineView>>> {
    principal.require(Permission::Read)?;
    let page = query.page()?;
    let contract = visible_contract(&state, &principal, &id).await?;
    let rows = state
        .store
        .list_contract_lines(&contract.id, &fetch(&page))
        .await?;
    Ok(Json(listing(
        rows,
        page.limit,
        |l| l.id.clone(),
        |l| ContractLineView::from(&l),
    )))
}

#[utoipa::path(get, path = "/v1/contracts/{id}/entitlements", operation_id = "list_contract_entitlements", tag = "contracts", params(("id" = String, Path), crate::extract::PageParams),
    responses((status = 200, body = Listing<EntitlementView>), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn list_entitlements(
    State(state): State<AppState>,
    principal: Principal,
    PathId(id): PathId<ContractId>,
    query: Query,
) -> ApiResult<Json<Listing<EntitlementView>>> {
    principal.require(Permission::Read)?;
    let page = query.page()?;
    let contract = visible_contract(&state, &principal, &id).await?;
    let rows = state
        .store
        .list_contract_entitlements(&contract.id, &fetch(&page))
        .await?;
    let today = state.clock.today();
    Ok(Json(listing(
        rows,
        page.limit,
        |r| r.entitlement.id.clone(),
        |r| EntitlementView::new(&r, today),
    )))
}

async fn act(
    state: &AppState,
    principal: &Principal,
    keyed: &Keyed,
    id: &ContractId,
    action: ContractAction,
    renewal_number: Option<String>,
) -> ApiResult<Response> {
    visible_contract(state, principal, id).await?;
    principal.require(Permission::Manage)?;
    let today = state.clock.today();
    let status = if action == ContractAction::Renew {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let render = move |a: &ContractActed| answer(status, &ContractActionView::new(a, today));
    let request = ContractAct {
        id: id.to_string(),
        action,
        renewal_number,
    };
    let audit = principal.audit();
    let acted = state
        .store
        .contract_action(&request, at(state, &audit), keyed.answering(render))
        .await?;
    Ok(send(&render(&acted)))
}

macro_rules! contract_action {
    ($name:ident, $action:expr, $path:literal, $op:literal, $what:literal) => {
        #[utoipa::path(post, path = $path, operation_id = $op, tag = "contracts", params(("id" = String, Path)),
            request_body(content = Option<NoFields>, description = "No body, or `{}`."),
            responses((status = 200, description = $what, body = ContractActionView), (status = 404, body = ErrorBody), (status = 409, description = "`invalid_transition`", body = ErrorBody)))]
        pub async fn $name(
            State(state): State<AppState>,
            principal: Principal,
            keyed: Keyed,
            PathId(id): PathId<ContractId>,
            body: Bytes,
        ) -> ApiResult<Response> {
            visible_contract(&state, &principal, &id).await?;
            principal.require(Permission::Manage)?;
            parse_optional_json::<NoFields>(&body)?;
            act(&state, &principal, &keyed, &id, $action, None).await
        }
    };
}

contract_action!(
    activate,
    ContractAction::Activate,
    "/v1/contracts/{id}/activate",
    "activate_contract",
    "Activated: draft → active. Its entitlements are not activated (activate them, or instantiate with `activate`)."
);
contract_action!(
    suspend,
    ContractAction::Suspend,
    "/v1/contracts/{id}/suspend",
    "suspend_contract",
    "Suspended: its waiting and active entitlements become suspended and refuse usage (409 `entitlement_suspended`); `entitlements` lists them."
);
contract_action!(
    resume,
    ContractAction::Resume,
    "/v1/contracts/{id}/resume",
    "resume_contract",
    "Resumed: its suspended entitlements go back to what their dates say; `entitlements` lists them."
);
contract_action!(
    cancel,
    ContractAction::Cancel,
    "/v1/contracts/{id}/cancel",
    "cancel_contract",
    "Cancelled: every entitlement not yet expired or cancelled is cancelled, with its event; `entitlements` lists them."
);

#[utoipa::path(post, path = "/v1/contracts/{id}/renew", operation_id = "renew_contract", tag = "contracts", params(("id" = String, Path)),
    request_body(content = Option<RenewContract>, description = "No body, `{}`, or the renewal's `number`."),
    responses((status = 201, description = "The new contract (a draft from the day after the old one ends, as long), its lines, and a draft renewal of each entitlement not cancelled (`predecessor_id` = the old one), made in one transaction.", body = ContractActionView),
        (status = 404, body = ErrorBody), (status = 409, description = "`invalid_transition`, `contract_already_renewed`, `contract_number_taken`", body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn renew(
    State(state): State<AppState>,
    principal: Principal,
    keyed: Keyed,
    PathId(id): PathId<ContractId>,
    body: Bytes,
) -> ApiResult<Response> {
    visible_contract(&state, &principal, &id).await?;
    principal.require(Permission::Manage)?;
    let input: RenewContract = parse_optional_json(&body)?;
    let number = crate::inputs::short_text("number", &input.number)?;
    act(
        &state,
        &principal,
        &keyed,
        &id,
        ContractAction::Renew,
        number,
    )
    .await
}

#[utoipa::path(post, path = "/v1/entitlements/{id}/make-default", operation_id = "make_default_entitlement", tag = "entitlements", params(("id" = String, Path)),
    request_body(content = Option<NoFields>, description = "No body, or `{}`."),
    responses((status = 200, description = "Now its account's default; the previous default stopped being one in the same transaction.", body = EntitlementView),
        (status = 404, body = ErrorBody), (status = 409, description = "`invalid_transition`: expired or cancelled", body = ErrorBody)))]
pub async fn make_default(
    State(state): State<AppState>,
    principal: Principal,
    keyed: Keyed,
    PathId(id): PathId<EntitlementId>,
    body: Bytes,
) -> ApiResult<Response> {
    visible_entitlement(&state, &principal, &id).await?;
    principal.require(Permission::Manage)?;
    parse_optional_json::<NoFields>(&body)?;
    let today = state.clock.today();
    let render =
        move |r: &EntitlementRecord| answer(StatusCode::OK, &EntitlementView::new(r, today));
    let audit = principal.audit();
    let record = state
        .store
        .make_default(&id, at(&state, &audit), keyed.answering(render))
        .await?;
    Ok(send(&render(&record)))
}
