//! The one clock. Tests travel in time by setting a `ManualClock`.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;

    /// The organization's calendar day: UTC, unless the clock is a
    /// `ZonedClock`.
    fn today(&self) -> NaiveDate {
        self.now().date_naive()
    }
}

/// `t` as both databases keep it (microseconds), so what a write returns
/// equals what a later read gives.
pub fn stored_time(t: DateTime<Utc>) -> DateTime<Utc> {
    use chrono::SubsecRound;
    t.trunc_subsecs(6)
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    /// Microseconds: what both databases keep, so a created object reads back identical.
    fn now(&self) -> DateTime<Utc> {
        stored_time(Utc::now())
    }
}

/// A clock that only moves when told to.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    pub fn new(at: DateTime<Utc>) -> Self {
        ManualClock(Arc::new(AtomicI64::new(at.timestamp_micros())))
    }

    pub fn set(&self, at: DateTime<Utc>) {
        self.0.store(at.timestamp_micros(), Ordering::SeqCst);
    }

    pub fn advance(&self, by: chrono::Duration) {
        self.0
            .fetch_add(by.num_microseconds().unwrap_or(0), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_micros(self.0.load(Ordering::SeqCst)).unwrap_or_default()
    }
}

/// A clock whose days are the organization's: `today` turns at midnight in
/// `zone` (`allot_core::zone`), daylight-saving time included.
#[derive(Clone)]
pub struct ZonedClock {
    clock: Arc<dyn Clock>,
    zone: allot_core::zone::Tz,
}

impl ZonedClock {
    pub fn new(clock: Arc<dyn Clock>, zone: allot_core::zone::Tz) -> Self {
        ZonedClock { clock, zone }
    }
}

impl Clock for ZonedClock {
    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    fn today(&self) -> NaiveDate {
        allot_core::zone::today_in(self.zone, self.now())
    }
}
