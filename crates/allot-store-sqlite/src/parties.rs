//! Accounts, contacts and products.

use std::collections::HashSet;

use allot_store::model::{Account, Contact, Page, Product};
use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection, Row};

use crate::convert::{all, first, paged, ts, ts_at};
use crate::error::Res;

/// How far up a hierarchy `account_ancestors` looks.
const MAX_DEPTH: usize = 32;

const ACCOUNT: &str =
    "SELECT id, name, parent_id, created_at, manager_name, manager_email, external_id FROM accounts";

fn account(row: &Row) -> Res<Account> {
    Ok(Account {
        id: row.get(0)?,
        name: row.get(1)?,
        parent_id: row.get(2)?,
        created_at: ts_at(row, 3)?,
        manager_name: row.get(4)?,
        manager_email: row.get(5)?,
        external_id: row.get(6)?,
    })
}

pub(crate) fn insert_account(conn: &Connection, a: &Account) -> Res<()> {
    conn.prepare_cached(
        "INSERT INTO accounts (id, name, parent_id, created_at, manager_name, manager_email, external_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        a.id,
        a.name,
        a.parent_id,
        ts(a.created_at),
        a.manager_name,
        a.manager_email,
        a.external_id
    ])?;
    Ok(())
}

pub(crate) fn get_account(conn: &Connection, id: &str) -> Res<Option<Account>> {
    let mut stmt = conn.prepare_cached(&format!("{ACCOUNT} WHERE id = ?1"))?;
    first(&mut stmt, [id], account)
}

pub(crate) fn list_accounts(conn: &Connection, page: &Page) -> Res<Vec<Account>> {
    if page.limit == 0 {
        return Ok(Vec::new());
    }
    let mut args = Vec::new();
    let sql = paged(ACCOUNT, &[], "id", page, &mut args);
    all(
        &mut *conn.prepare_cached(&sql)?,
        params_from_iter(args),
        account,
    )
}

/// Accounts whose lowercased name or id is LIKE `pattern` (see
/// `allot_store::dashboard::contains_pattern`).
pub(crate) fn search_accounts(conn: &Connection, pattern: &str, page: &Page) -> Res<Vec<Account>> {
    if page.limit == 0 {
        return Ok(Vec::new());
    }
    let mut args = vec![Value::Text(pattern.to_string())];
    let matches = "(lower(name) LIKE ?1 ESCAPE '\\' OR lower(id) LIKE ?1 ESCAPE '\\')";
    let sql = paged(ACCOUNT, &[matches], "id", page, &mut args);
    all(
        &mut *conn.prepare_cached(&sql)?,
        params_from_iter(args),
        account,
    )
}

pub(crate) fn account_ancestors(conn: &Connection, id: &str) -> Res<Vec<String>> {
    let mut stmt = conn.prepare_cached("SELECT parent_id FROM accounts WHERE id = ?1")?;
    let mut seen = HashSet::from([id.to_string()]);
    let mut out = Vec::new();
    let mut current = id.to_string();
    while out.len() < MAX_DEPTH {
        let parent: Option<String> = first(&mut stmt, [&current], |r| Ok(r.get(0)?))?.flatten();
        match parent {
            Some(p) if seen.insert(p.clone()) => {
                out.push(p.clone());
                current = p;
            }
            _ => break,
        }
    }
    Ok(out)
}

const CONTACT: &str = "SELECT id, account_id, name, email, created_at FROM contacts";

fn contact(row: &Row) -> Res<Contact> {
    Ok(Contact {
        id: row.get(0)?,
        account_id: row.get(1)?,
        name: row.get(2)?,
        email: row.get(3)?,
        created_at: ts_at(row, 4)?,
    })
}

pub(crate) fn insert_contact(conn: &Connection, c: &Contact) -> Res<()> {
    conn.prepare_cached(
        "INSERT INTO contacts (id, account_id, name, email, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        c.id,
        c.account_id,
        c.name,
        c.email,
        ts(c.created_at)
    ])?;
    Ok(())
}

pub(crate) fn get_contact(conn: &Connection, id: &str) -> Res<Option<Contact>> {
    let mut stmt = conn.prepare_cached(&format!("{CONTACT} WHERE id = ?1"))?;
    first(&mut stmt, [id], contact)
}

pub(crate) fn list_contacts(
    conn: &Connection,
    account_id: Option<&str>,
    page: &Page,
) -> Res<Vec<Contact>> {
    if page.limit == 0 {
        return Ok(Vec::new());
    }
    let mut args = Vec::new();
    let mut conditions = Vec::new();
    if let Some(account_id) = account_id {
        conditions.push("account_id = ?");
        args.push(Value::Text(account_id.to_string()));
    }
    let sql = paged(CONTACT, &conditions, "id", page, &mut args);
    all(
        &mut *conn.prepare_cached(&sql)?,
        params_from_iter(args),
        contact,
    )
}

const PRODUCT: &str = "SELECT id, name, sku, created_at FROM products";

fn product(row: &Row) -> Res<Product> {
    Ok(Product {
        id: row.get(0)?,
        name: row.get(1)?,
        sku: row.get(2)?,
        created_at: ts_at(row, 3)?,
    })
}

pub(crate) fn insert_product(conn: &Connection, p: &Product) -> Res<()> {
    conn.prepare_cached(
        "INSERT INTO products (id, name, sku, created_at) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![p.id, p.name, p.sku, ts(p.created_at)])?;
    Ok(())
}

pub(crate) fn get_product(conn: &Connection, id: &str) -> Res<Option<Product>> {
    let mut stmt = conn.prepare_cached(&format!("{PRODUCT} WHERE id = ?1"))?;
    first(&mut stmt, [id], product)
}

pub(crate) fn list_products(conn: &Connection, page: &Page) -> Res<Vec<Product>> {
    if page.limit == 0 {
        return Ok(Vec::new());
    }
    let mut args = Vec::new();
    let sql = paged(PRODUCT, &[], "id", page, &mut args);
    all(
        &mut *conn.prepare_cached(&sql)?,
        params_from_iter(args),
        product,
    )
}
