//! Model-based test: random sequences of case, time-entry and reservation
//! operations through the HTTP API, checked after every step against a
//! small independent model of the rules (DESIGN 2.4), on both backends.

use std::collections::HashMap;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::TestApp;

crate::on_both_backends!(random_case_sequences_agree_with_the_model);

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Status {
    Open,
    Resolved,
    Cancelled,
}

#[derive(Clone, Debug)]
struct Case {
    id: String,
    ent: usize,
    status: Status,
    deleted: bool,
    /// (entry id, hours in thousandths as logged)
    entries: Vec<(String, i64)>,
    /// What this case has charged where: entitlement index → thousandths.
    charged: HashMap<usize, i64>,
}

/// Entitlements: 0 cases/creation, 1 cases/resolution, 2 hours/creation with 0.5 h rounding, 3 visits for holds.
const TOTALS: [i64; 4] = [6_000, 4_000, 8_000, 5_000];

/// What a case should have charged on its entitlement, by the rules' table.
fn target(case: &Case) -> i64 {
    match (case.ent, case.status) {
        (0, Status::Cancelled) => 0,
        (0, _) => 1_000,
        (1, Status::Resolved) => 1_000,
        (2, _) => case
            .entries
            .iter()
            .map(|(_, h)| (h + 499) / 500 * 500)
            .sum(),
        _ => 0,
    }
}

#[derive(Default)]
struct Model {
    used: [i64; 4],
    held: i64,
    holds: Vec<(String, i64)>,
}

impl Model {
    /// Applies a case's new state if every increase fits its cap; returns whether it did.
    fn settle(&mut self, before: &Case, after: &Case) -> bool {
        let mut delta = [0i64; 4];
        for (e, q) in &before.charged {
            delta[*e] -= q;
        }
        let t = target(after);
        if t != 0 {
            delta[after.ent] += t;
        }
        for (e, d) in delta.iter().enumerate() {
            let held = if e == 3 { self.held } else { 0 };
            if *d > 0 && self.used[e] + held + d > TOTALS[e] {
                return false;
            }
        }
        for (used, d) in self.used.iter_mut().zip(delta) {
            *used += d;
        }
        true
    }
}

fn with_charge(mut c: Case) -> Case {
    c.charged.clear();
    let t = target(&c);
    if t != 0 {
        c.charged.insert(c.ent, t);
    }
    c
}

async fn random_case_sequences_agree_with_the_model(app: TestApp) {
    for seed in 0..3u64 {
        run(&app, seed).await;
    }
}

async fn run(app: &TestApp, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let acc = app.account(&format!("Model {seed}")).await;
    let ents = [
        app.active_entitlement(&acc, json!({ "unit": "cases", "total": 6 }))
            .await,
        app.active_entitlement(
            &acc,
            json!({ "unit": "cases", "total": 4, "decrement_on": "resolution" }),
        )
        .await,
        app.active_entitlement(
            &acc,
            json!({ "unit": "hours", "total": 8, "rounding": 0.5 }),
        )
        .await,
        app.active_entitlement(&acc, json!({ "unit": "visits", "total": 5 }))
            .await,
    ];
    let mut model = Model::default();
    let mut cases: Vec<Case> = Vec::new();
    for step in 0..70 {
        let live: Vec<usize> = (0..cases.len()).filter(|i| !cases[*i].deleted).collect();
        let choice = rng.gen_range(0..11);
        let ctx = format!("seed {seed} step {step} op {choice}");
        match choice {
            0 | 1 => {
                let ent = rng.gen_range(0..3);
                let a = app
                    .post(
                        "/v1/cases",
                        json!({ "account_id": acc, "title": "m", "entitlement_id": ents[ent] }),
                    )
                    .await;
                let fresh = Case {
                    id: String::new(),
                    ent,
                    status: Status::Open,
                    deleted: false,
                    entries: vec![],
                    charged: HashMap::new(),
                };
                let fits = model.settle(&fresh, &fresh.clone());
                assert_eq!(a.status == StatusCode::CREATED, fits, "{ctx}: {:?}", a.body);
                if fits {
                    cases.push(with_charge(Case {
                        id: a.id(),
                        ..fresh
                    }));
                }
            }
            2..=5 if !live.is_empty() => {
                let i = live[rng.gen_range(0..live.len())];
                let before = cases[i].clone();
                let (path, next) = match choice {
                    2 => (
                        "resolve",
                        (before.status == Status::Open).then_some(Status::Resolved),
                    ),
                    3 => (
                        "cancel",
                        (before.status != Status::Cancelled).then_some(Status::Cancelled),
                    ),
                    4 => (
                        "reactivate",
                        (before.status != Status::Open).then_some(Status::Open),
                    ),
                    _ => ("delete", Some(before.status)),
                };
                let a = if path == "delete" {
                    app.call(
                        Method::DELETE,
                        &format!("/v1/cases/{}", before.id),
                        Some(&app.admin),
                        None,
                        None,
                    )
                    .await
                } else {
                    app.post(&format!("/v1/cases/{}/{path}", before.id), json!({}))
                        .await
                };
                match next {
                    None => assert_eq!(a.code(), "invalid_case_transition", "{ctx}"),
                    Some(_) if path == "delete" => {
                        assert_eq!(a.status, StatusCode::NO_CONTENT, "{ctx}");
                        cases[i].deleted = true;
                    }
                    Some(status) => {
                        let after = with_charge(Case {
                            status,
                            ..before.clone()
                        });
                        let fits = model.settle(&before, &after);
                        assert_eq!(a.status == StatusCode::OK, fits, "{ctx}: {:?}", a.body);
                        if fits {
                            cases[i] = after;
                        }
                    }
                }
            }
            6 if !live.is_empty() => {
                let i = live[rng.gen_range(0..live.len())];
                let before = cases[i].clone();
                let minutes: i64 = rng.gen_range(1..=150);
                let a = app
                    .post(
                        &format!("/v1/cases/{}/time-entries", before.id),
                        json!({ "minutes": minutes }),
                    )
                    .await;
                if before.status == Status::Cancelled {
                    assert_eq!(a.code(), "invalid_case_transition", "{ctx}");
                    continue;
                }
                if before.ent != 2 {
                    assert_eq!(a.code(), "unit_not_hours", "{ctx}");
                    continue;
                }
                let logged = (minutes * 1000 + 59) / 60;
                let mut after = before.clone();
                after.entries.push((String::new(), logged));
                let after = with_charge(after);
                let fits = model.settle(&before, &after);
                assert_eq!(a.status == StatusCode::CREATED, fits, "{ctx}: {:?}", a.body);
                if fits {
                    let entries = a.body["time_entries"].as_array().unwrap();
                    let mut after = after;
                    after.entries.last_mut().unwrap().0 =
                        entries.last().unwrap()["id"].as_str().unwrap().to_string();
                    cases[i] = after;
                }
            }
            7 if !live.is_empty() => {
                let i = live[rng.gen_range(0..live.len())];
                let before = cases[i].clone();
                if before.entries.is_empty() {
                    continue;
                }
                let k = rng.gen_range(0..before.entries.len());
                let path = format!(
                    "/v1/cases/{}/time-entries/{}",
                    before.id, before.entries[k].0
                );
                let a = app
                    .call(Method::DELETE, &path, Some(&app.admin), None, None)
                    .await;
                let mut after = before.clone();
                after.entries.remove(k);
                let after = with_charge(after);
                assert!(
                    model.settle(&before, &after),
                    "{ctx}: a give-back always fits"
                );
                assert_eq!(a.status, StatusCode::OK, "{ctx}: {:?}", a.body);
                cases[i] = after;
            }
            8 if !live.is_empty() => {
                let i = live[rng.gen_range(0..live.len())];
                let before = cases[i].clone();
                let to = rng.gen_range(0..3);
                let a = app
                    .call(
                        Method::PATCH,
                        &format!("/v1/cases/{}", before.id),
                        Some(&app.admin),
                        Some(json!({ "entitlement_id": ents[to] })),
                        None,
                    )
                    .await;
                let after = with_charge(Case {
                    ent: to,
                    ..before.clone()
                });
                let fits = to == before.ent || model.settle(&before, &after);
                assert_eq!(a.status == StatusCode::OK, fits, "{ctx}: {:?}", a.body);
                if fits {
                    cases[i] = after;
                }
            }
            9 => {
                let q = rng.gen_range(1..=2) * 1000;
                let a = app
                    .post(
                        &format!("/v1/entitlements/{}/reservations", ents[3]),
                        json!({ "quantity": q / 1000, "timeout_seconds": 30 }),
                    )
                    .await;
                let fits = model.used[3] + model.held + q <= TOTALS[3];
                assert_eq!(a.status == StatusCode::CREATED, fits, "{ctx}: {:?}", a.body);
                if fits {
                    model.held += q;
                    model
                        .holds
                        .push((a.body["reservation"]["id"].as_str().unwrap().to_string(), q));
                }
            }
            10 if !model.holds.is_empty() => {
                let (id, q) = model.holds.remove(rng.gen_range(0..model.holds.len()));
                let commit = rng.gen_bool(0.5);
                let a = app
                    .post(
                        &format!(
                            "/v1/reservations/{id}/{}",
                            if commit { "commit" } else { "release" }
                        ),
                        json!({}),
                    )
                    .await;
                assert_eq!(a.status, StatusCode::OK, "{ctx}: {:?}", a.body);
                model.held -= q;
                if commit {
                    model.used[3] += q;
                }
            }
            _ => {
                // Let every hold expire.
                app.clock.advance(chrono::Duration::seconds(31));
                allot_server::jobs::run_once(&app.running.state).await;
                model.held = 0;
                model.holds.clear();
            }
        }
        for (e, id) in ents.iter().enumerate() {
            let b = app.balance(id).await;
            let used = (b["used"].as_f64().unwrap() * 1000.0).round() as i64;
            assert_eq!(used, model.used[e], "{ctx}: used of entitlement {e}");
            assert!(used <= TOTALS[e], "{ctx}: cap exceeded");
            if e == 3 {
                assert_eq!(
                    (b["held"].as_f64().unwrap() * 1000.0).round() as i64,
                    model.held,
                    "{ctx}: held"
                );
            }
        }
        if step % 10 == 9 {
            for id in &ents {
                app.assert_ledger_matches(id).await;
            }
        }
    }
}
