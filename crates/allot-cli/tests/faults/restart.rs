//! The database goes away under load: `pg_ctl restart -m fast`, then
//! `pg_ctl stop -m fast` for 10 s and start, with three `allot serve`
//! instances on one database, none of them restarted. While it is away
//! `/readyz` answers 503 and requests are answered 503
//! `database_unavailable` with `Retry-After` at once (timed by a probe);
//! after, every instance is ready again by itself and the checks hold.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::SeedableRng;

use crate::common::{finish, load, server_env, start_servers, Probe, Probed};
use crate::harness::Server;
use crate::pg::{self, OwnPostgres};
use crate::workload::{fail, join, Round};
use crate::{exclusive, profile, seed};

/// How long the database stays stopped.
const STOPPED: Duration = Duration::from_secs(10);
/// An answer during the outage slower than this is not "at once".
const FAST: Duration = Duration::from_secs(2);
/// Every instance must be ready again within this after the database is.
const RECOVERY: Duration = Duration::from_secs(20);

/// Polls every instance's `/readyz` until all answer 200: how long it took.
async fn all_ready(probe: &Probe, servers: &[Server]) -> Duration {
    let began = Instant::now();
    for server in servers {
        loop {
            let r = probe.get(&format!("{}/readyz", server.url), None).await;
            if r.status == 200 {
                break;
            }
            assert!(
                began.elapsed() < RECOVERY,
                "{} not ready {RECOVERY:?} after the database came back: {r:?}\n{}",
                server.name,
                server.log_tail(30)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    began.elapsed()
}

mod postgres {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn restart_and_10s_stop_under_load_three_instances() {
        let test = "restart::postgres";
        let Some(bin) = pg::available(test) else {
            return;
        };
        let _serial = exclusive().await;
        let profile = profile();
        let seed = seed(test);
        let mut rng = StdRng::seed_from_u64(seed);
        let pg = tokio::task::block_in_place(|| OwnPostgres::init(bin));
        let db = allot_store_postgres::create_fresh_database(&pg.url())
            .await
            .expect("a database on the test's own PostgreSQL");
        let dir = tempfile::tempdir().unwrap();
        let env = server_env(&[]);
        let (mut servers, admin) =
            tokio::task::block_in_place(|| start_servers(3, &db, dir.path(), &env));
        let targets: Vec<String> = servers.iter().map(|s| s.url.clone()).collect();
        let load = load(&targets[0], &db, admin.clone(), "restart").await;
        let ent = load.fixture.usage_ents[0].clone();
        let probe = Probe::new();
        let phase = profile.load / 2;

        let mut outage_answers: Vec<Probed> = Vec::new();
        let mut ready_during_outage = 0usize;
        let mut restarts = Vec::new();
        let mut recoveries = Vec::new();
        for outage in 0..profile.outages {
            let stop = Arc::new(AtomicBool::new(false));
            let clients = load.spawn(
                &Round {
                    targets: targets.clone(),
                    clients: profile.clients_per_server * servers.len(),
                    cycle: outage,
                    seed,
                    stop_on_loss: false,
                },
                &stop,
            );
            tokio::time::sleep(phase).await;
            // A restart: seconds at most, connections closed under the load.
            let took = tokio::task::block_in_place(|| pg.restart());
            restarts.push(took);
            recoveries.push(all_ready(&probe, &servers).await);
            tokio::time::sleep(phase).await;

            // A 10 s stop: probe every instance throughout.
            tokio::task::block_in_place(|| pg.stop());
            let stopped_at = Instant::now();
            let mut n = 0;
            while stopped_at.elapsed() < STOPPED {
                for server in &servers {
                    n += 1;
                    let ready = probe.get(&format!("{}/readyz", server.url), None).await;
                    if ready.status != 503 {
                        ready_during_outage += 1;
                    }
                    let read = probe
                        .get(
                            &format!("{}/v1/entitlements/{ent}/balance", server.url),
                            Some(&admin),
                        )
                        .await;
                    let write = probe
                        .post_usage(&server.url, &admin, &ent, &format!("probe-{outage}-{n}"))
                        .await;
                    outage_answers.push(read);
                    outage_answers.push(write);
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            tokio::task::block_in_place(|| pg.start());
            recoveries.push(all_ready(&probe, &servers).await);
            tokio::time::sleep(phase).await;
            stop.store(true, Ordering::Relaxed);
            join(clients).await;
        }

        // During the outage: 503 database_unavailable with Retry-After, fast.
        let mut problems = Vec::new();
        if ready_during_outage > 0 {
            problems.push(format!(
                "/readyz answered other than 503 {ready_during_outage} times while the database was stopped"
            ));
        }
        for a in &outage_answers {
            if a.status != 503 || a.code != "database_unavailable" || a.retry_after.is_none() {
                problems.push(format!("during the outage: {a:?}"));
            } else if a.took > FAST {
                problems.push(format!("slow answer during the outage: {a:?}"));
            }
        }
        if !problems.is_empty() {
            let logs: Vec<String> = servers.iter().map(|s| s.log_tail(30)).collect();
            fail(test, &problems, &logs);
        }
        // The probe's writes were refused whole: the checks below find
        // any ledger entry no request of the book explains.
        let mut took: Vec<Duration> = outage_answers.iter().map(|a| a.took).collect();
        took.sort();
        let slowest = took.last().copied().unwrap_or_default();
        let median = took.get(took.len() / 2).copied().unwrap_or_default();
        let base = targets[0].clone();
        let summary = finish(test, &load, &base, &mut servers, &mut rng).await;
        println!(
            "{test}: {} outage(s) on 3 instances: pg_ctl restart took {:?}; ready again after {:?}; \
             during each {STOPPED:?} stop {} probe answers, all 503 database_unavailable with \
             Retry-After (median {:?}, slowest {:?}), /readyz 503 throughout; {}",
            profile.outages,
            restarts,
            recoveries,
            outage_answers.len(),
            median,
            slowest,
            summary.line()
        );
        assert!(
            summary
                .faults
                .get("database_unavailable")
                .copied()
                .unwrap_or(0)
                > 0,
            "the load saw no database_unavailable during the outage"
        );
    }
}
