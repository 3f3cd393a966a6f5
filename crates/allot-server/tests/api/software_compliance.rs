//! `GET /v1/reports/software-compliance`: the figures reconciliation gives,
//! reconciled now without keeping history, filtered, paged, as CSV, staff only.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::TestApp;
use crate::reports::{all_pages, assert_csv_equals_json, ok};

crate::on_both_backends!(software_compliance_reports_each_model_now);

fn seen(model: &str, device: &str) -> Value {
    json!({ "software_model_id": model, "device": device, "seen_at": "2026-06-14T09:00:00Z" })
}

/// (model, status, owned, needed, shortfall, true-up cost, unused, savings) of each row.
type Figures = (String, String, Value, Value, Value, Value, Value, Value);

fn figures(rows: &[Value]) -> Vec<Figures> {
    rows.iter()
        .map(|r| {
            (
                r["software_model_id"].as_str().unwrap().to_string(),
                r["status"].as_str().unwrap().to_string(),
                r["rights_owned"].clone(),
                r["rights_needed"].clone(),
                r["shortfall"].clone(),
                r["true_up_cost"].clone(),
                r["unused_rights"].clone(),
                r["potential_savings"].clone(),
            )
        })
        .collect()
}

async fn software_compliance_reports_each_model_now(app: TestApp) {
    let under = app.software_model("Visio", "2024").await;
    let over = app.software_model("Project", "2024").await;
    let even = app.software_model("Teams", "2024").await;
    let priced = json!({ "unit_cost": 10 });
    app.rights_in_use(&under, 1, priced.clone()).await;
    app.rights_in_use(&over, 5, json!({ "unit_cost": "2.5" }))
        .await;
    app.rights_in_use(&even, 2, json!({})).await;
    let installed = app
        .post(
            "/v1/installations",
            json!({ "items": [
                seen(&under, "d1"), seen(&under, "d2"), seen(&under, "d3"),
                seen(&over, "d1"), seen(&over, "d2"),
                seen(&even, "d1"), seen(&even, "d2"),
                // Stale (over 30 days before today, 2026-06-15): not counted.
                { "software_model_id": under, "device": "old", "seen_at": "2026-04-01T09:00:00Z" },
            ] }),
        )
        .await;
    assert_eq!(
        installed.status,
        StatusCode::CREATED,
        "{:?}",
        installed.body
    );

    let report = ok(&app, "/v1/reports/software-compliance").await;
    let rows = report["items"].as_array().unwrap();
    let mut expected = vec![
        (
            under.clone(),
            "under_licensed",
            json!(1),
            json!(3),
            json!(2),
            json!(20),
            json!(0),
            json!(0),
        ),
        (
            over.clone(),
            "over_licensed",
            json!(5),
            json!(2),
            json!(0),
            json!(0),
            json!(3),
            json!(7.5),
        ),
        (
            even.clone(),
            "compliant",
            json!(2),
            json!(2),
            json!(0),
            Value::Null,
            json!(0),
            Value::Null,
        ),
    ];
    expected.sort_by(|a, b| a.0.cmp(&b.0));
    let expected: Vec<_> = expected
        .into_iter()
        .map(|(m, s, a, b, c, d, e, f)| (m, s.to_string(), a, b, c, d, e, f))
        .collect();
    assert_eq!(figures(rows), expected, "{report}");
    let visio = rows
        .iter()
        .find(|r| r["software_model_id"] == under)
        .unwrap();
    assert_eq!(
        (
            &visio["publisher"],
            &visio["product"],
            &visio["version"],
            &visio["license_metric"]
        ),
        (
            &json!("Microsoft"),
            &json!("Visio"),
            &json!("2024"),
            &json!("per_device")
        )
    );
    assert_eq!(report["next_cursor"], Value::Null);

    // The same figures as a kept reconciliation, and the report kept nothing.
    let before = ok(&app, "/v1/reconciliations").await["items"]
        .as_array()
        .unwrap()
        .len();
    let run = app.post("/v1/reconciliations", json!({})).await;
    assert_eq!(run.status, StatusCode::CREATED);
    assert_eq!(
        figures(run.body["items"].as_array().unwrap()),
        figures(rows),
        "the report reconciles as a run does"
    );
    ok(&app, "/v1/reports/software-compliance").await;
    let after = ok(&app, "/v1/reconciliations").await["items"]
        .as_array()
        .unwrap()
        .len();
    assert!(after > before);
    let again = ok(&app, "/v1/reconciliations").await["items"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(again, after, "reading the report keeps no history");

    // Filters, paging and CSV.
    let only = ok(
        &app,
        "/v1/reports/software-compliance?status=under_licensed",
    )
    .await;
    assert_eq!(
        figures(only["items"].as_array().unwrap()),
        figures(&rows[..])
            .into_iter()
            .filter(|r| r.1 == "under_licensed")
            .collect::<Vec<_>>()
    );
    let one = ok(
        &app,
        &format!("/v1/reports/software-compliance?software_model_id={over}"),
    )
    .await;
    assert_eq!(one["items"].as_array().unwrap().len(), 1);
    assert_eq!(one["items"][0]["software_model_id"], over);
    let paged = all_pages(&app, "/v1/reports/software-compliance", 1).await;
    assert_eq!(figures(&paged), figures(rows));
    assert_csv_equals_json(&app, "/v1/reports/software-compliance").await;
    for bad in ["status=fine", "software_model_id=ent_1", "limit=0"] {
        let a = app
            .get(&format!("/v1/reports/software-compliance?{bad}"))
            .await;
        assert_eq!(
            a.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{bad}: {:?}",
            a.body
        );
    }

    // Staff read it; a customer (whose account holds no installations) and an integration may not.
    let account = app.account("Acme").await;
    for (role, account, status) in [
        ("agent", None, StatusCode::OK),
        ("customer", Some(account.as_str()), StatusCode::FORBIDDEN),
        ("integration", None, StatusCode::FORBIDDEN),
    ] {
        let key = app.key(role, account).await;
        let a = app
            .call(
                Method::GET,
                "/v1/reports/software-compliance",
                Some(&key),
                None,
                None,
            )
            .await;
        assert_eq!(a.status, status, "{role}: {:?}", a.body);
    }
}
