//! Reports on their own lane: on SQLite, every `/v1/reports/…` request runs on one
//! dedicated thread (a single-threaded runtime, started once per process),
//! at a lower OS priority (nice `REPORT_NICE`), and so do the SQLite reads
//! it makes (the blocking threads that runtime starts inherit the
//! priority). Reports take no lock a write waits on, but on a small
//! machine a report loop would take the CPU the writes need: on the lane
//! reports use at most one thread, and yield it to writes when both want
//! it. What a report answers is unchanged.

use std::sync::OnceLock;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use thread_priority::{set_current_thread_priority, ThreadPriority, ThreadPriorityValue};
use tokio::runtime::{Builder, Handle};
use tokio::task::JoinHandle;

use crate::error::ApiError;
use crate::state::AppState;

/// The nice value of the lane's thread: a tenth of the CPU share of a
/// default thread when both are busy.
pub const REPORT_NICE: u32 = 10;

/// The lane's runtime, started with the first report; `None` when no
/// thread could be started (reports then run where they are asked).
fn lane() -> Option<&'static Handle> {
    static LANE: OnceLock<Option<Handle>> = OnceLock::new();
    LANE.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        let started = std::thread::Builder::new()
            .name("allot-reports".into())
            .spawn(move || {
                if let Err(e) = lower_priority() {
                    tracing::warn!(error = %e, "reports run at the default priority");
                }
                match Builder::new_current_thread().enable_all().build() {
                    Ok(runtime) => {
                        let _ = tx.send(Some(runtime.handle().clone()));
                        runtime.block_on(std::future::pending::<()>());
                    }
                    Err(_) => {
                        let _ = tx.send(None);
                    }
                }
            });
        started.ok().and_then(|_| rx.recv().ok().flatten())
    })
    .as_ref()
}

/// Nice `REPORT_NICE` for the calling thread. A normal thread's priority
/// is its nice value: the crate maps 0–99 onto nice 20 down to -20
/// (`nice = ⌊40 × (1 − p/99)⌋ − 20`), so p = ⌈(19 − nice) × 99 / 39⌉.
fn lower_priority() -> Result<(), String> {
    let value = ((19 - REPORT_NICE) * 99).div_ceil(39) as u8;
    let priority = ThreadPriorityValue::try_from(value).map_err(|e| e.to_string())?;
    set_current_thread_priority(ThreadPriority::Crossplatform(priority))
        .map_err(|e| format!("{e:?}"))
}

/// Aborts the lane's task when the request is dropped (the client left).
struct Abort(JoinHandle<Response>);

impl Drop for Abort {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The middleware: the rest of the request runs on the lane, on SQLite.
/// A PostgreSQL connection is driven by the runtime that opened it: one
/// opened by a report would serve writes from the lane, so there reports
/// stay where they are (their queries run in the database's processes).
pub async fn on_lane(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let lane = match state.store.backend() {
        "sqlite" => lane(),
        _ => None,
    };
    let Some(lane) = lane else {
        return next.run(req).await;
    };
    let mut task = Abort(lane.spawn(next.run(req)));
    match (&mut task.0).await {
        Ok(response) => response,
        Err(e) => ApiError::Internal(format!("report task: {e}")).into_response(),
    }
}
