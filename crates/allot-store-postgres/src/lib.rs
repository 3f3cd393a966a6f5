//! Allot's PostgreSQL store: several `allot serve` instances share one
//! database. Correctness across processes comes from row locks taken in id
//! order, compare-and-set status changes, and retrying a transaction that
//! lost a race; every decision is the shared planner's or `allot-core`'s.
#![forbid(unsafe_code)]

mod alerts;
mod api_keys;
mod audit;
mod cases;
mod connect;
mod contracts;
mod dashboard;
mod entitlements;
mod error;
mod imports;
mod keys;
mod lifecycle;
mod migrate;
mod parties;
mod reports;
mod retry;
mod rows;
mod schedule;
mod software;
mod software_aggregate;
mod transaction;
mod usage;
mod users;

use allot_core::entitlement::{Entitlement, Terms};
use allot_store::audit::{AuditContext, AuditEntry, AuditFilter};
use allot_store::model::{
    Account, ApiKey, CaseFilter, Contact, EntitlementFilter, EntitlementRecord, Event,
    IdempotencyRecord, LedgerEntry, Page, Product, Transition,
};
use allot_store::plan::{BatchItem, CaseRecord, ItemAnswer, KeyWrite, Reservation};
use allot_store::sequences::{self, Act};
use allot_store::Answering;
use allot_store::{Store, StoreResult, TransitionResult};
use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use deadpool_postgres::Pool;

use crate::error::Error;
use crate::transaction::in_tx;

pub use connect::create_fresh_database;

/// A pool of connections to one database; cheap to clone.
#[derive(Clone)]
pub struct PostgresStore {
    pool: Pool,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("pool", &self.pool.status())
            .finish()
    }
}

impl PostgresStore {
    /// Connects to a `postgres://` URL with up to `pool_size` connections
    /// and checks that the server answers. Does not migrate.
    pub async fn connect(url: &str, pool_size: usize) -> StoreResult<PostgresStore> {
        Ok(PostgresStore {
            pool: connect::pool(url, pool_size).await?,
        })
    }
}

#[async_trait]
impl Store for PostgresStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn migrate(&self) -> StoreResult<()> {
        Ok(migrate::migrate(&self.pool).await?)
    }

    async fn ping(&self) -> StoreResult<()> {
        let client = self.pool.get().await.map_err(error::Error::from)?;
        client
            .simple_query("SELECT 1")
            .await
            .map_err(error::Error::from)?;
        Ok(())
    }

    async fn insert_account(
        &self,
        account: &Account,
        audit: &AuditContext,
        answer: Option<Answering<Account>>,
    ) -> StoreResult<()> {
        Ok(in_tx!(
            self.pool,
            "insert_account",
            Error::is_lock_conflict,
            |tx| { sequences::insert_party(tx, account, audit, answer.as_ref()) }
        )?)
    }

    async fn get_account(&self, id: &str) -> StoreResult<Option<Account>> {
        Ok(parties::get_account(&self.pool, id).await?)
    }

    async fn list_accounts(&self, page: &Page) -> StoreResult<Vec<Account>> {
        Ok(parties::list_accounts(&self.pool, page).await?)
    }

    async fn account_ancestors(&self, id: &str) -> StoreResult<Vec<String>> {
        Ok(parties::account_ancestors(&self.pool, id).await?)
    }

    async fn insert_contact(
        &self,
        contact: &Contact,
        audit: &AuditContext,
        answer: Option<Answering<Contact>>,
    ) -> StoreResult<()> {
        Ok(in_tx!(
            self.pool,
            "insert_contact",
            Error::is_lock_conflict,
            |tx| { sequences::insert_party(tx, contact, audit, answer.as_ref()) }
        )?)
    }

    async fn get_contact(&self, id: &str) -> StoreResult<Option<Contact>> {
        Ok(parties::get_contact(&self.pool, id).await?)
    }

    async fn list_contacts(
        &self,
        account_id: Option<&str>,
        page: &Page,
    ) -> StoreResult<Vec<Contact>> {
        Ok(parties::list_contacts(&self.pool, account_id, page).await?)
    }

    async fn insert_product(
        &self,
        product: &Product,
        audit: &AuditContext,
        answer: Option<Answering<Product>>,
    ) -> StoreResult<()> {
        Ok(in_tx!(
            self.pool,
            "insert_product",
            Error::is_lock_conflict,
            |tx| { sequences::insert_party(tx, product, audit, answer.as_ref()) }
        )?)
    }

    async fn get_product(&self, id: &str) -> StoreResult<Option<Product>> {
        Ok(parties::get_product(&self.pool, id).await?)
    }

    async fn list_products(&self, page: &Page) -> StoreResult<Vec<Product>> {
        Ok(parties::list_products(&self.pool, page).await?)
    }

    async fn insert_entitlement(
        &self,
        entitlement: &Entitlement,
        now: DateTime<Utc>,
        audit: &AuditContext,
        answer: Option<Answering<EntitlementRecord>>,
    ) -> StoreResult<EntitlementRecord> {
        Ok(in_tx!(
            self.pool,
            "insert_entitlement",
            Error::is_lock_conflict,
            |tx| { sequences::insert_entitlement(tx, entitlement, now, audit, answer.as_ref()) }
        )?)
    }

    async fn get_entitlement(&self, id: &str) -> StoreResult<Option<EntitlementRecord>> {
        Ok(entitlements::get(&self.pool, id).await?)
    }

    async fn list_entitlements(
        &self,
        filter: &EntitlementFilter,
        page: &Page,
    ) -> StoreResult<Vec<EntitlementRecord>> {
        Ok(entitlements::list(&self.pool, filter, page).await?)
    }

    async fn update_terms(
        &self,
        id: &str,
        terms: &Terms,
        today: NaiveDate,
        now: DateTime<Utc>,
        audit: &AuditContext,
        answer: Option<Answering<EntitlementRecord>>,
    ) -> StoreResult<EntitlementRecord> {
        Ok(in_tx!(
            self.pool,
            "update_terms",
            Error::is_lock_conflict,
            |tx| { sequences::update_terms(tx, id, terms, today, now, audit, answer.as_ref()) }
        )?)
    }

    async fn transition(
        &self,
        act: Act<'_>,
        answer: Option<Answering<TransitionResult>>,
    ) -> StoreResult<TransitionResult> {
        Ok(in_tx!(
            self.pool,
            "transition",
            Error::is_lock_conflict,
            |tx| { sequences::transition(tx, act, answer.as_ref()) }
        )?)
    }

    async fn sync_statuses(&self, today: NaiveDate, now: DateTime<Utc>) -> StoreResult<u64> {
        Ok(in_tx!(
            self.pool,
            "sync_statuses",
            Error::is_lock_conflict,
            |tx| { sequences::sync_statuses(tx, today, now) }
        )?)
    }

    async fn list_transitions(&self, entitlement_id: &str) -> StoreResult<Vec<Transition>> {
        Ok(lifecycle::list_transitions(&self.pool, entitlement_id).await?)
    }

    async fn apply_batch(
        &self,
        items: &[BatchItem],
        today: NaiveDate,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<ItemAnswer>> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        Ok(in_tx!(
            self.pool,
            "apply_batch",
            Error::is_transient,
            |tx| { sequences::apply_batch(tx, items, today, now) }
        )?)
    }

    async fn list_ledger(
        &self,
        entitlement_id: &str,
        page: &Page,
    ) -> StoreResult<Vec<LedgerEntry>> {
        Ok(usage::list_ledger(&self.pool, entitlement_id, page).await?)
    }

    async fn get_reservation(&self, id: &str) -> StoreResult<Option<Reservation>> {
        Ok(usage::get_reservation(&self.pool, id).await?)
    }

    async fn list_reservations(
        &self,
        entitlement_id: &str,
        page: &Page,
    ) -> StoreResult<Vec<Reservation>> {
        Ok(usage::list_reservations(&self.pool, entitlement_id, page).await?)
    }

    async fn expired_reservations(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<String>> {
        Ok(usage::expired_reservations(&self.pool, now, limit).await?)
    }

    async fn get_case(&self, id: &str) -> StoreResult<Option<CaseRecord>> {
        Ok(cases::get(&self.pool, id).await?)
    }

    async fn list_cases(&self, filter: &CaseFilter, page: &Page) -> StoreResult<Vec<CaseRecord>> {
        Ok(cases::list(&self.pool, filter, page).await?)
    }

    async fn list_events(
        &self,
        entitlement_id: Option<&str>,
        page: &Page,
    ) -> StoreResult<Vec<Event>> {
        Ok(usage::list_events(&self.pool, entitlement_id, page).await?)
    }

    async fn record_answer(&self, answer: &KeyWrite, now: DateTime<Utc>) -> StoreResult<()> {
        Ok(in_tx!(
            self.pool,
            "record_answer",
            Error::is_lock_conflict,
            |tx| { sequences::record_answer(tx, answer.clone(), now) }
        )?)
    }

    async fn get_key(&self, scope: &str, key: &str) -> StoreResult<Option<IdempotencyRecord>> {
        Ok(keys::get(&self.pool, scope, key).await?)
    }

    async fn purge_keys(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        Ok(keys::purge(&self.pool, before).await?)
    }

    async fn insert_api_key(
        &self,
        key: &ApiKey,
        secret_hash: &str,
        audit: &AuditContext,
        answer: Option<Answering<ApiKey>>,
    ) -> StoreResult<()> {
        Ok(in_tx!(
            self.pool,
            "insert_api_key",
            Error::is_lock_conflict,
            |tx| { sequences::insert_api_key(tx, key, secret_hash, audit, answer.as_ref()) }
        )?)
    }

    async fn api_key_by_hash(&self, secret_hash: &str) -> StoreResult<Option<ApiKey>> {
        Ok(api_keys::by_hash(&self.pool, secret_hash).await?)
    }

    async fn list_api_keys(&self) -> StoreResult<Vec<ApiKey>> {
        Ok(api_keys::list(&self.pool).await?)
    }

    async fn revoke_api_key(
        &self,
        id: &str,
        now: DateTime<Utc>,
        audit: &AuditContext,
        answer: Option<Answering<bool>>,
    ) -> StoreResult<bool> {
        Ok(in_tx!(
            self.pool,
            "revoke_api_key",
            Error::is_lock_conflict,
            |tx| { sequences::revoke_api_key(tx, id, now, audit, answer.as_ref()) }
        )?)
    }

    async fn count_api_keys(&self) -> StoreResult<u64> {
        Ok(api_keys::count(&self.pool).await?)
    }

    async fn list_audit(&self, filter: &AuditFilter, page: &Page) -> StoreResult<Vec<AuditEntry>> {
        Ok(audit::list(&self.pool, filter, page).await?)
    }
}
