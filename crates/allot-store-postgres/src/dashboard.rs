//! The dashboard's reads.

use allot_store::dashboard::{DashboardStore, MAX_RECENT_EVENTS};
use allot_store::model::Event;
use allot_store::StoreResult;
use async_trait::async_trait;

use crate::error::Res;
use crate::rows::{self, EVENT_COLS};
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

#[async_trait]
impl DashboardStore for PostgresStore {
    async fn recent_events(&self, limit: u32) -> StoreResult<Vec<Event>> {
        Ok(recent(self, limit).await?)
    }
}
