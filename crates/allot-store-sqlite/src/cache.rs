//! Parsed terms, keyed by entitlement id and checked against the stored
//! JSON text: the hot paths (balance reads, every batch) compare a string
//! instead of parsing JSON. Comparing the text itself means the cache can
//! never serve stale terms, whoever changed the row.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use allot_core::entitlement::Terms;

use crate::error::Res;

/// Beyond this many entries the cache starts over (bounded memory).
const CAPACITY: usize = 50_000;

struct Parsed {
    json: String,
    terms: Terms,
}

#[derive(Default)]
pub(crate) struct TermsCache {
    entries: Mutex<HashMap<String, Arc<Parsed>>>,
}

impl TermsCache {
    /// The terms stored as `json` for entitlement `id`.
    pub(crate) fn terms(&self, id: &str, json: &str) -> Res<Terms> {
        let hit = self.entries.lock().ok().and_then(|m| m.get(id).cloned());
        if let Some(parsed) = hit {
            if parsed.json == json {
                return Ok(parsed.terms.clone());
            }
        }
        let terms: Terms = serde_json::from_str(json)?;
        let parsed = Arc::new(Parsed {
            json: json.to_string(),
            terms: terms.clone(),
        });
        if let Ok(mut map) = self.entries.lock() {
            if map.len() >= CAPACITY {
                map.clear();
            }
            map.insert(id.to_string(), parsed);
        }
        Ok(terms)
    }
}
