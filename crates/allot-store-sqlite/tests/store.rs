//! The store against a real SQLite file: the conformance suite every
//! backend passes (`allot-store-conformance`), then what only SQLite does.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use allot_store::Store;
use allot_store_conformance::fixtures::{account, tester};
use allot_store_conformance::{DatabaseAccess, TestDatabase};
use allot_store_sqlite::{SqliteOptions, SqliteStore};
use async_trait::async_trait;

const MIGRATIONS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations");

fn temp_dir(name: &str) -> PathBuf {
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "allot-sqlite-test-{}-{}-{name}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// A database file in a directory of its own, removed afterwards.
struct File {
    dir: PathBuf,
}

impl File {
    fn url(&self) -> String {
        format!("sqlite://{}", self.dir.join("allot.db").display())
    }

    fn raw(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.dir.join("allot.db")).unwrap()
    }
}

impl Drop for File {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[async_trait]
impl DatabaseAccess for File {
    async fn instance(&self) -> Arc<dyn Store> {
        let url = self.url();
        Arc::new(
            SqliteStore::open(&url, SqliteOptions::default())
                .await
                .unwrap(),
        )
    }

    async fn execute(&self, sql: &str) {
        self.raw().execute_batch(sql).unwrap();
    }

    async fn query_text(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        let conn = self.raw();
        let mut statement = conn.prepare(sql).unwrap();
        let columns = statement.column_count();
        let rows = statement.query_map([], |row| {
            (0..columns)
                .map(|i| row.get::<_, Option<String>>(i))
                .collect()
        });
        rows.unwrap().collect::<Result<_, _>>().unwrap()
    }
}

/// A migrated store on a fresh file, run as the server runs SQLite (one
/// writer).
async fn fresh(name: &str) -> TestDatabase {
    let file = File {
        dir: temp_dir(name),
    };
    let store = file.instance().await;
    store.migrate().await.unwrap();
    TestDatabase::new("sqlite", 1, MIGRATIONS, store, file)
}

mod sqlite {
    allot_store_conformance::conformance_tests!(super::fresh, always_test);
}

#[tokio::test]
async fn two_stores_migrate_an_empty_file_at_once() {
    let dir = temp_dir("migrate");
    let url = format!("sqlite://{}", dir.join("allot.db").display());
    let a = SqliteStore::open(&url, SqliteOptions::default())
        .await
        .unwrap();
    let b = SqliteStore::open(&url, SqliteOptions::default())
        .await
        .unwrap();
    let (ra, rb) = tokio::join!(a.migrate(), b.migrate());
    ra.unwrap();
    rb.unwrap();
    let applied: usize = rusqlite::Connection::open(dir.join("allot.db"))
        .unwrap()
        .query_row("SELECT COUNT(*) FROM schema_migrations", [], |r| r.get(0))
        .unwrap();
    let shipped = allot_store_conformance::migrations_in(MIGRATIONS);
    assert_eq!(applied, shipped.len(), "every migration, once each");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn in_memory_and_reader_less_stores_work() {
    for (url, readers) in [("sqlite::memory:", 4), (":memory:", 0)] {
        let options = SqliteOptions {
            readers,
            ..Default::default()
        };
        let store = SqliteStore::open(url, options).await.unwrap();
        store.migrate().await.unwrap();
        store
            .insert_account(&account("acc_1", None), &tester(), None)
            .await
            .unwrap();
        assert!(store.get_account("acc_1").await.unwrap().is_some());
    }
}
