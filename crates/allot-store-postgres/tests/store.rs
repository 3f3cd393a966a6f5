//! The store against a real PostgreSQL: the conformance suite every
//! backend passes (`allot-store-conformance`), then what only PostgreSQL
//! does. Every test here is a `postgres_test!`: ignored when the build saw
//! no `ALLOT_TEST_DATABASE_URL`, failing without one under `CI=true`.

use std::sync::Arc;

use allot_store::Store;
use allot_store_conformance::{postgres_admin_url, DatabaseAccess, TestDatabase};
use allot_store_postgres::{create_fresh_database, PostgresStore};
use async_trait::async_trait;

const MIGRATIONS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations");

/// A database of its own on the server of `ALLOT_TEST_DATABASE_URL`,
/// dropped by `finish`.
struct Database {
    admin_url: String,
    url: String,
}

impl Database {
    /// A plain connection, for checks and states no trait method offers.
    async fn sql(&self) -> tokio_postgres::Client {
        let (client, conn) = tokio_postgres::connect(&self.url, tokio_postgres::NoTls)
            .await
            .expect("connect");
        tokio::spawn(conn);
        client
    }
}

#[async_trait]
impl DatabaseAccess for Database {
    async fn instance(&self) -> Arc<dyn Store> {
        Arc::new(PostgresStore::connect(&self.url, 8).await.expect("connect"))
    }

    async fn execute(&self, sql: &str) {
        self.sql().await.batch_execute(sql).await.unwrap();
    }

    async fn query_text(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        let rows = self.sql().await.query(sql, &[]).await.unwrap();
        rows.iter()
            .map(|row| (0..row.len()).map(|i| row.get(i)).collect())
            .collect()
    }

    async fn finish(&self) {
        let name = self.url.rsplit('/').next().unwrap_or_default();
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

async fn database() -> Database {
    let admin_url = postgres_admin_url();
    let url = create_fresh_database(&admin_url)
        .await
        .expect("create database");
    Database { admin_url, url }
}

/// A migrated store on a fresh database, run as the server runs PostgreSQL
/// (four batches in flight).
async fn fresh(_name: &str) -> TestDatabase {
    let database = database().await;
    let store = database.instance().await;
    store.migrate().await.expect("migrate");
    TestDatabase::new("postgres", 4, MIGRATIONS, store, database)
}

mod postgres {
    use allot_core::decide::Refusal;
    use allot_core::Quantity;
    use allot_store::plan::Outcome;
    use allot_store_conformance::fixtures::*;
    use allot_store_conformance::{postgres_test, DatabaseAccess};

    allot_store_conformance::conformance_tests!(super::fresh, postgres_test);

    postgres_test! {
        /// A key another instance commits while our batch is between its
        /// load (which saw no key) and its write: ours waits on the key's
        /// index entry, then replays theirs instead of applying.
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn a_key_committed_by_another_instance_meanwhile_is_replayed() {
            let database = super::database().await;
            let store = database.instance().await;
            store.migrate().await.unwrap();
            active_entitlement(store.as_ref(), "ent_1", 10).await;
            let item = usage("ent_1", 1, Some("k1"));
            let fingerprint = item.idempotency.as_ref().unwrap().fingerprint.clone();
            // What the other instance answered: recognisable, since ours would apply.
            let theirs = Outcome::Refused {
                refusal: Refusal::EntitlementNotFound {
                    entitlement_id: "ent_1".into(),
                },
            };
            let mut other = database.sql().await;
            let tx = other.transaction().await.unwrap();
            tx.execute(
                "INSERT INTO idempotency_keys (scope, key, fingerprint, answer, created_at)
                 VALUES ('key_test', 'k1', $1, $2, now())",
                &[&fingerprint, &serde_json::to_value(&theirs).unwrap()],
            )
            .await
            .unwrap();
            let ours = {
                let store = store.clone();
                tokio::spawn(async move { apply(store.as_ref(), &[item]).await })
            };
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            tx.commit().await.unwrap();
            let answers = ours.await.unwrap();
            // Stored as versions before `StoredAnswer` did: still replayed.
            assert_eq!(answers, [replay_of(&theirs)]);
            assert_eq!(ledger_sum(store.as_ref(), "ent_1").await, (0, 0));
            assert_eq!(counters(store.as_ref(), "ent_1").await.used, Quantity::ZERO);
            drop(store);
            database.finish().await;
        }
    }
}
