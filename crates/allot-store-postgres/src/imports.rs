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
