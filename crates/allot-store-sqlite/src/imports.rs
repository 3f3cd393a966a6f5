//! Imports: the one transaction `allot_store::imports::run_import` runs in
//! (on the writer thread, which it holds until the file ends), and the
//! reads its checks make (one statement per chunk of keys).

use allot_store::imports::{self as seq, ImportMsg, ImportOutcome, ImportStore, Table};
use allot_store::StoreResult;
use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::types::Value;
use rusqlite::{params_from_iter, Connection};
use tokio::sync::mpsc::Receiver;

use crate::convert::{all, placeholders};
use crate::error::Res;
use crate::transaction::{self, SqliteTx};
use crate::SqliteStore;

/// The writer's page cache while an import holds it. One import's
/// transaction dirties far more pages than the usual cache holds; each one
/// spilled to the WAL early is read back from it by the next chunk that
/// touches it (the ledger's and the keys' indexes). Given back at the end.
const IMPORT_CACHE_KIB: i64 = 32 * 1024;

/// The file's usage keys: a temporary table (SQLite's temp store is a file
/// behind a small cache: memory stays bounded).
impl seq::ImportTx for SqliteTx<'_> {
    async fn start_import_keys(&self) -> Res<()> {
        self.conn().execute_batch(
            "DROP TABLE IF EXISTS temp.import_keys; \
             CREATE TEMP TABLE import_keys (key TEXT PRIMARY KEY, row INTEGER NOT NULL) \
             WITHOUT ROWID;",
        )?;
        Ok(())
    }

    async fn claim_import_keys(&self, keys: &[(&str, u64)]) -> Res<Vec<Option<u64>>> {
        let conn = self.conn();
        let mut claim = conn.prepare_cached(
            "INSERT INTO temp.import_keys (key, row) VALUES (?1, ?2) ON CONFLICT (key) DO NOTHING",
        )?;
        let mut earlier = conn.prepare_cached("SELECT row FROM temp.import_keys WHERE key = ?1")?;
        let mut claims = Vec::with_capacity(keys.len());
        for (key, row) in keys {
            if claim.execute(rusqlite::params![key, *row as i64])? == 1 {
                claims.push(None);
            } else {
                let first: i64 = earlier.query_row([key], |r| r.get(0))?;
                claims.push(Some(first as u64));
            }
        }
        Ok(claims)
    }

    async fn insert_entitlements(
        &self,
        entitlements: &[allot_core::Entitlement],
        now: DateTime<Utc>,
    ) -> Res<()> {
        let at = crate::convert::ts(allot_store::clock::stored_time(now));
        for entitlement in entitlements {
            crate::entitlements::insert_rows(self.conn(), entitlement, &at)?;
        }
        Ok(())
    }

    async fn finish_import_keys(&self) -> Res<()> {
        self.conn()
            .execute_batch("DROP TABLE IF EXISTS temp.import_keys")?;
        Ok(())
    }
}

fn keyed<T>(
    conn: &Connection,
    sql: &str,
    keys: &[String],
    row: impl Fn(&rusqlite::Row) -> Res<T>,
) -> Res<Vec<T>> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let sql = sql.replace("{keys}", &placeholders(keys.len()));
    let args = keys.iter().cloned().map(Value::Text);
    all(&mut conn.prepare(&sql)?, params_from_iter(args), row)
}

#[async_trait]
impl ImportStore for SqliteStore {
    async fn run_import(
        &self,
        mut feed: Receiver<ImportMsg>,
        today: NaiveDate,
        now: DateTime<Utc>,
    ) -> StoreResult<ImportOutcome> {
        // The import holds the writer while its checks read: without reader
        // connections those reads would wait on the writer for ever.
        if self.readers.is_none() {
            return Err(allot_store::StoreError::Conflict {
                code: "imports_need_readers",
                message: "imports need a file database with reader connections (readers > 0)"
                    .into(),
            });
        }
        self.write(move |c, cache| {
            let usual: i64 = c.query_row("PRAGMA cache_size", [], |r| r.get(0))?;
            c.pragma_update(None, "cache_size", -IMPORT_CACHE_KIB)?;
            let outcome = transaction::run(c, cache, |tx| async move {
                seq::run_import(tx, &mut feed, today, now).await
            });
            c.pragma_update(None, "cache_size", usual)?;
            outcome
        })
        .await
    }

    async fn existing_ids(
        &self,
        table: Table,
        ids: &[String],
    ) -> StoreResult<Vec<(String, Option<String>)>> {
        let sql = match table {
            Table::Accounts => "SELECT id, NULL FROM accounts WHERE id IN ({keys})",
            Table::Contacts => "SELECT id, account_id FROM contacts WHERE id IN ({keys})",
            Table::Products => "SELECT id, NULL FROM products WHERE id IN ({keys})",
            Table::Entitlements => "SELECT id, account_id FROM entitlements WHERE id IN ({keys})",
        };
        let ids = ids.to_vec();
        self.read(move |c, _| keyed(c, sql, &ids, |r| Ok((r.get(0)?, r.get(1)?))))
            .await
    }

    async fn accounts_by_external_id(&self, keys: &[String]) -> StoreResult<Vec<(String, String)>> {
        let keys = keys.to_vec();
        self.read(move |c, _| {
            keyed(
                c,
                "SELECT external_id, id FROM accounts WHERE external_id IN ({keys})",
                &keys,
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
        })
        .await
    }

    async fn products_by_sku(&self, skus: &[String]) -> StoreResult<Vec<(String, String)>> {
        let skus = skus.to_vec();
        self.read(move |c, _| {
            keyed(
                c,
                "SELECT sku, MIN(id) FROM products WHERE sku IN ({keys}) GROUP BY sku",
                &skus,
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
        })
        .await
    }

    async fn accounts_with_default(&self, account_ids: &[String]) -> StoreResult<Vec<String>> {
        let ids = account_ids.to_vec();
        self.read(move |c, _| {
            keyed(
                c,
                "SELECT DISTINCT account_id FROM entitlements WHERE account_id IN ({keys}) \
                 AND is_default = 1 AND status IN ('draft', 'waiting', 'active')",
                &ids,
                |r| Ok(r.get(0)?),
            )
        })
        .await
    }
}
