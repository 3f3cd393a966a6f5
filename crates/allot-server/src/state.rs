//! What every handler shares.

use std::sync::Arc;

use allot_store::{Clock, Store, WritePath};

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub writes: WritePath,
    pub clock: Arc<dyn Clock>,
    pub alerts: Arc<crate::config::AlertSettings>,
}
