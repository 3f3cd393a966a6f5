//! Idempotency keys outside the write path.

use allot_store::model::{IdempotencyRecord, KeyClaim};
use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;

use crate::error::{Error, Res};
use crate::rows::{self, KEY_COLS};

/// A row can vanish between our statements (abandoned or purged); then the
/// claim starts over, a few times at most.
const CLAIM_ROUNDS: usize = 3;

pub(crate) async fn claim(
    pool: &Pool,
    scope: &str,
    key: &str,
    fingerprint: &str,
    now: DateTime<Utc>,
    stale_before: DateTime<Utc>,
) -> Res<KeyClaim> {
    let client = pool.get().await?;
    let insert = client
        .prepare_cached(
            "INSERT INTO idempotency_keys (scope, key, fingerprint, answer, created_at)
             VALUES ($1, $2, $3, NULL, $4) ON CONFLICT DO NOTHING RETURNING 1",
        )
        .await?;
    // The condition is checked again on the locked row, so of two takeovers
    // racing only the first matches: the second sees a fresh created_at.
    let take_over = client
        .prepare_cached(
            "UPDATE idempotency_keys SET fingerprint = $3, created_at = $4
             WHERE scope = $1 AND key = $2 AND answer IS NULL AND created_at < $5",
        )
        .await?;
    let select = client
        .prepare_cached(&format!(
            "SELECT {KEY_COLS} FROM idempotency_keys WHERE scope = $1 AND key = $2"
        ))
        .await?;
    for _ in 0..CLAIM_ROUNDS {
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 4] =
            [&scope, &key, &fingerprint, &now];
        if client.query_opt(&insert, &params).await?.is_some() {
            return Ok(KeyClaim::Claimed);
        }
        let took = client
            .execute(
                &take_over,
                &[&scope, &key, &fingerprint, &now, &stale_before],
            )
            .await?;
        if took == 1 {
            return Ok(KeyClaim::Claimed);
        }
        if let Some(row) = client.query_opt(&select, &[&scope, &key]).await? {
            return Ok(KeyClaim::Existing(rows::key_record(&row, 0)?));
        }
    }
    Err(Error::data(format!(
        "idempotency key {key:?} kept changing while being claimed"
    )))
}

pub(crate) async fn finish(
    pool: &Pool,
    scope: &str,
    key: &str,
    answer: &serde_json::Value,
) -> Res<()> {
    let client = pool.get().await?;
    let stmt = client
        .prepare_cached("UPDATE idempotency_keys SET answer = $3 WHERE scope = $1 AND key = $2")
        .await?;
    client.execute(&stmt, &[&scope, &key, answer]).await?;
    Ok(())
}

pub(crate) async fn abandon(pool: &Pool, scope: &str, key: &str) -> Res<()> {
    let client = pool.get().await?;
    let stmt = client
        .prepare_cached(
            "DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2 AND answer IS NULL",
        )
        .await?;
    client.execute(&stmt, &[&scope, &key]).await?;
    Ok(())
}

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
