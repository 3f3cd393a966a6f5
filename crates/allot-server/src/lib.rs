//! Allot's HTTP service: the API, authentication, the OpenAPI document,
//! metrics and background jobs, over any `allot_store::Store`.
#![forbid(unsafe_code)]

pub mod app;
pub mod auth;
pub mod config;
pub mod error;
pub mod extract;
pub mod idempotency;
pub mod inputs;
pub mod jobs;
pub mod openapi;
pub mod request_id;
pub mod routes;
pub mod state;
pub mod telemetry;
pub mod views;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use allot_store::{Clock, Store, StoreError, StoreResult, WritePath, WritePathConfig};
use allot_store_postgres::PostgresStore;
use allot_store_sqlite::{SqliteOptions, SqliteStore};

pub use config::Config;
pub use state::AppState;

/// Opens the backend the URL names. Does not migrate.
pub async fn open_store(config: &Config) -> StoreResult<Arc<dyn Store>> {
    if config.is_postgres() {
        Ok(Arc::new(
            PostgresStore::connect(&config.db, config.pg_pool_size).await?,
        ))
    } else {
        let synchronous = config.sqlite_synchronous.parse().map_err(|_| {
            StoreError::Backend(format!(
                "sqlite_synchronous must be normal or full, not {}",
                config.sqlite_synchronous
            ))
        })?;
        let options = SqliteOptions {
            synchronous,
            ..SqliteOptions::default()
        };
        Ok(Arc::new(SqliteStore::open(&config.db, options).await?))
    }
}

/// A server listening and serving.
pub struct Running {
    pub addr: SocketAddr,
    pub state: AppState,
    pub server: tokio::task::JoinHandle<std::io::Result<()>>,
    pub jobs: tokio::task::JoinHandle<()>,
}

impl Running {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// Migrates, starts the write path and the jobs, binds and serves.
pub async fn start(
    config: &Config,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
) -> start_error::Result<Running> {
    telemetry::install();
    store.migrate().await?;
    let writers = config
        .writers
        .unwrap_or(if config.is_postgres() { 4 } else { 1 });
    let write_config = WritePathConfig {
        max_batch: config.max_batch.max(1),
        writers,
        ..WritePathConfig::default()
    };
    let writes = WritePath::start(store.clone(), clock.clone(), write_config);
    let state = AppState {
        store,
        writes,
        clock,
    };
    let listener = tokio::net::TcpListener::bind(&config.listen).await?;
    let addr = listener.local_addr()?;
    let app = app::router(state.clone());
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let jobs = jobs::spawn(
        state.clone(),
        Duration::from_secs(config.job_interval_seconds.max(1)),
    );
    Ok(Running {
        addr,
        state,
        server,
        jobs,
    })
}

/// Start-up errors: the store's, or the listener's.
pub mod start_error {
    #[derive(Debug, thiserror::Error)]
    pub enum StartError {
        #[error(transparent)]
        Store(#[from] allot_store::StoreError),
        #[error("cannot listen: {0}")]
        Listen(#[from] std::io::Error),
    }

    pub type Result<T> = std::result::Result<T, StartError>;
}
