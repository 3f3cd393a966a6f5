//! HTTP handlers, one module per resource. A handler checks the caller's
//! permission, parses, calls the store or the write path, and renders.

pub mod entitlements;
pub mod keys;
pub mod parties;
pub mod system;
pub mod usage;

use utoipa::ToSchema;

use crate::views::Listing;

/// Builds a page from `limit + 1` fetched rows.
pub fn listing<T: ToSchema, R>(
    mut rows: Vec<R>,
    limit: u32,
    id: impl Fn(&R) -> String,
    view: impl Fn(R) -> T,
) -> Listing<T> {
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next_cursor = if more { rows.last().map(&id) } else { None };
    Listing {
        items: rows.into_iter().map(view).collect(),
        next_cursor,
    }
}

/// The page to ask a store for: one more row than shown, to know if there is more.
pub fn fetch(page: &allot_store::model::Page) -> allot_store::model::Page {
    allot_store::model::Page {
        after: page.after.clone(),
        limit: page.limit + 1,
    }
}
