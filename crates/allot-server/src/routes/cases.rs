//! Cases: opening one applies (and uses) an entitlement; resolving,
//! cancelling, reactivating, moving and time entries follow the rules of
//! `allot_core::cases`, all through the write path.

use allot_core::cases::{CaseAction, CaseState, CaseStatus};
use allot_core::matching::{covers, CaseScope};
use allot_store::ids::{CaseId, ContactId, EntitlementId, ProductId, TimeEntryId, TypedId};
use allot_store::model::CaseFilter;
use allot_store::plan::{CaseMatching, CaseRecord, Command, Outcome, Render, TimeNote};
use allot_store::StoredAnswer;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;

use super::parties::visible_account;
use super::{answer_of, fetch, listing, Submission};
use crate::auth::{Permission, Principal};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{parse_json, parse_optional_json, PathId, Query};
use crate::inputs::{short_text, text, LogTime, NoFields, OpenCase, MAX_TEXT};
use crate::state::AppState;
use crate::views::{CaseView, Listing};

/// A case opened or a time entry logged (201), another action on a case
/// (200), a case deleted (204): as answered and stored under the key.
const CREATED_CASE: Render = Render(|o| answer_of(StatusCode::CREATED, case_answer(o)));
const CHANGED_CASE: Render = Render(|o| answer_of(StatusCode::OK, case_answer(o)));
const DELETED_CASE: Render = Render(|o| match case_answer(o) {
    Ok(_) => StoredAnswer {
        status: StatusCode::NO_CONTENT.as_u16(),
        body: String::new(),
    },
    Err(e) => answer_of::<()>(StatusCode::NO_CONTENT, Err(e)),
});

/// The case answer from a write-path outcome.
fn case_answer(outcome: Outcome) -> ApiResult<CaseView> {
    match outcome {
        Outcome::Applied {
            balances,
            warnings,
            case: Some(case),
            ..
        } => {
            let balance = case
                .state
                .entitlement_id
                .as_ref()
                .and_then(|id| balances.into_iter().find(|b| &b.entitlement_id == id))
                .map(Into::into);
            Ok(CaseView::new(*case, balance, warnings))
        }
        other => Err(ApiError::from_outcome(other)),
    }
}

/// What a case is about, for checking that an entitlement covers it.
struct CaseAbout<'a> {
    account_id: &'a str,
    contact_id: Option<&'a str>,
    product_id: Option<&'a str>,
    channel: Option<&'a str>,
}

/// An entitlement named for a case must exist and cover it: else a 422 on
/// the field of the first rule it fails.
async fn check_covers(
    state: &AppState,
    what: &CaseAbout<'_>,
    entitlement_id: &str,
) -> ApiResult<()> {
    let record = match EntitlementId::parse(entitlement_id) {
        Some(id) => state.store.get_entitlement(&id).await?,
        None => None,
    };
    let record =
        record.ok_or_else(|| ApiError::field("entitlement_id", "entitlement does not exist"))?;
    let ancestors = state.store.account_ancestors(what.account_id).await?;
    let scope = CaseScope {
        account_id: what.account_id,
        ancestors: &ancestors,
        contact_id: what.contact_id,
        product_id: what.product_id,
        channel: what.channel,
    };
    covers(&record.entitlement, &scope, state.clock.today()).map_err(|rule| {
        ApiError::field(rule.field(), format!("entitlement {entitlement_id} {rule}"))
    })
}

/// A case the caller may see, not deleted.
async fn visible_case(
    state: &AppState,
    principal: &Principal,
    id: &CaseId,
) -> ApiResult<CaseRecord> {
    match state.store.get_case(id).await? {
        Some(c) if c.deleted_at.is_none() && principal.sees_account(&c.account_id) => Ok(c),
        _ => Err(ApiError::not_found("case", id)),
    }
}

/// The live balance of a case's entitlement, for reads.
async fn live_balance(
    state: &AppState,
    case: &CaseRecord,
) -> ApiResult<Option<crate::views::BalanceView>> {
    let Some(id) = &case.state.entitlement_id else {
        return Ok(None);
    };
    let record = state.store.get_entitlement(id).await?;
    Ok(record.map(|r| {
        allot_core::balance::balance(&r.entitlement, &r.counters, state.clock.today()).into()
    }))
}

#[utoipa::path(post, path = "/v1/cases", operation_id = "open_case", tag = "cases", request_body = OpenCase,
    params(("Idempotency-Key" = Option<String>, Header)),
    responses((status = 201, body = CaseView), (status = 409, description = "entitlement_exhausted: the case was not opened", body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn open(State(state): State<AppState>, request: Submission) -> ApiResult<Response> {
    request.principal.require(Permission::OpenCases)?;
    let input: OpenCase = parse_json(&request.body)?;
    let title = text("title", &input.title, MAX_TEXT)?;
    let channel = short_text("channel", &input.channel)?;
    let account = visible_account(&state, &request.principal, &input.account_id)
        .await
        .map_err(|e| match e {
            // Only a missing (or unseen) account is the caller's mistake; a
            // database fault must stay a fault the client retries.
            ApiError::NotFound { .. } => ApiError::field("account_id", "account does not exist"),
            other => other,
        })?;
    if let Some(contact) = &input.contact_id {
        let found = match ContactId::parse(contact) {
            Some(id) => state.store.get_contact(&id).await?,
            None => None,
        };
        if found.is_none_or(|c| c.account_id != account.id) {
            return Err(ApiError::field(
                "contact_id",
                "is not a contact of this account",
            ));
        }
    }
    if let Some(product) = &input.product_id {
        let found = match ProductId::parse(product) {
            Some(id) => state.store.get_product(&id).await?,
            None => None,
        };
        if found.is_none() {
            return Err(ApiError::field("product_id", "product does not exist"));
        }
    }
    let (entitlement_id, matching) = match &input.entitlement_id {
        Some(id) => {
            let what = CaseAbout {
                account_id: &account.id,
                contact_id: input.contact_id.as_deref(),
                product_id: input.product_id.as_deref(),
                channel: channel.as_deref(),
            };
            check_covers(&state, &what, id).await?;
            (Some(id.clone()), CaseMatching::Given)
        }
        // Chosen inside the write path, under the locks of the candidates.
        None => {
            let ancestors = state.store.account_ancestors(&account.id).await?;
            (None, CaseMatching::Best { ancestors })
        }
    };
    let now = state.clock.now();
    let id = CaseId::new(now).into_string();
    let record = CaseRecord {
        state: CaseState::new(id, entitlement_id, channel, input.do_not_decrement),
        account_id: account.id,
        contact_id: input.contact_id,
        product_id: input.product_id,
        title,
        time_notes: Vec::new(),
        created_at: now,
        updated_at: now,
        deleted_at: None,
    };
    let command = Command::OpenCase {
        case: Box::new(record),
        matching,
    };
    request.submit(&state, command, CREATED_CASE).await
}

#[utoipa::path(get, path = "/v1/cases/{id}", operation_id = "get_case", tag = "cases", params(("id" = String, Path)),
    responses((status = 200, body = CaseView), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    principal: Principal,
    PathId(id): PathId<CaseId>,
) -> ApiResult<Json<CaseView>> {
    principal.require(Permission::Read)?;
    let case = visible_case(&state, &principal, &id).await?;
    let balance = live_balance(&state, &case).await?;
    Ok(Json(CaseView::new(case, balance, Vec::new())))
}

#[utoipa::path(get, path = "/v1/cases", operation_id = "list_cases", tag = "cases",
    params(("account_id" = Option<String>, Query), ("entitlement_id" = Option<String>, Query), ("status" = Option<crate::inputs::schemas::CaseStatusName>, Query),
        crate::extract::PageParams),
    responses((status = 200, body = Listing<CaseView>)))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    query: Query,
) -> ApiResult<Json<Listing<CaseView>>> {
    principal.require(Permission::Read)?;
    let page = query.page()?;
    let mut filter =
        CaseFilter {
            account_id: query.get("account_id").map(str::to_string),
            entitlement_id: query.get("entitlement_id").map(str::to_string),
            status: match query.get("status") {
                Some(s) => Some(CaseStatus::parse(s).ok_or_else(|| {
                    ApiError::field("status", "must be open, resolved or cancelled")
                })?),
                None => None,
            },
        };
    if principal.confined_to().is_some() {
        if filter
            .account_id
            .as_ref()
            .is_some_and(|a| !principal.sees_account(a))
        {
            return Ok(Json(Listing {
                items: vec![],
                next_cursor: None,
            }));
        }
        filter.account_id = principal.account_id.clone();
    }
    let rows = state.store.list_cases(&filter, &fetch(&page)).await?;
    Ok(Json(listing(
        rows,
        page.limit,
        |c| c.state.id.clone(),
        |c| CaseView::new(c, None, Vec::new()),
    )))
}

/// Submits an action on a case the caller may work on.
async fn act(
    state: &AppState,
    request: Submission,
    id: &CaseId,
    action: CaseAction,
    note: Option<TimeNote>,
    render: Render,
) -> ApiResult<Response> {
    visible_case(state, &request.principal, id).await?;
    request.principal.require(Permission::WorkCases)?;
    let command = Command::Case {
        case_id: id.to_string(),
        action,
        note,
    };
    request.submit(state, command, render).await
}

macro_rules! case_action {
    ($name:ident, $operation_id:literal, $path:literal, $action:expr, $doc:literal) => {
        #[doc = $doc]
        #[utoipa::path(post, path = $path, operation_id = $operation_id, tag = "cases", params(("id" = String, Path), ("Idempotency-Key" = Option<String>, Header)),
            responses((status = 200, body = CaseView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
        pub async fn $name(
            State(state): State<AppState>,
            PathId(id): PathId<CaseId>,
            request: Submission,
        ) -> ApiResult<Response> {
            let NoFields {} = parse_optional_json(&request.body)?;
            act(&state, request, &id, $action, None, CHANGED_CASE).await
        }
    };
}

case_action!(
    resolve,
    "resolve_case",
    "/v1/cases/{id}/resolve",
    CaseAction::Resolve,
    "Resolves a case (uses it, with decrement on resolution)."
);
case_action!(
    cancel,
    "cancel_case",
    "/v1/cases/{id}/cancel",
    CaseAction::Cancel,
    "Cancels a case (gives a case used on creation back)."
);
case_action!(
    reactivate,
    "reactivate_case",
    "/v1/cases/{id}/reactivate",
    CaseAction::Reactivate,
    "Reopens a resolved or cancelled case."
);

#[utoipa::path(delete, path = "/v1/cases/{id}", operation_id = "delete_case", tag = "cases", params(("id" = String, Path)),
    responses((status = 204, description = "Deleted; what it used stays used"), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    PathId(id): PathId<CaseId>,
    request: Submission,
) -> ApiResult<Response> {
    act(&state, request, &id, CaseAction::Delete, None, DELETED_CASE).await
}

#[utoipa::path(patch, path = "/v1/cases/{id}", operation_id = "patch_case", tag = "cases", params(("id" = String, Path)),
    request_body = crate::inputs::PatchCase,
    responses((status = 200, body = CaseView), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn patch(
    State(state): State<AppState>,
    PathId(id): PathId<CaseId>,
    request: Submission,
) -> ApiResult<Response> {
    let fields: serde_json::Map<String, serde_json::Value> = parse_json(&request.body)?;
    if let Some(unknown) = fields.keys().find(|k| *k != "entitlement_id") {
        return Err(ApiError::field(
            unknown,
            "cannot be changed; only entitlement_id",
        ));
    }
    let target = match fields.get("entitlement_id") {
        None => return Err(ApiError::field("entitlement_id", "is required")),
        Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(s)) => Some(s.clone()),
        Some(_) => {
            return Err(ApiError::field(
                "entitlement_id",
                "must be a string or null",
            ))
        }
    };
    let case = visible_case(&state, &request.principal, &id).await?;
    request.principal.require(Permission::WorkCases)?;
    if let Some(to) = &target {
        let what = CaseAbout {
            account_id: &case.account_id,
            contact_id: case.contact_id.as_deref(),
            product_id: case.product_id.as_deref(),
            channel: case.state.channel.as_deref(),
        };
        check_covers(&state, &what, to).await?;
    }
    let action = CaseAction::Move { to: target };
    act(&state, request, &id, action, None, CHANGED_CASE).await
}

#[utoipa::path(post, path = "/v1/cases/{id}/time-entries", operation_id = "log_time", tag = "cases", params(("id" = String, Path), ("Idempotency-Key" = Option<String>, Header)),
    request_body = LogTime,
    responses((status = 201, body = CaseView), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn log_time(
    State(state): State<AppState>,
    PathId(id): PathId<CaseId>,
    request: Submission,
) -> ApiResult<Response> {
    let input: LogTime = parse_json(&request.body)?;
    let hours = input.hours()?;
    let note = short_text("note", &input.note)?;
    let now = state.clock.now();
    let entry_id = TimeEntryId::new(now).into_string();
    let time_note = TimeNote {
        entry_id: entry_id.clone(),
        actor: request.principal.key_id.clone(),
        at: now,
        note,
    };
    let action = CaseAction::LogTime { entry_id, hours };
    act(&state, request, &id, action, Some(time_note), CREATED_CASE).await
}

#[utoipa::path(delete, path = "/v1/cases/{id}/time-entries/{entry_id}", operation_id = "delete_time_entry", tag = "cases",
    params(("id" = String, Path), ("entry_id" = String, Path)),
    responses((status = 200, body = CaseView), (status = 404, body = ErrorBody)))]
pub async fn delete_time(
    State(state): State<AppState>,
    Path((id, entry_id)): Path<(String, String)>,
    request: Submission,
) -> ApiResult<Response> {
    let id = CaseId::parse(&id).ok_or_else(|| ApiError::not_found(CaseId::NOUN, &id))?;
    let action = CaseAction::DeleteTime { entry_id };
    act(&state, request, &id, action, None, CHANGED_CASE).await
}
