//! People who sign in to the dashboard with an email and a password
//! (migration `0015_users`). Only the password's hash is stored (argon2id,
//! made by the server); an email is unique whatever its case. A disabled
//! user stays, so the audit trail keeps naming it.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::audit::{AuditContext, AuditEntry};
use crate::error::StoreResult;
use crate::model::Role;

/// A person's account: a role as a key has one, and for customers the one
/// account they see.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    pub id: String,
    pub email: String,
    pub role: Role,
    pub account_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub disabled_at: Option<DateTime<Utc>>,
}

/// The audit entry of a user's creation (never its password hash).
pub fn created(ctx: &AuditContext, user: &User) -> AuditEntry {
    AuditEntry::new(
        ctx,
        "user.create",
        "user",
        &user.id,
        None,
        serde_json::to_value(user).ok(),
        user.created_at,
    )
}

/// The audit entry of disabling `before`.
pub fn disabled(ctx: &AuditContext, before: &User, now: DateTime<Utc>) -> AuditEntry {
    let after = User {
        disabled_at: Some(now),
        ..before.clone()
    };
    AuditEntry::new(
        ctx,
        "user.disable",
        "user",
        &before.id,
        serde_json::to_value(before).ok(),
        serde_json::to_value(&after).ok(),
        now,
    )
}

#[async_trait]
pub trait UserStore {
    /// Stores the user with its password hash and its audit entry, in one
    /// transaction; an email already taken (any case) is
    /// `StoreError::Conflict` `email_taken`.
    async fn insert_user(
        &self,
        user: &User,
        password_hash: &str,
        audit: &AuditContext,
    ) -> StoreResult<()>;

    /// The user of this email (any case), disabled too, with its password
    /// hash.
    async fn user_by_email(&self, email: &str) -> StoreResult<Option<(User, String)>>;

    async fn user_by_id(&self, id: &str) -> StoreResult<Option<User>>;

    /// Every user, in id order.
    async fn list_users(&self) -> StoreResult<Vec<User>>;

    /// Disables the user once (audited then); whether it exists.
    async fn disable_user(
        &self,
        id: &str,
        now: DateTime<Utc>,
        audit: &AuditContext,
    ) -> StoreResult<bool>;
}
