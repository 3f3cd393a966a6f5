//! Connections cut between `allot serve` and PostgreSQL: at random moments,
//! and right after a `COMMIT` was forwarded, before its answer (the commit
//! happened; `allot` cannot know). An unknown outcome must be answered 500
//! `outcome_unknown`, never "nothing was applied"; sent again with its key,
//! each such request replays (it had committed) or is applied once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::common::{finish, load, server_env, start_servers};
use crate::pg::{self, OwnPostgres};
use crate::proxy::Proxy;
use crate::workload::{join, Round};
use crate::{exclusive, profile, seed};

/// Chance of cutting a connection right after a `COMMIT`.
const COMMIT_CUT: f64 = 0.05;

/// The same database URL, through the proxy's port.
pub fn via(url: &str, from: u16, to: u16) -> String {
    let through = url.replace(&format!(":{from}/"), &format!(":{to}/"));
    assert_ne!(through, url, "no port {from} in {url}");
    through
}

fn outcome_unknown_so_far(load: &crate::workload::Load) -> u64 {
    load.book()
        .sent
        .iter()
        .filter(|s| {
            s.answer
                .as_ref()
                .is_some_and(|a| a.code() == "outcome_unknown")
        })
        .count() as u64
}

mod postgres {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn connections_cut_at_random_and_after_commit() {
        let test = "cut::postgres";
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
        let proxy = Arc::new(Proxy::start(pg.port).await);
        let db = via(&direct, pg.port, proxy.port);
        let dir = tempfile::tempdir().unwrap();
        let env = server_env(&[]);
        let (mut servers, admin) =
            tokio::task::block_in_place(|| start_servers(1, &db, dir.path(), &env));
        let base = servers[0].url.clone();
        let load = load(&base, &direct, admin, "cut").await;

        // Faults on: commits cut at random, and a random connection every 50-300 ms.
        proxy.set_commit_cuts(COMMIT_CUT);
        let stop = Arc::new(AtomicBool::new(false));
        let cutter = {
            let (proxy, stop) = (proxy.clone(), stop.clone());
            let mut rng = StdRng::seed_from_u64(seed ^ 0xC07);
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_millis(rng.gen_range(50..300))).await;
                    proxy.cut_one(&mut rng);
                }
            })
        };
        let began = Instant::now();
        let clients = load.spawn(
            &Round {
                targets: vec![base.clone()],
                clients: profile.clients_per_server,
                cycle: 0,
                seed,
                stop_on_loss: false,
            },
            &stop,
        );
        // Run the load for its time, and on until some commit's outcome
        // was unknown (bounded).
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let enough = began.elapsed() >= profile.load && outcome_unknown_so_far(&load) > 0;
            if enough || began.elapsed() >= profile.load * 5 {
                break;
            }
        }
        stop.store(true, Ordering::Relaxed);
        join(clients).await;
        cutter.await.unwrap();
        proxy.set_commit_cuts(0.0);
        let elapsed = began.elapsed();

        let summary = finish(test, &load, &base, &mut servers, &mut rng).await;
        let cuts = proxy.stats();
        println!(
            "{test}: {:.1} s of load through the proxy: {} connections, {} commits forwarded, \
             {} cut right after COMMIT, {} cut at random; {}",
            elapsed.as_secs_f64(),
            cuts.connections,
            cuts.commits,
            cuts.cut_after_commit,
            cuts.cut_random,
            summary.line()
        );
        assert!(
            cuts.cut_after_commit > 0,
            "no connection was cut after a COMMIT"
        );
        let unknown = summary.faults.get("outcome_unknown").copied().unwrap_or(0);
        assert!(
            unknown > 0,
            "a connection cut after COMMIT must be answered outcome_unknown (5xx seen: {:?})",
            summary.faults
        );
    }
}
