//! API keys, found by the hash of their secret.

use std::collections::BTreeSet;

use allot_store::model::{ApiKey, Role};
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, Row};

use crate::convert::{all, first, opt_ts_at, ts, ts_at};
use crate::error::{corrupt, Res};

const API_KEY: &str = "SELECT id, name, role, account_id, created_at, revoked_at FROM api_keys";

fn api_key(row: &Row) -> Res<ApiKey> {
    let role = row.get_ref(2)?.as_str()?;
    Ok(ApiKey {
        id: row.get(0)?,
        name: row.get(1)?,
        role: Role::parse(role).ok_or_else(|| corrupt("role", role))?,
        account_id: row.get(3)?,
        created_at: ts_at(row, 4)?,
        revoked_at: opt_ts_at(row, 5)?,
    })
}

pub(crate) fn insert(conn: &Connection, key: &ApiKey, secret_hash: &str) -> Res<()> {
    conn.prepare_cached(
        "INSERT INTO api_keys (id, secret_hash, name, role, account_id, created_at, revoked_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        key.id,
        secret_hash,
        key.name,
        key.role.as_str(),
        key.account_id,
        ts(key.created_at),
        key.revoked_at.map(ts),
    ])?;
    Ok(())
}

/// Revoked keys too: the caller decides what revocation means.
pub(crate) fn by_hash(conn: &Connection, secret_hash: &str) -> Res<Option<ApiKey>> {
    let mut stmt = conn.prepare_cached(&format!("{API_KEY} WHERE secret_hash = ?1"))?;
    first(&mut stmt, [secret_hash], api_key)
}

pub(crate) fn list(conn: &Connection) -> Res<Vec<ApiKey>> {
    let mut stmt = conn.prepare_cached(&format!("{API_KEY} ORDER BY id"))?;
    all(&mut stmt, [], api_key)
}

/// Of these ids, those of revoked keys (one indexed read each).
pub(crate) fn revoked(conn: &Connection, ids: &BTreeSet<String>) -> Res<BTreeSet<String>> {
    let mut stmt =
        conn.prepare_cached("SELECT 1 FROM api_keys WHERE id = ?1 AND revoked_at IS NOT NULL")?;
    let mut revoked = BTreeSet::new();
    for id in ids {
        if stmt.exists([id])? {
            revoked.insert(id.clone());
        }
    }
    Ok(revoked)
}

pub(crate) fn get(conn: &Connection, id: &str) -> Res<Option<ApiKey>> {
    first(
        &mut *conn.prepare_cached(&format!("{API_KEY} WHERE id = ?1"))?,
        [id],
        api_key,
    )
}

/// A revoked key keeps its first revocation time (the sequence decides
/// whether the key exists, under its lock).
pub(crate) fn revoke(conn: &Connection, id: &str, now: DateTime<Utc>) -> Res<()> {
    conn.prepare_cached(
        "UPDATE api_keys SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
    )?
    .execute(params![id, ts(now)])?;
    Ok(())
}

pub(crate) fn count(conn: &Connection) -> Res<u64> {
    let n: i64 = conn
        .prepare_cached("SELECT COUNT(*) FROM api_keys")?
        .query_row([], |r| r.get(0))?;
    Ok(u64::try_from(n).unwrap_or(0))
}
