//! What an idempotency key answers again: the response as the client got
//! it. A versioned wire format (status and the body's exact bytes), never
//! an internal type serialized as it happens to be, so an answer stored by
//! one version replays byte for byte after an upgrade.

use serde_json::{json, Value};

use crate::plan::{IdemKey, KeyWrite};

/// The version this code writes. Readers accept every version listed in
/// `StoredAnswer::from_value`.
pub const ANSWER_VERSION: u64 = 1;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAnswer {
    pub status: u16,
    /// The JSON body exactly as sent.
    pub body: String,
}

impl StoredAnswer {
    pub fn to_value(&self) -> Value {
        json!({ "v": ANSWER_VERSION, "status": self.status, "body": self.body })
    }

    /// Reads version 1, and the unversioned `{"status", "body"}` that
    /// earlier versions stored for requests outside the write path (its
    /// body then comes back re-serialized, not byte for byte).
    pub fn from_value(stored: &Value) -> Option<StoredAnswer> {
        let status = u16::try_from(stored.get("status")?.as_u64()?).ok()?;
        match stored.get("v").and_then(Value::as_u64) {
            Some(ANSWER_VERSION) => Some(StoredAnswer {
                status,
                body: stored.get("body")?.as_str()?.to_string(),
            }),
            Some(_) => None,
            None => Some(StoredAnswer {
                status,
                body: serde_json::to_string(stored.get("body")?).ok()?,
            }),
        }
    }
}

/// How a mutation records its answer under a request's idempotency key,
/// in the same transaction as the mutation: the key, and the rendering of
/// the mutation's result into the response the client gets.
pub struct Answering<T> {
    pub key: IdemKey,
    pub render: Box<dyn Fn(&T) -> StoredAnswer + Send + Sync>,
}

impl<T> Answering<T> {
    /// The row that records `result`'s answer.
    pub fn write(&self, result: &T) -> KeyWrite {
        KeyWrite {
            scope: self.key.scope.clone(),
            key: self.key.key.clone(),
            fingerprint: self.key.fingerprint.clone(),
            answer: (self.render)(result).to_value(),
        }
    }
}

impl<T> std::fmt::Debug for Answering<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Answering").field("key", &self.key).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An answer as version 1 stores it: kept as a fixture so that a change
    /// of format that cannot read what is already stored fails here.
    const STORED_V1: &str = r#"{"v":1,"status":201,"body":"{\"id\":\"acc_1\",\"name\":\"Acme\"}"}"#;

    #[test]
    fn a_stored_answer_reads_back_byte_for_byte() {
        let stored: Value = serde_json::from_str(STORED_V1).unwrap();
        let answer = StoredAnswer::from_value(&stored).unwrap();
        assert_eq!(answer.status, 201);
        assert_eq!(answer.body, r#"{"id":"acc_1","name":"Acme"}"#);
        assert_eq!(answer.to_value(), stored);
    }

    #[test]
    fn unversioned_answers_of_earlier_versions_still_replay() {
        let stored = json!({ "status": 409, "body": { "error": { "code": "x" } } });
        let answer = StoredAnswer::from_value(&stored).unwrap();
        assert_eq!(answer.status, 409);
        assert_eq!(answer.body, r#"{"error":{"code":"x"}}"#);
    }

    #[test]
    fn unknown_versions_and_shapes_are_not_guessed() {
        assert_eq!(
            StoredAnswer::from_value(&json!({ "v": 2, "status": 200, "body": "" })),
            None
        );
        assert_eq!(
            StoredAnswer::from_value(&json!({ "outcome": "applied" })),
            None
        );
        assert_eq!(
            StoredAnswer::from_value(&json!({ "v": 1, "status": 70000, "body": "" })),
            None
        );
    }
}
