//! Shared by the integration tests: a fresh database per test, fixtures.
#![allow(dead_code)]

use std::sync::Arc;

use allot_core::batch::Op;
use allot_core::decide::{Change, Reason};
use allot_core::entitlement::{DecrementOn, Entitlement, Period, Status, Terms, Unit};
use allot_core::lifecycle::Action;
use allot_core::Quantity;
use allot_store::model::{Account, EntitlementRecord};
use allot_store::plan::{BatchItem, Command, IdemKey};
use allot_store::{ManualClock, Store};
use allot_store_postgres::{create_fresh_database, PostgresStore};
use chrono::{DateTime, NaiveDate, TimeZone, Utc};

pub const SKIPPED: &str = "skipped: ALLOT_TEST_DATABASE_URL not set";

/// A migrated store on a database of its own; dropped by `finish`.
pub struct TestDb {
    pub admin_url: String,
    pub url: String,
    pub store: Arc<PostgresStore>,
}

/// `None` (after saying so) when no server is configured.
pub async fn fresh() -> Option<TestDb> {
    let Ok(admin_url) = std::env::var("ALLOT_TEST_DATABASE_URL") else {
        println!("{SKIPPED}");
        return None;
    };
    let url = create_fresh_database(&admin_url)
        .await
        .expect("create database");
    let store = PostgresStore::connect(&url, 8).await.expect("connect");
    store.migrate().await.expect("migrate");
    Some(TestDb {
        admin_url,
        url,
        store: Arc::new(store),
    })
}

impl TestDb {
    /// Another instance on the same database (its own pool).
    pub async fn instance(&self) -> Arc<PostgresStore> {
        Arc::new(PostgresStore::connect(&self.url, 8).await.expect("connect"))
    }

    /// A plain connection, for checks no trait method offers.
    pub async fn sql(&self) -> tokio_postgres::Client {
        let (client, conn) = tokio_postgres::connect(&self.url, tokio_postgres::NoTls)
            .await
            .expect("connect");
        tokio::spawn(conn);
        client
    }

    pub async fn finish(self) {
        let name = self.url.rsplit('/').next().unwrap_or_default().to_string();
        drop(self.store);
        if let Ok((client, conn)) =
            tokio_postgres::connect(&self.admin_url, tokio_postgres::NoTls).await
        {
            tokio::spawn(conn);
            let _ = client
                .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                .await;
        }
    }
}

pub fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, 12, 0, 0).unwrap()
}

pub fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

/// The tests' "now": mid-March 2026.
pub fn now() -> DateTime<Utc> {
    at(2026, 3, 10)
}

pub fn today() -> NaiveDate {
    now().date_naive()
}

pub fn clock() -> ManualClock {
    ManualClock::new(now())
}

pub fn account(id: &str, parent: Option<&str>) -> Account {
    Account {
        id: id.into(),
        name: format!("Account {id}"),
        parent_id: parent.map(Into::into),
        created_at: now(),
    }
}

pub fn terms(account_id: &str, total: Option<i64>) -> Terms {
    Terms {
        account_id: account_id.into(),
        name: "Support visits".into(),
        description: Some("on site".into()),
        owner: Some("owner_1".into()),
        unit: Unit::Units,
        total: total.map(Quantity::whole),
        period: Period::None,
        rollover: Quantity::ZERO,
        restrict: true,
        decrement_on: DecrementOn::Creation,
        start_date: day(2026, 1, 1),
        end_date: day(2026, 12, 31),
        channels: vec![],
        product_ids: vec!["prd_1".into()],
        contact_ids: vec![],
        is_default: false,
        pooled: false,
        alert_thresholds: vec![],
        rounding: None,
        auto_renew: false,
        contract_id: None,
        sla: Some("4h".into()),
    }
}

pub fn draft(id: &str, terms: Terms) -> Entitlement {
    Entitlement {
        id: id.into(),
        terms,
        status: Status::Draft,
        predecessor_id: None,
    }
}

/// An account with one active entitlement `id` of `total` units.
pub async fn active_entitlement(store: &dyn Store, id: &str, total: i64) -> EntitlementRecord {
    let account_id = format!("acc_{id}");
    store
        .insert_account(&account(&account_id, None), &"tester".into())
        .await
        .unwrap();
    store
        .insert_entitlement(
            &draft(id, terms(&account_id, Some(total))),
            now(),
            &"tester".into(),
        )
        .await
        .unwrap();
    store
        .transition(id, Action::Activate, &"tester".into(), "", today(), now())
        .await
        .unwrap()
        .entitlement
}

pub fn usage(entitlement_id: &str, units: i64, key: Option<&str>) -> BatchItem {
    BatchItem {
        command: Command::Ledger {
            ops: vec![Op {
                entitlement_id: entitlement_id.into(),
                change: Change::Consume {
                    quantity: Quantity::whole(units),
                    channel: None,
                    reason: Reason::Usage,
                    reference: None,
                },
            }],
        },
        actor: "key_test".into(),
        idempotency: key.map(|k| IdemKey {
            scope: "key_test".into(),
            key: k.into(),
            fingerprint: format!("fp-{entitlement_id}-{units}"),
        }),
    }
}
