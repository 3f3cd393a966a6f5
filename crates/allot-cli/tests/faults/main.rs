//! Fault suites: the real `allot` binary while its database fails under it.
//!
//! - `cut`: a TCP proxy between `allot serve` and a PostgreSQL of the test's
//!   own cuts connections at random moments and right after forwarding a
//!   `COMMIT` (before its answer): an unknown outcome is answered 500
//!   `outcome_unknown`, and the request, sent again with its key, replays
//!   or is applied once.
//! - `restart`: `pg_ctl restart` and a 10 s stop under load, three
//!   instances on one database: `/readyz` 503 while it is away and 200
//!   after, requests meanwhile answered 503 `database_unavailable` with
//!   `Retry-After` at once, the pool recovering by itself.
//! - `slow`: 50 ms added to every round trip through the proxy: batches
//!   grow, nothing times out, nothing is lost.
//! - `disk_full`: SQLite on a small tmpfs the test mounts and fills: writes
//!   answered 507 `storage_full`, reads served, writes resumed once space
//!   is freed, `PRAGMA integrity_check` ok.
//! - `overload`: a tiny request limit and write queue: the excess answered
//!   503 `overloaded` with `Retry-After`.
//!
//! After each: every 2xx in the ledger exactly once, no restricted cap
//! exceeded, `used == Σ ledger`, every keyed request answered 5xx sent again
//! with its key and replayed or applied once (and one answered "nothing was
//! applied" never replayed). The load, the book and its checks are the
//! reliability suite's (`../reliability/`). Default profile: well under 3
//! minutes on 2 cores; `ALLOT_RELIABILITY_HEAVY=1` runs longer. Tests of a
//! PostgreSQL of their own need its binaries (`pg.rs`): under `CI=true`
//! they fail without them. See RELIABILITY.md.

#[path = "../reliability/api.rs"]
#[allow(dead_code)]
mod api;
#[path = "../reliability/harness.rs"]
#[allow(dead_code)]
mod harness;
#[path = "../reliability/workload.rs"]
#[allow(dead_code)]
mod workload;

mod common;
mod cut;
mod disk_full;
mod overload;
mod pg;
mod proxy;
mod restart;
mod slow;

use std::time::Duration;

/// How hard a run pushes (`ALLOT_RELIABILITY_HEAVY=1`: harder and longer).
#[derive(Debug, Clone, Copy)]
pub struct Profile {
    pub heavy: bool,
    /// Concurrent clients per server process.
    pub clients_per_server: usize,
    /// How long each load phase runs.
    pub load: Duration,
    /// Restart-and-stop cycles of the database.
    pub outages: usize,
}

pub fn profile() -> Profile {
    if std::env::var("ALLOT_RELIABILITY_HEAVY").is_ok_and(|v| v == "1") {
        Profile {
            heavy: true,
            clients_per_server: 32,
            load: Duration::from_secs(20),
            outages: 3,
        }
    } else {
        Profile {
            heavy: false,
            clients_per_server: 12,
            load: Duration::from_secs(4),
            outages: 1,
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

/// One suite at a time: each pushes the machine on its own.
pub async fn exclusive() -> tokio::sync::MutexGuard<'static, ()> {
    static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    SERIAL.lock().await
}
