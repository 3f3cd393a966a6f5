//! The dashboard's reads.

use allot_store::dashboard::{contains_pattern, DashboardStore, MAX_RECENT_EVENTS};
use allot_store::model::{Account, Event, Page};
use allot_store::StoreResult;
use async_trait::async_trait;
use rusqlite::params;

use crate::convert::all;
use crate::events::{event, EVENT};
use crate::SqliteStore;

#[async_trait]
impl DashboardStore for SqliteStore {
    async fn recent_events(&self, limit: u32) -> StoreResult<Vec<Event>> {
        let limit = i64::from(limit.min(MAX_RECENT_EVENTS));
        self.read(move |c, _| {
            all(
                &mut *c.prepare_cached(&format!("{EVENT} ORDER BY id DESC LIMIT ?1"))?,
                params![limit],
                event,
            )
        })
        .await
    }

    async fn search_accounts(&self, text: &str, page: &Page) -> StoreResult<Vec<Account>> {
        let pattern = contains_pattern(text);
        let page = page.clone();
        self.read(move |c, _| crate::parties::search_accounts(c, &pattern, &page))
            .await
    }
}
