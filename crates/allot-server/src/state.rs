//! What every handler shares.

use std::sync::Arc;

use allot_store::{Clock, Store, WritePath};

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub writes: WritePath,
    pub clock: Arc<dyn Clock>,
    /// API keys resolved recently (`auth::KeyCache`).
    pub keys: Arc<crate::auth::KeyCache>,
    /// When the scheduler sends `entitlement.expiring_soon`.
    pub expiring_soon: Arc<allot_core::schedule::ExpiringSoon>,
    pub alerts: Arc<crate::config::AlertSettings>,
    /// Installations not seen for this many days stop counting.
    pub install_stale_days: u32,
    /// Seconds between scheduled reconciliations.
    pub reconcile_every_seconds: u64,
    /// Held by a pass of the jobs (`jobs::run_once`): a pass started by hand
    /// (a test, an operator's command) waits for the timer's pass instead of
    /// running beside it and returning while that one still holds the rows.
    pub jobs_running: Arc<tokio::sync::Mutex<()>>,
}
