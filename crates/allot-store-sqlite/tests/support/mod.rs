//! Fixtures shared by the integration tests: a fresh database file per
//! test, removed afterwards.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use allot_core::entitlement::{DecrementOn, Entitlement, Period, Status, Terms, Unit};
use allot_core::Quantity;
use allot_store::model::Account;
use allot_store::Store;
use allot_store_sqlite::{SqliteOptions, SqliteStore};
use chrono::{DateTime, NaiveDate, TimeZone, Utc};

pub struct TempDb {
    pub dir: PathBuf,
    pub path: PathBuf,
}

impl TempDb {
    pub fn new(name: &str) -> TempDb {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "allot-sqlite-test-{}-{}-{name}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("allot.db");
        TempDb { dir, path }
    }

    pub fn url(&self) -> String {
        format!("sqlite://{}", self.path.display())
    }

    /// A plain connection beside the store, for checks the trait cannot make.
    pub fn raw(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(&self.path).unwrap()
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A migrated store on a fresh file.
pub async fn store(name: &str) -> (Arc<SqliteStore>, TempDb) {
    let db = TempDb::new(name);
    let store = SqliteStore::open(&db.url(), SqliteOptions::default())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    (Arc::new(store), db)
}

pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap()
}

pub fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

pub fn today() -> NaiveDate {
    now().date_naive()
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
        description: None,
        owner: None,
        unit: Unit::Visits,
        total: total.map(Quantity::whole),
        period: Period::None,
        rollover: Quantity::ZERO,
        restrict: true,
        decrement_on: DecrementOn::Creation,
        start_date: day(2026, 1, 1),
        end_date: day(2026, 12, 31),
        channels: vec![],
        product_ids: vec![],
        contact_ids: vec![],
        is_default: false,
        pooled: false,
        alert_thresholds: vec![],
        rounding: None,
        auto_renew: false,
        contract_id: None,
        sla: None,
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
