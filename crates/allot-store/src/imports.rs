//! Bulk import: every row of one file in one transaction, fed chunk by
//! chunk while the file is still being read.
//!
//! The server parses and checks the file as a stream (`allot-server`'s
//! `imports`); each chunk of good rows it sends here is written at once
//! inside the import's one open transaction, so memory holds one chunk,
//! never the file. New parties and entitlements are written as they are
//! (`ImportChunk::Rows`, with one audit entry each); usage goes through the
//! write path's own steps (`sequences::plan_and_write`: locks, idempotency
//! keys, `plan_batch`), chunk after chunk in the same transaction, so caps
//! hold across the whole file and a key answered before replays instead of
//! applying twice. The transaction commits only when the feed ends with
//! `Finish { commit: true }` and no usage row was refused: a bad row
//! anywhere, a dry run, or a feed that stops early (the client went away)
//! rolls every row back.
//!
//! A usage key that an earlier row of the same file had is that row's
//! error (`RowRefusal::DuplicateKey`), found through a scratch table of the
//! file's keys the database keeps inside the import's transaction
//! (`ImportTx`): memory holds one chunk's keys, whatever the file's size.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use tokio::sync::mpsc::Receiver;

use crate::audit::{snapshot, AuditContext, AuditEntry};
use crate::backend::Changes;
use crate::clock::stored_time;
use crate::contracts::{ContractChanges, ContractTx};
use crate::error::StoreResult;
use crate::ids::new_id;
use crate::model::LedgerEntry;
use crate::model::{Account, Contact, Product};
use crate::plan::{BatchItem, ItemAnswer, Outcome};
use crate::sequences::{fresh_record, plan_and_write_audited};

/// At most this many refused rows are kept for the report; the rest are
/// only counted (memory stays bounded whatever the file).
pub const MAX_REPORTED: usize = 1_000;

/// One chunk of good rows.
#[derive(Debug)]
pub enum ImportChunk {
    /// New accounts, contacts, products and entitlements (drafts or
    /// activated, zeroed counters), with their audit entries (`new_rows`):
    /// nothing else.
    Rows(Box<Changes>),
    /// Usage for the write path's planner, with each item's spreadsheet row.
    Usage {
        rows: Vec<u64>,
        items: Vec<BatchItem>,
    },
    /// New contracts and contract lines (`ContractTx::write_contracts`),
    /// with their audit entries in the `Changes`.
    Contracts(Box<(ContractChanges, Changes)>),
}

/// What the server feeds an import.
#[derive(Debug)]
pub enum ImportMsg {
    Chunk(ImportChunk),
    /// The file ended. `commit` is false for a dry run or a file with bad
    /// rows: everything is rolled back.
    Finish {
        commit: bool,
    },
}

/// A usage row refused, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct RefusedRow {
    pub row: u64,
    pub refusal: RowRefusal,
}

#[derive(Debug, Clone, PartialEq)]
pub enum RowRefusal {
    /// What the planner answered.
    Answer(ItemAnswer),
    /// An earlier row of the file (`first`) had the same idempotency key.
    DuplicateKey { first: u64, key: String },
}

#[derive(Debug, Default)]
pub struct ImportOutcome {
    /// New rows written (accounts, contacts, products, entitlements).
    pub written: u64,
    /// Usage rows applied now.
    pub applied: u64,
    /// Usage rows whose idempotency key was answered before: not applied again.
    pub replayed: u64,
    /// The first `MAX_REPORTED` refused usage rows.
    pub refused: Vec<RefusedRow>,
    pub refused_total: u64,
    /// Whether the transaction committed.
    pub committed: bool,
}

/// A table an import refers into by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    Accounts,
    Contacts,
    Products,
    Entitlements,
}

/// The import's entry point and the reads its checks need, one statement
/// per chunk of keys.
#[async_trait]
pub trait ImportStore {
    /// Runs `run_import` in one transaction of its own, fed by `feed`.
    /// Never retried: a lost race fails the import whole.
    async fn run_import(
        &self,
        feed: Receiver<ImportMsg>,
        today: NaiveDate,
        now: DateTime<Utc>,
    ) -> StoreResult<ImportOutcome>;
    /// Which of these ids exist in `table`, each with its account (contacts
    /// and entitlements; `None` for accounts and products).
    async fn existing_ids(
        &self,
        table: Table,
        ids: &[String],
    ) -> StoreResult<Vec<(String, Option<String>)>>;
    /// (external_id, id) of the accounts holding these external ids.
    async fn accounts_by_external_id(&self, keys: &[String]) -> StoreResult<Vec<(String, String)>>;
    /// (sku, id) of the products holding these SKUs.
    async fn products_by_sku(&self, skus: &[String]) -> StoreResult<Vec<(String, String)>>;
    /// Which of these accounts already have a default entitlement (draft,
    /// waiting or active).
    async fn accounts_with_default(&self, account_ids: &[String]) -> StoreResult<Vec<String>>;
}

/// The backend steps only an import takes: a scratch table of the file's
/// usage keys, each with the first row that had it, kept by the database
/// (on disk past its cache) and gone when the transaction ends.
#[allow(async_fn_in_trait)]
pub trait ImportTx: ContractTx {
    /// Makes the scratch table, empty.
    async fn start_import_keys(&self) -> Result<(), Self::Error>;
    /// Claims each key for its row, in order: `None` when the key is now
    /// this row's, `Some(first)` when an earlier row (`first`, of this
    /// call or an earlier one) has it.
    async fn claim_import_keys(
        &self,
        keys: &[(&str, u64)],
    ) -> Result<Vec<Option<u64>>, Self::Error>;
    /// Inserts new entitlements with zeroed counters (their rows and
    /// balances), a chunk at once where the database allows it. `now` is
    /// their created and updated time.
    async fn insert_entitlements(
        &self,
        entitlements: &[allot_core::Entitlement],
        now: DateTime<Utc>,
    ) -> Result<(), Self::Error>;
    /// Drops the scratch table.
    async fn finish_import_keys(&self) -> Result<(), Self::Error>;
}

/// The import's transaction: write each chunk as it arrives, commit at the
/// end only if asked to and nothing was refused. Dropping `tx` uncommitted
/// rolls back.
pub async fn run_import<T: ImportTx>(
    tx: T,
    feed: &mut Receiver<ImportMsg>,
    today: NaiveDate,
    now: DateTime<Utc>,
) -> Result<ImportOutcome, T::Error> {
    let now = stored_time(now);
    let mut outcome = ImportOutcome::default();
    let mut commit = false;
    let mut keys_started = false;
    // The import as the audit log names it: one entry per chunk of usage.
    let import_id = new_id("imp", now);
    while let Some(message) = feed.recv().await {
        match message {
            ImportMsg::Chunk(ImportChunk::Rows(mut changes)) => {
                outcome.written += (changes.accounts.len()
                    + changes.contacts.len()
                    + changes.products.len()
                    + changes.new_entitlements.len()) as u64;
                // In `write`'s order (parties, entitlements, audit), with the
                // entitlements in bulk.
                let entitlements = std::mem::take(&mut changes.new_entitlements);
                let audit = std::mem::take(&mut changes.audit);
                tx.write(&changes, now).await?;
                tx.insert_entitlements(&entitlements, now).await?;
                let audit = Changes {
                    audit,
                    ..Changes::default()
                };
                tx.write(&audit, now).await?;
            }
            ImportMsg::Chunk(ImportChunk::Usage { rows, items }) => {
                assert_eq!(rows.len(), items.len(), "one row number per item");
                if !keys_started {
                    tx.start_import_keys().await?;
                    keys_started = true;
                }
                let (rows, items) = first_uses(&tx, rows, items, &mut outcome).await?;
                if !items.is_empty() {
                    let (first, last) = (rows[0], rows[rows.len() - 1]);
                    let ctx = &items[0].actor;
                    let audit = |entries: &mut Vec<AuditEntry>, ledger: &[LedgerEntry]| {
                        chunk_audit(entries, ledger, ctx, &import_id, (first, last), now);
                    };
                    let answers = plan_and_write_audited(&tx, &items, today, now, audit).await?;
                    for (row, answer) in rows.into_iter().zip(answers) {
                        tally(&mut outcome, row, answer);
                    }
                }
            }
            ImportMsg::Chunk(ImportChunk::Contracts(both)) => {
                let (contracts, changes) = *both;
                outcome.written += (contracts.contracts.len() + contracts.new_lines.len()) as u64;
                tx.write_contracts(&contracts).await?;
                tx.write(&changes, now).await?;
            }
            ImportMsg::Finish { commit: asked } => {
                commit = asked;
                break;
            }
        }
    }
    if commit && outcome.refused_total == 0 {
        if keys_started {
            tx.finish_import_keys().await?;
        }
        tx.commit().await?;
        outcome.committed = true;
    }
    Ok(outcome)
}

/// One audit entry for a chunk of imported usage in place of the write
/// path's one per applied row: the import is one audited action (target
/// `import`, its id shared by every chunk), whose entry lists what it
/// created — the ledger entries, each naming its entitlement, quantity and
/// actor — and the file's rows it came from. Who and when stay those of
/// every row (the entries' actor and `created_at`).
pub fn chunk_audit(
    entries: &mut Vec<AuditEntry>,
    ledger: &[LedgerEntry],
    ctx: &AuditContext,
    import_id: &str,
    (first, last): (u64, u64),
    now: DateTime<Utc>,
) {
    if entries.is_empty() {
        return;
    }
    let after = serde_json::json!({
        "rows": [first, last],
        "applied": entries.len(),
        "ledger_entries": ledger.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
    });
    let entry = AuditEntry::new(
        ctx,
        "usage.import",
        "import",
        import_id,
        None,
        Some(after),
        now,
    );
    *entries = vec![entry];
}

/// The rows of a chunk whose usage key no earlier row of the file had (the
/// others are refused as duplicates); their keys join the scratch table.
async fn first_uses<T: ImportTx>(
    tx: &T,
    rows: Vec<u64>,
    items: Vec<BatchItem>,
    outcome: &mut ImportOutcome,
) -> Result<(Vec<u64>, Vec<BatchItem>), T::Error> {
    let keyed: Vec<(&str, u64)> = rows
        .iter()
        .zip(&items)
        .filter_map(|(&row, item)| Some((item.idempotency.as_ref()?.key.as_str(), row)))
        .collect();
    let claims = tx.claim_import_keys(&keyed).await?;
    assert_eq!(claims.len(), keyed.len(), "one claim per key");
    let mut claims = claims.into_iter();
    let mut keep = Vec::with_capacity(items.len());
    for (&row, item) in rows.iter().zip(&items) {
        let Some(key) = &item.idempotency else {
            keep.push(true);
            continue;
        };
        match claims.next().flatten() {
            None => keep.push(true),
            Some(first) => {
                let refusal = RowRefusal::DuplicateKey {
                    first,
                    key: key.key.clone(),
                };
                refuse(outcome, row, refusal);
                keep.push(false);
            }
        }
    }
    drop(keyed);
    let (kept_rows, kept_items) = rows
        .into_iter()
        .zip(items)
        .zip(keep)
        .filter_map(|(pair, new)| new.then_some(pair))
        .unzip();
    Ok((kept_rows, kept_items))
}

fn refuse(outcome: &mut ImportOutcome, row: u64, refusal: RowRefusal) {
    outcome.refused_total += 1;
    if outcome.refused.len() < MAX_REPORTED {
        outcome.refused.push(RefusedRow { row, refusal });
    }
}

fn tally(outcome: &mut ImportOutcome, row: u64, answer: ItemAnswer) {
    match answer {
        ItemAnswer::Done {
            outcome: Outcome::Applied { .. },
        } => outcome.applied += 1,
        ItemAnswer::Replayed { .. } => outcome.replayed += 1,
        refused => refuse(outcome, row, RowRefusal::Answer(refused)),
    }
}

/// New rows of an import as one chunk, each with its `<kind>.create` audit
/// entry (as a single create writes). Entitlements get zeroed counters;
/// their created and updated times are `now`.
pub fn new_rows(
    accounts: Vec<Account>,
    contacts: Vec<Contact>,
    products: Vec<Product>,
    entitlements: Vec<allot_core::Entitlement>,
    ctx: &AuditContext,
    now: DateTime<Utc>,
) -> Changes {
    let now = stored_time(now);
    let mut audit =
        Vec::with_capacity(accounts.len() + contacts.len() + products.len() + entitlements.len());
    let entry = |action: &str, kind: &str, id: &str, after: Option<serde_json::Value>| {
        AuditEntry::new(ctx, action, kind, id, None, after, now)
    };
    for a in &accounts {
        audit.push(entry("account.create", "account", &a.id, snapshot(a)));
    }
    for c in &contacts {
        audit.push(entry("contact.create", "contact", &c.id, snapshot(c)));
    }
    for p in &products {
        audit.push(entry("product.create", "product", &p.id, snapshot(p)));
    }
    for e in &entitlements {
        let record = fresh_record(e.clone(), now);
        audit.push(entry(
            "entitlement.create",
            "entitlement",
            &e.id,
            snapshot(&record),
        ));
    }
    Changes {
        accounts,
        contacts,
        products,
        new_entitlements: entitlements,
        audit,
        ..Changes::default()
    }
}
