//! Contracts, templates and make-default through the API: every rule of
//! issue 12's items 1-3, on both backends.

use chrono::{TimeZone, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::TestApp;
use crate::on_both_backends;

on_both_backends!(
    a_contract_is_checked_and_entitlements_name_it_within_its_dates,
    suspend_refuses_usage_and_resume_restores_it,
    cancel_flows_down_with_events_and_nothing_flows_up,
    expiry_flows_down_once,
    renewal_makes_a_new_contract_and_new_drafts_in_one_transaction,
    a_template_makes_entitlements_all_or_nothing,
    above_a_hundred_accounts_a_job_reports_progress_and_outcome,
    make_default_moves_the_default_in_one_transaction,
    who_may_do_what_with_contracts_and_templates,
);

async fn job(app: &TestApp) {
    allot_server::jobs::run_once(&app.running.state).await;
}

fn fields(a: &crate::common::Answer) -> Vec<String> {
    a.body["error"]["details"]["fields"]
        .as_array()
        .map(|f| {
            f.iter()
                .map(|e| e["field"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

async fn contract(app: &TestApp, account: &str, number: &str, extra: Value) -> String {
    let mut body = json!({
        "account_id": account, "number": number,
        "start_date": "2026-01-01", "end_date": "2026-12-31"
    });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let a = app.post("/v1/contracts", body).await;
    assert_eq!(a.status, StatusCode::CREATED, "{:?}", a.body);
    a.id()
}

async fn act(app: &TestApp, contract: &str, action: &str) -> crate::common::Answer {
    app.post(&format!("/v1/contracts/{contract}/{action}"), json!({}))
        .await
}

async fn status(app: &TestApp, ent: &str) -> String {
    let a = app.get(&format!("/v1/entitlements/{ent}")).await;
    assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
    a.body["status"].as_str().unwrap().to_string()
}

async fn kinds(app: &TestApp, ent: &str) -> Vec<String> {
    let page = app.get(&format!("/v1/events?entitlement_id={ent}")).await;
    assert_eq!(page.status, StatusCode::OK, "{:?}", page.body);
    page.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect()
}

async fn a_contract_is_checked_and_entitlements_name_it_within_its_dates(app: TestApp) {
    let acc = app.account("Acme").await;
    let other = app.account("Other").await;
    let ctr = contract(&app, &acc, "CTR-1", json!({ "name": "Support 2026" })).await;
    let got = app.get(&format!("/v1/contracts/{ctr}")).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.body["status"], "draft");
    assert_eq!(got.body["number"], "CTR-1");
    assert_eq!(got.body["name"], "Support 2026");

    let dup = app
        .post(
            "/v1/contracts",
            json!({ "account_id": other, "number": "CTR-1", "start_date": "2026-01-01", "end_date": "2026-12-31" }),
        )
        .await;
    assert_eq!(dup.status, StatusCode::CONFLICT, "{:?}", dup.body);
    assert_eq!(dup.code(), "contract_number_taken");
    let backwards = app
        .post(
            "/v1/contracts",
            json!({ "account_id": acc, "number": "CTR-2", "start_date": "2026-02-01", "end_date": "2026-01-01" }),
        )
        .await;
    assert_eq!(backwards.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&backwards), ["end_date"]);
    let nobody = app
        .post(
            "/v1/contracts",
            json!({ "account_id": "acc_missing", "number": "CTR-3", "start_date": "2026-01-01", "end_date": "2026-01-31" }),
        )
        .await;
    assert_eq!(nobody.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&nobody), ["account_id"]);

    // Lines: inside the contract's dates, defaulting to them.
    let line = app
        .post(
            &format!("/v1/contracts/{ctr}/lines"),
            json!({ "quantity": 25 }),
        )
        .await;
    assert_eq!(line.status, StatusCode::CREATED, "{:?}", line.body);
    assert_eq!(line.body["start_date"], "2026-01-01");
    assert_eq!(line.body["end_date"], "2026-12-31");
    let line_id = line.id();
    let late = app
        .post(
            &format!("/v1/contracts/{ctr}/lines"),
            json!({ "start_date": "2026-06-01", "end_date": "2027-01-01" }),
        )
        .await;
    assert_eq!(late.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&late), ["end_date"]);
    let lines = app.get(&format!("/v1/contracts/{ctr}/lines")).await;
    assert_eq!(lines.body["items"].as_array().unwrap().len(), 1);

    // Entitlements naming the contract: same account, dates inside.
    let ok = app
        .entitlement(
            &acc,
            json!({ "contract_id": ctr, "contract_line_id": line_id, "start_date": "2026-03-01" }),
        )
        .await;
    let got = app.get(&format!("/v1/entitlements/{ok}")).await;
    assert_eq!(got.body["contract_id"], ctr.as_str());
    assert_eq!(got.body["contract_line_id"], line_id.as_str());
    let body = |extra: Value| {
        let mut b = json!({
            "account_id": acc, "name": "Support", "unit": "cases", "total": 10, "restrict": true,
            "decrement_on": "creation", "start_date": "2026-01-01", "end_date": "2026-12-31"
        });
        for (k, v) in extra.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    };
    for (extra, field) in [
        (json!({ "contract_id": "ctr_missing" }), "contract_id"),
        (
            json!({ "contract_id": ctr, "account_id": other }),
            "contract_id",
        ),
        (
            json!({ "contract_id": ctr, "start_date": "2025-12-31" }),
            "start_date",
        ),
        (
            json!({ "contract_id": ctr, "end_date": "2027-01-01" }),
            "end_date",
        ),
        (json!({ "contract_line_id": line_id }), "contract_id"),
        (
            json!({ "contract_id": ctr, "contract_line_id": "cln_missing" }),
            "contract_line_id",
        ),
    ] {
        let a = app.post("/v1/entitlements", body(extra.clone())).await;
        assert_eq!(
            a.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{extra}: {:?}",
            a.body
        );
        assert_eq!(fields(&a), [field], "{extra}");
    }
    let listed = app.get(&format!("/v1/contracts/{ctr}/entitlements")).await;
    let ids: Vec<&str> = listed.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [ok.as_str()]);
    let mine = app.get(&format!("/v1/contracts?account_id={acc}")).await;
    assert_eq!(mine.body["items"].as_array().unwrap().len(), 1);
}

async fn suspend_refuses_usage_and_resume_restores_it(app: TestApp) {
    let acc = app.account("Acme").await;
    let ctr = contract(&app, &acc, "CTR-S", json!({})).await;
    assert_eq!(act(&app, &ctr, "activate").await.status, StatusCode::OK);
    let ent = app
        .active_entitlement(&acc, json!({ "contract_id": ctr }))
        .await;
    let waiting = app
        .active_entitlement(
            &acc,
            json!({ "contract_id": ctr, "start_date": "2026-09-01" }),
        )
        .await;
    assert_eq!(app.use_(&ent, json!(1)).await.status, StatusCode::CREATED);

    let suspended = act(&app, &ctr, "suspend").await;
    assert_eq!(suspended.status, StatusCode::OK, "{:?}", suspended.body);
    assert_eq!(suspended.body["contract"]["status"], "suspended");
    assert_eq!(suspended.body["entitlements"].as_array().unwrap().len(), 2);
    assert_eq!(status(&app, &ent).await, "suspended");
    assert_eq!(status(&app, &waiting).await, "suspended");
    let refused = app.use_(&ent, json!(1)).await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{:?}", refused.body);
    assert_eq!(refused.code(), "entitlement_suspended");
    assert_eq!(app.balance(&ent).await["used"], 1.0);
    assert!(kinds(&app, &ent)
        .await
        .contains(&"entitlement.suspended".to_string()));
    // Suspending twice is not a transition.
    assert_eq!(
        act(&app, &ctr, "suspend").await.code(),
        "invalid_transition"
    );

    let resumed = act(&app, &ctr, "resume").await;
    assert_eq!(resumed.status, StatusCode::OK, "{:?}", resumed.body);
    assert_eq!(resumed.body["contract"]["status"], "active");
    assert_eq!(status(&app, &ent).await, "active");
    assert_eq!(status(&app, &waiting).await, "waiting");
    assert!(kinds(&app, &ent)
        .await
        .contains(&"entitlement.resumed".to_string()));
    assert_eq!(app.use_(&ent, json!(1)).await.status, StatusCode::CREATED);
    assert_eq!(app.balance(&ent).await["used"], 2.0);
}

async fn cancel_flows_down_with_events_and_nothing_flows_up(app: TestApp) {
    let acc = app.account("Acme").await;
    let ctr = contract(&app, &acc, "CTR-C", json!({})).await;
    assert_eq!(act(&app, &ctr, "activate").await.status, StatusCode::OK);
    let active = app
        .active_entitlement(&acc, json!({ "contract_id": ctr }))
        .await;
    let draft = app.entitlement(&acc, json!({ "contract_id": ctr })).await;
    let unrelated = app.active_entitlement(&acc, json!({})).await;
    let other_ctr = contract(&app, &acc, "CTR-D", json!({})).await;
    let on_other = app
        .active_entitlement(&acc, json!({ "contract_id": other_ctr }))
        .await;

    // Nothing flows up: cancelling an entitlement leaves its contract be.
    let cancel_one = app
        .post(&format!("/v1/entitlements/{on_other}/cancel"), json!({}))
        .await;
    assert_eq!(cancel_one.status, StatusCode::OK);
    let other = app.get(&format!("/v1/contracts/{other_ctr}")).await;
    assert_eq!(other.body["status"], "draft");

    let cancelled = act(&app, &ctr, "cancel").await;
    assert_eq!(cancelled.status, StatusCode::OK, "{:?}", cancelled.body);
    assert_eq!(cancelled.body["contract"]["status"], "cancelled");
    assert_eq!(status(&app, &active).await, "cancelled");
    assert_eq!(status(&app, &draft).await, "cancelled");
    assert_eq!(status(&app, &unrelated).await, "active");
    assert_eq!(
        kinds(&app, &active).await,
        ["entitlement.activated", "entitlement.cancelled"]
    );
    assert_eq!(kinds(&app, &draft).await, ["entitlement.cancelled"]);
    let refused = app.use_(&active, json!(1)).await;
    assert_eq!(refused.code(), "entitlement_not_active");
    // A cancelled contract takes nothing more.
    assert_eq!(act(&app, &ctr, "cancel").await.code(), "invalid_transition");
    let more = app
        .post(
            "/v1/entitlements",
            json!({
                "account_id": acc, "name": "Late", "unit": "cases", "total": 1, "restrict": true,
                "decrement_on": "creation", "start_date": "2026-01-01", "end_date": "2026-12-31",
                "contract_id": ctr
            }),
        )
        .await;
    assert_eq!(more.status, StatusCode::CONFLICT, "{:?}", more.body);
    assert_eq!(more.code(), "contract_closed");
    let audit = app
        .get(&format!(
            "/v1/audit?target_id={active}&action=entitlement.cancel"
        ))
        .await;
    assert_eq!(
        audit.body["items"].as_array().unwrap().len(),
        1,
        "{:?}",
        audit.body
    );
}

async fn expiry_flows_down_once(app: TestApp) {
    let acc = app.account("Acme").await;
    let ctr = contract(
        &app,
        &acc,
        "CTR-E",
        json!({ "start_date": "2026-06-01", "end_date": "2026-06-30" }),
    )
    .await;
    assert_eq!(act(&app, &ctr, "activate").await.status, StatusCode::OK);
    let dates = json!({ "contract_id": ctr, "start_date": "2026-06-01", "end_date": "2026-06-30" });
    let draft = app.entitlement(&acc, dates.clone()).await;
    let active = app.active_entitlement(&acc, dates).await;
    app.clock
        .set(Utc.with_ymd_and_hms(2026, 7, 1, 1, 0, 0).unwrap());
    // Read before the job: the dates already say expired.
    let read = app.get(&format!("/v1/contracts/{ctr}")).await;
    assert_eq!(read.body["status"], "expired");
    job(&app).await;
    job(&app).await;
    let stored = app
        .get(&format!("/v1/contracts?status=expired&account_id={acc}"))
        .await;
    assert_eq!(
        stored.body["items"].as_array().unwrap().len(),
        1,
        "{:?}",
        stored.body
    );
    assert_eq!(status(&app, &draft).await, "expired");
    assert_eq!(kinds(&app, &draft).await, ["entitlement.expired"]);
    assert_eq!(status(&app, &active).await, "expired");
    assert_eq!(
        kinds(&app, &active).await,
        ["entitlement.activated", "entitlement.expired"]
    );
    // Expired: no more actions but renewal.
    assert_eq!(
        act(&app, &ctr, "suspend").await.code(),
        "invalid_transition"
    );
}

async fn renewal_makes_a_new_contract_and_new_drafts_in_one_transaction(app: TestApp) {
    let acc = app.account("Acme").await;
    let ctr = contract(&app, &acc, "CTR-R", json!({ "auto_renew": false })).await;
    let draft_renewal = app
        .post(&format!("/v1/contracts/{ctr}/renew"), json!({}))
        .await;
    assert_eq!(draft_renewal.code(), "invalid_transition");
    assert_eq!(act(&app, &ctr, "activate").await.status, StatusCode::OK);
    let line = app
        .post(
            &format!("/v1/contracts/{ctr}/lines"),
            json!({ "quantity": 10 }),
        )
        .await
        .id();
    let ent = app
        .active_entitlement(
            &acc,
            json!({ "contract_id": ctr, "contract_line_id": line, "start_date": "2026-02-01", "end_date": "2026-11-30" }),
        )
        .await;
    let cancelled = app
        .active_entitlement(&acc, json!({ "contract_id": ctr }))
        .await;
    app.post(&format!("/v1/entitlements/{cancelled}/cancel"), json!({}))
        .await;

    let renewed = app
        .post(&format!("/v1/contracts/{ctr}/renew"), json!({}))
        .await;
    assert_eq!(renewed.status, StatusCode::CREATED, "{:?}", renewed.body);
    let new = &renewed.body["contract"];
    assert_eq!(new["status"], "draft");
    assert_eq!(new["start_date"], "2027-01-01");
    assert_eq!(new["end_date"], "2027-12-31");
    assert_eq!(new["number"], "CTR-R/2027-01-01");
    assert_eq!(new["predecessor_id"], ctr.as_str());
    assert_eq!(renewed.body["renewed_from"]["renewed_to"], new["id"]);
    let new_id = new["id"].as_str().unwrap();
    let new_line = renewed.body["lines"][0]["id"].as_str().unwrap();
    let drafts = renewed.body["entitlements"].as_array().unwrap();
    assert_eq!(drafts.len(), 1, "the cancelled one is not renewed");
    let d = &drafts[0];
    assert_eq!(d["status"], "draft");
    assert_eq!(d["predecessor_id"], ent.as_str());
    assert_eq!(d["contract_id"], new_id);
    assert_eq!(d["contract_line_id"], new_line);
    assert_eq!(d["start_date"], "2027-02-01");
    assert_eq!(d["end_date"], "2027-11-30");
    assert!(kinds(&app, &ent)
        .await
        .contains(&"entitlement.renewed".to_string()));
    let old = app.get(&format!("/v1/entitlements/{ent}")).await;
    assert_eq!(
        old.body["status"], "active",
        "renewal leaves the old ones be"
    );
    assert_eq!(old.body["renewed_to"], d["id"]);
    let again = app
        .post(
            &format!("/v1/contracts/{ctr}/renew"),
            json!({ "number": "X" }),
        )
        .await;
    assert_eq!(again.code(), "contract_already_renewed");
    // A taken number refuses the whole renewal: nothing was made.
    let other = contract(&app, &acc, "CTR-T", json!({})).await;
    act(&app, &other, "activate").await;
    let clash = app
        .post(
            &format!("/v1/contracts/{other}/renew"),
            json!({ "number": "CTR-R" }),
        )
        .await;
    assert_eq!(clash.code(), "contract_number_taken");
    let after = app.get(&format!("/v1/contracts/{other}")).await;
    assert_eq!(after.body["renewed_to"], Value::Null);
}

fn gold() -> Value {
    json!({
        "name": "Gold", "unit": "cases", "total": 25, "period": "quarter", "restrict": true,
        "decrement_on": "creation", "sla": "4h", "alert_thresholds": [80],
        "duration": { "months": 12 }
    })
}

async fn entitlements_of(app: &TestApp, account: &str) -> Vec<Value> {
    let page = app
        .get(&format!("/v1/entitlements?account_id={account}&limit=1000"))
        .await;
    assert_eq!(page.status, StatusCode::OK, "{:?}", page.body);
    page.body["items"].as_array().unwrap().clone()
}

async fn a_template_makes_entitlements_all_or_nothing(app: TestApp) {
    let created = app.post("/v1/entitlement-templates", gold()).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let tpl = created.id();
    assert_eq!(created.body["duration"]["months"], 12);
    let dup = app.post("/v1/entitlement-templates", gold()).await;
    assert_eq!(dup.code(), "template_name_taken");
    let mut bad = gold();
    bad["duration"] = json!({ "months": 12, "days": 3 });
    let a = app.post("/v1/entitlement-templates", bad).await;
    assert_eq!(fields(&a), ["duration"]);
    let mut bad = gold();
    bad["total"] = json!(2.5);
    bad["name"] = json!("Half");
    let a = app.post("/v1/entitlement-templates", bad).await;
    assert_eq!(fields(&a), ["total"]);

    let (a1, a2) = (app.account("One").await, app.account("Two").await);
    // One bad account: nothing made, every bad one named.
    let refused = app
        .post(
            &format!("/v1/entitlement-templates/{tpl}/instantiate"),
            json!({ "account_ids": [a1, "acc_missing", a2, a1], "activate": true }),
        )
        .await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{:?}",
        refused.body
    );
    assert_eq!(fields(&refused), ["account_ids[1]", "account_ids[3]"]);
    assert!(entitlements_of(&app, &a1).await.is_empty());
    assert!(entitlements_of(&app, &a2).await.is_empty());

    let made = app
        .post(
            &format!("/v1/entitlement-templates/{tpl}/instantiate"),
            json!({ "account_ids": [a1, a2], "activate": true, "start_date": "2026-04-01" }),
        )
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{:?}", made.body);
    let items = made.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    for (item, acc) in items.iter().zip([&a1, &a2]) {
        assert_eq!(item["account_id"], acc.as_str());
        assert_eq!(item["template_id"], tpl.as_str());
        assert_eq!(item["name"], "Gold");
        assert_eq!(item["total"], 25.0);
        assert_eq!(item["period"], "quarter");
        assert_eq!(item["sla"], "4h");
        assert_eq!(item["start_date"], "2026-04-01");
        assert_eq!(item["end_date"], "2027-03-31");
        assert_eq!(item["status"], "active");
    }
    let first = items[0]["id"].as_str().unwrap().to_string();
    assert_eq!(app.use_(&first, json!(1)).await.status, StatusCode::CREATED);

    // Editing the template changes nothing already made.
    let edited = app
        .call(
            Method::PATCH,
            &format!("/v1/entitlement-templates/{tpl}"),
            Some(&app.admin),
            Some(json!({ "total": 40 })),
            None,
        )
        .await;
    assert_eq!(edited.status, StatusCode::OK, "{:?}", edited.body);
    assert_eq!(edited.body["total"], 40.0);
    let kept = app.get(&format!("/v1/entitlements/{first}")).await;
    assert_eq!(kept.body["total"], 25.0);
    assert_eq!(kept.body["template_id"], tpl.as_str());

    // With a contract: its account only, inside its dates.
    let ctr = contract(&app, &a1, "CTR-TPL", json!({})).await;
    let outside = app
        .post(
            &format!("/v1/entitlement-templates/{tpl}/instantiate"),
            json!({ "account_ids": [a1, a2], "contract_id": ctr, "start_date": "2026-01-01" }),
        )
        .await;
    assert_eq!(outside.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&outside), ["account_ids[1]"]);
    let too_long = app
        .post(
            &format!("/v1/entitlement-templates/{tpl}/instantiate"),
            json!({ "account_ids": [a1], "contract_id": ctr, "start_date": "2026-04-01" }),
        )
        .await;
    assert_eq!(fields(&too_long), ["end_date"]);
    let mut short = gold();
    short["name"] = json!("Gold quarter");
    short["duration"] = json!({ "days": 90 });
    let short = app.post("/v1/entitlement-templates", short).await.id();
    let on_contract = app
        .post(
            &format!("/v1/entitlement-templates/{short}/instantiate"),
            json!({ "account_ids": [a1], "contract_id": ctr, "start_date": "2026-01-01" }),
        )
        .await;
    assert_eq!(
        on_contract.status,
        StatusCode::CREATED,
        "{:?}",
        on_contract.body
    );
    assert_eq!(on_contract.body["items"][0]["contract_id"], ctr.as_str());
    assert_eq!(on_contract.body["items"][0]["end_date"], "2026-03-31");
    assert_eq!(on_contract.body["items"][0]["status"], "draft");

    let gone = app
        .call(
            Method::DELETE,
            &format!("/v1/entitlement-templates/{short}"),
            Some(&app.admin),
            None,
            None,
        )
        .await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT);
    let after = app.get(&format!("/v1/entitlement-templates/{short}")).await;
    assert_eq!(after.status, StatusCode::NOT_FOUND);
}

async fn wait_for_job(app: &TestApp, id: &str) -> Value {
    for _ in 0..600 {
        let a = app.get(&format!("/v1/jobs/{id}")).await;
        assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
        assert!(a.body["done"].as_u64().unwrap() <= a.body["total"].as_u64().unwrap());
        if a.body["status"] != "running" {
            return a.body;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("job {id} still running after 30 s");
}

async fn above_a_hundred_accounts_a_job_reports_progress_and_outcome(app: TestApp) {
    let tpl = app.post("/v1/entitlement-templates", gold()).await.id();
    let mut accounts = Vec::new();
    for i in 0..101 {
        accounts.push(app.account(&format!("Customer {i}")).await);
    }
    let mut with_bad = accounts.clone();
    with_bad[57] = "acc_nobody".into();
    let started = app
        .post(
            &format!("/v1/entitlement-templates/{tpl}/instantiate"),
            json!({ "account_ids": with_bad }),
        )
        .await;
    assert_eq!(started.status, StatusCode::ACCEPTED, "{:?}", started.body);
    assert_eq!(started.body["total"], 101);
    let failed = wait_for_job(&app, &started.id()).await;
    assert_eq!(failed["status"], "failed", "{failed:?}");
    assert_eq!(failed["error"]["error"]["code"], "validation_failed");
    assert_eq!(
        failed["error"]["error"]["details"]["fields"][0]["field"],
        "account_ids[57]"
    );
    assert!(entitlements_of(&app, &accounts[0]).await.is_empty());

    let started = app
        .post(
            &format!("/v1/entitlement-templates/{tpl}/instantiate"),
            json!({ "account_ids": accounts, "activate": true }),
        )
        .await;
    assert_eq!(started.status, StatusCode::ACCEPTED, "{:?}", started.body);
    let done = wait_for_job(&app, &started.id()).await;
    assert_eq!(done["status"], "succeeded", "{done:?}");
    assert_eq!(done["done"], 101);
    let ids = done["result"]["entitlement_ids"].as_array().unwrap();
    assert_eq!(ids.len(), 101);
    for acc in [&accounts[0], &accounts[100]] {
        let mine = entitlements_of(&app, acc).await;
        assert_eq!(mine.len(), 1);
        assert_eq!(mine[0]["template_id"], tpl.as_str());
        assert_eq!(mine[0]["status"], "active");
    }
    let missing = app.get("/v1/jobs/job_nothing").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

async fn make_default_moves_the_default_in_one_transaction(app: TestApp) {
    let acc = app.account("Acme").await;
    let old = app
        .active_entitlement(&acc, json!({ "is_default": true }))
        .await;
    let new = app.active_entitlement(&acc, json!({})).await;
    let moved = app
        .post(&format!("/v1/entitlements/{new}/make-default"), json!({}))
        .await;
    assert_eq!(moved.status, StatusCode::OK, "{:?}", moved.body);
    assert_eq!(moved.body["is_default"], true);
    let was = app.get(&format!("/v1/entitlements/{old}")).await;
    assert_eq!(was.body["is_default"], false);
    let audit = app
        .get(&format!(
            "/v1/audit?target_id={new}&action=entitlement.make_default"
        ))
        .await;
    assert_eq!(
        audit.body["items"].as_array().unwrap().len(),
        1,
        "{:?}",
        audit.body
    );
    let audit = app
        .get(&format!(
            "/v1/audit?target_id={old}&action=entitlement.unset_default"
        ))
        .await;
    assert_eq!(
        audit.body["items"].as_array().unwrap().len(),
        1,
        "{:?}",
        audit.body
    );
    // Again: nothing changes, nothing more audited.
    let again = app
        .post(&format!("/v1/entitlements/{new}/make-default"), json!({}))
        .await;
    assert_eq!(again.status, StatusCode::OK);
    let audit = app.get("/v1/audit?action=entitlement.make_default").await;
    assert_eq!(audit.body["items"].as_array().unwrap().len(), 1);
    // Back to the old one.
    let back = app
        .post(&format!("/v1/entitlements/{old}/make-default"), json!({}))
        .await;
    assert_eq!(back.status, StatusCode::OK, "{:?}", back.body);
    let now = app.get(&format!("/v1/entitlements/{new}")).await;
    assert_eq!(now.body["is_default"], false);
    // A closed entitlement cannot be the default.
    app.post(&format!("/v1/entitlements/{new}/cancel"), json!({}))
        .await;
    let refused = app
        .post(&format!("/v1/entitlements/{new}/make-default"), json!({}))
        .await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    assert_eq!(refused.code(), "invalid_transition");
}

async fn who_may_do_what_with_contracts_and_templates(app: TestApp) {
    let acc = app.account("Acme").await;
    let other = app.account("Other").await;
    let ctr = contract(&app, &acc, "CTR-W", json!({})).await;
    contract(&app, &other, "CTR-O", json!({})).await;
    let tpl = app.post("/v1/entitlement-templates", gold()).await.id();
    let (manager, agent) = (app.key("manager", None).await, app.key("agent", None).await);
    let customer = app.key("customer", Some(&acc)).await;
    let body = json!({ "account_id": acc, "number": "CTR-M", "start_date": "2026-01-01", "end_date": "2026-12-31" });
    assert_eq!(
        app.post_as(&manager, "/v1/contracts", body.clone())
            .await
            .status,
        StatusCode::CREATED
    );
    assert_eq!(
        app.post_as(&agent, "/v1/contracts", body.clone())
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.post_as(&customer, "/v1/contracts", body).await.status,
        StatusCode::FORBIDDEN
    );
    let read = |key: String, path: String| {
        let app = &app;
        async move { app.call(Method::GET, &path, Some(&key), None, None).await }
    };
    assert_eq!(
        read(agent.clone(), format!("/v1/contracts/{ctr}"))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        read(customer.clone(), format!("/v1/contracts/{ctr}"))
            .await
            .status,
        StatusCode::OK
    );
    let theirs = read(customer.clone(), "/v1/contracts".into()).await;
    let numbers: Vec<&str> = theirs.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["number"].as_str().unwrap())
        .collect();
    assert_eq!(numbers, ["CTR-W", "CTR-M"]);
    assert_eq!(
        read(agent.clone(), format!("/v1/entitlement-templates/{tpl}"))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        read(customer.clone(), format!("/v1/entitlement-templates/{tpl}"))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let mut silver = gold();
    silver["name"] = json!("Silver");
    assert_eq!(
        app.post_as(&agent, "/v1/entitlement-templates", silver.clone())
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.post_as(&manager, "/v1/entitlement-templates", silver)
            .await
            .status,
        StatusCode::CREATED
    );
    assert_eq!(
        app.post_as(&agent, &format!("/v1/contracts/{ctr}/suspend"), json!({}))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
}
