//! After-run checks: `used == sum(ledger)`, caps respected, and every accepted use recorded once.

use std::collections::HashMap;

use serde::Serialize;

use crate::stats::Tally;

/// Milli-units per unit: every request uses 1 unit.
pub const MILLI: i64 = 1000;
/// Problems listed in full before the rest are only counted.
const MAX_LISTED: usize = 8;

/// One entitlement's balance as stored (quantities in thousandths of a unit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BalanceRow {
    pub id: String,
    pub used_milli: i64,
    /// `SUM(ledger)` for the current period; `None` when it cannot be read (API-only checks).
    pub ledger_milli: Option<i64>,
    /// The effective cap (total plus carried-over); `None` for unlimited.
    pub cap_milli: Option<i64>,
    pub restricted: bool,
}

/// `used_milli` by entitlement id.
pub fn used_by_id(rows: &[BalanceRow]) -> HashMap<String, i64> {
    rows.iter()
        .map(|row| (row.id.clone(), row.used_milli))
        .collect()
}

#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    pub valid: bool,
    /// How the numbers were read: `database` or `api` (no ledger sum).
    pub method: &'static str,
    pub checked: usize,
    pub problems: Vec<String>,
}

impl Verdict {
    pub fn add_problem(&mut self, problem: String) {
        self.valid = false;
        self.problems.push(problem);
    }

    pub fn label(&self) -> String {
        if self.valid {
            format!("ok ({}, {} checked)", self.method, self.checked)
        } else {
            format!("INVALID: {}", self.problems.join("; "))
        }
    }
}

/// Checks every row, and the accounting of every entitlement the run sent requests to.
///
/// `ids[i]` is the id of tally index `i`; `before` holds `used_milli` from before the run.
pub fn check(
    method: &'static str,
    rows: &[BalanceRow],
    ids: &[String],
    before: &HashMap<String, i64>,
    tally: &Tally,
) -> Verdict {
    let mut problems = Vec::new();
    let mut checked = 0usize;
    let by_id: HashMap<&str, &BalanceRow> = rows.iter().map(|row| (row.id.as_str(), row)).collect();
    for row in rows {
        checked += 1;
        if let Some(ledger) = row.ledger_milli {
            if ledger != row.used_milli {
                problems.push(format!(
                    "{}: used {} != sum(ledger) {} (milli)",
                    row.id, row.used_milli, ledger
                ));
            }
        }
        if let (true, Some(cap)) = (row.restricted, row.cap_milli) {
            if row.used_milli > cap {
                problems.push(format!(
                    "{}: used {} over cap {} (milli)",
                    row.id, row.used_milli, cap
                ));
            }
        }
    }
    for (index, id) in ids.iter().enumerate().take(tally.len()) {
        let (sent, accepted, in_doubt) = tally.get(index);
        if sent == 0 {
            continue;
        }
        let Some(row) = by_id.get(id.as_str()) else {
            if accepted > 0 {
                problems.push(format!("{id}: {accepted} accepted but no balance row"));
            }
            continue;
        };
        let delta = row.used_milli - before.get(id).copied().unwrap_or(0);
        let low = to_milli(accepted);
        let high = to_milli(accepted + in_doubt);
        if delta < low || delta > high {
            let expected = if in_doubt == 0 {
                format!("{low}")
            } else {
                format!("{low}..={high}")
            };
            problems.push(format!(
                "{id}: used grew by {delta} milli, expected {expected} ({accepted} accepted)"
            ));
        }
    }
    let total = problems.len();
    if total > MAX_LISTED {
        problems.truncate(MAX_LISTED);
        problems.push(format!("... {} more", total - MAX_LISTED));
    }
    Verdict {
        valid: total == 0,
        method,
        checked,
        problems,
    }
}

fn to_milli(units: u64) -> i64 {
    i64::try_from(units)
        .unwrap_or(i64::MAX)
        .saturating_mul(MILLI)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, used: i64, ledger: i64, cap: Option<i64>) -> BalanceRow {
        BalanceRow {
            id: id.to_owned(),
            used_milli: used,
            ledger_milli: Some(ledger),
            cap_milli: cap,
            restricted: true,
        }
    }

    fn ids() -> Vec<String> {
        vec!["a".to_owned(), "b".to_owned()]
    }

    #[test]
    fn consistent_run_is_valid() {
        let tally = Tally::new(2);
        tally.sent(0);
        tally.accepted(0);
        tally.sent(0);
        tally.accepted(0);
        let rows = vec![row("a", 5000, 5000, Some(10_000)), row("b", 0, 0, None)];
        let before = HashMap::from([("a".to_owned(), 3000)]);
        let verdict = check("database", &rows, &ids(), &before, &tally);
        assert!(verdict.valid, "{:?}", verdict.problems);
        assert_eq!(verdict.checked, 2);
    }

    #[test]
    fn ledger_mismatch_is_invalid() {
        let tally = Tally::new(2);
        let rows = vec![row("a", 5000, 4000, None)];
        let verdict = check("database", &rows, &ids(), &HashMap::new(), &tally);
        assert!(!verdict.valid);
        assert!(verdict.label().starts_with("INVALID"));
    }

    #[test]
    fn over_cap_is_invalid() {
        let tally = Tally::new(2);
        let rows = vec![row("a", 11_000, 11_000, Some(10_000))];
        assert!(!check("database", &rows, &ids(), &HashMap::new(), &tally).valid);
    }

    #[test]
    fn lost_or_double_counted_use_is_invalid() {
        let tally = Tally::new(2);
        tally.sent(1);
        tally.accepted(1);
        let lost = vec![row("b", 0, 0, None)];
        assert!(!check("database", &lost, &ids(), &HashMap::new(), &tally).valid);
        let doubled = vec![row("b", 2000, 2000, None)];
        assert!(!check("database", &doubled, &ids(), &HashMap::new(), &tally).valid);
    }

    #[test]
    fn in_doubt_widens_the_range() {
        let tally = Tally::new(2);
        tally.sent(1);
        tally.sent(1);
        tally.accepted(1);
        tally.in_doubt(1);
        let rows = vec![row("b", 2000, 2000, None)];
        assert!(check("database", &rows, &ids(), &HashMap::new(), &tally).valid);
    }
}
