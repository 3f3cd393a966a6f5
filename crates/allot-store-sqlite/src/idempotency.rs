//! Idempotency keys: answers recorded with the change they answer.

use allot_store::model::IdempotencyRecord;
use allot_store::plan::KeyWrite;
use allot_store::StoreError;
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, Row};

use crate::convert::{first, ts, ts_at};
use crate::error::Res;

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

/// Records an answer; an unfinished claim (left by an earlier version) on
/// the same key gives way, a recorded answer does not: that is a request
/// with the same key that got there first.
pub(crate) fn record_answer(conn: &Connection, k: &KeyWrite, now: &str) -> Res<()> {
    let changed = conn
        .prepare_cached(
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
    if changed == 1 {
        Ok(())
    } else {
        Err(StoreError::Conflict {
            code: "idempotency_key_in_flight",
            message: "a request with this Idempotency-Key was answered meanwhile".into(),
        }
        .into())
    }
}

pub(crate) fn purge(conn: &Connection, before: DateTime<Utc>) -> Res<u64> {
    let deleted = conn
        .prepare_cached("DELETE FROM idempotency_keys WHERE created_at < ?1")?
        .execute([ts(before)])?;
    Ok(deleted as u64)
}
