//! People's accounts: an email, a role, a password stored only as its
//! argon2id hash (default parameters, a random salt, PHC string). A person
//! signs in to the dashboard and then acts exactly as a key of that role
//! would (`Principal`, with the user's id as the actor).

use std::sync::OnceLock;

use allot_store::audit::AuditContext;
use allot_store::ids::UserId;
use allot_store::model::Role;
use allot_store::users::User;
use allot_store::{Store, StoreError, StoreResult};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use chrono::{DateTime, Utc};
use rand::RngCore;

use crate::auth::{reach, Reach};

/// Shortest password accepted.
pub const MIN_PASSWORD: usize = 12;
/// Longest password accepted (hashing cost is bounded by the input).
pub const MAX_PASSWORD: usize = 1024;

/// The argon2id hash of `password` (PHC string, random salt).
pub fn hash_password(password: &str) -> String {
    let mut salt = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).expect("16 bytes make a salt");
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 with default parameters hashes any password")
        .to_string()
}

/// Whether `password` is the one `phc` was made from (false on a hash
/// this code cannot read).
pub fn password_matches(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// A hash checked when the email is unknown, so an unknown email costs the
/// same time as a wrong password (no one learns which emails exist).
pub fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| hash_password(&crate::dashboard::session::token()))
}

/// Checks a sign-in: the user of `email` when `password` is its password
/// and it is not disabled; `None` otherwise, after the same work either way.
pub async fn sign_in(store: &dyn Store, email: &str, password: &str) -> StoreResult<Option<User>> {
    let found = store.user_by_email(email.trim()).await?;
    let hash = found
        .as_ref()
        .map_or(dummy_hash(), |(_, hash)| hash.as_str())
        .to_string();
    let password = password.to_string();
    let matches = tokio::task::spawn_blocking(move || password_matches(&password, &hash))
        .await
        .unwrap_or(false);
    Ok(found
        .filter(|(u, _)| matches && u.disabled_at.is_none())
        .map(|(u, _)| u))
}

/// What a new user must satisfy, as the field it fails on and why.
pub fn check_new_user(
    email: &str,
    role: Role,
    account_id: Option<&str>,
    password: &str,
) -> Result<(), (&'static str, String)> {
    if email.len() > 254 || !allot_core::alerts::is_email_address(email) {
        return Err(("email", "must be an e-mail address".into()));
    }
    match (reach(role), account_id) {
        (Reach::OwnAccount, None) => {
            return Err(("account", "is required for customer users".into()))
        }
        (Reach::AllAccounts, Some(_)) => {
            return Err((
                "account",
                "only customer users are bound to an account".into(),
            ))
        }
        _ => {}
    }
    let length = password.chars().count();
    if !(MIN_PASSWORD..=MAX_PASSWORD).contains(&length) {
        return Err((
            "password",
            format!("must be {MIN_PASSWORD} to {MAX_PASSWORD} characters"),
        ));
    }
    Ok(())
}

/// Creates a user (checked by `check_new_user`, its account existing),
/// audited as `audit`'s actor.
pub async fn create_user(
    store: &dyn Store,
    email: &str,
    role: Role,
    account_id: Option<String>,
    password: &str,
    now: DateTime<Utc>,
    audit: &AuditContext,
) -> StoreResult<User> {
    let email = email.trim();
    check_new_user(email, role, account_id.as_deref(), password).map_err(|(field, why)| {
        StoreError::Conflict {
            code: "invalid_user",
            message: format!("{field} {why}"),
        }
    })?;
    if let Some(id) = &account_id {
        if store.get_account(id).await?.is_none() {
            return Err(StoreError::Conflict {
                code: "invalid_user",
                message: format!("account {id} does not exist"),
            });
        }
    }
    let user = User {
        id: UserId::new(now).into_string(),
        email: email.to_string(),
        role,
        account_id,
        created_at: allot_store::clock::stored_time(now),
        disabled_at: None,
    };
    let password = password.to_string();
    let hash = tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(StoreError::backend)?;
    store.insert_user(&user, &hash, audit).await?;
    Ok(user)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_matches_its_own_argon2id_hash_only() {
        let hash = hash_password("correct horse battery");
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(password_matches("correct horse battery", &hash));
        assert!(!password_matches("correct horse batterz", &hash));
        assert!(!password_matches("correct horse battery", "not a hash"));
        // A fresh salt each time: the same password, two hashes.
        assert_ne!(hash, hash_password("correct horse battery"));
        assert!(!password_matches("", dummy_hash()));
    }

    #[test]
    fn a_new_user_names_the_field_it_fails_on() {
        let ok = "long enough pass";
        assert_eq!(
            check_new_user("a@b.example", Role::Manager, None, ok),
            Ok(())
        );
        assert_eq!(
            check_new_user("a@b.example", Role::Customer, Some("acc_1"), ok),
            Ok(())
        );
        let field =
            |e: &str, r: Role, a: Option<&str>, p: &str| check_new_user(e, r, a, p).unwrap_err().0;
        assert_eq!(field("nobody", Role::Manager, None, ok), "email");
        assert_eq!(field("a@b.example", Role::Customer, None, ok), "account");
        assert_eq!(
            field("a@b.example", Role::Agent, Some("acc_1"), ok),
            "account"
        );
        assert_eq!(field("a@b.example", Role::Agent, None, "short"), "password");
    }
}
