//! `allot demo`: the service on a fresh embedded database with demo data,
//! created through the service's own API.

use std::sync::Arc;

use allot_server::auth::create_key;
use allot_store::model::Role;
use allot_store::{Clock, SystemClock};
use anyhow::Context;
use chrono::{Duration, NaiveDate};
use serde_json::{json, Value};

use crate::progress::Progress;
use crate::settings::ConfigArgs;

const DEMO_DB: &str = "sqlite://./allot-demo.db";

/// What `populate` creates: 4 accounts, a contact, a product, 8 entitlements.
const DEMO_RECORDS: u64 = 21;

pub async fn run(settings: &ConfigArgs) -> anyhow::Result<()> {
    let mut config = settings.resolve()?;
    if settings.db.is_none() {
        config.db = DEMO_DB.into();
    }
    anyhow::ensure!(
        !config.is_postgres(),
        "the demo runs on the embedded SQLite database"
    );
    let path = config.db.trim_start_matches("sqlite://").to_string();
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{path}{suffix}"));
    }
    let store = allot_server::open_store(&config)
        .await
        .context("opening the demo database")?;
    store.migrate().await?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let (_, secret) = create_key(
        store.as_ref(),
        Role::Admin,
        None,
        Some("demo admin".into()),
        clock.now(),
        &allot_server::auth::operator(),
    )
    .await?;
    let running = allot_server::start(&config, store, clock.clone()).await?;
    let url = running.url();
    let summary = populate(&url, &secret, clock.today())
        .await
        .context("creating demo data")?;
    println!("Allot demo is running at {url}");
    println!("Dashboard: open {url}/ and sign in with the admin key printed below");
    println!("Database: {}", config.db);
    println!("{summary}");
    println!("Try: curl -H 'Authorization: Bearer {secret}' {url}/v1/entitlements");
    println!("  or: ALLOT_URL={url} ALLOT_KEY={secret} allot entitlements list");
    println!("Admin key (shown once):");
    println!("{secret}");
    crate::wait_for_shutdown(running).await
}

struct Api {
    http: reqwest::Client,
    url: String,
    key: String,
    progress: Progress,
}

impl Api {
    async fn post(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        let response = self
            .http
            .post(format!("{}{path}", self.url))
            .bearer_auth(&self.key)
            .json(&body)
            .send()
            .await?;
        let status = response.status();
        let body: Value = response.json().await?;
        anyhow::ensure!(status.is_success(), "POST {path} answered {status}: {body}");
        Ok(body)
    }

    /// Creates one record of the demo.
    async fn id(&self, path: &str, body: Value) -> anyhow::Result<String> {
        let id = self.post(path, body).await?["id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        self.progress.inc(1);
        Ok(id)
    }

    async fn entitlement(
        &self,
        body: Value,
        activate: bool,
        uses: &[f64],
    ) -> anyhow::Result<String> {
        let id = self.id("/v1/entitlements", body).await?;
        if activate {
            self.post(&format!("/v1/entitlements/{id}/activate"), json!({}))
                .await?;
            for q in uses {
                self.post(
                    &format!("/v1/entitlements/{id}/usage"),
                    json!({ "quantity": q }),
                )
                .await?;
            }
        }
        Ok(id)
    }
}

fn date(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

async fn populate(url: &str, key: &str, today: NaiveDate) -> anyhow::Result<String> {
    let api = Api {
        http: reqwest::Client::new(),
        url: url.into(),
        key: key.into(),
        progress: Progress::new("creating demo data", Some(DEMO_RECORDS)),
    };
    let acme = api
        .id("/v1/accounts", json!({ "name": "Acme Corp" }))
        .await?;
    let berlin = api
        .id(
            "/v1/accounts",
            json!({ "name": "Acme Berlin", "parent_id": acme }),
        )
        .await?;
    let globex = api.id("/v1/accounts", json!({ "name": "Globex" })).await?;
    let initech = api.id("/v1/accounts", json!({ "name": "Initech" })).await?;
    let jane = api
        .id(
            "/v1/contacts",
            json!({ "account_id": acme, "name": "Jane Doe", "email": "jane@acme.example" }),
        )
        .await?;
    let sql = api
        .id(
            "/v1/products",
            json!({ "name": "SQL Server", "sku": "SQL-ENT" }),
        )
        .await?;
    let start = today - Duration::days(40);
    let end = start + Duration::days(364);
    let (s, e) = (date(start), date(end));
    api.entitlement(
        json!({ "account_id": acme, "name": "Premier cases (10 per quarter)", "unit": "cases", "total": 10, "period": "quarter",
                "rollover": 2, "restrict": true, "start_date": s, "end_date": e, "is_default": true, "owner": "am@allot.example",
                "alert_thresholds": [80, 100] }),
        true,
        &[1.0; 8],
    )
    .await?;
    api.entitlement(
        json!({ "account_id": acme, "name": "Support hours bundle", "unit": "hours", "total": 20, "restrict": false,
                "rounding": 0.25, "start_date": s, "end_date": e, "pooled": true,
                "channels": [{ "channel": "phone", "total": 15 }, { "channel": "email", "total": 5 }] }),
        true,
        &[2.5, 6.0, 9.75],
    )
    .await?;
    api.entitlement(
        json!({ "account_id": globex, "name": "On-site visits (4 a year)", "unit": "visits", "total": 4, "period": "year",
                "restrict": true, "start_date": s, "end_date": e, "contact_ids": [], "product_ids": [sql] }),
        true,
        &[1.0, 1.0, 1.0, 1.0],
    )
    .await?;
    api.entitlement(
        json!({ "account_id": berlin, "name": "Berlin site cases", "unit": "cases", "total": 5, "restrict": true,
                "start_date": s, "end_date": e, "contact_ids": [] }),
        true,
        &[1.0],
    )
    .await?;
    api.entitlement(
        json!({ "account_id": initech, "name": "Unlimited phone support", "unit": "cases", "unlimited": true,
                "start_date": s, "end_date": e }),
        true,
        &[1.0, 1.0],
    )
    .await?;
    api.entitlement(
        json!({ "account_id": initech, "name": "Next year's cases", "unit": "cases", "total": 12,
                "start_date": date(end + Duration::days(1)), "end_date": date(end + Duration::days(365)) }),
        true,
        &[],
    )
    .await?;
    api.entitlement(
        json!({ "account_id": globex, "name": "Last year's hours", "unit": "hours", "total": 40,
                "start_date": date(start - Duration::days(365)), "end_date": date(start - Duration::days(1)) }),
        true,
        &[],
    )
    .await?;
    api.entitlement(
        json!({ "account_id": acme, "name": "Draft: licence true-up hours", "unit": "hours", "total": 8,
                "start_date": s, "end_date": e, "contact_ids": [jane] }),
        false,
        &[],
    )
    .await?;
    software(&api, &acme, today).await?;
    assert_eq!(
        api.progress.position(),
        DEMO_RECORDS,
        "DEMO_RECORDS counts what populate creates"
    );
    api.progress.finish();
    Ok("Demo data: 4 accounts (Acme Corp with child Acme Berlin, Globex, Initech), 8 entitlements (active, near exhaustion, exhausted, unlimited, waiting, expired, draft), 3 software titles (Visio under-licensed, Office over-licensed, SQL Server 2019 covered by 2022's downgrade rights) with a reconciliation.".to_string())
}

/// A few software titles for Acme: one under-licensed, one with room to
/// spare, one covered by a newer version's downgrade rights; installations
/// seen yesterday, and a first reconciliation.
async fn software(api: &Api, acme: &str, today: NaiveDate) -> anyhow::Result<()> {
    let model = |product: &str, version: &str| json!({ "publisher": "Microsoft", "product": product, "version": version });
    let visio = api
        .id("/v1/software-models", model("Visio", "2024"))
        .await?;
    let office = api
        .id("/v1/software-models", model("Office", "2024"))
        .await?;
    let sql_2019 = api
        .id("/v1/software-models", model("SQL Server", "2019"))
        .await?;
    let sql_2022 = api
        .id("/v1/software-models", model("SQL Server", "2022"))
        .await?;
    let rights = |model: &str, metric: &str, body: Value| {
        let mut b = json!({ "software_model_id": model, "account_id": acme, "license_metric": metric,
                            "license_type": "perpetual", "unit_cost": 120, "currency": "USD" });
        for (k, v) in body.as_object().into_iter().flatten() {
            b[k] = v.clone();
        }
        b
    };
    let published = |body: Value| async move {
        let id = api.id("/v1/software-entitlements", body).await?;
        api.post(
            &format!("/v1/software-entitlements/{id}/publish"),
            json!({}),
        )
        .await?;
        anyhow::Ok(id)
    };
    published(rights(&visio, "per_user", json!({ "purchased_rights": 2 }))).await?;
    let office_rights = published(rights(
        &office,
        "per_device",
        json!({ "purchased_rights": 50, "license_type": "subscription", "subscription_period": "monthly",
                "unit_cost": 12.5, "start_date": date(today - Duration::days(10)), "end_date": date(today + Duration::days(355)) }),
    ))
    .await?;
    let sql = published(rights(
        &sql_2022,
        "per_core",
        json!({ "rights_per_pack": 2, "number_of_packs": 8, "unit_cost": 3500 }),
    ))
    .await?;
    api.post(
        &format!("/v1/software-entitlements/{sql}/downgrade-rights"),
        json!({ "software_model_id": sql_2019 }),
    )
    .await?;
    api.post(
        &format!("/v1/software-entitlements/{office_rights}/allocations"),
        json!({ "device": "laptop-01", "quantity": 1 }),
    )
    .await?;
    let seen = format!("{}T09:00:00Z", date(today - Duration::days(1)));
    let mut items = Vec::new();
    for (n, user) in ["ann", "bob", "cy", "dee", "eve"].iter().enumerate() {
        let device = format!("laptop-{:02}", n + 1);
        items.push(
            json!({ "software_model_id": visio, "device": device, "user": user, "seen_at": seen }),
        );
        items.push(
            json!({ "software_model_id": office, "device": device, "user": user, "seen_at": seen }),
        );
    }
    items.push(
        json!({ "software_model_id": sql_2022, "device": "db-01", "cores": 8, "seen_at": seen }),
    );
    items.push(
        json!({ "software_model_id": sql_2019, "device": "db-02", "cores": 4, "seen_at": seen }),
    );
    api.post("/v1/installations", json!({ "items": items }))
        .await?;
    api.post("/v1/reconciliations", json!({})).await?;
    Ok(())
}
