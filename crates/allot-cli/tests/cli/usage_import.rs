//! `allot usage import FILE.jsonl`: a file of uses streamed through
//! `POST /v1/usage/batch`, each line answered on its own, a rerun with the
//! same `--run-id` recording nothing twice.

use reqwest::Method;
use serde_json::{json, Value};

use crate::common::{on_both_backends, Service};

on_both_backends!(a_file_is_imported_line_by_line);

async fn used(service: &Service, ent: &str) -> Value {
    service
        .get(&format!("/v1/entitlements/{ent}/balance"))
        .await["used"]
        .clone()
}

async fn a_file_is_imported_line_by_line(service: Service) {
    let (status, account) = service
        .api(
            Method::POST,
            "/v1/accounts",
            Some(json!({ "name": "Acme" })),
        )
        .await;
    assert_eq!(status, 201, "{account}");
    let body = json!({ "account_id": account["id"], "name": "Metered", "unit": "units",
        "total": 2600, "restrict": true, "start_date": "2026-01-01", "end_date": "2026-12-31" });
    let (status, created) = service
        .api(Method::POST, "/v1/entitlements", Some(body))
        .await;
    assert_eq!(status, 201, "{created}");
    let ent = created["id"].as_str().unwrap().to_string();
    let path = format!("/v1/entitlements/{ent}/activate");
    assert_eq!(
        service.api(Method::POST, &path, Some(json!({}))).await.0,
        200
    );
    // 2,500 uses of 1 (three requests), a bad line and one too many at the end.
    let mut lines: Vec<String> = (0..2500)
        .map(|n| {
            json!({ "entitlement_id": ent, "quantity": 1, "reference": format!("r{n}") })
                .to_string()
        })
        .collect();
    lines.insert(
        10,
        json!({ "entitlement_id": ent, "quantity": "x" }).to_string(),
    );
    lines.insert(11, String::new());
    lines.push(json!({ "entitlement_id": ent, "quantity": 500 }).to_string());
    let file = service.config_dir.path().join("usage.jsonl");
    std::fs::write(&file, lines.join("\n")).unwrap();
    let file = file.to_str().unwrap();
    let args = ["usage", "import", file, "--run-id", "june", "-o", "json"];
    let run = service.allot(&args).await;
    // Some lines were refused: the summary, then exit 6 (a line was invalid).
    assert_eq!(run.code, Some(6), "{run:?}");
    assert!(
        run.stderr.contains("error: 2 lines were not recorded"),
        "{run:?}"
    );
    let summary: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(summary["lines"], 2502);
    assert_eq!(summary["accepted"], 2500);
    assert_eq!(summary["replayed"], 0);
    assert_eq!(summary["refused"], 2);
    let refusals = summary["refusals"].as_array().unwrap();
    assert_eq!(refusals[0]["line"], 11);
    assert_eq!(refusals[0]["status"], 422);
    assert_eq!(
        refusals[0]["message"].as_str().unwrap().split(':').next(),
        Some("quantity")
    );
    assert_eq!(refusals[1]["line"], 2503);
    assert_eq!(refusals[1]["code"], "entitlement_exhausted");
    assert_eq!(used(&service, &ent).await, json!(2500));
    // The same file again with the same run id: every line replayed.
    let again = service.allot(&args).await;
    assert_eq!(again.code, Some(6), "{again:?}");
    let summary: Value = serde_json::from_str(&again.stdout).unwrap();
    assert_eq!(
        (summary["accepted"].clone(), summary["replayed"].clone()),
        (json!(2500), json!(2500))
    );
    assert_eq!(used(&service, &ent).await, json!(2500));
    // A clean file: a person's summary, exit 0.
    let clean = service.config_dir.path().join("clean.jsonl");
    std::fs::write(
        &clean,
        json!({ "entitlement_id": ent, "quantity": 2 }).to_string(),
    )
    .unwrap();
    let args = ["usage", "import", clean.to_str().unwrap()];
    let out = service.allot(&args).await.ok(&args);
    assert_eq!(
        out,
        "1 lines: 1 recorded (0 of them already, replayed), 0 refused\n"
    );
    assert_eq!(used(&service, &ent).await, json!(2502));
}
