//! Each page's `Server-Timing` header: the time the server spent on it and
//! how many calls it made (to the API's handlers in process, and to the
//! store directly). The `dashboard` bench scenario reads the time; the
//! tests read the count, which must not grow with the data.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Instant;

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;

/// The calls one page made.
#[derive(Clone, Default)]
pub struct Calls(Arc<AtomicU32>);

impl Calls {
    pub fn count(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    fn made(&self) -> u32 {
        self.0.load(Ordering::Relaxed)
    }
}

/// `Server-Timing: page;dur=<ms>, calls;desc="<n>"`.
pub async fn server_timing(mut req: Request, next: Next) -> Response {
    let began = Instant::now();
    let calls = Calls::default();
    req.extensions_mut().insert(calls.clone());
    let mut response = next.run(req).await;
    let ms = began.elapsed().as_secs_f64() * 1000.0;
    let value = format!("page;dur={ms:.2}, calls;desc=\"{}\"", calls.made());
    if let Ok(v) = HeaderValue::from_str(&value) {
        response.headers_mut().insert("server-timing", v);
    }
    response
}
