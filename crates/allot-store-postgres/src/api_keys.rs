//! API keys (only their hashes are stored).

use allot_store::model::ApiKey;
use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;

use crate::error::Res;
use crate::rows::{self, API_KEY_COLS};

pub(crate) async fn insert(pool: &Pool, key: &ApiKey, secret_hash: &str) -> Res<()> {
    let client = pool.get().await?;
    let stmt = client
        .prepare_cached(
            "INSERT INTO api_keys (id, secret_hash, name, role, account_id, created_at, revoked_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .await?;
    client
        .execute(
            &stmt,
            &[
                &key.id,
                &secret_hash,
                &key.name,
                &key.role.as_str(),
                &key.account_id,
                &key.created_at,
                &key.revoked_at,
            ],
        )
        .await?;
    Ok(())
}

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

/// Keeps the first revocation time; true when the key exists.
pub(crate) async fn revoke(pool: &Pool, id: &str, now: DateTime<Utc>) -> Res<bool> {
    let client = pool.get().await?;
    let stmt = client
        .prepare_cached("UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1")
        .await?;
    Ok(client.execute(&stmt, &[&id, &now]).await? == 1)
}

pub(crate) async fn count(pool: &Pool) -> Res<u64> {
    let client = pool.get().await?;
    let stmt = client
        .prepare_cached("SELECT count(*) FROM api_keys")
        .await?;
    let n: i64 = client.query_one(&stmt, &[]).await?.try_get(0)?;
    Ok(u64::try_from(n).unwrap_or(0))
}
