//! What every fault suite shares: servers, the load with the fault codes
//! it may see, a probe that times single requests, and the end of a run —
//! every keyed request answered 5xx sent again with its key, then the
//! reliability suite's checks.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;

use crate::api::Http;
use crate::harness::{create_key, Server};
use crate::workload::{fail, setup, Keys, Load};

/// The 5xx codes a fault may cause; any other 5xx (`internal`) is a finding.
pub const FAULT_CODES: [&str; 4] = [
    "database_unavailable",
    "outcome_unknown",
    "overloaded",
    "storage_full",
];

/// Answers that say nothing was applied: sent again with their key, they
/// must be decided now, never replayed.
const NOTHING_APPLIED: [&str; 3] = ["database_unavailable", "overloaded", "storage_full"];

/// Settings of every server in these suites.
pub fn server_env<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut env = vec![
        ("ALLOT_PG_POOL_SIZE", "8"),
        ("ALLOT_SQLITE_SYNCHRONOUS", "normal"),
        ("ALLOT_JOB_INTERVAL_SECONDS", "1"),
    ];
    env.extend_from_slice(extra);
    env
}

/// Starts `n` servers on `db` at once; the one-time admin key.
pub fn start_servers(
    n: usize,
    db: &str,
    dir: &Path,
    env: &[(&str, &str)],
) -> (Vec<Server>, String) {
    let started: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..n)
            .map(|i| scope.spawn(move || Server::start(&format!("server{i}"), db, dir, env)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("start a server"))
            .collect()
    });
    let admin = started
        .iter()
        .find_map(|s| s.admin_key.clone())
        .expect("some start printed the one-time admin key");
    (started.into_iter().map(|s| s.server).collect(), admin)
}

/// The fixture and the load, tolerating the fault codes. `key_db`: where
/// `allot keys create` makes the manager key (the database, not a proxy).
pub async fn load(base: &str, key_db: &str, admin: String, tag: &str) -> Arc<Load> {
    let manager = tokio::task::block_in_place(|| create_key(key_db, "manager"));
    let http = Http::new();
    let keys = Keys { admin, manager };
    let fixture = setup(&http, base, &keys, 100, 40).await;
    let load = Load::new(http, keys, fixture, tag);
    load.book().fault_codes = FAULT_CODES.to_vec();
    load
}

/// One request timed by the probe.
#[derive(Debug, Clone)]
pub struct Probed {
    pub status: u16,
    pub code: String,
    pub retry_after: Option<String>,
    pub took: Duration,
}

/// A client of its own for timing single requests (no retries, its own
/// timeout), with the headers the workload's client does not keep.
pub struct Probe {
    client: reqwest::Client,
}

impl Probe {
    pub fn new() -> Probe {
        Probe {
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(40))
                .build()
                .unwrap(),
        }
    }

    pub async fn get(&self, url: &str, auth: Option<&str>) -> Probed {
        let began = Instant::now();
        let mut req = self.client.get(url);
        if let Some(auth) = auth {
            req = req.bearer_auth(auth);
        }
        Probed::read(req.send().await, began).await
    }

    /// `POST` a keyed usage of 1 (the probe's own reference).
    pub async fn post_usage(&self, base: &str, admin: &str, ent: &str, name: &str) -> Probed {
        let began = Instant::now();
        let resp = self
            .client
            .post(format!("{base}/v1/entitlements/{ent}/usage"))
            .bearer_auth(admin)
            .header("Idempotency-Key", name)
            .json(&serde_json::json!({ "quantity": 1, "reference": name }))
            .send()
            .await;
        Probed::read(resp, began).await
    }
}

/// What a run ends with.
#[derive(Debug, Default)]
pub struct Summary {
    pub requests: u64,
    pub acknowledged: usize,
    /// First answers that were a 5xx, by code.
    pub faults: BTreeMap<String, u64>,
    /// Keyed 5xx sent again with their key: (code, replayed, decided now).
    pub resolved: BTreeMap<String, (u64, u64)>,
    pub ledger_entries: usize,
}

impl Summary {
    pub fn five_xx(&self) -> u64 {
        self.faults.values().sum()
    }

    pub fn line(&self) -> String {
        format!(
            "{} requests, {} acknowledged (all in the ledger once), 5xx {:?}, resent with their key \
             (code: replayed, decided now) {:?}, ledger {} entries, 0 lost, 0 doubled",
            self.requests, self.acknowledged, self.faults, self.resolved, self.ledger_entries
        )
    }
}

/// Ends a run once the fault is over: every keyed request without a
/// certain answer is sent again with its key (a replay, or decided now);
/// one answered "nothing was applied" must not replay; then the ledger,
/// counters, holds and cases are checked against every answer, every hold
/// is settled and they are checked again.
pub async fn finish(
    test: &str,
    load: &Arc<Load>,
    base: &str,
    servers: &mut [Server],
    rng: &mut StdRng,
) -> Summary {
    let mut summary = Summary::default();
    // The 5xx first answers, before they are resolved.
    let fives: Vec<(usize, String, bool)> = {
        let book = load.book();
        book.sent
            .iter()
            .enumerate()
            .filter_map(|(i, s)| {
                let a = s.answer.as_ref()?;
                (a.status >= 500).then(|| {
                    let twin = matches!(&s.op, crate::workload::Op::Usage { reference, .. } if reference.starts_with("twin "));
                    (i, a.code().to_string(), twin || s.req.key.is_none())
                })
            })
            .collect()
    };
    for (_, code, _) in &fives {
        *summary.faults.entry(code.clone()).or_default() += 1;
    }
    load.resolve_uncertain(base).await;
    let mut problems = Vec::new();
    {
        let book = load.book();
        for (i, code, unmatched) in &fives {
            let s = &book.sent[*i];
            if s.req.key.is_none() {
                continue;
            }
            let Some(again) = &s.answer else { continue };
            let entry = summary.resolved.entry(code.clone()).or_default();
            if again.replayed {
                entry.0 += 1;
            } else {
                entry.1 += 1;
            }
            if again.replayed && !*unmatched && NOTHING_APPLIED.contains(&code.as_str()) {
                problems.push(format!(
                    "{} {} was answered {code} (nothing applied), but sent again with its key it replayed {} {}",
                    s.req.method, s.req.path, again.status, again.body
                ));
            }
        }
    }
    let logs = |servers: &[Server]| servers.iter().map(|s| s.log_tail(40)).collect::<Vec<_>>();
    if !problems.is_empty() {
        fail(test, &problems, &logs(servers));
    }
    let verified = load
        .verify(base)
        .await
        .unwrap_or_else(|p| fail(test, &p, &logs(servers)));
    assert!(verified.exact, "every keyed request has an answer");
    load.settle_all(base, rng).await;
    let last = load
        .verify(base)
        .await
        .unwrap_or_else(|p| fail(&format!("{test} (holds settled)"), &p, &logs(servers)));
    for server in servers.iter_mut() {
        server.assert_running();
        let panics: Vec<String> = server
            .log_problems()
            .into_iter()
            .filter(|l| l.contains("panicked"))
            .collect();
        if !panics.is_empty() {
            fail(test, &panics, &logs(servers));
        }
    }
    let stats = load.stats();
    summary.requests = stats.requests;
    summary.acknowledged = load.book().sent.iter().filter(|s| s.acknowledged()).count();
    summary.ledger_entries = last.ledger_entries;
    summary
}

impl Probed {
    /// What a probe's request got: status, error code, `Retry-After`, time taken.
    async fn read(sent: reqwest::Result<reqwest::Response>, began: Instant) -> Probed {
        match sent {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let retry_after = resp
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                let body: serde_json::Value = resp.json().await.unwrap_or_default();
                Probed {
                    status,
                    code: body
                        .pointer("/error/code")
                        .and_then(|c| c.as_str())
                        .unwrap_or_default()
                        .to_string(),
                    retry_after,
                    took: began.elapsed(),
                }
            }
            Err(e) => Probed {
                status: 0,
                code: format!("no answer: {e}"),
                retry_after: None,
                took: began.elapsed(),
            },
        }
    }
}
