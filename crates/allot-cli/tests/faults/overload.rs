//! Overload: `allot serve` with a tiny request limit and write queue
//! (`ALLOT_MAX_REQUESTS`, `ALLOT_WRITE_QUEUE`) under many more clients.
//! The excess is answered 503 `overloaded` with `Retry-After` (timed by a
//! burst of the probe's reads; the latency of what is accepted is the
//! bench's `overload` scenario, not a timing asserted here), what was shed
//! left no trace, and the checks hold.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::SeedableRng;

use crate::common::{finish, load, server_env, start_servers, Probe, Probed};
use crate::workload::{fail, join, Round};
use crate::{exclusive, profile, seed};

mod sqlite {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn excess_shed_with_503_and_retry_after() {
        let test = "overload::sqlite";
        let _serial = exclusive().await;
        let profile = profile();
        let seed = seed(test);
        let mut rng = StdRng::seed_from_u64(seed);
        let dir = tempfile::tempdir().unwrap();
        let db = format!("sqlite://{}", dir.path().join("allot.db").display());
        let env = server_env(&[("ALLOT_MAX_REQUESTS", "6"), ("ALLOT_WRITE_QUEUE", "4")]);
        let (mut servers, admin) =
            tokio::task::block_in_place(|| start_servers(1, &db, dir.path(), &env));
        let base = servers[0].url.clone();
        let load = load(&base, &db, admin.clone(), "over").await;
        let ent = load.fixture.usage_ents[0].clone();
        let probe = Arc::new(Probe::new());

        let stop = Arc::new(AtomicBool::new(false));
        let handles = load.spawn(
            &Round {
                targets: vec![base.clone()],
                clients: profile.clients_per_server * 4,
                cycle: 0,
                seed,
                stop_on_loss: false,
            },
            &stop,
        );
        // Bursts of reads beside the load: some shed, all answered.
        let mut burst: Vec<Probed> = Vec::new();
        for _ in 0..5 {
            tokio::time::sleep(profile.load / 5).await;
            let reads: Vec<_> = (0..64)
                .map(|_| {
                    let (probe, url, admin) = (
                        probe.clone(),
                        format!("{base}/v1/entitlements/{ent}/balance"),
                        admin.clone(),
                    );
                    tokio::spawn(async move { probe.get(&url, Some(&admin)).await })
                })
                .collect();
            for r in reads {
                burst.push(r.await.unwrap());
            }
        }
        stop.store(true, Ordering::Relaxed);
        join(handles).await;

        let shed: Vec<&Probed> = burst.iter().filter(|p| p.status == 503).collect();
        let mut problems = Vec::new();
        for p in &burst {
            match p.status {
                200 => {}
                503 if p.code == "overloaded" && p.retry_after.is_some() => {}
                _ => problems.push(format!("burst read answered {p:?}")),
            }
        }
        if !problems.is_empty() {
            fail(test, &problems, &[servers[0].log_tail(30)]);
        }
        let mut took: Vec<Duration> = shed.iter().map(|p| p.took).collect();
        took.sort();
        let summary = finish(test, &load, &base, &mut servers, &mut rng).await;
        println!(
            "{test}: max 6 requests at once, write queue 4, {} clients; burst reads: {} answered, {} shed \
             503 overloaded with Retry-After (median {:?}, slowest {:?}); {}",
            profile.clients_per_server * 4,
            burst.len(),
            shed.len(),
            took.get(took.len() / 2),
            took.last(),
            summary.line()
        );
        assert!(
            summary.faults.get("overloaded").copied().unwrap_or(0) + shed.len() as u64 > 0,
            "nothing was shed"
        );
        let others: Vec<&String> = summary
            .faults
            .keys()
            .filter(|c| c.as_str() != "overloaded")
            .collect();
        assert!(
            others.is_empty(),
            "5xx other than overloaded: {:?}",
            summary.faults
        );
    }
}
