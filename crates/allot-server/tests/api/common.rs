//! `spawn_app()`: a real server on port 0 over a fresh database, with a
//! manual clock the test can move.

use std::sync::Arc;

use allot_server::auth::create_key;
use allot_server::{Config, Running};
use allot_store::model::Role;
use allot_store::{Clock, ManualClock};
use chrono::{TimeZone, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct TestApp {
    pub url: String,
    pub admin: String,
    pub clock: ManualClock,
    pub http: reqwest::Client,
    pub running: Running,
    _dir: tempfile::TempDir,
    /// Which database it runs on (a test may start a second app on the same kind).
    pub backend: Backend,
    /// Its settings (`second_instance` starts another server with them).
    pub config: Config,
}

/// PostgreSQL tests reach here only when they must run (see
/// `on_both_backends!`): without a server named, that is a failure.
pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

/// `spawn_app` with settings of the test's own (`configure` edits them:
/// time zone, alert delivery, …).
pub async fn spawn_app_with(backend: Backend, configure: impl FnOnce(&mut Config)) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = match backend {
        Backend::Sqlite => format!("sqlite://{}", dir.path().join("allot.db").display()),
        Backend::Postgres => {
            let admin_url = allot_store_conformance::postgres_admin_url();
            allot_store_postgres::create_fresh_database(&admin_url)
                .await
                .expect("fresh PostgreSQL database")
        }
    };
    let mut config = Config {
        db,
        listen: "127.0.0.1:0".into(),
        pg_pool_size: 8,
        job_interval_seconds: 3600,
        ..Config::default()
    };
    configure(&mut config);
    let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 6, 15, 12, 0, 0).unwrap());
    let store = allot_server::open_store(&config).await.expect("open store");
    store.migrate().await.expect("migrate");
    let (_, admin) = create_key(
        store.as_ref(),
        Role::Admin,
        None,
        None,
        clock.now(),
        &allot_server::auth::operator(),
    )
    .await
    .expect("admin key");
    let shared: Arc<dyn Clock> = Arc::new(clock.clone());
    let running = allot_server::start(&config, store, shared)
        .await
        .expect("start");
    TestApp {
        url: running.url(),
        admin,
        clock,
        http: reqwest::Client::new(),
        running,
        _dir: dir,
        backend,
        config,
    }
}

/// A response: status, body, and the replay header.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub body: Value,
    pub replayed: bool,
}

impl Answer {
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    pub fn id(&self) -> String {
        self.body["id"].as_str().expect("id in body").to_string()
    }
}

impl TestApp {
    /// Another server on this app's database, as a second process would
    /// be, with settings of its own (`configure`); the same admin key and clock.
    pub async fn second_instance(&self, configure: impl FnOnce(&mut Config)) -> TestApp {
        let mut config = self.config.clone();
        configure(&mut config);
        let store = allot_server::open_store(&config).await.expect("open store");
        let shared: Arc<dyn Clock> = Arc::new(self.clock.clone());
        let running = allot_server::start(&config, store, shared)
            .await
            .expect("start");
        TestApp {
            url: running.url(),
            admin: self.admin.clone(),
            clock: self.clock.clone(),
            http: reqwest::Client::new(),
            running,
            _dir: tempfile::tempdir().expect("temp dir"),
            backend: self.backend,
            config,
        }
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
        idem: Option<&str>,
    ) -> Answer {
        let mut req = self.http.request(method, format!("{}{path}", self.url));
        if let Some(key) = key {
            req = req.bearer_auth(key);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        if let Some(k) = idem {
            req = req.header("Idempotency-Key", k);
        }
        let response = req.send().await.expect("request");
        let status = response.status();
        let replayed = response.headers().get("idempotent-replayed").is_some();
        let text = response.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Answer {
            status,
            body,
            replayed,
        }
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.call(Method::GET, path, Some(&self.admin), None, None)
            .await
    }

    pub async fn post(&self, path: &str, body: Value) -> Answer {
        self.call(Method::POST, path, Some(&self.admin), Some(body), None)
            .await
    }

    pub async fn post_as(&self, key: &str, path: &str, body: Value) -> Answer {
        self.call(Method::POST, path, Some(key), Some(body), None)
            .await
    }

    pub async fn account(&self, name: &str) -> String {
        let a = self.post("/v1/accounts", json!({ "name": name })).await;
        assert_eq!(a.status, StatusCode::CREATED, "{:?}", a.body);
        a.id()
    }

    pub async fn key(&self, role: &str, account: Option<&str>) -> String {
        let a = self
            .post(
                "/v1/api-keys",
                json!({ "role": role, "account_id": account }),
            )
            .await;
        assert_eq!(a.status, StatusCode::CREATED, "{:?}", a.body);
        a.body["secret"].as_str().unwrap().to_string()
    }

    /// An entitlement over the whole of 2026, with `extra` fields merged in.
    pub async fn entitlement(&self, account: &str, extra: Value) -> String {
        let mut body = json!({
            "account_id": account, "name": "Support", "unit": "cases", "total": 10, "restrict": true,
            "decrement_on": "creation", "start_date": "2026-01-01", "end_date": "2026-12-31"
        });
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        let a = self.post("/v1/entitlements", body).await;
        assert_eq!(a.status, StatusCode::CREATED, "{:?}", a.body);
        a.id()
    }

    pub async fn active_entitlement(&self, account: &str, extra: Value) -> String {
        let id = self.entitlement(account, extra).await;
        let a = self
            .post(&format!("/v1/entitlements/{id}/activate"), json!({}))
            .await;
        assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
        id
    }

    pub async fn use_(&self, ent: &str, quantity: Value) -> Answer {
        self.post(
            &format!("/v1/entitlements/{ent}/usage"),
            json!({ "quantity": quantity }),
        )
        .await
    }

    pub async fn balance(&self, ent: &str) -> Value {
        let a = self.get(&format!("/v1/entitlements/{ent}/balance")).await;
        assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
        a.body
    }

    /// used == sum(ledger of the current period), read through the API.
    pub async fn assert_ledger_matches(&self, ent: &str) {
        let balance = self.balance(ent).await;
        let period = balance["period"]["index"].as_i64().unwrap();
        let mut cursor: Option<String> = None;
        let mut sum_milli: i64 = 0;
        loop {
            let path = match &cursor {
                Some(c) => format!("/v1/entitlements/{ent}/usage?limit=1000&cursor={c}"),
                None => format!("/v1/entitlements/{ent}/usage?limit=1000"),
            };
            let page = self.get(&path).await;
            for e in page.body["items"].as_array().unwrap() {
                if e["period_index"].as_i64() == Some(period) {
                    sum_milli += (e["quantity"].as_f64().unwrap() * 1000.0).round() as i64;
                }
            }
            match page.body["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => break,
            }
        }
        let used_milli = (balance["used"].as_f64().unwrap() * 1000.0).round() as i64;
        assert_eq!(
            used_milli, sum_milli,
            "used must equal the sum of the ledger for {ent}"
        );
    }
}

/// Runs each listed test on SQLite and on PostgreSQL. The PostgreSQL half
/// is `postgres_test!`: reported ignored when the build saw no
/// `ALLOT_TEST_DATABASE_URL`, failing without a server under `CI=true`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let app = $crate::common::spawn_app($crate::common::Backend::Sqlite).await;
                    super::$name(app).await;
                }
            )*
        }
        mod postgres {
            allot_store_conformance::postgres_test! {
                $(
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn $name() {
                        let app = $crate::common::spawn_app($crate::common::Backend::Postgres).await;
                        super::$name(app).await;
                    }
                )*
            }
        }
    };
}
