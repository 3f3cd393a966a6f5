//! Why a command failed, said in one line, and the exit code a script can
//! tell apart. The codes are part of the CLI's interface (`allot --help`,
//! README): never reuse one for another meaning.

use serde_json::Value;

/// Exit codes, as `allot --help` lists them.
pub const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  any other failure (configuration, database, I/O)
  2  usage error (unknown command or flag, missing argument)
  3  refused by a rule (409: exhausted, duplicate reference, invalid transition)
  4  not found (404)
  5  not authenticated or not allowed (401, 403)
  6  invalid input (422, 400)
  7  server unreachable, timed out, or failed (5xx)";

#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// The service answered with an error.
    #[error("{message} ({code})")]
    Answered {
        status: u16,
        code: String,
        message: String,
        /// `field: message` for each field a 422 names.
        fields: Vec<String>,
    },
    /// No answer: connection refused, DNS, timeout.
    #[error("cannot reach {url}: {cause}")]
    Unreachable { url: String, cause: String },
    /// No key from a flag, `ALLOT_KEY` or `allot login`.
    #[error("no API key (no_key)")]
    NoKey,
}

impl Failure {
    /// From a service's error answer (`{"error": {"code", "message", "details"}}`).
    pub fn answered(status: u16, body: &Value) -> Failure {
        let error = &body["error"];
        let fields = error["details"]["fields"]
            .as_array()
            .map(|fields| {
                fields
                    .iter()
                    .map(|f| {
                        format!(
                            "{}: {}",
                            f["field"].as_str().unwrap_or("?"),
                            f["message"].as_str().unwrap_or("")
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        Failure::Answered {
            status,
            code: error["code"].as_str().unwrap_or("http_error").to_string(),
            message: error["message"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| format!("the service answered {status}")),
            fields,
        }
    }

    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::Answered { status, .. } => match status {
                409 => 3,
                404 => 4,
                401 | 403 => 5,
                400 | 422 => 6,
                500..=599 => 7,
                _ => 1,
            },
            Failure::Unreachable { .. } => 7,
            Failure::NoKey => 5,
        }
    }

    /// A line that tells the person what to do next, where one helps.
    pub fn hint(&self) -> Option<&'static str> {
        let (code, status) = match self {
            Failure::Answered { code, status, .. } => (code, status),
            Failure::Unreachable { .. } => {
                return Some("check --url (or ALLOT_URL) and that `allot serve` is running")
            }
            Failure::NoKey => return Some("pass --key, set ALLOT_KEY, or run `allot login`"),
        };
        match (code.as_str(), status) {
            ("entitlement_exhausted" | "channel_exhausted", _) => Some(
                "nothing was recorded; a manager can post an adjustment or renew the entitlement",
            ),
            (_, 401) => Some("check --key (or ALLOT_KEY): the key is missing, wrong or revoked"),
            (_, 403) => Some("this key's role may not do this; ask an admin for a key that may"),
            ("idempotency_key_reused", _) => {
                Some("this Idempotency-Key was used with another request; use a new key")
            }
            _ => None,
        }
    }

    /// What is printed on standard error.
    pub fn report(&self) -> String {
        let mut out = format!("error: {self}");
        if let Failure::Answered { fields, .. } = self {
            for field in fields {
                out.push_str(&format!("\n  {field}"));
            }
        }
        if let Some(hint) = self.hint() {
            out.push_str(&format!("\nhint: {hint}"));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn answered(status: u16, code: &str) -> Failure {
        Failure::answered(
            status,
            &json!({ "error": { "code": code, "message": "m", "details": null } }),
        )
    }

    #[test]
    fn each_kind_of_failure_has_its_own_exit_code() {
        let codes = [
            (409, "entitlement_exhausted", 3),
            (404, "not_found", 4),
            (401, "unauthorized", 5),
            (403, "forbidden", 5),
            (422, "validation_failed", 6),
            (400, "malformed_json", 6),
            (500, "internal", 7),
            (503, "unavailable", 7),
            (418, "teapot", 1),
        ];
        for (status, code, exit) in codes {
            assert_eq!(answered(status, code).exit_code(), exit, "{status}");
        }
        let unreachable = Failure::Unreachable {
            url: "http://127.0.0.1:1".into(),
            cause: "refused".into(),
        };
        assert_eq!(unreachable.exit_code(), 7);
        assert_eq!(Failure::NoKey.exit_code(), 5);
    }

    #[test]
    fn the_report_is_one_line_plus_fields_and_a_hint() {
        let failure = Failure::answered(
            422,
            &json!({ "error": { "code": "validation_failed", "message": "quantity: must be a decimal",
                "details": { "fields": [{ "field": "quantity", "message": "must be a decimal" }] } } }),
        );
        assert_eq!(
            failure.report(),
            "error: quantity: must be a decimal (validation_failed)\n  quantity: must be a decimal"
        );
        let exhausted = answered(409, "entitlement_exhausted").report();
        assert!(exhausted.starts_with("error: m (entitlement_exhausted)\nhint: "));
    }
}
