//! Imports: the one transaction `allot_store::imports::run_import` runs in,
//! and the reads its checks make (one statement per chunk of keys).

use allot_store::imports::{self as seq, ImportMsg, ImportOutcome, ImportStore, Table};
use allot_store::StoreResult;
use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use tokio::sync::mpsc::Receiver;

use crate::error::Res;
use crate::transaction::PgTx;
use crate::PostgresStore;

/// The file's usage keys: a temporary table dropped at the transaction's
/// end (PostgreSQL keeps it in `temp_buffers`, spilling to disk).
impl seq::ImportTx for PgTx<'_> {
    async fn start_import_keys(&self) -> Res<()> {
        self.inner()
            .batch_execute(
                "CREATE TEMP TABLE import_keys (key text PRIMARY KEY, row bigint NOT NULL) \
                 ON COMMIT DROP",
            )
            .await?;
        Ok(())
    }

    async fn import_keys_seen(&self, keys: &[&str]) -> Res<Vec<(String, u64)>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        self.inner()
            .query(
                "SELECT key, row FROM import_keys WHERE key = ANY($1)",
                &[&keys],
            )
            .await?
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get::<_, i64>(1)? as u64)))
            .collect()
    }

    async fn add_import_keys(&self, keys: &[(&str, u64)]) -> Res<()> {
        if keys.is_empty() {
            return Ok(());
        }
        let (names, rows): (Vec<&str>, Vec<i64>) =
            keys.iter().map(|(k, r)| (*k, *r as i64)).unzip();
        self.inner()
            .execute(
                "INSERT INTO import_keys (key, row) SELECT * FROM UNNEST($1::text[], $2::bigint[])",
                &[&names, &rows],
            )
            .await?;
        Ok(())
    }

    async fn finish_import_keys(&self) -> Res<()> {
        self.inner()
            .batch_execute("DROP TABLE IF EXISTS import_keys")
            .await?;
        Ok(())
    }
}

async fn run(
    store: &PostgresStore,
    mut feed: Receiver<ImportMsg>,
    today: NaiveDate,
    now: DateTime<Utc>,
) -> Res<ImportOutcome> {
    let mut client = store.pool.get().await?;
    let tx = PgTx::new(client.transaction().await?);
    seq::run_import(tx, &mut feed, today, now).await
}

async fn pairs(store: &PostgresStore, sql: &str, keys: &[String]) -> Res<Vec<(String, String)>> {
    let client = store.pool.get().await?;
    let stmt = client.prepare_cached(sql).await?;
    client
        .query(&stmt, &[&keys])
        .await?
        .iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect()
}

#[async_trait]
impl ImportStore for PostgresStore {
    async fn run_import(
        &self,
        feed: Receiver<ImportMsg>,
        today: NaiveDate,
        now: DateTime<Utc>,
    ) -> StoreResult<ImportOutcome> {
        Ok(run(self, feed, today, now).await?)
    }

    async fn existing_ids(
        &self,
        table: Table,
        ids: &[String],
    ) -> StoreResult<Vec<(String, Option<String>)>> {
        let sql = match table {
            Table::Accounts => "SELECT id, NULL::text FROM accounts WHERE id = ANY($1)",
            Table::Contacts => "SELECT id, account_id FROM contacts WHERE id = ANY($1)",
            Table::Products => "SELECT id, NULL::text FROM products WHERE id = ANY($1)",
            Table::Entitlements => "SELECT id, account_id FROM entitlements WHERE id = ANY($1)",
        };
        let found: Res<Vec<(String, Option<String>)>> = async {
            let client = self.pool.get().await?;
            let stmt = client.prepare_cached(sql).await?;
            client
                .query(&stmt, &[&ids])
                .await?
                .iter()
                .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
                .collect()
        }
        .await;
        Ok(found?)
    }

    async fn accounts_by_external_id(&self, keys: &[String]) -> StoreResult<Vec<(String, String)>> {
        Ok(pairs(
            self,
            "SELECT external_id, id FROM accounts WHERE external_id = ANY($1)",
            keys,
        )
        .await?)
    }

    async fn products_by_sku(&self, skus: &[String]) -> StoreResult<Vec<(String, String)>> {
        Ok(pairs(
            self,
            "SELECT DISTINCT ON (sku) sku, id FROM products WHERE sku = ANY($1) ORDER BY sku, id",
            skus,
        )
        .await?)
    }

    async fn accounts_with_default(&self, account_ids: &[String]) -> StoreResult<Vec<String>> {
        let found: Res<Vec<String>> = async {
            let client = self.pool.get().await?;
            let stmt = client
                .prepare_cached(
                    "SELECT DISTINCT account_id FROM entitlements WHERE account_id = ANY($1)
                     AND is_default AND status IN ('draft', 'waiting', 'active')",
                )
                .await?;
            client
                .query(&stmt, &[&account_ids])
                .await?
                .iter()
                .map(|r| Ok(r.try_get(0)?))
                .collect()
        }
        .await;
        Ok(found?)
    }
}
