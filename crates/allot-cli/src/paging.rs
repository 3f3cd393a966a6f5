//! Listings come a page at a time (`limit`, then `cursor` = the previous
//! page's `next_cursor`). `--limit`/`--cursor` ask for one page; `--all`
//! follows every page to the end, with progress, and prints them as one
//! listing (`{"items": [...], "next_cursor": null}`).

use clap::Args;
use serde_json::{json, Value};

use crate::client::Remote;
use crate::progress::Progress;

/// Most rows one page holds (the API's bound), the page size of `--all`.
const MAX_LIMIT: u32 = 1000;

/// Most rows `--all` gathers: a bound on the memory a listing may take.
const MAX_ROWS: usize = 1_000_000;

#[derive(Debug, Clone, Args)]
pub struct Paging {
    /// Rows per page, 1 to 1000 [default: 100; 1000 with --all].
    #[arg(long)]
    pub limit: Option<u32>,
    /// Start after this `next_cursor` of a previous page.
    #[arg(long, conflicts_with = "all")]
    pub cursor: Option<String>,
    /// Follow every page to the end and print all the rows.
    #[arg(long)]
    pub all: bool,
}

impl Remote {
    /// `GET {path}` with `filters`: one page, or with `--all` every page.
    pub async fn list(
        &self,
        path: &str,
        filters: Vec<(&str, String)>,
        paging: &Paging,
    ) -> anyhow::Result<Value> {
        let query = |limit: u32, cursor: Option<&String>| {
            let mut query = filters.clone();
            query.push(("limit", limit.to_string()));
            query.extend(cursor.map(|c| ("cursor", c.clone())));
            query
        };
        if !paging.all {
            let limit = paging.limit.unwrap_or(100);
            return Ok(self
                .get(path, &query(limit, paging.cursor.as_ref()))
                .await?);
        }
        let limit = paging.limit.unwrap_or(MAX_LIMIT);
        let progress = Progress::new(&format!("fetching {path}"), None);
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page = self.get(path, &query(limit, cursor.as_ref())).await?;
            let rows = page["items"].as_array().cloned().unwrap_or_default();
            let next = page["next_cursor"].as_str();
            // Every page but the last has rows, so MAX_ROWS bounds the pages too.
            anyhow::ensure!(
                !rows.is_empty() || next.is_none(),
                "the service gave an empty page with more to come"
            );
            progress.inc(rows.len() as u64);
            items.extend(rows);
            anyhow::ensure!(
                items.len() <= MAX_ROWS,
                "more than {MAX_ROWS} rows: narrow the listing with its filters"
            );
            match next {
                None => break,
                // A cursor that does not move would loop for ever.
                Some(next) if cursor.as_deref() == Some(next) => {
                    anyhow::bail!("the service gave the same cursor {next} twice")
                }
                Some(next) => cursor = Some(next.to_string()),
            }
        }
        progress.finish();
        Ok(json!({ "items": items, "next_cursor": null }))
    }
}
