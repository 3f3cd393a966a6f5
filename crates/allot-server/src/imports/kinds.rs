//! The table of kinds an import knows, and what every kind shares: the
//! header check, the row, the session (what earlier rows of the file left
//! behind), the loop over chunks, and the refusals of the write path as
//! row errors.
//!
//! A kind is a module of its own (`accounts`, `contacts`, `products`,
//! `entitlements`, `usage`) with its `DEF` (columns, the export's columns it
//! accepts and ignores, an example row) and `chunk`: parse each row's
//! cells, resolve its references (earlier rows of the file first, then
//! existing objects, one query per chunk), and make the chunk of rows the
//! store writes. A new kind is a new module, a line in `KINDS` and one in
//! `check`.

use std::collections::{HashMap, HashSet};

use allot_store::audit::AuditContext;
use allot_store::ids::TypedId;
use allot_store::imports::{ImportChunk, ImportMsg, ImportOutcome, Table};
use chrono::{DateTime, NaiveDate, Utc};
use tokio::sync::mpsc;

use super::read::{Parsed, RawRow};
use super::{ImportReport, Options, RowError};
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::inputs::{text, MAX_TEXT};
use crate::state::AppState;

use super::{accounts, contacts, contracts, entitlements, products, usage};

pub(crate) use accounts::external_id_free;

/// One column of a kind's file.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub name: &'static str,
    pub required: bool,
    pub doc: &'static str,
}

/// A kind: its columns and an example.
#[derive(Debug)]
pub struct KindDef {
    pub name: &'static str,
    pub columns: &'static [Column],
    /// Columns an export of this kind has that an import reads past
    /// (computed or kept by the service); `x.*` names a nested group.
    pub ignored: &'static [&'static str],
    /// An example data row, in `columns` order.
    pub example: &'static [&'static str],
}

pub const KINDS: &[&KindDef] = &[
    &accounts::DEF,
    &contacts::DEF,
    &products::DEF,
    &contracts::DEF,
    &contracts::LINES,
    &entitlements::DEF,
    &usage::DEF,
];

pub fn find(name: &str) -> Option<&'static KindDef> {
    KINDS.iter().copied().find(|k| k.name == name)
}

/// An example file of a kind: the header with every column, an example row.
pub fn template(name: &str) -> Option<String> {
    let kind = find(name)?;
    let mut out = csv::Writer::from_writer(Vec::new());
    out.write_record(kind.columns.iter().map(|c| c.name)).ok()?;
    out.write_record(kind.example).ok()?;
    String::from_utf8(out.into_inner().ok()?).ok()
}

/// The header, checked: where each known column is.
#[derive(Debug)]
pub struct Header {
    index: HashMap<&'static str, usize>,
    width: usize,
}

impl Header {
    /// The known column at cell `i` (`body` for a column read past).
    fn name_at(&self, i: usize) -> &'static str {
        self.index
            .iter()
            .find(|(_, at)| **at == i)
            .map_or("body", |(name, _)| *name)
    }
}

fn ignored(kind: &KindDef, name: &str) -> bool {
    kind.ignored.iter().any(|i| match i.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => *i == name,
    })
}

fn check_header(kind: &KindDef, names: &[String], report: &mut ImportReport) -> Option<Header> {
    let before = report.errors_total;
    let mut index = HashMap::new();
    let mut seen = HashSet::new();
    for (i, name) in names.iter().enumerate() {
        if !seen.insert(name.as_str()) {
            report.error(RowError::new(1, name, name, "this column appears twice"));
            continue;
        }
        match kind.columns.iter().find(|c| c.name == name) {
            Some(column) => {
                index.insert(column.name, i);
            }
            None if ignored(kind, name) => {}
            None => {
                let known: Vec<&str> = kind.columns.iter().map(|c| c.name).collect();
                report.error(RowError::new(
                    1,
                    name,
                    name,
                    format!(
                        "unknown column; {} files have {}",
                        kind.name,
                        known.join(", ")
                    ),
                ));
            }
        }
    }
    for column in kind.columns.iter().filter(|c| c.required) {
        if !index.contains_key(column.name) {
            report.error(RowError::new(1, column.name, "", "this column is required"));
        }
    }
    (report.errors_total == before).then_some(Header {
        index,
        width: names.len(),
    })
}

/// One data row whose cells are all readable text.
pub struct Row<'a> {
    pub number: u64,
    header: &'a Header,
    cells: Vec<String>,
}

impl Row<'_> {
    /// The trimmed cell of a column; `None` when the file has no such
    /// column or the cell is empty.
    pub fn get(&self, column: &str) -> Option<&str> {
        let i = *self.header.index.get(column)?;
        Some(self.cells[i].trim()).filter(|c| !c.is_empty())
    }

    /// The cell as given (for a report).
    pub fn raw(&self, column: &str) -> &str {
        self.get(column).unwrap_or("")
    }

    pub fn error(&self, column: &str, reason: impl Into<String>) -> RowError {
        RowError::new(self.number, column, self.raw(column), reason)
    }

    /// An optional cell of at most `MAX_TEXT` characters (a longer one is
    /// an error, and kept so that the row's other errors are reported too).
    pub fn short(&self, column: &str, errors: &mut Vec<RowError>) -> Option<String> {
        let cell = self.get(column)?;
        if cell.chars().count() > MAX_TEXT {
            errors.push(self.error(column, format!("must be at most {MAX_TEXT} characters")));
        }
        Some(cell.to_string())
    }

    /// A required cell of text, checked as the API checks a name.
    pub fn text(&self, column: &str, errors: &mut Vec<RowError>) -> Option<String> {
        text(column, self.raw(column), MAX_TEXT)
            .map_err(|e| errors.extend(self.errors_of(e, column)))
            .ok()
    }

    /// The optional `id` column: an id of kind `I` given for the new object.
    pub fn new_id<I: TypedId>(&self, errors: &mut Vec<RowError>) -> Option<String> {
        let raw = self.get("id")?;
        let id = I::parse(raw).map(|id| (*id).to_owned());
        if id.is_none() {
            let (noun, prefix) = (indefinite(I::NOUN), I::PREFIX);
            errors.push(self.error("id", format!("not {noun} id ({prefix}_…)")));
        }
        id
    }

    /// An error of the API's checks: each field it names is a column (the
    /// part before any `.` or `[`).
    pub fn errors_of(&self, e: ApiError, fallback: &str) -> Vec<RowError> {
        match e {
            ApiError::Invalid(invalid) => invalid
                .0
                .into_iter()
                .map(|f| {
                    let column = f.field.split(['.', '[']).next().unwrap_or(fallback);
                    let column = if column.is_empty() { fallback } else { column };
                    RowError::new(self.number, column, self.raw(column), f.message)
                })
                .collect(),
            other => vec![self.error(fallback, other.to_string())],
        }
    }
}

/// Which of `ids` exist in `table` (one query; none for no ids).
pub async fn existing(
    state: &AppState,
    table: Table,
    ids: &[String],
) -> ApiResult<HashSet<String>> {
    if ids.is_empty() {
        return Ok(HashSet::new());
    }
    let found = state.store.existing_ids(table, ids).await?;
    Ok(found.into_iter().map(|(id, _)| id).collect())
}

/// "an account", "a contact".
fn indefinite(noun: &str) -> String {
    let article = if noun.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {noun}")
}

/// Cells that are text, as many as the header has; else the row's errors.
fn readable<'h>(header: &'h Header, raw: RawRow) -> Result<Row<'h>, Vec<RowError>> {
    if raw.cells.len() != header.width {
        return Err(vec![RowError::new(
            raw.row,
            "body",
            "",
            format!(
                "this row has {} cells, the header {}",
                raw.cells.len(),
                header.width
            ),
        )]);
    }
    let mut cells = Vec::with_capacity(raw.cells.len());
    let mut errors = Vec::new();
    for (i, cell) in raw.cells.into_iter().enumerate() {
        match cell {
            Ok(text) => cells.push(text),
            Err(lossy) => {
                let column = header.name_at(i);
                errors.push(RowError::new(raw.row, column, &lossy, "not UTF-8 text"));
                cells.push(String::new());
            }
        }
    }
    if errors.is_empty() {
        Ok(Row {
            number: raw.row,
            header,
            cells,
        })
    } else {
        Err(errors)
    }
}

/// What the rows of one file left for the rows after them.
pub struct Session<'a> {
    pub state: &'a AppState,
    pub audit: AuditContext,
    pub options: Options,
    pub today: NaiveDate,
    pub now: DateTime<Utc>,
    /// The file's keys (`kind:column:value`) → the id made for that row and
    /// the row that has it.
    keys: HashMap<String, (String, u64)>,
    /// Accounts given a default entitlement by this file.
    pub defaults: HashSet<String>,
    /// Contracts made by this file: id → (account, start, end).
    pub contracts: HashMap<String, (String, NaiveDate, NaiveDate)>,
    /// Templates named by this file: name → the template (None: no such).
    pub templates: HashMap<String, Option<allot_store::contracts::EntitlementTemplate>>,
}

impl<'a> Session<'a> {
    pub fn new(
        state: &'a AppState,
        principal: &Principal,
        options: Options,
        today: NaiveDate,
        now: DateTime<Utc>,
    ) -> Self {
        Session {
            state,
            audit: principal.audit(),
            options,
            today,
            now,
            keys: HashMap::new(),
            defaults: HashSet::new(),
            contracts: HashMap::new(),
            templates: HashMap::new(),
        }
    }

    /// A key the row gives its new `kind` (its `column`) must be free: no
    /// existing object has it (`exists`), no earlier row of the file either.
    pub fn check_free(
        &self,
        row: &Row<'_>,
        (kind, column): (&str, &str),
        value: &str,
        exists: bool,
        errors: &mut Vec<RowError>,
    ) {
        if exists {
            let what = indefinite(kind);
            errors.push(row.error(column, format!("{what} with this {column} exists")));
        } else if let Some((_, first)) = self.key(&format!("{kind}:{column}"), value) {
            errors.push(row.error(column, format!("duplicate {column}: row {first} has it")));
        }
    }

    /// The id and row of an earlier row with this key.
    pub fn key(&self, space: &str, value: &str) -> Option<&(String, u64)> {
        self.keys.get(&format!("{space}:{value}"))
    }

    /// Records a row's key; the row that had it first if it was taken.
    pub fn claim(&mut self, space: &str, value: &str, id: &str, row: u64) -> Result<(), u64> {
        let key = format!("{space}:{value}");
        if let Some((_, first)) = self.keys.get(&key) {
            return Err(*first);
        }
        self.keys.insert(key, (id.to_string(), row));
        Ok(())
    }
}

/// Parses every row of a chunk with `parse`: the good rows with what was
/// parsed; the bad ones reported.
pub fn parse_all<'r, 'h, G>(
    rows: &'r [Row<'h>],
    report: &mut ImportReport,
    mut parse: impl FnMut(&Row<'h>) -> Result<G, Vec<RowError>>,
) -> Vec<(&'r Row<'h>, G)> {
    let mut good = Vec::with_capacity(rows.len());
    for row in rows {
        match parse(row) {
            Ok(g) => good.push((row, g)),
            Err(errors) => errors.into_iter().for_each(|e| report.error(e)),
        }
    }
    good
}

async fn check(
    kind: &KindDef,
    session: &mut Session<'_>,
    rows: Vec<Row<'_>>,
    report: &mut ImportReport,
) -> ApiResult<Option<ImportChunk>> {
    match kind.name {
        "accounts" => accounts::chunk(session, rows, report).await,
        "contacts" => contacts::chunk(session, rows, report).await,
        "products" => products::chunk(session, rows, report).await,
        "contracts" => contracts::chunk(session, rows, report).await,
        "contract-lines" => contracts::lines_chunk(session, rows, report).await,
        "entitlements" => entitlements::chunk(session, rows, report).await,
        "usage" => usage::chunk(session, rows, report).await,
        other => Err(ApiError::not_found("import kind", other)),
    }
}

/// Reads the parser's output to the end, checks it chunk by chunk and
/// feeds the good rows to the store. `Ok(false)` when the body broke off
/// (nothing may be committed).
pub async fn run(
    kind: &KindDef,
    mut session: Session<'_>,
    mut parsed: mpsc::Receiver<Parsed>,
    feed: &mpsc::Sender<ImportMsg>,
    report: &mut ImportReport,
) -> ApiResult<bool> {
    let mut header: Option<Header> = None;
    let mut header_failed = false;
    while let Some(next) = parsed.recv().await {
        match next {
            Parsed::Header(Err(reason)) => {
                report.error(RowError::new(1, "body", "", reason));
                header_failed = true;
            }
            Parsed::Header(Ok(names)) => {
                header = check_header(kind, &names, report);
                header_failed = header.is_none();
            }
            Parsed::Broken { row, reason } => {
                report.error(RowError::new(row, "body", "", reason));
                return Ok(false);
            }
            Parsed::Unterminated { row, cell } => {
                let column = header.as_ref().map_or("body", |h| h.name_at(cell));
                report.error(RowError::new(
                    row,
                    column,
                    "",
                    "a quoted cell is not closed before the end of the file",
                ));
            }
            Parsed::Rows(raw) => {
                report.rows += raw.len() as u64;
                // Without a usable header the rows are only counted.
                let Some(header) = header.as_ref().filter(|_| !header_failed) else {
                    continue;
                };
                let mut rows = Vec::with_capacity(raw.len());
                for r in raw {
                    match readable(header, r) {
                        Ok(row) => rows.push(row),
                        Err(errors) => errors.into_iter().for_each(|e| report.error(e)),
                    }
                }
                if let Some(chunk) = check(kind, &mut session, rows, report).await? {
                    // Good rows go on even after a bad one: the store's
                    // checks (caps) then report theirs too; nothing commits.
                    if feed.send(ImportMsg::Chunk(chunk)).await.is_err() {
                        return Ok(false);
                    }
                }
            }
        }
    }
    Ok(true)
}

/// The usage rows the write path refused, as row errors.
pub fn refusals(outcome: &ImportOutcome, report: &mut ImportReport) {
    for refused in &outcome.refused {
        report.error(usage::refusal(refused.row, &refused.refusal));
    }
    for _ in outcome.refused.len() as u64..outcome.refused_total {
        report.errors_total += 1;
    }
}
