//! The dashboard's reads.

use allot_store::dashboard::{contains_pattern, DashboardStore, MAX_RECENT_EVENTS};
use allot_store::model::{Account, Event, Page};
use allot_store::StoreResult;
use async_trait::async_trait;

use crate::error::Res;
use crate::rows::{self, ACCOUNT_COLS, EVENT_COLS};
use crate::PostgresStore;

async fn recent(store: &PostgresStore, limit: u32) -> Res<Vec<Event>> {
    let limit = i64::from(limit.min(MAX_RECENT_EVENTS));
    let client = store.pool.get().await?;
    let stmt = client
        .prepare_cached(&format!(
            "SELECT {EVENT_COLS} FROM events ORDER BY id DESC LIMIT $1"
        ))
        .await?;
    client
        .query(&stmt, &[&limit])
        .await?
        .iter()
        .map(rows::event)
        .collect()
}

async fn search(store: &PostgresStore, text: &str, page: &Page) -> Res<Vec<Account>> {
    if page.limit == 0 {
        return Ok(Vec::new());
    }
    let pattern = contains_pattern(text);
    let client = store.pool.get().await?;
    let stmt = client
        .prepare_cached(&format!(
            "SELECT {ACCOUNT_COLS} FROM accounts WHERE id > $1 \
             AND (lower(name) LIKE $2 ESCAPE '\\' OR lower(id) LIKE $2 ESCAPE '\\') \
             ORDER BY id LIMIT $3"
        ))
        .await?;
    client
        .query(&stmt, &[&rows::after(page), &pattern, &rows::limit(page)])
        .await?
        .iter()
        .map(rows::account)
        .collect()
}

#[async_trait]
impl DashboardStore for PostgresStore {
    async fn recent_events(&self, limit: u32) -> StoreResult<Vec<Event>> {
        Ok(recent(self, limit).await?)
    }

    async fn search_accounts(&self, text: &str, page: &Page) -> StoreResult<Vec<Account>> {
        Ok(search(self, text, page).await?)
    }
}
