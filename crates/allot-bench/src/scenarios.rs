//! The scenarios, the entitlement layout they share, and how each picks its target.

use std::sync::Arc;
use std::time::Duration;

use clap::ValueEnum;
use rand::Rng;

use crate::stats::Stop;

/// Zipf exponent of `consume-zipf`.
pub const ZIPF_S: f64 = 1.2;
/// Cap (units) of pooled and hot entitlements: large enough never to run out.
pub const HUGE_CAP: u64 = 1_000_000_000;

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    ConsumeUniform,
    ConsumeZipf,
    ConsumeHot,
    ConsumeExhaust,
    Balance,
    /// Reports over a bulk-loaded fixture against hand-written SQL (`scenario_reports.rs`).
    Reports,
    /// Reconciliation and concurrent allocations (`scenario_software.rs`).
    Software,
    /// `POST /v1/usage/batch`, 100 uses per request, uniform over the pool.
    ConsumeBatch,
    /// Every dashboard page's server time over 10,000 entitlements (`scenario_dashboard.rs`).
    Dashboard,
}

impl Scenario {
    pub const ALL: [Scenario; 6] = [
        Scenario::ConsumeUniform,
        Scenario::ConsumeZipf,
        Scenario::ConsumeHot,
        Scenario::ConsumeExhaust,
        Scenario::Balance,
        Scenario::ConsumeBatch,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scenario::ConsumeUniform => "consume-uniform",
            Scenario::ConsumeZipf => "consume-zipf",
            Scenario::ConsumeHot => "consume-hot",
            Scenario::ConsumeExhaust => "consume-exhaust",
            Scenario::Balance => "balance",
            Scenario::Reports => "reports",
            Scenario::Software => "software",
            Scenario::ConsumeBatch => "consume-batch",
            Scenario::Dashboard => "dashboard",
        }
    }

    pub fn order(self) -> usize {
        Scenario::ALL
            .iter()
            .position(|s| *s == self)
            .unwrap_or(Scenario::ALL.len() + self as usize)
    }

    /// Runs on its own fixture, not on the shared layout (never in the default set).
    pub fn standalone(self) -> bool {
        matches!(
            self,
            Scenario::Reports | Scenario::Software | Scenario::Dashboard
        )
    }

    pub fn needs_pool(self) -> bool {
        matches!(
            self,
            Scenario::ConsumeUniform
                | Scenario::ConsumeZipf
                | Scenario::Balance
                | Scenario::ConsumeBatch
        )
    }
}

/// Where each entitlement sits in the shared id list: `pool` first, then hot, then exhaust.
#[derive(Debug, Clone, Copy)]
pub struct Layout {
    pub pool: usize,
    pub exhaust_cap: u64,
}

impl Layout {
    pub fn hot(&self) -> usize {
        self.pool
    }

    pub fn exhaust(&self) -> usize {
        self.pool + 1
    }

    pub fn len(&self) -> usize {
        self.pool + 2
    }

    /// Ids of the baselines' own entitlements, in layout order.
    pub fn baseline_ids(&self) -> Vec<String> {
        (0..self.len()).map(|i| format!("base_{i:05}")).collect()
    }

    /// Cap in units and whether the entitlement is restricted, by index.
    pub fn cap_of(&self, index: usize) -> u64 {
        if index == self.exhaust() {
            self.exhaust_cap
        } else {
            HUGE_CAP
        }
    }

    /// The target picker of a consume scenario (balance uses the uniform pool).
    pub fn pick_for(&self, scenario: Scenario) -> Pick {
        match scenario {
            Scenario::ConsumeUniform | Scenario::Balance | Scenario::ConsumeBatch => {
                Pick::Uniform(self.pool)
            }
            Scenario::ConsumeZipf => Pick::Zipf(Arc::new(ZipfTable::new(self.pool, ZIPF_S))),
            Scenario::ConsumeHot => Pick::Single(self.hot()),
            Scenario::ConsumeExhaust => Pick::Single(self.exhaust()),
            Scenario::Reports | Scenario::Software | Scenario::Dashboard => {
                Pick::Uniform(self.pool.max(1))
            }
        }
    }
}

/// What one request does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `POST /v1/entitlements/{id}/usage {"quantity":1}` with an `Idempotency-Key`
    /// (or the baseline's one transaction per use).
    Usage,
    /// `GET /v1/entitlements/{id}/balance`.
    Balance,
    /// `GET /healthz`.
    Healthz,
    /// `POST /v1/usage/batch` with `batch_load::USES_PER_REQUEST` uses, each keyed.
    UsageBatch,
}

/// One closed-loop run: what, on which entitlements, how many at once, for how long.
#[derive(Debug, Clone)]
pub struct LoadJob {
    pub op: Op,
    pub pick: Pick,
    pub concurrency: usize,
    pub stop: Stop,
    pub warmup: Duration,
}

/// Chooses the index of the entitlement for the next request.
#[derive(Debug, Clone)]
pub enum Pick {
    Uniform(usize),
    Zipf(Arc<ZipfTable>),
    Single(usize),
}

impl Pick {
    pub fn next<R: Rng>(&self, rng: &mut R) -> usize {
        match self {
            Pick::Uniform(n) => rng.gen_range(0..*n),
            Pick::Zipf(table) => table.sample(rng),
            Pick::Single(i) => *i,
        }
    }
}

/// Exact Zipf(n, s) sampling by inverse CDF over ranks 0..n (rank 0 the most popular).
#[derive(Debug)]
pub struct ZipfTable {
    cdf: Vec<f64>,
}

impl ZipfTable {
    pub fn new(n: usize, s: f64) -> Self {
        let mut cdf = Vec::with_capacity(n);
        let mut total = 0.0;
        for rank in 1..=n {
            total += 1.0 / (rank as f64).powf(s);
            cdf.push(total);
        }
        for value in &mut cdf {
            *value /= total;
        }
        ZipfTable { cdf }
    }

    pub fn sample<R: Rng>(&self, rng: &mut R) -> usize {
        let u: f64 = rng.gen();
        self.cdf.partition_point(|&c| c < u).min(self.cdf.len() - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn zipf_prefers_low_ranks() {
        let table = ZipfTable::new(10_000, ZIPF_S);
        let mut rng = StdRng::seed_from_u64(7);
        let mut counts = vec![0u32; 10_000];
        for _ in 0..200_000 {
            counts[table.sample(&mut rng)] += 1;
        }
        // P(rank 1) = 1 / H(10000, 1.2) ≈ 0.23.
        let first = f64::from(counts[0]) / 200_000.0;
        assert!((0.2..0.26).contains(&first), "rank-1 share {first}");
        assert!(counts[0] > counts[1] && counts[1] > counts[9]);
    }

    #[test]
    fn layout_indices() {
        let layout = Layout {
            pool: 10,
            exhaust_cap: 5,
        };
        assert_eq!(layout.hot(), 10);
        assert_eq!(layout.exhaust(), 11);
        assert_eq!(layout.cap_of(11), 5);
        assert_eq!(layout.cap_of(3), HUGE_CAP);
    }
}
