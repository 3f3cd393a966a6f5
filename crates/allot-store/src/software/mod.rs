//! Software entitlements in storage: the row models, `SoftwareStore` (what
//! the server asks of a store about licence rights), the backend steps the
//! sequences need (`SoftwareTx`, beside `backend::WriteTx`) and the
//! sequences themselves (`sequences`), written once for every backend.
//!
//! Every mutation writes one audit entry in its own transaction:
//!
//! | method | action | target |
//! |---|---|---|
//! | `insert_software_model` / `update_software_model` | `software_model.create` / `.update` | model |
//! | `insert_software_entitlement` | `software_entitlement.create` | entitlement |
//! | `change_software_entitlement` | `software_entitlement.<publish, retire, edit, add_license_keys, add_downgrade_right>` | entitlement |
//! | `allocate_software` / `free_software` | `software_allocation.create` / `.delete` | allocation |
//! | `upgrade_software` | `software_entitlement.upgrade` | the entitlement receiving the rights |
//! | `record_installations` | `installation.record` | the first installation's model |
//! | `run_reconciliation` / `reconcile_if_due` | `reconciliation.run` (the job: actor `system`) | reconciliation |
//!
//! A reconciliation also writes a `software.under_licensed` event for each
//! row that turned under-licensed since the previous reconciliation.

pub mod aggregate;
pub mod sequences;

use std::collections::BTreeSet;

use allot_core::software::reconcile::{AllocationHeld, Installation, ReconciliationItem};
use allot_core::software::{SoftwareEntitlement, SoftwareTerms};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::answer::Answering;
use crate::audit::AuditContext;
use crate::backend::WriteTx;
use crate::error::StoreResult;
use crate::model::Page;

/// A software title as installed and licensed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SoftwareModel {
    pub id: String,
    pub publisher: String,
    pub product: String,
    pub version: Option<String>,
    pub edition: Option<String>,
    pub platform: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SoftwareEntitlementRecord {
    pub entitlement: SoftwareEntitlement,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Rights allocated to a user or a device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allocation {
    pub id: String,
    pub entitlement_id: String,
    pub user: Option<String>,
    pub device: Option<String>,
    pub quantity: i64,
    pub license_key: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl Allocation {
    pub fn held(&self) -> AllocationHeld {
        AllocationHeld {
            entitlement_id: self.entitlement_id.clone(),
            user: self.user.clone(),
            device: self.device.clone(),
            quantity: self.quantity,
        }
    }
}

/// One run of reconciliation, kept as history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reconciliation {
    pub id: String,
    /// The one model reconciled, or `None` for all.
    pub software_model_id: Option<String>,
    pub run_at: DateTime<Utc>,
    pub items: Vec<ReconciliationItem>,
}

/// The version of the stored form of a reconciliation's items.
pub const RECONCILIATION_VERSION: u64 = 1;

/// Reconciliation items as stored: versioned, so history written by one
/// version reads back after an upgrade. Written from a borrow
/// (`StoredItems { v, items: &r.items }`: a run of every model holds
/// thousands of rows and names), read back owned.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredItems<I = Vec<ReconciliationItem>> {
    pub v: u64,
    pub items: I,
}

#[derive(Debug, Clone, Default)]
pub struct SoftwareFilter {
    pub account_id: Option<String>,
    pub software_model_id: Option<String>,
}

/// A change of one software entitlement, decided by `allot_core::software`
/// under its row lock.
#[derive(Debug, Clone)]
pub enum SoftwareChange {
    Publish,
    Retire,
    /// New terms (rights, costs, dates); active rights stay at least what
    /// is allocated.
    Edit(Box<SoftwareTerms>),
    AddLicenseKeys(Vec<String>),
    AddDowngradeRight {
        software_model_id: String,
        order: Option<i64>,
    },
}

impl SoftwareChange {
    pub fn action(&self) -> &'static str {
        match self {
            SoftwareChange::Publish => "publish",
            SoftwareChange::Retire => "retire",
            SoftwareChange::Edit(_) => "edit",
            SoftwareChange::AddLicenseKeys(_) => "add_license_keys",
            SoftwareChange::AddDowngradeRight { .. } => "add_downgrade_right",
        }
    }
}

/// An allocation and the entitlement it changed.
#[derive(Debug, Clone)]
pub struct Allocated {
    pub allocation: Allocation,
    pub entitlement: SoftwareEntitlementRecord,
}

/// The two entitlements of an upgrade, after it.
#[derive(Debug, Clone)]
pub struct Upgraded {
    pub to: SoftwareEntitlementRecord,
    pub from: SoftwareEntitlementRecord,
}

pub use crate::audit::Moment;

/// Every row a software sequence writes, beside the shared `Changes`
/// (audit entries, answers) it writes with them.
#[derive(Debug, Default)]
pub struct SoftwareChanges {
    /// Inserted or replaced, by id.
    pub models: Vec<SoftwareModel>,
    /// Inserted or replaced, by id.
    pub entitlements: Vec<SoftwareEntitlementRecord>,
    pub new_allocations: Vec<Allocation>,
    /// Ids of allocations deleted.
    pub freed_allocations: Vec<String>,
    /// Inserted, or `seen_at` (and user, cores) moved forward, by (model, device).
    pub installations: Vec<Installation>,
    pub reconciliations: Vec<Reconciliation>,
}

pub use aggregate::{ReconciliationInputs, ReconciliationReads, Rights};

/// Reconciliation's inputs (counts only) and every model, read at one
/// moment and written nowhere: what the compliance report reconciles.
#[derive(Debug, Default)]
pub struct ComplianceSnapshot {
    pub inputs: ReconciliationInputs,
    pub models: Vec<SoftwareModel>,
}

/// The backend steps of the software sequences, on the transaction that
/// also implements `WriteTx` (for the audit entries and answers).
#[allow(async_fn_in_trait)]
pub trait SoftwareTx: WriteTx {
    /// Software entitlements by id, locked, in id order.
    async fn lock_software_entitlements(
        &self,
        ids: &BTreeSet<String>,
    ) -> Result<Vec<SoftwareEntitlementRecord>, Self::Error>;
    async fn lock_software_model(&self, id: &str) -> Result<Option<SoftwareModel>, Self::Error>;
    /// An allocation (read under its entitlement's lock).
    async fn load_allocation(&self, id: &str) -> Result<Option<Allocation>, Self::Error>;
    /// Every software entitlement and allocation, and the installations
    /// seen at or after `stale_before` counted per model
    /// (`aggregate::reconciliation_inputs`).
    async fn load_reconciliation_inputs(
        &self,
        stale_before: DateTime<Utc>,
    ) -> Result<ReconciliationInputs, Self::Error>;
    /// Serializes reconciliations (held to commit): two instances never
    /// compare against the same previous run, nor both run a scheduled one.
    async fn lock_reconciliations(&self) -> Result<(), Self::Error>;
    /// The latest reconciliation kept (by id: ids sort by time).
    async fn latest_reconciliation(&self) -> Result<Option<Reconciliation>, Self::Error>;
    async fn write_software(&self, changes: &SoftwareChanges) -> Result<(), Self::Error>;
}

/// What the server asks of a store about software entitlements.
#[async_trait]
pub trait SoftwareStore: Send + Sync {
    async fn insert_software_model(
        &self,
        model: &SoftwareModel,
        audit: &AuditContext,
        answer: Option<Answering<SoftwareModel>>,
    ) -> StoreResult<()>;
    /// Replaces a model's fields (its id and creation time stay).
    async fn update_software_model(
        &self,
        model: &SoftwareModel,
        audit: &AuditContext,
        answer: Option<Answering<SoftwareModel>>,
    ) -> StoreResult<SoftwareModel>;
    async fn get_software_model(&self, id: &str) -> StoreResult<Option<SoftwareModel>>;
    async fn list_software_models(&self, page: &Page) -> StoreResult<Vec<SoftwareModel>>;

    async fn insert_software_entitlement(
        &self,
        record: &SoftwareEntitlementRecord,
        audit: &AuditContext,
        answer: Option<Answering<SoftwareEntitlementRecord>>,
    ) -> StoreResult<()>;
    async fn get_software_entitlement(
        &self,
        id: &str,
    ) -> StoreResult<Option<SoftwareEntitlementRecord>>;
    async fn list_software_entitlements(
        &self,
        filter: &SoftwareFilter,
        page: &Page,
    ) -> StoreResult<Vec<SoftwareEntitlementRecord>>;
    /// Applies one change under the entitlement's row lock.
    async fn change_software_entitlement(
        &self,
        id: &str,
        change: &SoftwareChange,
        at: Moment<'_>,
        answer: Option<Answering<SoftwareEntitlementRecord>>,
    ) -> StoreResult<SoftwareEntitlementRecord>;

    /// Allocates under the entitlement's row lock: concurrent allocations,
    /// from any number of instances, never exceed its active rights.
    async fn allocate_software(
        &self,
        allocation: &Allocation,
        at: Moment<'_>,
        answer: Option<Answering<Allocated>>,
    ) -> StoreResult<Allocated>;
    /// Deletes an allocation of this entitlement, freeing its rights.
    async fn free_software(
        &self,
        entitlement_id: &str,
        allocation_id: &str,
        at: Moment<'_>,
        answer: Option<Answering<SoftwareEntitlementRecord>>,
    ) -> StoreResult<SoftwareEntitlementRecord>;
    async fn list_allocations(
        &self,
        entitlement_id: &str,
        page: &Page,
    ) -> StoreResult<Vec<Allocation>>;
    /// Moves `rights` from `from_id` into `to_id`, both locked, in one transaction.
    async fn upgrade_software(
        &self,
        to_id: &str,
        from_id: &str,
        rights: i64,
        at: Moment<'_>,
        answer: Option<Answering<Upgraded>>,
    ) -> StoreResult<Upgraded>;

    /// Inserts installations, or moves a known (model, device) forward.
    async fn record_installations(
        &self,
        installations: &[Installation],
        at: Moment<'_>,
        answer: Option<Answering<usize>>,
    ) -> StoreResult<usize>;

    /// Reconciles (one model, or all) and keeps the result as history.
    async fn run_reconciliation(
        &self,
        run: &ReconciliationRun<'_>,
        at: Moment<'_>,
        answer: Option<Answering<Reconciliation>>,
    ) -> StoreResult<Reconciliation>;
    /// Runs a reconciliation of every model unless one ran less than
    /// `every` ago (on any instance); `None` when it was not due.
    async fn reconcile_if_due(
        &self,
        run: &ReconciliationRun<'_>,
        every: chrono::Duration,
        at: Moment<'_>,
    ) -> StoreResult<Option<Reconciliation>>;
    async fn get_reconciliation(&self, id: &str) -> StoreResult<Option<Reconciliation>>;
    /// Oldest first (ids page forward).
    async fn list_reconciliations(&self, page: &Page) -> StoreResult<Vec<Reconciliation>>;
    /// What a reconciliation would read now (installations seen at or
    /// after `stale_before` counting), from one consistent read that takes
    /// no lock a write waits on; the counts only (`Lists::CountsOnly`: the
    /// report shows no names, so none are read).
    async fn compliance_snapshot(
        &self,
        stale_before: DateTime<Utc>,
    ) -> StoreResult<ComplianceSnapshot>;
}

/// What one reconciliation covers.
#[derive(Debug, Clone, Copy)]
pub struct ReconciliationRun<'a> {
    pub id: &'a str,
    pub software_model_id: Option<&'a str>,
    /// Installations seen before this no longer count.
    pub stale_before: DateTime<Utc>,
}
