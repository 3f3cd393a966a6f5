//! Latency histograms, throughput summaries and per-entitlement request tallies.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;

use hdrhistogram::Histogram;
use serde::Serialize;

/// A latency histogram in microseconds (1µs .. 60s, 3 significant digits).
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("static histogram bounds are valid")
}

pub fn record(hist: &mut Histogram<u64>, latency: Duration) {
    let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
    hist.saturating_record(micros.max(1));
}

/// The window in which completed requests are measured.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub from: Instant,
    pub until: Option<Instant>,
}

impl Window {
    pub fn contains(&self, at: Instant) -> bool {
        at >= self.from && self.until.is_none_or(|until| at <= until)
    }
}

/// When a closed-loop run stops.
#[derive(Debug, Clone, Copy)]
pub enum Stop {
    /// Measure for this long (after the warm-up).
    For(Duration),
    /// Send exactly this many requests in total, all measured.
    Requests(u64),
}

/// Shared by the workers of one run: hands out request tickets and says what is measured.
#[derive(Debug)]
pub struct Clock {
    start: Instant,
    stop: Stop,
    pub window: Window,
    tickets: AtomicU64,
}

impl Clock {
    pub fn start(stop: Stop, warmup: Duration) -> Self {
        let start = Instant::now();
        let window = match stop {
            Stop::For(duration) => Window {
                from: start + warmup,
                until: Some(start + warmup + duration),
            },
            Stop::Requests(_) => Window {
                from: start,
                until: None,
            },
        };
        Clock {
            start,
            stop,
            window,
            tickets: AtomicU64::new(0),
        }
    }

    /// Whether a worker may send one more request.
    pub fn next_ticket(&self) -> bool {
        match self.stop {
            Stop::For(_) => self.window.until.is_none_or(|until| Instant::now() < until),
            Stop::Requests(budget) => self.tickets.fetch_add(1, Ordering::Relaxed) < budget,
        }
    }

    /// The measured time: the fixed duration, or start to now for a request budget.
    pub fn measured_time(&self) -> Duration {
        match self.stop {
            Stop::For(duration) => duration,
            Stop::Requests(_) => self.start.elapsed(),
        }
    }
}

/// One worker's share of a run.
#[derive(Debug)]
pub struct WorkerResult {
    pub hist: Histogram<u64>,
    pub counts: Counts,
}

impl WorkerResult {
    pub fn new() -> Self {
        WorkerResult {
            hist: new_histogram(),
            counts: Counts::default(),
        }
    }

    /// Records one answered request: `refused` is a 409 `entitlement_exhausted` or its baseline twin.
    pub fn answered(&mut self, clock: &Clock, began: Instant, done: Instant, refused: bool) {
        if clock.window.contains(done) {
            if refused {
                self.counts.refused += 1;
            } else {
                self.counts.ok += 1;
            }
            record(&mut self.hist, done - began);
        }
    }
}

impl Default for WorkerResult {
    fn default() -> Self {
        Self::new()
    }
}

/// The merged result of a run.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub summary: Summary,
    pub counts: Counts,
}

impl Outcome {
    pub fn merge(clock: &Clock, workers: impl IntoIterator<Item = WorkerResult>) -> Result<Self> {
        let mut hist = new_histogram();
        let mut counts = Counts::default();
        for worker in workers {
            hist.add(&worker.hist)?;
            counts.merge(worker.counts);
        }
        Ok(Outcome {
            summary: Summary::new(&hist, clock.measured_time()),
            counts,
        })
    }
}

/// Throughput and latency of one measured run.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub requests: u64,
    pub seconds: f64,
    pub rps: f64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
}

impl Summary {
    pub fn new(hist: &Histogram<u64>, elapsed: Duration) -> Self {
        let seconds = elapsed.as_secs_f64().max(1e-9);
        let requests = hist.len();
        Summary {
            requests,
            seconds,
            rps: requests as f64 / seconds,
            p50_us: hist.value_at_quantile(0.50),
            p90_us: hist.value_at_quantile(0.90),
            p99_us: hist.value_at_quantile(0.99),
            max_us: hist.max(),
        }
    }
}

/// What the requests of one run came back with.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Counts {
    /// Accepted (2xx) in the measured window.
    pub ok: u64,
    /// Refused with 409 `entitlement_exhausted` in the measured window.
    pub refused: u64,
    /// Anything else over the whole run, warm-up included, by kind.
    pub unexpected: BTreeMap<String, u64>,
}

impl Counts {
    pub fn add_unexpected(&mut self, kind: impl Into<String>) {
        *self.unexpected.entry(kind.into()).or_default() += 1;
    }

    pub fn unexpected_total(&self) -> u64 {
        self.unexpected.values().sum()
    }

    pub fn merge(&mut self, other: Counts) {
        self.ok += other.ok;
        self.refused += other.refused;
        for (kind, n) in other.unexpected {
            *self.unexpected.entry(kind).or_default() += n;
        }
    }
}

/// Per-entitlement tallies over the whole run, warm-up included, for verification.
#[derive(Debug)]
pub struct Tally {
    sent: Vec<AtomicU64>,
    accepted: Vec<AtomicU64>,
    in_doubt: Vec<AtomicU64>,
}

impl Tally {
    pub fn new(len: usize) -> Self {
        let zeros = || (0..len).map(|_| AtomicU64::new(0)).collect();
        Tally {
            sent: zeros(),
            accepted: zeros(),
            in_doubt: zeros(),
        }
    }

    pub fn sent(&self, index: usize) {
        self.sent[index].fetch_add(1, Ordering::Relaxed);
    }

    pub fn accepted(&self, index: usize) {
        self.accepted[index].fetch_add(1, Ordering::Relaxed);
    }

    /// The outcome is unknown (transport error or 5xx): it may or may not have been applied.
    pub fn in_doubt(&self, index: usize) {
        self.in_doubt[index].fetch_add(1, Ordering::Relaxed);
    }

    pub fn len(&self) -> usize {
        self.sent.len()
    }

    /// `(sent, accepted, in_doubt)` for one entitlement.
    pub fn get(&self, index: usize) -> (u64, u64, u64) {
        (
            self.sent[index].load(Ordering::Relaxed),
            self.accepted[index].load(Ordering::Relaxed),
            self.in_doubt[index].load(Ordering::Relaxed),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_percentiles() {
        let mut hist = new_histogram();
        for micros in 1..=1000u64 {
            record(&mut hist, Duration::from_micros(micros));
        }
        let summary = Summary::new(&hist, Duration::from_secs(2));
        assert_eq!(summary.requests, 1000);
        assert!((summary.rps - 500.0).abs() < 1e-6);
        assert!((499..=501).contains(&summary.p50_us));
        assert!((989..=991).contains(&summary.p99_us));
        assert_eq!(summary.max_us, 1000);
    }

    #[test]
    fn request_budget_hands_out_exact_tickets() {
        let clock = Clock::start(Stop::Requests(3), Duration::ZERO);
        let granted = (0..10).filter(|_| clock.next_ticket()).count();
        assert_eq!(granted, 3);
    }

    #[test]
    fn window_bounds() {
        let now = Instant::now();
        let window = Window {
            from: now,
            until: Some(now + Duration::from_secs(1)),
        };
        assert!(window.contains(now));
        assert!(!window.contains(now + Duration::from_secs(2)));
    }
}
