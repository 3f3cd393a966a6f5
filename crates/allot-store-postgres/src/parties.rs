//! Accounts, contacts and products.

use std::collections::HashSet;

use allot_store::model::{Account, Contact, Page, Product};
use deadpool_postgres::Pool;

use crate::error::Res;
use crate::rows::{self, ACCOUNT_COLS, CONTACT_COLS, PRODUCT_COLS};

/// How far up a hierarchy `account_ancestors` looks.
const MAX_DEPTH: i32 = 32;

pub(crate) async fn get_account(pool: &Pool, id: &str) -> Res<Option<Account>> {
    let client = pool.get().await?;
    let stmt = client
        .prepare_cached(&format!(
            "SELECT {ACCOUNT_COLS} FROM accounts WHERE id = $1"
        ))
        .await?;
    client
        .query_opt(&stmt, &[&id])
        .await?
        .as_ref()
        .map(rows::account)
        .transpose()
}

pub(crate) async fn list_accounts(pool: &Pool, page: &Page) -> Res<Vec<Account>> {
    if page.limit == 0 {
        return Ok(Vec::new());
    }
    let client = pool.get().await?;
    let stmt = client
        .prepare_cached(&format!(
            "SELECT {ACCOUNT_COLS} FROM accounts WHERE id > $1 ORDER BY id LIMIT $2"
        ))
        .await?;
    client
        .query(&stmt, &[&rows::after(page), &rows::limit(page)])
        .await?
        .iter()
        .map(rows::account)
        .collect()
}

pub(crate) async fn account_ancestors(pool: &Pool, id: &str) -> Res<Vec<String>> {
    let client = pool.get().await?;
    // The depth bound also ends the recursion on a cycle; the walk below
    // cuts the cycle itself off.
    let stmt = client
        .prepare_cached(
            "WITH RECURSIVE up (id, parent_id, depth) AS (
                SELECT id, parent_id, 0 FROM accounts WHERE id = $1
                UNION ALL
                SELECT a.id, a.parent_id, up.depth + 1
                FROM accounts a JOIN up ON a.id = up.parent_id
                WHERE up.depth < $2
            )
            SELECT id FROM up WHERE depth > 0 ORDER BY depth",
        )
        .await?;
    let found = client.query(&stmt, &[&id, &MAX_DEPTH]).await?;
    let mut seen = HashSet::from([id.to_string()]);
    let mut ancestors = Vec::new();
    for row in &found {
        let ancestor: String = row.try_get(0)?;
        if !seen.insert(ancestor.clone()) {
            break;
        }
        ancestors.push(ancestor);
    }
    Ok(ancestors)
}

pub(crate) async fn get_contact(pool: &Pool, id: &str) -> Res<Option<Contact>> {
    let client = pool.get().await?;
    let stmt = client
        .prepare_cached(&format!(
            "SELECT {CONTACT_COLS} FROM contacts WHERE id = $1"
        ))
        .await?;
    client
        .query_opt(&stmt, &[&id])
        .await?
        .as_ref()
        .map(rows::contact)
        .transpose()
}

pub(crate) async fn list_contacts(
    pool: &Pool,
    account_id: Option<&str>,
    page: &Page,
) -> Res<Vec<Contact>> {
    if page.limit == 0 {
        return Ok(Vec::new());
    }
    let client = pool.get().await?;
    let found = match account_id {
        Some(account_id) => {
            let stmt = client
                .prepare_cached(&format!(
                    "SELECT {CONTACT_COLS} FROM contacts WHERE account_id = $1 AND id > $2
                     ORDER BY id LIMIT $3"
                ))
                .await?;
            client
                .query(
                    &stmt,
                    &[&account_id, &rows::after(page), &rows::limit(page)],
                )
                .await?
        }
        None => {
            let stmt = client
                .prepare_cached(&format!(
                    "SELECT {CONTACT_COLS} FROM contacts WHERE id > $1 ORDER BY id LIMIT $2"
                ))
                .await?;
            client
                .query(&stmt, &[&rows::after(page), &rows::limit(page)])
                .await?
        }
    };
    found.iter().map(rows::contact).collect()
}

pub(crate) async fn get_product(pool: &Pool, id: &str) -> Res<Option<Product>> {
    let client = pool.get().await?;
    let stmt = client
        .prepare_cached(&format!(
            "SELECT {PRODUCT_COLS} FROM products WHERE id = $1"
        ))
        .await?;
    client
        .query_opt(&stmt, &[&id])
        .await?
        .as_ref()
        .map(rows::product)
        .transpose()
}

pub(crate) async fn list_products(pool: &Pool, page: &Page) -> Res<Vec<Product>> {
    if page.limit == 0 {
        return Ok(Vec::new());
    }
    let client = pool.get().await?;
    let stmt = client
        .prepare_cached(&format!(
            "SELECT {PRODUCT_COLS} FROM products WHERE id > $1 ORDER BY id LIMIT $2"
        ))
        .await?;
    client
        .query(&stmt, &[&rows::after(page), &rows::limit(page)])
        .await?
        .iter()
        .map(rows::product)
        .collect()
}
