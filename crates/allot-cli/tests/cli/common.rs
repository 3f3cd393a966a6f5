//! A real server on a fresh database of either backend, and the real
//! `allot` binary run against it the way a person or a script would.

use std::sync::Arc;

use allot_server::auth::create_key;
use allot_server::{Config, Running};
use allot_store::model::Role;
use allot_store::{Clock, ManualClock};
use chrono::{TimeZone, Utc};
use reqwest::Method;
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// One test's service: `allot_server::start` on port 0 over a fresh
/// database, its clock held at 2026-06-15 12:00 UTC so what the commands
/// print does not depend on the day the tests run.
pub struct Service {
    pub url: String,
    /// The bootstrap admin key.
    pub admin: String,
    http: reqwest::Client,
    /// Where `allot login` keeps its file for this test's commands.
    pub config_dir: tempfile::TempDir,
    _running: Running,
    _dir: tempfile::TempDir,
}

/// A fresh, empty database: its URL, and a folder for the test's files
/// (the SQLite database itself is one of them).
pub struct Database {
    pub url: String,
    pub dir: tempfile::TempDir,
}

pub async fn fresh_database(backend: Backend) -> Database {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = match backend {
        Backend::Sqlite => format!("sqlite://{}", dir.path().join("allot.db").display()),
        Backend::Postgres => {
            let admin_url = allot_store_conformance::postgres_admin_url();
            allot_store_postgres::create_fresh_database(&admin_url)
                .await
                .expect("fresh PostgreSQL database")
        }
    };
    Database { url, dir }
}

pub async fn serve(backend: Backend) -> Service {
    let Database { url: db, dir } = fresh_database(backend).await;
    let config = Config {
        db: db.clone(),
        listen: "127.0.0.1:0".into(),
        pg_pool_size: 4,
        job_interval_seconds: 3600,
        ..Config::default()
    };
    let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 6, 15, 12, 0, 0).unwrap());
    let store = allot_server::open_store(&config).await.expect("open store");
    store.migrate().await.expect("migrate");
    let (_, admin) = create_key(
        store.as_ref(),
        Role::Admin,
        None,
        Some("bootstrap".into()),
        clock.now(),
        &allot_server::auth::operator(),
    )
    .await
    .expect("admin key");
    let shared: Arc<dyn Clock> = Arc::new(clock);
    let running = allot_server::start(&config, store, shared)
        .await
        .expect("start");
    Service {
        url: running.url(),
        admin,
        http: reqwest::Client::new(),
        config_dir: tempfile::tempdir().expect("temp dir"),
        _running: running,
        _dir: dir,
    }
}

/// What one run of `allot` did.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Succeeded, said nothing on standard error; its standard output.
    pub fn ok(self, args: &[&str]) -> String {
        assert_eq!(self.code, Some(0), "allot {args:?}: {self:?}");
        assert!(self.stderr.is_empty(), "allot {args:?}: {}", self.stderr);
        self.stdout
    }

    /// Succeeded; its standard output as JSON.
    pub fn json(self, args: &[&str]) -> Value {
        let out = self.ok(args);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("allot {args:?}: {e}: {out}"))
    }

    /// Failed as documented: exit `code`, nothing on standard output, one
    /// `error:` line first, never a backtrace or a panic.
    pub fn failed(&self, args: &[&str], code: i32) {
        assert_eq!(self.code, Some(code), "allot {args:?}: {self:?}");
        assert!(self.stdout.is_empty(), "allot {args:?}: {self:?}");
        assert!(
            self.stderr.starts_with("error: "),
            "allot {args:?}: {self:?}"
        );
        assert_no_backtrace(&self.stderr);
    }
}

pub fn assert_no_backtrace(text: &str) {
    for trace in [
        "backtrace",
        "panicked",
        "stack",
        "RUST_BACKTRACE",
        "at src/",
    ] {
        assert!(!text.contains(trace), "{trace:?} in {text}");
    }
}

/// `allot ARGS` with none of the test environment's `ALLOT_*` settings, a
/// config directory of its own, `env` added, and backtraces asked for (as
/// many developer machines ask): the CLI must print none.
pub async fn allot(args: &[&str], env: &[(&str, &str)], config_dir: &std::path::Path) -> Run {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_allot"));
    command.args(args);
    for (name, _) in std::env::vars() {
        if name.starts_with("ALLOT_") {
            command.env_remove(name);
        }
    }
    command
        .env("ALLOT_CONFIG_DIR", config_dir)
        .env("RUST_BACKTRACE", "full")
        .env("RUST_LIB_BACKTRACE", "1")
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::null());
    let out = command.output().await.expect("run allot");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

impl Service {
    /// `allot ARGS` against this service with `key` (`ALLOT_URL`, `ALLOT_KEY`).
    pub async fn allot_as(&self, key: &str, args: &[&str]) -> Run {
        let env = [("ALLOT_URL", self.url.as_str()), ("ALLOT_KEY", key)];
        allot(args, &env, self.config_dir.path()).await
    }

    /// `allot ARGS` as the admin.
    pub async fn allot(&self, args: &[&str]) -> Run {
        self.allot_as(&self.admin, args).await
    }

    /// The API itself, as the admin: status and body.
    pub async fn api(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(&self.admin);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// `GET path` as the admin; must answer 200.
    pub async fn get(&self, path: &str) -> Value {
        let (status, body) = self.api(Method::GET, path, None).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    /// A key of `role` made over the API.
    pub async fn key(&self, role: &str, account: Option<&str>) -> String {
        let body = serde_json::json!({ "role": role, "account_id": account });
        let (status, created) = self.api(Method::POST, "/v1/api-keys", Some(body)).await;
        assert_eq!(status, 201, "{created}");
        created["secret"].as_str().unwrap().to_string()
    }
}

/// Every test body runs on SQLite and on PostgreSQL (reported ignored when
/// the build saw no `ALLOT_TEST_DATABASE_URL`, failing without a server
/// under `CI=true`), given what `setup(backend)` makes: `serve` (a running
/// `Service`, the default) or `fresh_database`.
macro_rules! on_both_backends {
    ($setup:ident => $($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let given = $crate::common::$setup($crate::common::Backend::Sqlite).await;
                    super::$name(given).await;
                }
            )*
        }
        mod postgres {
            allot_store_conformance::postgres_test! {
                $(
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn $name() {
                        let given = $crate::common::$setup($crate::common::Backend::Postgres).await;
                        super::$name(given).await;
                    }
                )*
            }
        }
    };
    ($($name:ident),* $(,)?) => {
        $crate::common::on_both_backends!(serve => $($name),*);
    };
}
pub(crate) use on_both_backends;
