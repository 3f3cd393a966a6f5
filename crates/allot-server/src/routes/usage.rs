//! Usage, adjustments and reservations: everything that changes `used` or
//! `held` goes through the write path, with its idempotency key recorded
//! in the same transaction.

use allot_core::batch::Op;
use allot_core::decide::{Change, Reason};
use allot_store::ids::{EntitlementId, ReservationId, TypedId};
use allot_store::plan::{Command, Outcome, Render};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;

use super::{answer_of, fetch, listing, Submission};
use crate::auth::{Permission, Principal};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{parse_json, parse_optional_json, PathId, Query};
use crate::inputs::{
    short_text, CommitReservation, CreateReservation, NoFields, PostAdjustment, RecordUsage,
    UsageKind,
};
use crate::routes::entitlements::visible_entitlement;
use crate::state::AppState;
use crate::views::{
    EventView, LedgerEntryView, Listing, ReservationAnswer, ReservationView, UsageRecorded,
};

/// The longest a hold may last: a week.
const MAX_HOLD_SECONDS: u32 = 7 * 24 * 3600;

/// A use or an adjustment, as answered (201) and stored under its key.
pub(crate) const USAGE_ANSWER: Render = Render(|o| answer_of(StatusCode::CREATED, recorded(o)));
/// A new hold (201), and a committed or released one (200).
const HOLD_ANSWER: Render = Render(|o| answer_of(StatusCode::CREATED, reservation_answer(o)));
const SETTLED_ANSWER: Render = Render(|o| answer_of(StatusCode::OK, reservation_answer(o)));

/// Turns an outcome into the usage answer, or the refusal it carries.
fn recorded(outcome: Outcome) -> ApiResult<UsageRecorded> {
    match outcome {
        Outcome::Applied {
            entries,
            mut balances,
            warnings,
            ..
        } => {
            let balance = balances
                .pop()
                .ok_or_else(|| ApiError::Internal("no balance in outcome".into()))?;
            Ok(UsageRecorded {
                entry: entries.into_iter().next().map(Into::into),
                balance: balance.into(),
                warnings,
            })
        }
        other => Err(ApiError::from_outcome(other)),
    }
}

/// To a customer, another account's entitlement does not exist: 404 before
/// any permission check. Others skip the read on the hot path.
async fn customer_sees(
    state: &AppState,
    principal: &crate::auth::Principal,
    id: &EntitlementId,
) -> ApiResult<()> {
    if principal.confined_to().is_some() {
        visible_entitlement(state, principal, id).await?;
    }
    Ok(())
}

#[utoipa::path(post, path = "/v1/entitlements/{id}/usage", operation_id = "record_usage", tag = "usage", params(("id" = String, Path),
        ("Idempotency-Key" = Option<String>, Header, description = "Same key and body: the first answer again")),
    request_body = RecordUsage,
    responses((status = 201, body = UsageRecorded), (status = 409, description = "entitlement_exhausted: nothing was recorded", body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn record(
    State(state): State<AppState>,
    PathId(id): PathId<EntitlementId>,
    request: Submission,
) -> ApiResult<Response> {
    customer_sees(&state, &request.principal, &id).await?;
    request.principal.require(Permission::RecordUsage)?;
    let input: RecordUsage = parse_json(&request.body)?;
    let reference = short_text("reference", &input.reference)?;
    let channel = short_text("channel", &input.channel)?;
    let reason = match input.kind {
        UsageKind::Usage => Reason::Usage,
        UsageKind::Visit => Reason::Visit,
    };
    let op = Op {
        entitlement_id: id.into_string(),
        change: Change::Consume {
            quantity: input.quantity,
            channel,
            reason,
            reference,
        },
    };
    request
        .submit(&state, Command::Ledger { ops: vec![op] }, USAGE_ANSWER)
        .await
}

#[utoipa::path(post, path = "/v1/entitlements/{id}/adjustments", operation_id = "post_adjustment", tag = "usage", params(("id" = String, Path),
        ("Idempotency-Key" = Option<String>, Header)),
    request_body = PostAdjustment,
    responses((status = 201, body = UsageRecorded), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn adjust(
    State(state): State<AppState>,
    PathId(id): PathId<EntitlementId>,
    request: Submission,
) -> ApiResult<Response> {
    visible_entitlement(&state, &request.principal, &id).await?;
    request.principal.require(Permission::Adjust)?;
    let input: PostAdjustment = parse_json(&request.body)?;
    let reason = crate::inputs::text("reason", &input.reason, crate::inputs::MAX_TEXT)?;
    let channel = short_text("channel", &input.channel)?;
    let op = Op {
        entitlement_id: id.into_string(),
        change: Change::Adjust {
            quantity: input.quantity,
            channel,
            reference: Some(reason),
        },
    };
    request
        .submit(&state, Command::Ledger { ops: vec![op] }, USAGE_ANSWER)
        .await
}

#[utoipa::path(get, path = "/v1/entitlements/{id}/usage", operation_id = "list_usage", tag = "usage",
    params(("id" = String, Path), crate::extract::PageParams),
    responses((status = 200, body = Listing<LedgerEntryView>), (status = 404, body = ErrorBody)))]
pub async fn ledger(
    State(state): State<AppState>,
    principal: Principal,
    PathId(id): PathId<EntitlementId>,
    query: Query,
) -> ApiResult<Json<Listing<LedgerEntryView>>> {
    principal.require(Permission::Read)?;
    let page = query.page()?;
    visible_entitlement(&state, &principal, &id).await?;
    let rows = state.store.list_ledger(&id, &fetch(&page)).await?;
    Ok(Json(listing(
        rows,
        page.limit,
        |e| e.id.clone(),
        LedgerEntryView::from,
    )))
}

fn reservation_answer(outcome: Outcome) -> ApiResult<ReservationAnswer> {
    match outcome {
        Outcome::Applied {
            entries,
            mut balances,
            warnings,
            reservation,
            ..
        } => Ok(ReservationAnswer {
            reservation: (*reservation
                .ok_or_else(|| ApiError::Internal("no reservation in outcome".into()))?)
            .into(),
            balance: balances
                .pop()
                .ok_or_else(|| ApiError::Internal("no balance in outcome".into()))?
                .into(),
            entry: entries.into_iter().next().map(Into::into),
            warnings,
        }),
        other => Err(ApiError::from_outcome(other)),
    }
}

#[utoipa::path(post, path = "/v1/entitlements/{id}/reservations", operation_id = "create_reservation", tag = "reservations", params(("id" = String, Path),
        ("Idempotency-Key" = Option<String>, Header)),
    request_body = CreateReservation,
    responses((status = 201, body = ReservationAnswer), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn hold(
    State(state): State<AppState>,
    PathId(id): PathId<EntitlementId>,
    request: Submission,
) -> ApiResult<Response> {
    customer_sees(&state, &request.principal, &id).await?;
    request.principal.require(Permission::RecordUsage)?;
    let input: CreateReservation = parse_json(&request.body)?;
    if input.timeout_seconds == 0 || input.timeout_seconds > MAX_HOLD_SECONDS {
        return Err(ApiError::field(
            "timeout_seconds",
            format!("must be from 1 to {MAX_HOLD_SECONDS}"),
        ));
    }
    let now = state.clock.now();
    let command = Command::Hold {
        reservation_id: ReservationId::new(now).into_string(),
        entitlement_id: id.into_string(),
        quantity: input.quantity,
        channel: short_text("channel", &input.channel)?,
        reference: short_text("reference", &input.reference)?,
        expires_at: now + chrono::Duration::seconds(input.timeout_seconds as i64),
    };
    request.submit(&state, command, HOLD_ANSWER).await
}

/// Commits or releases a hold: the caller must record usage, the id must be a reservation's.
async fn settle(
    state: &AppState,
    submission: Submission,
    id: &ReservationId,
    command: Command,
) -> ApiResult<Response> {
    if submission.principal.confined_to().is_some() {
        let held = state.store.get_reservation(id).await?;
        let entitlement = held.and_then(|r| EntitlementId::parse(&r.entitlement_id));
        let seen = match entitlement {
            Some(entitlement) => customer_sees(state, &submission.principal, &entitlement).await,
            None => Err(ApiError::not_found("reservation", id)),
        };
        seen.map_err(|_| ApiError::not_found("reservation", id))?;
    }
    submission.principal.require(Permission::RecordUsage)?;
    submission.submit(state, command, SETTLED_ANSWER).await
}

#[utoipa::path(post, path = "/v1/reservations/{id}/commit", operation_id = "commit_reservation", tag = "reservations", params(("id" = String, Path),
        ("Idempotency-Key" = Option<String>, Header)),
    request_body = CommitReservation,
    responses((status = 200, body = ReservationAnswer), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn commit(
    State(state): State<AppState>,
    PathId(id): PathId<ReservationId>,
    request: Submission,
) -> ApiResult<Response> {
    let input: CommitReservation = parse_optional_json(&request.body)?;
    let command = Command::Commit {
        reservation_id: id.to_string(),
        actual: input.quantity,
    };
    settle(&state, request, &id, command).await
}

#[utoipa::path(post, path = "/v1/reservations/{id}/release", operation_id = "release_reservation", tag = "reservations", params(("id" = String, Path),
        ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = ReservationAnswer), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn release(
    State(state): State<AppState>,
    PathId(id): PathId<ReservationId>,
    request: Submission,
) -> ApiResult<Response> {
    let NoFields {} = parse_optional_json(&request.body)?;
    let command = Command::Release {
        reservation_id: id.to_string(),
    };
    settle(&state, request, &id, command).await
}

#[utoipa::path(get, path = "/v1/reservations/{id}", operation_id = "get_reservation", tag = "reservations", params(("id" = String, Path)),
    responses((status = 200, body = ReservationView), (status = 404, body = ErrorBody)))]
pub async fn get_reservation(
    State(state): State<AppState>,
    principal: Principal,
    PathId(id): PathId<ReservationId>,
) -> ApiResult<Json<ReservationView>> {
    let Some(reservation) = state.store.get_reservation(&id).await? else {
        return Err(ApiError::not_found("reservation", &id));
    };
    if principal.require(Permission::RecordUsage).is_err() {
        principal.require(Permission::Read)?;
    }
    // Customers see holds on their own entitlements only.
    let entitlement = EntitlementId::parse(&reservation.entitlement_id)
        .ok_or_else(|| ApiError::not_found("reservation", &id))?;
    visible_entitlement(&state, &principal, &entitlement)
        .await
        .map_err(|e| match e {
            ApiError::NotFound { .. } => ApiError::not_found("reservation", &id),
            other => other,
        })?;
    Ok(Json(reservation.into()))
}

#[utoipa::path(get, path = "/v1/entitlements/{id}/reservations", operation_id = "list_reservations", tag = "reservations",
    params(("id" = String, Path), crate::extract::PageParams),
    responses((status = 200, description = "The entitlement's reservations, held and settled, in id order.", body = Listing<ReservationView>), (status = 404, body = ErrorBody)))]
pub async fn reservations(
    State(state): State<AppState>,
    principal: Principal,
    PathId(id): PathId<EntitlementId>,
    query: Query,
) -> ApiResult<Json<Listing<ReservationView>>> {
    // Whoever may read one hold (an integration that places them, or a
    // reader) may list an entitlement's.
    if principal.require(Permission::RecordUsage).is_err() {
        principal.require(Permission::Read)?;
    }
    let page = query.page()?;
    visible_entitlement(&state, &principal, &id).await?;
    let rows = state.store.list_reservations(&id, &fetch(&page)).await?;
    Ok(Json(listing(
        rows,
        page.limit,
        |r| r.id.clone(),
        ReservationView::from,
    )))
}

#[utoipa::path(get, path = "/v1/events", operation_id = "list_events", tag = "events",
    params(("entitlement_id" = Option<String>, Query), crate::extract::PageParams),
    responses((status = 200, body = Listing<EventView>)))]
pub async fn events(
    State(state): State<AppState>,
    principal: Principal,
    query: Query,
) -> ApiResult<Json<Listing<EventView>>> {
    principal.require(Permission::ReadEvents)?;
    let page = query.page()?;
    let rows = state
        .store
        .list_events(query.get("entitlement_id"), &fetch(&page))
        .await?;
    Ok(Json(listing(
        rows,
        page.limit,
        |e| e.id.clone(),
        EventView::from,
    )))
}
