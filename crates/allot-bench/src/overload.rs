//! Scenario `overload` (`allot-bench --overload`): how `allot serve` sheds a
//! burst far beyond what it can do, with its default limits (or those
//! given with `--overload-env NAME=VALUE`).
//!
//! 1. **Capacity**: closed loop, `--concurrency` connections posting usage
//!    (`quantity` 1, no key) over 64 entitlements: the sustainable rate `X`.
//! 2. **Unloaded**: open loop at `X / 10`: the unloaded latency.
//! 3. **Overload**: open loop at 8 × `X`. Requests are sent on schedule
//!    whatever came back (no coordinated omission); each latency is
//!    measured from the moment it was due. Accepted (2xx) and shed (503
//!    `overloaded` with `Retry-After`) answers are timed apart; anything
//!    else is counted.
//!
//! Printed: `X`, the unloaded p50/p99, per overload answer kind its count
//! and p50/p99/max, the offered and achieved send rates (the load
//! generator shares the machine), the server's peak RSS (`VmHWM`) before
//! and after the overload, and a `verdict:` line: accepted p99 ÷ unloaded
//! p99 against the 2x target, and whether the generator reached 8x at all
//! (INCONCLUSIVE when it sent under 90 % of that).
//!
//! The generator keeps at most `MAX_CONNECTIONS` requests on the wire (one
//! connection each); a request due while all are busy waits for one, and
//! that wait counts in its latency (it is measured from when it was due).
//! It speaks HTTP/1.1 over hyper's client connections, as the other
//! scenarios do (`http_load`): a reqwest client cost the generator several
//! times the CPU per request, taken from the server on a small machine.
//! Each answer kind is also timed from the moment it went on the wire, so
//! the generator's own queueing can be told apart. The cores the server
//! and the generator used in each phase, and the load average, are printed:
//! on a small machine the generator takes CPU the server would otherwise
//! have.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, HOST, RETRY_AFTER};
use hyper::{Method, Request, Uri};
use tokio::sync::Mutex;

use crate::api::Api;
use crate::cli::Args;
use crate::cpu::{load_average, CpuMeter};
use crate::http_load::{connect, HttpTarget};
use crate::server::{self, status_field_kib};
use crate::stats::{new_histogram, record};

/// The overload's multiple of the sustainable rate.
const FACTOR: f64 = 8.0;
/// Entitlements the usage is spread over.
const ENTITLEMENTS: usize = 64;
/// The load generator gives up on a request after this.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);
/// Requests the generator holds at most, on the wire or waiting for a
/// connection; one more due is not sent (counted as not sent).
const MAX_IN_FLIGHT: usize = 8_000;
/// Requests on the wire at once at most: the generator's connections.
/// Below `allot serve`'s connection limit (1,024 by default), so that the
/// generator does not spend its CPU reconnecting after the answers a
/// connection beyond the limit gets (tested in the API suite instead).
const MAX_CONNECTIONS: usize = 512;

#[derive(Default)]
struct Tally {
    accepted: Option<Histogram<u64>>,
    shed: Option<Histogram<u64>>,
    /// The same, timed from the moment each went on the wire.
    accepted_on_wire: Option<Histogram<u64>>,
    shed_on_wire: Option<Histogram<u64>>,
    shed_without_retry_after: u64,
    other: std::collections::BTreeMap<String, u64>,
    sent: u64,
    skipped: u64,
}

impl Tally {
    fn hist(slot: &mut Option<Histogram<u64>>) -> &mut Histogram<u64> {
        slot.get_or_insert_with(new_histogram)
    }
}

struct Served {
    child: Child,
    base: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        for _ in 0..300 {
            if self.child.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn ms(us: u64) -> String {
    format!("{:.1} ms", us as f64 / 1000.0)
}

fn quantiles(h: &Option<Histogram<u64>>) -> String {
    match h {
        Some(h) if !h.is_empty() => format!(
            "p50 {} p99 {} max {}",
            ms(h.value_at_quantile(0.5)),
            ms(h.value_at_quantile(0.99)),
            ms(h.max())
        ),
        _ => "none".into(),
    }
}

async fn start(
    bin: &Path,
    db: &str,
    run_dir: &Path,
    env: &[(String, String)],
) -> Result<(Served, String)> {
    let log = run_dir.join("overload-server.log");
    let file = || {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
    };
    let out = Command::new(bin)
        .args(["keys", "create", "--role", "admin", "--db", db])
        .stderr(Stdio::from(file()?))
        .output()
        .context("allot keys create")?;
    if !out.status.success() {
        bail!("allot keys create failed; see {}", log.display());
    }
    let key = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .context("no key printed")?
        .to_string();
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let listen = format!("127.0.0.1:{port}");
    let mut cmd = Command::new(bin);
    cmd.args(["serve", "--db", db, "--listen", &listen])
        .stdin(Stdio::null())
        .stdout(Stdio::from(file()?))
        .stderr(Stdio::from(file()?));
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = Served {
        child: cmd.spawn().context("spawn allot serve")?,
        base: format!("http://{listen}"),
    };
    let client = reqwest::Client::new();
    for _ in 0..600 {
        if let Ok(r) = client.get(format!("{}/readyz", child.base)).send().await {
            if r.status().is_success() {
                return Ok((child, key));
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("allot serve not ready; see {}", log.display())
}

/// The usage requests, one per entitlement, and the connections they go on.
struct Target {
    http: HttpTarget,
    uris: Vec<Uri>,
    /// Open connections not in use.
    idle: std::sync::Mutex<Vec<SendRequest<Full<Bytes>>>>,
}

type Sent = Result<(u16, bool), String>;

impl Target {
    /// Sends usage request `i` on `conn` (a new connection if `None`):
    /// its status and whether it carried `Retry-After`, and the
    /// connection if it can be used again.
    async fn send(
        &self,
        i: usize,
        conn: Option<SendRequest<Full<Bytes>>>,
    ) -> (Sent, Option<SendRequest<Full<Bytes>>>) {
        let mut conn = match conn {
            Some(conn) => conn,
            None => match connect(&self.http).await {
                Ok(conn) => conn,
                Err(_) => return (Err("connect error".into()), None),
            },
        };
        let request = Request::builder()
            .method(Method::POST)
            .uri(self.uris[i % self.uris.len()].clone())
            .header(HOST, self.http.authority.clone())
            .header(AUTHORIZATION, self.http.bearer.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .body(Full::new(Bytes::from_static(br#"{"quantity":1}"#)));
        let Ok(request) = request else {
            return (Err("request build error".into()), None);
        };
        let answer = async {
            conn.ready().await?;
            let response = conn.send_request(request).await?;
            let status = response.status().as_u16();
            let retry_after = response.headers().contains_key(RETRY_AFTER);
            response.into_body().collect().await?;
            Ok::<_, hyper::Error>((status, retry_after))
        };
        match tokio::time::timeout(CLIENT_TIMEOUT, answer).await {
            Ok(Ok(sent)) => {
                let reusable = !conn.is_closed();
                (Ok(sent), reusable.then_some(conn))
            }
            Ok(Err(_)) => (Err("no answer".into()), None),
            Err(_) => (Err("timeout".into()), None),
        }
    }
}

/// One usage request, once a connection is free; its latency counted
/// from `due`.
async fn one(
    target: Arc<Target>,
    i: usize,
    due: Instant,
    connections: Arc<tokio::sync::Semaphore>,
    tally: Arc<Mutex<Tally>>,
) {
    let Ok(_connection) = connections.acquire_owned().await else {
        return;
    };
    let conn = target.idle.lock().ok().and_then(|mut idle| idle.pop());
    let on_wire = Instant::now();
    let (answer, conn) = target.send(i, conn).await;
    let took = due.elapsed();
    let served = on_wire.elapsed();
    if let (Some(conn), Ok(mut idle)) = (conn, target.idle.lock()) {
        idle.push(conn);
    }
    let mut t = tally.lock().await;
    match answer {
        Ok((status, _)) if (200..300).contains(&status) => {
            record(Tally::hist(&mut t.accepted), took);
            record(Tally::hist(&mut t.accepted_on_wire), served);
        }
        Ok((503, retry_after)) => {
            if !retry_after {
                t.shed_without_retry_after += 1;
            }
            record(Tally::hist(&mut t.shed), took);
            record(Tally::hist(&mut t.shed_on_wire), served);
        }
        Ok((status, _)) => *t.other.entry(status.to_string()).or_default() += 1,
        Err(kind) => *t.other.entry(kind).or_default() += 1,
    }
}

/// Closed loop: `concurrency` workers for `how_long`; answered 2xx per second.
async fn capacity(
    target: &Arc<Target>,
    concurrency: usize,
    how_long: Duration,
) -> (f64, Histogram<u64>) {
    let stop_at = Instant::now() + how_long;
    let mut workers = Vec::new();
    for w in 0..concurrency {
        let target = target.clone();
        workers.push(tokio::spawn(async move {
            let mut hist = new_histogram();
            let mut conn = None;
            let mut i = w;
            while Instant::now() < stop_at {
                let began = Instant::now();
                let (answer, reusable) = target.send(i, conn.take()).await;
                conn = reusable;
                if matches!(answer, Ok((status, _)) if (200..300).contains(&status)) {
                    record(&mut hist, began.elapsed());
                }
                i += concurrency;
            }
            hist
        }));
    }
    let mut all = new_histogram();
    for w in workers {
        if let Ok(h) = w.await {
            all.add(&h).ok();
        }
    }
    (all.len() as f64 / how_long.as_secs_f64(), all)
}

/// Open loop at `rate` per second for `how_long`.
async fn open_loop(target: &Arc<Target>, rate: f64, how_long: Duration) -> Tally {
    let tally = Arc::new(Mutex::new(Tally::default()));
    let began = Instant::now();
    let mut sent = 0u64;
    let mut skipped = 0u64;
    let mut tasks = tokio::task::JoinSet::new();
    let connections = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let now = Instant::now();
        let elapsed = now.duration_since(began);
        if elapsed >= how_long {
            break;
        }
        let due_count = (elapsed.as_secs_f64() * rate) as u64;
        while sent < due_count {
            let due = began + Duration::from_secs_f64(sent as f64 / rate);
            sent += 1;
            if tasks.len() >= MAX_IN_FLIGHT {
                skipped += 1;
                continue;
            }
            tasks.spawn(one(
                target.clone(),
                sent as usize,
                due,
                connections.clone(),
                tally.clone(),
            ));
        }
        while tasks.try_join_next().is_some() {}
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    while tasks.join_next().await.is_some() {}
    let mut t = std::mem::take(&mut *tally.lock().await);
    t.sent = sent - skipped;
    t.skipped = skipped;
    t
}

/// Cores the server and the generator used since the meters started.
fn cores((server, generator): (CpuMeter, CpuMeter)) -> String {
    let show = |c: Option<f64>| c.map_or("?".into(), |c| format!("{c:.2}"));
    format!(
        "cores used: server {}, generator {}",
        show(server.cores()),
        show(generator.cores())
    )
}

pub async fn run(args: &Args) -> Result<bool> {
    let how_long = args.duration.unwrap_or(if args.quick {
        Duration::from_secs(3)
    } else {
        Duration::from_secs(10)
    });
    let tag = format!("{:08x}", rand::random::<u32>());
    let run_dir = server::target_dir()
        .join("allot-bench")
        .join(format!("overload-{tag}"));
    std::fs::create_dir_all(&run_dir)?;
    let bin = server::ensure_binary(args.allot_bin.as_deref())?;
    let bin = server::pin_binary(&bin, &run_dir)?;
    let db = format!("sqlite://{}", run_dir.join("overload.db").display());
    let mut env: Vec<(String, String)> = vec![(
        "ALLOT_SQLITE_SYNCHRONOUS".into(),
        args.synchronous.env_value().into(),
    )];
    for pair in &args.overload_env {
        let (k, v) = pair.split_once('=').context("--overload-env NAME=VALUE")?;
        env.push((k.into(), v.into()));
    }
    let migrate = Command::new(&bin).args(["migrate", "--db", &db]).output()?;
    if !migrate.status.success() {
        bail!("allot migrate failed");
    }
    let (server, key) = start(&bin, &db, &run_dir, &env).await?;
    let pid = server.child.id();
    let api = Api::new(&server.base, &key)?;
    let account = api.create_account("overload").await?;
    let mut uris = Vec::new();
    for i in 0..ENTITLEMENTS {
        let id = api
            .create_entitlement(&account, &format!("overload {i}"), 1_000_000_000)
            .await?;
        uris.push(Uri::try_from(format!("/v1/entitlements/{id}/usage"))?);
    }
    let target = Arc::new(Target {
        http: HttpTarget::new(&server.base, &key).await?,
        uris,
        idle: std::sync::Mutex::new(Vec::new()),
    });
    println!(
        "overload (sqlite, synchronous={}, settings {:?}): {:?} per phase, {} CPUs, load average {}",
        args.synchronous.env_value(),
        &env[1..],
        how_long,
        std::thread::available_parallelism().map_or(1, usize::from),
        load_average()
    );
    // Warm-up, then capacity.
    let _ = capacity(&target, args.concurrency, how_long / 3).await;
    let meters = (CpuMeter::start(pid), CpuMeter::own());
    let (x, closed) = capacity(&target, args.concurrency, how_long).await;
    println!(
        "  capacity: closed loop, {} connections: {:.0} req/s sustainable, p50 {} p99 {}; {}",
        args.concurrency,
        x,
        ms(closed.value_at_quantile(0.5)),
        ms(closed.value_at_quantile(0.99)),
        cores(meters)
    );
    if x < 1.0 {
        bail!("no request was accepted at capacity");
    }
    let meters = (CpuMeter::start(pid), CpuMeter::own());
    let unloaded = open_loop(&target, x / 10.0, how_long).await;
    println!(
        "  unloaded: open loop at {:.0} req/s: accepted {} ({}), other {:?}; {}",
        x / 10.0,
        unloaded.accepted.as_ref().map_or(0, Histogram::len),
        quantiles(&unloaded.accepted),
        unloaded.other,
        cores(meters)
    );
    let rss_before = status_field_kib(pid, "VmHWM");
    let offered = x * FACTOR;
    let began = Instant::now();
    let meters = (CpuMeter::start(pid), CpuMeter::own());
    let over = open_loop(&target, offered, how_long).await;
    let used = cores(meters);
    let took = began.elapsed();
    let rss_after = status_field_kib(pid, "VmHWM");
    let accepted = over.accepted.as_ref().map_or(0, Histogram::len);
    let shed = over.shed.as_ref().map_or(0, Histogram::len);
    println!(
        "  overload: open loop at {offered:.0} req/s offered ({FACTOR}x), {:.0} req/s sent ({} not sent: generator at {MAX_IN_FLIGHT} in flight); {used}",
        over.sent as f64 / took.as_secs_f64(),
        over.skipped
    );
    println!(
        "    accepted {accepted} ({:.0} req/s): {}",
        accepted as f64 / how_long.as_secs_f64(),
        quantiles(&over.accepted)
    );
    println!(
        "    shed 503 {shed} ({} without Retry-After): {}",
        over.shed_without_retry_after,
        quantiles(&over.shed)
    );
    println!(
        "    from the moment on the wire: accepted {}; shed {}",
        quantiles(&over.accepted_on_wire),
        quantiles(&over.shed_on_wire)
    );
    println!("    other answers: {:?}", over.other);
    let ratio = match (&over.accepted, &unloaded.accepted) {
        (Some(a), Some(u)) if !a.is_empty() && !u.is_empty() => {
            a.value_at_quantile(0.99) as f64 / u.value_at_quantile(0.99).max(1) as f64
        }
        _ => f64::NAN,
    };
    println!(
        "  server peak RSS (VmHWM): {} KiB before the overload, {} KiB after; load average {}",
        rss_before.map_or("?".into(), |v| v.to_string()),
        rss_after.map_or("?".into(), |v| v.to_string()),
        load_average()
    );
    let reached = over.sent as f64 / took.as_secs_f64() / x;
    println!(
        "  verdict: accepted p99 / unloaded p99 = {ratio:.1}x (target: within 2x): {}; the generator sent {reached:.1}x the capacity ({FACTOR}x offered): {}",
        if ratio <= 2.0 { "MET" } else { "NOT MET" },
        if reached >= FACTOR * 0.9 {
            "a valid overload"
        } else {
            "INCONCLUSIVE, under 8x"
        }
    );
    drop(server);
    if !args.keep_data {
        let _ = std::fs::remove_dir_all(&run_dir);
    }
    Ok(over.shed_without_retry_after == 0 && over.other.keys().all(|k| k != "500"))
}
