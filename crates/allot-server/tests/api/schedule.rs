//! The scheduler through the API: time travel with the manual clock, the
//! job run by hand (`jobs::run_once`), twice wherever once must be enough.

use chrono::{TimeZone, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::{spawn_app_with, Backend, TestApp};
use crate::on_both_backends;

on_both_backends!(
    dates_bring_activation_notices_and_expiry_once,
    a_period_closes_at_its_boundary_with_what_was_unused,
    auto_renewal_catches_up_after_downtime_once,
);

async fn job(app: &TestApp) {
    allot_server::jobs::run_once(&app.running.state).await;
}

async fn events(app: &TestApp, ent: &str) -> Vec<Value> {
    let page = app.get(&format!("/v1/events?entitlement_id={ent}")).await;
    assert_eq!(page.status, StatusCode::OK, "{:?}", page.body);
    page.body["items"].as_array().unwrap().clone()
}

async fn kinds(app: &TestApp, ent: &str) -> Vec<String> {
    events(app, ent)
        .await
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect()
}

async fn at(app: &TestApp, y: i32, m: u32, d: u32, h: u32) {
    app.clock
        .set(Utc.with_ymd_and_hms(y, m, d, h, 0, 0).unwrap());
    job(app).await;
    job(app).await;
}

async fn dates_bring_activation_notices_and_expiry_once(app: TestApp) {
    let acc = app.account("Acme").await;
    let id = app
        .active_entitlement(
            &acc,
            json!({ "start_date": "2026-06-20", "end_date": "2026-07-10" }),
        )
        .await;
    job(&app).await;
    assert_eq!(kinds(&app, &id).await, ["entitlement.waiting"]);
    // The first day: activated, and 20 days from the end the 30-day notice.
    at(&app, 2026, 6, 20, 0).await;
    assert_eq!(
        kinds(&app, &id).await,
        [
            "entitlement.waiting",
            "entitlement.activated",
            "entitlement.expiring_soon"
        ]
    );
    assert_eq!(
        events(&app, &id).await[2]["data"],
        json!({ "days_before": 30, "days_left": 20, "end_date": "2026-07-10" })
    );
    at(&app, 2026, 7, 2, 12).await;
    assert_eq!(kinds(&app, &id).await.len(), 3);
    at(&app, 2026, 7, 3, 0).await;
    at(&app, 2026, 7, 10, 23).await;
    at(&app, 2026, 7, 11, 0).await;
    assert_eq!(
        kinds(&app, &id).await,
        [
            "entitlement.waiting",
            "entitlement.activated",
            "entitlement.expiring_soon",
            "entitlement.expiring_soon",
            "entitlement.expired"
        ]
    );
    assert_eq!(events(&app, &id).await[3]["data"]["days_before"], json!(7));
    // The expiry reports the term's last period: nothing used, 10 unused.
    assert_eq!(
        events(&app, &id).await[4]["data"],
        json!({
            "from": "active", "to": "expired", "actor": "system",
            "last_period": {
                "period": { "index": 0, "start": "2026-06-20", "end": "2026-07-10" },
                "total": 10, "carried_in": 0, "used": 0, "unused": 10
            }
        })
    );
    let stored = app.get(&format!("/v1/entitlements/{id}")).await.body;
    assert_eq!(stored["status"], "expired");
    assert_eq!(stored["renewed_to"], Value::Null);
}

async fn a_period_closes_at_its_boundary_with_what_was_unused(app: TestApp) {
    let acc = app.account("Acme").await;
    let id = app
        .active_entitlement(
            &acc,
            json!({ "total": 10, "period": "quarter", "rollover": 2, "start_date": "2026-04-01" }),
        )
        .await;
    assert_eq!(app.use_(&id, json!(3)).await.status, StatusCode::CREATED);
    at(&app, 2026, 6, 30, 23).await;
    assert_eq!(kinds(&app, &id).await, ["entitlement.activated"]);
    // Nobody uses it on 1 July: the reset is emitted all the same, once.
    at(&app, 2026, 7, 1, 0).await;
    at(&app, 2026, 7, 2, 0).await;
    let all = events(&app, &id).await;
    assert_eq!(all.len(), 2, "{all:?}");
    assert_eq!(all[1]["kind"], "entitlement.period_reset");
    assert_eq!(
        all[1]["data"],
        json!({
            "period": { "index": 0, "start": "2026-04-01", "end": "2026-06-30" },
            "next_period": { "index": 1, "start": "2026-07-01", "end": "2026-09-30" },
            "total": 10, "carried_in": 0, "used": 3, "unused": 7, "carried_over": 2
        })
    );
    // A use after the reset finds the period rolled: no second reset.
    assert_eq!(app.use_(&id, json!(1)).await.status, StatusCode::CREATED);
    let balance = app.balance(&id).await;
    assert_eq!(
        (balance["used"].clone(), balance["carried_over"].clone()),
        (json!(1), json!(2))
    );
    assert_eq!(kinds(&app, &id).await.len(), 2);
    app.assert_ledger_matches(&id).await;
}

async fn auto_renewal_catches_up_after_downtime_once(app: TestApp) {
    let acc = app.account("Acme").await;
    let id = app
        .active_entitlement(
            &acc,
            json!({ "total": 4, "start_date": "2026-06-01", "end_date": "2026-06-30", "auto_renew": true }),
        )
        .await;
    // The server is down from 15 June to 15 August; one run catches up.
    app.clock
        .set(Utc.with_ymd_and_hms(2026, 8, 15, 9, 0, 0).unwrap());
    job(&app).await;
    let old = app.get(&format!("/v1/entitlements/{id}")).await.body;
    assert_eq!(old["status"], "expired");
    let first = old["renewed_to"].as_str().expect("renewed").to_string();
    let july = app.get(&format!("/v1/entitlements/{first}")).await.body;
    assert_eq!(
        (
            july["renewed_from"].as_str(),
            july["start_date"].as_str(),
            july["end_date"].as_str()
        ),
        (Some(id.as_str()), Some("2026-07-01"), Some("2026-07-30"))
    );
    assert_eq!(
        (july["status"].clone(), july["total"].clone()),
        (json!("expired"), json!(4))
    );
    let second = july["renewed_to"]
        .as_str()
        .expect("renewed again")
        .to_string();
    let august = app.get(&format!("/v1/entitlements/{second}")).await.body;
    assert_eq!(
        (
            august["status"].as_str(),
            august["start_date"].as_str(),
            august["auto_renew"].as_bool()
        ),
        (Some("active"), Some("2026-07-31"), Some(true))
    );
    assert_eq!(august["renewed_to"], Value::Null);
    job(&app).await;
    assert_eq!(
        kinds(&app, &id).await,
        [
            "entitlement.activated",
            "entitlement.expired",
            "entitlement.renewed"
        ]
    );
    assert_eq!(
        kinds(&app, &first).await,
        [
            "entitlement.activated",
            "entitlement.expired",
            "entitlement.renewed"
        ]
    );
    assert_eq!(
        kinds(&app, &second).await,
        ["entitlement.activated", "entitlement.expiring_soon"]
    );
    assert_eq!(
        events(&app, &id).await[2]["data"],
        json!({ "renewal_id": first, "auto_renew": true, "start_date": "2026-07-01", "end_date": "2026-07-30" })
    );
    assert_eq!(
        app.use_(&second, json!(1)).await.status,
        StatusCode::CREATED
    );
}

/// A New York organization: its days, and so its quarters, turn at local
/// midnight — 04:00 UTC in daylight time, 05:00 UTC in standard time.
async fn periods_turn_at_local_midnight(app: TestApp) {
    let acc = app.account("Acme").await;
    let id = app
        .active_entitlement(
            &acc,
            json!({ "total": 10, "period": "quarter", "start_date": "2026-01-01", "end_date": "2027-12-31" }),
        )
        .await;
    // In June the first quarter is long closed: the use emits its reset.
    assert_eq!(app.use_(&id, json!(2)).await.status, StatusCode::CREATED);
    at(&app, 2026, 7, 1, 3).await;
    let before = app.balance(&id).await;
    assert_eq!(before["period"]["end"], "2026-06-30");
    assert_eq!(
        kinds(&app, &id).await,
        ["entitlement.activated", "entitlement.period_reset"]
    );
    at(&app, 2026, 7, 1, 4).await;
    let all = events(&app, &id).await;
    assert_eq!(all.len(), 3, "{all:?}");
    assert_eq!(all[2]["data"]["period"]["end"], "2026-06-30");
    assert_eq!(all[2]["data"]["unused"], json!(8));
    assert_eq!(app.balance(&id).await["period"]["start"], "2026-07-01");
    // Daylight time ends on 1 November: the next year begins at 05:00 UTC.
    at(&app, 2027, 1, 1, 4).await;
    assert_eq!(app.balance(&id).await["period"]["end"], "2026-12-31");
    assert_eq!(kinds(&app, &id).await.len(), 4);
    at(&app, 2027, 1, 1, 5).await;
    assert_eq!(app.balance(&id).await["period"]["start"], "2027-01-01");
    let all = events(&app, &id).await;
    assert_eq!(all.len(), 5, "{all:?}");
    assert_eq!(all[4]["data"]["period"]["start"], "2026-10-01");
}

mod new_york {
    use super::*;

    async fn spawn(backend: Backend) -> TestApp {
        spawn_app_with(backend, |config| {
            config.timezone = "America/New_York".into();
            config.expiring_soon_days = String::new();
        })
        .await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_periods_turn_at_local_midnight() {
        periods_turn_at_local_midnight(spawn(Backend::Sqlite).await).await;
    }

    allot_store_conformance::postgres_test! {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn postgres_periods_turn_at_local_midnight() {
            periods_turn_at_local_midnight(spawn(Backend::Postgres).await).await;
        }
    }
}
