//! CSV import and export: all or nothing with every bad row reported,
//! dry runs that write nothing, usage imported once however often the file
//! is, overage allowed only when asked, exports that re-import cleanly,
//! and hostile files answered with row errors, never a 5xx.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::{spawn_app, Answer, TestApp};

async fn import(app: &TestApp, kind: &str, csv: impl Into<Vec<u8>>, query: &str) -> Answer {
    let response = app
        .http
        .post(format!("{}/v1/imports/{kind}{query}", app.url))
        .bearer_auth(&app.admin)
        .header("content-type", "text/csv")
        .body(csv.into())
        .send()
        .await
        .expect("request");
    let status = response.status();
    let text = response.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Answer {
        status,
        body,
        replayed: false,
    }
}

/// The whole CSV export of `path` (by `?format=csv`).
async fn export(app: &TestApp, path: &str) -> String {
    let sep = if path.contains('?') { '&' } else { '?' };
    let response = app
        .http
        .get(format!("{}{path}{sep}format=csv", app.url))
        .bearer_auth(&app.admin)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    response.text().await.expect("body")
}

fn rows(csv: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let header = reader.headers().unwrap().iter().map(String::from).collect();
    let lines = reader
        .records()
        .map(|r| r.unwrap().iter().map(String::from).collect())
        .collect();
    (header, lines)
}

/// (row, column) of every error a refused import lists.
fn problems(answer: &Answer) -> Vec<(u64, String)> {
    assert_eq!(
        answer.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{:?}",
        answer.body
    );
    assert_eq!(answer.code(), "import_rejected");
    let report = &answer.body["error"]["details"];
    assert_eq!(report["committed"], false);
    report["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            assert!(e["reason"].as_str().is_some_and(|r| !r.is_empty()), "{e}");
            (
                e["row"].as_u64().unwrap(),
                e["column"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

async fn count(app: &TestApp, path: &str) -> usize {
    let a = app.get(path).await;
    assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
    a.body["items"].as_array().unwrap().len()
}

async fn a_file_with_bad_rows_imports_nothing_and_lists_every_one(app: TestApp) {
    app.post(
        "/v1/accounts",
        json!({ "name": "Existing", "external_id": "CRM-0" }),
    )
    .await;
    let file = "\u{feff}name,external_id,parent_external_id,manager_email\n\
        Acme,CRM-1,,ann@example.com\n\
        \"Acme, West\",CRM-2,CRM-1,\n\
        ,CRM-3,,\n\
        Dup,CRM-1,,\n\
        Orphan,CRM-4,CRM-99,\n\
        Taken,CRM-0,,\n\
        Mail,CRM-5,,not-an-address\n";
    let refused = import(&app, "accounts", file, "").await;
    let mut listed = problems(&refused);
    listed.sort();
    assert_eq!(
        listed,
        vec![
            (4, "name".to_string()),
            (5, "external_id".to_string()),
            (6, "parent_external_id".to_string()),
            (7, "external_id".to_string()),
            (8, "manager_email".to_string()),
        ]
    );
    // Nothing was written: not even the good rows.
    assert_eq!(count(&app, "/v1/accounts").await, 1);

    // The good rows alone import, the second naming the first as parent.
    let good = "\u{feff}name,external_id,parent_external_id,manager_email\n\
        Acme,CRM-1,,ann@example.com\n\
        \"Acme, West\",CRM-2,CRM-1,\n\
        Child of existing,CRM-3,CRM-0,\n";
    let done = import(&app, "accounts", good, "").await;
    assert_eq!(done.status, StatusCode::OK, "{:?}", done.body);
    assert_eq!(done.body["committed"], true);
    assert_eq!(done.body["created"], 3);
    let all = app.get("/v1/accounts").await.body["items"].clone();
    let by_key = |k: &str| {
        all.as_array()
            .unwrap()
            .iter()
            .find(|a| a["external_id"] == k)
            .cloned()
            .unwrap()
    };
    assert_eq!(by_key("CRM-2")["parent_id"], by_key("CRM-1")["id"]);
    assert_eq!(by_key("CRM-2")["name"], "Acme, West");
    assert_eq!(by_key("CRM-3")["parent_id"], by_key("CRM-0")["id"]);
    // Imported again: every row collides with what exists; nothing more.
    let again = import(&app, "accounts", good, "").await;
    assert_eq!(problems(&again).len(), 3);
    assert_eq!(count(&app, "/v1/accounts").await, 4);
}

async fn a_dry_run_checks_everything_and_writes_nothing(app: TestApp) {
    let file = "name,sku\nSupport,SUP-1\nTraining,TRN-1\n";
    let checked = import(&app, "products", file, "?dry_run=true").await;
    assert_eq!(checked.status, StatusCode::OK, "{:?}", checked.body);
    assert_eq!(checked.body["dry_run"], true);
    assert_eq!(checked.body["committed"], false);
    assert_eq!(checked.body["rows"], 2);
    assert_eq!(count(&app, "/v1/products").await, 0);
    // A dry run of usage past the cap reports it, and uses nothing.
    let account = app.account("Acme").await;
    let ent = app
        .active_entitlement(&account, json!({ "total": 3 }))
        .await;
    let usage = format!("entitlement_id,quantity,idempotency_key\n{ent},2,k1\n{ent},2,k2\n");
    let refused = import(&app, "usage", usage.clone(), "?dry_run=true").await;
    assert_eq!(problems(&refused), vec![(3, "quantity".to_string())]);
    let fits = format!("entitlement_id,quantity,idempotency_key\n{ent},2,k1\n{ent},1,k2\n");
    let checked = import(&app, "usage", fits, "?dry_run=true").await;
    assert_eq!(checked.status, StatusCode::OK, "{:?}", checked.body);
    assert_eq!(checked.body["applied"], 2);
    assert_eq!(checked.body["committed"], false);
    assert_eq!(app.balance(&ent).await["used"], json!(0));
    // Without the dry run the same file lands.
    let done = import(&app, "products", file, "").await;
    assert_eq!(done.body["committed"], true, "{:?}", done.body);
    assert_eq!(count(&app, "/v1/products").await, 2);
}

async fn usage_imported_twice_applies_once_and_caps_hold(app: TestApp) {
    let account = app.account("Acme").await;
    let ent = app
        .active_entitlement(&account, json!({ "total": 5 }))
        .await;
    let file = format!(
        "entitlement_id,quantity,idempotency_key,reference\n\
         {ent},1,use-1,WO-1\n{ent},2,use-2,\n{ent},1,use-3,WO-3\n"
    );
    let first = import(&app, "usage", file.clone(), "").await;
    assert_eq!(first.status, StatusCode::OK, "{:?}", first.body);
    assert_eq!(first.body["applied"], 3);
    assert_eq!(app.balance(&ent).await["used"], json!(4));
    // The import is one audited action listing the ledger entries it made
    // (not one entry per row).
    let audited = app.get("/v1/audit?action=usage.import").await.body;
    let entries = audited["items"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{audited}");
    assert_eq!(entries[0]["target_type"], "import");
    assert_eq!(entries[0]["after"]["rows"], json!([2, 4]));
    let ledger = app.get(&format!("/v1/entitlements/{ent}/usage")).await.body;
    let mut made: Vec<Value> = ledger["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].clone())
        .collect();
    let mut listed = entries[0]["after"]["ledger_entries"]
        .as_array()
        .unwrap()
        .clone();
    made.sort_by_key(Value::to_string);
    listed.sort_by_key(Value::to_string);
    assert_eq!(listed, made);
    let per_row = app.get(&format!("/v1/audit?target_id={ent}")).await.body;
    assert!(
        per_row["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["action"] != "usage.record"),
        "{per_row}"
    );
    let second = import(&app, "usage", file.clone(), "").await;
    assert_eq!(second.status, StatusCode::OK, "{:?}", second.body);
    assert_eq!(second.body["applied"], 0);
    assert_eq!(second.body["replayed"], 3);
    assert_eq!(app.balance(&ent).await["used"], json!(4));
    app.assert_ledger_matches(&ent).await;
    // One row past the cap: the whole file is refused, its good rows too.
    let over = format!(
        "entitlement_id,quantity,idempotency_key\n{ent},1,use-4\n{ent},3,use-5\n{ent},x,use-6\nent_missing1,1,use-7\n{ent},1,use-4\n"
    );
    let refused = import(&app, "usage", over.clone(), "").await;
    let mut listed = problems(&refused);
    listed.sort();
    assert_eq!(
        listed,
        vec![
            (3, "quantity".to_string()),
            (4, "quantity".to_string()),
            (5, "entitlement_id".to_string()),
            (6, "idempotency_key".to_string()),
        ]
    );
    assert_eq!(app.balance(&ent).await["used"], json!(4));
    // Historic usage past the cap, allowed: recorded and flagged.
    let historic =
        format!("entitlement_id,quantity,idempotency_key\n{ent},1,old-1\n{ent},3,old-2\n");
    let done = import(&app, "usage", historic, "?allow_overage=true").await;
    assert_eq!(done.status, StatusCode::OK, "{:?}", done.body);
    assert_eq!(app.balance(&ent).await["used"], json!(8));
    let ledger = app.get(&format!("/v1/entitlements/{ent}/usage")).await.body;
    let reasons: Vec<&str> = ledger["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["reason"].as_str().unwrap())
        .collect();
    assert_eq!(
        reasons.iter().filter(|r| **r == "imported_overage").count(),
        1,
        "{reasons:?}"
    );
    app.assert_ledger_matches(&ent).await;
    // A key reused with another row is that row's error.
    let changed = format!("entitlement_id,quantity,idempotency_key\n{ent},2,use-1\n");
    assert_eq!(
        problems(&import(&app, "usage", changed, "").await),
        vec![(2, "idempotency_key".to_string())]
    );
}

async fn an_export_imports_again_into_a_fresh_service(app: TestApp) {
    let parent = app
        .post("/v1/accounts", json!({ "name": "Acme, Inc.", "external_id": "CRM-1", "manager_email": "ann@example.com" }))
        .await
        .id();
    let child = app
        .post(
            "/v1/accounts",
            json!({ "name": "Acme \"West\"", "parent_id": parent }),
        )
        .await
        .id();
    app.post(
        "/v1/contacts",
        json!({ "account_id": child, "name": "Bob", "email": "bob@example.com" }),
    )
    .await;
    let product = app
        .post("/v1/products", json!({ "name": "Support", "sku": "SUP-1" }))
        .await
        .id();
    app.entitlement(&parent, json!({ "product_ids": [product], "channels": [{ "channel": "phone", "total": 4 }], "alert_thresholds": [80], "is_default": true }))
        .await;
    app.active_entitlement(&child, json!({ "unit": "hours", "total": 7.5, "rounding": 0.25, "period": "month", "rollover": 2 }))
        .await;
    let fresh = spawn_app(app.backend).await;
    for (kind, path) in [
        ("accounts", "/v1/accounts"),
        ("contacts", "/v1/contacts"),
        ("products", "/v1/products"),
        ("entitlements", "/v1/entitlements"),
    ] {
        let file = export(&app, path).await;
        let done = import(&fresh, kind, file.clone(), "").await;
        assert_eq!(
            done.status,
            StatusCode::OK,
            "{kind}: {:?}\n{file}",
            done.body
        );
        let again = export(&fresh, path).await;
        let ((h1, r1), (h2, r2)) = (rows(&file), rows(&again));
        assert_eq!(h1, h2, "{kind}: header");
        assert_eq!(r1.len(), r2.len(), "{kind}: rows");
        let kept: Vec<usize> = (0..h1.len())
            .filter(|i| !["created_at", "updated_at"].contains(&h1[*i].as_str()))
            .collect();
        for (a, b) in r1.iter().zip(&r2) {
            for i in &kept {
                assert_eq!(a[*i], b[*i], "{kind}: {}", h1[*i]);
            }
        }
    }
}

async fn exports_are_every_page_under_the_json_names_with_the_same_filters(app: TestApp) {
    let a = app.account("A").await;
    let b = app.account("B").await;
    for n in 0..5 {
        app.entitlement(&a, json!({ "name": format!("E{n}") }))
            .await;
    }
    app.entitlement(&b, json!({ "name": "Other" })).await;
    // A small page size: the export follows every page.
    let all = export(&app, &format!("/v1/entitlements?account_id={a}&limit=2")).await;
    let (header, lines) = rows(&all);
    assert_eq!(lines.len(), 5);
    let json = app
        .get(&format!("/v1/entitlements?account_id={a}&limit=1"))
        .await
        .body;
    let item = &json["items"][0];
    for field in [
        "id",
        "name",
        "account_id",
        "status",
        "product_ids",
        "balance.used",
        "percent_used",
    ] {
        assert!(header.iter().any(|h| h == field), "{field} in {header:?}");
    }
    let id_at = header.iter().position(|h| h == "id").unwrap();
    assert_eq!(lines[0][id_at], item["id"].as_str().unwrap());
    // Accept: text/csv asks the same.
    let response = app
        .http
        .get(format!("{}/v1/accounts", app.url))
        .bearer_auth(&app.admin)
        .header("accept", "text/csv")
        .send()
        .await
        .unwrap();
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let (header, lines) = rows(&response.text().await.unwrap());
    assert_eq!(header[0], "id");
    assert_eq!(lines.len(), 2);
    // An error answers as JSON, before any row.
    let bad = app.get("/v1/entitlements?format=csv&limit=0").await;
    assert!(bad.status.is_client_error(), "{:?}", bad.body);
}

async fn hostile_files_are_row_errors_never_a_5xx(app: TestApp) {
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("accounts", b"".to_vec()),
        ("accounts", b"nom,name\nx,y\n".to_vec()),
        ("accounts", b"external_id\nCRM-1\n".to_vec()),
        ("accounts", b"name,name\nx,y\n".to_vec()),
        ("accounts", b"name\n\xff\xfe\n".to_vec()),
        ("accounts", b"\xff\xfe\nx\n".to_vec()),
        ("accounts", b"name,external_id\nA\nB,1,2\n".to_vec()),
        ("contacts", b"name,account_id\nBob,acc_nothere\n".to_vec()),
        ("entitlements", b"name,unit,start_date,end_date,account_id,total\nX,eons,2026-13-01,no,acc_1,-1\n".to_vec()),
        ("entitlements", b"name,unit,start_date,end_date,account_id,channels\nX,cases,2026-01-01,2026-02-01,acc_1,[{\n".to_vec()),
        ("usage", b"entitlement_id,quantity,idempotency_key\nent_x,1e99,k\nent_x,1,k\n".to_vec()),
        ("usage", "entitlement_id,quantity,idempotency_key\n\u{0}\u{202e},\u{1F600},\"a\"\"b\"\n".as_bytes().to_vec()),
        ("nothing", b"a\n1\n".to_vec()),
        ("accounts", b"name,external_id\nAcme,\"CRM-1\n".to_vec()),
        ("usage", b"entitlement_id,quantity,idempotency_key\nent_x,1,\"k\"\"\n".to_vec()),
    ];
    for (kind, body) in cases {
        let answer = import(&app, kind, body.clone(), "").await;
        assert!(
            answer.status.is_client_error(),
            "{kind} {:?}: {} {:?}",
            String::from_utf8_lossy(&body),
            answer.status,
            answer.body
        );
    }
    // A quote opened and never closed is the error of the cell that opened
    // it, even when what it swallowed would pass as that cell.
    let open = import(
        &app,
        "accounts",
        "name,external_id\nAcme,CRM-1\nBeta,\"CRM-2\n",
        "",
    )
    .await;
    assert_eq!(problems(&open), vec![(3, "external_id".to_string())]);
    let closed = import(
        &app,
        "accounts",
        "name,external_id\nBeta,\"CRM-2\"",
        "?dry_run=true",
    )
    .await;
    assert_eq!(closed.status, StatusCode::OK, "{:?}", closed.body);
    // Quoting per RFC 4180: commas, quotes and line breaks inside a cell.
    let quoted = "name,manager_name\n\"Line\nbreak, \"\"quoted\"\"\",\"Ann\"\r\n";
    let done = import(&app, "accounts", quoted, "").await;
    assert_eq!(done.status, StatusCode::OK, "{:?}", done.body);
    let listed = app.get("/v1/accounts").await.body;
    assert_eq!(listed["items"][0]["name"], "Line\nbreak, \"quoted\"");
    // Nothing else was written by any refused file.
    assert_eq!(count(&app, "/v1/accounts").await, 1);
}

async fn templates_name_every_column(app: TestApp) {
    for kind in [
        "accounts",
        "contacts",
        "products",
        "contracts",
        "contract-lines",
        "entitlements",
        "usage",
    ] {
        let response = app
            .http
            .get(format!("{}/v1/imports/{kind}/template", app.url))
            .bearer_auth(&app.admin)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let (header, lines) = rows(&response.text().await.unwrap());
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].len(), header.len(), "{kind}");
    }
    let missing = app.get("/v1/imports/nothing/template").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

async fn contracts_lines_and_entitlements_from_a_template_import_by_key(app: TestApp) {
    app.post(
        "/v1/accounts",
        json!({ "name": "Acme", "external_id": "CRM-1" }),
    )
    .await;
    app.post("/v1/products", json!({ "name": "Support", "sku": "SUP-1" }))
        .await;
    let template = app
        .post(
            "/v1/entitlement-templates",
            json!({ "name": "Gold", "unit": "cases", "total": 25, "period": "quarter",
                "restrict": true, "decrement_on": "creation", "duration": { "months": 12 } }),
        )
        .await;
    assert_eq!(template.status, StatusCode::CREATED, "{:?}", template.body);
    let contracts = "number,account_external_id,start_date,end_date,status
        CTR-1,CRM-1,2026-01-01,2026-12-31,active
        CTR-1,CRM-1,2026-01-01,2026-12-31,active
        CTR-2,CRM-404,2026-01-01,2026-12-31,draft
";
    let refused = import(&app, "contracts", contracts, "").await;
    let mut listed = problems(&refused);
    listed.sort();
    assert_eq!(
        listed,
        vec![
            (3, "number".to_string()),
            (4, "account_external_id".to_string())
        ]
    );
    let contracts = "number,account_external_id,start_date,end_date,status
        CTR-1,CRM-1,2026-01-01,2026-12-31,active
";
    let done = import(&app, "contracts", contracts, "").await;
    assert_eq!(done.status, StatusCode::OK, "{:?}", done.body);
    let lines = "contract_number,product_sku,quantity,template_name,start_date
        CTR-1,SUP-1,1,Gold,
        CTR-1,,,Silver,
        CTR-9,,,,
        CTR-1,,,,2025-06-01
";
    let refused = import(&app, "contract-lines", lines, "").await;
    let mut listed = problems(&refused);
    listed.sort();
    assert_eq!(
        listed,
        vec![
            (3, "template_name".to_string()),
            (4, "contract_number".to_string()),
            (5, "start_date".to_string()),
        ]
    );
    let lines = "contract_number,product_sku,quantity,template_name
CTR-1,SUP-1,1,Gold
";
    let done = import(&app, "contract-lines", lines, "").await;
    assert_eq!(done.status, StatusCode::OK, "{:?}", done.body);
    let ents = "account_external_id,template,start_date,contract_number,status
        CRM-1,Gold,2026-01-01,CTR-1,draft
        CRM-1,Gold,2026-01-01,,active
";
    let done = import(&app, "entitlements", ents, "").await;
    assert_eq!(done.status, StatusCode::OK, "{:?}", done.body);
    let listed = app.get("/v1/entitlements").await.body;
    let items = listed["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert!(items
        .iter()
        .all(|e| e["name"] == "Gold" && e["total"] == json!(25)));
    assert_eq!(
        items
            .iter()
            .filter(|e| e["contract_id"].is_string())
            .count(),
        1
    );
    // A term column beside a template, and an unknown template, are row errors.
    let bad = "account_external_id,template,total
CRM-1,Gold,5
CRM-1,Platinum,
";
    let mut listed = problems(&import(&app, "entitlements", bad, "").await);
    listed.sort();
    assert_eq!(
        listed,
        vec![(2, "total".to_string()), (3, "template".to_string())]
    );
}

crate::on_both_backends!(
    contracts_lines_and_entitlements_from_a_template_import_by_key,
    a_file_with_bad_rows_imports_nothing_and_lists_every_one,
    a_dry_run_checks_everything_and_writes_nothing,
    usage_imported_twice_applies_once_and_caps_hold,
    an_export_imports_again_into_a_fresh_service,
    exports_are_every_page_under_the_json_names_with_the_same_filters,
    hostile_files_are_row_errors_never_a_5xx,
    templates_name_every_column,
);
