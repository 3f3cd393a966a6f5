//! Opaque, type-prefixed ids that sort roughly by creation time.

use std::sync::atomic::{AtomicU64, Ordering};

use rand::RngCore;

static SEQUENCE: AtomicU64 = AtomicU64::new(0);

/// `prefix_` + 12 hex digits of milliseconds + 6 hex digits of a process
/// sequence (ids made in one millisecond keep their order) + 8 random hex
/// digits (processes never collide).
pub fn new_id(prefix: &str, now: chrono::DateTime<chrono::Utc>) -> String {
    let mut random = [0u8; 4];
    rand::thread_rng().fill_bytes(&mut random);
    let seq = SEQUENCE.fetch_add(1, Ordering::Relaxed) & 0xff_ffff;
    format!(
        "{prefix}_{:012x}{seq:06x}{}",
        now.timestamp_millis().max(0),
        hex::encode(random)
    )
}

/// Does `id` look like one of ours with this prefix? Used to turn a
/// malformed id into a clean 404 before any query runs.
pub fn has_prefix(id: &str, prefix: &str) -> bool {
    id.len() <= 64
        && id
            .strip_prefix(prefix)
            .and_then(|r| r.strip_prefix('_'))
            .is_some_and(|r| !r.is_empty() && r.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// An id of one kind of object, checked once where it enters the service
/// (a path or a body): past that point a value of the type is known to be
/// well formed, and the type says which table it names.
pub trait TypedId: Sized + std::ops::Deref<Target = str> {
    /// The prefix every id of this kind carries (`ent` in `ent_…`).
    const PREFIX: &'static str;
    /// What it names, as error messages say it ("entitlement").
    const NOUN: &'static str;

    /// `Some` when `raw` is well formed for this kind; a malformed id names
    /// nothing, so callers answer "not found" without a query.
    fn parse(raw: &str) -> Option<Self>;
}

macro_rules! typed_ids {
    ($($(#[$doc:meta])* $name:ident => $prefix:literal, $noun:literal;)*) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// A new id, made when the object is created.
            pub fn new(now: chrono::DateTime<chrono::Utc>) -> Self {
                Self(new_id($prefix, now))
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl TypedId for $name {
            const PREFIX: &'static str = $prefix;
            const NOUN: &'static str = $noun;

            fn parse(raw: &str) -> Option<Self> {
                has_prefix(raw, $prefix).then(|| Self(raw.to_owned()))
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }
    )*};
}

typed_ids! {
    AccountId => "acc", "account";
    ContactId => "con", "contact";
    ProductId => "prd", "product";
    EntitlementId => "ent", "entitlement";
    CaseId => "cas", "case";
    TimeEntryId => "tim", "time entry";
    ReservationId => "res", "reservation";
    ApiKeyId => "key", "api key";
    UserId => "usr", "user";
    WebhookId => "whk", "webhook";
    DeliveryId => "dlv", "delivery";
    SoftwareModelId => "swm", "software model";
    SoftwareEntitlementId => "swe", "software entitlement";
    AllocationId => "sal", "allocation";
    ReconciliationId => "rec", "reconciliation";
    ContractId => "ctr", "contract";
    ContractLineId => "cln", "contract line";
    TemplateId => "tpl", "entitlement template";
    JobId => "job", "job";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_carry_their_prefix_and_sort_by_time() {
        let t1 = chrono::DateTime::from_timestamp_millis(1_000).unwrap();
        let t2 = chrono::DateTime::from_timestamp_millis(2_000).unwrap();
        let (a, b) = (new_id("ent", t1), new_id("ent", t2));
        assert!(has_prefix(&a, "ent") && !has_prefix(&a, "acc"));
        assert!(a < b);
        assert!(!has_prefix("ent_../x", "ent"));
    }

    #[test]
    fn a_typed_id_accepts_only_its_own_kind() {
        let now = chrono::DateTime::from_timestamp_millis(1_000).unwrap();
        let made = EntitlementId::new(now);
        assert_eq!(EntitlementId::parse(&made).as_deref(), Some(&*made));
        assert!(AccountId::parse(&made).is_none());
        assert!(EntitlementId::parse("ent_").is_none());
        assert!(EntitlementId::parse(&format!("ent_{}", "a".repeat(64))).is_none());
        assert_eq!(serde_json::to_string(&made).unwrap(), format!("\"{made}\""));
    }
}
