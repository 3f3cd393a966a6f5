//! A slow database: 50 ms added to every round trip between `allot serve`
//! and PostgreSQL (the proxy delays each message to the server). The same
//! load runs first without the delay, then with it: throughput falls,
//! several requests share each slow transaction (group commit), no request
//! fails or times out (the service's deadline is 30 s), and the checks hold.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::SeedableRng;

use crate::common::{finish, load, server_env, start_servers};
use crate::cut::via;
use crate::pg::{self, OwnPostgres};
use crate::proxy::Proxy;
use crate::workload::{join, Load, Round};
use crate::{exclusive, profile, seed};

const DELAY: Duration = Duration::from_millis(50);

/// `allot_write_batch_size`'s (sum, count) from `/metrics`.
async fn batch_sizes(base: &str) -> (f64, f64) {
    let text = reqwest::get(format!("{base}/metrics"))
        .await
        .expect("GET /metrics")
        .text()
        .await
        .unwrap();
    let value = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (
        value("allot_write_batch_size_sum "),
        value("allot_write_batch_size_count "),
    )
}

/// Runs one phase of the load: requests answered, batches (sum, count).
async fn phase(
    load: &Arc<Load>,
    base: &str,
    clients: usize,
    cycle: usize,
    seed: u64,
    how_long: Duration,
) -> (u64, f64, f64, Duration) {
    let (sum0, count0) = batch_sizes(base).await;
    let before = load.stats().requests;
    let stop = Arc::new(AtomicBool::new(false));
    let began = Instant::now();
    let handles = load.spawn(
        &Round {
            targets: vec![base.to_string()],
            clients,
            cycle,
            seed,
            stop_on_loss: false,
        },
        &stop,
    );
    tokio::time::sleep(how_long).await;
    stop.store(true, Ordering::Relaxed);
    join(handles).await;
    let took = began.elapsed();
    let (sum1, count1) = batch_sizes(base).await;
    (
        load.stats().requests - before,
        sum1 - sum0,
        count1 - count0,
        took,
    )
}

mod postgres {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn fifty_ms_per_round_trip() {
        let test = "slow::postgres";
        let Some(bin) = pg::available(test) else {
            return;
        };
        let _serial = exclusive().await;
        let profile = profile();
        let seed = seed(test);
        let mut rng = StdRng::seed_from_u64(seed);
        let pg = tokio::task::block_in_place(|| OwnPostgres::init(bin));
        let direct = allot_store_postgres::create_fresh_database(&pg.url())
            .await
            .expect("a database on the test's own PostgreSQL");
        let proxy = Proxy::start(pg.port).await;
        let db = via(&direct, pg.port, proxy.port);
        let dir = tempfile::tempdir().unwrap();
        // A slow database, not shedding, is tested here: every client is
        // admitted (the heavy profile's 160 are more than the default
        // `ALLOT_MAX_REQUESTS`, 128), and the limit does not adapt (it
        // would shrink on the slower answers: `shed.rs`).
        let env = server_env(&[
            ("ALLOT_PG_POOL_SIZE", "16"),
            ("ALLOT_MAX_REQUESTS", "1024"),
            ("ALLOT_ADAPTIVE_LIMIT", "false"),
        ]);
        let (mut servers, admin) =
            tokio::task::block_in_place(|| start_servers(1, &db, dir.path(), &env));
        let base = servers[0].url.clone();
        let load = load(&base, &direct, admin, "slow").await;
        let clients = profile.clients_per_server * 5;

        let (fast_n, fast_sum, fast_count, fast_took) =
            phase(&load, &base, clients, 0, seed, profile.load / 2).await;
        proxy.set_delay(DELAY);
        let (slow_n, slow_sum, slow_count, slow_took) =
            phase(&load, &base, clients, 1, seed, profile.load).await;
        proxy.set_delay(Duration::ZERO);

        let summary = finish(test, &load, &base, &mut servers, &mut rng).await;
        let per_s = |n: u64, d: Duration| n as f64 / d.as_secs_f64();
        let mean = |sum: f64, count: f64| if count > 0.0 { sum / count } else { 0.0 };
        println!(
            "{test}: {clients} clients; without delay {:.0} req/s, mean batch {:.1} ({} batches); \
             with {DELAY:?} per round trip {:.0} req/s, mean batch {:.1} ({} batches); {}",
            per_s(fast_n, fast_took),
            mean(fast_sum, fast_count),
            fast_count,
            per_s(slow_n, slow_took),
            mean(slow_sum, slow_count),
            slow_count,
            summary.line()
        );
        let stats = load.stats();
        let timeouts: u64 = stats
            .by_outcome
            .iter()
            .filter(|(k, _)| k.contains(" 408"))
            .map(|(_, v)| v)
            .sum();
        assert_eq!(
            summary.five_xx(),
            0,
            "a slow database is no failure: {:?}",
            summary.faults
        );
        assert_eq!(
            timeouts, 0,
            "no request may time out below the 30 s deadline"
        );
        assert_eq!(stats.lost, 0, "every request was answered");
        assert!(slow_n > 0, "requests were answered with the delay");
        // Group commit carries the slow round trips: several requests share
        // each transaction. (Whether batches are larger than without the
        // delay depends on the clients: these wait for their answers, so
        // a slower database also slows what they offer; RELIABILITY.md.)
        assert!(
            mean(slow_sum, slow_count) >= 2.0,
            "requests share the slow transactions (mean batch {:.1})",
            mean(slow_sum, slow_count)
        );
    }
}
