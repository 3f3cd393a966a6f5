//! The adaptive request limit's rule (pure: latencies in, a limit out).
//!
//! The service learns its unloaded latency and keeps the requests it
//! accepts near it: latencies are taken in rounds of `ROUND` answered
//! requests; a round's median is compared with the lowest round median of
//! the recent window (`WINDOW_ROUNDS` rounds, kept over two halves so an
//! old minimum ages out). Above `TOLERANCE` times that baseline the
//! requests are queueing, and the limit shrinks in proportion (at most by
//! half a round); at or below it, the limit grows by one. Never below
//! `floor`, never above `ceiling` (`ALLOT_MAX_REQUESTS`): a Vegas/gradient
//! style limit, as in Netflix's `concurrency-limits`. The middleware that
//! applies it is `shed.rs`.
//!
//! Medians, not a tail: a tail of 32 is one slow request (a report among
//! writes), and the minimum of noisy tails would sit far below a typical
//! one; the median moves when requests queue, which is what the limit
//! controls.

/// Latencies per decision.
pub const ROUND: usize = 32;
/// Rounds in the baseline's window (each half is `WINDOW_ROUNDS / 2`).
pub const WINDOW_ROUNDS: u32 = 512;
/// A round's median above this multiple of the baseline shrinks the limit.
pub const TOLERANCE: f64 = 1.5;
/// The least a round may shrink the limit to, as a fraction of it.
const MOST_SHRINK: f64 = 0.5;

/// The limit and what it has learned.
#[derive(Debug, Clone)]
pub struct AdaptiveLimit {
    floor: usize,
    ceiling: usize,
    limit: f64,
    round: Vec<u64>,
    /// The lowest round median of the current half window, and of the one before.
    lowest: Option<u64>,
    lowest_before: Option<u64>,
    rounds_in_half: u32,
}

impl AdaptiveLimit {
    /// Starts at `ceiling`: nothing is shed until latency says so.
    pub fn new(floor: usize, ceiling: usize) -> AdaptiveLimit {
        let ceiling = ceiling.max(1);
        let floor = floor.clamp(1, ceiling);
        AdaptiveLimit {
            floor,
            ceiling,
            limit: ceiling as f64,
            round: Vec::with_capacity(ROUND),
            lowest: None,
            lowest_before: None,
            rounds_in_half: 0,
        }
    }

    /// Requests admitted at once now.
    pub fn limit(&self) -> usize {
        (self.limit as usize).clamp(self.floor, self.ceiling)
    }

    /// The unloaded latency learned so far (microseconds).
    pub fn baseline(&self) -> Option<u64> {
        match (self.lowest, self.lowest_before) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// One answered request's latency (microseconds); the limit after it.
    pub fn record(&mut self, latency_us: u64) -> usize {
        self.round.push(latency_us);
        if self.round.len() >= ROUND {
            self.round.sort_unstable();
            let median = self.round[ROUND / 2];
            self.round.clear();
            self.end_round(median);
        }
        self.limit()
    }

    fn end_round(&mut self, median: u64) {
        self.lowest = Some(self.lowest.map_or(median, |l| l.min(median)));
        self.rounds_in_half += 1;
        if self.rounds_in_half >= WINDOW_ROUNDS / 2 {
            self.lowest_before = self.lowest.take();
            self.rounds_in_half = 0;
        }
        let Some(baseline) = self.baseline() else {
            return;
        };
        // A zero baseline (sub-microsecond answers) would shrink on any noise.
        let target = baseline.max(1) as f64 * TOLERANCE;
        let median = median as f64;
        self.limit = if median <= target {
            (self.limit.floor() + 1.0).min(self.ceiling as f64)
        } else {
            (self.limit * (target / median).max(MOST_SHRINK)).max(self.floor as f64)
        };
        debug_assert!(self.limit >= self.floor as f64 && self.limit <= self.ceiling as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rounds(limit: &mut AdaptiveLimit, latency_us: u64, rounds: usize) -> usize {
        for _ in 0..rounds * ROUND {
            limit.record(latency_us);
        }
        limit.limit()
    }

    #[test]
    fn starts_at_the_ceiling_and_stays_there_while_latency_is_flat() {
        let mut limit = AdaptiveLimit::new(8, 128);
        assert_eq!(limit.limit(), 128);
        assert_eq!(rounds(&mut limit, 1_000, 100), 128);
        assert_eq!(limit.baseline(), Some(1_000));
    }

    #[test]
    fn queueing_shrinks_the_limit_down_to_the_floor() {
        let mut limit = AdaptiveLimit::new(8, 128);
        rounds(&mut limit, 1_000, 10);
        // 4x the baseline: each round shrinks by the most, 128 → 64 → 32 …
        assert_eq!(rounds(&mut limit, 4_000, 1), 64);
        assert_eq!(rounds(&mut limit, 4_000, 1), 32);
        assert_eq!(rounds(&mut limit, 4_000, 10), 8, "never below the floor");
    }

    #[test]
    fn a_little_over_the_tolerance_shrinks_a_little() {
        let mut limit = AdaptiveLimit::new(8, 100);
        rounds(&mut limit, 1_000, 1);
        // 2,000 µs against a target of 1,500: 100 × 0.75.
        assert_eq!(rounds(&mut limit, 2_000, 1), 75);
        // Within the tolerance: no shrink, one more per round.
        assert_eq!(rounds(&mut limit, 1_400, 5), 80);
    }

    #[test]
    fn recovers_slowly_once_latency_falls_back() {
        let mut limit = AdaptiveLimit::new(4, 64);
        rounds(&mut limit, 500, 1);
        assert_eq!(rounds(&mut limit, 50_000, 10), 4);
        assert_eq!(rounds(&mut limit, 600, 10), 14);
        assert_eq!(
            rounds(&mut limit, 600, 1_000),
            64,
            "never above the ceiling"
        );
    }

    #[test]
    fn the_median_decides_not_one_slow_request() {
        let mut limit = AdaptiveLimit::new(8, 128);
        rounds(&mut limit, 1_000, 5);
        for i in 0..ROUND as u64 {
            // Every fourth request is a slow report.
            limit.record(if i % 4 == 0 { 200_000 } else { 1_000 });
        }
        assert_eq!(limit.limit(), 128);
    }

    #[test]
    fn an_old_baseline_ages_out_after_a_window() {
        let mut limit = AdaptiveLimit::new(8, 128);
        rounds(&mut limit, 1_000, 1);
        // The service became slower for good (say a bigger database):
        // shrinks at first, then the slower latency becomes the baseline.
        rounds(&mut limit, 3_000, WINDOW_ROUNDS as usize);
        assert_eq!(limit.baseline(), Some(3_000));
        assert_eq!(rounds(&mut limit, 3_000, 200), 128);
    }

    #[test]
    fn bounds_are_sane_whatever_is_configured() {
        let limit = AdaptiveLimit::new(0, 0);
        assert_eq!(limit.limit(), 1);
        let mut limit = AdaptiveLimit::new(500, 16);
        assert_eq!(rounds(&mut limit, 1, 1), 16);
        assert_eq!(
            rounds(&mut limit, 1_000_000, 3),
            16,
            "floor capped by the ceiling"
        );
        let mut limit = AdaptiveLimit::new(1, 16);
        rounds(&mut limit, 0, 1);
        assert_eq!(
            rounds(&mut limit, 1_000, 10),
            1,
            "a zero baseline is one µs"
        );
    }
}
