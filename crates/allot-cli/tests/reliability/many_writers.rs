//! Many writers at once: concurrent clients (and, on PostgreSQL, three
//! processes on one database) against a few restricted entitlements; then
//! the database is checked against every answer given.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use rand::rngs::StdRng;
use rand::SeedableRng;

use crate::api::Http;
use crate::harness::{create_key, Server};
use crate::workload::{fail, join, setup, Keys, Load, Round};
use crate::{exclusive, profile, seed};

/// Servers: their settings for these runs.
pub const SERVER_ENV: [(&str, &str); 3] = [
    ("ALLOT_PG_POOL_SIZE", "8"),
    // The default, said outright: durable across a process crash.
    ("ALLOT_SQLITE_SYNCHRONOUS", "normal"),
    // Background jobs run often, beside the load, on every instance.
    ("ALLOT_JOB_INTERVAL_SECONDS", "1"),
];

async fn many_writers(test: &str, db: String, processes: usize) {
    let _serial = exclusive().await;
    let profile = profile();
    let seed = seed(test);
    let dir = tempfile::tempdir().unwrap();
    // All processes start at once on the empty database: migrations and
    // the first admin key race, and must not fail.
    let started = tokio::task::block_in_place(|| {
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..processes)
                .map(|i| {
                    let (db, dir) = (&db, dir.path());
                    scope.spawn(move || Server::start(&format!("server{i}"), db, dir, &SERVER_ENV))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("start a server"))
                .collect::<Vec<_>>()
        })
    });
    let admin = started
        .iter()
        .find_map(|s| s.admin_key.clone())
        .expect("some start printed the one-time admin key");
    let mut servers: Vec<Server> = started.into_iter().map(|s| s.server).collect();
    let manager = tokio::task::block_in_place(|| create_key(&db, "manager"));
    let targets: Vec<String> = servers.iter().map(|s| s.url.clone()).collect();
    let http = Http::new();
    let keys = Keys { admin, manager };
    let (usage_total, cases_total) = if profile.heavy { (300, 120) } else { (100, 40) };
    let fixture = setup(&http, &targets[0], &keys, usage_total, cases_total).await;
    let load = Load::new(http, keys, fixture, "mw");

    let began = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let clients = processes * profile.clients_per_server;
    let handles = load.spawn(
        &Round {
            targets: targets.clone(),
            clients,
            cycle: 0,
            seed,
            stop_on_loss: false,
        },
        &stop,
    );
    tokio::time::sleep(profile.load).await;
    stop.store(true, Ordering::Relaxed);
    join(handles).await;
    let elapsed = began.elapsed();
    for s in &mut servers {
        s.assert_running();
    }
    let logs = || servers.iter().map(|s| s.log_tail(30)).collect::<Vec<_>>();

    let stats = load.stats();
    if stats.lost > 0 {
        fail(
            test,
            &[format!("{} requests got no answer", stats.lost)],
            &logs(),
        );
    }
    // Checked with holds still open, through the first server ...
    let first = load
        .verify(&targets[0])
        .await
        .unwrap_or_else(|p| fail(test, &p, &logs()));
    // ... and, all holds settled, through the last one.
    let mut rng = StdRng::seed_from_u64(seed);
    load.settle_all(targets.last().unwrap(), &mut rng).await;
    let last = load
        .verify(targets.last().unwrap())
        .await
        .unwrap_or_else(|p| fail(test, &p, &logs()));
    assert!(first.exact && last.exact);
    let problems: Vec<String> = servers.iter().flat_map(|s| s.log_problems()).collect();
    if problems.iter().any(|l| l.contains("panicked")) {
        fail(test, &problems, &logs());
    }
    let stats = load.stats();
    println!(
        "{test}: {} processes x {} clients, {:.1} s: {} requests ({:.0}/s), {} replays compared, \
         {} duplicate references tried, {} twin sends ({} answered in flight), 0 lost; outcomes {:?}; ledger {} entries, {} cases ({} open); \
         used {:?}; refusal replays without the replay header: {}; server log errors: {}",
        processes,
        profile.clients_per_server,
        elapsed.as_secs_f64(),
        stats.requests,
        stats.requests as f64 / elapsed.as_secs_f64(),
        stats.replays,
        stats.duplicate_references,
        stats.twins,
        stats.in_flight,
        stats.by_outcome,
        last.ledger_entries,
        last.cases,
        last.open_cases,
        last.used,
        stats.refusal_replays_without_header,
        problems.len(),
    );
}

mod sqlite {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_process_many_clients() {
        let dir = tempfile::tempdir().unwrap();
        let db = format!("sqlite://{}", dir.path().join("allot.db").display());
        super::many_writers("many_writers::sqlite", db, 1).await;
    }
}

mod postgres {
    allot_store_conformance::postgres_test! {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn three_processes_one_database() {
            let admin_url = allot_store_conformance::postgres_admin_url();
            let db = allot_store_postgres::create_fresh_database(&admin_url)
                .await
                .expect("fresh PostgreSQL database");
            super::many_writers("many_writers::postgres", db, 3).await;
        }
    }
}
