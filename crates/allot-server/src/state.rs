//! What every handler shares.

use std::sync::Arc;

use allot_store::{Clock, Store, WritePath};

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub writes: WritePath,
    pub clock: Arc<dyn Clock>,
    /// When the scheduler sends `entitlement.expiring_soon`.
    pub expiring_soon: Arc<allot_core::schedule::ExpiringSoon>,
    pub alerts: Arc<crate::config::AlertSettings>,
}
