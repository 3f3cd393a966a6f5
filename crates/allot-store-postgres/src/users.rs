//! People's accounts (`allot_store::users`): one transaction writes a user
//! change with its audit entry.

use allot_store::audit::AuditContext;
use allot_store::model::Role;
use allot_store::users::{self, User, UserStore};
use allot_store::{StoreError, StoreResult};
use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use tokio_postgres::Row;

use crate::audit::{AuditColumns, WRITE_ALL};
use crate::error::{Error, Res};
use crate::PostgresStore;

const USER: &str = "SELECT id, email, role, account_id, created_at, disabled_at, password_hash \
     FROM users";

fn user(r: &Row) -> Res<User> {
    let role: String = r.try_get(2)?;
    Ok(User {
        id: r.try_get(0)?,
        email: r.try_get(1)?,
        role: Role::parse(&role).ok_or_else(|| Error::data(format!("role {role:?}")))?,
        account_id: r.try_get(3)?,
        created_at: r.try_get(4)?,
        disabled_at: r.try_get(5)?,
    })
}

async fn insert(pool: &Pool, u: &User, password_hash: &str, ctx: &AuditContext) -> Res<()> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    // The unique index on lower(email) decides, so two creations of one
    // email at once give one user and one `email_taken`, never a 500.
    let inserted = tx
        .execute(
            "INSERT INTO users (id, email, role, account_id, password_hash, created_at, disabled_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
            &[
                &u.id,
                &u.email,
                &u.role.as_str(),
                &u.account_id,
                &password_hash,
                &u.created_at,
                &u.disabled_at,
            ],
        )
        .await?;
    if inserted == 0 {
        return Err(Error::Store(StoreError::Conflict {
            code: "email_taken",
            message: format!("a user with email {} exists", u.email),
        }));
    }
    let entries = [users::created(ctx, u)];
    tx.execute(WRITE_ALL, &AuditColumns::of(&entries).params())
        .await?;
    tx.commit().await?;
    Ok(())
}

async fn by_email(pool: &Pool, email: &str) -> Res<Option<(User, String)>> {
    let client = pool.get().await?;
    let row = client
        .query_opt(&format!("{USER} WHERE lower(email) = lower($1)"), &[&email])
        .await?;
    row.map(|r| Ok((user(&r)?, r.try_get(6)?))).transpose()
}

async fn by_id(pool: &Pool, id: &str) -> Res<Option<User>> {
    let client = pool.get().await?;
    let row = client
        .query_opt(&format!("{USER} WHERE id = $1"), &[&id])
        .await?;
    row.as_ref().map(user).transpose()
}

async fn list(pool: &Pool) -> Res<Vec<User>> {
    let client = pool.get().await?;
    client
        .query(&format!("{USER} ORDER BY id"), &[])
        .await?
        .iter()
        .map(user)
        .collect()
}

async fn disable(pool: &Pool, id: &str, now: DateTime<Utc>, ctx: &AuditContext) -> Res<bool> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let Some(row) = tx
        .query_opt(&format!("{USER} WHERE id = $1 FOR UPDATE"), &[&id])
        .await?
    else {
        return Ok(false);
    };
    let before = user(&row)?;
    if before.disabled_at.is_none() {
        tx.execute(
            "UPDATE users SET disabled_at = $2 WHERE id = $1",
            &[&id, &now],
        )
        .await?;
        let entries = [users::disabled(ctx, &before, now)];
        tx.execute(WRITE_ALL, &AuditColumns::of(&entries).params())
            .await?;
    }
    tx.commit().await?;
    Ok(true)
}

#[async_trait::async_trait]
impl UserStore for PostgresStore {
    async fn insert_user(
        &self,
        user: &User,
        password_hash: &str,
        audit: &AuditContext,
    ) -> StoreResult<()> {
        Ok(insert(&self.pool, user, password_hash, audit).await?)
    }

    async fn user_by_email(&self, email: &str) -> StoreResult<Option<(User, String)>> {
        Ok(by_email(&self.pool, email).await?)
    }

    async fn user_by_id(&self, id: &str) -> StoreResult<Option<User>> {
        Ok(by_id(&self.pool, id).await?)
    }

    async fn list_users(&self) -> StoreResult<Vec<User>> {
        Ok(list(&self.pool).await?)
    }

    async fn disable_user(
        &self,
        id: &str,
        now: DateTime<Utc>,
        audit: &AuditContext,
    ) -> StoreResult<bool> {
        Ok(disable(&self.pool, id, now, audit).await?)
    }
}
