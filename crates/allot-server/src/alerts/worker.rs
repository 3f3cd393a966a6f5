//! The delivery worker inside `allot serve`: every `delivery_poll_ms` it
//! fans new outbox events out into deliveries, then claims the due ones
//! (at most as many as it has free slots: `delivery_concurrency`) and
//! tries each in a task of its own. It never touches the write path: an
//! event is read after its transaction committed, whatever type it has.

use std::sync::Arc;
use std::time::Duration;

use allot_store::alerts::{AttemptDone, Channel, DueDelivery, MailRules, FAN_OUT_LIMIT};
use rand::Rng;
use tokio::sync::{watch, Semaphore};
use tokio::task::{JoinHandle, JoinSet};

use super::mail::{compose, Mailer};
use super::webhook::{self, Tried};
use crate::config::AlertSettings;
use crate::state::AppState;

/// A claim outlives the slowest try (twice the timeout) by this much
/// before another instance, or this one after a crash, may take the
/// delivery again.
const LEASE_MARGIN: Duration = Duration::from_secs(5);

struct Context {
    state: AppState,
    webhook: webhook::Settings,
    mailer: Option<Mailer>,
    rules: MailRules,
    lease: chrono::Duration,
}

/// Starts the worker; it stops when `stop` turns true, after the tries in
/// flight end (each is bounded by its timeout). A bad SMTP setting is an
/// error here, not a silence later.
pub fn spawn(
    state: AppState,
    settings: &AlertSettings,
    mut stop: watch::Receiver<bool>,
) -> Result<JoinHandle<()>, String> {
    let mailer = Mailer::from_settings(settings)?;
    let rules = match mailer {
        Some(_) => MailRules {
            manager: settings.mail_manager_on.clone(),
            owner: settings.mail_owner_on.clone(),
        },
        None => MailRules::none(),
    };
    let timeout = Duration::from_millis(settings.webhook_timeout_ms.max(1));
    let lease = chrono::Duration::from_std(timeout * 2 + LEASE_MARGIN)
        .map_err(|e| format!("webhook_timeout_ms: {e}"))?;
    let context = Arc::new(Context {
        state,
        webhook: webhook::Settings {
            allow_private: settings.webhook_allow_private,
            timeout,
        },
        mailer,
        rules,
        lease,
    });
    let slots = Arc::new(Semaphore::new(settings.delivery_concurrency.max(1)));
    let every = Duration::from_millis(settings.delivery_poll_ms.max(10));
    Ok(tokio::spawn(async move {
        let mut tries = JoinSet::new();
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                () = until(&mut stop) => break,
                _ = tick.tick() => pass(&context, &slots, &mut tries).await,
            }
            while tries.try_join_next().is_some() {}
        }
        while tries.join_next().await.is_some() {}
    }))
}

async fn until(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

async fn pass(context: &Arc<Context>, slots: &Arc<Semaphore>, tries: &mut JoinSet<()>) {
    let store = &context.state.store;
    loop {
        match store
            .fan_out(&context.rules, context.state.clock.now())
            .await
        {
            Ok(n) if n == u64::from(FAN_OUT_LIMIT) => continue,
            Ok(_) => break,
            Err(e) => {
                tracing::warn!(error = %e, "fanning events out failed");
                break;
            }
        }
    }
    let free = slots.available_permits();
    if free == 0 {
        return;
    }
    let now = context.state.clock.now();
    let limit = u32::try_from(free).unwrap_or(u32::MAX);
    let due = match store.claim_due(now, context.lease, limit).await {
        Ok(due) => due,
        Err(e) => {
            tracing::warn!(error = %e, "claiming due deliveries failed");
            return;
        }
    };
    for delivery in due {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let context = context.clone();
        tries.spawn(async move {
            let _slot = slot;
            attempt(&context, delivery).await;
        });
    }
}

async fn attempt(context: &Context, due: DueDelivery) {
    let now = context.state.clock.now();
    let Some(tried) = try_once(context, &due, now).await else {
        return;
    };
    if !tried.delivered {
        tracing::info!(
            delivery = %due.delivery.id,
            error = ?tried.attempt.error,
            "delivery try failed"
        );
    }
    let done = AttemptDone {
        delivery: due.delivery,
        attempt: tried.attempt,
        delivered: tried.delivered,
        jitter: rand::thread_rng().gen_range(-1.0..=1.0),
        now,
    };
    if let Err(e) = context.state.store.record_attempt(&done).await {
        // The lease runs out and the delivery is tried again: at least once.
        tracing::warn!(error = %e, delivery = %done.delivery.id, "recording a try failed");
    }
}

/// `None` when there is nothing left to try (the webhook was deleted).
async fn try_once(
    context: &Context,
    due: &DueDelivery,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<Tried> {
    let store = &context.state.store;
    let failed = |error: String| Tried {
        delivered: false,
        attempt: allot_store::alerts::Attempt {
            at: now,
            status_code: None,
            latency_ms: 0,
            error: Some(error),
        },
    };
    match due.delivery.channel {
        Channel::Webhook => match store.get_webhook(&due.delivery.target).await {
            Ok(Some(row)) if row.webhook.enabled => {
                Some(webhook::deliver(&row, &due.event, now, &context.webhook).await)
            }
            Ok(Some(_)) => Some(failed("the webhook is disabled".into())),
            Ok(None) => None,
            Err(e) => Some(failed(format!("reading the webhook: {e}"))),
        },
        Channel::Email => {
            let Some(mailer) = &context.mailer else {
                return Some(failed("no SMTP server is configured".into()));
            };
            match letter(context, due).await {
                Ok(letter) => Some(mailer.deliver(&due.delivery.target, &letter, now).await),
                Err(e) => Some(failed(e)),
            }
        }
    }
}

async fn letter(context: &Context, due: &DueDelivery) -> Result<super::mail::Letter, String> {
    let store = &context.state.store;
    let id = due
        .event
        .entitlement_id
        .as_deref()
        .ok_or("the event names no entitlement")?;
    let record = store
        .get_entitlement(id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("entitlement {id} is gone"))?;
    let account_id = &record.entitlement.terms.account_id;
    let account = store
        .get_account(account_id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("account {account_id} is gone"))?;
    let today = context.state.clock.today();
    let balance = allot_core::balance::balance(&record.entitlement, &record.counters, today);
    Ok(compose(&due.event, &account, &record, &balance))
}
