//! `consume-batch`: closed-loop `POST /v1/usage/batch`, `USES_PER_REQUEST`
//! uses per request (ids picked like `consume-uniform`, each use with its own
//! `idempotency_key`). Every item's answer is tallied for verification; the
//! throughput reported is uses per second (latency stays per request).

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use bytes::Bytes;
use http_body_util::Full;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Method, Request, Uri};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::http_load::{kept_or_new, send, Shared, MAX_CONSECUTIVE_FAILURES};
use crate::stats::WorkerResult;

/// Uses in one batch request.
pub const USES_PER_REQUEST: usize = 100;

/// The body of one request, and the pool index of each of its uses.
fn body(shared: &Shared, ids: &[String], rng: &mut StdRng) -> (String, Vec<usize>) {
    let mut indices = Vec::with_capacity(USES_PER_REQUEST);
    let mut body = String::with_capacity(USES_PER_REQUEST * 110 + 16);
    body.push_str("{\"items\":[");
    for n in 0..USES_PER_REQUEST {
        let index = shared.pick.next(rng);
        indices.push(index);
        if n > 0 {
            body.push(',');
        }
        let _ = write!(
            body,
            "{{\"entitlement_id\":\"{}\",\"quantity\":1,\"idempotency_key\":\"{:032x}\"}}",
            ids[index],
            rng.gen::<u128>()
        );
    }
    body.push_str("]}");
    (body, indices)
}

/// Each item's `status`, in order: every item of the answer is an object
/// whose first field is `"status"` (entries and errors carry no such field).
pub fn item_statuses(answer: &[u8]) -> Vec<u16> {
    const FIELD: &[u8] = b"\"status\":";
    let mut statuses = Vec::new();
    let mut at = 0;
    while let Some(found) = answer[at..].windows(FIELD.len()).position(|w| w == FIELD) {
        let start = at + found + FIELD.len();
        let digits = answer[start..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        let status = std::str::from_utf8(&answer[start..start + digits])
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        statuses.push(status);
        at = start + digits;
    }
    statuses
}

pub async fn worker(shared: Arc<Shared>, ids: Arc<Vec<String>>, seed: u64) -> WorkerResult {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut result = WorkerResult::new();
    let mut sender: Option<SendRequest<Full<Bytes>>> = None;
    let mut failures = 0u32;
    let uri = Uri::from_static("/v1/usage/batch");
    while shared.clock.next_ticket() {
        if failures >= MAX_CONSECUTIVE_FAILURES {
            result.counts.add_unexpected("worker gave up");
            break;
        }
        let kept = sender.take();
        let Some(mut conn) = kept_or_new(kept, &shared.target, &mut result.counts).await else {
            failures += 1;
            continue;
        };
        let (body, indices) = body(&shared, &ids, &mut rng);
        let request = Request::builder()
            .uri(uri.clone())
            .header(HOST, shared.target.authority.clone())
            .method(Method::POST)
            .header(AUTHORIZATION, shared.target.bearer.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .body(Full::new(Bytes::from(body)));
        let Ok(request) = request else {
            result.counts.add_unexpected("request build error");
            failures += 1;
            continue;
        };
        indices.iter().for_each(|&i| shared.tally.sent(i));
        let began = Instant::now();
        let answer: Result<(u16, Bytes)> = send(&mut conn, request).await;
        let done = Instant::now();
        let Ok((status, answer)) = answer else {
            indices.iter().for_each(|&i| shared.tally.in_doubt(i));
            result.counts.add_unexpected("transport error");
            failures += 1;
            continue;
        };
        sender = Some(conn);
        failures = 0;
        let statuses = item_statuses(&answer);
        if status != 200 || statuses.len() != indices.len() {
            if status >= 500 || statuses.len() != indices.len() {
                indices.iter().for_each(|&i| shared.tally.in_doubt(i));
            }
            result
                .counts
                .add_unexpected(format!("HTTP {status} ({} item answers)", statuses.len()));
            continue;
        }
        let mut all_ok = true;
        for (&index, &item) in indices.iter().zip(&statuses) {
            if item == 201 {
                shared.tally.accepted(index);
            } else {
                all_ok = false;
                result.counts.add_unexpected(format!("item {item}"));
            }
        }
        // One latency per request; the uses are counted by the caller.
        result.answered(&shared.clock, began, done, !all_ok);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_read_in_order() {
        let answer = br#"{"items":[{"status":201,"entry":{"id":"use_1","reason":"usage"}},{"status":409,"error":{"code":"entitlement_exhausted"}},{"status":201,"replayed":true,"entry":{}}]}"#;
        assert_eq!(item_statuses(answer), [201, 409, 201]);
        assert!(item_statuses(b"{}").is_empty());
    }
}
