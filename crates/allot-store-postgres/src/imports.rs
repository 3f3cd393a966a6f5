//! Imports: the one transaction `allot_store::imports::run_import` runs in,
//! and the reads its checks make (one statement per chunk of keys).

use allot_core::entitlement::Terms;
use allot_core::Entitlement;
use allot_store::clock::stored_time;
use allot_store::imports::{self as seq, ImportMsg, ImportOutcome, ImportStore, Table};
use allot_store::StoreResult;
use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use std::collections::{HashMap, HashSet};
use tokio_postgres::types::Json;

use tokio::sync::mpsc::Receiver;

use crate::error::Res;
use crate::transaction::PgTx;
use crate::PostgresStore;

/// The columns of the write path's one-row insert (`transaction.rs`), a
/// chunk of rows at once.
const INSERT_ENTITLEMENTS: &str = "INSERT INTO entitlements (id, account_id, unit, owner,
        status, is_default, start_date, end_date, total_milli, restrict, terms,
        predecessor_id, created_at, updated_at)
    SELECT id, account_id, unit, owner, status, is_default, start_date, end_date,
        total_milli, restrict, terms, predecessor_id, $13, $13
    FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bool[],
        $7::date[], $8::date[], $9::bigint[], $10::bool[], $11::jsonb[], $12::text[])
        AS u(id, account_id, unit, owner, status, is_default, start_date, end_date,
            total_milli, restrict, terms, predecessor_id)";

const INSERT_BALANCES: &str = "INSERT INTO balances (entitlement_id, period_index, used_milli,
        held_milli, carried_milli, channels)
    SELECT id, 0, 0, 0, 0, '{}'::jsonb FROM UNNEST($1::text[]) AS u(id)";

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

    async fn claim_import_keys(&self, keys: &[(&str, u64)]) -> Res<Vec<Option<u64>>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let (names, rows): (Vec<&str>, Vec<i64>) =
            keys.iter().map(|(k, r)| (*k, *r as i64)).unzip();
        // In array order: of two rows of the call with one key, the first
        // claims it and the second conflicts.
        let claimed: HashSet<i64> = self
            .inner()
            .query(
                "INSERT INTO import_keys (key, row) \
                 SELECT k, r FROM UNNEST($1::text[], $2::bigint[]) WITH ORDINALITY AS u(k, r, n) \
                 ORDER BY n ON CONFLICT (key) DO NOTHING RETURNING row",
                &[&names, &rows],
            )
            .await?
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()?;
        let taken: Vec<&str> = keys
            .iter()
            .filter(|(_, row)| !claimed.contains(&(*row as i64)))
            .map(|(k, _)| *k)
            .collect();
        let mut first: HashMap<String, u64> = HashMap::with_capacity(taken.len());
        if !taken.is_empty() {
            for r in self
                .inner()
                .query(
                    "SELECT key, row FROM import_keys WHERE key = ANY($1)",
                    &[&taken],
                )
                .await?
            {
                first.insert(r.try_get(0)?, r.try_get::<_, i64>(1)? as u64);
            }
        }
        keys.iter()
            .map(|(key, row)| {
                if claimed.contains(&(*row as i64)) {
                    return Ok(None);
                }
                let earlier = first.get(*key).copied();
                Ok(Some(earlier.ok_or_else(|| {
                    allot_store::StoreError::Backend(format!(
                        "import key {key} neither claimed nor found"
                    ))
                })?))
            })
            .collect()
    }

    /// Two statements for the whole chunk (the write path's `write` sends
    /// two per entitlement).
    async fn insert_entitlements(
        &self,
        entitlements: &[Entitlement],
        now: DateTime<Utc>,
    ) -> Res<()> {
        if entitlements.is_empty() {
            return Ok(());
        }
        let now = stored_time(now);
        let ids: Vec<&str> = entitlements.iter().map(|e| e.id.as_str()).collect();
        let accounts: Vec<&str> = entitlements
            .iter()
            .map(|e| e.terms.account_id.as_str())
            .collect();
        let units: Vec<&str> = entitlements.iter().map(|e| e.terms.unit.as_str()).collect();
        let owners: Vec<Option<&str>> = entitlements
            .iter()
            .map(|e| e.terms.owner.as_deref())
            .collect();
        let statuses: Vec<&str> = entitlements.iter().map(|e| e.status.as_str()).collect();
        let defaults: Vec<bool> = entitlements.iter().map(|e| e.terms.is_default).collect();
        let starts: Vec<NaiveDate> = entitlements.iter().map(|e| e.terms.start_date).collect();
        let ends: Vec<NaiveDate> = entitlements.iter().map(|e| e.terms.end_date).collect();
        let totals: Vec<Option<i64>> = entitlements
            .iter()
            .map(|e| e.terms.total.map(|q| q.milli()))
            .collect();
        let restricts: Vec<bool> = entitlements.iter().map(|e| e.terms.restrict).collect();
        let terms: Vec<Json<&Terms>> = entitlements.iter().map(|e| Json(&e.terms)).collect();
        let predecessors: Vec<Option<&str>> = entitlements
            .iter()
            .map(|e| e.predecessor_id.as_deref())
            .collect();
        let tx = self.inner();
        let rows = tx.prepare_cached(INSERT_ENTITLEMENTS).await?;
        tx.execute(
            &rows,
            &[
                &ids,
                &accounts,
                &units,
                &owners,
                &statuses,
                &defaults,
                &starts,
                &ends,
                &totals,
                &restricts,
                &terms,
                &predecessors,
                &now,
            ],
        )
        .await?;
        let balances = tx.prepare_cached(INSERT_BALANCES).await?;
        tx.execute(&balances, &[&ids]).await?;
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
