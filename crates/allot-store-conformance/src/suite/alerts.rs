//! Alerts: account managers, webhooks, and the delivery of outbox events
//! (fan-out once, claims that two instances never share, the retry
//! schedule).

use allot_store::alerts::{
    AccountManager, Attempt, AttemptDone, Channel, DeliveryState, MailRules, Webhook,
    WebhookChange, WebhookEdit, WebhookRow,
};
use allot_store::model::Account;
use allot_store::{Store, StoreError};
use chrono::{DateTime, Duration, Utc};

use crate::fixtures::*;
use crate::TestDatabase;

fn webhook_row(id: &str, types: &[&str], at: DateTime<Utc>) -> WebhookRow {
    WebhookRow {
        webhook: Webhook {
            id: id.into(),
            url: "https://hooks.example.com/allot".into(),
            event_types: types.iter().map(|t| t.to_string()).collect(),
            account_id: None,
            description: None,
            enabled: true,
            failing_since: None,
            disabled_reason: None,
            created_at: at,
            updated_at: at,
        },
        secret: "whsec_AAAA".into(),
    }
}

async fn managed_account(store: &dyn Store, id: &str, email: &str) {
    let account = Account {
        manager_name: Some("Ann".into()),
        manager_email: Some(email.into()),
        ..account(id, None)
    };
    insert_account(store, &account, &tester()).await.unwrap();
}

fn mail_everything() -> MailRules {
    let kinds = vec!["entitlement.activated".to_string()];
    MailRules {
        manager: kinds.clone(),
        owner: kinds,
    }
}

pub async fn account_managers_are_stored_and_audited(db: &TestDatabase) {
    let store = db.store();
    let s = store.as_ref();
    managed_account(s, "acc_1", "ann@example.com").await;
    let read = s.get_account("acc_1").await.unwrap().unwrap();
    assert_eq!(read.manager_email.as_deref(), Some("ann@example.com"));
    let manager = AccountManager {
        manager_name: None,
        manager_email: Some("bob@example.com".into()),
    };
    let after = s
        .update_account_manager("acc_1", &manager, now(), &tester(), None)
        .await
        .unwrap();
    assert_eq!(after.manager_name, None);
    assert_eq!(
        s.get_account("acc_1").await.unwrap().unwrap(),
        after,
        "reads back as written"
    );
    let audit = audit_of(s, "acc_1").await;
    assert_eq!(audit.last().unwrap().action, "account.update");
    let missing = s
        .update_account_manager("acc_none", &manager, now(), &tester(), None)
        .await;
    assert!(matches!(missing, Err(StoreError::NotFound { .. })));
}

pub async fn webhooks_are_edited_rotated_and_deleted(db: &TestDatabase) {
    let store = db.store();
    let s = store.as_ref();
    let row = webhook_row("whk_1", &["entitlement.exhausted"], now());
    s.insert_webhook(&row, &tester(), None).await.unwrap();
    assert_eq!(s.get_webhook("whk_1").await.unwrap(), Some(row.clone()));
    let edit = WebhookChange::Edit(WebhookEdit {
        event_types: Some(vec![]),
        enabled: Some(false),
        ..WebhookEdit::default()
    });
    let edited = s
        .change_webhook("whk_1", &edit, now(), &tester(), None)
        .await
        .unwrap();
    assert!(edited.webhook.event_types.is_empty() && !edited.webhook.enabled);
    assert_eq!(edited.secret, row.secret, "an edit keeps the secret");
    let rotate = WebhookChange::Rotate {
        secret: "whsec_BBBB".into(),
    };
    s.change_webhook("whk_1", &rotate, now(), &tester(), None)
        .await
        .unwrap();
    assert_eq!(
        s.get_webhook("whk_1").await.unwrap().unwrap().secret,
        "whsec_BBBB"
    );
    assert_eq!(s.list_webhooks(&all()).await.unwrap().len(), 1);
    assert!(s
        .delete_webhook("whk_1", now(), &tester(), None)
        .await
        .unwrap());
    assert!(!s
        .delete_webhook("whk_1", now(), &tester(), None)
        .await
        .unwrap());
    assert_eq!(s.get_webhook("whk_1").await.unwrap(), None);
    let actions: Vec<String> = audit_of(s, "whk_1")
        .await
        .into_iter()
        .map(|a| a.action)
        .collect();
    assert_eq!(
        actions,
        [
            "webhook.create",
            "webhook.update",
            "webhook.rotate_secret",
            "webhook.delete"
        ]
    );
}

/// Two instances fan out at once: every (event, webhook) and every
/// (event, address) gets one delivery, never two.
pub async fn events_fan_out_once_across_instances(db: &TestDatabase) {
    let store = db.store();
    let other = db.instance().await;
    let s = store.as_ref();
    s.insert_webhook(&webhook_row("whk_all", &[], now()), &tester(), None)
        .await
        .unwrap();
    let only_exhausted = webhook_row("whk_ex", &["entitlement.exhausted"], now());
    s.insert_webhook(&only_exhausted, &tester(), None)
        .await
        .unwrap();
    managed_account(s, "acc_1", "ann@example.com").await;
    let mut terms = terms("acc_1", Some(10));
    terms.owner_email = Some("owner@example.com".into());
    for i in 0..20 {
        let id = format!("ent_{i:02}");
        add_draft(s, &id, terms.clone()).await;
        activate(s, &id).await;
    }
    let rules = mail_everything();
    let (a, b) = futures::join!(
        async {
            let mut n = 0;
            for _ in 0..5 {
                n += store.fan_out(&rules, now()).await.unwrap();
            }
            n
        },
        async {
            let mut n = 0;
            for _ in 0..5 {
                n += other.fan_out(&rules, now()).await.unwrap();
            }
            n
        }
    );
    assert_eq!(a + b, 20, "each event taken once");
    let to_all = s
        .list_deliveries(Channel::Webhook, Some("whk_all"), &all())
        .await
        .unwrap();
    assert_eq!(to_all.len(), 20);
    assert!(to_all
        .iter()
        .all(|d| d.event_kind == "entitlement.activated"));
    assert!(s
        .list_deliveries(Channel::Webhook, Some("whk_ex"), &all())
        .await
        .unwrap()
        .is_empty());
    for address in ["ann@example.com", "owner@example.com"] {
        let mail = s
            .list_deliveries(Channel::Email, Some(address), &all())
            .await
            .unwrap();
        assert_eq!(mail.len(), 20, "{address}");
    }
    assert_eq!(s.fan_out(&rules, now()).await.unwrap(), 0, "nothing left");
}

/// Claims leased to one instance are not handed to another; a failed try
/// is due again per the schedule, a delivered one never.
pub async fn deliveries_are_claimed_once_and_follow_the_schedule(db: &TestDatabase) {
    let store = db.store();
    let other = db.instance().await;
    let s = store.as_ref();
    s.insert_webhook(&webhook_row("whk_1", &[], now()), &tester(), None)
        .await
        .unwrap();
    add_account(s, "acc_1", None).await;
    for i in 0..6 {
        let id = format!("ent_{i}");
        add_draft(s, &id, terms("acc_1", Some(10))).await;
        activate(s, &id).await;
    }
    s.fan_out(&MailRules::none(), now()).await.unwrap();
    let lease = Duration::seconds(70);
    let (a, b) = futures::join!(
        store.claim_due(now(), lease, 4),
        other.claim_due(now(), lease, 4)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.len() + b.len(), 6);
    let mut ids: Vec<&str> = a.iter().chain(&b).map(|d| d.delivery.id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 6, "no delivery claimed twice");
    assert!(
        s.claim_due(now(), lease, 10).await.unwrap().is_empty(),
        "leased"
    );

    let failed = &a[0];
    let done = |delivered: bool, at: DateTime<Utc>| AttemptDone {
        delivery: failed.delivery.clone(),
        attempt: Attempt {
            at,
            status_code: Some(500),
            latency_ms: 3,
            error: (!delivered).then(|| "answered 500".to_string()),
        },
        delivered,
        jitter: 0.0,
        now: at,
    };
    s.record_attempt(&done(false, now())).await.unwrap();
    let d = s.get_delivery(&failed.delivery.id).await.unwrap().unwrap();
    assert_eq!(d.state, DeliveryState::Pending);
    assert_eq!(d.tries, 1);
    assert_eq!(d.next_attempt_at, Some(now() + Duration::seconds(10)));
    assert_eq!(d.attempts.len(), 1);
    let webhook = s.get_webhook("whk_1").await.unwrap().unwrap().webhook;
    assert_eq!(webhook.failing_since, Some(now()));

    let later = now() + Duration::seconds(10);
    let again = s.claim_due(later, lease, 10).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].delivery.id, failed.delivery.id);
    assert_eq!(again[0].event.id, failed.delivery.event_id);
    s.record_attempt(&done(true, later)).await.unwrap();
    let d = s.get_delivery(&failed.delivery.id).await.unwrap().unwrap();
    assert_eq!(
        (d.state, d.tries, d.next_attempt_at),
        (DeliveryState::Delivered, 2, None)
    );
    let webhook = s.get_webhook("whk_1").await.unwrap().unwrap().webhook;
    assert_eq!(webhook.failing_since, None, "a success clears the failures");

    // The others' lease runs out: due again, never lost.
    let after_lease = now() + lease;
    assert_eq!(s.claim_due(after_lease, lease, 10).await.unwrap().len(), 5);
    let retried = s
        .retry_delivery(&d.id, after_lease, &tester(), None)
        .await
        .unwrap();
    assert_eq!(retried.state, DeliveryState::Pending);
    assert_eq!(s.claim_due(after_lease, lease, 10).await.unwrap().len(), 1);
}
