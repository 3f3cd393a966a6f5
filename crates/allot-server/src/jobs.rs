//! Background jobs inside the server: the scheduler emits what the dates
//! owe entitlements (statuses, period resets, expiring-soon notices,
//! auto-renewals), expired holds are released, old idempotency keys purged,
//! software reconciled on its schedule.
//! Each is safe to run on several instances at once (rows locked and
//! skipped by others in the store; reservation expiry goes through the
//! write path).

use std::time::Duration;

use allot_store::plan::{BatchItem, Command, Render};
use allot_store::schedule::SCHEDULE_LIMIT;

use crate::state::AppState;

/// Runs `run_once` every `every` until `stop` turns true; a pass under way
/// when it does is finished, not cut.
pub fn spawn(
    state: AppState,
    every: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                () = until(&mut stop) => return,
                _ = tick.tick() => run_once(&state).await,
            }
        }
    })
}

async fn until(stop: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

/// One pass of every job; errors are logged and retried on the next pass.
pub async fn run_once(state: &AppState) {
    let _one_pass_at_a_time = state.jobs_running.lock().await;
    expire_contracts(state).await;
    schedule(state).await;
    let now = state.clock.now();
    match state.store.expired_reservations(now, 1000).await {
        Ok(ids) => {
            for id in ids {
                let item = BatchItem {
                    command: Command::Expire { reservation_id: id },
                    actor: allot_store::AuditContext::system(),
                    idempotency: None,
                    render: Render::OUTCOME_JSON,
                };
                if let Err(e) = state.writes.submit(item).await {
                    tracing::warn!(error = %e, "reservation expiry failed");
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "reservation expiry query failed"),
    }
    let keep = chrono::Duration::hours(allot_core::idempotency::KEEP_HOURS);
    if let Err(e) = state.store.purge_keys(now - keep).await {
        tracing::warn!(error = %e, "idempotency key purge failed");
    }
    reconcile_when_due(state).await;
}

/// Contracts expired per pass of `expire_contracts`.
const CONTRACT_EXPIRY_LIMIT: u32 = 100;

/// Stores the expiry of contracts past their end date, flowing down to
/// their open entitlements (and renewing `auto_renew` ones), a batch at a
/// time until none is due.
async fn expire_contracts(state: &AppState) {
    for _ in 0..MAX_SCHEDULE_PASSES {
        let (today, now) = (state.clock.today(), state.clock.now());
        match state
            .store
            .expire_contracts(today, now, CONTRACT_EXPIRY_LIMIT)
            .await
        {
            Ok(0) => return,
            Ok(n) => tracing::info!(expired = n, "contracts expired"),
            Err(e) => {
                tracing::warn!(error = %e, "contract expiry failed");
                return;
            }
        }
    }
}

/// The scheduled reconciliation of every software model (emitting
/// `software.under_licensed` for rows that turned so); the store decides,
/// under a lock, whether one is due, so instances never run it twice.
async fn reconcile_when_due(state: &AppState) {
    let now = state.clock.now();
    let system = allot_store::AuditContext::system();
    let id = allot_store::ids::new_id("rec", now);
    let run = allot_store::software::ReconciliationRun {
        id: &id,
        software_model_id: None,
        stale_before: now - chrono::Duration::days(i64::from(state.install_stale_days)),
    };
    let at = allot_store::software::Moment {
        audit: &system,
        today: state.clock.today(),
        now,
    };
    let every = chrono::Duration::seconds(
        i64::try_from(state.reconcile_every_seconds.max(1)).unwrap_or(i64::MAX / 1_000_000),
    );
    match state.store.reconcile_if_due(&run, every, at).await {
        Ok(Some(r)) => {
            tracing::info!(id = %r.id, items = r.items.len(), "scheduled reconciliation")
        }
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, "scheduled reconciliation failed"),
    }
}

/// Most scheduler passes one run makes. Catching up after downtime (and a
/// chain of renewals across it) takes a pass per link; what is left waits
/// for the next run.
pub const MAX_SCHEDULE_PASSES: u32 = 100;

/// Passes until nothing is owed a look on the organization's today.
async fn schedule(state: &AppState) {
    for _ in 0..MAX_SCHEDULE_PASSES {
        let (today, now) = (state.clock.today(), state.clock.now());
        match state
            .store
            .run_schedule(&state.expiring_soon, today, now, SCHEDULE_LIMIT)
            .await
        {
            Ok(pass) if pass.looked_at == 0 => return,
            Ok(pass) if pass.events > 0 => tracing::info!(
                looked_at = pass.looked_at,
                events = pass.events,
                renewed = pass.renewed,
                "scheduled events emitted"
            ),
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "scheduler pass failed");
                return;
            }
        }
    }
}
