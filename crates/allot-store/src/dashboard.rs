//! What only the dashboard reads: the newest events first (the event feed
//! of `list_events` pages from the oldest, for consumers that follow it).

use async_trait::async_trait;

use crate::model::{Account, Event, Page};
use crate::StoreResult;

/// Most events `recent_events` returns.
pub const MAX_RECENT_EVENTS: u32 = 100;

#[async_trait]
pub trait DashboardStore: Send + Sync {
    /// The newest events, newest first: at most `limit` (capped at
    /// `MAX_RECENT_EVENTS`). One statement.
    async fn recent_events(&self, limit: u32) -> StoreResult<Vec<Event>>;

    /// Accounts whose name or id contains `text` (ASCII letters in any
    /// case; `%`, `_` and `\` are plain characters), in id order from
    /// `page.after`, at most `page.limit`. One statement.
    async fn search_accounts(&self, text: &str, page: &Page) -> StoreResult<Vec<Account>>;
}

/// `text` as a `LIKE … ESCAPE '\'` pattern that matches it anywhere,
/// lowercased (ASCII).
pub fn contains_pattern(text: &str) -> String {
    let mut p = String::from("%");
    for c in text.to_ascii_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

#[cfg(test)]
mod tests {
    use super::contains_pattern;

    #[test]
    fn a_search_pattern_escapes_the_like_wildcards() {
        assert_eq!(contains_pattern("AcMe"), "%acme%");
        assert_eq!(contains_pattern("50%_a\\b"), "%50\\%\\_a\\\\b%");
        assert_eq!(contains_pattern(""), "%%");
    }
}
