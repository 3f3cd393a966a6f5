//! The audit trail: who changed what, from what to what, in which request.
//! Every store method that changes data takes an `AuditContext` and writes
//! its `AuditEntry` in the same transaction as the change.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ids::new_id;

/// When a mutation happens and who does it: what a sequence outside the
/// write path (software, contracts, templates) is given.
#[derive(Debug, Clone, Copy)]
pub struct Moment<'a> {
    pub audit: &'a AuditContext,
    pub today: NaiveDate,
    pub now: DateTime<Utc>,
}

/// Who is acting, and in which request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditContext {
    /// The API key id, or "system" for background jobs.
    pub actor: String,
    /// The key's role, or "system".
    pub role: String,
    pub request_id: Option<String>,
}

impl AuditContext {
    pub fn system() -> Self {
        AuditContext {
            actor: "system".into(),
            role: "system".into(),
            request_id: None,
        }
    }
}

/// Tests and tools name an actor by key id alone.
impl From<&str> for AuditContext {
    fn from(actor: &str) -> Self {
        AuditContext {
            actor: actor.to_string(),
            role: "unknown".into(),
            request_id: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub id: String,
    pub actor: String,
    pub role: String,
    /// e.g. `entitlement.activate`, `usage.record`, `case.open`.
    pub action: String,
    /// e.g. `entitlement`, `case`, `account`.
    pub target_type: String,
    pub target_id: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
    pub request_id: Option<String>,
    pub at: DateTime<Utc>,
}

impl AuditEntry {
    pub fn new(
        ctx: &AuditContext,
        action: &str,
        target_type: &str,
        target_id: &str,
        before: Option<Value>,
        after: Option<Value>,
        at: DateTime<Utc>,
    ) -> Self {
        AuditEntry {
            id: new_id("aud", at),
            actor: ctx.actor.clone(),
            role: ctx.role.clone(),
            action: action.to_string(),
            target_type: target_type.to_string(),
            target_id: target_id.to_string(),
            before,
            after,
            request_id: ctx.request_id.clone(),
            at,
        }
    }
}

/// A value as it goes into `before`/`after`.
pub fn snapshot<T: Serialize>(value: &T) -> Option<Value> {
    serde_json::to_value(value).ok()
}

/// Filters for `GET /v1/audit`, ANDed.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub target_id: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}
