//! API keys (only their hashes are stored).

use allot_store::audit::{snapshot, AuditContext, AuditEntry};
use allot_store::model::ApiKey;
use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;

use crate::audit;
use crate::error::Res;
use crate::rows::{self, API_KEY_COLS};

/// The audit entry shows the key, never its hash.
pub(crate) async fn insert(
    pool: &Pool,
    key: &ApiKey,
    secret_hash: &str,
    ctx: &AuditContext,
) -> Res<()> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let stmt = tx
        .prepare_cached(
            "INSERT INTO api_keys (id, secret_hash, name, role, account_id, created_at, revoked_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .await?;
    tx.execute(
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
    let entry = AuditEntry::new(
        ctx,
        "api_key.create",
        "api_key",
        &key.id,
        None,
        snapshot(key),
        key.created_at,
    );
    audit::write(&tx, &entry).await?;
    tx.commit().await?;
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

/// Keeps the first revocation time; true when the key exists. Only the
/// revocation that changes the key is audited.
pub(crate) async fn revoke(
    pool: &Pool,
    id: &str,
    now: DateTime<Utc>,
    ctx: &AuditContext,
) -> Res<bool> {
    let now = rows::micros(now);
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let select = tx
        .prepare_cached(&format!(
            "SELECT {API_KEY_COLS} FROM api_keys WHERE id = $1 FOR UPDATE"
        ))
        .await?;
    let Some(row) = tx.query_opt(&select, &[&id]).await? else {
        return Ok(false);
    };
    let before = rows::api_key(&row)?;
    if before.revoked_at.is_some() {
        return Ok(true);
    }
    let update = tx
        .prepare_cached("UPDATE api_keys SET revoked_at = $2 WHERE id = $1")
        .await?;
    tx.execute(&update, &[&id, &now]).await?;
    let after = ApiKey {
        revoked_at: Some(now),
        ..before.clone()
    };
    let entry = AuditEntry::new(
        ctx,
        "api_key.revoke",
        "api_key",
        id,
        snapshot(&before),
        snapshot(&after),
        now,
    );
    audit::write(&tx, &entry).await?;
    tx.commit().await?;
    Ok(true)
}

pub(crate) async fn count(pool: &Pool) -> Res<u64> {
    let client = pool.get().await?;
    let stmt = client
        .prepare_cached("SELECT count(*) FROM api_keys")
        .await?;
    let n: i64 = client.query_one(&stmt, &[]).await?.try_get(0)?;
    Ok(u64::try_from(n).unwrap_or(0))
}
