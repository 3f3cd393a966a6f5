//! Field-level validation failures, reported to clients as 422.

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

/// One or more fields that failed validation; never empty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{}", .0.iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>().join("; "))]
pub struct Invalid(pub Vec<FieldError>);

impl Invalid {
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Invalid(vec![FieldError {
            field: field.into(),
            message: message.into(),
        }])
    }
}

/// Collects field errors so a client sees all of them at once.
#[derive(Debug, Default)]
pub struct Checks(Vec<FieldError>);

impl Checks {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn check(&mut self, ok: bool, field: &str, message: impl Into<String>) {
        if !ok {
            self.0.push(FieldError {
                field: field.to_string(),
                message: message.into(),
            });
        }
    }

    pub fn push(&mut self, field: &str, message: impl Into<String>) {
        self.check(false, field, message);
    }

    pub fn finish(self) -> Result<(), Invalid> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(Invalid(self.0))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_collect_every_failure_in_order() {
        let mut c = Checks::new();
        c.check(true, "name", "fine");
        c.check(false, "total", "must not be negative");
        c.push("end_date", "must not be before start_date");
        let err = c.finish().unwrap_err();
        assert_eq!(
            err,
            Invalid(vec![
                FieldError {
                    field: "total".into(),
                    message: "must not be negative".into(),
                },
                FieldError {
                    field: "end_date".into(),
                    message: "must not be before start_date".into(),
                },
            ])
        );
        assert_eq!(
            err.to_string(),
            "total: must not be negative; end_date: must not be before start_date"
        );
        assert_eq!(Checks::new().finish(), Ok(()));
        assert_eq!(
            Invalid::field("name", "must not be empty"),
            Invalid(vec![FieldError {
                field: "name".into(),
                message: "must not be empty".into(),
            }])
        );
    }
}
