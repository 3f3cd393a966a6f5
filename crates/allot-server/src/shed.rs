//! Load shedding: a bounded number of requests are handled at once; one
//! more is answered 503 `overloaded` with `Retry-After` at once, before any
//! work (no authentication, no database). Health, readiness and metrics are
//! never shed, so probes see an overloaded instance as alive. With the
//! write path's bounded queue (`WritePathConfig::queue`), the body limit
//! and the connection limit (`connections`), this bounds the memory the
//! service can be made to hold. A request on a connection beyond the
//! connection limit is shed too, and its connection closed.
//!
//! The bound is `ALLOT_MAX_REQUESTS`; with `ALLOT_ADAPTIVE_LIMIT=true` it
//! adapts (`adaptive`): it shrinks while the answered requests' latency
//! rises above what the service answers unloaded, down to
//! `ALLOT_MIN_REQUESTS`, and grows back when it falls. Off by default: group
//! commit's latency grows with the batch, which the rule reads as queueing,
//! and it shed 64 clients' normal use (RELIABILITY.md, overload).

mod adaptive;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

pub use adaptive::AdaptiveLimit;

use crate::connections::Admission;
use crate::error::ApiError;

/// Requests handled at once at most by default. By Little's law an
/// accepted request waits about `max_requests / throughput`: at the 11,000
/// usage requests a second one SQLite instance answered on 2 cores
/// (BENCHMARKS.md, `overload`), 128 is about 12 ms, the p99 the service has
/// at capacity anyway; 1,024 let an accepted request wait behind a thousand
/// others. Still twice the 64 clients the heaviest suites run at once.
pub const DEFAULT_MAX_REQUESTS: usize = 128;

/// The least the adaptive limit shrinks to by default: enough requests for
/// the write path to batch (one commit for several) when overloaded. At 16,
/// 32 clients in a closed loop (the bench's capacity phase) were shed down
/// to a third of the throughput they get unshed: group commit makes a
/// batch's latency grow with its size, which the rule reads as queueing.
pub const DEFAULT_MIN_REQUESTS: usize = 32;

/// The requests in flight and their limit.
#[derive(Clone)]
pub struct Limit(Arc<Inner>);

struct Inner {
    in_flight: AtomicUsize,
    limit: AtomicUsize,
    /// `None`: the limit stays where it started.
    adaptive: Option<Mutex<AdaptiveLimit>>,
}

impl Limit {
    /// At most `max_requests` at once, always.
    pub fn fixed(max_requests: usize) -> Limit {
        Limit::with(max_requests.max(1), None)
    }

    /// Between `min_requests` and `max_requests` at once, on latency.
    pub fn adaptive(min_requests: usize, max_requests: usize) -> Limit {
        let rule = AdaptiveLimit::new(min_requests, max_requests);
        Limit::with(rule.limit(), Some(Mutex::new(rule)))
    }

    fn with(limit: usize, adaptive: Option<Mutex<AdaptiveLimit>>) -> Limit {
        metrics::gauge!("allot_request_limit").set(limit as f64);
        Limit(Arc::new(Inner {
            in_flight: AtomicUsize::new(0),
            limit: AtomicUsize::new(limit),
            adaptive,
        }))
    }

    /// A place among the requests in flight, or `None` at the limit.
    fn admit(&self) -> Option<Admitted> {
        let before = self.0.in_flight.fetch_add(1, Ordering::AcqRel);
        // Counted from here: dropped unadmitted, it gives its place back.
        let admitted = Admitted {
            limit: self.0.clone(),
            since: Instant::now(),
        };
        (before < self.0.limit.load(Ordering::Acquire)).then_some(admitted)
    }
}

/// An admitted request; its place is given back however it ends.
struct Admitted {
    limit: Arc<Inner>,
    since: Instant,
}

impl Admitted {
    /// The request was answered: its latency teaches the adaptive limit.
    fn answered(self) {
        let Some(rule) = &self.limit.adaptive else {
            return;
        };
        let took = u64::try_from(self.since.elapsed().as_micros()).unwrap_or(u64::MAX);
        let Ok(mut rule) = rule.lock() else {
            return;
        };
        let limit = rule.record(took);
        if self.limit.limit.swap(limit, Ordering::AcqRel) != limit {
            metrics::gauge!("allot_request_limit").set(limit as f64);
        }
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.limit.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Paths a probe or a scraper must always reach.
fn exempt(path: &str) -> bool {
    matches!(path, "/healthz" | "/readyz" | "/metrics")
}

/// The middleware: a place per request, held until its answer is made.
pub async fn limit(State(limit): State<Limit>, req: Request, next: Next) -> Response {
    let connection = req.extensions().get::<ConnectInfo<Admission>>();
    let over_limit = connection.is_some_and(|info| info.0.over_limit);
    let _busy = connection.map(|info| info.0.busy());
    if over_limit {
        return close(answer_and_close(req, next).await);
    }
    if exempt(req.uri().path()) {
        return next.run(req).await;
    }
    match limit.admit() {
        Some(admitted) => {
            let response = next.run(req).await;
            admitted.answered();
            response
        }
        None => {
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
