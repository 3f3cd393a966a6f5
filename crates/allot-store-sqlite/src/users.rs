//! People's accounts (`allot_store::users`): one transaction writes a user
//! change with its audit entry.

use allot_store::audit::AuditContext;
use allot_store::model::Role;
use allot_store::users::{self, User};
use allot_store::StoreError;
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, Row};

use crate::audit;
use crate::convert::{all, first, opt_ts_at, ts, ts_at};
use crate::error::{corrupt, Res};

const USER: &str = "SELECT id, email, role, account_id, created_at, disabled_at, password_hash \
     FROM users";

fn user(row: &Row) -> Res<User> {
    let role = row.get_ref(2)?.as_str()?;
    Ok(User {
        id: row.get(0)?,
        email: row.get(1)?,
        role: Role::parse(role).ok_or_else(|| corrupt("role", role))?,
        account_id: row.get(3)?,
        created_at: ts_at(row, 4)?,
        disabled_at: opt_ts_at(row, 5)?,
    })
}

pub(crate) fn insert(
    conn: &mut Connection,
    u: &User,
    password_hash: &str,
    ctx: &AuditContext,
) -> Res<()> {
    let tx = conn.transaction()?;
    if by_email(&tx, &u.email)?.is_some() {
        return Err(StoreError::Conflict {
            code: "email_taken",
            message: format!("a user with email {} exists", u.email),
        }
        .into());
    }
    tx.prepare_cached(
        "INSERT INTO users (id, email, role, account_id, password_hash, created_at, disabled_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        u.id,
        u.email,
        u.role.as_str(),
        u.account_id,
        password_hash,
        ts(u.created_at),
        u.disabled_at.map(ts),
    ])?;
    audit::insert(&tx, &users::created(ctx, u))?;
    tx.commit()?;
    Ok(())
}

pub(crate) fn by_email(conn: &Connection, email: &str) -> Res<Option<(User, String)>> {
    let mut stmt = conn.prepare_cached(&format!("{USER} WHERE lower(email) = lower(?1)"))?;
    first(&mut stmt, [email], |r| Ok((user(r)?, r.get(6)?)))
}

pub(crate) fn by_id(conn: &Connection, id: &str) -> Res<Option<User>> {
    let mut stmt = conn.prepare_cached(&format!("{USER} WHERE id = ?1"))?;
    first(&mut stmt, [id], user)
}

pub(crate) fn list(conn: &Connection) -> Res<Vec<User>> {
    let mut stmt = conn.prepare_cached(&format!("{USER} ORDER BY id"))?;
    all(&mut stmt, [], user)
}

pub(crate) fn disable(
    conn: &mut Connection,
    id: &str,
    now: DateTime<Utc>,
    ctx: &AuditContext,
) -> Res<bool> {
    let tx = conn.transaction()?;
    let Some(before) = by_id(&tx, id)? else {
        return Ok(false);
    };
    if before.disabled_at.is_none() {
        tx.prepare_cached("UPDATE users SET disabled_at = ?2 WHERE id = ?1")?
            .execute(params![id, ts(now)])?;
        audit::insert(&tx, &users::disabled(ctx, &before, now))?;
    }
    tx.commit()?;
    Ok(true)
}

#[async_trait::async_trait]
impl allot_store::users::UserStore for crate::SqliteStore {
    async fn insert_user(
        &self,
        user: &User,
        password_hash: &str,
        audit: &AuditContext,
    ) -> allot_store::StoreResult<()> {
        let (u, hash, ctx) = (user.clone(), password_hash.to_string(), audit.clone());
        self.write(move |c, _| insert(c, &u, &hash, &ctx)).await
    }

    async fn user_by_email(&self, email: &str) -> allot_store::StoreResult<Option<(User, String)>> {
        let email = email.to_string();
        self.read(move |c, _| by_email(c, &email)).await
    }

    async fn user_by_id(&self, id: &str) -> allot_store::StoreResult<Option<User>> {
        let id = id.to_string();
        self.read(move |c, _| by_id(c, &id)).await
    }

    async fn list_users(&self) -> allot_store::StoreResult<Vec<User>> {
        self.read(|c, _| list(c)).await
    }

    async fn disable_user(
        &self,
        id: &str,
        now: DateTime<Utc>,
        audit: &AuditContext,
    ) -> allot_store::StoreResult<bool> {
        let (id, ctx) = (id.to_string(), audit.clone());
        self.write(move |c, _| disable(c, &id, now, &ctx)).await
    }
}
