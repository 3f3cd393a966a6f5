//! Lifecycle actions and the date-driven status sync.

use allot_core::entitlement::{Entitlement, Status};
use allot_core::lifecycle::{self, effective_status, event_for, renewed_terms, Action};
use allot_store::audit::{snapshot, AuditContext, AuditEntry};
use allot_store::ids::new_id;
use allot_store::model::Transition;
use allot_store::{StoreError, TransitionResult};
use chrono::{DateTime, NaiveDate, Utc};
use deadpool_postgres::{Pool, Transaction};
use futures::future::try_join_all;
use serde_json::{json, Value};
use tokio_postgres::types::ToSql;

use crate::audit::{self, AuditColumns};
use crate::entitlements;
use crate::error::{Error, Res};
use crate::retry;
use crate::rows::{self, TRANSITION_COLS};

pub(crate) struct Act<'a> {
    pub id: &'a str,
    pub action: Action,
    pub audit: &'a AuditContext,
    pub renewal_id: &'a str,
    pub today: NaiveDate,
    pub now: DateTime<Utc>,
}

pub(crate) async fn transition(pool: &Pool, act: Act<'_>) -> Res<TransitionResult> {
    let act = Act {
        now: rows::micros(act.now),
        ..act
    };
    retry::run("transition", Error::is_lock_conflict, || {
        transition_once(pool, &act)
    })
    .await
}

async fn transition_once(pool: &Pool, act: &Act<'_>) -> Res<TransitionResult> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let before = entitlements::lock(&tx, act.id).await?;
    let stored = before.entitlement.status;
    let terms = &before.entitlement.terms;
    let effective = effective_status(stored, terms.start_date, terms.end_date, act.today);
    let to = lifecycle::transition(
        act.action,
        effective,
        terms.start_date,
        terms.end_date,
        act.today,
    )
    .map_err(StoreError::Lifecycle)?;
    let kind = event_for(act.action, to).as_str();
    let renewal = if act.action == Action::Renew {
        let renewal = Entitlement {
            id: act.renewal_id.to_string(),
            terms: renewed_terms(terms, act.today),
            status: Status::Draft,
            predecessor_id: Some(act.id.to_string()),
        };
        entitlements::insert_row(&tx, &renewal, act.now).await?;
        record_transition(&tx, act.renewal_id, Status::Draft, Status::Draft, act).await?;
        let data = json!({ "renewal_id": act.renewal_id });
        insert_event(&tx, kind, act.id, &data, act.now).await?;
        Some(read(&tx, act.renewal_id).await?)
    } else {
        let stmt = tx
            .prepare_cached("UPDATE entitlements SET status = $2, updated_at = $3 WHERE id = $1")
            .await?;
        tx.execute(&stmt, &[&act.id, &to.as_str(), &act.now])
            .await
            .map_err(|e| Error::from(e).for_account(&terms.account_id))?;
        record_transition(&tx, act.id, effective, to, act).await?;
        let data = json!({ "from": effective, "to": to, "actor": act.audit.actor });
        insert_event(&tx, kind, act.id, &data, act.now).await?;
        None
    };
    let entitlement = read(&tx, act.id).await?;
    let after = match &renewal {
        Some(renewal) => Some(json!({ "renewal": snapshot(renewal) })),
        None => snapshot(&entitlement),
    };
    let entry = AuditEntry::new(
        act.audit,
        &format!("entitlement.{}", act.action.as_str()),
        "entitlement",
        act.id,
        snapshot(&before),
        after,
        act.now,
    );
    audit::write(&tx, &entry).await?;
    tx.commit().await?;
    Ok(TransitionResult {
        entitlement,
        renewal,
    })
}

async fn read(tx: &Transaction<'_>, id: &str) -> Res<allot_store::model::EntitlementRecord> {
    entitlements::read(tx, id)
        .await?
        .ok_or_else(|| StoreError::not_found("entitlement", id).into())
}

async fn record_transition(
    tx: &Transaction<'_>,
    id: &str,
    from: Status,
    to: Status,
    act: &Act<'_>,
) -> Res<()> {
    let stmt = tx
        .prepare_cached(
            "INSERT INTO transitions (entitlement_id, from_status, to_status, action, actor, at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .await?;
    tx.execute(
        &stmt,
        &[
            &id,
            &from.as_str(),
            &to.as_str(),
            &act.action.as_str(),
            &act.audit.actor,
            &act.now,
        ],
    )
    .await?;
    Ok(())
}

async fn insert_event(
    tx: &Transaction<'_>,
    kind: &str,
    entitlement_id: &str,
    data: &Value,
    now: DateTime<Utc>,
) -> Res<()> {
    let stmt = tx
        .prepare_cached(
            "INSERT INTO events (id, kind, entitlement_id, data, created_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .await?;
    tx.execute(
        &stmt,
        &[&new_id("evt", now), &kind, &entitlement_id, data, &now],
    )
    .await?;
    Ok(())
}

pub(crate) async fn sync_statuses(pool: &Pool, today: NaiveDate, now: DateTime<Utc>) -> Res<u64> {
    let now = rows::micros(now);
    retry::run("sync_statuses", Error::is_lock_conflict, || {
        sync_once(pool, today, now)
    })
    .await
}

struct Lagging {
    id: String,
    stored: Status,
    effective: Status,
}

async fn sync_once(pool: &Pool, today: NaiveDate, now: DateTime<Utc>) -> Res<u64> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let candidates = tx
        .prepare_cached(
            "SELECT id, status, start_date, end_date FROM entitlements
             WHERE (status = 'waiting' AND start_date <= $1)
                OR (status = 'active' AND end_date < $1)
             ORDER BY id",
        )
        .await?;
    let mut lagging = Vec::new();
    for row in tx.query(&candidates, &[&today]).await? {
        let stored = rows::status(row.try_get(1)?)?;
        let effective = effective_status(stored, row.try_get(2)?, row.try_get(3)?, today);
        if effective != stored {
            lagging.push(Lagging {
                id: row.try_get(0)?,
                stored,
                effective,
            });
        }
    }
    if lagging.is_empty() {
        return Ok(0);
    }
    // Compare-and-set: a row another instance already moved updates nothing,
    // and then records nothing either. Sent pipelined, locked in id order.
    let cas = tx
        .prepare_cached(
            "UPDATE entitlements SET status = $3, updated_at = $4 WHERE id = $1 AND status = $2",
        )
        .await?;
    let args: Vec<[&str; 3]> = lagging
        .iter()
        .map(|l| [l.id.as_str(), l.stored.as_str(), l.effective.as_str()])
        .collect();
    let params: Vec<[&(dyn ToSql + Sync); 4]> = args
        .iter()
        .map(|[id, from, to]| -> [&(dyn ToSql + Sync); 4] { [id, from, to, &now] })
        .collect();
    let updated = try_join_all(params.iter().map(|p| tx.execute(&cas, p))).await?;
    let changed: Vec<&Lagging> = lagging
        .iter()
        .zip(updated)
        .filter(|(_, n)| *n == 1)
        .map(|(l, _)| l)
        .collect();
    if !changed.is_empty() {
        let ids: Vec<&str> = changed.iter().map(|l| l.id.as_str()).collect();
        let from: Vec<&str> = changed.iter().map(|l| l.stored.as_str()).collect();
        let to: Vec<&str> = changed.iter().map(|l| l.effective.as_str()).collect();
        let event_ids: Vec<String> = changed.iter().map(|_| new_id("evt", now)).collect();
        let kinds: Vec<&str> = changed
            .iter()
            .map(|l| event_for(Action::Activate, l.effective).as_str())
            .collect();
        let data: Vec<Value> = changed
            .iter()
            .map(|l| json!({ "from": l.stored, "to": l.effective, "actor": "system" }))
            .collect();
        let transitions = tx
            .prepare_cached(
                "INSERT INTO transitions (entitlement_id, from_status, to_status, action, actor, at)
                 SELECT id, f, t, 'dates', 'system', $4
                 FROM UNNEST($1::text[], $2::text[], $3::text[]) AS u(id, f, t)",
            )
            .await?;
        let events = tx
            .prepare_cached(
                "INSERT INTO events (id, kind, entitlement_id, data, created_at)
                 SELECT *, $5::timestamptz
                 FROM UNNEST($1::text[], $2::text[], $3::text[], $4::jsonb[])",
            )
            .await?;
        let system = AuditContext::system();
        let entries: Vec<AuditEntry> = changed
            .iter()
            .map(|l| {
                AuditEntry::new(
                    &system,
                    "entitlement.follow_dates",
                    "entitlement",
                    &l.id,
                    Some(json!({ "status": l.stored })),
                    Some(json!({ "status": l.effective })),
                    now,
                )
            })
            .collect();
        let audit_columns = AuditColumns::of(&entries);
        let audit_stmt = tx.prepare_cached(audit::WRITE_ALL).await?;
        let transition_params: [&(dyn ToSql + Sync); 4] = [&ids, &from, &to, &now];
        let event_params: [&(dyn ToSql + Sync); 5] = [&event_ids, &kinds, &ids, &data, &now];
        let audit_params = audit_columns.params();
        futures::try_join!(
            tx.execute(&transitions, &transition_params),
            tx.execute(&events, &event_params),
            tx.execute(&audit_stmt, &audit_params),
        )?;
    }
    tx.commit().await?;
    Ok(changed.len() as u64)
}

pub(crate) async fn list_transitions(pool: &Pool, entitlement_id: &str) -> Res<Vec<Transition>> {
    let client = pool.get().await?;
    let stmt = client
        .prepare_cached(&format!(
            "SELECT {TRANSITION_COLS} FROM transitions WHERE entitlement_id = $1 ORDER BY id"
        ))
        .await?;
    client
        .query(&stmt, &[&entitlement_id])
        .await?
        .iter()
        .map(rows::transition)
        .collect()
}
