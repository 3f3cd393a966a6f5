//! The load: concurrent clients mixing every kind of write, a book of what
//! each request answered, and the checks of the database (read through the
//! API) against the book.
//!
//! Every write names itself: direct usage by a unique `reference`, an
//! adjustment by a unique `reason` (the ledger's reference), a reservation
//! by its reference (carried by the committed entry), a case by its title and
//! then its id (the reference of its ledger entries). So the ledger can be
//! matched to the book entry by entry: whatever was acknowledged is there
//! exactly once, whatever was refused is absent, and whatever got no answer
//! (cut off by a kill) is there at most once.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use crate::api::{milli, Answer, Http, Request};

/// Share of answered requests sent again at once with the same key and body.
const REPLAY_P: f64 = 0.2;
/// Share of usage sent twice at once with the same key (to two servers
/// when there are several).
const TWIN_P: f64 = 0.03;
/// Reservations last long enough never to expire during a run.
const HOLD_SECONDS: u32 = 3600;

pub struct Keys {
    /// Usage and reservations.
    pub admin: String,
    /// Adjustments and cases (created with `allot keys create --role manager`).
    pub manager: String,
}

/// Two restricted unit entitlements and one restricted cases entitlement
/// (used on creation), all active today, one period.
pub struct Fixture {
    pub usage_ents: Vec<String>,
    pub cases_ent: String,
    pub account: String,
}

impl Fixture {
    pub fn all(&self) -> Vec<String> {
        let mut all = self.usage_ents.clone();
        all.push(self.cases_ent.clone());
        all
    }
}

pub async fn setup(
    http: &Http,
    base: &str,
    keys: &Keys,
    usage_total: u32,
    cases_total: u32,
) -> Fixture {
    let admin = keys.admin.as_str();
    let account = http
        .must(
            base,
            &Request::post(
                admin,
                "/v1/accounts",
                Some(json!({ "name": "Reliability" })),
                None,
            ),
            201,
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let today = chrono::Utc::now().date_naive();
    let start = (today - chrono::Duration::days(10)).to_string();
    let end = (today + chrono::Duration::days(300)).to_string();
    let create = |name: &str, unit: &str, total: u32| {
        json!({
            "account_id": account, "name": name, "unit": unit, "total": total, "restrict": true,
            "decrement_on": "creation", "period": "none", "start_date": start, "end_date": end,
        })
    };
    let u1 = active(http, base, admin, create("Units A", "units", usage_total)).await;
    let u2 = active(http, base, admin, create("Units B", "units", usage_total)).await;
    let cases = active(http, base, admin, create("Cases", "cases", cases_total)).await;
    Fixture {
        usage_ents: vec![u1, u2],
        cases_ent: cases,
        account,
    }
}

/// Creates and activates an entitlement.
async fn active(http: &Http, base: &str, admin: &str, body: Value) -> String {
    let ent = http
        .must(
            base,
            &Request::post(admin, "/v1/entitlements", Some(body), None),
            201,
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!("/v1/entitlements/{ent}/activate");
    http.must(
        base,
        &Request::post(admin, &path, Some(json!({})), None),
        200,
    )
    .await;
    ent
}

/// What a request meant to do.
#[derive(Debug, Clone)]
pub enum Op {
    Usage {
        ent: String,
        reference: String,
    },
    Adjust {
        ent: String,
        reason: String,
    },
    Hold {
        ent: String,
        reference: String,
    },
    Commit {
        ent: String,
        reservation: String,
        reference: String,
    },
    Release {
        reservation: String,
    },
    OpenCase {
        title: String,
    },
    CancelCase {
        case: String,
    },
    /// An acknowledged usage's key with another body: must answer 422 and
    /// record nothing.
    Misuse {
        reference: String,
    },
}

impl Op {
    pub fn kind(&self) -> &'static str {
        match self {
            Op::Usage { .. } => "usage",
            Op::Adjust { .. } => "adjust",
            Op::Hold { .. } => "hold",
            Op::Commit { .. } => "commit",
            Op::Release { .. } => "release",
            Op::OpenCase { .. } => "open_case",
            Op::CancelCase { .. } => "cancel_case",
            Op::Misuse { .. } => "key_misuse",
        }
    }
}

/// One request and its answer (`None`: no answer came back).
#[derive(Debug, Clone)]
pub struct Sent {
    pub op: Op,
    pub req: Request,
    pub answer: Option<Answer>,
    pub cycle: usize,
    /// Answered only when sent again after a restart.
    pub resolved: bool,
}

/// "Another request with this key is in flight": a passing answer, not
/// stored, so never replayed.
fn in_flight(answer: &Answer) -> bool {
    answer.status == 409 && answer.code() == "idempotency_key_in_flight"
}

/// No answer, or one that does not say what happened (timeout, 5xx).
fn uncertain(answer: &Option<Answer>) -> bool {
    match answer {
        None => true,
        Some(a) => a.status == 408 || a.status >= 500,
    }
}

impl Sent {
    pub fn uncertain(&self) -> bool {
        uncertain(&self.answer)
    }

    pub fn acknowledged(&self) -> bool {
        self.answer.as_ref().is_some_and(|a| a.ok())
    }
}

#[derive(Debug, Default, Clone)]
pub struct Stats {
    /// Requests sent, first sends only.
    pub requests: u64,
    /// Same key and body sent again, answers compared.
    pub replays: u64,
    /// Replayed refusals (non-2xx) that came without `idempotent-replayed`.
    pub refusal_replays_without_header: u64,
    /// Usage sent with a reference another request already used.
    pub duplicate_references: u64,
    /// Replays answered "still in flight" (the same key was, from another client).
    pub in_flight: u64,
    /// Keyed usage sent twice at once.
    pub twins: u64,
    /// Requests without an answer.
    pub lost: u64,
    /// First answers by status and error code.
    pub by_outcome: BTreeMap<String, u64>,
    /// Requests cut off by a kill, answered after the restart: applied
    /// before the kill (a replay), or not (decided now).
    pub resolved_replayed: u64,
    pub resolved_fresh: u64,
}

#[derive(Default)]
pub struct Book {
    pub sent: Vec<Sent>,
    /// Acknowledged holds not yet being settled: (entitlement, reservation, reference).
    held: Vec<(String, String, String)>,
    /// Acknowledged case openings not yet being cancelled.
    open_cases: Vec<String>,
    /// (entitlement, reference) of direct usage sent, for duplicate attempts.
    references: Vec<(String, String)>,
    /// Acknowledged keyed usage (index into `sent`), for key misuse.
    keyed_usage: Vec<usize>,
    pub stats: Stats,
    /// 5xx answers, replay mismatches: each a finding.
    pub problems: Vec<String>,
    /// 5xx codes a fault suite expects (`database_unavailable`,
    /// `outcome_unknown`, …): such answers are uncertain, not findings.
    pub fault_codes: Vec<&'static str>,
}

impl Book {
    /// A 5xx the suite does not expect.
    fn unexpected(&self, answer: &Answer) -> bool {
        answer.status >= 500 && !self.fault_codes.contains(&answer.code())
    }
}

impl Book {
    /// Keeps the pools in step with an answer.
    fn note(&mut self, index: usize) {
        let s = &self.sent[index];
        let ok = s.acknowledged();
        match &s.op {
            Op::Usage { ent, reference } => {
                self.references.push((ent.clone(), reference.clone()));
                if ok && s.req.key.is_some() {
                    self.keyed_usage.push(index);
                }
            }
            Op::Hold { ent, reference } if ok => {
                let id = s.answer.as_ref().and_then(|a| a.str_at("/reservation/id"));
                self.held
                    .push((ent.clone(), id.expect("reservation id"), reference.clone()));
            }
            Op::OpenCase { .. } if ok => {
                let id = s.answer.as_ref().and_then(|a| a.str_at("/id"));
                self.open_cases.push(id.expect("case id"));
            }
            _ => {}
        }
    }

    fn record(&mut self, sent: Sent) -> usize {
        self.stats.requests += 1;
        match &sent.answer {
            None => self.stats.lost += 1,
            Some(a) => {
                let label = match a.code() {
                    "" => format!("{} {}", sent.op.kind(), a.status),
                    code => format!("{} {} {code}", sent.op.kind(), a.status),
                };
                *self.stats.by_outcome.entry(label).or_default() += 1;
                if self.unexpected(a) {
                    self.problems.push(format!(
                        "{} {} answered {}: {}",
                        sent.req.method, sent.req.path, a.status, a.body
                    ));
                }
            }
        }
        self.sent.push(sent);
        let index = self.sent.len() - 1;
        self.note(index);
        index
    }

    /// Compares an answer to the same key and body with the first one.
    /// `concurrent`: other clients may be sending the same key right now
    /// (a misuse of it), so "still in flight" is a fair answer.
    fn compare(&mut self, req: &Request, first: &Answer, again: &Answer, concurrent: bool) {
        if concurrent && in_flight(again) {
            self.stats.in_flight += 1;
            return;
        }
        if again.status >= 500 && !self.unexpected(again) {
            return;
        }
        self.stats.replays += 1;
        if again.status >= 500 {
            self.problems.push(format!(
                "replay of {} {} (key {:?}) answered {}: {}",
                req.method, req.path, req.key, again.status, again.body
            ));
            return;
        }
        if again.status == 408 {
            return;
        }
        if again.status != first.status || again.body != first.body {
            self.problems.push(format!(
                "replay of {} {} (key {:?}) answered {} {} after {} {}",
                req.method, req.path, req.key, again.status, again.body, first.status, first.body
            ));
        } else if first.ok() && !again.replayed {
            self.problems.push(format!(
                "replay of {} {} (key {:?}) lacks idempotent-replayed: true",
                req.method, req.path, req.key
            ));
        } else if !first.ok() && !again.replayed {
            self.stats.refusal_replays_without_header += 1;
        }
    }
}

pub struct Load {
    pub http: Http,
    pub keys: Keys,
    pub fixture: Fixture,
    pub book: Mutex<Book>,
    /// Prefix of every name this run makes.
    pub tag: String,
}

/// One round of clients.
pub struct Round {
    /// Base URLs of the servers; client `i` is homed on `targets[i % len]`,
    /// replays go to any of them.
    pub targets: Vec<String>,
    pub clients: usize,
    pub cycle: usize,
    pub seed: u64,
    /// A client stops at its first request without an answer (the server
    /// was killed) instead of going on.
    pub stop_on_loss: bool,
}

impl Load {
    pub fn new(http: Http, keys: Keys, fixture: Fixture, tag: &str) -> Arc<Load> {
        Arc::new(Load {
            http,
            keys,
            fixture,
            book: Mutex::new(Book::default()),
            tag: tag.to_string(),
        })
    }

    pub fn book(&self) -> std::sync::MutexGuard<'_, Book> {
        self.book.lock().unwrap()
    }

    /// Starts the clients of a round; they run until `stop` is set.
    pub fn spawn(
        self: &Arc<Self>,
        round: &Round,
        stop: &Arc<AtomicBool>,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        let targets = Arc::new(round.targets.clone());
        (0..round.clients)
            .map(|i| {
                let load = self.clone();
                let targets = targets.clone();
                let stop = stop.clone();
                let seed = round.seed
                    ^ ((round.cycle as u64) << 32)
                    ^ (i as u64).wrapping_mul(0x9E37_79B9);
                let (cycle, stop_on_loss) = (round.cycle, round.stop_on_loss);
                tokio::spawn(async move {
                    load.client(targets, i, cycle, seed, stop, stop_on_loss)
                        .await;
                })
            })
            .collect()
    }

    async fn client(
        &self,
        targets: Arc<Vec<String>>,
        index: usize,
        cycle: usize,
        seed: u64,
        stop: Arc<AtomicBool>,
        stop_on_loss: bool,
    ) {
        let mut rng = StdRng::seed_from_u64(seed);
        let home = targets[index % targets.len()].clone();
        let mut n = 0u64;
        while !stop.load(Ordering::Relaxed) {
            n += 1;
            let name = format!("{}-{cycle}-{index}-{n}", self.tag);
            if rng.gen_bool(TWIN_P) {
                if !self.twin(&mut rng, &targets, &home, &name, cycle).await && stop_on_loss {
                    break;
                }
                continue;
            }
            let (op, req) = self.next_op(&mut rng, &name);
            let is_hold = matches!(op, Op::Hold { .. });
            let answer = self
                .exchange(&mut rng, &targets, &home, op, req, cycle)
                .await;
            let Some(answer) = answer else {
                if stop_on_loss {
                    break;
                }
                continue;
            };
            // 503 (unavailable, overloaded): wait as Retry-After asks (1 s).
            if answer.status == 503 {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            // Most holds are settled at once, by the same client.
            if is_hold && answer.ok() && rng.gen_bool(0.75) {
                let id = answer.str_at("/reservation/id").unwrap();
                let taken = {
                    let mut book = self.book();
                    let at = book.held.iter().position(|(_, r, _)| *r == id);
                    at.map(|i| book.held.swap_remove(i))
                };
                if let Some(hold) = taken {
                    let (op, req) = self.settle(&mut rng, &name, hold);
                    if self
                        .exchange(&mut rng, &targets, &home, op, req, cycle)
                        .await
                        .is_none()
                        && stop_on_loss
                    {
                        break;
                    }
                }
            }
        }
    }

    /// Sends, records, and sometimes sends again with the same key to any
    /// server and compares. `None` when no answer came back.
    async fn exchange(
        &self,
        rng: &mut StdRng,
        targets: &[String],
        home: &str,
        op: Op,
        req: Request,
        cycle: usize,
    ) -> Option<Answer> {
        let answer = self.http.send(home, &req).await.ok();
        let replay = req.key.is_some() && answer.is_some() && rng.gen_bool(REPLAY_P);
        self.book().record(Sent {
            op,
            req: req.clone(),
            answer: answer.clone(),
            cycle,
            resolved: false,
        });
        let first = answer?;
        if replay && !uncertain(&Some(first.clone())) && !in_flight(&first) {
            let other = targets.choose(rng).unwrap();
            if let Ok(again) = self.http.send(other, &req).await {
                self.book().compare(&req, &first, &again, true);
            }
        }
        Some(first)
    }

    /// The same keyed usage sent twice at once, to home and to any server:
    /// one is decided, the other replays it (or, in the same process, is
    /// told the key is in flight). Never two entries. `false` when an answer
    /// was lost.
    async fn twin(
        &self,
        rng: &mut StdRng,
        targets: &[String],
        home: &str,
        name: &str,
        cycle: usize,
    ) -> bool {
        let ent = self.fixture.usage_ents.choose(rng).unwrap().clone();
        let reference = format!("twin {name}");
        let path = format!("/v1/entitlements/{ent}/usage");
        let body = json!({ "quantity": 1, "reference": reference });
        let req = Request::post(
            &self.keys.admin,
            &path,
            Some(body),
            Some(format!("{name}-k")),
        );
        let other = targets.choose(rng).unwrap().clone();
        let (a, b) = tokio::join!(self.http.send(home, &req), self.http.send(&other, &req));
        let (a, b) = (a.ok(), b.ok());
        let (first, second) = if a.as_ref().is_some_and(in_flight) {
            (b, a)
        } else {
            (a, b)
        };
        let mut book = self.book();
        book.stats.twins += 1;
        if second.as_ref().is_some_and(in_flight) {
            book.stats.in_flight += 1;
        } else if let (Some(x), Some(y)) = (&first, &second) {
            if !uncertain(&first) && !uncertain(&second) {
                book.stats.replays += 1;
                let fresh = [x, y].iter().filter(|a| !a.replayed).count();
                if x.status != y.status || x.body != y.body || (x.ok() && fresh != 1) {
                    book.problems.push(format!(
                        "twin usage {reference:?} to {home} and {other}: {} {} (replayed {}) and {} {} (replayed {})",
                        x.status, x.body, x.replayed, y.status, y.body, y.replayed
                    ));
                }
            }
        }
        let lost = first.is_none() || second.is_none();
        book.record(Sent {
            op: Op::Usage { ent, reference },
            req,
            answer: first,
            cycle,
            resolved: false,
        });
        !lost
    }

    fn settle(
        &self,
        rng: &mut StdRng,
        name: &str,
        (ent, reservation, reference): (String, String, String),
    ) -> (Op, Request) {
        let key = Some(format!("{name}-settle"));
        let admin = &self.keys.admin;
        if rng.gen_bool(0.6) {
            let path = format!("/v1/reservations/{reservation}/commit");
            let body = if rng.gen_bool(0.5) {
                Some(json!({}))
            } else {
                None
            };
            (
                Op::Commit {
                    ent,
                    reservation,
                    reference,
                },
                Request::post(admin, &path, body, key),
            )
        } else {
            let path = format!("/v1/reservations/{reservation}/release");
            (
                Op::Release { reservation },
                Request::post(admin, &path, None, key),
            )
        }
    }

    /// Picks the next request.
    fn next_op(&self, rng: &mut StdRng, name: &str) -> (Op, Request) {
        let admin = self.keys.admin.as_str();
        let manager = self.keys.manager.as_str();
        let key = Some(format!("{name}-k"));
        let ent = self.fixture.usage_ents.choose(rng).unwrap().clone();
        let roll = rng.gen_range(0..100);
        match roll {
            // Settle a hold left open earlier.
            0..=7 => {
                let taken = {
                    let mut book = self.book();
                    if book.held.is_empty() {
                        None
                    } else {
                        let i = rng.gen_range(0..book.held.len());
                        Some(book.held.swap_remove(i))
                    }
                };
                if let Some(hold) = taken {
                    return self.settle(rng, name, hold);
                }
            }
            // Adjust down by one.
            8..=17 => {
                let reason = format!("adj {name}");
                let path = format!("/v1/entitlements/{ent}/adjustments");
                let body = json!({ "quantity": -1, "reason": reason });
                return (
                    Op::Adjust { ent, reason },
                    Request::post(manager, &path, Some(body), key),
                );
            }
            // Hold one.
            18..=32 => {
                let reference = format!("hold {name}");
                let path = format!("/v1/entitlements/{ent}/reservations");
                let body = json!({ "quantity": 1, "timeout_seconds": HOLD_SECONDS, "reference": reference });
                return (
                    Op::Hold { ent, reference },
                    Request::post(admin, &path, Some(body), key),
                );
            }
            // Open a case on the cases entitlement.
            33..=52 => {
                let title = format!("case {name}");
                let body = json!({
                    "account_id": self.fixture.account, "title": title,
                    "entitlement_id": self.fixture.cases_ent,
                });
                return (
                    Op::OpenCase { title },
                    Request::post(manager, "/v1/cases", Some(body), key),
                );
            }
            // Cancel a case opened earlier.
            53..=61 => {
                let taken = {
                    let mut book = self.book();
                    if book.open_cases.is_empty() {
                        None
                    } else {
                        let i = rng.gen_range(0..book.open_cases.len());
                        Some(book.open_cases.swap_remove(i))
                    }
                };
                if let Some(case) = taken {
                    let path = format!("/v1/cases/{case}/cancel");
                    return (
                        Op::CancelCase { case },
                        Request::post(manager, &path, None, key),
                    );
                }
            }
            // Another body under an acknowledged key.
            62..=64 => {
                let victim = {
                    let book = self.book();
                    book.keyed_usage
                        .choose(rng)
                        .map(|&i| book.sent[i].req.clone())
                };
                if let Some(mut req) = victim {
                    let reference = format!("misuse {name}");
                    req.body = Some(json!({ "quantity": 1, "reference": reference }).to_string());
                    return (Op::Misuse { reference }, req);
                }
            }
            // A reference another request already sent (with a fresh key).
            65..=69 => {
                let earlier = self.book().references.choose(rng).cloned();
                if let Some((ent, reference)) = earlier {
                    self.book().stats.duplicate_references += 1;
                    let path = format!("/v1/entitlements/{ent}/usage");
                    let body = json!({ "quantity": 1, "reference": reference });
                    return (
                        Op::Usage { ent, reference },
                        Request::post(admin, &path, Some(body), key),
                    );
                }
            }
            _ => {}
        }
        // Direct usage, one in ten without a key.
        let reference = format!("use {name}");
        let path = format!("/v1/entitlements/{ent}/usage");
        let body = json!({ "quantity": 1, "reference": reference });
        let key = if rng.gen_bool(0.1) { None } else { key };
        (
            Op::Usage { ent, reference },
            Request::post(admin, &path, Some(body), key),
        )
    }

    /// Sends every keyed request that got no answer again until it gets one
    /// (after a restart): a replay when it had been applied, a decision now
    /// when it had not. Keyless ones stay unknown.
    pub async fn resolve_uncertain(&self, base: &str) -> usize {
        let pending: Vec<(usize, Request)> = {
            let book = self.book();
            book.sent
                .iter()
                .enumerate()
                .filter(|(_, s)| s.uncertain() && s.req.key.is_some())
                .map(|(i, s)| (i, s.req.clone()))
                .collect()
        };
        for (index, req) in &pending {
            let mut tries = 0;
            let answer = loop {
                tries += 1;
                let sent = self.http.send(base, req).await;
                let last = format!("{sent:?}");
                match sent {
                    Ok(a) if !uncertain(&Some(a.clone())) => break a,
                    Ok(a) if self.book().unexpected(&a) => self.book().problems.push(format!(
                        "resending {} {} after restart answered {}: {}",
                        req.method, req.path, a.status, a.body
                    )),
                    _ => {}
                }
                assert!(
                    tries < 50,
                    "{} {} never got an answer after restart (last: {last})",
                    req.method,
                    req.path
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            };
            let mut book = self.book();
            if answer.replayed {
                book.stats.resolved_replayed += 1;
            } else {
                book.stats.resolved_fresh += 1;
            }
            book.sent[*index].answer = Some(answer);
            book.sent[*index].resolved = true;
            book.note(*index);
        }
        pending.len()
    }

    /// Sends acknowledged keyed requests again (those of `cycle` and a sample
    /// of older ones) and compares the answers.
    pub async fn replay_acknowledged(
        &self,
        base: &str,
        cycle: usize,
        rng: &mut StdRng,
        older: usize,
    ) -> usize {
        let picks: Vec<(Request, Answer)> = {
            let book = self.book();
            let keyed: Vec<&Sent> = book
                .sent
                .iter()
                .filter(|s| {
                    s.req.key.is_some()
                        && !s.uncertain()
                        && !s.answer.as_ref().is_some_and(in_flight)
                        && !matches!(s.op, Op::Misuse { .. })
                })
                .collect();
            let mut picks: Vec<&Sent> =
                keyed.iter().copied().filter(|s| s.cycle == cycle).collect();
            picks.extend(keyed.choose_multiple(rng, older).copied());
            // Each key once: two at once would rightly be "in flight".
            let mut keys = HashSet::new();
            picks
                .into_iter()
                .filter(|s| keys.insert((s.req.auth.clone(), s.req.key.clone())))
                .map(|s| (s.req.clone(), s.answer.clone().unwrap()))
                .collect()
        };
        let count = picks.len();
        futures::stream::iter(picks)
            .map(|(req, first)| async move {
                let again = self.http.send(base, &req).await;
                (req, first, again)
            })
            .buffer_unordered(16)
            .for_each(|(req, first, again)| async move {
                match again {
                    Ok(again) => self.book().compare(&req, &first, &again, false),
                    Err(e) => self.book().problems.push(format!(
                        "replay of {} {} got no answer: {e}",
                        req.method, req.path
                    )),
                }
            })
            .await;
        count
    }

    /// Commits or releases every hold still open, so `held` must come back to 0.
    pub async fn settle_all(&self, base: &str, rng: &mut StdRng) {
        loop {
            let taken = self.book().held.pop();
            let Some(hold) = taken else { break };
            let name = format!("{}-final-{}", self.tag, hold.1);
            let (op, req) = self.settle(rng, &name, hold);
            let answer = self.http.send(base, &req).await.ok();
            assert!(
                answer.as_ref().is_some_and(|a| a.ok()),
                "settling {}: {answer:?}",
                req.path
            );
            self.book().record(Sent {
                op,
                req,
                answer,
                cycle: usize::MAX,
                resolved: false,
            });
        }
    }

    /// All pages of a listing.
    async fn all_pages(&self, base: &str, path: &str) -> Vec<Value> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        let sep = if path.contains('?') { '&' } else { '?' };
        loop {
            let page_path = match &cursor {
                Some(c) => format!("{path}{sep}limit=1000&cursor={c}"),
                None => format!("{path}{sep}limit=1000"),
            };
            let page = self.http.get(base, &self.keys.admin, &page_path).await;
            items.extend(page["items"].as_array().expect("items").iter().cloned());
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => break,
            }
        }
        items
    }

    /// Checks the database against the book; `Err` lists every violation.
    pub async fn verify(&self, base: &str) -> Result<Verified, Vec<String>> {
        let mut problems = Vec::new();
        let mut verified = Verified::default();
        let admin = self.keys.admin.clone();
        // (entitlement, reason, reference) -> ledger entry ids; id -> entry.
        let mut by_ref: HashMap<(String, String, String), Vec<String>> = HashMap::new();
        let mut by_id: HashMap<String, Value> = HashMap::new();
        let mut balances: HashMap<String, Value> = HashMap::new();
        for ent in self.fixture.all() {
            let balance = self
                .http
                .get(base, &admin, &format!("/v1/entitlements/{ent}/balance"))
                .await;
            let entries = self
                .all_pages(base, &format!("/v1/entitlements/{ent}/usage"))
                .await;
            let period = balance["period"]["index"].as_i64().expect("period index");
            let used = milli(&balance["used"]);
            let held = milli(&balance["held"]);
            let total = milli(&balance["total"]);
            let carried = milli(&balance["carried_over"]);
            let mut sum = 0;
            for e in &entries {
                let id = e["id"].as_str().unwrap().to_string();
                if e["period_index"].as_i64() == Some(period) {
                    sum += milli(&e["quantity"]);
                }
                let reference = e["reference"].as_str().unwrap_or("").to_string();
                let reason = e["reason"].as_str().unwrap().to_string();
                by_ref
                    .entry((ent.clone(), reason, reference))
                    .or_default()
                    .push(id.clone());
                if by_id.insert(id.clone(), e.clone()).is_some() {
                    problems.push(format!("ledger entry {id} listed twice"));
                }
            }
            verified.ledger_entries += entries.len();
            if used != sum {
                problems.push(format!("{ent}: used {used}‰ but the ledger sums to {sum}‰"));
            }
            if used < 0 || held < 0 {
                problems.push(format!("{ent}: used {used}‰, held {held}‰"));
            }
            if used + held > total + carried {
                problems.push(format!(
                    "{ent}: cap exceeded: used {used}‰ + held {held}‰ > total {total}‰ + carried {carried}‰"
                ));
            }
            verified.used.insert(ent.clone(), used);
            balances.insert(ent, balance);
        }

        let listed = self
            .all_pages(
                base,
                &format!("/v1/cases?entitlement_id={}", self.fixture.cases_ent),
            )
            .await;
        let book = self.book();
        let exact = !book
            .sent
            .iter()
            .any(|s| s.uncertain() && s.req.key.is_some());
        // Effects named by (entitlement, reason, reference): acknowledged and
        // unknown counts.
        let mut acked: HashMap<(String, String, String), usize> = HashMap::new();
        let mut maybe: HashMap<(String, String, String), usize> = HashMap::new();
        let mut named: HashSet<(String, String, String)> = HashSet::new();
        let mut misuse_refs = Vec::new();
        // Reservation id -> (entitlement, settled by an acknowledged request).
        let mut holds: HashMap<String, (String, bool)> = HashMap::new();
        let mut settles: Vec<String> = Vec::new();
        // Cases: id -> title; titles refused; cancelled ids.
        let mut cases: HashMap<String, String> = HashMap::new();
        let mut refused_titles: HashSet<String> = HashSet::new();
        let mut unknown_titles: HashSet<String> = HashSet::new();
        let mut cancelled: HashSet<String> = HashSet::new();
        let mut cancel_unknown: HashSet<String> = HashSet::new();
        for s in &book.sent {
            let ok = s.acknowledged();
            let unknown = s.uncertain();
            let effect = match &s.op {
                Op::Usage { ent, reference } => Some((ent.clone(), "usage", reference.clone())),
                Op::Adjust { ent, reason } => Some((ent.clone(), "adjustment", reason.clone())),
                Op::Commit { ent, reference, .. } => {
                    Some((ent.clone(), "reservation_committed", reference.clone()))
                }
                _ => None,
            };
            if let Some((ent, reason, reference)) = effect {
                let k = (ent, reason.to_string(), reference);
                named.insert(k.clone());
                if ok {
                    *acked.entry(k.clone()).or_default() += 1;
                    // The acknowledged entry is the one in the ledger.
                    let a = s.answer.as_ref().unwrap();
                    match a.str_at("/entry/id") {
                        Some(id) => match by_id.get(&id) {
                            None => problems.push(format!(
                                "acknowledged {} {} (entry {id}) is not in the ledger",
                                s.req.method, s.req.path
                            )),
                            Some(e) => {
                                if e["reference"].as_str() != Some(k.2.as_str())
                                    || e["entitlement_id"].as_str() != Some(k.0.as_str())
                                {
                                    problems.push(format!(
                                        "entry {id} is not the one acknowledged: {e}"
                                    ));
                                }
                            }
                        },
                        None => problems.push(format!(
                            "acknowledged {} without an entry: {}",
                            s.req.path, a.body
                        )),
                    }
                } else if unknown {
                    *maybe.entry(k).or_default() += 1;
                }
            }
            match &s.op {
                Op::Misuse { reference } => {
                    misuse_refs.push(reference.clone());
                    if let Some(a) = &s.answer {
                        let fair = (a.status == 422 && a.code() == "idempotency_key_reused")
                            || in_flight(a);
                        if !unknown && !fair {
                            problems.push(format!(
                                "a reused key with another body answered {} {}",
                                a.status, a.body
                            ));
                        }
                    }
                }
                Op::Hold { ent, .. } if ok => {
                    let id = s
                        .answer
                        .as_ref()
                        .unwrap()
                        .str_at("/reservation/id")
                        .unwrap();
                    holds.insert(id, (ent.clone(), false));
                }
                Op::Commit { reservation, .. } | Op::Release { reservation, .. } if ok => {
                    settles.push(reservation.clone());
                }
                Op::Commit { reservation, .. } | Op::Release { reservation, .. } if !unknown => {
                    problems.push(format!(
                        "settling held reservation {reservation} was refused: {:?}",
                        s.answer
                    ));
                }
                Op::OpenCase { title } => {
                    if ok {
                        let id = s.answer.as_ref().unwrap().str_at("/id").unwrap();
                        cases.insert(id, title.clone());
                    } else if unknown {
                        unknown_titles.insert(title.clone());
                    } else {
                        refused_titles.insert(title.clone());
                    }
                }
                Op::CancelCase { case } => {
                    if ok {
                        cancelled.insert(case.clone());
                    } else if unknown {
                        cancel_unknown.insert(case.clone());
                    } else {
                        problems.push(format!(
                            "cancelling open case {case} was refused: {:?}",
                            s.answer
                        ));
                    }
                }
                _ => {}
            }
        }
        for id in settles {
            match holds.get_mut(&id) {
                Some(h) => h.1 = true,
                None => problems.push(format!("settled {id}, a reservation never acknowledged")),
            }
        }
        // Every named effect: acknowledged ≤ in ledger ≤ acknowledged + unknown, at most once.
        for k in &named {
            let in_ledger = by_ref.get(k).map_or(0, Vec::len);
            let a = acked.get(k).copied().unwrap_or(0);
            let m = maybe.get(k).copied().unwrap_or(0);
            if in_ledger > 1 || a > 1 {
                problems.push(format!(
                    "{} {:?} on {}: {in_ledger} ledger entries, {a} acknowledged (at most one)",
                    k.1, k.2, k.0
                ));
            } else if in_ledger < a {
                problems.push(format!(
                    "LOST: acknowledged {} {:?} on {} is not in the ledger",
                    k.1, k.2, k.0
                ));
            } else if in_ledger > a + m {
                problems.push(format!(
                    "refused {} {:?} on {} is in the ledger",
                    k.1, k.2, k.0
                ));
            }
        }
        // Nothing in the ledger that no request asked for.
        for (k, ids) in &by_ref {
            let case_reason = k.1.starts_with("case_");
            if !case_reason && !named.contains(k) {
                problems.push(format!(
                    "ledger entries {ids:?} ({} {:?}) match no request",
                    k.1, k.2
                ));
            }
        }
        for reference in &misuse_refs {
            if by_ref.keys().any(|k| &k.2 == reference) {
                problems.push(format!(
                    "the body sent under a reused key ({reference}) was recorded"
                ));
            }
        }
        // Holds: exactly the open ones are held.
        if exact {
            for ent in &self.fixture.usage_ents {
                let open = holds
                    .values()
                    .filter(|(e, settled)| e == ent && !settled)
                    .count() as i64;
                let held = milli(&balances[ent]["held"]);
                if held != open * 1000 {
                    problems.push(format!(
                        "{ent}: held {held}‰ but {open} reservations are open"
                    ));
                }
            }
        }
        // Cases: every listed case was acknowledged (or cut off), its charge is in the ledger.
        let mut seen = HashSet::new();
        let mut open_count = 0i64;
        let ce = &self.fixture.cases_ent;
        let entries_for = |reason: &str, id: &str| {
            by_ref
                .get(&(ce.clone(), reason.to_string(), id.to_string()))
                .map_or(0, Vec::len)
        };
        for c in &listed {
            let id = c["id"].as_str().unwrap().to_string();
            let title = c["title"].as_str().unwrap().to_string();
            let status = c["status"].as_str().unwrap();
            if !seen.insert(id.clone()) {
                problems.push(format!("case {id} listed twice"));
            }
            match cases.get(&id) {
                Some(t) if *t != title => {
                    problems.push(format!("case {id} has title {title:?}, not {t:?}"))
                }
                Some(_) => {}
                None if unknown_titles.contains(&title) => {}
                None => problems.push(format!(
                    "case {id} ({title:?}) exists but was never acknowledged"
                )),
            }
            if refused_titles.contains(&title) {
                problems.push(format!(
                    "case {id} ({title:?}) exists though its opening was refused"
                ));
            }
            let expect_cancelled = cancelled.contains(&id);
            match status {
                "cancelled" if !expect_cancelled && !cancel_unknown.contains(&id) => problems.push(
                    format!("case {id} is cancelled, no cancel was acknowledged"),
                ),
                "open" if expect_cancelled => problems.push(format!(
                    "LOST: case {id} is open, its cancel was acknowledged"
                )),
                "open" | "cancelled" => {}
                other => problems.push(format!("case {id} is {other}")),
            }
            let opened = entries_for("case_opened", &id);
            let given_back = entries_for("case_cancelled", &id);
            let expected_back = usize::from(status == "cancelled");
            if opened != 1 || given_back != expected_back {
                problems.push(format!(
                    "case {id} ({status}): {opened} case_opened and {given_back} case_cancelled entries"
                ));
            }
            if status == "open" {
                open_count += 1;
            }
        }
        for (id, title) in &cases {
            if !seen.contains(id) {
                problems.push(format!(
                    "LOST: acknowledged case {id} ({title:?}) does not exist"
                ));
            }
        }
        for k in by_ref.keys().filter(|k| k.0 == *ce) {
            if !seen.contains(&k.2) {
                problems.push(format!(
                    "ledger {} entries reference {}, which is no case",
                    k.1, k.2
                ));
            }
        }
        let used_cases = verified.used[ce];
        if used_cases != open_count * 1000 {
            problems.push(format!(
                "{ce}: used {used_cases}‰ but {open_count} cases are open (not cancelled)"
            ));
        }
        verified.cases = listed.len();
        verified.open_cases = open_count as usize;
        verified.exact = exact;
        problems.extend(book.problems.iter().cloned());
        if problems.is_empty() {
            Ok(verified)
        } else {
            Err(problems)
        }
    }

    pub fn stats(&self) -> Stats {
        self.book().stats.clone()
    }
}

#[derive(Debug, Default)]
pub struct Verified {
    pub ledger_entries: usize,
    pub cases: usize,
    pub open_cases: usize,
    pub used: BTreeMap<String, i64>,
    /// No keyed request was left without an answer: holds checked exactly.
    pub exact: bool,
}

/// Panics with the violations (the first 40) and the servers' log tails.
pub fn fail(what: &str, problems: &[String], logs: &[String]) -> ! {
    let shown: Vec<&String> = problems.iter().take(40).collect();
    panic!(
        "{what}: {} violation(s):\n  {}\n\nserver logs:\n{}",
        problems.len(),
        shown
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n  "),
        logs.join("\n----\n")
    );
}

/// Runs `clients` until `stop` (joins them, with a bound).
pub async fn join(handles: Vec<tokio::task::JoinHandle<()>>) {
    for h in handles {
        match tokio::time::timeout(Duration::from_secs(120), h).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("client task failed: {e}"),
            Err(_) => panic!("a client did not stop within 120 s"),
        }
    }
}
