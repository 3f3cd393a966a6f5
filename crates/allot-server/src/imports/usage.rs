//! Usage: one use per row, through the write path's planner with the row's
//! `idempotency_key` (scope `import`, shared by every importer): a file
//! imported again replays instead of applying twice. Caps hold across the
//! whole file; with `allow_overage` a use past a restricted cap is recorded
//! and flagged `imported_overage` in the ledger.

use allot_core::batch::Op;
use allot_core::decide::{Change, Reason, Refusal};
use allot_core::Quantity;
use allot_store::answer::StoredAnswer;
use allot_store::ids::{EntitlementId, TypedId};
use allot_store::imports::{ImportChunk, RowRefusal};
use allot_store::plan::{BatchItem, Command, IdemKey, ItemAnswer, Outcome, Render};

use super::kinds::{parse_all, Column, KindDef, Row, Session};
use super::{ImportReport, RowError};
use crate::error::ApiResult;

/// The idempotency keys of imported usage are in this scope, whoever imports.
pub const KEY_SCOPE: &str = "import";

pub const DEF: KindDef = KindDef {
    name: "usage",
    columns: &[
        Column { name: "entitlement_id", required: true, doc: "The entitlement used (ent_…)." },
        Column { name: "quantity", required: true, doc: "Positive; whole for cases and visits." },
        Column { name: "idempotency_key", required: false, doc: "Unique per use: importing the row again applies nothing. Required unless the file has id (a ledger export: its entry ids are the keys)." },
        Column { name: "kind", required: false, doc: "usage (default) or visit." },
        Column { name: "channel", required: false, doc: "One of the entitlement's channels." },
        Column { name: "reference", required: false, doc: "e.g. a work order number; unique per entitlement." },
        Column { name: "id", required: false, doc: "A ledger export's entry id: the key when idempotency_key is absent." },
        Column { name: "reason", required: false, doc: "A ledger export's reason: usage or visit (as kind)." },
    ],
    ignored: &["period_index", "actor", "created_at"],
    example: &["ent_0000000000000000000000000000", "2", "crm-2026-000123", "usage", "", "WO-4711", "", ""],
};

/// What an imported row's key stores: 201 and the ledger entry the row
/// made. An import only tells a replayed key from a fresh one (it never
/// sends the answer back), so the key keeps this instead of the usage
/// route's answer (entry and balance, ten times the bytes, written a
/// million times by a large file). Refusals are never stored: a refused
/// row rolls the whole import back.
const IMPORTED_ANSWER: Render = Render(imported_answer);

fn imported_answer(outcome: Outcome) -> StoredAnswer {
    match outcome {
        Outcome::Applied { entries, .. } => {
            let entry = entries.first().map(|e| e.id.as_str());
            StoredAnswer {
                status: 201,
                body: serde_json::json!({ "entry_id": entry }).to_string(),
            }
        }
        other => crate::routes::usage::USAGE_ANSWER.answer(other),
    }
}

struct Good {
    entitlement_id: String,
    quantity: Quantity,
    key: String,
    visit: bool,
    channel: Option<String>,
    reference: Option<String>,
}

fn parse(row: &Row<'_>) -> Result<Good, Vec<RowError>> {
    let mut errors = Vec::new();
    let entitlement_id = row.get("entitlement_id").and_then(EntitlementId::parse);
    if entitlement_id.is_none() {
        errors.push(row.error("entitlement_id", "must be an entitlement id (ent_…)"));
    }
    let quantity = match row.get("quantity").map(str::parse::<Quantity>) {
        Some(Ok(q)) if q.milli() > 0 => Some(q),
        _ => {
            errors.push(row.error("quantity", "must be a positive number (up to 3 decimals)"));
            None
        }
    };
    let key = row
        .short("idempotency_key", &mut errors)
        .or_else(|| row.short("id", &mut errors));
    if key.is_none() {
        errors.push(row.error("idempotency_key", "is required (or an id column)"));
    }
    let kind = row.get("kind").or(row.get("reason"));
    let visit = match kind {
        None | Some("usage" | "imported_overage") => false,
        Some("visit") => true,
        Some(_) => {
            let column = if row.get("kind").is_some() {
                "kind"
            } else {
                "reason"
            };
            errors.push(row.error(column, "only usage and visit rows can be imported"));
            false
        }
    };
    let channel = row.short("channel", &mut errors);
    let reference = row.short("reference", &mut errors);
    match (entitlement_id, quantity, key) {
        (Some(e), Some(quantity), Some(key)) if errors.is_empty() => Ok(Good {
            entitlement_id: e.into_string(),
            quantity,
            key,
            visit,
            channel,
            reference,
        }),
        _ => Err(errors),
    }
}

pub async fn chunk(
    session: &mut Session<'_>,
    rows: Vec<Row<'_>>,
    report: &mut ImportReport,
) -> ApiResult<Option<ImportChunk>> {
    let good = parse_all(&rows, report, parse);
    let mut numbers = Vec::with_capacity(good.len());
    let mut items = Vec::with_capacity(good.len());
    // A key an earlier row had is found by the store, inside the import's
    // transaction (`RowRefusal::DuplicateKey`): nothing here grows with the file.
    for (row, g) in good {
        let reason = match (g.visit, session.options.allow_overage) {
            (true, _) => Reason::Visit,
            (false, true) => Reason::ImportedOverage,
            (false, false) => Reason::Usage,
        };
        // What the key's fingerprint covers: the use itself.
        let body = serde_json::json!({
            "quantity": g.quantity.to_string(),
            "channel": g.channel,
            "reference": g.reference,
            "visit": g.visit,
            "allow_overage": session.options.allow_overage,
        });
        let path = format!("/v1/imports/usage/{}", g.entitlement_id);
        let fingerprint =
            crate::idempotency::fingerprint("POST", &path, body.to_string().as_bytes());
        items.push(BatchItem {
            command: Command::Ledger {
                ops: vec![Op {
                    entitlement_id: g.entitlement_id,
                    change: Change::Consume {
                        quantity: g.quantity,
                        channel: g.channel,
                        reason,
                        reference: g.reference,
                    },
                }],
            },
            actor: session.audit.clone(),
            idempotency: Some(IdemKey {
                scope: KEY_SCOPE.to_string(),
                key: g.key,
                fingerprint,
            }),
            render: IMPORTED_ANSWER,
        });
        numbers.push(row.number);
    }
    if items.is_empty() {
        return Ok(None);
    }
    Ok(Some(ImportChunk::Usage {
        rows: numbers,
        items,
    }))
}

/// A usage row the store refused, as the report says it.
pub fn refusal(row: u64, refusal: &RowRefusal) -> RowError {
    let answer = match refusal {
        RowRefusal::Answer(answer) => answer,
        RowRefusal::DuplicateKey { first, key } => {
            return RowError::new(
                row,
                "idempotency_key",
                key,
                format!("duplicate key: row {first} has it"),
            )
        }
    };
    match answer {
        ItemAnswer::KeyMismatch => RowError::new(
            row,
            "idempotency_key",
            "",
            "this key was imported before with a different row",
        ),
        ItemAnswer::Done {
            outcome: Outcome::Refused { refusal },
        } => {
            let (column, value) = match refusal {
                Refusal::EntitlementExhausted { requested, .. } => {
                    ("quantity", requested.to_string())
                }
                Refusal::ChannelExhausted { channel, .. } => ("channel", channel.clone()),
                Refusal::UnknownChannel { channel, .. } => ("channel", channel.clone()),
                Refusal::EntitlementNotActive { entitlement_id, .. }
                | Refusal::EntitlementNotFound { entitlement_id } => {
                    ("entitlement_id", entitlement_id.clone())
                }
                Refusal::InvalidQuantity { .. } => ("quantity", String::new()),
                Refusal::DuplicateReference { reference, .. } => ("reference", reference.clone()),
            };
            RowError::new(
                row,
                column,
                &value,
                format!("{} ({})", refusal, refusal.code()),
            )
        }
        other => RowError::new(row, "body", "", format!("refused: {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use allot_core::decide::{Reason, Refusal};
    use allot_core::Quantity;
    use allot_store::model::LedgerEntry;
    use allot_store::plan::Outcome;
    use chrono::Utc;

    use super::imported_answer;

    #[test]
    fn an_imported_key_stores_its_ledger_entry_and_nothing_more() {
        let entry = LedgerEntry {
            id: "use_1".into(),
            entitlement_id: "ent_1".into(),
            period_index: 0,
            channel: None,
            quantity: Quantity::from_milli(1000),
            reason: Reason::Usage,
            reference: None,
            actor: "key_1".into(),
            created_at: Utc::now(),
        };
        let applied = Outcome::Applied {
            entries: vec![entry],
            balances: Vec::new(),
            warnings: Vec::new(),
            reservation: None,
            case: None,
        };
        let answer = imported_answer(applied);
        assert_eq!(
            (answer.status, answer.body.as_str()),
            (201, r#"{"entry_id":"use_1"}"#)
        );
        // A refusal answers as the usage route would (never stored: the
        // import rolls back).
        let refused = Outcome::Refused {
            refusal: Refusal::EntitlementNotFound {
                entitlement_id: "ent_2".into(),
            },
        };
        let answer = imported_answer(refused);
        assert!(answer.status >= 400, "{answer:?}");
        assert!(answer.body.contains("ent_2"), "{answer:?}");
    }
}
