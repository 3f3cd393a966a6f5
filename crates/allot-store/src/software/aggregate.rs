//! What reconciliation reads, written once for every backend: every
//! entitlement and allocation (few), then the installations (many)
//! counted in the database per model as `allot_core`'s `InstallsAsk`
//! says (`allot_core::software::counted` defines the aggregate). Nothing
//! but the counts and at most a few hundred names per model leaves the
//! database (and only the counts where the items' lists are not wanted).

use allot_core::software::counted::{InstallsAsk, Lists, ModelInstalls};
use allot_core::software::reconcile::{reconcile_counted, AllocationHeld, ReconciliationItem};
use allot_core::software::SoftwareEntitlement;
use chrono::{DateTime, NaiveDate, Utc};

/// Every software entitlement and every allocation, as reconciliation weighs them.
#[derive(Debug, Default)]
pub struct Rights {
    pub entitlements: Vec<SoftwareEntitlement>,
    pub allocations: Vec<AllocationHeld>,
}

/// What reconciliation reads, in one transaction (or one snapshot).
#[derive(Debug, Default)]
pub struct ReconciliationInputs {
    pub rights: Rights,
    /// The fresh installations, one aggregate per model that has any.
    pub installs: Vec<ModelInstalls>,
    /// What was counted for: the items' lists, or the counts alone.
    pub lists: Lists,
}

impl ReconciliationInputs {
    /// Every model's rows, decided by `allot_core` over the counts.
    pub fn reconcile(&self, today: NaiveDate) -> Vec<ReconciliationItem> {
        reconcile_counted(
            &self.rights.entitlements,
            &self.rights.allocations,
            &self.installs,
            today,
            self.lists,
        )
    }
}

/// A backend's two reads, on a write transaction or a read-only snapshot.
#[allow(async_fn_in_trait)]
pub trait ReconciliationReads {
    type Error;
    async fn load_rights(&self) -> Result<Rights, Self::Error>;
    /// One `ModelInstalls` per model with an installation seen at or after
    /// `ask.stale_before`, exactly as `counted::count_installations`
    /// would give over every row.
    async fn count_installations(
        &self,
        ask: &InstallsAsk,
    ) -> Result<Vec<ModelInstalls>, Self::Error>;
}

/// The rights, then the installations counted as they need.
pub async fn reconciliation_inputs<R: ReconciliationReads>(
    reads: &R,
    stale_before: DateTime<Utc>,
    lists: Lists,
) -> Result<ReconciliationInputs, R::Error> {
    let rights = reads.load_rights().await?;
    let ask = InstallsAsk::new(
        &rights.entitlements,
        &rights.allocations,
        stale_before,
        lists,
    );
    let installs = reads.count_installations(&ask).await?;
    Ok(ReconciliationInputs {
        rights,
        installs,
        lists,
    })
}
