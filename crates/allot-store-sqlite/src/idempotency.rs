//! Idempotency keys: claims outside the write path, answers inside it.

use allot_store::model::{IdempotencyRecord, KeyClaim};
use allot_store::plan::KeyWrite;
use allot_store::StoreError;
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, Row};

use crate::convert::{first, ts, ts_at};
use crate::error::Res;
use crate::tx::ImmediateTx;

pub(crate) const SELECT: &str =
    "SELECT fingerprint, answer, created_at FROM idempotency_keys WHERE scope = ?1 AND key = ?2";

pub(crate) fn record(row: &Row) -> Res<IdempotencyRecord> {
    let answer = match row.get_ref(1)?.as_str_or_null()? {
        Some(text) => Some(serde_json::from_str(text)?),
        None => None,
    };
    Ok(IdempotencyRecord {
        fingerprint: row.get(0)?,
        answer,
        created_at: ts_at(row, 2)?,
    })
}

pub(crate) fn get(conn: &Connection, scope: &str, key: &str) -> Res<Option<IdempotencyRecord>> {
    first(&mut *conn.prepare_cached(SELECT)?, [scope, key], record)
}

/// Records a batch item's answer; an unfinished claim on the same key gives way.
pub(crate) fn record_answer(conn: &Connection, k: &KeyWrite, now: &str) -> Res<()> {
    conn.prepare_cached(
        "INSERT INTO idempotency_keys (scope, key, fingerprint, answer, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5) \
         ON CONFLICT (scope, key) DO UPDATE SET fingerprint = excluded.fingerprint, \
         answer = excluded.answer, created_at = excluded.created_at \
         WHERE idempotency_keys.answer IS NULL",
    )?
    .execute(params![
        k.scope,
        k.key,
        k.fingerprint,
        serde_json::to_string(&k.answer)?,
        now
    ])?;
    Ok(())
}

pub(crate) struct Claim<'a> {
    pub scope: &'a str,
    pub key: &'a str,
    pub fingerprint: &'a str,
    pub now: DateTime<Utc>,
    pub stale_before: DateTime<Utc>,
}

pub(crate) fn claim(conn: &mut Connection, c: Claim<'_>) -> Res<KeyClaim> {
    let tx = ImmediateTx::begin(conn)?;
    let now = ts(c.now);
    let inserted = tx
        .prepare_cached(
            "INSERT INTO idempotency_keys (scope, key, fingerprint, answer, created_at) \
             VALUES (?1, ?2, ?3, NULL, ?4) ON CONFLICT (scope, key) DO NOTHING",
        )?
        .execute(params![c.scope, c.key, c.fingerprint, now])?;
    // A claim whose request never finished (the process died) may be taken over.
    let claimed = inserted == 1
        || tx
            .prepare_cached(
                "UPDATE idempotency_keys SET fingerprint = ?3, created_at = ?4 \
                 WHERE scope = ?1 AND key = ?2 AND answer IS NULL AND created_at < ?5",
            )?
            .execute(params![
                c.scope,
                c.key,
                c.fingerprint,
                now,
                ts(c.stale_before)
            ])?
            == 1;
    let outcome = if claimed {
        KeyClaim::Claimed
    } else {
        let record = get(&tx, c.scope, c.key)?.ok_or_else(|| {
            StoreError::Backend(format!("idempotency key {} vanished while claimed", c.key))
        })?;
        KeyClaim::Existing(record)
    };
    tx.commit()?;
    Ok(outcome)
}

pub(crate) fn finish(
    conn: &Connection,
    scope: &str,
    key: &str,
    answer: &serde_json::Value,
) -> Res<()> {
    conn.prepare_cached("UPDATE idempotency_keys SET answer = ?3 WHERE scope = ?1 AND key = ?2")?
        .execute(params![scope, key, serde_json::to_string(answer)?])?;
    Ok(())
}

pub(crate) fn abandon(conn: &Connection, scope: &str, key: &str) -> Res<()> {
    conn.prepare_cached(
        "DELETE FROM idempotency_keys WHERE scope = ?1 AND key = ?2 AND answer IS NULL",
    )?
    .execute([scope, key])?;
    Ok(())
}

pub(crate) fn purge(conn: &Connection, before: DateTime<Utc>) -> Res<u64> {
    let deleted = conn
        .prepare_cached("DELETE FROM idempotency_keys WHERE created_at < ?1")?
        .execute([ts(before)])?;
    Ok(deleted as u64)
}
