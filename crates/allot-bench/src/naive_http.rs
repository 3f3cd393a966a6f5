//! `naive-http`: the peer a team would write in an afternoon, run in the same
//! bench. A small axum server (a child process of `allot-bench` itself, so
//! its CPU and RSS are measured like allot's) over its own fresh database
//! with the baseline loop's schema: per request the same API-key check as
//! allot (`SHA-256` of the bearer secret looked up in `api_keys`), then the
//! loop's statements in one transaction (`UPDATE balances … cap check`,
//! `INSERT ledger`, `INSERT idempotency`), same durability, answered after
//! commit. Driven by the same load generator as allot.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::baseline_postgres::PgBaseline;
use crate::baseline_sqlite::SqliteBaseline;
use crate::cli::{Backend, Synchronous};
use crate::pg::{self, DropList};
use crate::scenarios::Layout;
use crate::verify::{BalanceRow, MILLI};

/// What the naive server's database adds to the loop's schema.
const KEYS: &str = "CREATE TABLE api_keys (
    secret_hash TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    revoked_at TEXT
)";
const KEY_CHECK_SQLITE: &str =
    "SELECT role FROM api_keys WHERE secret_hash = ?1 AND revoked_at IS NULL";
const KEY_CHECK_PG: &str =
    "SELECT role FROM api_keys WHERE secret_hash = $1 AND revoked_at IS NULL";

/// The peer's database (the loop's schema plus `api_keys`) and its secret.
pub struct NaiveHttp {
    db: NaiveDb,
    pub secret: String,
    synchronous: Synchronous,
    log: PathBuf,
}

enum NaiveDb {
    Sqlite(SqliteBaseline, PathBuf),
    Postgres(PgBaseline, String),
}

fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

impl NaiveHttp {
    pub async fn prepare(
        backend: Backend,
        layout: Layout,
        run_dir: &Path,
        synchronous: Synchronous,
        pg_admin_url: &str,
        tag: &str,
        drops: &mut DropList,
    ) -> Result<Self> {
        let secret = format!("naive_{tag}_{:016x}", rand::random::<u64>());
        let hashed = hash(&secret);
        let db = match backend {
            Backend::Sqlite => {
                let path = run_dir.join("naive-http.db");
                let (base, path) = tokio::task::spawn_blocking(move || {
                    let base = SqliteBaseline::create(&path, synchronous, &layout)?;
                    let conn = Connection::open(&path)?;
                    conn.execute_batch(KEYS)?;
                    conn.execute(
                        "INSERT INTO api_keys (secret_hash, role) VALUES (?1, 'admin')",
                        params![hashed],
                    )?;
                    Ok::<_, anyhow::Error>((base, path))
                })
                .await??;
                NaiveDb::Sqlite(base, path)
            }
            Backend::Postgres => {
                let name = format!("allot_bench_naive_{tag}");
                let url = pg::create_database(pg_admin_url, &name).await?;
                drops.push(name);
                let base = PgBaseline::create(&url, &layout).await?;
                let client = pg::connect(&url).await?;
                client.batch_execute(KEYS).await?;
                client
                    .execute(
                        "INSERT INTO api_keys (secret_hash, role) VALUES ($1, 'admin')",
                        &[&hashed],
                    )
                    .await?;
                NaiveDb::Postgres(base, url)
            }
        };
        Ok(NaiveHttp {
            db,
            secret,
            synchronous,
            log: run_dir.join(format!("naive-http-{}.log", backend.name())),
        })
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self.db, NaiveDb::Postgres(..))
    }

    fn db_url(&self) -> String {
        match &self.db {
            NaiveDb::Sqlite(_, path) => format!("sqlite://{}", path.display()),
            NaiveDb::Postgres(_, url) => url.clone(),
        }
    }

    pub async fn rows(&self) -> Result<Vec<BalanceRow>> {
        match &self.db {
            NaiveDb::Sqlite(base, _) => {
                let base = base.clone();
                tokio::task::spawn_blocking(move || base.rows()).await?
            }
            NaiveDb::Postgres(base, _) => base.rows().await,
        }
    }

    /// Starts the server (this very binary, `--naive-serve`) on a free port.
    pub async fn start(&self) -> Result<NaiveServer> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let listen = format!("127.0.0.1:{port}");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let child = Command::new(std::env::current_exe()?)
            .args([
                "--naive-serve",
                &self.db_url(),
                "--naive-listen",
                &listen,
                "--synchronous",
                self.synchronous.env_value(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .spawn()
            .context("spawning the naive-http server")?;
        let mut server = NaiveServer {
            child,
            url: format!("http://{listen}"),
        };
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = server.child.try_wait()? {
                bail!(
                    "naive-http exited during start-up ({status}); see {}",
                    self.log.display()
                );
            }
            if let Ok(r) = client.get(format!("{}/healthz", server.url)).send().await {
                if r.status().is_success() {
                    return Ok(server);
                }
            }
            if Instant::now() > deadline {
                server.stop().await;
                bail!("naive-http not ready after 30 s");
            }
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
    }
}

pub struct NaiveServer {
    child: Child,
    pub url: String,
}

impl NaiveServer {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn peak_rss_kib(&self) -> Option<u64> {
        crate::server::status_field_kib(self.pid(), "VmHWM")
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---- the server itself (runs in the child process) ----

#[derive(Clone)]
enum Pool {
    Sqlite(Arc<SqlitePool>),
    Postgres(Arc<PgPool>),
}

struct SqlitePool {
    path: PathBuf,
    synchronous: Synchronous,
    idle: Mutex<Vec<Connection>>,
}

impl SqlitePool {
    fn take(&self) -> rusqlite::Result<Connection> {
        if let Some(conn) = self.idle.lock().ok().and_then(|mut idle| idle.pop()) {
            return Ok(conn);
        }
        let conn = Connection::open(&self.path)?;
        conn.busy_timeout(Duration::from_secs(60))?;
        conn.pragma_update(None, "synchronous", self.synchronous.pragma())?;
        Ok(conn)
    }

    fn give(&self, conn: Connection) {
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(conn);
        }
    }
}

struct PgConn {
    client: tokio_postgres::Client,
    key: tokio_postgres::Statement,
    update: tokio_postgres::Statement,
    ledger: tokio_postgres::Statement,
    idempotency: tokio_postgres::Statement,
}

struct PgPool {
    url: String,
    idle: tokio::sync::Mutex<Vec<PgConn>>,
}

impl PgPool {
    async fn take(&self) -> Result<PgConn> {
        if let Some(conn) = self.idle.lock().await.pop() {
            return Ok(conn);
        }
        let client = pg::connect(&self.url).await?;
        Ok(PgConn {
            key: client.prepare(KEY_CHECK_PG).await?,
            update: client.prepare(crate::baseline_postgres::UPDATE).await?,
            ledger: client
                .prepare(crate::baseline_postgres::INSERT_LEDGER)
                .await?,
            idempotency: client
                .prepare(crate::baseline_postgres::INSERT_IDEMPOTENCY)
                .await?,
            client,
        })
    }

    async fn give(&self, conn: PgConn) {
        if !conn.client.is_closed() {
            self.idle.lock().await.push(conn);
        }
    }
}

/// `allot-bench --naive-serve DB --naive-listen ADDR`: serves until killed.
pub fn serve(db: &str, listen: &str, synchronous: Synchronous) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let pool = if let Some(path) = db.strip_prefix("sqlite://") {
            Pool::Sqlite(Arc::new(SqlitePool {
                path: PathBuf::from(path),
                synchronous,
                idle: Mutex::new(Vec::new()),
            }))
        } else {
            Pool::Postgres(Arc::new(PgPool {
                url: db.to_owned(),
                idle: tokio::sync::Mutex::new(Vec::new()),
            }))
        };
        let app = Router::new()
            .route("/healthz", get(|| async { "ok" }))
            .route("/v1/entitlements/{id}/usage", post(record))
            .with_state(pool);
        let addr: SocketAddr = listen.parse()?;
        let listener = tokio::net::TcpListener::bind(addr).await?;
        axum::serve(listener, app).await?;
        Ok(())
    })
}

#[derive(serde::Deserialize)]
struct UseBody {
    quantity: i64,
}

enum Answer {
    Used,
    Exhausted,
    Unauthorized,
}

async fn record(
    State(pool): State<Pool>,
    UrlPath(id): UrlPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let secret = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .unwrap_or_else(|| format!("{:032x}", rand::random::<u128>()));
    let Ok(input) = serde_json::from_slice::<UseBody>(&body) else {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({"error": {"code": "validation_failed"}})),
        )
            .into_response();
    };
    let quantity = input.quantity * MILLI;
    let hashed = hash(secret);
    let entitlement = id.clone();
    let answer = match pool {
        Pool::Sqlite(pool) => tokio::task::spawn_blocking(move || {
            let conn = pool.take()?;
            let answer = sqlite_use(&conn, &hashed, &id, &key, quantity);
            if answer.is_err() && !conn.is_autocommit() {
                let _ = conn.execute_batch("ROLLBACK");
            }
            pool.give(conn);
            answer.map_err(anyhow::Error::from)
        })
        .await
        .map_err(anyhow::Error::from)
        .and_then(|r| r),
        Pool::Postgres(pool) => match pool.take().await {
            Ok(mut conn) => {
                let answer = pg_use(&mut conn, &hashed, &id, &key, quantity).await;
                pool.give(conn).await;
                answer
            }
            Err(e) => Err(e),
        },
    };
    match answer {
        Ok(Answer::Used) => (
            StatusCode::CREATED,
            Json(json!({ "entitlement_id": entitlement, "quantity": quantity / MILLI })),
        )
            .into_response(),
        Ok(Answer::Exhausted) => (
            StatusCode::CONFLICT,
            Json(json!({"error": {"code": "entitlement_exhausted"}})),
        )
            .into_response(),
        Ok(Answer::Unauthorized) => (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": {"code": "unauthorized"}})),
        )
            .into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"error": {"code": "internal", "message": e.to_string()}})),
        )
            .into_response(),
    }
}

fn sqlite_use(
    conn: &Connection,
    hashed: &str,
    id: &str,
    key: &str,
    quantity: i64,
) -> rusqlite::Result<Answer> {
    let role: Option<String> = conn
        .prepare_cached(KEY_CHECK_SQLITE)?
        .query_row(params![hashed], |row| row.get(0))
        .optional()?;
    if role.is_none() {
        return Ok(Answer::Unauthorized);
    }
    let now = crate::baseline_sqlite::unix_millis();
    conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
    let changed = conn
        .prepare_cached(crate::baseline_sqlite::UPDATE)?
        .execute(params![quantity, id])?;
    if changed == 0 {
        conn.prepare_cached("ROLLBACK")?.execute([])?;
        return Ok(Answer::Exhausted);
    }
    conn.prepare_cached(crate::baseline_sqlite::INSERT_LEDGER)?
        .execute(params![id, quantity, now])?;
    conn.prepare_cached(crate::baseline_sqlite::INSERT_IDEMPOTENCY)?
        .execute(params![key, id, now])?;
    conn.prepare_cached("COMMIT")?.execute([])?;
    Ok(Answer::Used)
}

async fn pg_use(
    conn: &mut PgConn,
    hashed: &str,
    id: &str,
    key: &str,
    quantity: i64,
) -> Result<Answer> {
    if conn
        .client
        .query_opt(&conn.key, &[&hashed])
        .await?
        .is_none()
    {
        return Ok(Answer::Unauthorized);
    }
    let tx = conn.client.transaction().await?;
    if tx.execute(&conn.update, &[&quantity, &id]).await? == 0 {
        tx.rollback().await?;
        return Ok(Answer::Exhausted);
    }
    tx.execute(&conn.ledger, &[&id, &quantity]).await?;
    tx.execute(&conn.idempotency, &[&key, &id]).await?;
    tx.commit().await?;
    Ok(Answer::Used)
}
