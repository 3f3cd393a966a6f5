//! Contacts: `name`, the account (`account_id` or `account_external_id`, an
//! existing account), optionally `email` and the id to keep.

use allot_store::ids::ContactId;
use allot_store::imports::{new_rows, ImportChunk, Table};
use allot_store::model::Contact;

use super::accounts::{required_account, unknown_account, AccountRef, KnownAccounts};
use super::kinds::{existing, parse_all, Column, KindDef, Row, Session};
use super::{ImportReport, RowError};
use crate::error::ApiResult;
use crate::inputs::MAX_TEXT;

pub const DEF: KindDef = KindDef {
    name: "contacts",
    columns: &[
        Column {
            name: "id",
            required: false,
            doc: "The id to keep (con_…); empty: a new one. Not one that exists.",
        },
        Column {
            name: "account_id",
            required: false,
            doc: "An existing account (this or account_external_id).",
        },
        Column {
            name: "account_external_id",
            required: false,
            doc: "An existing account by its external_id.",
        },
        Column {
            name: "name",
            required: true,
            doc: "The contact's name.",
        },
        Column {
            name: "email",
            required: false,
            doc: "An e-mail address.",
        },
    ],
    ignored: &["created_at"],
    example: &["", "", "CRM-1001", "Bob Jones", "bob@example.com"],
};

struct Good {
    id: Option<String>,
    account: AccountRef,
    name: String,
    email: Option<String>,
}

fn parse(row: &Row<'_>) -> Result<Good, Vec<RowError>> {
    let mut errors = Vec::new();
    let id = row.new_id::<ContactId>(&mut errors);
    let name = row.text("name", &mut errors);
    let email = row.get("email").map(str::to_string);
    if email
        .as_ref()
        .is_some_and(|e| !e.contains('@') || e.chars().count() > MAX_TEXT)
    {
        errors.push(row.error("email", "must be an e-mail address"));
    }
    let account = required_account(row, &mut errors);
    match (name, account) {
        (Some(name), Some(account)) if errors.is_empty() => Ok(Good {
            id,
            account,
            name,
            email,
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
    let known = KnownAccounts::read(session.state, good.iter().map(|(_, g)| &g.account)).await?;
    let own: Vec<String> = good.iter().filter_map(|(_, g)| g.id.clone()).collect();
    let taken = existing(session.state, Table::Contacts, &own).await?;
    let mut contacts = Vec::with_capacity(good.len());
    for (row, g) in good {
        let mut errors = Vec::new();
        if let Some(id) = &g.id {
            let exists = taken.contains(id);
            session.check_free(row, ("contact", "id"), id, exists, &mut errors);
        }
        let account_id = known.resolve(session, &g.account);
        if account_id.is_none() {
            errors.push(unknown_account(
                row,
                &g.account,
                "account_id",
                "account_external_id",
            ));
        }
        let Some(account_id) = account_id.filter(|_| errors.is_empty()) else {
            errors.into_iter().for_each(|e| report.error(e));
            continue;
        };
        let id =
            g.id.unwrap_or_else(|| ContactId::new(session.now).into_string());
        let _ = session.claim("contact:id", &id, &id, row.number);
        contacts.push(Contact {
            id,
            account_id,
            name: g.name,
            email: g.email,
            created_at: session.now,
        });
    }
    if contacts.is_empty() {
        return Ok(None);
    }
    let changes = new_rows(
        vec![],
        contacts,
        vec![],
        vec![],
        &session.audit,
        session.now,
    );
    Ok(Some(ImportChunk::Rows(Box::new(changes))))
}
