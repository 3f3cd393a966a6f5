//! How a client command prints its answer, chosen with `--output`: for
//! people (a summary or an aligned table, from `render`), as the API's JSON
//! body, or as CSV. A new command only says how a person reads its answer;
//! JSON and CSV come from the body itself, so every command has all three.

use std::io::Write;

use serde_json::Value;

/// How a client command prints its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// For people: a summary or an aligned table.
    Table,
    /// The API's body (pretty-printed; parses to exactly what the API sent).
    Json,
    /// One row per listed item (or one row for an object); the header is
    /// the JSON field names, nested ones dotted (`balance.remaining`).
    Csv,
}

/// Prints `body` as `output` asks; `human` renders it for people.
pub fn print(output: Output, body: &Value, human: impl Fn(&Value) -> String) -> anyhow::Result<()> {
    let text = match output {
        Output::Table => human(body) + "\n",
        Output::Json => serde_json::to_string_pretty(body)? + "\n",
        Output::Csv => {
            if let Some(next) = body["next_cursor"].as_str() {
                eprintln!("note: more rows after {next} (--cursor {next}, or --all)");
            }
            csv(body)?
        }
    };
    stdout(text.as_bytes())
}

/// Writes to standard output; a reader that went away (`| head`) is no error.
pub fn stdout(bytes: &[u8]) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

/// The rows of a body: a listing's `items` (or a bare array), else the
/// body as one row.
fn rows(body: &Value) -> Vec<&Value> {
    match (body, &body["items"]) {
        (_, Value::Array(items)) => items.iter().collect(),
        (Value::Array(items), _) => items.iter().collect(),
        (one, _) => vec![one],
    }
}

/// `(dotted field name, cell)` for every leaf of `value`; arrays are one
/// cell holding their JSON, since a row cannot hold a list.
fn flatten(prefix: &str, value: &Value, cells: &mut Vec<(String, String)>) {
    match value {
        Value::Object(fields) if !fields.is_empty() => {
            for (name, value) in fields {
                let path = if prefix.is_empty() {
                    name.clone()
                } else {
                    format!("{prefix}.{name}")
                };
                flatten(&path, value, cells);
            }
        }
        Value::Null => cells.push((prefix.to_string(), String::new())),
        Value::String(text) => cells.push((prefix.to_string(), text.clone())),
        other => cells.push((prefix.to_string(), other.to_string())),
    }
}

/// The body as CSV: a header of field names (every field any row has, in
/// order of first appearance), then one line per row; a field a row lacks
/// is an empty cell, as is `null`. A field that is an object in some rows
/// and `null` in others has only its dotted columns.
pub fn csv(body: &Value) -> anyhow::Result<String> {
    let flat: Vec<Vec<(String, String)>> = rows(body)
        .into_iter()
        .map(|row| {
            let mut cells = Vec::new();
            flatten("", row, &mut cells);
            cells
        })
        .collect();
    let mut header: Vec<&str> = Vec::new();
    for (name, _) in flat.iter().flatten() {
        if !header.contains(&name.as_str()) {
            header.push(name);
        }
    }
    let always_empty = |column: &str| {
        flat.iter()
            .flatten()
            .all(|(name, cell)| name != column || cell.is_empty())
    };
    let nested = |column: &str| {
        let prefix = format!("{column}.");
        header.iter().any(|other| other.starts_with(&prefix))
    };
    let header: Vec<&str> = header
        .iter()
        .copied()
        .filter(|column| !(nested(column) && always_empty(column)))
        .collect();
    let mut writer = csv::Writer::from_writer(Vec::new());
    if !header.is_empty() {
        writer.write_record(&header)?;
    }
    for cells in &flat {
        writer.write_record(header.iter().map(|column| {
            cells
                .iter()
                .find(|(name, _)| name == column)
                .map_or("", |(_, cell)| cell.as_str())
        }))?;
    }
    Ok(String::from_utf8(writer.into_inner()?)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_listing_is_one_row_per_item_under_the_field_names() {
        let body = json!({ "items": [
            { "id": "acc_1", "name": "Acme, Inc.", "parent_id": null },
            { "id": "acc_2", "name": "Site \"B\"", "parent_id": "acc_1" },
        ], "next_cursor": null });
        assert_eq!(
            csv(&body).unwrap(),
            "id,name,parent_id\nacc_1,\"Acme, Inc.\",\nacc_2,\"Site \"\"B\"\"\",acc_1\n"
        );
    }

    #[test]
    fn nested_fields_are_dotted_and_arrays_are_one_cell() {
        let body = json!({ "balance": { "used": 8, "period": { "start": "2026-01-01" } },
            "warnings": ["near"], "unlimited": false, "meta": {} });
        assert_eq!(
            csv(&body).unwrap(),
            "balance.period.start,balance.used,meta,unlimited,warnings\n\
             2026-01-01,8,{},false,\"[\"\"near\"\"]\"\n"
        );
    }

    #[test]
    fn an_object_null_in_some_rows_has_only_its_dotted_columns() {
        let body = json!({ "items": [
            { "action": "create", "before": null },
            { "action": "edit", "before": { "total": 10 } },
        ] });
        assert_eq!(
            csv(&body).unwrap(),
            "action,before.total\ncreate,\nedit,10\n"
        );
    }

    #[test]
    fn a_field_only_some_rows_have_is_empty_in_the_others() {
        let body = json!([{ "id": "a" }, { "id": "b", "revoked_at": "t" }]);
        assert_eq!(csv(&body).unwrap(), "id,revoked_at\na,\nb,t\n");
    }

    #[test]
    fn an_empty_listing_prints_nothing() {
        assert_eq!(csv(&json!({ "items": [] })).unwrap(), "");
    }
}
