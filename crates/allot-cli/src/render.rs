//! What client commands print for a person: a short summary of one object,
//! an aligned table for a list. `--output json` prints the API's body
//! unchanged instead. Rendering reads the API's JSON, so it never needs
//! the server's types.

use serde_json::Value;

/// How a client command prints its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// For people: a summary or an aligned table.
    Table,
    /// The API's body, unchanged.
    Json,
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// "8 of 10 cases used, 2 remaining", or "3 hours used (unlimited)".
fn usage_line(balance: &Value) -> String {
    let (used, unit) = (text(&balance["used"]), text(&balance["unit"]));
    let mut line = if balance["unlimited"] == Value::Bool(true) {
        format!("{used} {unit} used (unlimited)")
    } else {
        let total = text(&balance["total"]);
        let remaining = text(&balance["remaining"]);
        format!("{used} of {total} {unit} used, {remaining} remaining")
    };
    let carried = &balance["carried_over"];
    if carried.as_f64().is_some_and(|c| c != 0.0) {
        line.push_str(&format!(", {} carried over", text(carried)));
    }
    let held = &balance["held"];
    if held.as_f64().is_some_and(|h| h != 0.0) {
        line.push_str(&format!(", {} held", text(held)));
    }
    let overage = &balance["overage"];
    if overage.as_f64().is_some_and(|o| o != 0.0) {
        line.push_str(&format!(", {} over", text(overage)));
    }
    line
}

fn period(balance: &Value) -> String {
    format!(
        "period {} … {}",
        text(&balance["period"]["start"]),
        text(&balance["period"]["end"])
    )
}

fn channel_lines(balance: &Value) -> Vec<Vec<String>> {
    balance["channels"]
        .as_array()
        .map(|channels| {
            channels
                .iter()
                .map(|c| {
                    vec![
                        format!("  {}", text(&c["channel"])),
                        format!("{} of {} used", text(&c["used"]), text(&c["total"])),
                        format!("{} remaining", text(&c["remaining"])),
                    ]
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Columns padded to their widest cell, two spaces apart.
fn table(rows: &[Vec<String>]) -> String {
    let width = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..width)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    rows.iter()
        .map(|row| {
            let cells: Vec<String> = row
                .iter()
                .enumerate()
                .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
                .collect();
            cells.join("  ").trim_end().to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// An entitlement's live balance, named and with its status.
pub fn balance(entitlement: &Value, balance: &Value) -> String {
    let mut out = format!(
        "{} — {} · {} · {}",
        text(&entitlement["name"]),
        usage_line(balance),
        period(balance),
        text(&entitlement["status"])
    );
    let channels = channel_lines(balance);
    if !channels.is_empty() {
        out.push('\n');
        out.push_str(&table(&channels));
    }
    out
}

fn warnings(body: &Value) -> String {
    body["warnings"]
        .as_array()
        .map(|w| {
            w.iter()
                .map(|w| format!("\nwarning: {}", text(w)))
                .collect()
        })
        .unwrap_or_default()
}

/// A recorded use: what was recorded and what is left.
pub fn recorded(body: &Value) -> String {
    let entry = &body["entry"];
    let what = if entry.is_null() {
        "nothing recorded".to_string()
    } else {
        format!(
            "recorded {} ({})",
            text(&entry["quantity"]),
            text(&entry["reason"])
        )
    };
    format!(
        "{what} · {} · {}{}",
        usage_line(&body["balance"]),
        period(&body["balance"]),
        warnings(body)
    )
}

/// A case after an action: its status, entitlement and what that has left.
pub fn case(body: &Value) -> String {
    let on = match &body["entitlement_id"] {
        Value::Null => "no entitlement".to_string(),
        id => format!("on {}", text(id)),
    };
    let entries = body["time_entries"].as_array().map_or(0, Vec::len);
    let mut out = format!(
        "case {} “{}” · {} · {}",
        text(&body["id"]),
        text(&body["title"]),
        text(&body["status"]),
        on
    );
    match entries {
        0 => {}
        1 => out.push_str(" · 1 time entry"),
        n => out.push_str(&format!(" · {n} time entries")),
    }
    if !body["entitlement_balance"].is_null() {
        out.push_str(&format!(" · {}", usage_line(&body["entitlement_balance"])));
    }
    out.push_str(&warnings(body));
    out
}

/// One object as `field  value` lines, for the fields named.
pub fn one(fields: &'static [&'static str]) -> impl Fn(&Value) -> String {
    move |body| {
        let rows: Vec<Vec<String>> = fields
            .iter()
            .map(|f| vec![f.to_string(), text(&body[*f])])
            .collect();
        table(&rows)
    }
}

/// A list (`{"items": [...]}` or a bare array) as a table of the columns named.
pub fn listed(columns: &'static [&'static str]) -> impl Fn(&Value) -> String {
    move |body| {
        let items = body["items"]
            .as_array()
            .or_else(|| body.as_array())
            .cloned()
            .unwrap_or_default();
        let mut rows = vec![columns.iter().map(|c| c.to_uppercase()).collect::<Vec<_>>()];
        rows.extend(
            items
                .iter()
                .map(|item| columns.iter().map(|c| text(&item[*c])).collect()),
        );
        let mut out = table(&rows);
        if let Some(next) = body["next_cursor"].as_str() {
            out.push_str(&format!("\n(more after {next})"));
        }
        out
    }
}

/// A reservation after hold, commit or release, with what is left.
pub fn reservation(body: &Value) -> String {
    let r = &body["reservation"];
    let amount = match &r["committed_quantity"] {
        Value::Null => text(&r["quantity"]),
        committed => format!("{} of {} held", text(committed), text(&r["quantity"])),
    };
    format!(
        "reservation {} · {} {amount} · {} · {}{}",
        text(&r["id"]),
        text(&r["status"]),
        usage_line(&body["balance"]),
        period(&body["balance"]),
        warnings(body)
    )
}

/// A new API key (its fields beside `secret`): the secret alone on the
/// last line (shown once).
pub fn created_key(body: &Value) -> String {
    let account = match &body["account_id"] {
        Value::Null => String::new(),
        id => format!(" for {}", text(id)),
    };
    format!(
        "created {} key {}{account}; its secret, shown once:\n{}",
        text(&body["role"]),
        text(&body["id"]),
        text(&body["secret"])
    )
}

/// The entitlements that would cover a case, best first.
pub fn eligibility(body: &Value) -> String {
    let items = body["items"].as_array().cloned().unwrap_or_default();
    if items.is_empty() {
        return format!(
            "no entitlement covers a case of {}",
            text(&body["account_id"])
        );
    }
    let mut rows = vec![vec![
        "ENTITLEMENT".to_string(),
        "NAME".to_string(),
        "REMAINING".to_string(),
        "UNIT".to_string(),
        "ENDS".to_string(),
    ]];
    for item in &items {
        let (e, b) = (&item["entitlement"], &item["balance"]);
        let remaining = if b["unlimited"] == Value::Bool(true) {
            "unlimited".to_string()
        } else {
            text(&b["remaining"])
        };
        rows.push(vec![
            text(&e["id"]),
            text(&e["name"]),
            remaining,
            text(&e["unit"]),
            text(&e["end_date"]),
        ]);
    }
    table(&rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn balance_of(used: i64, remaining: i64) -> Value {
        json!({ "unit": "cases", "unlimited": false, "total": 10, "used": used, "held": 0,
            "remaining": remaining, "overage": 0, "period": { "start": "2026-10-20", "end": "2027-01-19" },
            "channels": [] })
    }

    #[test]
    fn a_balance_reads_as_one_sentence() {
        let ent = json!({ "name": "Premier cases", "status": "active" });
        assert_eq!(
            balance(&ent, &balance_of(8, 2)),
            "Premier cases — 8 of 10 cases used, 2 remaining · period 2026-10-20 … 2027-01-19 · active"
        );
    }

    #[test]
    fn tables_align_their_columns() {
        let rows = vec![
            vec!["A".to_string(), "long name".to_string(), "1".to_string()],
            vec!["BBB".to_string(), "x".to_string(), "22".to_string()],
        ];
        assert_eq!(table(&rows), "A    long name  1\nBBB  x          22");
    }

    #[test]
    fn a_new_key_ends_with_its_secret_alone() {
        let created = json!({ "id": "key_1", "role": "customer", "account_id": "acc_1",
            "name": null, "secret": "allot_s" });
        assert_eq!(
            created_key(&created),
            "created customer key key_1 for acc_1; its secret, shown once:\nallot_s"
        );
    }

    #[test]
    fn a_commit_says_how_much_of_the_hold_it_used() {
        let balance = balance_of(1, 9);
        let mut body = json!({ "reservation": { "id": "res_1", "status": "committed",
            "quantity": 2, "committed_quantity": 1 }, "balance": balance, "warnings": [] });
        assert!(
            reservation(&body).starts_with("reservation res_1 · committed 1 of 2 held · 1 of 10")
        );
        body["reservation"]["committed_quantity"] = Value::Null;
        body["reservation"]["status"] = json!("held");
        assert!(reservation(&body).starts_with("reservation res_1 · held 2 · "));
    }

    #[test]
    fn held_and_overage_are_said_only_when_there() {
        let mut b = balance_of(11, -1);
        b["overage"] = json!(1);
        b["held"] = json!(2);
        assert_eq!(
            usage_line(&b),
            "11 of 10 cases used, -1 remaining, 2 held, 1 over"
        );
        b["carried_over"] = json!(2);
        b["remaining"] = json!(1);
        assert_eq!(
            usage_line(&b),
            "11 of 10 cases used, 1 remaining, 2 carried over, 2 held, 1 over"
        );
        b["unlimited"] = json!(true);
        assert_eq!(
            usage_line(&b),
            "11 cases used (unlimited), 2 carried over, 2 held, 1 over"
        );
    }
}
