//! Contracts, contract lines, entitlement templates and background jobs in
//! storage: the row models, `ContractStore` (what the server — and the CSV
//! import — asks of a store about them), the backend steps the sequences
//! need (`ContractTx`, beside `backend::WriteTx`) and the sequences
//! themselves (`sequences`), written once for every backend.
//!
//! Every mutation writes its audit entries in its own transaction:
//!
//! | method | action | target |
//! |---|---|---|
//! | `insert_contract` | `contract.create` | contract |
//! | `insert_contract_line` | `contract_line.create` | line |
//! | `contract_action` | `contract.<activate, suspend, resume, cancel, renew>`; each entitlement it moved `entitlement.<suspend, resume, cancel>` | contract, entitlement |
//! | `expire_contracts` | `contract.expire`, `entitlement.expire` (system) | contract, entitlement |
//! | `insert_template` / `update_template` / `delete_template` | `entitlement_template.create` / `.update` / `.delete` | template |
//! | `instantiate_template` | `entitlement.create` per entitlement (and `entitlement.activate` when activated) | entitlement |
//! | `make_default` | `entitlement.make_default` on the new default, `entitlement.unset_default` on the old | entitlement |
//! | `insert_job` | `job.create` | job |
//!
//! Job progress (`update_job`) is bookkeeping, not audited.

pub mod sequences;

use std::collections::BTreeSet;

use allot_core::contracts::{ContractAction, ContractStatus};
use allot_core::templates::TemplateTerms;
use allot_core::Quantity;
use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::answer::Answering;
use crate::audit::AuditContext;
use crate::backend::WriteTx;
use crate::error::StoreResult;
use crate::model::{EntitlementRecord, Page};

/// An agreement with an account, over dates; entitlements hang off it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contract {
    pub id: String,
    pub account_id: String,
    /// Unique across contracts (the external key imports refer to).
    pub number: String,
    pub name: Option<String>,
    pub start_date: NaiveDate,
    pub end_date: NaiveDate,
    pub auto_renew: bool,
    /// The stored status; readers apply `contracts::effective_contract_status`.
    pub status: ContractStatus,
    /// The contract this one renews.
    pub predecessor_id: Option<String>,
    /// Its renewal, once renewed (a contract is renewed once).
    pub renewed_to: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What a contract sells: a product, a quantity, a template, over dates
/// inside the contract's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContractLine {
    pub id: String,
    pub contract_id: String,
    pub product_id: Option<String>,
    pub quantity: Option<Quantity>,
    pub template_id: Option<String>,
    pub start_date: NaiveDate,
    pub end_date: NaiveDate,
    pub created_at: DateTime<Utc>,
}

/// A tier written once and instantiated for each customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntitlementTemplate {
    pub id: String,
    /// Unique across templates (`terms.name`, the name entitlements get).
    pub terms: TemplateTerms,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Running,
    Succeeded,
    Failed,
}

/// A request answered before its work is done: `done` of `total` so far,
/// then its result or its error (the error body a synchronous request
/// would have answered).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub id: String,
    pub kind: String,
    pub status: JobStatus,
    pub total: u64,
    pub done: u64,
    pub result: Option<serde_json::Value>,
    pub error: Option<serde_json::Value>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default)]
pub struct ContractFilter {
    pub account_id: Option<String>,
    /// Stored status; callers recompute the effective one.
    pub stored_status: Option<ContractStatus>,
}

pub use crate::audit::Moment;

/// A contract action a client asks for.
#[derive(Debug, Clone)]
pub struct ContractAct {
    pub id: String,
    pub action: ContractAction,
    /// For `Renew`: the new contract's number (`None`: the old number with
    /// the new start date, `CTR-1/2027-01-01`).
    pub renewal_number: Option<String>,
}

/// A contract after an action, with the entitlements the action moved
/// (for `Renew`: the new contract, its lines and its new drafts).
#[derive(Debug, Clone)]
pub struct ContractActed {
    pub contract: Contract,
    /// The entitlements whose status moved (or, for a renewal, the new drafts).
    pub entitlements: Vec<EntitlementRecord>,
    /// For a renewal: the old contract, after.
    pub renewed_from: Option<Contract>,
    pub lines: Vec<ContractLine>,
}

/// A request to make entitlements of a template.
#[derive(Debug, Clone)]
pub struct Instantiation {
    pub template_id: String,
    /// Up to `MAX_INSTANTIATE` accounts, each once.
    pub account_ids: Vec<String>,
    /// `None`: today.
    pub start_date: Option<NaiveDate>,
    pub activate: bool,
    pub contract_id: Option<String>,
    pub contract_line_id: Option<String>,
}

/// Most accounts one instantiation takes.
pub const MAX_INSTANTIATE: usize = 10_000;

/// Every row a contract sequence writes, beside the shared `Changes`
/// (entitlements, events, audit entries, answers).
#[derive(Debug, Default)]
pub struct ContractChanges {
    /// Inserted or replaced, by id.
    pub contracts: Vec<Contract>,
    pub new_lines: Vec<ContractLine>,
    /// Inserted or replaced, by id.
    pub templates: Vec<EntitlementTemplate>,
    pub deleted_templates: Vec<String>,
    /// Inserted or replaced, by id.
    pub jobs: Vec<Job>,
}

/// The backend steps of the contract sequences, on the transaction that
/// also implements `WriteTx`.
#[allow(async_fn_in_trait)]
pub trait ContractTx: WriteTx {
    /// A contract, locked.
    async fn lock_contract(&self, id: &str) -> Result<Option<Contract>, Self::Error>;
    /// Whether a contract has this number. Serializes inserts of one number
    /// (PostgreSQL: an advisory lock on it until commit).
    async fn contract_number_taken(&self, number: &str) -> Result<bool, Self::Error>;
    /// Contracts due to expire (`active` or `suspended` with
    /// `end_date < today`), locked, at most `limit`, in id order.
    async fn lock_due_contracts(
        &self,
        today: NaiveDate,
        limit: u32,
    ) -> Result<Vec<Contract>, Self::Error>;
    /// Ids of the entitlements naming this contract (not locked: the
    /// sequence locks them with `lock_entitlements`).
    async fn contract_entitlement_ids(
        &self,
        contract_id: &str,
    ) -> Result<BTreeSet<String>, Self::Error>;
    async fn load_contract_lines(
        &self,
        contract_id: &str,
    ) -> Result<Vec<ContractLine>, Self::Error>;
    async fn load_contract_line(&self, id: &str) -> Result<Option<ContractLine>, Self::Error>;
    /// A template, locked.
    async fn lock_template(&self, id: &str) -> Result<Option<EntitlementTemplate>, Self::Error>;
    /// The template with this name, other than `except` (names are unique;
    /// PostgreSQL serializes inserts of one name as for contract numbers).
    async fn template_named(
        &self,
        name: &str,
        except: Option<&str>,
    ) -> Result<Option<String>, Self::Error>;
    /// Which of these accounts exist.
    async fn existing_accounts(
        &self,
        ids: &BTreeSet<String>,
    ) -> Result<BTreeSet<String>, Self::Error>;
    /// Which of these products exist.
    async fn existing_products(
        &self,
        ids: &BTreeSet<String>,
    ) -> Result<BTreeSet<String>, Self::Error>;
    /// Ids of the account's default entitlements among draft, waiting,
    /// active and suspended ones (at most one), not locked.
    async fn default_of(&self, account_id: &str) -> Result<BTreeSet<String>, Self::Error>;
    async fn write_contracts(&self, changes: &ContractChanges) -> Result<(), Self::Error>;
}

/// What the server asks of a store about contracts, templates and jobs.
#[async_trait]
pub trait ContractStore: Send + Sync {
    /// A new contract (`contract_number_taken` → `Conflict
    /// { code: "contract_number_taken" }`; its account must exist).
    async fn insert_contract(
        &self,
        contract: &Contract,
        audit: &AuditContext,
        answer: Option<Answering<Contract>>,
    ) -> StoreResult<()>;
    async fn get_contract(&self, id: &str) -> StoreResult<Option<Contract>>;
    async fn get_contract_by_number(&self, number: &str) -> StoreResult<Option<Contract>>;
    async fn list_contracts(
        &self,
        filter: &ContractFilter,
        page: &Page,
    ) -> StoreResult<Vec<Contract>>;
    /// A new line, under the contract's lock: the contract must be open
    /// and the line's dates inside its own; product and template must exist.
    async fn insert_contract_line(
        &self,
        line: &ContractLine,
        at: Moment<'_>,
        answer: Option<Answering<ContractLine>>,
    ) -> StoreResult<ContractLine>;
    async fn get_contract_line(&self, id: &str) -> StoreResult<Option<ContractLine>>;
    async fn list_contract_lines(
        &self,
        contract_id: &str,
        page: &Page,
    ) -> StoreResult<Vec<ContractLine>>;
    /// The entitlements naming this contract, by id.
    async fn list_contract_entitlements(
        &self,
        contract_id: &str,
        page: &Page,
    ) -> StoreResult<Vec<EntitlementRecord>>;
    /// Activate, suspend, resume, cancel or renew, under the contract's
    /// lock and its entitlements' (in id order), with the flow-down to the
    /// entitlements, their transitions and events, in one transaction.
    async fn contract_action(
        &self,
        act: &ContractAct,
        at: Moment<'_>,
        answer: Option<Answering<ContractActed>>,
    ) -> StoreResult<ContractActed>;
    /// Stores the expiry of contracts past their end date (at most
    /// `limit`), flowing down to their open entitlements; an `auto_renew`
    /// contract is renewed and the renewal activated. Returns how many expired.
    async fn expire_contracts(
        &self,
        today: NaiveDate,
        now: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<u64>;

    async fn insert_template(
        &self,
        template: &EntitlementTemplate,
        audit: &AuditContext,
        answer: Option<Answering<EntitlementTemplate>>,
    ) -> StoreResult<()>;
    /// Replaces a template's terms; entitlements made from it keep theirs.
    async fn update_template(
        &self,
        template: &EntitlementTemplate,
        audit: &AuditContext,
        answer: Option<Answering<EntitlementTemplate>>,
    ) -> StoreResult<EntitlementTemplate>;
    /// Whether it existed.
    async fn delete_template(
        &self,
        id: &str,
        at: Moment<'_>,
        answer: Option<Answering<bool>>,
    ) -> StoreResult<bool>;
    async fn get_template(&self, id: &str) -> StoreResult<Option<EntitlementTemplate>>;
    async fn get_template_by_name(&self, name: &str) -> StoreResult<Option<EntitlementTemplate>>;
    async fn list_templates(&self, page: &Page) -> StoreResult<Vec<EntitlementTemplate>>;
    /// Makes one entitlement of the template per account, all or none, in
    /// one transaction (a missing account is `Invalid` naming
    /// `account_ids[i]`). With `activate`, each is activated by its dates.
    async fn instantiate_template(
        &self,
        request: &Instantiation,
        at: Moment<'_>,
        answer: Option<Answering<Vec<EntitlementRecord>>>,
    ) -> StoreResult<Vec<EntitlementRecord>>;
    /// Which of these accounts exist (a read; the job checks ahead in
    /// chunks to report progress).
    async fn existing_accounts(&self, ids: &[String]) -> StoreResult<BTreeSet<String>>;

    /// Makes a draft, waiting or active entitlement its account's default;
    /// the previous default stops being one in the same transaction.
    async fn make_default(
        &self,
        id: &str,
        at: Moment<'_>,
        answer: Option<Answering<EntitlementRecord>>,
    ) -> StoreResult<EntitlementRecord>;

    async fn insert_job(
        &self,
        job: &Job,
        audit: &AuditContext,
        answer: Option<Answering<Job>>,
    ) -> StoreResult<()>;
    /// Stores a job's progress or outcome.
    async fn update_job(&self, job: &Job) -> StoreResult<()>;
    async fn get_job(&self, id: &str) -> StoreResult<Option<Job>>;
}
