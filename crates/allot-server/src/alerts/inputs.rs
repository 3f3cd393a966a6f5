//! Webhook bodies, parsed at the edge.

use serde::{Deserialize, Deserializer};
use utoipa::ToSchema;

use crate::error::ApiError;

/// Most event types one webhook lists.
pub const MAX_EVENT_TYPES: usize = 64;
const MAX_TYPE_LEN: usize = 100;
/// `entitlement.threshold_crossed`: lower-case words joined by dots. Types
/// not emitted yet are accepted: a subscriber may wait for them.
pub const EVENT_TYPE_PATTERN: &str = "^[a-z_]+(\\.[a-z_]+)+$";

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhook {
    /// http or https; by default it may not resolve to a private address.
    #[schema(
        max_length = 2000,
        format = "uri",
        example = "https://hooks.example.com/allot"
    )]
    pub url: String,
    /// The event types sent; empty or absent: every type, later ones included.
    #[serde(default)]
    #[schema(max_items = 64, inline, value_type = Vec<String>)]
    pub event_types: Option<Vec<String>>,
    /// Only this account's events.
    #[serde(default)]
    pub account_id: Option<String>,
    #[serde(default)]
    #[schema(max_length = 200)]
    pub description: Option<String>,
}

/// Absent fields stay; `description: null` clears it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchWebhook {
    #[serde(default)]
    #[schema(max_length = 2000, format = "uri")]
    pub url: Option<String>,
    #[serde(default)]
    #[schema(max_items = 64)]
    pub event_types: Option<Vec<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 200)]
    pub description: Option<Option<String>>,
    /// Enabling a disabled webhook forgets its failures.
    #[serde(default)]
    pub enabled: Option<bool>,
}

fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// Each type well formed, none twice, at most `MAX_EVENT_TYPES`.
pub fn event_types(types: Vec<String>) -> Result<Vec<String>, ApiError> {
    if types.len() > MAX_EVENT_TYPES {
        return Err(ApiError::field(
            "event_types",
            format!("at most {MAX_EVENT_TYPES} types"),
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(types.len());
    for (i, t) in types.into_iter().enumerate() {
        if !well_formed(&t) {
            return Err(ApiError::field(
                &format!("event_types[{i}]"),
                "must be an event type such as entitlement.exhausted",
            ));
        }
        if !out.contains(&t) {
            out.push(t);
        }
    }
    Ok(out)
}

fn well_formed(t: &str) -> bool {
    let word = |w: &str| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
    t.len() <= MAX_TYPE_LEN && t.contains('.') && t.split('.').all(word)
}

/// An optional address, checked as one (422 naming `field`).
pub fn email(field: &str, value: Option<String>) -> Result<Option<String>, ApiError> {
    match value.map(|v| v.trim().to_string()) {
        Some(v) if !allot_core::alerts::is_email_address(&v) => {
            Err(ApiError::field(field, "must be an e-mail address"))
        }
        other => Ok(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_types_are_dotted_lower_case_words() {
        assert!(well_formed("entitlement.exhausted"));
        assert!(well_formed("webhook.test"));
        assert!(!well_formed("exhausted"));
        assert!(!well_formed("Entitlement.Exhausted"));
        assert!(!well_formed("entitlement..x"));
        assert!(!well_formed("entitlement.x-y"));
        let kept = event_types(vec!["a.b".into(), "a.b".into(), "c.d".into()]).unwrap();
        assert_eq!(kept, vec!["a.b", "c.d"]);
        assert!(event_types(vec!["a.b".into(); MAX_EVENT_TYPES + 1]).is_err());
    }
}
