//! Webhook bodies, parsed at the edge.

use serde::{Deserialize, Deserializer};
use utoipa::ToSchema;

use crate::error::ApiError;

/// Most event types one webhook lists.
pub const MAX_EVENT_TYPES: usize = 64;
pub const MAX_TYPE_LEN: usize = 100;
/// `entitlement.threshold_crossed`: lower-case words joined by dots. Types
/// not emitted yet are accepted: a subscriber may wait for them.
pub const EVENT_TYPE_PATTERN: &str = "^[a-z_]+(\\.[a-z_]+)+$";

/// What the document states about these fields: exactly what the parsing
/// below accepts.
pub mod schemas {
    use utoipa::openapi::schema::{ArrayBuilder, SchemaType};
    use utoipa::openapi::{Array, Object, ObjectBuilder, Type};

    use super::{EVENT_TYPE_PATTERN, MAX_EVENT_TYPES, MAX_TYPE_LEN};

    /// `allot_core::alerts::is_email_address`: visible ASCII without
    /// `"(),;<>@\`, one `@`, a domain of two or more dot-separated labels.
    pub const EMAIL_PATTERN: &str =
        "^[!#-'*+\\--:=?A-Z\\[\\]-~]+@[!#-'*+\\-/-:=?A-Z\\[\\]-~]+(?:\\.[!#-'*+\\-/-:=?A-Z\\[\\]-~]+)+$";

    pub fn email() -> Object {
        ObjectBuilder::new()
            .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
            .max_length(Some(254))
            .pattern(Some(EMAIL_PATTERN))
            .description(Some("An e-mail address."))
            .build()
    }

    pub fn event_types() -> Array {
        let item = ObjectBuilder::new()
            .schema_type(Type::String)
            .max_length(Some(MAX_TYPE_LEN))
            .pattern(Some(EVENT_TYPE_PATTERN));
        ArrayBuilder::new()
            .schema_type(SchemaType::from_iter([Type::Array, Type::Null]))
            .items(item)
            .max_items(Some(MAX_EVENT_TYPES))
            .description(Some(
                "Event types such as entitlement.exhausted; empty or absent: every type, later ones included.",
            ))
            .build()
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhook {
    /// http or https; by default it may not resolve to a private address.
    #[schema(
        max_length = 2000,
        format = "uri",
        pattern = "^[hH][tT][tT][pP][sS]?://",
        example = "https://hooks.example.com/allot"
    )]
    pub url: String,
    #[serde(default)]
    #[schema(schema_with = schemas::event_types)]
    pub event_types: Option<Vec<String>>,
    /// Only this account's events.
    #[serde(default)]
    pub account_id: Option<String>,
    #[serde(default)]
    #[schema(schema_with = crate::inputs::schemas::optional_text)]
    pub description: Option<String>,
}

/// Absent fields stay; `description: null` clears it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchWebhook {
    #[serde(default)]
    #[schema(
        max_length = 2000,
        format = "uri",
        pattern = "^[hH][tT][tT][pP][sS]?://"
    )]
    pub url: Option<String>,
    #[serde(default)]
    #[schema(schema_with = schemas::event_types)]
    pub event_types: Option<Vec<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(schema_with = crate::inputs::schemas::optional_text)]
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
    fn the_documented_patterns_accept_what_the_parsing_accepts() {
        let email = regex::Regex::new(schemas::EMAIL_PATTERN).unwrap();
        for address in [
            "am@example.com",
            "a.b+c@mail.example.co.uk",
            "x@y.z",
            "am@example",
            "am@example..com",
            "a m@example.com",
            "<am@example.com>",
            "a@b@example.com",
            "am@.example.com",
        ] {
            assert_eq!(
                email.is_match(address),
                allot_core::alerts::is_email_address(address),
                "{address}"
            );
        }
        let kind = regex::Regex::new(EVENT_TYPE_PATTERN).unwrap();
        for t in [
            "entitlement.exhausted",
            "a.b.c",
            "exhausted",
            "A.b",
            "a..b",
            "a.b-c",
        ] {
            assert_eq!(kind.is_match(t), well_formed(t), "{t}");
        }
    }

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
