//! API keys and roles: who is calling, and what they may do.

use allot_store::ids::ApiKeyId;
use allot_store::model::{ApiKey, Role};
use allot_store::{AuditContext, Store, StoreResult};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;
use chrono::{DateTime, Utc};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::state::AppState;

/// The caller, as established from its API key.
#[derive(Debug, Clone)]
pub struct Principal {
    pub key_id: String,
    pub role: Role,
    /// For customer keys: the only account they may see.
    pub account_id: Option<String>,
    pub request_id: Option<String>,
}

impl Principal {
    /// Who is acting, for the audit trail.
    pub fn audit(&self) -> AuditContext {
        AuditContext {
            actor: self.key_id.clone(),
            role: self.role.as_str().to_string(),
            request_id: self.request_id.clone(),
        }
    }
}

/// Who acts when someone with database access runs `allot keys` or the
/// first `allot serve` (no API key exists yet).
pub fn operator() -> AuditContext {
    AuditContext {
        actor: "operator".into(),
        role: "operator".into(),
        request_id: None,
    }
}

/// Keys are stored only as this hash.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// A new key and its secret (not stored yet).
pub fn new_key(
    role: Role,
    account_id: Option<String>,
    name: Option<String>,
    now: DateTime<Utc>,
) -> (ApiKey, String) {
    let mut bytes = [0u8; 24];
    rand::thread_rng().fill_bytes(&mut bytes);
    let secret = format!("allot_{}", hex::encode(bytes));
    let key = ApiKey {
        id: ApiKeyId::new(now).into_string(),
        name,
        role,
        account_id,
        created_at: now,
        revoked_at: None,
    };
    (key, secret)
}

/// Creates a key and returns it with its secret, which is shown once.
pub async fn create_key(
    store: &dyn Store,
    role: Role,
    account_id: Option<String>,
    name: Option<String>,
    now: DateTime<Utc>,
    audit: &AuditContext,
) -> StoreResult<(ApiKey, String)> {
    let (key, secret) = new_key(role, account_id, name, now);
    store
        .insert_api_key(&key, &hash_secret(&secret), audit, None)
        .await?;
    Ok((key, secret))
}

/// How long a resolved key is trusted by default (`Config::key_cache_ms`).
pub const DEFAULT_KEY_CACHE_MS: u64 = 1_000;

/// Most keys the cache holds; past it, it starts again empty.
const KEY_CACHE_LIMIT: usize = 10_000;

/// API keys resolved recently, by the hash of their secret, so a request
/// bound for the write path needs no key query. Revocation stays immediate:
///
/// - a request bound for the write path (the `Submission` extractor)
///   trusts a key resolved at most `fresh_for` ago; the write path reads,
///   inside its transaction, whether each of the batch's keys is revoked
///   (`WriteTx::revoked_keys`): a revoked key's use is refused (401) and
///   never applied, whichever instance (or `allot keys revoke`) revoked it;
/// - every other request (reads, changes off the write path) takes its
///   caller through the `Principal` extractor, which confirms a key served
///   from the cache with the database (`confirm`) before the handler runs;
/// - a revocation through this process evicts the key at once.
///
/// Only live keys are held: an unknown or revoked secret asks the database
/// every time.
pub struct KeyCache {
    fresh_for: std::time::Duration,
    keys: std::sync::Mutex<std::collections::HashMap<String, (ApiKey, std::time::Instant)>>,
}

impl KeyCache {
    pub fn new(fresh_for: std::time::Duration) -> Self {
        KeyCache {
            fresh_for,
            keys: std::sync::Mutex::new(std::collections::HashMap::new()),
        }
    }

    /// The key behind this hash, if it was resolved less than `fresh_for` ago.
    fn fresh(&self, hash: &str) -> Option<ApiKey> {
        let keys = self.keys.lock().ok()?;
        let (key, resolved) = keys.get(hash)?;
        (resolved.elapsed() < self.fresh_for).then(|| key.clone())
    }

    fn remember(&self, hash: String, key: &ApiKey) {
        if self.fresh_for.is_zero() {
            return;
        }
        if let Ok(mut keys) = self.keys.lock() {
            if keys.len() >= KEY_CACHE_LIMIT && !keys.contains_key(&hash) {
                keys.clear();
            }
            keys.insert(hash, (key.clone(), std::time::Instant::now()));
        }
    }

    /// Forgets the key with this id (it was revoked through this process).
    pub fn evict(&self, key_id: &str) {
        if let Ok(mut keys) = self.keys.lock() {
            keys.retain(|_, (key, _)| key.id != key_id);
        }
    }

    /// The live key behind `secret`, and whether it came from the cache
    /// (unconfirmed) rather than from the store (then remembered).
    async fn resolve(&self, store: &dyn Store, secret: &str) -> Result<Resolved, ApiError> {
        let hash = hash_secret(secret);
        if let Some(key) = self.fresh(&hash) {
            return Ok(Resolved {
                key,
                unconfirmed: Some(Unconfirmed(hash)),
            });
        }
        let key = self.lookup(store, hash).await?;
        Ok(Resolved {
            key,
            unconfirmed: None,
        })
    }

    /// Asks the store for the key behind `hash`: remembered when live,
    /// forgotten when revoked.
    async fn lookup(&self, store: &dyn Store, hash: String) -> Result<ApiKey, ApiError> {
        match store.api_key_by_hash(&hash).await? {
            Some(key) if key.revoked_at.is_none() => {
                self.remember(hash, &key);
                Ok(key)
            }
            Some(key) => {
                self.evict(&key.id);
                Err(ApiError::Unauthorized)
            }
            None => Err(ApiError::Unauthorized),
        }
    }
}

struct Resolved {
    key: ApiKey,
    unconfirmed: Option<Unconfirmed>,
}

/// In a request's extensions: its key came from the cache, by this hash;
/// the `Principal` extractor confirms it with the database.
#[derive(Clone)]
struct Unconfirmed(String);

/// Resolves the bearer key on every `/v1` request (`KeyCache`: what it
/// says about revocation holds here).
pub async fn authenticate(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let secret = req
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|s| !s.is_empty() && s.len() <= 256)
        .ok_or(ApiError::Unauthorized)?;
    let Resolved { key, unconfirmed } = state.keys.resolve(state.store.as_ref(), secret).await?;
    if let Some(unconfirmed) = unconfirmed {
        req.extensions_mut().insert(unconfirmed);
    }
    let request_id = req
        .extensions()
        .get::<crate::request_id::RequestId>()
        .map(|r| r.0.clone());
    req.extensions_mut().insert(Principal {
        key_id: key.id,
        role: key.role,
        account_id: key.account_id,
        request_id,
    });
    Ok(next.run(req).await)
}

/// The caller of a request off the write path: a key served from the
/// cache is confirmed with the database first (`KeyCache`), so a key
/// revoked anywhere reads and changes nothing from then on.
impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if let Some(Unconfirmed(hash)) = parts.extensions.remove::<Unconfirmed>() {
            state.keys.lookup(state.store.as_ref(), hash).await?;
        }
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .ok_or(ApiError::Unauthorized)
    }
}

/// What a role may do; one table, checked by every handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// Read accounts, entitlements, balances, usage (customers: their own).
    Read,
    /// Create and edit accounts, contacts, products, entitlements; lifecycle.
    Manage,
    /// Record usage and reservations.
    RecordUsage,
    /// Post adjustments to usage.
    Adjust,
    /// Open a case (customers: on their own account, from the portal).
    OpenCases,
    /// Resolve, cancel, reactivate and delete cases; log time.
    WorkCases,
    /// Read the event feed, which spans every account.
    ReadEvents,
    /// API keys and other settings.
    Administer,
    /// Allocate and free software rights.
    AllocateSoftware,
    /// Post installations (discovery tools, inventory feeds).
    RecordInstallations,
    /// Read reconciliations, which span every account.
    ReadCompliance,
    /// Read entitlement templates (the tiers of every customer).
    ReadTemplates,
}

pub fn allows(role: Role, permission: Permission) -> bool {
    use Permission::*;
    match role {
        Role::Admin => true,
        Role::Manager => permission != Administer,
        Role::Agent => matches!(
            permission,
            Read | RecordUsage
                | OpenCases
                | WorkCases
                | ReadEvents
                | AllocateSoftware
                | ReadCompliance
                | ReadTemplates
        ),
        Role::Customer => matches!(permission, Read | OpenCases),
        Role::Integration => matches!(permission, RecordUsage | RecordInstallations),
    }
}

/// Which accounts a role reaches, beside what it may do (`allows`): the
/// one place that decides who sees which account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    AllAccounts,
    /// Only the account its key was issued for; every other account's
    /// objects do not exist to it (404).
    OwnAccount,
}

pub fn reach(role: Role) -> Reach {
    match role {
        Role::Customer => Reach::OwnAccount,
        Role::Admin | Role::Manager | Role::Agent | Role::Integration => Reach::AllAccounts,
    }
}

impl Principal {
    pub fn require(&self, permission: Permission) -> Result<(), ApiError> {
        if allows(self.role, permission) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "a {} key may not do this",
                self.role.as_str()
            )))
        }
    }

    /// Whether this caller may see the account's objects at all (`reach`).
    pub fn sees_account(&self, account_id: &str) -> bool {
        match reach(self.role) {
            Reach::OwnAccount => self.account_id.as_deref() == Some(account_id),
            Reach::AllAccounts => true,
        }
    }

    /// The one account this caller is confined to, if `reach` confines it
    /// (a confined key without an account sees nothing).
    pub fn confined_to(&self) -> Option<&str> {
        match reach(self.role) {
            Reach::OwnAccount => Some(self.account_id.as_deref().unwrap_or("")),
            Reach::AllAccounts => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_get_exactly_their_permissions() {
        use Permission::*;
        let table = [
            (
                Role::Admin,
                [
                    true, true, true, true, true, true, true, true, true, true, true,
                ],
            ),
            (
                Role::Manager,
                [
                    true, true, true, true, false, true, true, true, true, true, true,
                ],
            ),
            (
                Role::Agent,
                [
                    true, false, true, false, false, true, true, true, true, false, true,
                ],
            ),
            (
                Role::Customer,
                [
                    true, false, false, false, false, true, false, false, false, false, false,
                ],
            ),
            (
                Role::Integration,
                [
                    false, false, true, false, false, false, false, false, false, true, false,
                ],
            ),
        ];
        for (role, expected) in table {
            let got = [
                Read,
                Manage,
                RecordUsage,
                Adjust,
                Administer,
                OpenCases,
                WorkCases,
                ReadEvents,
                AllocateSoftware,
                RecordInstallations,
                ReadCompliance,
            ]
            .map(|p| allows(role, p));
            assert_eq!(got, expected, "{role:?}");
        }
    }

    #[test]
    fn only_customers_are_confined_to_their_account() {
        for role in Role::ALL {
            let principal = Principal {
                key_id: "key_1".into(),
                role,
                account_id: Some("acc_1".into()),
                request_id: None,
            };
            let confined = role == Role::Customer;
            assert_eq!(principal.confined_to().is_some(), confined, "{role:?}");
            assert_eq!(principal.sees_account("acc_2"), !confined, "{role:?}");
            assert!(principal.sees_account("acc_1"), "{role:?}");
        }
    }

    #[test]
    fn secrets_are_hashed() {
        assert_eq!(hash_secret("a").len(), 64);
        assert_ne!(hash_secret("a"), hash_secret("b"));
    }
}
