//! What only the dashboard reads: the newest events first (the event feed
//! of `list_events` pages from the oldest, for consumers that follow it).

use async_trait::async_trait;

use crate::model::Event;
use crate::StoreResult;

/// Most events `recent_events` returns.
pub const MAX_RECENT_EVENTS: u32 = 100;

#[async_trait]
pub trait DashboardStore: Send + Sync {
    /// The newest events, newest first: at most `limit` (capped at
    /// `MAX_RECENT_EVENTS`). One statement.
    async fn recent_events(&self, limit: u32) -> StoreResult<Vec<Event>>;
}
