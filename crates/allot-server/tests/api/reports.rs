//! Reports and balances in lists: exact figures on a history built with
//! the clock, CSV equal to JSON row for row, paging, and who sees what.

use chrono::{TimeZone, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::TestApp;

crate::on_both_backends!(
    entitlement_lists_carry_balances_and_filter_on_them,
    consumption_has_period_term_and_channel_figures,
    approaching_limit_lists_the_most_urgent_first,
    expiring_lists_what_ends_soon_with_what_is_unused,
    unused_replays_closed_periods_with_rollover,
    a_case_every_three_days_runs_out_on_the_day_forecast,
    reports_are_confined_to_a_customers_account,
    sorted_reports_page_to_the_end_once_in_order,
    counts_are_the_reports_rows_whatever_their_number,
);

/// Noon UTC on a day of 2026.
fn noon(month: u32, day: u32) -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, month, day, 12, 0, 0).unwrap()
}

fn ids(body: &Value) -> Vec<String> {
    body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            i.get("entitlement_id")
                .unwrap_or(&i["id"])
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

pub(crate) async fn ok(app: &TestApp, path: &str) -> Value {
    let a = app.get(path).await;
    assert_eq!(a.status, StatusCode::OK, "{path}: {:?}", a.body);
    a.body
}

async fn use_on(app: &TestApp, ent: &str, quantity: Value, channel: Option<&str>) {
    let a = app
        .post(
            &format!("/v1/entitlements/{ent}/usage"),
            json!({ "quantity": quantity, "channel": channel }),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{:?}", a.body);
}

/// Every page of a report, `limit` rows at a time, following the cursor.
pub(crate) async fn all_pages(app: &TestApp, path: &str, limit: u32) -> Vec<Value> {
    let sep = if path.contains('?') { '&' } else { '?' };
    let mut rows = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..100 {
        let page = match &cursor {
            Some(c) => ok(app, &format!("{path}{sep}limit={limit}&cursor={c}")).await,
            None => ok(app, &format!("{path}{sep}limit={limit}")).await,
        };
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= limit as usize);
        rows.extend(items.iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return rows,
        }
    }
    panic!("{path}: paging never ended");
}

/// The CSV answer to `path` (by `?format=csv` or by `Accept`), as
/// (header, lines).
async fn csv(app: &TestApp, path: &str, by_accept: bool) -> (Vec<String>, Vec<Vec<String>>) {
    let url = if by_accept {
        format!("{}{path}", app.url)
    } else {
        let sep = if path.contains('?') { '&' } else { '?' };
        format!("{}{path}{sep}format=csv", app.url)
    };
    let mut request = app.http.get(url).bearer_auth(&app.admin);
    if by_accept {
        request = request.header("Accept", "text/csv");
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let text = response.text().await.unwrap();
    let mut reader = csv::ReaderBuilder::new().from_reader(text.as_bytes());
    let header = reader.headers().unwrap().iter().map(String::from).collect();
    let lines = reader
        .records()
        .map(|r| r.unwrap().iter().map(String::from).collect())
        .collect();
    (header, lines)
}

/// A JSON value as its CSV cell.
fn cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The CSV of `path` has the JSON items' field names as its header and
/// the JSON items as its lines, in order.
pub(crate) async fn assert_csv_equals_json(app: &TestApp, path: &str) {
    let json = ok(app, path).await;
    let items = json["items"].as_array().unwrap();
    assert!(!items.is_empty(), "{path}: nothing to compare");
    for by_accept in [false, true] {
        let (header, lines) = csv(app, path, by_accept).await;
        let mut names: Vec<&String> = items[0].as_object().unwrap().keys().collect();
        let mut columns: Vec<&String> = header.iter().collect();
        names.sort();
        columns.sort();
        assert_eq!(columns, names, "{path}: header");
        assert_eq!(lines.len(), items.len(), "{path}: rows");
        for (line, item) in lines.iter().zip(items) {
            for (name, value) in header.iter().zip(line) {
                assert_eq!(*value, cell(&item[name]), "{path}: {name} of {item}");
            }
        }
    }
}

async fn entitlement_lists_carry_balances_and_filter_on_them(app: TestApp) {
    app.clock.set(noon(1, 1));
    let a = app.account("Acme").await;
    let b = app.account("Beta").await;
    let product = app
        .post("/v1/products", json!({ "name": "Widget" }))
        .await
        .id();
    let contract = app
        .post(
            "/v1/contracts",
            json!({ "account_id": a, "number": "CTR-1", "start_date": "2026-01-01", "end_date": "2026-12-31" }),
        )
        .await
        .id();
    let cases = app
        .active_entitlement(
            &a,
            json!({ "product_ids": [product], "contract_id": contract, "channels": [{ "channel": "phone", "total": 6 }] }),
        )
        .await;
    let hours = app
        .active_entitlement(&a, json!({ "unit": "hours", "total": 4 }))
        .await;
    let unlimited = app
        .active_entitlement(&b, json!({ "unlimited": true, "total": null }))
        .await;
    let draft = app.entitlement(&a, json!({})).await;
    use_on(&app, &cases, json!(5), Some("phone")).await;
    use_on(&app, &cases, json!(3), None).await;
    use_on(&app, &hours, json!(1), None).await;
    use_on(&app, &unlimited, json!(3), None).await;

    let listed = ok(&app, "/v1/entitlements").await;
    assert_eq!(
        ids(&listed),
        vec![
            cases.clone(),
            hours.clone(),
            unlimited.clone(),
            draft.clone()
        ]
    );
    let first = &listed["items"][0];
    assert_eq!(
        first["name"], "Support",
        "the entitlement's own fields stay"
    );
    assert_eq!(
        (
            &first["balance"]["used"],
            &first["balance"]["remaining"],
            &first["percent_used"]
        ),
        (&json!(8), &json!(2), &json!(80))
    );
    assert_eq!(first["balance"]["channels"][0]["used"], json!(5));
    assert_eq!(first["balance"]["channels"][0]["remaining"], json!(1));
    assert_eq!(listed["items"][1]["percent_used"], json!(25));
    assert_eq!(listed["items"][2]["percent_used"], Value::Null);
    assert_eq!(listed["items"][2]["balance"]["used"], json!(3));

    let filtered = |query: &'static str| {
        let app = &app;
        async move { ids(&ok(app, &format!("/v1/entitlements?{query}")).await) }
    };
    assert_eq!(filtered("percent_used_gte=80").await, vec![cases.clone()]);
    assert_eq!(
        filtered("percent_used_gte=25").await,
        vec![cases.clone(), hours.clone()]
    );
    assert_eq!(
        filtered("percent_used_gte=80.01").await,
        Vec::<String>::new()
    );
    assert_eq!(filtered("unit=hours").await, vec![hours.clone()]);
    assert_eq!(
        ids(&ok(&app, &format!("/v1/entitlements?contract_id={contract}")).await),
        vec![cases.clone()]
    );
    assert_eq!(filtered("status=draft").await, vec![draft.clone()]);
    assert_eq!(
        ids(&ok(&app, &format!("/v1/entitlements?product_id={product}")).await),
        vec![cases.clone()]
    );
    assert_eq!(
        ids(&ok(&app, &format!("/v1/entitlements?account_id={b}")).await),
        vec![unlimited.clone()]
    );
    let paged: Vec<String> = all_pages(&app, "/v1/entitlements", 1)
        .await
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(paged, vec![cases, hours, unlimited, draft]);
    for bad in [
        "percent_used_gte=-1",
        "percent_used_gte=x",
        "percent_used_gte=",
    ] {
        let answer = app.get(&format!("/v1/entitlements?{bad}")).await;
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        assert_eq!(
            answer.body["error"]["details"]["fields"][0]["field"],
            "percent_used_gte"
        );
    }
}

async fn consumption_has_period_term_and_channel_figures(app: TestApp) {
    app.clock.set(noon(1, 1));
    let a = app.account("Acme").await;
    let monthly = app
        .active_entitlement(
            &a,
            json!({ "period": "month", "rollover": 2, "channels": [{ "channel": "phone", "total": 6 }] }),
        )
        .await;
    let unlimited = app
        .active_entitlement(
            &a,
            json!({ "unit": "hours", "unlimited": true, "total": null }),
        )
        .await;
    let over = app
        .active_entitlement(
            &a,
            json!({ "unit": "visits", "total": 2, "restrict": false }),
        )
        .await;
    use_on(&app, &monthly, json!(2), Some("phone")).await;
    use_on(&app, &monthly, json!(1), None).await;
    use_on(&app, &unlimited, json!(1.5), None).await;
    use_on(&app, &over, json!(3), None).await;
    // The last day of January is in January; February resets with 2 rolled over.
    app.clock
        .set(Utc.with_ymd_and_hms(2026, 1, 31, 23, 59, 59).unwrap());
    use_on(&app, &monthly, json!(1), Some("phone")).await;
    app.clock.set(noon(2, 1));
    use_on(&app, &monthly, json!(4), Some("phone")).await;
    app.clock.set(noon(2, 15));

    let report = ok(&app, "/v1/reports/consumption").await;
    let rows = report["items"].as_array().unwrap();
    assert_eq!(rows.len(), 4, "{rows:?}");
    let figures = |row: &Value| {
        [
            "channel",
            "period_start",
            "period_end",
            "total",
            "carried_over",
            "used",
            "held",
            "remaining",
            "percent_used",
            "overage",
            "term_total",
            "term_used",
        ]
        .map(|f| row[f].clone())
        .to_vec()
    };
    assert_eq!(rows[0]["entitlement_id"], json!(monthly));
    assert_eq!(
        figures(&rows[0]),
        [
            json!(null),
            json!("2026-02-01"),
            json!("2026-02-28"),
            json!(10),
            json!(2),
            json!(4),
            json!(0),
            json!(8),
            json!(33.33),
            json!(0),
            json!(120),
            json!(8)
        ]
    );
    assert_eq!(
        figures(&rows[1]),
        [
            json!("phone"),
            json!("2026-02-01"),
            json!("2026-02-28"),
            json!(6),
            json!(0),
            json!(4),
            json!(0),
            json!(2),
            json!(66.66),
            json!(0),
            json!(null),
            json!(null)
        ]
    );
    assert_eq!(rows[2]["entitlement_id"], json!(unlimited));
    assert_eq!(
        figures(&rows[2]),
        [
            json!(null),
            json!("2026-01-01"),
            json!("2026-12-31"),
            json!(null),
            json!(0),
            json!(1.5),
            json!(0),
            json!(null),
            json!(null),
            json!(0),
            json!(null),
            json!(1.5)
        ]
    );
    assert_eq!(rows[3]["entitlement_id"], json!(over));
    assert_eq!(
        figures(&rows[3]),
        [
            json!(null),
            json!("2026-01-01"),
            json!("2026-12-31"),
            json!(2),
            json!(0),
            json!(3),
            json!(0),
            json!(-1),
            json!(150),
            json!(1),
            json!(2),
            json!(3)
        ]
    );
    assert_eq!(rows[3]["status"], "active");
    assert_eq!(rows[3]["unit"], "visits");

    assert_eq!(all_pages(&app, "/v1/reports/consumption", 1).await, *rows);
    assert_eq!(all_pages(&app, "/v1/reports/consumption", 3).await, *rows);
    assert_csv_equals_json(&app, "/v1/reports/consumption").await;
    assert_eq!(
        ids(&ok(&app, "/v1/reports/consumption?unit=hours").await),
        vec![unlimited]
    );
    let totals = ok(&app, "/v1/reports/consumption/totals").await;
    let per = |account: Value, unit: &str, n: u64, unlimited: u64, figures: [Value; 6]| {
        let [total, carried_over, used, held, remaining, overage] = figures;
        json!({ "account_id": account, "unit": unit, "entitlements": n, "unlimited": unlimited,
            "total": total, "carried_over": carried_over, "used": used, "held": held,
            "remaining": remaining, "overage": overage })
    };
    assert_eq!(
        totals["items"],
        json!([
            per(
                json!(a),
                "cases",
                1,
                0,
                [json!(10), json!(2), json!(4), json!(0), json!(8), json!(0)]
            ),
            per(
                json!(a),
                "hours",
                1,
                1,
                [json!(0), json!(0), json!(1.5), json!(0), json!(0), json!(0)]
            ),
            per(
                json!(a),
                "visits",
                1,
                0,
                [json!(2), json!(0), json!(3), json!(0), json!(-1), json!(1)]
            ),
        ])
    );
    let by_unit = ok(&app, "/v1/reports/consumption/totals?by=unit&unit=visits").await;
    assert_eq!(
        by_unit["items"],
        json!([per(
            Value::Null,
            "visits",
            1,
            0,
            [json!(2), json!(0), json!(3), json!(0), json!(-1), json!(1)]
        )])
    );
    assert_csv_equals_json(&app, "/v1/reports/consumption/totals?by=unit").await;
    let bad_by = app.get("/v1/reports/consumption/totals?by=owner").await;
    assert_eq!(bad_by.body["error"]["details"]["fields"][0]["field"], "by");
    // Any cursor is a place to start after, as in every list.
    assert_eq!(
        ok(&app, &format!("/v1/reports/consumption?cursor={over}")).await["items"],
        json!([])
    );
    assert_eq!(
        ids(&ok(&app, "/v1/reports/consumption?cursor=ent_").await).len(),
        4
    );
    for bad in ["format=xml", "status=gone", "limit=0"] {
        let answer = app.get(&format!("/v1/reports/consumption?{bad}")).await;
        assert_eq!(
            answer.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{bad}: {:?}",
            answer.body
        );
    }
}

async fn approaching_limit_lists_the_most_urgent_first(app: TestApp) {
    app.clock.set(noon(1, 1));
    let a = app.account("Acme").await;
    let mut by_use = Vec::new();
    for (used, restrict) in [(5, true), (8, true), (12, false), (10, true), (9, true)] {
        let id = app
            .active_entitlement(&a, json!({ "restrict": restrict }))
            .await;
        use_on(&app, &id, json!(used), None).await;
        by_use.push(id);
    }
    let unlimited = app
        .active_entitlement(&a, json!({ "unlimited": true, "total": null }))
        .await;
    use_on(&app, &unlimited, json!(50), None).await;
    let report = ok(&app, "/v1/reports/approaching-limit").await;
    assert_eq!(
        ids(&report),
        vec![
            by_use[2].clone(),
            by_use[3].clone(),
            by_use[4].clone(),
            by_use[1].clone()
        ]
    );
    let states: Vec<&Value> = report["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["state"])
        .collect();
    assert_eq!(
        states,
        [
            &json!("overage"),
            &json!("exhausted"),
            &json!("approaching"),
            &json!("approaching")
        ]
    );
    let first = &report["items"][0];
    assert_eq!(
        (
            &first["remaining"],
            &first["overage"],
            &first["percent_used"]
        ),
        (&json!(-2), &json!(2), &json!(120))
    );
    assert_eq!(
        ids(&ok(&app, "/v1/reports/approaching-limit?threshold=95").await),
        vec![by_use[2].clone(), by_use[3].clone()]
    );
    assert_eq!(
        all_pages(&app, "/v1/reports/approaching-limit", 1).await,
        *report["items"].as_array().unwrap()
    );
    assert_csv_equals_json(&app, "/v1/reports/approaching-limit").await;
    for bad in ["threshold=1001", "threshold=-5", "threshold=x"] {
        let answer = app
            .get(&format!("/v1/reports/approaching-limit?{bad}"))
            .await;
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        assert_eq!(
            answer.body["error"]["details"]["fields"][0]["field"],
            "threshold"
        );
    }
}

async fn expiring_lists_what_ends_soon_with_what_is_unused(app: TestApp) {
    app.clock.set(noon(6, 1));
    let a = app.account("Acme").await;
    let later = app
        .active_entitlement(&a, json!({ "end_date": "2026-07-11" }))
        .await;
    let soon = app
        .active_entitlement(&a, json!({ "end_date": "2026-06-11", "auto_renew": true }))
        .await;
    let today = app
        .active_entitlement(
            &a,
            json!({ "end_date": "2026-06-01", "unit": "hours", "unlimited": true, "total": null }),
        )
        .await;
    use_on(&app, &soon, json!(4), None).await;
    let report = ok(&app, "/v1/reports/expiring").await;
    assert_eq!(ids(&report), vec![today.clone(), soon.clone()]);
    let row = &report["items"][1];
    assert_eq!(
        [
            "end_date",
            "days_left",
            "auto_renew",
            "total",
            "used",
            "unused"
        ]
        .map(|f| row[f].clone()),
        [
            json!("2026-06-11"),
            json!(10),
            json!(true),
            json!(10),
            json!(4),
            json!(6)
        ]
    );
    assert_eq!(report["items"][0]["unused"], Value::Null);
    assert_eq!(report["items"][0]["days_left"], json!(0));
    assert_eq!(
        ids(&ok(&app, "/v1/reports/expiring?within_days=40").await),
        vec![today, soon, later.clone()]
    );
    assert_csv_equals_json(&app, "/v1/reports/expiring?within_days=40").await;
    // Past its end it has expired: no longer expiring.
    app.clock.set(noon(7, 12));
    assert!(ids(&ok(&app, "/v1/reports/expiring?within_days=400").await).is_empty());
}

async fn unused_replays_closed_periods_with_rollover(app: TestApp) {
    app.clock.set(noon(1, 1));
    let a = app.account("Acme").await;
    let b = app.account("Beta").await;
    let monthly = app
        .active_entitlement(
            &a,
            json!({ "period": "month", "rollover": 3, "restrict": false }),
        )
        .await;
    let term = app
        .active_entitlement(
            &b,
            json!({ "unit": "hours", "total": 8, "end_date": "2026-02-15" }),
        )
        .await;
    app.active_entitlement(&a, json!({ "unlimited": true, "total": null }))
        .await;
    use_on(&app, &monthly, json!(4), None).await;
    use_on(&app, &term, json!(2.5), None).await;
    app.clock.set(noon(2, 10));
    use_on(&app, &monthly, json!(15), None).await;
    app.clock.set(noon(4, 1));

    let report = ok(&app, "/v1/reports/unused?from=2026-01-01&to=2026-03-31").await;
    let rows: Vec<Vec<Value>> = report["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            [
                "entitlement_id",
                "period_index",
                "period_end",
                "term_ended",
                "total",
                "carried_in",
                "used",
                "unused",
                "overage",
                "carried_out",
            ]
            .map(|f| r[f].clone())
            .to_vec()
        })
        .collect();
    assert_eq!(
        rows,
        vec![
            vec![
                json!(monthly),
                json!(0),
                json!("2026-01-31"),
                json!(false),
                json!(10),
                json!(0),
                json!(4),
                json!(6),
                json!(0),
                json!(3)
            ],
            vec![
                json!(monthly),
                json!(1),
                json!("2026-02-28"),
                json!(false),
                json!(10),
                json!(3),
                json!(15),
                json!(0),
                json!(2),
                json!(0)
            ],
            vec![
                json!(monthly),
                json!(2),
                json!("2026-03-31"),
                json!(false),
                json!(10),
                json!(0),
                json!(0),
                json!(10),
                json!(0),
                json!(3)
            ],
            vec![
                json!(term),
                json!(0),
                json!("2026-02-15"),
                json!(true),
                json!(8),
                json!(0),
                json!(2.5),
                json!(5.5),
                json!(0),
                json!(0)
            ],
        ]
    );
    // Period boundaries: only periods ending inside the window.
    let february = ok(&app, "/v1/reports/unused?from=2026-02-01&to=2026-02-28").await;
    assert_eq!(
        february["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (r["entitlement_id"].clone(), r["period_index"].clone()))
            .collect::<Vec<_>>(),
        vec![(json!(monthly), json!(1)), (json!(term), json!(0))]
    );
    assert_eq!(
        all_pages(&app, "/v1/reports/unused?from=2026-01-01&to=2026-03-31", 1).await,
        *report["items"].as_array().unwrap()
    );
    assert_csv_equals_json(&app, "/v1/reports/unused?from=2026-01-01&to=2026-03-31").await;
    let by_account = ok(
        &app,
        "/v1/reports/unused/by-account?from=2026-01-01&to=2026-03-31",
    )
    .await;
    assert_eq!(
        by_account["items"],
        json!([
            { "account_id": a, "unit": "cases", "periods": 3, "allowed": 33, "used": 19, "unused": 16, "overage": 2 },
            { "account_id": b, "unit": "hours", "periods": 1, "allowed": 8, "used": 2.5, "unused": 5.5, "overage": 0 },
        ])
    );
    assert_csv_equals_json(&app, "/v1/reports/unused/by-account").await;
    for bad in [
        "from=2026-03-01&to=2026-02-01",
        "from=1899-12-31",
        "from=2010-01-01&to=2026-01-01",
    ] {
        let refused = app.get(&format!("/v1/reports/unused?{bad}")).await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        assert_eq!(
            refused.body["error"]["details"]["fields"][0]["field"],
            "from"
        );
    }
}

async fn a_case_every_three_days_runs_out_on_the_day_forecast(app: TestApp) {
    app.clock.set(noon(1, 1));
    let a = app.account("Acme").await;
    let ent = app.active_entitlement(&a, json!({ "total": 20 })).await;
    let idle = app.active_entitlement(&a, json!({ "total": 20 })).await;
    // One case on 1, 4, 7, … 28 January: ten cases.
    for day in (1..=28).step_by(3) {
        app.clock.set(noon(1, day));
        use_on(&app, &ent, json!(1), None).await;
    }
    app.clock.set(noon(1, 30));
    let balance = app.balance(&ent).await;
    assert_eq!(balance["remaining"], json!(10));
    let forecast = &balance["forecast"];
    assert_eq!(forecast["method"], "linear_trailing_window");
    assert_eq!(
        [
            "window_days",
            "observed_days",
            "used_in_window",
            "burn_rate_per_day",
            "outlook",
            "exhausted_on",
            "horizon"
        ]
        .map(|f| forecast[f].clone()),
        [
            json!(30),
            json!(30),
            json!(10),
            json!(0.333),
            json!("runs_out"),
            json!("2026-03-01"),
            json!("2026-12-31")
        ]
    );
    let short = ok(
        &app,
        &format!("/v1/entitlements/{ent}/balance?window_days=15"),
    )
    .await;
    assert_eq!(
        (
            &short["forecast"]["used_in_window"],
            &short["forecast"]["exhausted_on"]
        ),
        (&json!(5), &json!("2026-03-01"))
    );
    let report = ok(&app, "/v1/reports/forecast").await;
    assert_eq!(ids(&report), vec![ent.clone(), idle.clone()]);
    assert_eq!(report["items"][0]["exhausted_on"], "2026-03-01");
    assert_eq!(report["items"][0]["remaining"], json!(10));
    assert_eq!(
        (
            &report["items"][1]["outlook"],
            &report["items"][1]["exhausted_on"]
        ),
        (&json!("lasts"), &Value::Null)
    );
    assert_csv_equals_json(&app, "/v1/reports/forecast").await;
    let bad = app
        .get(&format!("/v1/entitlements/{ent}/balance?window_days=0"))
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);

    let weekly = ok(
        &app,
        &format!("/v1/reports/usage-over-time?entitlement_id={ent}&bucket=week&from=2026-01-01&to=2026-01-31"),
    )
    .await;
    let points: Vec<(Value, Value, Value)> = weekly["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["bucket_start"].clone(),
                p["bucket_end"].clone(),
                p["used"].clone(),
            )
        })
        .collect();
    assert_eq!(
        points,
        vec![
            (json!("2025-12-29"), json!("2026-01-04"), json!(2)),
            (json!("2026-01-05"), json!("2026-01-11"), json!(2)),
            (json!("2026-01-12"), json!("2026-01-18"), json!(2)),
            (json!("2026-01-19"), json!("2026-01-25"), json!(3)),
            (json!("2026-01-26"), json!("2026-02-01"), json!(1)),
        ]
    );
    let monthly = ok(
        &app,
        &format!(
            "/v1/reports/usage-over-time?account_id={a}&bucket=month&from=2026-01-01&to=2026-02-28"
        ),
    )
    .await;
    let series: Vec<(String, Value)> = monthly["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["entitlement_id"].as_str().unwrap().to_string(),
                p["used"].clone(),
            )
        })
        .collect();
    assert_eq!(
        series,
        vec![
            (ent.clone(), json!(10)),
            (ent.clone(), json!(0)),
            (idle.clone(), json!(0)),
            (idle, json!(0))
        ]
    );
    let path = format!("/v1/reports/usage-over-time?account_id={a}&from=2026-01-01&to=2026-01-31");
    assert_eq!(
        all_pages(&app, &path, 7).await,
        *ok(&app, &path).await["items"].as_array().unwrap()
    );
    assert_csv_equals_json(&app, &path).await;
    let neither = app.get("/v1/reports/usage-over-time").await;
    assert_eq!(neither.status, StatusCode::UNPROCESSABLE_ENTITY);
    let bucket = app
        .get(&format!(
            "/v1/reports/usage-over-time?entitlement_id={ent}&bucket=year"
        ))
        .await;
    assert_eq!(
        bucket.body["error"]["details"]["fields"][0]["field"],
        "bucket"
    );
}

async fn reports_are_confined_to_a_customers_account(app: TestApp) {
    app.clock.set(noon(1, 1));
    let a = app.account("Acme").await;
    let b = app.account("Beta").await;
    let mine = app.active_entitlement(&a, json!({})).await;
    let theirs = app.active_entitlement(&b, json!({})).await;
    use_on(&app, &mine, json!(9), None).await;
    use_on(&app, &theirs, json!(9), None).await;
    app.clock.set(noon(2, 1));
    let customer = app.key("customer", Some(&a)).await;
    let integration = app.key("integration", None).await;
    let as_customer = |path: String| {
        let (app, key) = (&app, customer.clone());
        async move {
            app.call(reqwest::Method::GET, &path, Some(&key), None, None)
                .await
        }
    };
    for report in [
        "consumption",
        "approaching-limit",
        "expiring?within_days=400",
        "forecast",
        "unused?from=2025-01-01&to=2027-12-31",
    ] {
        let everyone = ok(&app, &format!("/v1/reports/{report}")).await;
        assert_eq!(
            ids(&everyone).iter().filter(|i| **i == theirs).count(),
            ids(&everyone).iter().filter(|i| **i == mine).count(),
            "{report}: the admin sees both accounts alike"
        );
        let own = as_customer(format!("/v1/reports/{report}")).await;
        assert_eq!(own.status, StatusCode::OK, "{report}");
        assert!(
            ids(&own.body).iter().all(|i| *i == mine),
            "{report}: {:?}",
            own.body
        );
        let sep = if report.contains('?') { '&' } else { '?' };
        let other = as_customer(format!("/v1/reports/{report}{sep}account_id={b}")).await;
        assert_eq!(other.status, StatusCode::OK);
        assert!(ids(&other.body).is_empty(), "{report}: {:?}", other.body);
        let refused = app
            .call(
                reqwest::Method::GET,
                &format!("/v1/reports/{report}"),
                Some(&integration),
                None,
                None,
            )
            .await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN);
    }
    assert_eq!(
        ids(&as_customer("/v1/reports/consumption".into()).await.body),
        vec![mine.clone()]
    );
    assert_eq!(
        ids(&as_customer("/v1/entitlements?percent_used_gte=50".into())
            .await
            .body),
        vec![mine.clone()]
    );
    let series = as_customer(format!("/v1/reports/usage-over-time?account_id={b}")).await;
    assert!(ids(&series.body).iter().all(|i| *i == mine));
    let hidden = as_customer(format!(
        "/v1/reports/usage-over-time?entitlement_id={theirs}"
    ))
    .await;
    assert_eq!(hidden.status, StatusCode::NOT_FOUND);
    let rolled =
        as_customer("/v1/reports/unused/by-account?from=2025-01-01&to=2027-12-31".into()).await;
    assert!(rolled.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["account_id"] == json!(a)));
}

/// Approaching-limit and expiring are read from the store a page (plus
/// one) at a time in their own order: paged by 2 over more rows than one
/// store read, every row comes once, in the order the rule gives; a row
/// whose stored counters belong to a period that has ended is judged on
/// the period it is in.
async fn sorted_reports_page_to_the_end_once_in_order(app: TestApp) {
    app.clock.set(noon(5, 20));
    let a = app.account("Acme").await;
    // (used of 10, restrict, end date): ties on percent and on end date.
    let shapes = [
        (12, false, "2026-06-20"),
        (9, true, "2026-06-10"),
        (10, true, "2026-06-10"),
        (8, true, "2026-07-01"),
        (9, true, "2026-06-10"),
        (5, true, "2026-06-05"),
        (11, false, "2026-07-01"),
        (10, true, "2026-06-20"),
        (8, true, "2026-06-05"),
    ];
    let mut made = Vec::new();
    for (used, restrict, end) in shapes {
        let id = app
            .active_entitlement(&a, json!({ "restrict": restrict, "end_date": end }))
            .await;
        use_on(&app, &id, json!(used), None).await;
        made.push((id, used, end));
    }
    // Used 9 of 10 in May: approaching on 20 May, not after June resets it.
    let monthly = app
        .active_entitlement(&a, json!({ "period": "month", "end_date": "2026-06-30" }))
        .await;
    use_on(&app, &monthly, json!(9), None).await;
    assert!(ids(&ok(&app, "/v1/reports/approaching-limit").await).contains(&monthly));
    app.clock.set(noon(6, 1));

    // Most urgent first: overage, exhausted, then by percent used; then id.
    // The monthly one has used nothing of June.
    let urgent = |threshold: i32| {
        let mut urgent: Vec<(u8, i32, String)> = made
            .iter()
            .map(|(id, used, _)| (id.clone(), *used))
            .chain([(monthly.clone(), 0)])
            .filter(|(_, used)| *used * 10 >= threshold)
            .map(|(id, used)| {
                let state = match used {
                    u if u > 10 => 0,
                    10 => 1,
                    _ => 2,
                };
                (state, -used, id)
            })
            .collect();
        urgent.sort();
        urgent.into_iter().map(|(_, _, id)| id).collect::<Vec<_>>()
    };
    let mut ending: Vec<(&str, String)> = made
        .iter()
        .map(|(id, _, end)| (*end, id.clone()))
        .chain([("2026-06-30", monthly.clone())])
        .collect();
    ending.sort();
    let ending: Vec<String> = ending.into_iter().map(|(_, id)| id).collect();

    for (path, expected) in [
        ("/v1/reports/approaching-limit", urgent(80)),
        // Stored in May at 90%: at 0% in June, in its place (once).
        ("/v1/reports/approaching-limit?threshold=0", urgent(0)),
        ("/v1/reports/expiring?within_days=40", ending),
    ] {
        let whole = ok(&app, path).await;
        assert_eq!(ids(&whole), expected, "{path}");
        let paged = all_pages(&app, path, 2).await;
        assert_eq!(paged, *whole["items"].as_array().unwrap(), "{path}");
        assert_csv_equals_json(&app, path).await;
    }
    // A cursor this service did not issue is refused, naming the field.
    for path in [
        "/v1/reports/approaching-limit?cursor=x",
        "/v1/reports/expiring?cursor=x",
    ] {
        let answer = app.get(path).await;
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY, "{path}");
        assert_eq!(
            answer.body["error"]["details"]["fields"][0]["field"],
            "cursor"
        );
    }
}

/// A quantity of a report row (a JSON number or string).
fn amount(v: &Value) -> f64 {
    v.as_f64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        .unwrap_or_else(|| panic!("not a quantity: {v}"))
}

/// `/v1/reports/counts` and the overview's cards equal the rows of the
/// whole reports, each report holding more rows than the overview's first
/// page (eleven): limit states by stored counters and by counters rolled
/// into a new period (one listed again only for what it holds), expiring
/// terms, and closed periods replayed with rollover (a period whose use
/// reached its allotment leaves something only from what rolled in).
async fn counts_are_the_reports_rows_whatever_their_number(app: TestApp) {
    app.clock.set(noon(5, 20));
    let a = app.account("Acme").await;
    // The year's term, 10 each: (used, restrict, how many).
    for (used, restrict, n) in [(8, true, 5), (9, true, 4), (10, true, 3), (12, false, 2)] {
        for _ in 0..n {
            let id = app
                .active_entitlement(&a, json!({ "restrict": restrict }))
                .await;
            use_on(&app, &id, json!(used), None).await;
        }
    }
    // Monthly from January: (rollover, use in May, held on 31 May).
    let mut monthly = Vec::new();
    for (rollover, used, held) in [(0, 9, 0), (0, 0, 9), (0, 10, 0), (5, 12, 0), (5, 16, 0)] {
        let id = app
            .active_entitlement(
                &a,
                json!({ "period": "month", "rollover": rollover, "restrict": false }),
            )
            .await;
        if used > 0 {
            use_on(&app, &id, json!(used), None).await;
        }
        monthly.push((id, held));
    }
    // A term that ended in May with 6 unused, and twelve ending in June.
    let ended = app
        .active_entitlement(&a, json!({ "end_date": "2026-05-31" }))
        .await;
    use_on(&app, &ended, json!(4), None).await;
    for day in 10..22 {
        app.active_entitlement(&a, json!({ "end_date": format!("2026-06-{day}") }))
            .await;
    }
    app.clock.set(noon(5, 31));
    for (id, held) in &monthly {
        if *held > 0 {
            let r = app
                .post(
                    &format!("/v1/entitlements/{id}/reservations"),
                    json!({ "quantity": held, "timeout_seconds": 604800 }),
                )
                .await;
            assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        }
    }
    // June: the monthly counters stored in May lag (the write path has not
    // rolled them); only the one holding 9 of June's 10 is near its limit.
    app.clock.set(noon(6, 1));

    let limits = all_pages(&app, "/v1/reports/approaching-limit", 100).await;
    // The export reads the whole list in one ordered pass, the rolled rows
    // merged in at their places: the same rows as the pages, from any cursor.
    let (header, lines) = csv(&app, "/v1/reports/approaching-limit", false).await;
    let id_at = header.iter().position(|h| h == "entitlement_id").unwrap();
    let exported: Vec<&str> = lines.iter().map(|l| l[id_at].as_str()).collect();
    let paged: Vec<&str> = limits
        .iter()
        .map(|r| r["entitlement_id"].as_str().unwrap())
        .collect();
    assert_eq!(exported, paged);
    let first = ok(&app, "/v1/reports/approaching-limit?limit=4").await;
    let cursor = first["next_cursor"].as_str().unwrap();
    let (_, rest) = csv(
        &app,
        &format!("/v1/reports/approaching-limit?cursor={cursor}"),
        false,
    )
    .await;
    let rest: Vec<&str> = rest.iter().map(|l| l[id_at].as_str()).collect();
    assert_eq!(rest, paged[4..]);
    let in_state = |s: &str| limits.iter().filter(|r| r["state"] == s).count() as u64;
    let expiring = all_pages(&app, "/v1/reports/expiring?within_days=30", 100).await;
    let unused = all_pages(&app, "/v1/reports/unused", 100).await;
    let left_unused = unused.iter().filter(|r| amount(&r["unused"]) > 0.0).count() as u64;
    let reports = [
        ("overage", in_state("overage")),
        ("exhausted", in_state("exhausted")),
        ("approaching", in_state("approaching")),
        ("expiring", expiring.len() as u64),
        ("unused", left_unused),
    ];
    // The rows themselves, as the rules give them: 9 + 1 rolled approaching;
    // 5 + 5 + 4 + 5 + 4 closed months left something, and the ended term.
    assert_eq!(
        reports.map(|(_, n)| n),
        [2, 3, 10, 12, 24],
        "{limits:?} {unused:?}"
    );
    let counts = ok(&app, "/v1/reports/counts").await;
    for (name, n) in reports {
        assert_eq!(counts[name], json!(n), "{name}: {counts}");
    }
    // The overview shows them, exactly (no "N+").
    let v = crate::dashboard::sign_in(&app, &app.admin).await;
    let home = v.get("/").await.html;
    for (n, label) in [
        (10, "approaching the limit"),
        (3, "exhausted"),
        (2, "in overage"),
        (12, "expiring within 30 days"),
        (24, "periods ended with some unused"),
    ] {
        assert!(
            home.contains(&format!(r#"<span class="n">{n}</span>{label}"#)),
            "{label}: {home}"
        );
    }
    // A customer counts its own account only; bad parameters name themselves.
    let other = app.account("Other").await;
    let customer = app.key("customer", Some(&other)).await;
    let theirs = app
        .call(
            reqwest::Method::GET,
            "/v1/reports/counts",
            Some(&customer),
            None,
            None,
        )
        .await;
    assert_eq!(theirs.status, StatusCode::OK);
    assert_eq!(
        theirs.body,
        json!({ "overage": 0, "exhausted": 0, "approaching": 0, "expiring": 0, "unused": 0 })
    );
    let bad = app.get("/v1/reports/counts?threshold=1001").await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        bad.body["error"]["details"]["fields"][0]["field"], "threshold",
        "{:?}",
        bad.body
    );
}
