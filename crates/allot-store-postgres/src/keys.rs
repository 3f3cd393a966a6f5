//! Idempotency keys: reads and the purge (answers are written with the
//! change they answer, by `transaction`).

use allot_store::model::IdempotencyRecord;
use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;

use crate::error::Res;
use crate::rows::{self, KEY_COLS};

pub(crate) async fn get(pool: &Pool, scope: &str, key: &str) -> Res<Option<IdempotencyRecord>> {
    let client = pool.get().await?;
    let stmt = client
        .prepare_cached(&format!(
            "SELECT {KEY_COLS} FROM idempotency_keys WHERE scope = $1 AND key = $2"
        ))
        .await?;
    client
        .query_opt(&stmt, &[&scope, &key])
        .await?
        .map(|row| rows::key_record(&row, 0))
        .transpose()
}

pub(crate) async fn purge(pool: &Pool, before: DateTime<Utc>) -> Res<u64> {
    let client = pool.get().await?;
    let stmt = client
        .prepare_cached("DELETE FROM idempotency_keys WHERE created_at < $1")
        .await?;
    Ok(client.execute(&stmt, &[&before]).await?)
}
