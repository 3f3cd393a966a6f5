//! The contract, template and job sequences, written once for every
//! backend: lock the contract (then its entitlements, in id order), decide
//! with `allot_core::contracts` / `templates` / `lifecycle`, write the
//! contract rows, then the shared rows (entitlements, transitions, events,
//! audit entries, the request's answer), commit.

use std::collections::{BTreeMap, BTreeSet};

use allot_core::contracts::{
    check_contract_dates, check_inside, contract_transition, effective_contract_status, flow_down,
    flow_event, renewal_dates, renewed_entitlement_terms, ContractAction, ContractNotAllowed,
    ContractStatus,
};
use allot_core::entitlement::{Entitlement, Status};
use allot_core::events::EventKind;
use allot_core::invalid::{FieldError, Invalid};
use allot_core::lifecycle::{self, effective_status, event_for, Action};
use allot_core::templates::{terms_for, Placement};
use allot_core::terms::validate_terms;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use serde_json::json;

use crate::answer::Answering;
use crate::audit::{snapshot, AuditContext, AuditEntry};
use crate::backend::Changes;
use crate::clock::stored_time;
use crate::error::StoreError;
use crate::ids::{ContractId, ContractLineId, EntitlementId};
use crate::model::EntitlementRecord;
use crate::sequences::{event, fresh_record, transition_row};

use super::{
    Contract, ContractAct, ContractActed, ContractChanges, ContractLine, ContractTx,
    EntitlementTemplate, Instantiation, Job, Moment, MAX_INSTANTIATE,
};

/// Most field errors one refusal lists (a file of 10,000 bad ids names the
/// first ones).
const MAX_ERRORS: usize = 100;

/// Writes the contract rows, then the shared rows and the answer (if the
/// request has a key), and commits.
async fn finish<T: ContractTx, R>(
    tx: T,
    contracts: ContractChanges,
    mut changes: Changes,
    answer: Option<&Answering<R>>,
    result: &R,
    now: DateTime<Utc>,
) -> Result<(), T::Error> {
    tx.write_contracts(&contracts).await?;
    changes.answers.extend(answer.map(|a| a.write(result)));
    tx.write(&changes, now).await?;
    tx.commit().await
}

fn entry<B: Serialize, A: Serialize>(
    ctx: &AuditContext,
    action: &str,
    (kind, id): (&str, &str),
    before: Option<&B>,
    after: &A,
    at: DateTime<Utc>,
) -> AuditEntry {
    AuditEntry::new(
        ctx,
        action,
        kind,
        id,
        before.and_then(snapshot),
        snapshot(after),
        at,
    )
}

fn invalid<E: From<StoreError>>(field: &str, message: impl Into<String>) -> E {
    StoreError::Invalid(Invalid::field(field, message)).into()
}

fn conflict<E: From<StoreError>>(code: &'static str, message: String) -> E {
    StoreError::Conflict { code, message }.into()
}

fn not_allowed<E: From<StoreError>>(n: ContractNotAllowed) -> E {
    conflict("invalid_transition", n.to_string())
}

async fn lock_contract<T: ContractTx>(tx: &T, id: &str) -> Result<Contract, T::Error> {
    tx.lock_contract(id)
        .await?
        .ok_or_else(|| StoreError::not_found("contract", id).into())
}

/// A new contract: its account exists, its number is free, its dates hold.
pub async fn insert_contract<T: ContractTx>(
    tx: T,
    contract: &Contract,
    ctx: &AuditContext,
    answer: Option<&Answering<Contract>>,
) -> Result<(), T::Error> {
    check_contract_dates(contract.start_date, contract.end_date).map_err(StoreError::Invalid)?;
    let account = BTreeSet::from([contract.account_id.clone()]);
    if tx.existing_accounts(&account).await?.is_empty() {
        return Err(invalid("account_id", "account does not exist"));
    }
    if tx.contract_number_taken(&contract.number).await? {
        return Err(number_taken(&contract.number));
    }
    let now = stored_time(contract.created_at);
    let audit = entry::<(), _>(
        ctx,
        "contract.create",
        ("contract", &contract.id),
        None,
        contract,
        now,
    );
    let rows = ContractChanges {
        contracts: vec![contract.clone()],
        ..ContractChanges::default()
    };
    let changes = Changes {
        audit: vec![audit],
        ..Changes::default()
    };
    finish(tx, rows, changes, answer, contract, now).await
}

fn number_taken<E: From<StoreError>>(number: &str) -> E {
    conflict(
        "contract_number_taken",
        format!("a contract numbered {number} exists"),
    )
}

/// A new line under the contract's lock: the contract is open, the dates
/// are inside its own, the product and the template exist.
pub async fn insert_contract_line<T: ContractTx>(
    tx: T,
    line: &ContractLine,
    at: Moment<'_>,
    answer: Option<&Answering<ContractLine>>,
) -> Result<ContractLine, T::Error> {
    let now = stored_time(at.now);
    let contract = lock_contract(&tx, &line.contract_id).await?;
    let status = effective_contract_status(contract.status, contract.end_date, at.today);
    if status.is_closed() {
        return Err(closed(&contract, status));
    }
    if line.end_date < line.start_date {
        return Err(invalid("end_date", "must not be before start_date"));
    }
    check_inside(
        (contract.start_date, contract.end_date),
        line.start_date,
        line.end_date,
    )
    .map_err(StoreError::Invalid)?;
    if let Some(product) = &line.product_id {
        let ids = BTreeSet::from([product.clone()]);
        if tx.existing_products(&ids).await?.is_empty() {
            return Err(invalid("product_id", "product does not exist"));
        }
    }
    if let Some(template) = &line.template_id {
        if tx.lock_template(template).await?.is_none() {
            return Err(invalid("template_id", "template does not exist"));
        }
    }
    let audit = entry::<(), _>(
        at.audit,
        "contract_line.create",
        ("contract_line", &line.id),
        None,
        line,
        now,
    );
    let rows = ContractChanges {
        new_lines: vec![line.clone()],
        ..ContractChanges::default()
    };
    let changes = Changes {
        audit: vec![audit],
        ..Changes::default()
    };
    finish(tx, rows, changes, answer, line, now).await?;
    Ok(line.clone())
}

fn closed<E: From<StoreError>>(contract: &Contract, status: ContractStatus) -> E {
    conflict(
        "contract_closed",
        format!("contract {} is {}", contract.id, status.as_str()),
    )
}

/// The entitlements of a contract, locked in id order.
async fn lock_contract_entitlements<T: ContractTx>(
    tx: &T,
    contract_ids: &[&str],
) -> Result<Vec<EntitlementRecord>, T::Error> {
    let mut ids = BTreeSet::new();
    for id in contract_ids {
        ids.extend(tx.contract_entitlement_ids(id).await?);
    }
    tx.lock_entitlements(&ids).await
}

/// Moves the contract's entitlements as `action` flows down to them: the
/// status, a transition, the event and an audit entry each. Returns those
/// it moved.
fn flow(
    changes: &mut Changes,
    records: &[EntitlementRecord],
    action: ContractAction,
    contract_id: &str,
    at: Moment<'_>,
) -> Vec<EntitlementRecord> {
    let now = stored_time(at.now);
    let actor = at.audit.actor.as_str();
    let mut moved = Vec::new();
    let Some(kind) = flow_event(action) else {
        return moved;
    };
    for before in records {
        let e = &before.entitlement;
        if e.terms.contract_id.as_deref() != Some(contract_id) {
            continue;
        }
        let (start, end) = (e.terms.start_date, e.terms.end_date);
        let Some(to) = flow_down(action, e.status, start, end, at.today) else {
            continue;
        };
        let from = effective_status(e.status, start, end, at.today);
        let mut after = before.clone();
        after.entitlement.status = to;
        after.updated_at = now;
        let name = format!("contract.{}", action.as_str());
        changes.entitlements.push(after.entitlement.clone());
        changes
            .transitions
            .push(transition_row(&e.id, from, to, &name, actor, now));
        let data = json!({ "from": from, "to": to, "actor": actor, "contract_id": contract_id });
        changes.events.push(event(kind.as_str(), &e.id, data, now));
        changes.audit.push(entry(
            at.audit,
            &format!("entitlement.{}", action.as_str()),
            ("entitlement", &e.id),
            Some(before),
            &after,
            now,
        ));
        moved.push(after);
    }
    moved
}

/// A client's action on a contract, flowing down to its entitlements, in
/// one transaction.
pub async fn contract_action<T: ContractTx>(
    tx: T,
    act: &ContractAct,
    at: Moment<'_>,
    answer: Option<&Answering<ContractActed>>,
) -> Result<ContractActed, T::Error> {
    let now = stored_time(at.now);
    let before = lock_contract(&tx, &act.id).await?;
    let current = effective_contract_status(before.status, before.end_date, at.today);
    let to = contract_transition(act.action, current).map_err(not_allowed::<T::Error>)?;
    let entitlements = lock_contract_entitlements(&tx, &[&before.id]).await?;
    let mut rows = ContractChanges::default();
    let mut changes = Changes::default();
    let result = if act.action == ContractAction::Renew {
        if let Some(to) = &before.renewed_to {
            return Err(conflict(
                "contract_already_renewed",
                format!("contract {} was renewed as {to}", before.id),
            ));
        }
        let renewal = Renewal {
            number: act.renewal_number.clone(),
            activate: false,
        };
        renew(
            &tx,
            &before,
            &entitlements,
            renewal,
            at,
            (&mut rows, &mut changes),
        )
        .await?
    } else {
        let mut after = before.clone();
        after.status = to;
        after.updated_at = now;
        let moved = flow(&mut changes, &entitlements, act.action, &before.id, at);
        changes.audit.push(entry(
            at.audit,
            &format!("contract.{}", act.action.as_str()),
            ("contract", &before.id),
            Some(&before),
            &after,
            now,
        ));
        rows.contracts.push(after.clone());
        ContractActed {
            contract: after,
            entitlements: moved,
            renewed_from: None,
            lines: Vec::new(),
        }
    };
    finish(tx, rows, changes, answer, &result, now).await?;
    Ok(result)
}

/// How a renewal is made: by a client (a draft, named as asked) or by the
/// expiry of an `auto_renew` contract (activated, named by default).
struct Renewal {
    number: Option<String>,
    activate: bool,
}

/// The renewal of `old`: a new contract from the day after it ends, as
/// long, its lines and a renewal of each entitlement not cancelled, moved
/// by as much, linked to the old ones (`predecessor_id`).
async fn renew<T: ContractTx>(
    tx: &T,
    old: &Contract,
    entitlements: &[EntitlementRecord],
    how: Renewal,
    at: Moment<'_>,
    (rows, changes): (&mut ContractChanges, &mut Changes),
) -> Result<ContractActed, T::Error> {
    let now = stored_time(at.now);
    let actor = at.audit.actor.as_str();
    let (start_date, end_date) = renewal_dates(old.start_date, old.end_date);
    let shift = start_date - old.start_date;
    let number = how
        .number
        .unwrap_or_else(|| format!("{}/{start_date}", old.number));
    if tx.contract_number_taken(&number).await? {
        return Err(number_taken(&number));
    }
    let new_id = ContractId::new(now).into_string();
    let status = if how.activate {
        ContractStatus::Active
    } else {
        ContractStatus::Draft
    };
    let contract = Contract {
        id: new_id.clone(),
        account_id: old.account_id.clone(),
        number,
        name: old.name.clone(),
        start_date,
        end_date,
        auto_renew: old.auto_renew,
        status,
        predecessor_id: Some(old.id.clone()),
        renewed_to: None,
        created_at: now,
        updated_at: now,
    };
    let mut line_ids = BTreeMap::new();
    let mut lines = Vec::new();
    for line in tx.load_contract_lines(&old.id).await? {
        let id = ContractLineId::new(now).into_string();
        line_ids.insert(line.id.clone(), id.clone());
        lines.push(ContractLine {
            id,
            contract_id: new_id.clone(),
            start_date: line.start_date + shift,
            end_date: line.end_date + shift,
            created_at: now,
            ..line
        });
    }
    let mut made = Vec::new();
    for before in entitlements {
        let e = &before.entitlement;
        let current = effective_status(e.status, e.terms.start_date, e.terms.end_date, at.today);
        if current == Status::Cancelled || e.terms.contract_id.as_deref() != Some(&old.id) {
            continue;
        }
        let mut terms = renewed_entitlement_terms(&e.terms, shift);
        terms.contract_id = Some(new_id.clone());
        terms.contract_line_id = e
            .terms
            .contract_line_id
            .as_ref()
            .and_then(|l| line_ids.get(l).cloned());
        let id = EntitlementId::new(now).into_string();
        let mut renewal = Entitlement {
            id: id.clone(),
            terms,
            status: Status::Draft,
            predecessor_id: Some(e.id.clone()),
        };
        changes.transitions.push(transition_row(
            &id,
            Status::Draft,
            Status::Draft,
            "renew",
            actor,
            now,
        ));
        let data = json!({ "renewal_id": id, "contract_id": new_id });
        changes
            .events
            .push(event(EventKind::Renewed.as_str(), &e.id, data, now));
        if how.activate {
            activate(changes, &mut renewal, at);
        }
        changes.new_entitlements.push(renewal.clone());
        let record = fresh_record(renewal, now);
        changes.audit.push(entry(
            at.audit,
            "entitlement.renew",
            ("entitlement", &e.id),
            Some(before),
            &json!({ "renewal": snapshot(&record) }),
            now,
        ));
        made.push(record);
    }
    let old_after = Contract {
        renewed_to: Some(new_id.clone()),
        updated_at: now,
        ..old.clone()
    };
    changes.audit.push(entry(
        at.audit,
        "contract.renew",
        ("contract", &old.id),
        Some(old),
        &json!({ "renewal": snapshot(&contract), "lines": lines.len(), "entitlements": made.len() }),
        now,
    ));
    rows.contracts.push(old_after.clone());
    rows.contracts.push(contract.clone());
    rows.new_lines.extend(lines.iter().cloned());
    Ok(ContractActed {
        contract,
        entitlements: made,
        renewed_from: Some(old_after),
        lines,
    })
}

/// Activates a new draft by its dates, with its transition and event.
fn activate(changes: &mut Changes, entitlement: &mut Entitlement, at: Moment<'_>) {
    let now = stored_time(at.now);
    let t = &entitlement.terms;
    let Ok(to) = lifecycle::transition(
        Action::Activate,
        Status::Draft,
        t.start_date,
        t.end_date,
        at.today,
    ) else {
        return;
    };
    let actor = at.audit.actor.as_str();
    changes.transitions.push(transition_row(
        &entitlement.id,
        Status::Draft,
        to,
        Action::Activate.as_str(),
        actor,
        now,
    ));
    let data = json!({ "from": Status::Draft, "to": to, "actor": actor });
    let kind = event_for(Action::Activate, to).as_str();
    changes.events.push(event(kind, &entitlement.id, data, now));
    entitlement.status = to;
}

/// Stores the expiry of contracts past their end date (at most `limit`),
/// flowing down to their open entitlements; an `auto_renew` contract not
/// yet renewed is renewed, the renewal activated. Safe on several
/// instances: the due contracts are locked, and an expired one is no
/// longer due. Returns how many expired.
pub async fn expire_contracts<T: ContractTx>(
    tx: T,
    today: NaiveDate,
    now: DateTime<Utc>,
    limit: u32,
) -> Result<u64, T::Error> {
    let now = stored_time(now);
    let due = tx.lock_due_contracts(today, limit).await?;
    if due.is_empty() {
        return Ok(0);
    }
    let ids: Vec<&str> = due.iter().map(|c| c.id.as_str()).collect();
    let entitlements = lock_contract_entitlements(&tx, &ids).await?;
    let system = AuditContext::system();
    let at = Moment {
        audit: &system,
        today,
        now,
    };
    let mut rows = ContractChanges::default();
    let mut changes = Changes::default();
    for before in &due {
        let Ok(to) = contract_transition(ContractAction::Expire, before.status) else {
            continue;
        };
        flow(
            &mut changes,
            &entitlements,
            ContractAction::Expire,
            &before.id,
            at,
        );
        let after = Contract {
            status: to,
            updated_at: now,
            ..before.clone()
        };
        changes.audit.push(entry(
            &system,
            "contract.expire",
            ("contract", &before.id),
            Some(before),
            &after,
            now,
        ));
        if after.auto_renew && after.renewed_to.is_none() {
            let how = Renewal {
                number: None,
                activate: true,
            };
            let made = renew(
                &tx,
                &after,
                &entitlements,
                how,
                at,
                (&mut rows, &mut changes),
            )
            .await?;
            // `renew` pushed the old contract with its renewal named.
            let _ = made;
        } else {
            rows.contracts.push(after);
        }
    }
    let expired = due.len() as u64;
    tx.write_contracts(&rows).await?;
    tx.write(&changes, now).await?;
    tx.commit().await?;
    Ok(expired)
}

pub async fn insert_template<T: ContractTx>(
    tx: T,
    template: &EntitlementTemplate,
    ctx: &AuditContext,
    answer: Option<&Answering<EntitlementTemplate>>,
) -> Result<(), T::Error> {
    if tx
        .template_named(&template.terms.name, None)
        .await?
        .is_some()
    {
        return Err(name_taken(&template.terms.name));
    }
    let now = stored_time(template.created_at);
    let audit = entry::<(), _>(
        ctx,
        "entitlement_template.create",
        ("entitlement_template", &template.id),
        None,
        template,
        now,
    );
    let rows = ContractChanges {
        templates: vec![template.clone()],
        ..ContractChanges::default()
    };
    let changes = Changes {
        audit: vec![audit],
        ..Changes::default()
    };
    finish(tx, rows, changes, answer, template, now).await
}

fn name_taken<E: From<StoreError>>(name: &str) -> E {
    conflict(
        "template_name_taken",
        format!("a template named {name} exists"),
    )
}

/// Replaces a template's terms under its lock. Entitlements made from it
/// keep the terms they were made with.
pub async fn update_template<T: ContractTx>(
    tx: T,
    template: &EntitlementTemplate,
    ctx: &AuditContext,
    answer: Option<&Answering<EntitlementTemplate>>,
) -> Result<EntitlementTemplate, T::Error> {
    let now = stored_time(template.updated_at);
    let before = tx
        .lock_template(&template.id)
        .await?
        .ok_or_else(|| StoreError::not_found("entitlement template", &template.id))?;
    if tx
        .template_named(&template.terms.name, Some(&template.id))
        .await?
        .is_some()
    {
        return Err(name_taken(&template.terms.name));
    }
    let after = EntitlementTemplate {
        created_at: before.created_at,
        updated_at: now,
        ..template.clone()
    };
    let audit = entry(
        ctx,
        "entitlement_template.update",
        ("entitlement_template", &template.id),
        Some(&before),
        &after,
        now,
    );
    let rows = ContractChanges {
        templates: vec![after.clone()],
        ..ContractChanges::default()
    };
    let changes = Changes {
        audit: vec![audit],
        ..Changes::default()
    };
    finish(tx, rows, changes, answer, &after, now).await?;
    Ok(after)
}

/// Deletes a template; entitlements made from it keep its id as history.
pub async fn delete_template<T: ContractTx>(
    tx: T,
    id: &str,
    at: Moment<'_>,
    answer: Option<&Answering<bool>>,
) -> Result<bool, T::Error> {
    let now = stored_time(at.now);
    let Some(before) = tx.lock_template(id).await? else {
        return Err(StoreError::not_found("entitlement template", id).into());
    };
    let audit = AuditEntry::new(
        at.audit,
        "entitlement_template.delete",
        "entitlement_template",
        id,
        snapshot(&before),
        None,
        now,
    );
    let rows = ContractChanges {
        deleted_templates: vec![id.to_string()],
        ..ContractChanges::default()
    };
    let changes = Changes {
        audit: vec![audit],
        ..Changes::default()
    };
    finish(tx, rows, changes, answer, &true, now).await?;
    Ok(true)
}

/// Field errors, at most `MAX_ERRORS`, as one refusal.
fn refuse<E: From<StoreError>>(errors: Vec<FieldError>) -> E {
    StoreError::Invalid(Invalid(errors.into_iter().take(MAX_ERRORS).collect())).into()
}

/// One entitlement of the template per account, all or none: every
/// account exists and appears once; with a contract, every account is the
/// contract's and every term inside its dates (and the line's).
pub async fn instantiate_template<T: ContractTx>(
    tx: T,
    request: &Instantiation,
    at: Moment<'_>,
    answer: Option<&Answering<Vec<EntitlementRecord>>>,
) -> Result<Vec<EntitlementRecord>, T::Error> {
    let now = stored_time(at.now);
    if request.account_ids.is_empty() || request.account_ids.len() > MAX_INSTANTIATE {
        return Err(invalid(
            "account_ids",
            format!("must name 1 to {MAX_INSTANTIATE} accounts"),
        ));
    }
    let template = tx
        .lock_template(&request.template_id)
        .await?
        .ok_or_else(|| StoreError::not_found("entitlement template", &request.template_id))?;
    let mut errors = Vec::new();
    let mut seen = BTreeSet::new();
    for (i, id) in request.account_ids.iter().enumerate() {
        if !seen.insert(id.clone()) {
            errors.push(field_error(i, "appears twice"));
        }
    }
    let existing = tx.existing_accounts(&seen).await?;
    for (i, id) in request.account_ids.iter().enumerate() {
        if !existing.contains(id) {
            errors.push(field_error(i, "account does not exist"));
        }
    }
    let start_date = request.start_date.unwrap_or(at.today);
    let contract = match &request.contract_id {
        Some(id) => match tx.lock_contract(id).await? {
            Some(c) => Some(c),
            None => return Err(invalid("contract_id", "contract does not exist")),
        },
        None => None,
    };
    let line = match &request.contract_line_id {
        Some(id) => {
            let line = tx.load_contract_line(id).await?;
            match (&line, &contract) {
                (Some(l), Some(c)) if l.contract_id == c.id => line,
                (Some(_), Some(_)) => {
                    return Err(invalid("contract_line_id", "is not a line of contract_id"))
                }
                (Some(_), None) => {
                    return Err(invalid("contract_id", "is required with contract_line_id"))
                }
                (None, _) => {
                    return Err(invalid("contract_line_id", "contract line does not exist"))
                }
            }
        }
        None => None,
    };
    let place = |account_id| Placement {
        template_id: &template.id,
        account_id,
        start_date,
        contract_id: request.contract_id.as_deref(),
        contract_line_id: request.contract_line_id.as_deref(),
    };
    let Some(sample) = terms_for(&template.terms, &place("")) else {
        return Err(invalid(
            "start_date",
            "the term would end past the calendar",
        ));
    };
    if let Some(c) = &contract {
        let status = effective_contract_status(c.status, c.end_date, at.today);
        if status.is_closed() {
            return Err(closed(c, status));
        }
        for (i, id) in request.account_ids.iter().enumerate() {
            if *id != c.account_id {
                errors.push(field_error(i, "is not the contract's account"));
            }
        }
        let mut inside = check_inside(
            (c.start_date, c.end_date),
            sample.start_date,
            sample.end_date,
        );
        if let (Ok(()), Some(l)) = (&inside, &line) {
            inside = check_inside(
                (l.start_date, l.end_date),
                sample.start_date,
                sample.end_date,
            );
        }
        if let Err(Invalid(found)) = inside {
            errors.extend(found);
        }
    }
    if !errors.is_empty() {
        errors.sort_by(|a, b| a.field.cmp(&b.field));
        return Err(refuse(errors));
    }
    let suspended = contract
        .as_ref()
        .is_some_and(|c| c.status == ContractStatus::Suspended);
    let mut changes = Changes::default();
    let mut made = Vec::with_capacity(request.account_ids.len());
    for account_id in &request.account_ids {
        let Some(terms) = terms_for(&template.terms, &place(account_id)) else {
            return Err(invalid(
                "start_date",
                "the term would end past the calendar",
            ));
        };
        validate_terms(&terms).map_err(StoreError::Invalid)?;
        let mut entitlement = Entitlement {
            id: EntitlementId::new(now).into_string(),
            terms,
            status: Status::Draft,
            predecessor_id: None,
        };
        if request.activate {
            activate(&mut changes, &mut entitlement, at);
            if suspended {
                if let Some(to) = lifecycle::suspended(entitlement.status) {
                    entitlement.status = to;
                }
            }
        }
        changes.new_entitlements.push(entitlement.clone());
        let record = fresh_record(entitlement, now);
        changes.audit.push(entry::<(), _>(
            at.audit,
            "entitlement.create",
            ("entitlement", &record.entitlement.id),
            None,
            &record,
            now,
        ));
        made.push(record);
    }
    finish(tx, ContractChanges::default(), changes, answer, &made, now).await?;
    Ok(made)
}

fn field_error(i: usize, message: &str) -> FieldError {
    FieldError {
        field: format!("account_ids[{i}]"),
        message: message.to_string(),
    }
}

/// Makes an open entitlement its account's default under the locks of it
/// and of the account's current default (in id order); the old one stops
/// being default in the same transaction. Already default: nothing changes.
pub async fn make_default<T: ContractTx>(
    tx: T,
    id: &str,
    at: Moment<'_>,
    answer: Option<&Answering<EntitlementRecord>>,
) -> Result<EntitlementRecord, T::Error> {
    let now = stored_time(at.now);
    let first = tx
        .lock_entitlements(&BTreeSet::from([id.to_string()]))
        .await?;
    let Some(target) = first.into_iter().next() else {
        return Err(StoreError::not_found("entitlement", id).into());
    };
    let account = target.entitlement.terms.account_id.clone();
    let mut ids = tx.default_of(&account).await?;
    ids.insert(id.to_string());
    let locked = tx.lock_entitlements(&ids).await?;
    let Some(before) = locked.iter().find(|r| r.entitlement.id == id).cloned() else {
        return Err(StoreError::not_found("entitlement", id).into());
    };
    let e = &before.entitlement;
    let current = effective_status(e.status, e.terms.start_date, e.terms.end_date, at.today);
    if !lifecycle::may_be_default(current) {
        return Err(conflict(
            "invalid_transition",
            format!(
                "an entitlement that is {} cannot be the default",
                current.as_str()
            ),
        ));
    }
    if e.terms.is_default {
        tx_answer_only(tx, answer, &before, now).await?;
        return Ok(before);
    }
    let mut changes = Changes::default();
    for old in locked.iter().filter(|r| r.entitlement.id != id) {
        if old.entitlement.terms.account_id != account || !old.entitlement.terms.is_default {
            continue;
        }
        let mut after = old.clone();
        after.entitlement.terms.is_default = false;
        after.updated_at = now;
        changes.entitlements.push(after.entitlement.clone());
        changes.audit.push(entry(
            at.audit,
            "entitlement.unset_default",
            ("entitlement", &old.entitlement.id),
            Some(old),
            &after,
            now,
        ));
    }
    // The old default is written first (above): one default per account
    // holds after every statement.
    let mut after = before.clone();
    after.entitlement.terms.is_default = true;
    after.updated_at = now;
    changes.entitlements.push(after.entitlement.clone());
    changes.audit.push(entry(
        at.audit,
        "entitlement.make_default",
        ("entitlement", id),
        Some(&before),
        &after,
        now,
    ));
    finish(tx, ContractChanges::default(), changes, answer, &after, now).await?;
    Ok(after)
}

/// Records the answer of a request that changed nothing, and commits.
async fn tx_answer_only<T: ContractTx, R>(
    tx: T,
    answer: Option<&Answering<R>>,
    result: &R,
    now: DateTime<Utc>,
) -> Result<(), T::Error> {
    finish(
        tx,
        ContractChanges::default(),
        Changes::default(),
        answer,
        result,
        now,
    )
    .await
}

pub async fn insert_job<T: ContractTx>(
    tx: T,
    job: &Job,
    ctx: &AuditContext,
    answer: Option<&Answering<Job>>,
) -> Result<(), T::Error> {
    let now = stored_time(job.created_at);
    let audit = entry::<(), _>(ctx, "job.create", ("job", &job.id), None, job, now);
    let rows = ContractChanges {
        jobs: vec![job.clone()],
        ..ContractChanges::default()
    };
    let changes = Changes {
        audit: vec![audit],
        ..Changes::default()
    };
    finish(tx, rows, changes, answer, job, now).await
}

pub async fn update_job<T: ContractTx>(tx: T, job: &Job) -> Result<(), T::Error> {
    let rows = ContractChanges {
        jobs: vec![job.clone()],
        ..ContractChanges::default()
    };
    finish::<T, ()>(tx, rows, Changes::default(), None, &(), job.updated_at).await
}
