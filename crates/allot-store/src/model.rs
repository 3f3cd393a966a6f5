//! Row models: what the stores read and write.

use allot_core::balance::Counters;
use allot_core::decide::Reason;
use allot_core::entitlement::{Entitlement, Status, Unit};
use allot_core::Quantity;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub id: String,
    pub name: String,
    pub parent_id: Option<String>,
    /// The account manager, whom alerts about the account are mailed to.
    #[serde(default)]
    pub manager_name: Option<String>,
    #[serde(default)]
    pub manager_email: Option<String>,
    pub created_at: DateTime<Utc>,
    /// The account's key in another system (unique when set): what imports
    /// refer to it by.
    #[serde(default)]
    pub external_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    pub id: String,
    pub account_id: String,
    pub name: String,
    pub email: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Product {
    pub id: String,
    pub name: String,
    pub sku: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// An entitlement as stored, with its counters. `entitlement.status` is the
/// stored state; readers apply `lifecycle::effective_status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EntitlementRecord {
    pub entitlement: Entitlement,
    pub counters: Counters,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The latest renewal made from this entitlement (its successor's
    /// `predecessor_id` is this one), automatic or not.
    pub renewed_to: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct EntitlementFilter {
    pub account_id: Option<String>,
    /// Matches entitlements of any of these accounts (eligibility with pooling).
    pub account_ids: Option<Vec<String>>,
    pub unit: Option<Unit>,
    pub owner: Option<String>,
    /// Filters on the stored status; callers recompute the effective one.
    pub stored_status: Option<Vec<Status>>,
}

/// Which cases to list; deleted cases are never listed.
#[derive(Debug, Clone, Default)]
pub struct CaseFilter {
    pub account_id: Option<String>,
    pub entitlement_id: Option<String>,
    pub status: Option<allot_core::cases::CaseStatus>,
}

/// Cursor pagination: items after `after` (an id), at most `limit`.
#[derive(Debug, Clone, Default)]
pub struct Page {
    pub after: Option<String>,
    pub limit: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    pub id: String,
    pub entitlement_id: String,
    pub period_index: i64,
    pub channel: Option<String>,
    pub quantity: Quantity,
    pub reason: Reason,
    pub reference: Option<String>,
    pub actor: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Manager,
    Agent,
    Customer,
    Integration,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Admin,
        Role::Manager,
        Role::Agent,
        Role::Customer,
        Role::Integration,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Manager => "manager",
            Role::Agent => "agent",
            Role::Customer => "customer",
            Role::Integration => "integration",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKey {
    pub id: String,
    pub name: Option<String>,
    pub role: Role,
    /// Set for customer keys: the one account they may see.
    pub account_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// An outbox event, written in the same transaction as its cause.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub id: String,
    pub kind: String,
    pub entitlement_id: Option<String>,
    pub data: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

/// A lifecycle transition, recorded with who and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    pub entitlement_id: String,
    pub from_status: Status,
    pub to_status: Status,
    pub action: String,
    pub actor: String,
    pub at: DateTime<Utc>,
}

/// What an idempotency key recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdempotencyRecord {
    pub fingerprint: String,
    /// `None` while the first request is still in flight.
    pub answer: Option<serde_json::Value>,
    pub created_at: DateTime<Utc>,
}
