//! Software entitlements (licence rights): what was bought for a software
//! model, how much of it is allocated, what it costs, and how it compares
//! with what is installed. Pure rules; the stores persist what they decide.
//!
//! | module | decides |
//! |---|---|
//! | `terms` | the names (metric, licence type, agreement, billing period) and what terms must satisfy |
//! | `rights` | state from dates, available rights, allocation, retirement, upgrades, licence keys |
//! | `cost` | total cost over the term's billing periods, spend of the current period |
//! | `reconcile` | rights owned against rights needed per model and metric |
//! | `counted` | what reconciliation needs counted of the installations (the stores' aggregate) |

pub mod cost;
pub mod counted;
pub mod reconcile;
pub mod rights;
pub mod terms;

pub use rights::{SoftwareEntitlement, SoftwareRefusal, SoftwareState};
pub use terms::{AgreementType, LicenseMetric, LicenseType, SoftwareTerms, SubscriptionPeriod};

/// Most rights one entitlement may hold: large enough for any agreement,
/// small enough that rights × unit cost × periods never overflows a
/// `Quantity`.
pub const MAX_RIGHTS: i64 = 1_000_000_000;
