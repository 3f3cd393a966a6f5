//! Load shedding: at most `max_requests` requests are handled at once; one
//! more is answered 503 `overloaded` with `Retry-After` at once, before any
//! work (no authentication, no database). Health, readiness and metrics are
//! never shed, so probes see an overloaded instance as alive. With the
//! write path's bounded queue (`WritePathConfig::queue`) and the body limit,
//! this bounds the memory the service can be made to hold.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::Semaphore;

use crate::error::ApiError;

/// Requests handled at once by default.
pub const DEFAULT_MAX_REQUESTS: usize = 1_024;

/// The permits of requests in flight.
#[derive(Clone)]
pub struct Limit(Arc<Semaphore>);

impl Limit {
    pub fn new(max_requests: usize) -> Limit {
        Limit(Arc::new(Semaphore::new(max_requests.max(1))))
    }
}

/// Paths a probe or a scraper must always reach.
fn exempt(path: &str) -> bool {
    matches!(path, "/healthz" | "/readyz" | "/metrics")
}

/// The middleware: a permit per request, held until its answer is made.
pub async fn limit(State(limit): State<Limit>, req: Request, next: Next) -> Response {
    if exempt(req.uri().path()) {
        return next.run(req).await;
    }
    match limit.0.clone().try_acquire_owned() {
        Ok(_permit) => next.run(req).await,
        Err(_) => {
            metrics::counter!("allot_requests_shed_total").increment(1);
            ApiError::Overloaded.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_are_never_shed() {
        assert!(exempt("/healthz"));
        assert!(exempt("/readyz"));
        assert!(exempt("/metrics"));
        assert!(!exempt("/v1/entitlements"));
    }
}
