//! The storage interface. The server is generic over it; the SQLite and
//! PostgreSQL crates implement it. Methods that check a rule under a lock
//! call `allot-core` for the decision; none re-implements a rule.

use allot_core::entitlement::{Entitlement, Terms};
use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};

use crate::answer::Answering;
use crate::audit::{AuditContext, AuditEntry, AuditFilter};
use crate::error::StoreResult;
use crate::model::{
    Account, ApiKey, CaseFilter, Contact, EntitlementFilter, EntitlementRecord, Event,
    IdempotencyRecord, LedgerEntry, Page, Product, Transition,
};
use crate::plan::{BatchItem, CaseRecord, ItemAnswer, KeyWrite, Reservation};
use crate::schedule::ScheduleStore;
use crate::sequences::Act;

/// The result of a lifecycle action: the entitlement it acted on, and for
/// `renew` the new draft.
#[derive(Debug, Clone)]
pub struct TransitionResult {
    pub entitlement: EntitlementRecord,
    pub renewal: Option<EntitlementRecord>,
}

/// Every method that changes data takes an `AuditContext` and writes one
/// `AuditEntry` in the same transaction (`AuditEntry::new`, values through
/// `audit::snapshot`):
///
/// | method | action | target | before → after |
/// |---|---|---|---|
/// | `insert_account` / `insert_contact` / `insert_product` | `account.create` … | the object | – → object |
/// | `insert_entitlement` | `entitlement.create` | entitlement | – → record |
/// | `update_terms` | `entitlement.update` | entitlement | record → record |
/// | `transition` | `entitlement.<action>` | entitlement | record → record (renew: `{"renewal": new record}`) |
/// | `sync_statuses` | `entitlement.follow_dates` (system) | entitlement | `{"status"}` → `{"status"}` |
/// | `run_schedule` | `entitlement.follow_dates`, `entitlement.period_reset` (`{"period_index"}` → `{"period_index"}`), `entitlement.auto_renew` (– → `{"renewal"}`), all by the system | entitlement | |
/// | `insert_api_key` / `revoke_api_key` | `api_key.create` / `api_key.revoke` | key (never its hash) | key → key |
/// | `insert_user` / `disable_user` | `user.create` / `user.disable` | user (never its hash) | user → user |
/// | `apply_batch` | what `plan_batch` lists in `Plan::audit` | | |
///
/// Every mutation a client asks for takes `Option<Answering<_>>`: with an
/// idempotency key, the answer the client gets is recorded in the same
/// transaction as the change (the write path records its own).
#[async_trait]
pub trait Store:
    ScheduleStore
    + crate::reports::ReportStore
    + crate::alerts::AlertStore
    + crate::software::SoftwareStore
    + crate::imports::ImportStore
    + crate::contracts::ContractStore
    + crate::dashboard::DashboardStore
    + crate::users::UserStore
    + Send
    + Sync
    + 'static
{
    /// Which backend this is: "sqlite" or "postgres".
    fn backend(&self) -> &'static str;

    /// Applies pending migrations; safe to call from several processes.
    async fn migrate(&self) -> StoreResult<()>;

    /// A cheap query proving the database answers.
    async fn ping(&self) -> StoreResult<()>;

    // Parties and catalogue. Ids are made by the caller.
    async fn insert_account(
        &self,
        account: &Account,
        audit: &AuditContext,
        answer: Option<Answering<Account>>,
    ) -> StoreResult<()>;
    async fn get_account(&self, id: &str) -> StoreResult<Option<Account>>;
    async fn list_accounts(&self, page: &Page) -> StoreResult<Vec<Account>>;
    /// Parent, grandparent, … of an account (nearest first).
    async fn account_ancestors(&self, id: &str) -> StoreResult<Vec<String>>;
    async fn insert_contact(
        &self,
        contact: &Contact,
        audit: &AuditContext,
        answer: Option<Answering<Contact>>,
    ) -> StoreResult<()>;
    async fn get_contact(&self, id: &str) -> StoreResult<Option<Contact>>;
    async fn list_contacts(
        &self,
        account_id: Option<&str>,
        page: &Page,
    ) -> StoreResult<Vec<Contact>>;
    async fn insert_product(
        &self,
        product: &Product,
        audit: &AuditContext,
        answer: Option<Answering<Product>>,
    ) -> StoreResult<()>;
    async fn get_product(&self, id: &str) -> StoreResult<Option<Product>>;
    async fn list_products(&self, page: &Page) -> StoreResult<Vec<Product>>;

    // Entitlements.
    /// Inserts a draft with zeroed counters. A second default entitlement
    /// for an account is `StoreError::Conflict { code: "default_exists" }`.
    async fn insert_entitlement(
        &self,
        entitlement: &Entitlement,
        now: DateTime<Utc>,
        audit: &AuditContext,
        answer: Option<Answering<EntitlementRecord>>,
    ) -> StoreResult<EntitlementRecord>;
    async fn get_entitlement(&self, id: &str) -> StoreResult<Option<EntitlementRecord>>;
    async fn list_entitlements(
        &self,
        filter: &EntitlementFilter,
        page: &Page,
    ) -> StoreResult<Vec<EntitlementRecord>>;
    /// Replaces the terms of a draft, under a row lock; anything but a draft
    /// (per `lifecycle::editable` on the effective status) is refused.
    async fn update_terms(
        &self,
        id: &str,
        terms: &Terms,
        today: NaiveDate,
        now: DateTime<Utc>,
        audit: &AuditContext,
        answer: Option<Answering<EntitlementRecord>>,
    ) -> StoreResult<EntitlementRecord>;
    /// Applies a lifecycle action under a row lock, records the transition
    /// and its event. For `Renew`, `renewal_id` names the new draft.
    async fn transition(
        &self,
        act: Act<'_>,
        answer: Option<Answering<TransitionResult>>,
    ) -> StoreResult<TransitionResult>;
    /// Stores the date-implied state of activated entitlements whose stored
    /// state lags, recording transitions and events once (safe to run on
    /// several instances at once). Returns how many changed.
    async fn sync_statuses(&self, today: NaiveDate, now: DateTime<Utc>) -> StoreResult<u64>;
    async fn list_transitions(&self, entitlement_id: &str) -> StoreResult<Vec<Transition>>;

    // The write path.
    /// Loads and locks what the batch touches, plans it with
    /// `plan::plan_batch`, writes the plan and commits, all in one
    /// transaction. A backend error leaves nothing written.
    async fn apply_batch(
        &self,
        items: &[BatchItem],
        today: NaiveDate,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<ItemAnswer>>;
    async fn list_ledger(&self, entitlement_id: &str, page: &Page)
        -> StoreResult<Vec<LedgerEntry>>;
    async fn get_reservation(&self, id: &str) -> StoreResult<Option<Reservation>>;
    /// An entitlement's reservations, held and settled, in id order.
    async fn list_reservations(
        &self,
        entitlement_id: &str,
        page: &Page,
    ) -> StoreResult<Vec<Reservation>>;
    /// Held reservations whose timeout has passed.
    async fn expired_reservations(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<String>>;
    /// A case by id, deleted or not.
    async fn get_case(&self, id: &str) -> StoreResult<Option<CaseRecord>>;
    async fn list_cases(&self, filter: &CaseFilter, page: &Page) -> StoreResult<Vec<CaseRecord>>;
    async fn list_events(
        &self,
        entitlement_id: Option<&str>,
        page: &Page,
    ) -> StoreResult<Vec<Event>>;

    // Idempotency keys. Mutations record their answers with their change;
    // this records the answer of a request that was refused (it changed
    // nothing). A key another request recorded meanwhile is
    // `Conflict { code: "idempotency_key_in_flight" }`.
    async fn record_answer(&self, answer: &KeyWrite, now: DateTime<Utc>) -> StoreResult<()>;
    async fn get_key(&self, scope: &str, key: &str) -> StoreResult<Option<IdempotencyRecord>>;
    /// Deletes keys older than `before`; returns how many.
    async fn purge_keys(&self, before: DateTime<Utc>) -> StoreResult<u64>;

    // API keys.
    async fn insert_api_key(
        &self,
        key: &ApiKey,
        secret_hash: &str,
        audit: &AuditContext,
        answer: Option<Answering<ApiKey>>,
    ) -> StoreResult<()>;
    async fn api_key_by_hash(&self, secret_hash: &str) -> StoreResult<Option<ApiKey>>;
    async fn list_api_keys(&self) -> StoreResult<Vec<ApiKey>>;
    async fn revoke_api_key(
        &self,
        id: &str,
        now: DateTime<Utc>,
        audit: &AuditContext,
        answer: Option<Answering<bool>>,
    ) -> StoreResult<bool>;
    async fn count_api_keys(&self) -> StoreResult<u64>;

    /// The audit trail, by id (time order).
    async fn list_audit(&self, filter: &AuditFilter, page: &Page) -> StoreResult<Vec<AuditEntry>>;
}
