//! Allot's embedded store: SQLite in WAL mode, one writer thread that owns
//! every mutation (batches commit once for many requests), and a small pool
//! of read-only connections for reads.
#![forbid(unsafe_code)]

mod alerts;
mod api_keys;
mod audit;
mod cache;
mod cases;
mod checkpoint;
mod connect;
mod contracts;
mod convert;
mod dashboard;
mod entitlements;
mod error;
mod events;
mod idempotency;
mod imports;
mod lifecycle;
mod migrate;
mod parties;
mod pool;
mod reports;
mod schedule;
mod software;
mod software_aggregate;
mod transaction;
mod tx;
mod usage;
mod users;

use std::sync::Arc;

use allot_core::entitlement::{Entitlement, Terms};
use allot_store::audit::{AuditContext, AuditEntry, AuditFilter};
use allot_store::model::{
    Account, ApiKey, CaseFilter, Contact, EntitlementFilter, EntitlementRecord, Event,
    IdempotencyRecord, LedgerEntry, Page, Product, Transition,
};
use allot_store::plan::{BatchItem, CaseRecord, ItemAnswer, KeyWrite, Reservation};
use allot_store::sequences::{self, Act};
use allot_store::Answering;
use allot_store::{Store, StoreError, StoreResult, TransitionResult};
use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::Connection;

pub use connect::{SqliteOptions, Synchronous};

use crate::cache::TermsCache;
use crate::connect::Location;
use crate::error::Res;
use crate::pool::{Readers, Writer};

pub struct SqliteStore {
    /// `None` for an in-memory database or `readers: 0`: reads then go
    /// through the writer.
    readers: Option<Arc<Readers>>,
    cache: Arc<TermsCache>,
    /// Runs the background checkpointer while the store lives; dropped
    /// (stopped and joined) before the writer.
    _checkpointer: Option<checkpoint::Checkpointer>,
    /// Dropped last (fields drop in order): the last connection to close
    /// checkpoints and removes the WAL, which only a writer can do.
    writer: Writer,
}

impl SqliteStore {
    /// `url` is `sqlite://relative/or/./path.db`, `sqlite:///absolute/path.db`,
    /// or a bare path. Creates the file if missing. Does not migrate (the
    /// caller calls `migrate()`).
    pub async fn open(url: &str, options: SqliteOptions) -> StoreResult<SqliteStore> {
        let location = connect::parse_url(url)?;
        tokio::task::spawn_blocking(move || Self::open_blocking(location, options))
            .await
            .map_err(StoreError::backend)?
    }

    fn open_blocking(location: Location, options: SqliteOptions) -> StoreResult<SqliteStore> {
        // The writer goes first: it creates the file and switches it to WAL,
        // which the read-only connections rely on.
        let writer = connect::open_writer(&location, options.synchronous)?;
        let readers = match &location {
            Location::File(path) if options.readers > 0 => {
                let conns = (0..options.readers)
                    .map(|_| connect::open_reader(path))
                    .collect::<Res<Vec<_>>>()?;
                Some(Arc::new(Readers::new(conns)))
            }
            _ => None,
        };
        let checkpointer = match &location {
            Location::File(path) => Some(checkpoint::start(path.clone())),
            Location::Memory => None,
        };
        Ok(SqliteStore {
            writer: Writer::start(writer)?,
            readers,
            cache: Arc::default(),
            _checkpointer: checkpointer,
        })
    }

    async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection, &TermsCache) -> Res<T> + Send + 'static,
    ) -> StoreResult<T> {
        let cache = self.cache.clone();
        self.writer.run(move |conn| f(conn, &cache)).await
    }

    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection, &TermsCache) -> Res<T> + Send + 'static,
    ) -> StoreResult<T> {
        let cache = self.cache.clone();
        match &self.readers {
            Some(readers) => readers.run(move |conn| f(conn, &cache)).await,
            None => self.writer.run(move |conn| f(conn, &cache)).await,
        }
    }

    /// `read` for a point read (an index seek to a row or a few): on the
    /// calling thread when a reader is idle (`Readers::point`).
    async fn point_read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection, &TermsCache) -> Res<T> + Send + 'static,
    ) -> StoreResult<T> {
        let cache = self.cache.clone();
        match &self.readers {
            Some(readers) => readers.point(move |conn| f(conn, &cache)).await,
            None => self.writer.run(move |conn| f(conn, &cache)).await,
        }
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn migrate(&self) -> StoreResult<()> {
        self.write(|c, _| migrate::migrate(c)).await
    }

    async fn ping(&self) -> StoreResult<()> {
        self.read(|c, _| Ok(c.query_row("SELECT 1", [], |_| Ok(()))?))
            .await
    }

    async fn insert_account(
        &self,
        account: &Account,
        audit: &AuditContext,
        answer: Option<Answering<Account>>,
    ) -> StoreResult<()> {
        let (account, ctx) = (account.clone(), audit.clone());
        self.write(move |c, cache| {
            transaction::run(c, cache, |tx| {
                sequences::insert_party(tx, &account, &ctx, answer.as_ref())
            })
        })
        .await
    }

    async fn get_account(&self, id: &str) -> StoreResult<Option<Account>> {
        let id = id.to_string();
        self.read(move |c, _| parties::get_account(c, &id)).await
    }

    async fn list_accounts(&self, page: &Page) -> StoreResult<Vec<Account>> {
        let page = page.clone();
        self.read(move |c, _| parties::list_accounts(c, &page))
            .await
    }

    async fn account_ancestors(&self, id: &str) -> StoreResult<Vec<String>> {
        let id = id.to_string();
        self.read(move |c, _| parties::account_ancestors(c, &id))
            .await
    }

    async fn insert_contact(
        &self,
        contact: &Contact,
        audit: &AuditContext,
        answer: Option<Answering<Contact>>,
    ) -> StoreResult<()> {
        let (contact, ctx) = (contact.clone(), audit.clone());
        self.write(move |c, cache| {
            transaction::run(c, cache, |tx| {
                sequences::insert_party(tx, &contact, &ctx, answer.as_ref())
            })
        })
        .await
    }

    async fn get_contact(&self, id: &str) -> StoreResult<Option<Contact>> {
        let id = id.to_string();
        self.read(move |c, _| parties::get_contact(c, &id)).await
    }

    async fn list_contacts(
        &self,
        account_id: Option<&str>,
        page: &Page,
    ) -> StoreResult<Vec<Contact>> {
        let (account_id, page) = (account_id.map(str::to_string), page.clone());
        self.read(move |c, _| parties::list_contacts(c, account_id.as_deref(), &page))
            .await
    }

    async fn insert_product(
        &self,
        product: &Product,
        audit: &AuditContext,
        answer: Option<Answering<Product>>,
    ) -> StoreResult<()> {
        let (product, ctx) = (product.clone(), audit.clone());
        self.write(move |c, cache| {
            transaction::run(c, cache, |tx| {
                sequences::insert_party(tx, &product, &ctx, answer.as_ref())
            })
        })
        .await
    }

    async fn get_product(&self, id: &str) -> StoreResult<Option<Product>> {
        let id = id.to_string();
        self.read(move |c, _| parties::get_product(c, &id)).await
    }

    async fn list_products(&self, page: &Page) -> StoreResult<Vec<Product>> {
        let page = page.clone();
        self.read(move |c, _| parties::list_products(c, &page))
            .await
    }

    async fn insert_entitlement(
        &self,
        entitlement: &Entitlement,
        now: DateTime<Utc>,
        audit: &AuditContext,
        answer: Option<Answering<EntitlementRecord>>,
    ) -> StoreResult<EntitlementRecord> {
        let (entitlement, ctx) = (entitlement.clone(), audit.clone());
        self.write(move |c, cache| {
            transaction::run(c, cache, |tx| {
                sequences::insert_entitlement(tx, &entitlement, now, &ctx, answer.as_ref())
            })
        })
        .await
    }

    async fn get_entitlement(&self, id: &str) -> StoreResult<Option<EntitlementRecord>> {
        let id = id.to_string();
        self.point_read(move |c, cache| entitlements::get(c, cache, &id))
            .await
    }

    async fn list_entitlements(
        &self,
        filter: &EntitlementFilter,
        page: &Page,
    ) -> StoreResult<Vec<EntitlementRecord>> {
        let (filter, page) = (filter.clone(), page.clone());
        self.read(move |c, cache| entitlements::list(c, cache, &filter, &page))
            .await
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
        let (id, terms, ctx) = (id.to_string(), terms.clone(), audit.clone());
        self.write(move |c, cache| {
            transaction::run(c, cache, |tx| {
                sequences::update_terms(tx, &id, &terms, today, now, &ctx, answer.as_ref())
            })
        })
        .await
    }

    async fn transition(
        &self,
        act: Act<'_>,
        answer: Option<Answering<TransitionResult>>,
    ) -> StoreResult<TransitionResult> {
        let (id, ctx, renewal_id) = (
            act.id.to_string(),
            act.audit.clone(),
            act.renewal_id.to_string(),
        );
        let (action, today, now) = (act.action, act.today, act.now);
        self.write(move |c, cache| {
            let act = Act {
                id: &id,
                action,
                audit: &ctx,
                renewal_id: &renewal_id,
                today,
                now,
            };
            transaction::run(c, cache, |tx| {
                sequences::transition(tx, act, answer.as_ref())
            })
        })
        .await
    }

    async fn sync_statuses(&self, today: NaiveDate, now: DateTime<Utc>) -> StoreResult<u64> {
        self.write(move |c, cache| {
            transaction::run(c, cache, |tx| sequences::sync_statuses(tx, today, now))
        })
        .await
    }

    async fn list_transitions(&self, entitlement_id: &str) -> StoreResult<Vec<Transition>> {
        let id = entitlement_id.to_string();
        self.read(move |c, _| lifecycle::list_transitions(c, &id))
            .await
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
        // The job outlives this borrow as far as the compiler knows.
        let items = items.to_vec();
        self.write(move |c, cache| {
            transaction::run(c, cache, |tx| {
                sequences::apply_batch(tx, &items, today, now)
            })
        })
        .await
    }

    async fn list_ledger(
        &self,
        entitlement_id: &str,
        page: &Page,
    ) -> StoreResult<Vec<LedgerEntry>> {
        let (id, page) = (entitlement_id.to_string(), page.clone());
        self.read(move |c, _| usage::list_ledger(c, &id, &page))
            .await
    }

    async fn get_reservation(&self, id: &str) -> StoreResult<Option<Reservation>> {
        let id = id.to_string();
        self.read(move |c, _| usage::get_reservation(c, &id)).await
    }

    async fn list_reservations(
        &self,
        entitlement_id: &str,
        page: &Page,
    ) -> StoreResult<Vec<Reservation>> {
        let (id, page) = (entitlement_id.to_string(), page.clone());
        self.read(move |c, _| usage::list_reservations(c, &id, &page))
            .await
    }

    async fn expired_reservations(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<String>> {
        self.read(move |c, _| usage::expired_reservations(c, now, limit))
            .await
    }

    async fn get_case(&self, id: &str) -> StoreResult<Option<CaseRecord>> {
        let id = id.to_string();
        self.read(move |c, _| cases::get(c, &id)).await
    }

    async fn list_cases(&self, filter: &CaseFilter, page: &Page) -> StoreResult<Vec<CaseRecord>> {
        let (filter, page) = (filter.clone(), page.clone());
        self.read(move |c, _| cases::list(c, &filter, &page)).await
    }

    async fn list_events(
        &self,
        entitlement_id: Option<&str>,
        page: &Page,
    ) -> StoreResult<Vec<Event>> {
        let (id, page) = (entitlement_id.map(str::to_string), page.clone());
        self.read(move |c, _| events::list(c, id.as_deref(), &page))
            .await
    }

    async fn record_answer(&self, answer: &KeyWrite, now: DateTime<Utc>) -> StoreResult<()> {
        let answer = answer.clone();
        self.write(move |c, cache| {
            transaction::run(c, cache, |tx| sequences::record_answer(tx, answer, now))
        })
        .await
    }

    async fn get_key(&self, scope: &str, key: &str) -> StoreResult<Option<IdempotencyRecord>> {
        let (scope, key) = (scope.to_string(), key.to_string());
        self.read(move |c, _| idempotency::get(c, &scope, &key))
            .await
    }

    async fn purge_keys(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        self.write(move |c, _| idempotency::purge(c, before)).await
    }

    async fn insert_api_key(
        &self,
        key: &ApiKey,
        secret_hash: &str,
        audit: &AuditContext,
        answer: Option<Answering<ApiKey>>,
    ) -> StoreResult<()> {
        let (key, hash, ctx) = (key.clone(), secret_hash.to_string(), audit.clone());
        self.write(move |c, cache| {
            transaction::run(c, cache, |tx| {
                sequences::insert_api_key(tx, &key, &hash, &ctx, answer.as_ref())
            })
        })
        .await
    }

    async fn api_key_by_hash(&self, secret_hash: &str) -> StoreResult<Option<ApiKey>> {
        let hash = secret_hash.to_string();
        self.point_read(move |c, _| api_keys::by_hash(c, &hash))
            .await
    }

    async fn list_api_keys(&self) -> StoreResult<Vec<ApiKey>> {
        self.read(|c, _| api_keys::list(c)).await
    }

    async fn revoke_api_key(
        &self,
        id: &str,
        now: DateTime<Utc>,
        audit: &AuditContext,
        answer: Option<Answering<bool>>,
    ) -> StoreResult<bool> {
        let (id, ctx) = (id.to_string(), audit.clone());
        self.write(move |c, cache| {
            transaction::run(c, cache, |tx| {
                sequences::revoke_api_key(tx, &id, now, &ctx, answer.as_ref())
            })
        })
        .await
    }

    async fn count_api_keys(&self) -> StoreResult<u64> {
        self.read(|c, _| api_keys::count(c)).await
    }

    async fn list_audit(&self, filter: &AuditFilter, page: &Page) -> StoreResult<Vec<AuditEntry>> {
        let (filter, page) = (filter.clone(), page.clone());
        self.read(move |c, _| audit::list(c, &filter, &page)).await
    }
}
