//! `allot report …`: aligned tables for people, the service's CSV and JSON
//! for scripts, bad filters refused as invalid input.

use reqwest::Method;
use serde_json::json;

use crate::common::{on_both_backends, Service};

on_both_backends!(
    report_commands_print_tables_csv_and_json,
    software_compliance_report_prints_each_model
);

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

async fn software_compliance_report_prints_each_model(service: Service) {
    let (status, model) = service
        .api(
            Method::POST,
            "/v1/software-models",
            Some(json!({ "publisher": "Microsoft", "product": "Visio", "version": "2024" })),
        )
        .await;
    assert_eq!(status, 201, "{model}");
    let swm = model["id"].as_str().unwrap().to_string();
    let body = json!({ "software_model_id": swm, "license_metric": "per_device",
        "license_type": "perpetual", "purchased_rights": 1, "unit_cost": 10 });
    let (status, created) = service
        .api(Method::POST, "/v1/software-entitlements", Some(body))
        .await;
    assert_eq!(status, 201, "{created}");
    let swe = created["id"].as_str().unwrap().to_string();
    let (status, _) = service
        .api(
            Method::POST,
            &format!("/v1/software-entitlements/{swe}/publish"),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 200);
    let seen = |device: &str| json!({ "software_model_id": swm, "device": device, "seen_at": "2026-06-14T09:00:00Z" });
    let (status, _) = service
        .api(
            Method::POST,
            "/v1/installations",
            Some(json!({ "items": [seen("d1"), seen("d2"), seen("d3")] })),
        )
        .await;
    assert_eq!(status, 201);

    let args = ["report", "software-compliance"];
    let out = service.allot(&args).await.ok(&args);
    let lines: Vec<&str> = out.trim().lines().collect();
    assert!(lines[0].starts_with("SOFTWARE_MODEL_ID"), "{out}");
    assert!(
        lines[1].starts_with(&swm) && lines[1].contains("under_licensed"),
        "{out}"
    );
    let args = ["report", "software-compliance", "-o", "csv"];
    let out = service.allot(&args).await.ok(&args);
    let lines: Vec<&str> = out.trim().lines().collect();
    assert_eq!(
        lines[1],
        format!("{swm},Microsoft,Visio,2024,,per_device,under_licensed,1,0,3,false,2,20,0,0")
    );
    let args = [
        "report",
        "software-compliance",
        "--status",
        "compliant",
        "-o",
        "json",
    ];
    let body = service.allot(&args).await.json(&args);
    assert_eq!(body["items"], json!([]));
    let args = ["report", "software-compliance", "--status", "fine"];
    let run = service.allot(&args).await;
    run.failed(&args, 6);
    assert!(run.stderr.contains("status"), "{run:?}");
}
