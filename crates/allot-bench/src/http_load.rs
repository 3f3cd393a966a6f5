//! Closed-loop HTTP/1.1 keep-alive load: one hyper connection per in-flight request slot.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Method, Request, Uri};
use hyper_util::rt::TokioIo;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::net::TcpStream;
use tokio::task::JoinSet;

use crate::scenarios::{LoadJob, Op};
use crate::stats::{Clock, Counts, Outcome, Tally, WorkerResult};

/// Give up on a worker after this many consecutive failures.
pub(crate) const MAX_CONSECUTIVE_FAILURES: u32 = 50;

/// The server the load goes to.
#[derive(Debug, Clone)]
pub struct HttpTarget {
    pub addr: SocketAddr,
    pub authority: HeaderValue,
    pub bearer: HeaderValue,
}

impl HttpTarget {
    pub async fn new(base_url: &str, key: &str) -> Result<Self> {
        let url = reqwest::Url::parse(base_url).with_context(|| format!("bad URL {base_url}"))?;
        if url.scheme() != "http" {
            return Err(anyhow!(
                "the load generator speaks plain http only: {base_url}"
            ));
        }
        let host = url.host_str().context("URL has no host")?;
        let port = url.port_or_known_default().unwrap_or(80);
        let addr = tokio::net::lookup_host((host, port))
            .await?
            .next()
            .with_context(|| format!("cannot resolve {host}"))?;
        Ok(HttpTarget {
            addr,
            authority: HeaderValue::from_str(&format!("{host}:{port}"))?,
            bearer: HeaderValue::from_str(&format!("Bearer {key}"))?,
        })
    }
}

pub(crate) struct Shared {
    pub(crate) target: HttpTarget,
    op: Op,
    pub(crate) pick: crate::scenarios::Pick,
    uris: Vec<Uri>,
    pub(crate) clock: Clock,
    pub(crate) tally: Arc<Tally>,
    body: Bytes,
}

/// Runs `job` against `target`; `ids` are the entitlement ids that `job.pick` indexes.
pub async fn run(
    target: &HttpTarget,
    ids: &[String],
    job: &LoadJob,
    tally: Arc<Tally>,
) -> Result<Outcome> {
    let uris = build_uris(job.op, ids)?;
    let shared = Arc::new(Shared {
        target: target.clone(),
        op: job.op,
        pick: job.pick.clone(),
        uris,
        clock: Clock::start(job.stop, job.warmup),
        tally,
        body: Bytes::from_static(br#"{"quantity":1}"#),
    });
    let mut workers = JoinSet::new();
    let batch_ids = (job.op == Op::UsageBatch).then(|| Arc::new(ids.to_vec()));
    for slot in 0..job.concurrency {
        let shared = Arc::clone(&shared);
        let seed = rand::thread_rng().gen::<u64>() ^ slot as u64;
        match &batch_ids {
            Some(ids) => workers.spawn(crate::batch_load::worker(shared, Arc::clone(ids), seed)),
            None => workers.spawn(worker(shared, seed)),
        };
    }
    let mut results = Vec::with_capacity(job.concurrency);
    while let Some(joined) = workers.join_next().await {
        results.push(joined.context("load worker panicked")?);
    }
    let mut outcome = Outcome::merge(&shared.clock, results)?;
    if batch_ids.is_some() {
        // Throughput in uses, as the baselines count it.
        outcome.summary.rps *= crate::batch_load::USES_PER_REQUEST as f64;
    }
    Ok(outcome)
}

fn build_uris(op: Op, ids: &[String]) -> Result<Vec<Uri>> {
    let path = |id: &str| match op {
        Op::Usage => format!("/v1/entitlements/{id}/usage"),
        Op::Balance => format!("/v1/entitlements/{id}/balance"),
        Op::Healthz | Op::UsageBatch => "/healthz".to_owned(),
    };
    if op == Op::Healthz {
        return Ok(vec![Uri::from_static("/healthz")]);
    }
    if op == Op::UsageBatch {
        return Ok(Vec::new());
    }
    ids.iter()
        .map(|id| Uri::try_from(path(id)).map_err(Into::into))
        .collect()
}

pub(crate) async fn connect(target: &HttpTarget) -> Result<SendRequest<Full<Bytes>>> {
    let stream = TcpStream::connect(target.addr).await?;
    stream.set_nodelay(true)?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

/// The worker's kept connection, or a new one; `None` (counted, after a
/// short pause) when the server refuses it.
pub(crate) async fn kept_or_new(
    kept: Option<SendRequest<Full<Bytes>>>,
    target: &HttpTarget,
    counts: &mut Counts,
) -> Option<SendRequest<Full<Bytes>>> {
    if kept.is_some() {
        return kept;
    }
    match connect(target).await {
        Ok(conn) => Some(conn),
        Err(_) => {
            counts.add_unexpected("connect error");
            tokio::time::sleep(Duration::from_millis(20)).await;
            None
        }
    }
}

fn build_request(shared: &Shared, index: usize, rng: &mut StdRng) -> Result<Request<Full<Bytes>>> {
    let uri_index = if shared.op == Op::Healthz { 0 } else { index };
    let builder = Request::builder()
        .uri(shared.uris[uri_index].clone())
        .header(HOST, shared.target.authority.clone());
    let request = match shared.op {
        Op::Usage => builder
            .method(Method::POST)
            .header(AUTHORIZATION, shared.target.bearer.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .header("idempotency-key", format!("{:032x}", rng.gen::<u128>()))
            .body(Full::new(shared.body.clone()))?,
        Op::Balance => builder
            .method(Method::GET)
            .header(AUTHORIZATION, shared.target.bearer.clone())
            .body(Full::new(Bytes::new()))?,
        Op::Healthz | Op::UsageBatch => {
            builder.method(Method::GET).body(Full::new(Bytes::new()))?
        }
    };
    Ok(request)
}

pub(crate) async fn send(
    sender: &mut SendRequest<Full<Bytes>>,
    request: Request<Full<Bytes>>,
) -> Result<(u16, Bytes)> {
    sender.ready().await?;
    let response = sender.send_request(request).await?;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((status, body))
}

/// The `error.code` of a JSON error body, if any.
fn error_code(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    value.get("error")?.get("code")?.as_str().map(str::to_owned)
}

async fn worker(shared: Arc<Shared>, seed: u64) -> WorkerResult {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut result = WorkerResult::new();
    let mut sender: Option<SendRequest<Full<Bytes>>> = None;
    let mut failures = 0u32;
    let is_usage = shared.op == Op::Usage;
    while shared.clock.next_ticket() {
        if failures >= MAX_CONSECUTIVE_FAILURES {
            result.counts.add_unexpected("worker gave up");
            break;
        }
        let index = shared.pick.next(&mut rng);
        let kept = sender.take();
        let Some(mut conn) = kept_or_new(kept, &shared.target, &mut result.counts).await else {
            failures += 1;
            continue;
        };
        let Ok(request) = build_request(&shared, index, &mut rng) else {
            result.counts.add_unexpected("request build error");
            failures += 1;
            continue;
        };
        if is_usage {
            shared.tally.sent(index);
        }
        let began = Instant::now();
        let answer = send(&mut conn, request).await;
        let done = Instant::now();
        let Ok((status, body)) = answer else {
            if is_usage {
                shared.tally.in_doubt(index);
            }
            result.counts.add_unexpected("transport error");
            failures += 1;
            continue;
        };
        sender = Some(conn);
        failures = 0;
        if (200..300).contains(&status) {
            if is_usage {
                shared.tally.accepted(index);
            }
            result.answered(&shared.clock, began, done, false);
        } else if is_usage
            && status == 409
            && error_code(&body).as_deref() == Some("entitlement_exhausted")
        {
            result.answered(&shared.clock, began, done, true);
        } else {
            if is_usage && status >= 500 {
                shared.tally.in_doubt(index);
            }
            let code = error_code(&body).unwrap_or_default();
            result
                .counts
                .add_unexpected(format!("HTTP {status} {code}").trim_end().to_owned());
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_are_read() {
        let body = br#"{"error":{"code":"entitlement_exhausted","message":"x"}}"#;
        assert_eq!(error_code(body).as_deref(), Some("entitlement_exhausted"));
        assert_eq!(error_code(b"not json"), None);
        assert_eq!(error_code(br#"{"id":"ent_1"}"#), None);
    }

    #[test]
    fn uris_per_op() {
        let ids = vec!["ent_a".to_owned(), "ent_b".to_owned()];
        let uris = build_uris(Op::Usage, &ids).unwrap();
        assert_eq!(uris[1].path(), "/v1/entitlements/ent_b/usage");
        let uris = build_uris(Op::Healthz, &ids).unwrap();
        assert_eq!(uris.len(), 1);
    }
}
