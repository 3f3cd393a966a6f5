//! API keys (only their hashes are stored).

use allot_store::model::ApiKey;
use deadpool_postgres::Pool;

use crate::error::Res;
use crate::rows::{self, API_KEY_COLS};

/// Revoked keys too: the caller decides what a revoked key means.
pub(crate) async fn by_hash(pool: &Pool, secret_hash: &str) -> Res<Option<ApiKey>> {
    let client = pool.get().await?;
    let stmt = client
        .prepare_cached(&format!(
            "SELECT {API_KEY_COLS} FROM api_keys WHERE secret_hash = $1"
        ))
        .await?;
    client
        .query_opt(&stmt, &[&secret_hash])
        .await?
        .map(|row| rows::api_key(&row))
        .transpose()
}

pub(crate) async fn list(pool: &Pool) -> Res<Vec<ApiKey>> {
    let client = pool.get().await?;
    let stmt = client
        .prepare_cached(&format!("SELECT {API_KEY_COLS} FROM api_keys ORDER BY id"))
        .await?;
    client
        .query(&stmt, &[])
        .await?
        .iter()
        .map(rows::api_key)
        .collect()
}

/// Keeps the first revocation time; true when the key exists. Only the
/// revocation that changes the key is audited.
pub(crate) async fn count(pool: &Pool) -> Res<u64> {
    let client = pool.get().await?;
    let stmt = client
        .prepare_cached("SELECT count(*) FROM api_keys")
        .await?;
    let n: i64 = client.query_one(&stmt, &[]).await?.try_get(0)?;
    Ok(u64::try_from(n).unwrap_or(0))
}
