//! Allot's domain: entitlements, balances, periods, the decision at the
//! moment of use, lifecycle and matching. Pure functions, no I/O: the
//! stores persist what these functions decide.
#![forbid(unsafe_code)]

pub mod alerts;
pub mod balance;
pub mod batch;
pub mod cases;
pub mod contracts;
pub mod decide;
pub mod entitlement;
pub mod events;
pub mod forecast;
pub mod idempotency;
pub mod invalid;
pub mod lifecycle;
pub mod matching;
pub mod period;
pub mod quantity;
pub mod report;
pub mod schedule;
pub mod software;
pub mod templates;
pub mod terms;
pub mod zone;

#[cfg(any(test, feature = "test-support"))]
pub mod test_support;

pub use balance::{Balance, Counters};
pub use decide::{Applied, Change, LedgerDraft, Reason, Refusal};
pub use entitlement::{DecrementOn, Entitlement, Period, Status, Terms, Unit};
pub use invalid::{FieldError, Invalid};
pub use quantity::Quantity;
