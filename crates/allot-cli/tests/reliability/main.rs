//! Reliability suites: the real `allot` binary as child processes, driven
//! over HTTP by many concurrent clients, checked afterwards through the API.
//!
//! - `many_writers`: several clients per process (and three processes on one
//!   PostgreSQL database) mix usage, cases, adjustments, reservations and
//!   idempotent retries against a few restricted entitlements; afterwards
//!   every acknowledged write is in the ledger exactly once, no refused one
//!   is, `used` equals the ledger and no cap is exceeded.
//! - `crash`: the same load against one process, SIGKILLed at random moments
//!   and restarted on the same database; everything acknowledged before a
//!   kill survives it, replays answer what was acknowledged, and requests cut
//!   off by the kill are either wholly there or wholly absent.
//! - `graceful`: the same load against one process, stopped by SIGTERM: it
//!   exits 0 within 10 s, every request it accepted was answered, and after
//!   a restart every acknowledged write is in the ledger.
//!
//! The default profile keeps the whole binary under about a minute on two
//! cores; `ALLOT_RELIABILITY_HEAVY=1` runs 64 clients per process, more kills
//! and longer loads. `ALLOT_RELIABILITY_SEED` replays a run's random choices
//! (each test prints its seed). PostgreSQL tests are `postgres_test!`: reported
//! ignored when the build saw no `ALLOT_TEST_DATABASE_URL`, failing without a
//! server under `CI=true`. See RELIABILITY.md.

mod api;
mod crash;
mod deliveries;
mod findings;
mod graceful;
mod harness;
mod many_writers;
mod workload;

use std::time::Duration;

/// How hard a run pushes.
#[derive(Debug, Clone, Copy)]
pub struct Profile {
    pub heavy: bool,
    /// Concurrent clients per server process.
    pub clients_per_server: usize,
    /// How long the many-writers load runs.
    pub load: Duration,
    /// SIGKILLs per backend in the crash suite.
    pub kills: usize,
    /// The load before each kill runs for a random time in this range (ms).
    pub kill_after_ms: (u64, u64),
}

pub fn profile() -> Profile {
    if std::env::var("ALLOT_RELIABILITY_HEAVY").is_ok_and(|v| v == "1") {
        Profile {
            heavy: true,
            clients_per_server: 64,
            load: Duration::from_secs(30),
            kills: 12,
            kill_after_ms: (300, 5_000),
        }
    } else {
        Profile {
            heavy: false,
            clients_per_server: 16,
            load: Duration::from_secs(5),
            kills: 5,
            kill_after_ms: (250, 1_500),
        }
    }
}

/// The seed of a run: `ALLOT_RELIABILITY_SEED`, or a fresh one (printed).
pub fn seed(test: &str) -> u64 {
    let seed = std::env::var("ALLOT_RELIABILITY_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    println!("{test}: seed {seed} (ALLOT_RELIABILITY_SEED={seed} to replay)");
    seed
}

/// The suites run one at a time: each pushes the machine on its own, and
/// its figures are its own.
pub async fn exclusive() -> tokio::sync::MutexGuard<'static, ()> {
    static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    SERIAL.lock().await
}
