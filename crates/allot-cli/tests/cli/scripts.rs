//! What a script reads: `-o json` is the API's body, `-o csv` its rows
//! under the JSON field names, `--all` every page.

use reqwest::Method;
use serde_json::{json, Value};

use crate::common::{on_both_backends, Service};

on_both_backends!(
    json_is_the_api_body,
    csv_rows_carry_the_json_fields,
    all_follows_every_page
);

/// A cases entitlement of `account` over 2026, active.
async fn active_entitlement(service: &Service, account: &str) -> String {
    let body = json!({ "account_id": account, "name": "Premier", "unit": "cases", "total": 10,
        "restrict": true, "start_date": "2026-01-01", "end_date": "2026-12-31",
        "channels": [{ "channel": "phone", "total": 4 }] });
    let (status, created) = service
        .api(Method::POST, "/v1/entitlements", Some(body))
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    let path = format!("/v1/entitlements/{id}/activate");
    let (status, _) = service.api(Method::POST, &path, Some(json!({}))).await;
    assert_eq!(status, 200);
    id
}

/// What `GET …/balance` reads, less the forecast it adds: the balance a use
/// or a hold answers with.
async fn balance_without_forecast(service: &Service, ent: &str) -> Value {
    let mut balance = service
        .get(&format!("/v1/entitlements/{ent}/balance"))
        .await;
    assert!(balance["forecast"].is_object(), "{balance}");
    balance.as_object_mut().unwrap().remove("forecast");
    balance
}

/// `allot ARGS -o json`, parsed.
async fn json(service: &Service, args: &[&str]) -> Value {
    let args = [args, &["-o", "json"]].concat();
    service.allot(&args).await.json(&args)
}

async fn json_is_the_api_body(service: Service) {
    // What a command creates is what the API then reads back.
    let acme = json(&service, &["accounts", "create", "--name", "Acme"]).await;
    let acc = acme["id"].as_str().unwrap().to_string();
    assert_eq!(acme, service.get(&format!("/v1/accounts/{acc}")).await);
    let jane = json(
        &service,
        &["contacts", "create", "--account", &acc, "--name", "Jane"],
    )
    .await;
    let con = jane["id"].as_str().unwrap().to_string();
    assert_eq!(jane, service.get(&format!("/v1/contacts/{con}")).await);
    let product = json(
        &service,
        &["products", "create", "--name", "DB", "--sku", "DB-1"],
    )
    .await;
    let prd = product["id"].as_str().unwrap().to_string();
    assert_eq!(product, service.get(&format!("/v1/products/{prd}")).await);
    let draft = json(
        &service,
        &[
            "entitlements",
            "create",
            "--account",
            &acc,
            "--name",
            "Hours",
            "--unit",
            "hours",
            "--total",
            "8",
            "--start",
            "2026-01-01",
            "--end",
            "2026-12-31",
        ],
    )
    .await;
    let hours = draft["id"].as_str().unwrap().to_string();
    assert_eq!(
        draft,
        service.get(&format!("/v1/entitlements/{hours}")).await
    );
    let active = json(&service, &["entitlements", "activate", &hours]).await;
    assert_eq!(
        active,
        service.get(&format!("/v1/entitlements/{hours}")).await
    );
    let ent = active_entitlement(&service, &acc).await;
    let used = json(
        &service,
        &["use", &ent, "--quantity", "1", "--channel", "phone"],
    )
    .await;
    assert_eq!(
        used["balance"],
        balance_without_forecast(&service, &ent).await
    );
    // The same Idempotency-Key applies once and answers the same again.
    let keyed = [
        "use",
        &ent,
        "--quantity",
        "2",
        "--idempotency-key",
        "visit-1",
    ];
    let first = json(&service, &keyed).await;
    assert_eq!(json(&service, &keyed).await, first);
    assert_eq!(first["balance"]["used"], json!(3));
    // A body from a file, the flags given beside it over it.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("visits.json");
    let body = json!({ "unit": "visits", "total": 4, "restrict": true, "name": "from the file" });
    std::fs::write(&file, body.to_string()).unwrap();
    let made = json(
        &service,
        &[
            "entitlements",
            "create",
            "--from-file",
            file.to_str().unwrap(),
            "--account",
            &acc,
            "--name",
            "Visits",
            "--start",
            "2026-01-01",
            "--end",
            "2026-12-31",
        ],
    )
    .await;
    assert_eq!(
        (
            &made["unit"],
            &made["total"],
            &made["name"],
            &made["restrict"]
        ),
        (&json!("visits"), &json!(4), &json!("Visits"), &json!(true))
    );
    let held = json(&service, &["reservations", "hold", &ent, "--quantity", "2"]).await;
    assert_eq!(
        held["balance"],
        balance_without_forecast(&service, &ent).await
    );
    let case = json(
        &service,
        &[
            "cases",
            "open",
            "--account",
            &acc,
            "--title",
            "Down",
            "--entitlement",
            &hours,
        ],
    )
    .await;
    let cas = case["id"].as_str().unwrap().to_string();
    let (_, fetched) = service
        .api(Method::GET, &format!("/v1/cases/{cas}"), None)
        .await;
    assert_eq!(case["id"], fetched["id"]);

    // Every read prints exactly what the API answers.
    let reads: Vec<(Vec<&str>, String)> = vec![
        (vec!["accounts", "list"], "/v1/accounts".into()),
        (vec!["accounts", "get", &acc], format!("/v1/accounts/{acc}")),
        (
            vec!["contacts", "list", "--account", &acc],
            format!("/v1/contacts?account_id={acc}"),
        ),
        (vec!["contacts", "get", &con], format!("/v1/contacts/{con}")),
        (vec!["products", "list"], "/v1/products".into()),
        (vec!["products", "get", &prd], format!("/v1/products/{prd}")),
        (
            vec!["entitlements", "list", "--account", &acc],
            format!("/v1/entitlements?account_id={acc}"),
        ),
        (
            vec!["entitlements", "get", &ent],
            format!("/v1/entitlements/{ent}"),
        ),
        (
            vec!["balance", &ent],
            format!("/v1/entitlements/{ent}/balance"),
        ),
        (
            vec!["usage", "list", &ent],
            format!("/v1/entitlements/{ent}/usage"),
        ),
        (
            vec!["eligibility", &acc, "--channel", "phone"],
            format!("/v1/accounts/{acc}/eligibility?channel=phone"),
        ),
        (
            vec!["audit", "--target-id", &ent],
            format!("/v1/audit?target_id={ent}"),
        ),
        (vec!["api-keys", "list"], "/v1/api-keys".into()),
    ];
    for (args, path) in reads {
        let printed = json(&service, &args).await;
        assert_eq!(
            printed,
            service.get(&path).await,
            "allot {args:?} against GET {path}"
        );
    }
}

/// `-o csv` parsed back: the header and one row per item.
async fn csv_of(service: &Service, args: &[&str]) -> (Vec<String>, Vec<Vec<String>>) {
    let args = [args, &["-o", "csv"]].concat();
    let out = service.allot(&args).await.ok(&args);
    let mut reader = csv::Reader::from_reader(out.as_bytes());
    let header = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_string)
        .collect();
    let rows = reader
        .records()
        .map(|r| r.unwrap().iter().map(str::to_string).collect())
        .collect();
    (header, rows)
}

/// The cell of `column` in `row`.
fn cell<'a>(header: &[String], row: &'a [String], column: &str) -> &'a str {
    let at = header
        .iter()
        .position(|h| h == column)
        .unwrap_or_else(|| panic!("no column {column} in {header:?}"));
    &row[at]
}

async fn csv_rows_carry_the_json_fields(service: Service) {
    for name in ["Acme, Inc.", "Globex \"the\" company"] {
        service
            .allot(&["accounts", "create", "--name", name])
            .await
            .ok(&[name]);
    }
    let listed = service.get("/v1/accounts").await;
    let items = listed["items"].as_array().unwrap();
    let (header, rows) = csv_of(&service, &["accounts", "list"]).await;
    let fields: Vec<String> = items[0].as_object().unwrap().keys().cloned().collect();
    assert_eq!(header, fields, "the header is the JSON field names");
    assert_eq!(rows.len(), items.len());
    for (row, item) in rows.iter().zip(items) {
        for field in &fields {
            let expected = match &item[field] {
                Value::Null => String::new(),
                Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            assert_eq!(cell(&header, row, field), expected, "{field}");
        }
    }

    let acc = items[0]["id"].as_str().unwrap().to_string();
    let ent = active_entitlement(&service, &acc).await;
    // Nested fields are dotted; a list is one cell holding its JSON.
    let balance = service
        .get(&format!("/v1/entitlements/{ent}/balance"))
        .await;
    let (header, rows) = csv_of(&service, &["balance", &ent]).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(cell(&header, &rows[0], "period.start"), "2026-01-01");
    assert_eq!(
        cell(&header, &rows[0], "remaining"),
        balance["remaining"].to_string()
    );
    let channels: Value = serde_json::from_str(cell(&header, &rows[0], "channels")).unwrap();
    assert_eq!(channels, balance["channels"]);
    let (header, rows) = csv_of(&service, &["eligibility", &acc]).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(cell(&header, &rows[0], "entitlement.id"), ent);
    assert_eq!(cell(&header, &rows[0], "balance.remaining"), "10");
    // A bare array (the API keys) is a listing too.
    let (header, rows) = csv_of(&service, &["api-keys", "list"]).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(cell(&header, &rows[0], "role"), "admin");
    assert_eq!(cell(&header, &rows[0], "revoked_at"), "");
}

async fn all_follows_every_page(service: Service) {
    for n in 1..=5 {
        let name = format!("Account {n}");
        let args = ["accounts", "create", "--name", &name];
        service.allot(&args).await.ok(&args);
    }
    let everything = service.get("/v1/accounts").await;
    assert_eq!(everything["items"].as_array().unwrap().len(), 5);

    let args = ["accounts", "list", "--limit", "2", "-o", "json"];
    let first = service.allot(&args).await.json(&args);
    assert_eq!(first, service.get("/v1/accounts?limit=2").await);
    let cursor = first["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_string();
    let args = [
        "accounts", "list", "--limit", "2", "--cursor", &cursor, "-o", "json",
    ];
    let second = service.allot(&args).await.json(&args);
    assert_eq!(
        second,
        service
            .get(&format!("/v1/accounts?limit=2&cursor={cursor}"))
            .await
    );

    let args = ["accounts", "list", "--all", "--limit", "2", "-o", "json"];
    assert_eq!(service.allot(&args).await.json(&args), everything);
    let args = ["accounts", "list", "--all", "-o", "json"];
    assert_eq!(service.allot(&args).await.json(&args), everything);

    // People and scripts are told when there is more.
    let args = ["accounts", "list", "--limit", "2"];
    let table = service.allot(&args).await.ok(&args);
    assert!(
        table
            .trim_end()
            .ends_with(&format!("(more after {cursor})")),
        "{table}"
    );
    let args = ["accounts", "list", "--limit", "2", "-o", "csv"];
    let run = service.allot(&args).await;
    assert_eq!(run.code, Some(0));
    assert_eq!(run.stdout.lines().count(), 3, "{}", run.stdout);
    assert_eq!(
        run.stderr,
        format!("note: more rows after {cursor} (--cursor {cursor}, or --all)\n")
    );
    let args = ["accounts", "list", "--all", "--limit", "2", "-o", "csv"];
    let all = service.allot(&args).await.ok(&args);
    assert_eq!(all.lines().count(), 6, "{all}");
    let args = ["accounts", "list", "--all", "--cursor", &cursor];
    assert_eq!(
        service.allot(&args).await.code,
        Some(2),
        "--all starts at the start"
    );
}
