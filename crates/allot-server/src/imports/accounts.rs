//! Accounts: `name`, optionally the id to keep, an `external_id` (the key
//! other files and systems use), a parent (an earlier row of the file or an
//! existing account, by id or by external id) and the account manager.

use std::collections::{HashMap, HashSet};

use allot_store::ids::{AccountId, TypedId};
use allot_store::imports::{new_rows, ImportChunk, Table};
use allot_store::model::Account;

use super::kinds::{existing, parse_all, Column, KindDef, Row, Session};
use super::{ImportReport, RowError};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

pub const DEF: KindDef = KindDef {
    name: "accounts",
    columns: &[
        Column { name: "id", required: false, doc: "The id to keep (acc_…, e.g. from an export); empty: a new one. Not one that exists." },
        Column { name: "external_id", required: false, doc: "The account's key in another system; unique." },
        Column { name: "name", required: true, doc: "The account's name." },
        Column { name: "parent_id", required: false, doc: "The parent: the id of an earlier row or of an existing account." },
        Column { name: "parent_external_id", required: false, doc: "The parent by external_id (an earlier row or an existing account)." },
        Column { name: "manager_name", required: false, doc: "The account manager." },
        Column { name: "manager_email", required: false, doc: "Mailed about the account's alerts." },
    ],
    ignored: &["created_at"],
    example: &["", "CRM-1001", "Acme Corp", "", "", "Ann Smith", "ann@example.com"],
};

/// An account named by a row: by id or by external id.
#[derive(Debug, Clone)]
pub enum AccountRef {
    Id(String),
    External(String),
}

/// The account a row names in `id_column` or `external_column` (one of
/// them); `Ok(None)` when neither is given.
pub fn account_ref(
    row: &Row<'_>,
    id_column: &str,
    external_column: &str,
) -> Result<Option<AccountRef>, RowError> {
    match (row.get(id_column), row.get(external_column)) {
        (Some(_), Some(_)) => Err(row.error(
            external_column,
            format!("give {id_column} or {external_column}, not both"),
        )),
        (Some(id), None) => AccountId::parse(id)
            .map(|id| Some(AccountRef::Id(id.into_string())))
            .ok_or_else(|| row.error(id_column, "not an account id (acc_…)")),
        (None, Some(key)) => Ok(Some(AccountRef::External(key.to_string()))),
        (None, None) => Ok(None),
    }
}

/// The account a row belongs to (`account_id` or `account_external_id`),
/// which the row must name.
pub fn required_account(row: &Row<'_>, errors: &mut Vec<RowError>) -> Option<AccountRef> {
    match account_ref(row, "account_id", "account_external_id") {
        Ok(Some(r)) => Some(r),
        Ok(None) => {
            errors.push(row.error(
                "account_id",
                "account_id or account_external_id is required",
            ));
            None
        }
        Err(e) => {
            errors.push(e);
            None
        }
    }
}

/// Existing accounts the refs of a chunk may name, read once per chunk.
#[derive(Debug, Default)]
pub struct KnownAccounts {
    ids: HashSet<String>,
    external: HashMap<String, String>,
}

impl KnownAccounts {
    pub async fn read<'r>(
        state: &AppState,
        refs: impl Iterator<Item = &'r AccountRef>,
    ) -> ApiResult<Self> {
        let (mut ids, mut keys) = (Vec::new(), Vec::new());
        for r in refs {
            match r {
                AccountRef::Id(id) => ids.push(id.clone()),
                AccountRef::External(key) => keys.push(key.clone()),
            }
        }
        ids.sort();
        ids.dedup();
        keys.sort();
        keys.dedup();
        let ids = existing(state, Table::Accounts, &ids).await?;
        let external = if keys.is_empty() {
            HashMap::new()
        } else {
            state
                .store
                .accounts_by_external_id(&keys)
                .await?
                .into_iter()
                .collect()
        };
        Ok(KnownAccounts { ids, external })
    }

    /// The id of the account `r` names: an earlier row of this file (an
    /// accounts file) first, then an existing account.
    pub fn resolve(&self, session: &Session<'_>, r: &AccountRef) -> Option<String> {
        match r {
            AccountRef::Id(id) => session
                .key("account:id", id)
                .map(|(id, _)| id.clone())
                .or_else(|| self.ids.contains(id).then(|| id.clone())),
            AccountRef::External(key) => session
                .key("account:external_id", key)
                .map(|(id, _)| id.clone())
                .or_else(|| self.external.get(key).cloned()),
        }
    }

    pub fn id_exists(&self, id: &str) -> bool {
        self.ids.contains(id)
    }

    pub fn external_exists(&self, key: &str) -> bool {
        self.external.contains_key(key)
    }
}

/// What a reference that resolves to nothing says.
pub fn unknown_account(
    row: &Row<'_>,
    r: &AccountRef,
    id_column: &str,
    external_column: &str,
) -> RowError {
    match r {
        AccountRef::Id(_) => row.error(id_column, "no such account (in the file or the service)"),
        AccountRef::External(_) => row.error(
            external_column,
            "no account has this external_id (in the file or the service)",
        ),
    }
}

/// `POST /v1/accounts` refuses an external id another account has.
pub(crate) async fn external_id_free(state: &AppState, key: &str) -> ApiResult<()> {
    let taken = state
        .store
        .accounts_by_external_id(&[key.to_string()])
        .await?;
    if taken.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Conflict {
            code: "external_id_exists",
            message: "another account has this external_id".into(),
            details: serde_json::json!({ "field": "external_id" }),
        })
    }
}

#[derive(Debug)]
struct Good {
    id: Option<String>,
    external_id: Option<String>,
    name: String,
    parent: Option<AccountRef>,
    manager_name: Option<String>,
    manager_email: Option<String>,
}

fn parse(row: &Row<'_>) -> Result<Good, Vec<RowError>> {
    let mut errors = Vec::new();
    let id = row.new_id::<AccountId>(&mut errors);
    let name = row.text("name", &mut errors);
    let external_id = row.short("external_id", &mut errors);
    let manager_name = row.short("manager_name", &mut errors);
    let manager_email = crate::alerts::inputs::email(
        "manager_email",
        row.get("manager_email").map(str::to_string),
    )
    .map_err(|e| errors.extend(row.errors_of(e, "manager_email")))
    .ok()
    .flatten();
    let parent = account_ref(row, "parent_id", "parent_external_id")
        .map_err(|e| errors.push(e))
        .ok()
        .flatten();
    match name {
        Some(name) if errors.is_empty() => Ok(Good {
            id,
            external_id,
            name,
            parent,
            manager_name,
            manager_email,
        }),
        _ => Err(errors),
    }
}

pub async fn chunk(
    session: &mut Session<'_>,
    rows: Vec<Row<'_>>,
    report: &mut ImportReport,
) -> ApiResult<Option<ImportChunk>> {
    let good = parse_all(&rows, report, parse);
    // Existing accounts the chunk may collide with or name as parents.
    let refs: Vec<AccountRef> = good
        .iter()
        .flat_map(|(_, g)| {
            let own = g.id.clone().map(AccountRef::Id);
            let key = g.external_id.clone().map(AccountRef::External);
            own.into_iter().chain(key).chain(g.parent.clone())
        })
        .collect();
    let known = KnownAccounts::read(session.state, refs.iter()).await?;
    let mut accounts = Vec::with_capacity(good.len());
    for (row, g) in good {
        let number = row.number;
        let mut errors = Vec::new();
        if let Some(id) = &g.id {
            let exists = known.id_exists(id);
            session.check_free(row, ("account", "id"), id, exists, &mut errors);
        }
        if let Some(key) = &g.external_id {
            let exists = known.external_exists(key);
            session.check_free(row, ("account", "external_id"), key, exists, &mut errors);
        }
        let parent_id = match &g.parent {
            None => None,
            Some(r) => match known.resolve(session, r) {
                Some(id) => Some(id),
                None => {
                    errors.push(unknown_account(row, r, "parent_id", "parent_external_id"));
                    None
                }
            },
        };
        if !errors.is_empty() {
            errors.into_iter().for_each(|e| report.error(e));
            continue;
        }
        let id =
            g.id.unwrap_or_else(|| AccountId::new(session.now).into_string());
        let _ = session.claim("account:id", &id, &id, number);
        if let Some(key) = &g.external_id {
            let _ = session.claim("account:external_id", key, &id, number);
        }
        accounts.push(Account {
            id,
            name: g.name,
            parent_id,
            manager_name: g.manager_name,
            manager_email: g.manager_email,
            created_at: session.now,
            external_id: g.external_id,
        });
    }
    if accounts.is_empty() {
        return Ok(None);
    }
    let changes = new_rows(
        accounts,
        vec![],
        vec![],
        vec![],
        &session.audit,
        session.now,
    );
    Ok(Some(ImportChunk::Rows(Box::new(changes))))
}
