//! Allot's HTTP service: the API, authentication, the OpenAPI document,
//! metrics and background jobs, over any `allot_store::Store`.
#![forbid(unsafe_code)]

pub mod alerts;
pub mod app;
pub mod auth;
pub mod config;
pub mod connections;
pub mod contracts;
pub mod csv_response;
pub mod dashboard;
pub mod error;
pub mod export;
pub mod extract;
pub mod idempotency;
pub mod imports;
pub mod inputs;
pub mod jobs;
pub mod openapi;
pub mod people;
pub mod report_lane;
pub mod report_rows;
pub mod reporting;
pub mod request_id;
pub mod routes;
pub mod shed;
pub mod software;
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

/// How long a graceful stop waits for the requests in flight before it
/// closes their connections; the write path's queue is drained either way.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(8);

/// A server listening and serving.
pub struct Running {
    pub addr: SocketAddr,
    pub state: AppState,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    jobs: tokio::task::JoinHandle<()>,
    /// The alert delivery worker (`alerts::worker`).
    deliveries: tokio::task::JoinHandle<()>,
    /// Set to `true` to stop accepting and wind down.
    stop: tokio::sync::watch::Sender<bool>,
}

impl Running {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Waits until the server stops on its own (an accept error).
    pub async fn serving(&mut self) -> std::io::Result<()> {
        match (&mut self.server).await {
            Ok(result) => result,
            Err(e) => Err(std::io::Error::other(e)),
        }
    }

    /// Graceful stop, in order: stop accepting; let the requests in flight
    /// finish (at most `grace`), which includes their write-path batches;
    /// stop the jobs between passes; drain the write path; close the
    /// database (SQLite: connections closed, WAL checkpointed; PostgreSQL:
    /// pool closed). Returns what the stop found.
    pub async fn shutdown(self, grace: Duration) -> Stopped {
        let Running {
            state,
            mut server,
            jobs,
            deliveries,
            stop,
            ..
        } = self;
        stop.send_replace(true);
        let requests_finished = match tokio::time::timeout(grace, &mut server).await {
            Ok(Ok(Ok(()))) => true,
            Ok(Ok(Err(e))) => {
                tracing::error!(error = %e, "the server stopped with an error");
                true
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, "the server task failed");
                true
            }
            Err(_) => {
                tracing::warn!(
                    ?grace,
                    "requests still in flight after the grace period; closing their connections"
                );
                server.abort();
                let _ = server.await;
                false
            }
        };
        if let Err(e) = jobs.await {
            tracing::error!(error = %e, "the jobs task failed");
        }
        if let Err(e) = deliveries.await {
            tracing::error!(error = %e, "the delivery worker failed");
        }
        state.writes.close().await;
        let AppState { store, writes, .. } = state;
        drop(writes);
        let store_closed = Arc::strong_count(&store) == 1;
        if !store_closed {
            tracing::warn!("the database is still in use; it closes at exit");
        }
        // SQLite's close joins its writer thread: off the async workers.
        let _ = tokio::task::spawn_blocking(move || drop(store)).await;
        Stopped {
            requests_finished,
            store_closed,
        }
    }
}

/// What a graceful stop found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stopped {
    /// Every request in flight was answered within the grace period.
    pub requests_finished: bool,
    /// Nothing else held the database: it was closed before returning.
    pub store_closed: bool,
}

/// Migrates, starts the write path and the jobs, binds and serves.
pub async fn start(
    config: &Config,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
) -> start_error::Result<Running> {
    telemetry::install();
    let zone = config
        .zone()
        .map_err(|e| start_error::StartError::Setting(e.to_string()))?;
    let expiring_soon = config
        .expiring_soon()
        .map_err(|e| start_error::StartError::Setting(e.to_string()))?;
    let clock: Arc<dyn Clock> = Arc::new(allot_store::ZonedClock::new(clock, zone));
    store.migrate().await?;
    let writers = config
        .writers
        .unwrap_or(if config.is_postgres() { 4 } else { 1 });
    let write_config = WritePathConfig {
        max_batch: config.max_batch.max(1),
        writers,
        queue: config.write_queue.max(1),
        max_queue_delay: (config.write_queue_delay_ms > 0)
            .then(|| Duration::from_millis(config.write_queue_delay_ms)),
    };
    let writes = WritePath::start(store.clone(), clock.clone(), write_config);
    let state = AppState {
        store,
        writes,
        clock,
        keys: Arc::new(auth::KeyCache::new(Duration::from_millis(
            config.key_cache_ms,
        ))),
        expiring_soon: Arc::new(expiring_soon),
        alerts: Arc::new(config.alerts.clone()),
        install_stale_days: config.install_stale_days,
        reconcile_every_seconds: config.reconcile_every_seconds,
        jobs_running: Arc::default(),
    };
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let deliveries = alerts::worker::spawn(state.clone(), &config.alerts, stopped.clone())
        .map_err(start_error::StartError::Alerts)?;
    let listener = tokio::net::TcpListener::bind(&config.listen).await?;
    let addr = listener.local_addr()?;
    let listener = connections::Limited::new(
        listener,
        config.max_connections,
        (config.idle_timeout_secs > 0).then(|| Duration::from_secs(config.idle_timeout_secs)),
    );
    let limit = if config.adaptive_limit {
        shed::Limit::adaptive(config.min_requests, config.max_requests)
    } else {
        shed::Limit::fixed(config.max_requests)
    };
    let app =
        app::router(state.clone()).layer(axum::middleware::from_fn_with_state(limit, shed::limit));
    let mut until_stopped = stopped.clone();
    let server = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<connections::Admission>(),
        )
        .with_graceful_shutdown(async move {
            let _ = until_stopped.wait_for(|stop| *stop).await;
        })
        .await
    });
    let jobs = jobs::spawn(
        state.clone(),
        Duration::from_secs(config.job_interval_seconds.max(1)),
        stopped,
    );
    Ok(Running {
        addr,
        state,
        server,
        jobs,
        deliveries,
        stop,
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
        #[error("invalid setting: {0}")]
        Setting(String),
        #[error("alert settings: {0}")]
        Alerts(String),
    }

    pub type Result<T> = std::result::Result<T, StartError>;
}
