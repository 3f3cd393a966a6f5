//! Load shedding: at most `max_requests` requests are handled at once; one
//! more is answered 503 `overloaded` with `Retry-After` at once, before any
//! work (no authentication, no database). Health, readiness and metrics are
//! never shed, so probes see an overloaded instance as alive. With the
//! write path's bounded queue (`WritePathConfig::queue`), the body limit
//! and the connection limit (`connections`), this bounds the memory the
//! service can be made to hold. A request on a connection beyond the
//! connection limit is shed too, and its connection closed.

use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::Semaphore;

use crate::connections::Admission;
use crate::error::ApiError;

/// Requests handled at once by default. By Little's law an accepted
/// request waits about `max_requests / throughput`: at the 11,000 usage
/// requests a second one SQLite instance answered on 2 cores (BENCHMARKS.md,
/// `overload`), 128 is about 12 ms, the p99 the service has at capacity
/// anyway; 1,024 let an accepted request wait behind a thousand others.
/// Still twice the 64 clients the heaviest suites run at once.
pub const DEFAULT_MAX_REQUESTS: usize = 128;

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
    let over_limit = req
        .extensions()
        .get::<ConnectInfo<Admission>>()
        .is_some_and(|info| info.0.over_limit);
    if over_limit {
        return close(answer_and_close(req, next).await);
    }
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

/// On a connection beyond the limit: probes are answered, the rest shed.
async fn answer_and_close(req: Request, next: Next) -> Response {
    if exempt(req.uri().path()) {
        next.run(req).await
    } else {
        metrics::counter!("allot_requests_shed_total").increment(1);
        ApiError::Overloaded.into_response()
    }
}

/// The answer ends its connection (hyper closes it once it is written).
fn close(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
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
