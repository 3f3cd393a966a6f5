//! The software sequences, written once for every backend: lock the
//! entitlements a change touches (in id order), decide with
//! `allot_core::software`, write the software rows, the audit entry and the
//! request's answer, commit.

use std::collections::BTreeSet;

use allot_core::software::reconcile::turned_under_licensed;
use allot_core::software::rights::{self, SoftwareRefusal};
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::answer::Answering;
use crate::audit::{snapshot, AuditContext, AuditEntry};
use crate::backend::Changes;
use crate::clock::stored_time;
use crate::error::StoreError;
use crate::ids::new_id;
use crate::model::Event;

use super::{
    Allocated, Allocation, Moment, Reconciliation, ReconciliationRun, SoftwareChange,
    SoftwareChanges, SoftwareEntitlementRecord, SoftwareModel, SoftwareTx, Upgraded,
};

/// Writes the software rows, then the audit entry and the answer (if the
/// request has a key), and commits: the answer is recorded exactly when
/// the change is.
async fn finish<T: SoftwareTx, R>(
    tx: T,
    software: SoftwareChanges,
    audit: AuditEntry,
    answer: Option<&Answering<R>>,
    result: &R,
    now: DateTime<Utc>,
) -> Result<(), T::Error> {
    let changes = Changes {
        audit: vec![audit],
        ..Changes::default()
    };
    finish_with(tx, &software, changes, answer, result, now).await
}

/// `finish`, with more shared rows (events) beside the audit entry.
async fn finish_with<T: SoftwareTx, R>(
    tx: T,
    software: &SoftwareChanges,
    mut changes: Changes,
    answer: Option<&Answering<R>>,
    result: &R,
    now: DateTime<Utc>,
) -> Result<(), T::Error> {
    tx.write_software(software).await?;
    changes.answers.extend(answer.map(|a| a.write(result)));
    tx.write(&changes, now).await?;
    tx.commit().await
}

/// An audit entry: `action` on `kind` `id`, from `before` to `after`.
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

async fn lock_one<T: SoftwareTx>(tx: &T, id: &str) -> Result<SoftwareEntitlementRecord, T::Error> {
    let ids = BTreeSet::from([id.to_string()]);
    let mut found = tx.lock_software_entitlements(&ids).await?;
    assert!(found.len() <= 1, "one row per software entitlement id");
    found
        .pop()
        .ok_or_else(|| StoreError::not_found("software entitlement", id).into())
}

fn refused<E: From<StoreError>>(r: SoftwareRefusal) -> E {
    StoreError::Software(r).into()
}

pub async fn insert_model<T: SoftwareTx>(
    tx: T,
    model: &SoftwareModel,
    ctx: &AuditContext,
    answer: Option<&Answering<SoftwareModel>>,
) -> Result<(), T::Error> {
    let audit = entry::<(), _>(
        ctx,
        "software_model.create",
        ("software_model", &model.id),
        None,
        model,
        model.created_at,
    );
    let software = SoftwareChanges {
        models: vec![model.clone()],
        ..SoftwareChanges::default()
    };
    finish(tx, software, audit, answer, model, model.created_at).await
}

/// Replaces a model's fields under its lock; its id and creation time stay.
pub async fn update_model<T: SoftwareTx>(
    tx: T,
    model: &SoftwareModel,
    ctx: &AuditContext,
    answer: Option<&Answering<SoftwareModel>>,
) -> Result<SoftwareModel, T::Error> {
    let now = stored_time(model.updated_at);
    let before = tx
        .lock_software_model(&model.id)
        .await?
        .ok_or_else(|| StoreError::not_found("software model", &model.id))?;
    let after = SoftwareModel {
        created_at: before.created_at,
        updated_at: now,
        ..model.clone()
    };
    let audit = entry(
        ctx,
        "software_model.update",
        ("software_model", &model.id),
        Some(&before),
        &after,
        now,
    );
    let software = SoftwareChanges {
        models: vec![after.clone()],
        ..SoftwareChanges::default()
    };
    finish(tx, software, audit, answer, &after, now).await?;
    Ok(after)
}

pub async fn insert_entitlement<T: SoftwareTx>(
    tx: T,
    record: &SoftwareEntitlementRecord,
    ctx: &AuditContext,
    answer: Option<&Answering<SoftwareEntitlementRecord>>,
) -> Result<(), T::Error> {
    let id = &record.entitlement.id;
    let audit = entry::<(), _>(
        ctx,
        "software_entitlement.create",
        ("software_entitlement", id),
        None,
        record,
        record.created_at,
    );
    let software = SoftwareChanges {
        entitlements: vec![record.clone()],
        ..SoftwareChanges::default()
    };
    finish(tx, software, audit, answer, record, record.created_at).await
}

/// One change of an entitlement, decided under its row lock.
pub async fn change<T: SoftwareTx>(
    tx: T,
    id: &str,
    change: &SoftwareChange,
    at: Moment<'_>,
    answer: Option<&Answering<SoftwareEntitlementRecord>>,
) -> Result<SoftwareEntitlementRecord, T::Error> {
    let now = stored_time(at.now);
    let before = lock_one(&tx, id).await?;
    let mut after = before.clone();
    let e = &mut after.entitlement;
    match change {
        SoftwareChange::Publish => rights::publish(e, at.today),
        SoftwareChange::Retire => rights::retire(e),
        SoftwareChange::Edit(terms) => rights::edit(e, (**terms).clone()),
        SoftwareChange::AddLicenseKeys(keys) => rights::add_license_keys(e, keys),
        SoftwareChange::AddDowngradeRight {
            software_model_id,
            order,
        } => rights::add_downgrade_right(e, software_model_id, *order),
    }
    .map_err(refused::<T::Error>)?;
    after.updated_at = now;
    let action = format!("software_entitlement.{}", change.action());
    let audit = entry(
        at.audit,
        &action,
        ("software_entitlement", id),
        Some(&before),
        &after,
        now,
    );
    let software = SoftwareChanges {
        entitlements: vec![after.clone()],
        ..SoftwareChanges::default()
    };
    finish(tx, software, audit, answer, &after, now).await?;
    Ok(after)
}

/// Allocates under the entitlement's row lock: every allocator of this
/// entitlement, in any instance, waits for the lock and decides against
/// what the one before it left.
pub async fn allocate<T: SoftwareTx>(
    tx: T,
    allocation: &Allocation,
    at: Moment<'_>,
    answer: Option<&Answering<Allocated>>,
) -> Result<Allocated, T::Error> {
    let now = stored_time(at.now);
    let mut record = lock_one(&tx, &allocation.entitlement_id).await?;
    rights::allocate(
        &mut record.entitlement,
        allocation.quantity,
        allocation.license_key.as_deref(),
        at.today,
    )
    .map_err(refused::<T::Error>)?;
    record.updated_at = now;
    let allocation = Allocation {
        created_at: now,
        ..allocation.clone()
    };
    let audit = entry::<(), _>(
        at.audit,
        "software_allocation.create",
        ("software_allocation", &allocation.id),
        None,
        &allocation,
        now,
    );
    let software = SoftwareChanges {
        entitlements: vec![record.clone()],
        new_allocations: vec![allocation.clone()],
        ..SoftwareChanges::default()
    };
    let result = Allocated {
        allocation,
        entitlement: record,
    };
    finish(tx, software, audit, answer, &result, now).await?;
    Ok(result)
}

/// Deletes an allocation of this entitlement under its lock, freeing its
/// rights (and its licence key).
pub async fn free<T: SoftwareTx>(
    tx: T,
    entitlement_id: &str,
    allocation_id: &str,
    at: Moment<'_>,
    answer: Option<&Answering<SoftwareEntitlementRecord>>,
) -> Result<SoftwareEntitlementRecord, T::Error> {
    let now = stored_time(at.now);
    let mut record = lock_one(&tx, entitlement_id).await?;
    let allocation = tx
        .load_allocation(allocation_id)
        .await?
        .filter(|a| a.entitlement_id == entitlement_id)
        .ok_or_else(|| StoreError::not_found("allocation", allocation_id))?;
    rights::free(
        &mut record.entitlement,
        allocation.quantity,
        allocation.license_key.as_deref(),
    );
    record.updated_at = now;
    let audit = entry::<_, Option<()>>(
        at.audit,
        "software_allocation.delete",
        ("software_allocation", allocation_id),
        Some(&allocation),
        &None,
        now,
    );
    let software = SoftwareChanges {
        entitlements: vec![record.clone()],
        freed_allocations: vec![allocation_id.to_string()],
        ..SoftwareChanges::default()
    };
    finish(tx, software, audit, answer, &record, now).await?;
    Ok(record)
}

/// Moves `rights` from one entitlement into another, both locked in id order.
pub async fn upgrade<T: SoftwareTx>(
    tx: T,
    to_id: &str,
    from_id: &str,
    rights: i64,
    at: Moment<'_>,
    answer: Option<&Answering<Upgraded>>,
) -> Result<Upgraded, T::Error> {
    let now = stored_time(at.now);
    let ids = BTreeSet::from([to_id.to_string(), from_id.to_string()]);
    let mut locked = tx.lock_software_entitlements(&ids).await?;
    let mut take = |id: &str| {
        let i = locked.iter().position(|r| r.entitlement.id == id);
        i.map(|i| locked.swap_remove(i))
            .ok_or_else(|| StoreError::not_found("software entitlement", id))
    };
    let mut to = take(to_id)?;
    let mut from = take(from_id)?;
    let before = (from.clone(), to.clone());
    rights::upgrade(&mut from.entitlement, &mut to.entitlement, rights, at.today)
        .map_err(refused::<T::Error>)?;
    from.updated_at = now;
    to.updated_at = now;
    let audit = entry(
        at.audit,
        "software_entitlement.upgrade",
        ("software_entitlement", to_id),
        Some(&serde_json::json!({ "from": before.0, "to": before.1 })),
        &serde_json::json!({ "from": from, "to": to, "rights": rights }),
        now,
    );
    let software = SoftwareChanges {
        entitlements: vec![from.clone(), to.clone()],
        ..SoftwareChanges::default()
    };
    let result = Upgraded { to, from };
    finish(tx, software, audit, answer, &result, now).await?;
    Ok(result)
}

/// Most installations one request records.
pub const MAX_INSTALLATIONS: usize = 10_000;

pub async fn record_installations<T: SoftwareTx>(
    tx: T,
    installations: &[allot_core::software::reconcile::Installation],
    at: Moment<'_>,
    answer: Option<&Answering<usize>>,
) -> Result<usize, T::Error> {
    assert!(
        installations.len() <= MAX_INSTALLATIONS,
        "the edge bounds a request's installations"
    );
    let now = stored_time(at.now);
    let models: BTreeSet<&str> = installations
        .iter()
        .map(|i| i.software_model_id.as_str())
        .collect();
    let target = models.iter().next().copied().unwrap_or("");
    let audit = entry::<(), _>(
        at.audit,
        "installation.record",
        ("software_model", target),
        None,
        &serde_json::json!({ "installations": installations.len(), "models": models }),
        now,
    );
    let software = SoftwareChanges {
        installations: installations.to_vec(),
        ..SoftwareChanges::default()
    };
    let count = installations.len();
    finish(tx, software, audit, answer, &count, now).await?;
    Ok(count)
}

/// Reconciles what the transaction reads (one consistent snapshot) and
/// keeps the result, with a `software.under_licensed` event per row that
/// turned under-licensed since the previous reconciliation.
pub async fn run_reconciliation<T: SoftwareTx>(
    tx: T,
    run: &ReconciliationRun<'_>,
    at: Moment<'_>,
    answer: Option<&Answering<Reconciliation>>,
) -> Result<Reconciliation, T::Error> {
    tx.lock_reconciliations().await?;
    let result = reconcile_locked(tx, run, at, answer, false).await?;
    Ok(result.expect("an asked-for reconciliation is always kept"))
}

/// The scheduled reconciliation: every model, unless one ran less than
/// `every` ago, or there is nothing to reconcile (no history of nothing).
/// Several instances may call it at once: the lock makes the later ones
/// find the run just made.
pub async fn reconcile_if_due<T: SoftwareTx>(
    tx: T,
    run: &ReconciliationRun<'_>,
    every: chrono::Duration,
    at: Moment<'_>,
) -> Result<Option<Reconciliation>, T::Error> {
    assert!(
        run.software_model_id.is_none(),
        "the schedule reconciles every model"
    );
    tx.lock_reconciliations().await?;
    let last = tx.latest_reconciliation().await?;
    if last.is_some_and(|r| stored_time(at.now) - r.run_at < every) {
        return Ok(None);
    }
    reconcile_locked(tx, run, at, None, true).await
}

async fn reconcile_locked<T: SoftwareTx>(
    tx: T,
    run: &ReconciliationRun<'_>,
    at: Moment<'_>,
    answer: Option<&Answering<Reconciliation>>,
    skip_empty: bool,
) -> Result<Option<Reconciliation>, T::Error> {
    let now = stored_time(at.now);
    let previous = tx.latest_reconciliation().await?;
    let inputs = tx.load_reconciliation_inputs(run.stale_before).await?;
    let mut items = inputs.reconcile(at.today);
    if let Some(model) = run.software_model_id {
        items.retain(|i| i.software_model_id == model);
    }
    if skip_empty && items.is_empty() {
        return Ok(None);
    }
    let before = previous.map(|p| p.items).unwrap_or_default();
    let events = turned_under_licensed(&before, &items)
        .into_iter()
        .map(|item| Event {
            id: new_id("evt", now),
            kind: "software.under_licensed".into(),
            entitlement_id: None,
            data: serde_json::json!({
                "reconciliation_id": run.id,
                "software_model_id": item.software_model_id,
                "license_metric": item.license_metric,
                "rights_owned": item.rights_owned,
                "rights_needed": item.rights_needed,
                "shortfall": item.shortfall,
                "true_up_cost": item.true_up_cost,
            }),
            created_at: now,
        })
        .collect();
    let result = Reconciliation {
        id: run.id.to_string(),
        software_model_id: run.software_model_id.map(str::to_string),
        run_at: now,
        items,
    };
    let summary = serde_json::json!({
        "software_model_id": result.software_model_id,
        "items": result.items.len(),
    });
    let audit = entry::<(), _>(
        at.audit,
        "reconciliation.run",
        ("reconciliation", run.id),
        None,
        &summary,
        now,
    );
    let changes = Changes {
        audit: vec![audit],
        events,
        ..Changes::default()
    };
    // Moved in and back out, not copied: a run of every model holds
    // thousands of rows and names.
    let mut software = SoftwareChanges {
        reconciliations: vec![result],
        ..SoftwareChanges::default()
    };
    let kept = &software.reconciliations[0];
    finish_with(tx, &software, changes, answer, kept, now).await?;
    Ok(software.reconciliations.pop())
}
