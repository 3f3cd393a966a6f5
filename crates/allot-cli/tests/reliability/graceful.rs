//! Graceful stop: one `allot serve` under load, sent SIGTERM (the second
//! time SIGINT) at a random moment, restarted on the same database, a few
//! times. Each stop must exit
//! 0 within 10 s; every request the server took in was answered before it
//! went (a request without an answer never reached it: sent again after the
//! restart, it is decided now, never replayed); every acknowledged write is
//! in the ledger after the restart; the SQLite database is closed cleanly
//! (no WAL file left behind).

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::api::Http;
use crate::harness::{create_key, Server};
use crate::many_writers::SERVER_ENV;
use crate::workload::{fail, join, setup, Keys, Load, Round};
use crate::{exclusive, profile, seed};

/// What issue 8 asks of a stop.
const EXIT_WITHIN: Duration = Duration::from_secs(10);
/// Stops per backend.
const STOPS: usize = 3;

async fn graceful(test: &str, db: String, wal: Option<&Path>) {
    let _serial = exclusive().await;
    let profile = profile();
    let seed = seed(test);
    let mut rng = StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    let started =
        tokio::task::block_in_place(|| Server::start("graceful", &db, dir.path(), &SERVER_ENV));
    let admin = started
        .admin_key
        .expect("the first start prints the one-time admin key");
    let mut server = started.server;
    let manager = tokio::task::block_in_place(|| create_key(&db, "manager"));
    let http = Http::new();
    let keys = Keys { admin, manager };
    let fixture = setup(&http, &server.url, &keys, 100, 40).await;
    let load = Load::new(http, keys, fixture, "graceful");

    let mut acknowledged = 0usize;
    let mut slowest = Duration::ZERO;
    for cycle in 0..STOPS {
        let stop = Arc::new(AtomicBool::new(false));
        let handles = load.spawn(
            &Round {
                targets: vec![server.url.clone()],
                clients: profile.clients_per_server,
                cycle,
                seed,
                stop_on_loss: true,
            },
            &stop,
        );
        let (lo, hi) = profile.kill_after_ms;
        tokio::time::sleep(Duration::from_millis(rng.gen_range(lo..hi))).await;
        server.assert_running();
        let signal = if cycle == 1 { "INT" } else { "TERM" };
        let (status, took) = tokio::task::block_in_place(|| {
            server.stop(signal, EXIT_WITHIN + Duration::from_secs(5))
        });
        stop.store(true, Ordering::Relaxed);
        join(handles).await;
        let status = status.unwrap_or_else(|| {
            panic!(
                "{test}: no exit within {:?} of SIG{signal}:\n{}",
                EXIT_WITHIN + Duration::from_secs(5),
                server.log_tail(40)
            )
        });
        assert_eq!(
            status.code(),
            Some(0),
            "{test}: SIG{signal} must end in exit 0, got {status}:\n{}",
            server.log_tail(40)
        );
        assert!(
            took < EXIT_WITHIN,
            "{test}: exit took {took:?} after SIG{signal}"
        );
        slowest = slowest.max(took);
        if let Some(wal) = wal {
            let left = std::fs::metadata(wal).map(|m| m.len()).unwrap_or(0);
            assert_eq!(
                left, 0,
                "{test}: {} bytes of WAL left at exit: the database was not closed",
                left
            );
        }
        let (sent, acked) = {
            let book = load.book();
            let this: Vec<_> = book.sent.iter().filter(|s| s.cycle == cycle).collect();
            let acked = this.iter().filter(|s| s.acknowledged()).count();
            (this.len(), acked)
        };
        acknowledged += acked;

        tokio::task::block_in_place(|| server.restart());
        let resolved = load.resolve_uncertain(&server.url).await;
        let verified = load.verify(&server.url).await.unwrap_or_else(|p| {
            fail(
                &format!("{test} after stop {}", cycle + 1),
                &p,
                &[server.log_tail(60)],
            )
        });
        println!(
            "{test}: stop {} (SIG{signal}): exit 0 after {:.0} ms; {sent} requests, {acked} acknowledged (2xx), \
             {resolved} without an answer; ledger {} entries",
            cycle + 1,
            took.as_secs_f64() * 1000.0,
            verified.ledger_entries,
        );
    }
    let stats = load.stats();
    // A request the server had read was answered before it went: one sent
    // again after the restart was never applied before.
    assert_eq!(
        stats.resolved_replayed, 0,
        "{test}: a request applied before the stop went unanswered"
    );
    let problems = server.log_problems();
    if !problems.is_empty() {
        fail(test, &problems, &[server.log_tail(60)]);
    }
    println!(
        "{test}: {STOPS} stops under load (SIGTERM, SIGINT, SIGTERM), every exit 0, slowest {:.0} ms; {} requests, \
         {acknowledged} acknowledged, all in the ledger; {} without an answer (sent again after \
         the restart: {} decided now, {} replayed); outcomes {:?}",
        slowest.as_secs_f64() * 1000.0,
        stats.requests,
        stats.lost,
        stats.resolved_fresh,
        stats.resolved_replayed,
        stats.by_outcome,
    );
}

mod sqlite {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sigterm_under_load() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("allot.db");
        let db = format!("sqlite://{}", path.display());
        let wal = dir.path().join("allot.db-wal");
        super::graceful("graceful::sqlite", db, Some(&wal)).await;
    }
}

mod postgres {
    allot_store_conformance::postgres_test! {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn sigterm_under_load() {
            let admin_url = allot_store_conformance::postgres_admin_url();
            let db = allot_store_postgres::create_fresh_database(&admin_url)
                .await
                .expect("fresh PostgreSQL database");
            super::graceful("graceful::postgres", db, None).await;
        }
    }
}
