//! Entitlement templates (create, read, edit, delete, instantiate) and the
//! jobs a large instantiation runs as. A template gives entitlements their
//! terms when they are made; editing it later changes none of them.

use allot_store::contracts::{EntitlementTemplate, Instantiation, Job, JobStatus, MAX_INSTANTIATE};
use allot_store::ids::{ContractId, ContractLineId, JobId, ProductId, TemplateId, TypedId};
use allot_store::model::EntitlementRecord;
use allot_store::StoredAnswer;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use serde_json::{json, Value};

use super::contracts::at;
use super::{fetch, listing};
use crate::auth::{Permission, Principal};
use crate::contracts::inputs::{InstantiateInput, TemplateInput};
use crate::contracts::views::{InstantiatedView, JobView, TemplateView};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{parse_json, ApiJson, PathId, Query};
use crate::idempotency::{answer, send, Keyed};
use crate::state::AppState;
use crate::views::{EntitlementView, Listing};

/// Above this many accounts an instantiation answers a job (202).
pub const SYNC_INSTANTIATE: usize = 100;
/// 10,000 account ids of up to 64 characters, quoted, with room to spare.
pub const INSTANTIATE_BODY_LIMIT: usize = 1024 * 1024;
/// Accounts checked per progress step of a job.
const JOB_CHUNK: usize = 500;

async fn check_products(state: &AppState, ids: &[String]) -> ApiResult<()> {
    for (i, id) in ids.iter().enumerate() {
        let found = match ProductId::parse(id) {
            Some(id) => state.store.get_product(&id).await?,
            None => None,
        };
        if found.is_none() {
            return Err(ApiError::field(
                &format!("product_ids[{i}]"),
                "product does not exist",
            ));
        }
    }
    Ok(())
}

async fn existing_template(state: &AppState, id: &TemplateId) -> ApiResult<EntitlementTemplate> {
    state
        .store
        .get_template(id)
        .await?
        .ok_or_else(|| ApiError::not_found("entitlement template", id))
}

#[utoipa::path(post, path = "/v1/entitlement-templates", operation_id = "create_entitlement_template", tag = "templates", request_body = TemplateInput,
    responses((status = 201, body = TemplateView), (status = 409, description = "`template_name_taken`", body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    keyed: Keyed,
    ApiJson(body): ApiJson<TemplateInput>,
) -> ApiResult<Response> {
    principal.require(Permission::Manage)?;
    let terms = body.into_terms(state.clock.today())?;
    check_products(&state, &terms.product_ids).await?;
    let now = allot_store::clock::stored_time(state.clock.now());
    let template = EntitlementTemplate {
        id: TemplateId::new(now).into_string(),
        terms,
        created_at: now,
        updated_at: now,
    };
    let render = |t: &EntitlementTemplate| answer(StatusCode::CREATED, &TemplateView::from(t));
    state
        .store
        .insert_template(&template, &principal.audit(), keyed.answering(render))
        .await?;
    Ok(send(&render(&template)))
}

#[utoipa::path(get, path = "/v1/entitlement-templates", operation_id = "list_entitlement_templates", tag = "templates",
    params(crate::extract::PageParams),
    responses((status = 200, body = Listing<TemplateView>), (status = 422, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    query: Query,
) -> ApiResult<Json<Listing<TemplateView>>> {
    principal.require(Permission::ReadTemplates)?;
    let page = query.page()?;
    let rows = state.store.list_templates(&fetch(&page)).await?;
    Ok(Json(listing(
        rows,
        page.limit,
        |t| t.id.clone(),
        |t| TemplateView::from(&t),
    )))
}

#[utoipa::path(get, path = "/v1/entitlement-templates/{id}", operation_id = "get_entitlement_template", tag = "templates", params(("id" = String, Path)),
    responses((status = 200, body = TemplateView), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    principal: Principal,
    PathId(id): PathId<TemplateId>,
) -> ApiResult<Json<TemplateView>> {
    principal.require(Permission::ReadTemplates)?;
    let template = existing_template(&state, &id).await?;
    Ok(Json(TemplateView::from(&template)))
}

#[utoipa::path(patch, path = "/v1/entitlement-templates/{id}", operation_id = "patch_entitlement_template", tag = "templates", params(("id" = String, Path)),
    request_body(content = Object, description = "Any fields of the create body. Entitlements already made from the template keep their terms."),
    responses((status = 200, body = TemplateView), (status = 404, body = ErrorBody), (status = 409, description = "`template_name_taken`", body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn patch(
    State(state): State<AppState>,
    principal: Principal,
    keyed: Keyed,
    PathId(id): PathId<TemplateId>,
    body: Bytes,
) -> ApiResult<Response> {
    principal.require(Permission::ReadTemplates)?;
    let current = existing_template(&state, &id).await?;
    principal.require(Permission::Manage)?;
    let changes: serde_json::Map<String, Value> = parse_json(&body)?;
    let mut merged = match serde_json::to_value(TemplateInput::from_terms(&current.terms)) {
        Ok(Value::Object(m)) => m,
        _ => return Err(ApiError::Internal("template did not serialize".into())),
    };
    if changes.get("total").is_some_and(|t| !t.is_null()) && !changes.contains_key("unlimited") {
        merged.insert("unlimited".into(), Value::Bool(false));
    }
    if changes.get("unlimited") == Some(&Value::Bool(true)) && !changes.contains_key("total") {
        merged.insert("total".into(), Value::Null);
    }
    merged.extend(changes);
    let input: TemplateInput =
        parse_json(&serde_json::to_vec(&merged).map_err(|e| ApiError::Internal(e.to_string()))?)?;
    let terms = input.into_terms(state.clock.today())?;
    check_products(&state, &terms.product_ids).await?;
    let now = allot_store::clock::stored_time(state.clock.now());
    let template = EntitlementTemplate {
        id: current.id.clone(),
        terms,
        created_at: current.created_at,
        updated_at: now,
    };
    let render = |t: &EntitlementTemplate| answer(StatusCode::OK, &TemplateView::from(t));
    let updated = state
        .store
        .update_template(&template, &principal.audit(), keyed.answering(render))
        .await?;
    Ok(send(&render(&updated)))
}

#[utoipa::path(delete, path = "/v1/entitlement-templates/{id}", operation_id = "delete_entitlement_template", tag = "templates", params(("id" = String, Path)),
    responses((status = 204, description = "Deleted; entitlements made from it keep its id as history."), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    principal: Principal,
    keyed: Keyed,
    PathId(id): PathId<TemplateId>,
) -> ApiResult<Response> {
    principal.require(Permission::ReadTemplates)?;
    existing_template(&state, &id).await?;
    principal.require(Permission::Manage)?;
    let render = |_: &bool| StoredAnswer {
        status: StatusCode::NO_CONTENT.as_u16(),
        body: String::new(),
    };
    let audit = principal.audit();
    state
        .store
        .delete_template(&id, at(&state, &audit), keyed.answering(render))
        .await?;
    Ok(send(&render(&true)))
}

/// The request as the store takes it; the ids are checked there (a
/// malformed one names nothing, like a missing one).
fn instantiation(
    template: &EntitlementTemplate,
    body: InstantiateInput,
) -> ApiResult<Instantiation> {
    let n = body.account_ids.len();
    if n == 0 || n > MAX_INSTANTIATE {
        return Err(ApiError::field(
            "account_ids",
            format!("must name 1 to {MAX_INSTANTIATE} accounts"),
        ));
    }
    if body
        .contract_id
        .as_deref()
        .is_some_and(|c| ContractId::parse(c).is_none())
    {
        return Err(ApiError::field("contract_id", "contract does not exist"));
    }
    if body
        .contract_line_id
        .as_deref()
        .is_some_and(|l| ContractLineId::parse(l).is_none())
    {
        return Err(ApiError::field(
            "contract_line_id",
            "contract line does not exist",
        ));
    }
    Ok(Instantiation {
        template_id: template.id.clone(),
        account_ids: body.account_ids,
        start_date: body.start_date,
        activate: body.activate,
        contract_id: body.contract_id,
        contract_line_id: body.contract_line_id,
    })
}

#[utoipa::path(post, path = "/v1/entitlement-templates/{id}/instantiate", operation_id = "instantiate_entitlement_template", tag = "templates", params(("id" = String, Path)),
    request_body = InstantiateInput,
    responses((status = 201, description = "Up to 100 accounts: the entitlements made, one per account, all or none.", body = InstantiatedView),
        (status = 202, description = "Above 100 accounts: a job; its progress and outcome at `GET /v1/jobs/{id}` (all or none).", body = JobView),
        (status = 404, body = ErrorBody), (status = 409, description = "`contract_closed`", body = ErrorBody), (status = 422, description = "Every bad account named as `account_ids[i]`.", body = ErrorBody)))]
pub async fn instantiate(
    State(state): State<AppState>,
    principal: Principal,
    keyed: Keyed,
    PathId(id): PathId<TemplateId>,
    ApiJson(body): ApiJson<InstantiateInput>,
) -> ApiResult<Response> {
    principal.require(Permission::ReadTemplates)?;
    let template = existing_template(&state, &id).await?;
    principal.require(Permission::Manage)?;
    let request = instantiation(&template, body)?;
    let audit = principal.audit();
    if request.account_ids.len() <= SYNC_INSTANTIATE {
        let today = state.clock.today();
        let render = move |made: &Vec<EntitlementRecord>| {
            let items = made
                .iter()
                .map(|r| EntitlementView::new(r, today))
                .collect();
            answer(StatusCode::CREATED, &InstantiatedView { items })
        };
        let made = state
            .store
            .instantiate_template(&request, at(&state, &audit), keyed.answering(render))
            .await?;
        return Ok(send(&render(&made)));
    }
    let now = allot_store::clock::stored_time(state.clock.now());
    let job = Job {
        id: JobId::new(now).into_string(),
        kind: "template.instantiate".into(),
        status: JobStatus::Running,
        total: request.account_ids.len() as u64,
        done: 0,
        result: None,
        error: None,
        created_at: now,
        updated_at: now,
    };
    let render = |j: &Job| answer(StatusCode::ACCEPTED, &JobView::from(j));
    state
        .store
        .insert_job(&job, &audit, keyed.answering(render))
        .await?;
    tokio::spawn(run_instantiation(
        state.clone(),
        job.clone(),
        request,
        audit,
    ));
    Ok(send(&render(&job)))
}

/// The job of a large instantiation: the accounts checked a chunk at a
/// time (the progress), then every entitlement made in one transaction —
/// which checks everything again under its locks — or none.
async fn run_instantiation(
    state: AppState,
    mut job: Job,
    request: Instantiation,
    audit: allot_store::AuditContext,
) {
    for chunk in request.account_ids.chunks(JOB_CHUNK) {
        if let Err(e) = state.store.existing_accounts(chunk).await {
            tracing::warn!(job = %job.id, error = %e, "instantiation job: account check failed");
            break;
        }
        job.done += chunk.len() as u64;
        // The last step is the write: `done` reaches `total` with the result.
        job.done = job.done.min(job.total.saturating_sub(1));
        job.updated_at = allot_store::clock::stored_time(state.clock.now());
        if let Err(e) = state.store.update_job(&job).await {
            tracing::warn!(job = %job.id, error = %e, "instantiation job: progress not stored");
        }
    }
    let outcome = state
        .store
        .instantiate_template(&request, at(&state, &audit), None)
        .await;
    match outcome {
        Ok(made) => {
            let ids: Vec<&str> = made.iter().map(|r| r.entitlement.id.as_str()).collect();
            job.status = JobStatus::Succeeded;
            job.done = job.total;
            job.result = Some(json!({ "entitlement_ids": ids }));
        }
        Err(e) => {
            let e = ApiError::from(e);
            if e.status().is_server_error() {
                tracing::error!(job = %job.id, error = %e, "instantiation job failed");
            }
            job.status = JobStatus::Failed;
            job.error = Some(e.body());
        }
    }
    job.updated_at = allot_store::clock::stored_time(state.clock.now());
    if let Err(e) = state.store.update_job(&job).await {
        tracing::error!(job = %job.id, error = %e, "instantiation job: outcome not stored");
    }
}

#[utoipa::path(get, path = "/v1/jobs/{id}", operation_id = "get_job", tag = "templates", params(("id" = String, Path)),
    responses((status = 200, body = JobView), (status = 404, body = ErrorBody)))]
pub async fn get_job(
    State(state): State<AppState>,
    principal: Principal,
    PathId(id): PathId<JobId>,
) -> ApiResult<Json<JobView>> {
    principal.require(Permission::Manage)?;
    let job = state
        .store
        .get_job(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("job", &id))?;
    Ok(Json(JobView::from(&job)))
}
