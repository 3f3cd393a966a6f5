//! Accounts, contacts and products.

use std::collections::HashSet;

use allot_store::audit::{snapshot, AuditContext, AuditEntry};
use allot_store::model::{Account, Contact, Page, Product};
use chrono::{DateTime, Utc};
use deadpool_postgres::{Pool, Transaction};
use serde_json::Value;

use crate::audit;
use crate::error::Res;
use crate::rows::{self, ACCOUNT_COLS, CONTACT_COLS, PRODUCT_COLS};

/// How far up a hierarchy `account_ancestors` looks.
const MAX_DEPTH: i32 = 32;

/// Writes the audit entry of a created object and commits with it.
async fn commit_created(
    tx: Transaction<'_>,
    ctx: &AuditContext,
    target_type: &str,
    id: &str,
    after: Option<Value>,
    at: DateTime<Utc>,
) -> Res<()> {
    let action = format!("{target_type}.create");
    let entry = AuditEntry::new(ctx, &action, target_type, id, None, after, at);
    audit::write(&tx, &entry).await?;
    tx.commit().await?;
    Ok(())
}

pub(crate) async fn insert_account(pool: &Pool, a: &Account, ctx: &AuditContext) -> Res<()> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let stmt = tx
        .prepare_cached(
            "INSERT INTO accounts (id, name, parent_id, created_at) VALUES ($1, $2, $3, $4)",
        )
        .await?;
    tx.execute(&stmt, &[&a.id, &a.name, &a.parent_id, &a.created_at])
        .await?;
    commit_created(tx, ctx, "account", &a.id, snapshot(a), a.created_at).await
}

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

pub(crate) async fn insert_contact(pool: &Pool, c: &Contact, ctx: &AuditContext) -> Res<()> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let stmt = tx
        .prepare_cached(
            "INSERT INTO contacts (id, account_id, name, email, created_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .await?;
    tx.execute(
        &stmt,
        &[&c.id, &c.account_id, &c.name, &c.email, &c.created_at],
    )
    .await?;
    commit_created(tx, ctx, "contact", &c.id, snapshot(c), c.created_at).await
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

pub(crate) async fn insert_product(pool: &Pool, p: &Product, ctx: &AuditContext) -> Res<()> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let stmt = tx
        .prepare_cached("INSERT INTO products (id, name, sku, created_at) VALUES ($1, $2, $3, $4)")
        .await?;
    tx.execute(&stmt, &[&p.id, &p.name, &p.sku, &p.created_at])
        .await?;
    commit_created(tx, ctx, "product", &p.id, snapshot(p), p.created_at).await
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
