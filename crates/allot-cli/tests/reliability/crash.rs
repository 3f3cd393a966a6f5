//! Crash: one `allot serve` under load, SIGKILLed at a random moment,
//! restarted on the same database, again and again. After each restart:
//! the server is ready; every request acknowledged before the kill is in
//! the ledger; requests cut off by the kill, sent again with their key, are
//! either replayed (they had been applied) or decided now (they had left no
//! trace); acknowledged keys replay their first answer; and the ledger,
//! counters, holds and cases agree.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::api::Http;
use crate::harness::{create_key, Server};
use crate::many_writers::SERVER_ENV;
use crate::workload::{fail, join, setup, Keys, Load, Round};
use crate::{exclusive, profile, seed};

async fn crash(test: &str, db: String) {
    let _serial = exclusive().await;
    let profile = profile();
    let seed = seed(test);
    let mut rng = StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    let began = Instant::now();
    let started =
        tokio::task::block_in_place(|| Server::start("crash", &db, dir.path(), &SERVER_ENV));
    let admin = started
        .admin_key
        .expect("the first start prints the one-time admin key");
    let mut server = started.server;
    let manager = tokio::task::block_in_place(|| create_key(&db, "manager"));
    let http = Http::new();
    let keys = Keys { admin, manager };
    let fixture = setup(&http, &server.url, &keys, 100, 40).await;
    let load = Load::new(http, keys, fixture, "crash");

    let mut acknowledged_before_kills = 0usize;
    let mut cut_off = 0usize;
    let mut replays_after_restart = 0usize;
    for cycle in 0..profile.kills {
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
        // SIGKILL: no shutdown of any kind.
        server.kill();
        stop.store(true, Ordering::Relaxed);
        join(handles).await;
        let acked = {
            let book = load.book();
            book.sent
                .iter()
                .filter(|s| s.cycle == cycle && s.acknowledged())
                .count()
        };
        acknowledged_before_kills += acked;

        let again = tokio::task::block_in_place(|| server.restart());
        assert!(
            again.is_none(),
            "a restart on a database with keys must not create another admin key"
        );
        let resolved = load.resolve_uncertain(&server.url).await;
        cut_off += resolved;
        replays_after_restart += load
            .replay_acknowledged(&server.url, cycle, &mut rng, 50)
            .await;
        let verified = load.verify(&server.url).await.unwrap_or_else(|p| {
            fail(
                &format!("{test} after kill {}", cycle + 1),
                &p,
                &[server.log_tail(60)],
            )
        });
        assert!(
            verified.exact,
            "every keyed request has an answer after the restart"
        );
        println!(
            "{test}: kill {} survived: {acked} acknowledged before it, {resolved} cut off and resolved, \
             ledger {} entries, {} open cases",
            cycle + 1,
            verified.ledger_entries,
            verified.open_cases
        );
    }
    load.settle_all(&server.url, &mut rng).await;
    let last = load
        .verify(&server.url)
        .await
        .unwrap_or_else(|p| fail(test, &p, &[server.log_tail(60)]));
    server.assert_running();
    let problems = server.log_problems();
    if problems.iter().any(|l| l.contains("panicked")) {
        fail(test, &problems, &[server.log_tail(60)]);
    }
    let stats = load.stats();
    println!(
        "{test}: {} kills survived in {:.1} s, {} starts; {} requests, {acknowledged_before_kills} acknowledged \
         before a kill, {cut_off} cut off by kills ({} had been applied, {} had not), 0 acknowledged \
         writes lost, {} replays compared ({replays_after_restart} after restarts), {} twin sends; outcomes {:?}; \
         ledger {} entries, used {:?}; refusal replays without the replay header: {}; server log errors: {}",
        profile.kills,
        began.elapsed().as_secs_f64(),
        server.starts,
        stats.requests,
        stats.resolved_replayed,
        stats.resolved_fresh,
        stats.replays,
        stats.twins,
        stats.by_outcome,
        last.ledger_entries,
        last.used,
        stats.refusal_replays_without_header,
        problems.len(),
    );
}

mod sqlite {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn kill_9_and_restart_synchronous_normal() {
        let dir = tempfile::tempdir().unwrap();
        let db = format!("sqlite://{}", dir.path().join("allot.db").display());
        super::crash("crash::sqlite", db).await;
    }
}

mod postgres {
    allot_store_conformance::postgres_test! {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn kill_9_and_restart() {
            let admin_url = allot_store_conformance::postgres_admin_url();
            let db = allot_store_postgres::create_fresh_database(&admin_url)
                .await
                .expect("fresh PostgreSQL database");
            super::crash("crash::postgres", db).await;
        }
    }
}
