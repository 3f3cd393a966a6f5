//! The backend interface: what a database offers the write sequences in
//! `sequences`. A backend implements the loads, locks and writes of one
//! open transaction; it never decides what to write, nor in which order to
//! lock and read — `sequences` does, once for every backend.
//!
//! A new backend implements `WriteTx` (plus the `Store` reads, which are
//! single statements) and runs each `sequences` function inside its own
//! transaction runner: begin, call the sequence, which commits.

use std::collections::{BTreeSet, HashMap};

use allot_core::balance::Counters;
use allot_core::batch::UsedReferences;
use allot_core::entitlement::Entitlement;
use allot_core::Quantity;
use chrono::{DateTime, NaiveDate, Utc};

use crate::audit::AuditEntry;
use crate::error::StoreError;
use crate::model::{
    Account, ApiKey, Contact, EntitlementRecord, Event, IdempotencyRecord, LedgerEntry, Product,
    Transition,
};
use crate::plan::{CaseRecord, KeyWrite, Reservation};

/// An idempotency key's scope (the API key id) and name.
pub type KeyName = (String, String);

/// One open write transaction. Every lock is taken in id order, the order
/// every writer uses, so concurrent transactions never deadlock. Methods
/// take `&self` so that independent loads can be sent together.
///
/// Dropping a `WriteTx` without `commit` rolls it back.
#[allow(async_fn_in_trait)]
pub trait WriteTx {
    /// The backend's own error: it keeps what tells a retryable failure
    /// (a lost race) from the others. Refusals the sequences raise travel
    /// inside it as `StoreError`.
    type Error: From<StoreError>;

    /// Cases by id, locked.
    async fn lock_cases(&self, ids: &BTreeSet<String>) -> Result<Vec<CaseRecord>, Self::Error>;
    /// Reservations by id, locked.
    async fn lock_reservations(
        &self,
        ids: &BTreeSet<String>,
    ) -> Result<Vec<Reservation>, Self::Error>;
    /// Entitlements with their counters, by id, locked (row and balances).
    async fn lock_entitlements(
        &self,
        ids: &BTreeSet<String>,
    ) -> Result<Vec<EntitlementRecord>, Self::Error>;
    /// Activated entitlements whose stored status the dates may have moved
    /// on (`waiting` with `start_date <= today`, `active` with
    /// `end_date < today`), locked, at most `limit`, in id order.
    async fn lock_lagging(
        &self,
        today: NaiveDate,
        limit: u32,
    ) -> Result<Vec<EntitlementRecord>, Self::Error>;
    /// The active and waiting entitlements of these accounts (at most
    /// `limit`), not locked: `sequences` locks them with the batch's others,
    /// in one id-ordered pass.
    async fn entitlements_of(
        &self,
        accounts: &BTreeSet<String>,
        limit: u32,
    ) -> Result<Vec<String>, Self::Error>;
    /// An API key, locked.
    async fn lock_api_key(&self, id: &str) -> Result<Option<ApiKey>, Self::Error>;

    /// The idempotency records of these keys (no lock: a key written
    /// meanwhile by another transaction makes `write` fail, and the retry
    /// replays it).
    async fn load_keys(
        &self,
        keys: &BTreeSet<KeyName>,
    ) -> Result<HashMap<KeyName, IdempotencyRecord>, Self::Error>;
    /// Of these actors, the API keys revoked (ids not naming a key, such
    /// as `operator`, are not). No lock: a revocation that commits after
    /// this read is later than the use, which was answered as allowed
    /// before it.
    async fn revoked_keys(
        &self,
        actors: &BTreeSet<String>,
    ) -> Result<BTreeSet<String>, Self::Error>;
    /// Which of these (entitlement, reference) pairs the ledger holds as a
    /// direct use. Read only under the entitlements' locks: every writer of
    /// their ledger holds them, so the answer cannot change before commit.
    async fn load_references(
        &self,
        pairs: &BTreeSet<(String, String)>,
    ) -> Result<UsedReferences, Self::Error>;

    /// The sum of the ledger of each (entitlement, period), in order: what
    /// debug builds check `used` against after every batch.
    async fn ledger_sums(&self, periods: &[(String, i64)]) -> Result<Vec<Quantity>, Self::Error>;

    /// Writes every row of `changes`, tables in the order of its fields
    /// (which respects every foreign key). `now` is `updated_at` of changed
    /// entitlements and `created_at` of new rows that carry no time.
    async fn write(&self, changes: &Changes, now: DateTime<Utc>) -> Result<(), Self::Error>;
    async fn commit(self) -> Result<(), Self::Error>;
}

/// Every row one transaction writes. A sequence fills it; the backend
/// writes it whole.
#[derive(Debug, Default)]
pub struct Changes {
    pub accounts: Vec<Account>,
    pub contacts: Vec<Contact>,
    pub products: Vec<Product>,
    /// New entitlements, each with zeroed counters.
    pub new_entitlements: Vec<Entitlement>,
    /// Existing entitlements whose terms or status changed, written whole.
    pub entitlements: Vec<Entitlement>,
    /// Final counters of entitlements whose counters changed.
    pub counters: Vec<(String, Counters)>,
    /// Reservations to insert or update (by id).
    pub reservations: Vec<Reservation>,
    pub ledger: Vec<LedgerEntry>,
    /// Cases to insert or update (by id).
    pub cases: Vec<CaseRecord>,
    pub transitions: Vec<Transition>,
    /// New API keys with the hash of their secret.
    pub api_keys: Vec<(ApiKey, String)>,
    /// API keys revoked: id and time.
    pub revoked_keys: Vec<(String, DateTime<Utc>)>,
    /// Idempotency answers. An unfinished claim on the same key gives way;
    /// a finished one makes `write` fail as a lost race (retry replays).
    pub answers: Vec<KeyWrite>,
    pub events: Vec<Event>,
    pub audit: Vec<AuditEntry>,
}

/// What a batch adds to one entitlement's use of one UTC day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LedgerDay<'a> {
    pub entitlement_id: &'a str,
    pub day: NaiveDate,
    pub used: Quantity,
}

impl Changes {
    /// The ledger entries summed per entitlement and UTC day, in that
    /// order: what the backend adds to its per-day sums of the ledger
    /// (`ledger_days`) in the same transaction, so that a window of days
    /// reads a row a day instead of a row a use. One row per pair, as an
    /// upsert of several rows needs.
    pub fn ledger_days(&self) -> Vec<LedgerDay<'_>> {
        let mut days = std::collections::BTreeMap::<(&str, NaiveDate), Quantity>::new();
        for e in &self.ledger {
            *days
                .entry((e.entitlement_id.as_str(), e.created_at.date_naive()))
                .or_default() += e.quantity;
        }
        days.into_iter()
            .map(|((entitlement_id, day), used)| LedgerDay {
                entitlement_id,
                day,
                used,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use allot_core::decide::Reason;
    use chrono::TimeZone;

    use super::*;

    fn entry(entitlement_id: &str, at: DateTime<Utc>, milli: i64) -> LedgerEntry {
        LedgerEntry {
            id: format!("led_{entitlement_id}_{milli}"),
            entitlement_id: entitlement_id.into(),
            period_index: 0,
            channel: None,
            quantity: Quantity::from_milli(milli),
            reason: Reason::Usage,
            reference: None,
            actor: "key_a".into(),
            created_at: at,
        }
    }

    /// A day is a UTC day, its last second in it; a give-back counts
    /// against its day; each pair once, in entitlement then day order.
    #[test]
    fn ledger_days_sum_each_entitlement_and_utc_day_once() {
        let at = |d, h, m, s| Utc.with_ymd_and_hms(2026, 1, d, h, m, s).unwrap();
        let changes = Changes {
            ledger: vec![
                entry("ent_b", at(5, 10, 0, 0), 2_000),
                entry("ent_a", at(5, 23, 59, 59), 500),
                entry("ent_b", at(6, 0, 0, 0), 1_000),
                entry("ent_a", at(5, 0, 0, 0), 250),
                entry("ent_b", at(5, 11, 0, 0), -1_500),
            ],
            ..Changes::default()
        };
        let day = |d| NaiveDate::from_ymd_opt(2026, 1, d).unwrap();
        let row = |entitlement_id, d, milli| LedgerDay {
            entitlement_id,
            day: day(d),
            used: Quantity::from_milli(milli),
        };
        assert_eq!(
            changes.ledger_days(),
            vec![
                row("ent_a", 5, 750),
                row("ent_b", 5, 500),
                row("ent_b", 6, 1_000)
            ]
        );
        assert!(Changes::default().ledger_days().is_empty());
    }
}
