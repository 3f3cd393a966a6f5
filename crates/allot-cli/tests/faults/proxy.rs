//! A TCP proxy between `allot serve` and PostgreSQL that injects faults:
//! it reads the frontend protocol's messages (type byte, length) so it
//! knows when a `COMMIT` goes through, and can then cut the connection
//! right after forwarding it, before the server's answer comes back — the
//! commit happened, but `allot` cannot know. It also cuts connections at
//! random moments (`cut_one`), and delays every message from `allot` to
//! the server (`set_delay`: the added round-trip time), keeping order.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::Rng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};

/// What the proxy did.
#[derive(Debug, Default, Clone, Copy)]
pub struct ProxyStats {
    pub connections: u64,
    /// `COMMIT` messages forwarded.
    pub commits: u64,
    /// Connections cut right after a `COMMIT` was forwarded.
    pub cut_after_commit: u64,
    /// Connections cut at a random moment.
    pub cut_random: u64,
}

#[derive(Default)]
struct Shared {
    /// Chance (per million) of cutting a connection right after a `COMMIT`.
    commit_cut_ppm: AtomicU64,
    /// Added delay on every message to the server, in microseconds.
    delay_us: AtomicU64,
    commits: AtomicU64,
    cut_after_commit: AtomicU64,
    cut_random: AtomicU64,
    connections: AtomicU64,
    /// Live connections: id → its cut switch.
    live: Mutex<HashMap<u64, watch::Sender<bool>>>,
}

pub struct Proxy {
    pub port: u16,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// Listens on 127.0.0.1 (a free port) and forwards to `upstream_port`.
    pub async fn start(upstream_port: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Shared::default());
        let accept = shared.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                let shared = accept.clone();
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(("127.0.0.1", upstream_port)).await else {
                        return; // the server is down: the client sees its connection closed
                    };
                    relay(shared, client, server).await;
                });
            }
        });
        Proxy { port, shared, task }
    }

    /// Cuts a connection right after forwarding a `COMMIT` with chance `p`.
    pub fn set_commit_cuts(&self, p: f64) {
        let ppm = (p.clamp(0.0, 1.0) * 1_000_000.0) as u64;
        self.shared.commit_cut_ppm.store(ppm, Ordering::Relaxed);
    }

    /// Adds `delay` to every message from `allot` to the server.
    pub fn set_delay(&self, delay: Duration) {
        self.shared
            .delay_us
            .store(delay.as_micros() as u64, Ordering::Relaxed);
    }

    /// Cuts one live connection, picked at random; `false` when none is open.
    pub fn cut_one(&self, rng: &mut impl Rng) -> bool {
        let live = self.shared.live.lock().unwrap();
        if live.is_empty() {
            return false;
        }
        let pick = rng.gen_range(0..live.len());
        let (_, switch) = live.iter().nth(pick).unwrap();
        switch.send_replace(true);
        self.shared.cut_random.fetch_add(1, Ordering::Relaxed);
        true
    }

    pub fn stats(&self) -> ProxyStats {
        let s = &self.shared;
        ProxyStats {
            connections: s.connections.load(Ordering::Relaxed),
            commits: s.commits.load(Ordering::Relaxed),
            cut_after_commit: s.cut_after_commit.load(Ordering::Relaxed),
            cut_random: s.cut_random.load(Ordering::Relaxed),
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
        for switch in self.shared.live.lock().unwrap().values() {
            switch.send_replace(true);
        }
    }
}

async fn relay(shared: Arc<Shared>, client: TcpStream, server: TcpStream) {
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let id = shared.connections.fetch_add(1, Ordering::Relaxed);
    let (cut, mut cut_seen) = watch::channel(false);
    shared.live.lock().unwrap().insert(id, cut.clone());
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let (to_server, queued) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let upstream = read_messages(shared.clone(), client_read, to_server);
    let delayed = write_delayed(queued, server_write, cut.clone());
    let downstream = copy(server_read, client_write);
    // Whichever ends first (EOF, error, or a cut) ends the connection:
    // dropping every half closes both sockets.
    tokio::select! {
        biased;
        _ = cut_seen.wait_for(|c| *c) => {}
        () = upstream => {}
        () = delayed => {}
        () = downstream => {}
    }
    shared.live.lock().unwrap().remove(&id);
}

/// Reads the frontend's messages whole and queues each with the moment it
/// may be sent. The first message (and a second one after an SSL or GSS
/// encryption request) has no type byte.
async fn read_messages(
    shared: Arc<Shared>,
    mut from: OwnedReadHalf,
    to: mpsc::UnboundedSender<(Instant, Vec<u8>)>,
) {
    let mut untyped = true;
    loop {
        let mut message = Vec::new();
        if !untyped {
            let mut kind = [0u8; 1];
            if from.read_exact(&mut kind).await.is_err() {
                return;
            }
            message.push(kind[0]);
        }
        let mut len = [0u8; 4];
        if from.read_exact(&mut len).await.is_err() {
            return;
        }
        message.extend_from_slice(&len);
        let body_len = (u32::from_be_bytes(len) as usize).saturating_sub(4);
        let start = message.len();
        message.resize(start + body_len, 0);
        if from.read_exact(&mut message[start..]).await.is_err() {
            return;
        }
        if untyped {
            // SSLRequest and GSSENCRequest are followed by another untyped message.
            let code = message
                .get(4..8)
                .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]));
            untyped = matches!(code, Some(80_877_103) | Some(80_877_104));
        }
        let is_commit = message.first() == Some(&b'Q')
            && message
                .get(5..)
                .is_some_and(|q| q.eq_ignore_ascii_case(b"COMMIT\0"));
        let delay = Duration::from_micros(shared.delay_us.load(Ordering::Relaxed));
        if to.send((Instant::now() + delay, message)).is_err() {
            return;
        }
        if is_commit {
            shared.commits.fetch_add(1, Ordering::Relaxed);
            let ppm = shared.commit_cut_ppm.load(Ordering::Relaxed);
            if ppm > 0 && rand::thread_rng().gen_range(0..1_000_000) < ppm {
                // Cut once the COMMIT is written to the server (the writer
                // sees this flag after the message), before its answer.
                shared.cut_after_commit.fetch_add(1, Ordering::Relaxed);
                let _ = to.send((Instant::now() + delay, Vec::new()));
                std::future::pending::<()>().await;
            }
        }
    }
}

/// Writes queued messages to the server when their time comes; an empty
/// message means "cut now" (after everything before it was written).
async fn write_delayed(
    mut queued: mpsc::UnboundedReceiver<(Instant, Vec<u8>)>,
    mut to: OwnedWriteHalf,
    cut: watch::Sender<bool>,
) {
    while let Some((at, message)) = queued.recv().await {
        tokio::time::sleep_until(at.into()).await;
        if message.is_empty() {
            let _ = to.flush().await;
            cut.send_replace(true);
            std::future::pending::<()>().await;
        }
        if to.write_all(&message).await.is_err() {
            return;
        }
    }
}

async fn copy(mut from: OwnedReadHalf, mut to: OwnedWriteHalf) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if to.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        }
    }
}
