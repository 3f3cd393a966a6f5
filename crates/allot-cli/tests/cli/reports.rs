//! `allot report …`: aligned tables for people, the service's CSV and JSON
//! for scripts, bad filters refused as invalid input.

use reqwest::Method;
use serde_json::json;

use crate::common::{on_both_backends, Service};

on_both_backends!(report_commands_print_tables_csv_and_json);

async fn report_commands_print_tables_csv_and_json(service: Service) {
    let (status, account) = service
        .api(
            Method::POST,
            "/v1/accounts",
            Some(json!({ "name": "Acme" })),
        )
        .await;
    assert_eq!(status, 201, "{account}");
    let acc = account["id"].as_str().unwrap().to_string();
    // The service's clock stands at 2026-06-15: 20 days left, 9 of 10 used.
    let body = json!({ "account_id": acc, "name": "Cases", "unit": "cases", "total": 10,
        "start_date": "2026-06-15", "end_date": "2026-07-05" });
    let (status, created) = service
        .api(Method::POST, "/v1/entitlements", Some(body))
        .await;
    assert_eq!(status, 201, "{created}");
    let ent = created["id"].as_str().unwrap().to_string();
    let (status, _) = service
        .api(
            Method::POST,
            &format!("/v1/entitlements/{ent}/activate"),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = service
        .api(
            Method::POST,
            &format!("/v1/entitlements/{ent}/usage"),
            Some(json!({ "quantity": 9 })),
        )
        .await;
    assert_eq!(status, 201);

    let args = ["report", "approaching-limit"];
    let out = service.allot(&args).await.ok(&args);
    let lines: Vec<&str> = out.trim().lines().collect();
    assert!(
        lines[0].starts_with("ENTITLEMENT_ID") && lines[0].contains("  ACCOUNT_ID"),
        "{out}"
    );
    assert!(
        lines[1].starts_with(&ent) && lines[1].contains("approaching"),
        "{out}"
    );

    let args = ["report", "expiring", "-o", "csv"];
    let out = service.allot(&args).await.ok(&args);
    let lines: Vec<&str> = out.trim().lines().collect();
    assert_eq!(
        lines[0],
        "entitlement_id,account_id,name,unit,end_date,days_left,auto_renew,total,used,unused"
    );
    assert_eq!(
        lines[1],
        format!("{ent},{acc},Cases,cases,2026-07-05,20,false,10,9,1")
    );

    let args = ["report", "forecast", "-o", "json"];
    let body = service.allot(&args).await.json(&args);
    assert_eq!(body["items"][0]["entitlement_id"], json!(ent));

    for report in ["consumption", "unused"] {
        let args = ["report", report];
        let out = service.allot(&args).await.ok(&args);
        assert!(out.starts_with("ENTITLEMENT_ID"), "{report}: {out}");
    }

    let args = ["report", "expiring", "--within-days", "9999"];
    let run = service.allot(&args).await;
    run.failed(&args, 6);
    assert!(run.stderr.contains("within_days"), "{run:?}");
}
