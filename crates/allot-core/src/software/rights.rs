//! A software entitlement's rights: its state from the dates, what is
//! still available, and every change to its rights (allocate, free,
//! publish, retire, upgrade, licence keys), each refused whole or applied
//! whole.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::terms::SoftwareTerms;
use super::MAX_RIGHTS;

/// `build` → `in_use` (published) → `retired`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SoftwareState {
    Build,
    InUse,
    Retired,
}

impl SoftwareState {
    pub const ALL: [SoftwareState; 3] = [
        SoftwareState::Build,
        SoftwareState::InUse,
        SoftwareState::Retired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SoftwareState::Build => "build",
            SoftwareState::InUse => "in_use",
            SoftwareState::Retired => "retired",
        }
    }
}

/// A licence key of an entitlement; `allocated` while an allocation uses it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LicenseKey {
    pub key: String,
    pub allocated: bool,
}

/// An older model the entitlement's rights also cover in reconciliation,
/// tried in `order` (lowest first).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DowngradeRight {
    pub software_model_id: String,
    pub order: i64,
}

/// Most licence keys one entitlement holds.
pub const MAX_KEYS: usize = 10_000;
/// Most downgrade rights one entitlement lists.
pub const MAX_DOWNGRADES: usize = 100;

/// A software entitlement as stored: its terms, its stored state, and the
/// sum of its allocations' quantities (kept with the row, under its lock).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SoftwareEntitlement {
    pub id: String,
    pub terms: SoftwareTerms,
    pub state: SoftwareState,
    pub allocated_rights: i64,
    pub license_keys: Vec<LicenseKey>,
    pub downgrade_rights: Vec<DowngradeRight>,
}

/// Why a change to an entitlement's rights is refused. Nothing of it applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum SoftwareRefusal {
    #[error("software entitlement {entitlement_id} has {available} rights available, {requested} requested")]
    RightsExhausted {
        entitlement_id: String,
        requested: i64,
        available: i64,
    },
    #[error("software entitlement {entitlement_id} is not published yet")]
    NotPublished { entitlement_id: String },
    #[error("software entitlement {entitlement_id} is retired")]
    EntitlementRetired { entitlement_id: String },
    #[error("software entitlement {entitlement_id} cannot {action} from {}", from.as_str())]
    InvalidTransition {
        entitlement_id: String,
        action: &'static str,
        from: SoftwareState,
    },
    #[error("licence key {key} is not a key of this entitlement")]
    LicenseKeyUnknown { key: String },
    #[error("licence key {key} is already allocated")]
    LicenseKeyInUse { key: String },
    #[error("licence key {key} is already a key of this entitlement")]
    DuplicateLicenseKey { key: String },
    #[error("an entitlement holds at most {max} {what}")]
    TooMany { what: &'static str, max: usize },
    #[error("rights move only between entitlements of one licence metric")]
    MetricMismatch,
    #[error(
        "software entitlement {entitlement_id} is unlimited: it has no countable rights to move"
    )]
    Unlimited { entitlement_id: String },
    #[error("software entitlement {entitlement_id} has {allocated} rights allocated: active rights cannot go below that")]
    RightsAllocated {
        entitlement_id: String,
        allocated: i64,
    },
}

impl SoftwareRefusal {
    pub fn code(&self) -> &'static str {
        match self {
            SoftwareRefusal::RightsExhausted { .. } => "rights_exhausted",
            SoftwareRefusal::NotPublished { .. } => "not_published",
            SoftwareRefusal::EntitlementRetired { .. } => "entitlement_retired",
            SoftwareRefusal::InvalidTransition { .. } => "invalid_transition",
            SoftwareRefusal::LicenseKeyUnknown { .. } => "license_key_unknown",
            SoftwareRefusal::LicenseKeyInUse { .. } => "license_key_in_use",
            SoftwareRefusal::DuplicateLicenseKey { .. } => "duplicate_license_key",
            SoftwareRefusal::TooMany { .. } => "too_many",
            SoftwareRefusal::MetricMismatch => "metric_mismatch",
            SoftwareRefusal::Unlimited { .. } => "unlimited_rights",
            SoftwareRefusal::RightsAllocated { .. } => "rights_allocated",
        }
    }
}

impl SoftwareEntitlement {
    /// A new entitlement in `build`, nothing allocated.
    pub fn new(id: String, terms: SoftwareTerms) -> Self {
        SoftwareEntitlement {
            id,
            terms,
            state: SoftwareState::Build,
            allocated_rights: 0,
            license_keys: Vec::new(),
            downgrade_rights: Vec::new(),
        }
    }

    /// The state today: a published subscription is in use only within its
    /// dates (before them it is still being built, after them retired).
    pub fn state_on(&self, today: NaiveDate) -> SoftwareState {
        if self.state != SoftwareState::InUse || !self.terms.license_type.follows_dates() {
            return self.state;
        }
        match (self.terms.start_date, self.terms.end_date) {
            (_, Some(end)) if end < today => SoftwareState::Retired,
            (Some(start), _) if start > today => SoftwareState::Build,
            _ => SoftwareState::InUse,
        }
    }

    /// Rights that may still be allocated (`None`: unlimited). Never
    /// negative: a retired entitlement's allocations stay, covering nothing.
    pub fn available(&self) -> Option<i64> {
        if self.terms.unlimited {
            return None;
        }
        Some((self.terms.active_rights - self.allocated_rights).max(0))
    }

    fn refuse_unless_in_use(&self, today: NaiveDate) -> Result<(), SoftwareRefusal> {
        let entitlement_id = self.id.clone();
        match self.state_on(today) {
            SoftwareState::InUse => Ok(()),
            SoftwareState::Build => Err(SoftwareRefusal::NotPublished { entitlement_id }),
            SoftwareState::Retired => Err(SoftwareRefusal::EntitlementRetired { entitlement_id }),
        }
    }
}

/// Allocates `quantity` (at least 1) rights, with `license_key` if given:
/// only in use, only within what is available, only a free key of this
/// entitlement.
pub fn allocate(
    e: &mut SoftwareEntitlement,
    quantity: i64,
    license_key: Option<&str>,
    today: NaiveDate,
) -> Result<(), SoftwareRefusal> {
    assert!(quantity >= 1, "an allocation covers at least one right");
    e.refuse_unless_in_use(today)?;
    if let Some(available) = e.available() {
        if quantity > available {
            return Err(SoftwareRefusal::RightsExhausted {
                entitlement_id: e.id.clone(),
                requested: quantity,
                available,
            });
        }
    }
    if let Some(key) = license_key {
        let found = e.license_keys.iter_mut().find(|k| k.key == key);
        match found {
            None => return Err(SoftwareRefusal::LicenseKeyUnknown { key: key.into() }),
            Some(k) if k.allocated => {
                return Err(SoftwareRefusal::LicenseKeyInUse { key: key.into() })
            }
            Some(k) => k.allocated = true,
        }
    }
    e.allocated_rights = e
        .allocated_rights
        .checked_add(quantity)
        .expect("allocated rights are bounded by active rights or MAX_RIGHTS");
    Ok(())
}

/// Frees an allocation of `quantity` rights (and its key): always allowed,
/// whatever the state.
pub fn free(e: &mut SoftwareEntitlement, quantity: i64, license_key: Option<&str>) {
    assert!(
        quantity >= 1 && quantity <= e.allocated_rights,
        "freeing {quantity} of {} allocated rights",
        e.allocated_rights
    );
    e.allocated_rights -= quantity;
    if let Some(k) = license_key.and_then(|key| e.license_keys.iter_mut().find(|k| k.key == key)) {
        k.allocated = false;
    }
}

/// `build` → `in_use`.
pub fn publish(e: &mut SoftwareEntitlement, today: NaiveDate) -> Result<(), SoftwareRefusal> {
    match e.state {
        SoftwareState::Build => {
            e.state = SoftwareState::InUse;
            Ok(())
        }
        _ => Err(SoftwareRefusal::InvalidTransition {
            entitlement_id: e.id.clone(),
            action: "publish",
            from: e.state_on(today),
        }),
    }
}

/// Any state but `retired` → `retired`: active rights become 0; the
/// allocations stay, covering nothing.
pub fn retire(e: &mut SoftwareEntitlement) -> Result<(), SoftwareRefusal> {
    if e.state == SoftwareState::Retired {
        return Err(SoftwareRefusal::InvalidTransition {
            entitlement_id: e.id.clone(),
            action: "retire",
            from: SoftwareState::Retired,
        });
    }
    e.state = SoftwareState::Retired;
    e.terms.active_rights = 0;
    Ok(())
}

/// Moves `rights` (at least 1) from `from` into `to`: they leave `from`'s
/// purchased and active rights and join `to`'s. Only available rights move,
/// only between entitlements of one metric, never into a retired one.
pub fn upgrade(
    from: &mut SoftwareEntitlement,
    to: &mut SoftwareEntitlement,
    rights: i64,
    today: NaiveDate,
) -> Result<(), SoftwareRefusal> {
    assert!(rights >= 1, "an upgrade moves at least one right");
    assert_ne!(
        from.id, to.id,
        "an upgrade moves rights between two entitlements"
    );
    if from.terms.license_metric != to.terms.license_metric {
        return Err(SoftwareRefusal::MetricMismatch);
    }
    if to.state_on(today) == SoftwareState::Retired {
        return Err(SoftwareRefusal::EntitlementRetired {
            entitlement_id: to.id.clone(),
        });
    }
    let Some(available) = from.available() else {
        return Err(SoftwareRefusal::Unlimited {
            entitlement_id: from.id.clone(),
        });
    };
    if rights > available {
        return Err(SoftwareRefusal::RightsExhausted {
            entitlement_id: from.id.clone(),
            requested: rights,
            available,
        });
    }
    if to.terms.purchased_rights + rights > MAX_RIGHTS {
        return Err(SoftwareRefusal::TooMany {
            what: "rights",
            max: MAX_RIGHTS as usize,
        });
    }
    from.terms.purchased_rights -= rights;
    from.terms.active_rights -= rights;
    to.terms.purchased_rights += rights;
    to.terms.active_rights += rights;
    Ok(())
}

/// Replaces the terms (already valid per `terms::validate`) of an
/// entitlement that is not retired; active rights never go below what is
/// allocated, unless the entitlement is unlimited.
pub fn edit(e: &mut SoftwareEntitlement, terms: SoftwareTerms) -> Result<(), SoftwareRefusal> {
    if e.state == SoftwareState::Retired {
        return Err(SoftwareRefusal::EntitlementRetired {
            entitlement_id: e.id.clone(),
        });
    }
    if !terms.unlimited && terms.active_rights < e.allocated_rights {
        return Err(SoftwareRefusal::RightsAllocated {
            entitlement_id: e.id.clone(),
            allocated: e.allocated_rights,
        });
    }
    e.terms = terms;
    Ok(())
}

/// Adds licence keys, each unique within the entitlement (and the request).
pub fn add_license_keys(
    e: &mut SoftwareEntitlement,
    keys: &[String],
) -> Result<(), SoftwareRefusal> {
    if e.license_keys.len() + keys.len() > MAX_KEYS {
        return Err(SoftwareRefusal::TooMany {
            what: "licence keys",
            max: MAX_KEYS,
        });
    }
    let mut seen: std::collections::HashSet<&str> =
        e.license_keys.iter().map(|k| k.key.as_str()).collect();
    for key in keys {
        if !seen.insert(key) {
            return Err(SoftwareRefusal::DuplicateLicenseKey { key: key.clone() });
        }
    }
    e.license_keys.extend(keys.iter().map(|key| LicenseKey {
        key: key.clone(),
        allocated: false,
    }));
    Ok(())
}

/// Adds (or re-orders) a downgrade right to an older model; `order`
/// defaults to after the last one.
pub fn add_downgrade_right(
    e: &mut SoftwareEntitlement,
    software_model_id: &str,
    order: Option<i64>,
) -> Result<(), SoftwareRefusal> {
    let next = e
        .downgrade_rights
        .iter()
        .map(|d| d.order + 1)
        .max()
        .unwrap_or(1);
    let order = order.unwrap_or(next);
    e.downgrade_rights
        .retain(|d| d.software_model_id != software_model_id);
    if e.downgrade_rights.len() >= MAX_DOWNGRADES {
        return Err(SoftwareRefusal::TooMany {
            what: "downgrade rights",
            max: MAX_DOWNGRADES,
        });
    }
    e.downgrade_rights.push(DowngradeRight {
        software_model_id: software_model_id.to_string(),
        order,
    });
    e.downgrade_rights
        .sort_by(|a, b| (a.order, &a.software_model_id).cmp(&(b.order, &b.software_model_id)));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::software::terms::tests::{day, terms};
    use crate::software::terms::LicenseType;
    use proptest::prelude::*;

    fn in_use(id: &str, active: i64) -> SoftwareEntitlement {
        let mut t = terms();
        t.purchased_rights = active;
        t.active_rights = active;
        let mut e = SoftwareEntitlement::new(id.into(), t);
        publish(&mut e, today()).unwrap();
        e
    }

    fn today() -> NaiveDate {
        day(2026, 6, 15)
    }

    #[test]
    fn states_have_their_wire_names() {
        let names = SoftwareState::ALL.map(SoftwareState::as_str);
        assert_eq!(names, ["build", "in_use", "retired"]);
    }

    #[test]
    fn allocations_take_what_is_available_and_no_more() {
        let mut e = in_use("swe_1", 10);
        allocate(&mut e, 7, None, today()).unwrap();
        assert_eq!(e.available(), Some(3));
        let refused = allocate(&mut e, 4, None, today()).unwrap_err();
        assert_eq!(
            refused,
            SoftwareRefusal::RightsExhausted {
                entitlement_id: "swe_1".into(),
                requested: 4,
                available: 3
            }
        );
        assert_eq!(refused.code(), "rights_exhausted");
        allocate(&mut e, 3, None, today()).unwrap();
        assert_eq!(e.available(), Some(0));
        free(&mut e, 7, None);
        assert_eq!(e.available(), Some(7));
    }

    #[test]
    fn unlimited_entitlements_never_run_out() {
        let mut e = in_use("swe_1", 0);
        e.terms.unlimited = true;
        allocate(&mut e, 1_000, None, today()).unwrap();
        assert_eq!(e.available(), None);
        assert_eq!(e.allocated_rights, 1_000);
    }

    #[test]
    fn only_published_live_entitlements_allocate() {
        let mut draft = SoftwareEntitlement::new("swe_1".into(), terms());
        let refused = allocate(&mut draft, 1, None, today()).unwrap_err();
        assert_eq!(refused.code(), "not_published");
        let mut e = in_use("swe_2", 10);
        allocate(&mut e, 4, None, today()).unwrap();
        retire(&mut e).unwrap();
        assert_eq!(e.terms.active_rights, 0);
        assert_eq!(e.allocated_rights, 4, "allocations stay visible");
        assert_eq!(e.available(), Some(0));
        let refused = allocate(&mut e, 1, None, today()).unwrap_err();
        assert_eq!(refused.code(), "entitlement_retired");
        free(&mut e, 4, None);
        assert_eq!(e.allocated_rights, 0);
    }

    #[test]
    fn lifecycle_moves_forward_only() {
        let mut e = in_use("swe_1", 1);
        assert_eq!(
            publish(&mut e, today()).unwrap_err().code(),
            "invalid_transition"
        );
        retire(&mut e).unwrap();
        let again = retire(&mut e).unwrap_err();
        assert_eq!(
            again,
            SoftwareRefusal::InvalidTransition {
                entitlement_id: "swe_1".into(),
                action: "retire",
                from: SoftwareState::Retired
            }
        );
        assert_eq!(
            publish(&mut e, today()).unwrap_err().code(),
            "invalid_transition"
        );
        let mut draft = SoftwareEntitlement::new("swe_2".into(), terms());
        retire(&mut draft).unwrap();
        assert_eq!(draft.state, SoftwareState::Retired);
    }

    #[test]
    fn subscriptions_follow_their_dates() {
        let mut e = in_use("swe_1", 5);
        e.terms.license_type = LicenseType::Subscription;
        e.terms.start_date = Some(day(2026, 7, 1));
        e.terms.end_date = Some(day(2026, 7, 31));
        assert_eq!(e.state_on(day(2026, 6, 30)), SoftwareState::Build);
        assert_eq!(e.state_on(day(2026, 7, 1)), SoftwareState::InUse);
        assert_eq!(e.state_on(day(2026, 7, 31)), SoftwareState::InUse);
        assert_eq!(e.state_on(day(2026, 8, 1)), SoftwareState::Retired);
        assert_eq!(
            allocate(&mut e, 1, None, day(2026, 8, 1))
                .unwrap_err()
                .code(),
            "entitlement_retired"
        );
        assert_eq!(
            allocate(&mut e, 1, None, day(2026, 6, 1))
                .unwrap_err()
                .code(),
            "not_published"
        );
        allocate(&mut e, 1, None, day(2026, 7, 2)).unwrap();
        // A retired-by-dates subscription may still be retired for good.
        retire(&mut e).unwrap();
        e.terms.license_type = LicenseType::Perpetual;
        let mut perpetual = in_use("swe_2", 1);
        perpetual.terms.end_date = Some(day(2026, 1, 1));
        assert_eq!(perpetual.state_on(today()), SoftwareState::InUse);
    }

    #[test]
    fn edits_keep_allocations_covered() {
        let mut e = in_use("swe_1", 10);
        allocate(&mut e, 6, None, today()).unwrap();
        let mut t = e.terms.clone();
        t.active_rights = 5;
        let refused = edit(&mut e, t.clone()).unwrap_err();
        assert_eq!(
            refused,
            SoftwareRefusal::RightsAllocated {
                entitlement_id: "swe_1".into(),
                allocated: 6
            }
        );
        t.unlimited = true;
        edit(&mut e, t.clone()).unwrap();
        assert!(e.terms.unlimited);
        t.unlimited = false;
        t.active_rights = 6;
        edit(&mut e, t.clone()).unwrap();
        assert_eq!(e.available(), Some(0));
        retire(&mut e).unwrap();
        assert_eq!(edit(&mut e, t).unwrap_err().code(), "entitlement_retired");
    }

    #[test]
    fn keys_are_unique_and_used_once() {
        let mut e = in_use("swe_1", 5);
        add_license_keys(&mut e, &["A".into(), "B".into()]).unwrap();
        let dup = add_license_keys(&mut e, &["C".into(), "A".into()]).unwrap_err();
        assert_eq!(
            dup,
            SoftwareRefusal::DuplicateLicenseKey { key: "A".into() }
        );
        assert_eq!(e.license_keys.len(), 2, "nothing added when one is refused");
        let twice = add_license_keys(&mut e, &["D".into(), "D".into()]).unwrap_err();
        assert_eq!(twice.code(), "duplicate_license_key");
        allocate(&mut e, 1, Some("A"), today()).unwrap();
        assert!(e.license_keys[0].allocated && !e.license_keys[1].allocated);
        assert_eq!(
            allocate(&mut e, 1, Some("A"), today()).unwrap_err().code(),
            "license_key_in_use"
        );
        assert_eq!(
            allocate(&mut e, 1, Some("Z"), today()).unwrap_err().code(),
            "license_key_unknown"
        );
        assert_eq!(e.allocated_rights, 1, "a refused key allocates nothing");
        free(&mut e, 1, Some("A"));
        assert!(!e.license_keys[0].allocated);
        let held = e.license_keys.len();
        let fill: Vec<String> = (held..MAX_KEYS).map(|i| i.to_string()).collect();
        add_license_keys(&mut e, &fill).unwrap();
        assert_eq!(e.license_keys.len(), MAX_KEYS, "up to the bound exactly");
        let one_more = add_license_keys(&mut e, &["last".into()]).unwrap_err();
        assert_eq!(one_more.code(), "too_many");
    }

    #[test]
    fn upgrades_move_available_rights_of_one_metric() {
        let mut old = in_use("swe_old", 10);
        let mut new = in_use("swe_new", 2);
        allocate(&mut old, 6, None, today()).unwrap();
        let refused = upgrade(&mut old, &mut new, 5, today()).unwrap_err();
        assert_eq!(refused.code(), "rights_exhausted");
        upgrade(&mut old, &mut new, 4, today()).unwrap();
        assert_eq!(
            (old.terms.purchased_rights, old.terms.active_rights),
            (6, 6)
        );
        assert_eq!(
            (new.terms.purchased_rights, new.terms.active_rights),
            (6, 6)
        );
        assert_eq!(old.available(), Some(0));
        new.terms.license_metric = crate::software::LicenseMetric::PerCore;
        assert_eq!(
            upgrade(&mut old, &mut new, 1, today()).unwrap_err().code(),
            "metric_mismatch"
        );
        let mut unlimited = in_use("swe_u", 0);
        unlimited.terms.unlimited = true;
        let mut other = in_use("swe_o", 0);
        assert_eq!(
            upgrade(&mut unlimited, &mut other, 1, today())
                .unwrap_err()
                .code(),
            "unlimited_rights"
        );
        retire(&mut other).unwrap();
        let mut full = in_use("swe_f", MAX_RIGHTS - 1);
        let mut spare = in_use("swe_p", 3);
        let over = upgrade(&mut spare, &mut full, 2, today()).unwrap_err();
        assert_eq!(over.code(), "too_many");
        upgrade(&mut spare, &mut full, 1, today()).unwrap();
        assert_eq!(
            full.terms.purchased_rights, MAX_RIGHTS,
            "up to the bound exactly"
        );
        // The bound is on the sum: half the bound moved onto 3 rights is fine.
        let half = MAX_RIGHTS / 2;
        let mut big = in_use("swe_b", half);
        let mut three = in_use("swe_t", 3);
        upgrade(&mut big, &mut three, half, today()).unwrap();
        assert_eq!(three.terms.purchased_rights, half + 3);
        let mut source = in_use("swe_s", 3);
        assert_eq!(
            upgrade(&mut source, &mut other, 1, today())
                .unwrap_err()
                .code(),
            "entitlement_retired"
        );
    }

    #[test]
    fn downgrade_rights_keep_their_order() {
        let mut e = in_use("swe_1", 1);
        add_downgrade_right(&mut e, "swm_2019", None).unwrap();
        add_downgrade_right(&mut e, "swm_2016", None).unwrap();
        add_downgrade_right(&mut e, "swm_2022", Some(0)).unwrap();
        let order: Vec<&str> = e
            .downgrade_rights
            .iter()
            .map(|d| d.software_model_id.as_str())
            .collect();
        assert_eq!(order, ["swm_2022", "swm_2019", "swm_2016"]);
        add_downgrade_right(&mut e, "swm_2019", Some(9)).unwrap();
        assert_eq!(e.downgrade_rights.len(), 3, "a model is listed once");
        assert_eq!(e.downgrade_rights[2].software_model_id, "swm_2019");
    }

    #[derive(Debug, Clone)]
    enum Step {
        Allocate(i64),
        Free(usize),
        Retire,
        UpgradeOut(i64),
        UpgradeIn(i64),
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            6 => (1i64..8).prop_map(Step::Allocate),
            3 => (0usize..16).prop_map(Step::Free),
            1 => Just(Step::Retire),
            1 => (1i64..8).prop_map(Step::UpgradeOut),
            1 => (1i64..8).prop_map(Step::UpgradeIn),
        ]
    }

    proptest! {
        /// Under any sequence of allocations, frees, upgrades and
        /// retirement, allocations never exceed active rights while the
        /// entitlement lives, the allocated sum is exactly the live
        /// allocations, and rights moved by upgrades are neither made nor lost.
        #[test]
        fn allocations_never_exceed_active_rights(
            active in 0i64..30,
            steps in proptest::collection::vec(step(), 0..80),
        ) {
            let mut e = in_use("swe_1", active);
            let mut other = in_use("swe_2", 5);
            let mut live: Vec<i64> = Vec::new();
            let total = e.terms.purchased_rights + other.terms.purchased_rights;
            for s in steps {
                let before = e.clone();
                match s {
                    Step::Allocate(q) => {
                        let fits = e.state == SoftwareState::InUse
                            && q <= e.terms.active_rights - e.allocated_rights;
                        prop_assert_eq!(allocate(&mut e, q, None, today()).is_ok(), fits);
                        if fits { live.push(q); } else { prop_assert_eq!(&e, &before); }
                    }
                    Step::Free(i) if !live.is_empty() => {
                        let q = live.remove(i % live.len());
                        free(&mut e, q, None);
                    }
                    Step::Free(_) => {}
                    Step::Retire => {
                        let _ = retire(&mut e);
                        prop_assert_eq!(e.terms.active_rights, 0);
                    }
                    Step::UpgradeOut(n) => {
                        if upgrade(&mut e, &mut other, n, today()).is_err() {
                            prop_assert_eq!(&e, &before);
                        }
                    }
                    Step::UpgradeIn(n) => {
                        let _ = upgrade(&mut other, &mut e, n, today());
                    }
                }
                prop_assert_eq!(e.allocated_rights, live.iter().sum::<i64>());
                prop_assert!(e.terms.active_rights <= e.terms.purchased_rights);
                if e.state != SoftwareState::Retired {
                    prop_assert!(e.allocated_rights <= e.terms.active_rights);
                }
                prop_assert_eq!(e.terms.purchased_rights + other.terms.purchased_rights, total);
            }
        }
    }
}
