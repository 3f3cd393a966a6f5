//! Reconciliation: per software model and licence metric, the rights owned
//! (live entitlements, plus what newer entitlements' downgrade rights lend)
//! against the rights the current installations need, and what the gap
//! costs or could save.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::quantity::Quantity;

use super::counted::{count_installations, Identity, InstallsAsk, Lists, ModelInstalls};
use super::rights::{SoftwareEntitlement, SoftwareState};
use super::terms::LicenseMetric;

/// Most names each list of an item holds (the counts are always whole).
pub const MAX_LISTED: usize = 100;

/// A device (and its user) seen running a software model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Installation {
    pub software_model_id: String,
    pub device: String,
    pub user: Option<String>,
    pub cores: Option<i64>,
    pub seen_at: DateTime<Utc>,
}

/// An allocation as reconciliation weighs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllocationHeld {
    pub entitlement_id: String,
    pub user: Option<String>,
    pub device: Option<String>,
    pub quantity: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Compliance {
    Compliant,
    UnderLicensed,
    OverLicensed,
}

impl Compliance {
    pub fn as_str(self) -> &'static str {
        match self {
            Compliance::Compliant => "compliant",
            Compliance::UnderLicensed => "under_licensed",
            Compliance::OverLicensed => "over_licensed",
        }
    }
}

/// One row of a reconciliation: a model under one metric.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReconciliationItem {
    pub software_model_id: String,
    pub license_metric: LicenseMetric,
    pub rights_owned: i64,
    /// Of `rights_owned`, lent by newer models' downgrade rights.
    pub rights_from_downgrades: i64,
    pub rights_needed: i64,
    /// An unlimited entitlement or an enterprise-wide agreement covers the
    /// title, whatever is installed.
    pub covered_without_count: bool,
    pub status: Compliance,
    pub shortfall: i64,
    pub true_up_cost: Option<Quantity>,
    pub unused_rights: i64,
    pub potential_savings: Option<Quantity>,
    /// Users (per-user metric) or devices allocated without an installation.
    pub allocated_not_installed: Vec<String>,
    /// Users (per-user metric) or devices installed without an allocation.
    pub installed_not_allocated: Vec<String>,
}

pub(crate) type Group = (String, LicenseMetric);

#[derive(Default)]
struct Tally {
    owned: i64,
    lent_in: i64,
    covered: bool,
    /// The latest unit cost among the group's entitlements (ids sort by time).
    price: Option<(String, Quantity)>,
    entitlement_ids: BTreeSet<String>,
}

/// Every (model, metric) some entitlement is on, whatever its state, with
/// those entitlements' ids.
pub(crate) fn entitlement_groups(
    entitlements: &[SoftwareEntitlement],
) -> BTreeMap<Group, BTreeSet<String>> {
    let mut groups: BTreeMap<Group, BTreeSet<String>> = BTreeMap::new();
    for e in entitlements {
        let key = (e.terms.software_model_id.clone(), e.terms.license_metric);
        groups.entry(key).or_default().insert(e.id.clone());
    }
    groups
}

/// Allocations by entitlement id.
pub(crate) fn held_by_entitlement(
    allocations: &[AllocationHeld],
) -> HashMap<&str, Vec<&AllocationHeld>> {
    let mut by_entitlement: HashMap<&str, Vec<&AllocationHeld>> = HashMap::new();
    for a in allocations {
        by_entitlement
            .entry(a.entitlement_id.as_str())
            .or_default()
            .push(a);
    }
    by_entitlement
}

/// Reconciles the installations seen at or after `stale_before` against
/// the entitlements in use today: counts them as a store would
/// (`counted::count_installations`) and decides over the counts
/// (`reconcile_counted`).
pub fn reconcile(
    entitlements: &[SoftwareEntitlement],
    allocations: &[AllocationHeld],
    installations: &[Installation],
    today: NaiveDate,
    stale_before: DateTime<Utc>,
) -> Vec<ReconciliationItem> {
    let ask = InstallsAsk::new(entitlements, allocations, stale_before, Lists::Names);
    let counted = count_installations(&ask, installations);
    reconcile_counted(entitlements, allocations, &counted, today, Lists::Names)
}

/// Reconciles the fresh installations, counted per model as
/// `InstallsAsk::new(entitlements, allocations, …, lists)` asked, against
/// the entitlements in use today. A model installed without any entitlement
/// gets a row under the metric of the entitlements whose downgrade rights
/// list it, else `per_install`. Items are in (model, metric) order; their
/// lists are empty under `Lists::CountsOnly`.
pub fn reconcile_counted(
    entitlements: &[SoftwareEntitlement],
    allocations: &[AllocationHeld],
    installs: &[ModelInstalls],
    today: NaiveDate,
    lists: Lists,
) -> Vec<ReconciliationItem> {
    // Indexed once: every group reads only its model's counts and its
    // entitlements' allocations, so the work grows with the rows, not
    // with rows × groups.
    let by_model: HashMap<&str, &ModelInstalls> = installs
        .iter()
        .map(|i| (i.software_model_id.as_str(), i))
        .collect();
    let by_entitlement = held_by_entitlement(allocations);
    let mut groups: BTreeMap<Group, Tally> = entitlement_groups(entitlements)
        .into_iter()
        .map(|(g, entitlement_ids)| {
            let tally = Tally {
                entitlement_ids,
                ..Tally::default()
            };
            (g, tally)
        })
        .collect();
    for e in entitlements {
        if e.state_on(today) != SoftwareState::InUse {
            continue;
        }
        let key = (e.terms.software_model_id.clone(), e.terms.license_metric);
        let tally = groups
            .get_mut(&key)
            .expect("every entitlement has its group");
        tally.owned += e.terms.active_rights;
        tally.covered |= e.terms.unlimited || e.terms.agreement_type.enterprise_wide();
        if let Some(cost) = e.terms.unit_cost {
            if tally.price.as_ref().is_none_or(|(id, _)| *id < e.id) {
                tally.price = Some((e.id.clone(), cost));
            }
        }
    }
    let licensed: HashSet<String> = groups.keys().map(|(m, _)| m.clone()).collect();
    let lent_metric = downgrade_metrics(entitlements);
    for model in by_model.keys().filter(|m| !licensed.contains(**m)) {
        let metric = lent_metric
            .get(model)
            .copied()
            .unwrap_or(LicenseMetric::PerInstall);
        groups.entry((model.to_string(), metric)).or_default();
    }
    let none = ModelInstalls::default();
    let installs_of = |model: &str| by_model.get(model).copied().unwrap_or(&none);
    let held_by = |tally: &Tally| -> Vec<&AllocationHeld> {
        tally
            .entitlement_ids
            .iter()
            .filter_map(|id| by_entitlement.get(id.as_str()))
            .flatten()
            .copied()
            .collect()
    };
    let needed: BTreeMap<Group, i64> = groups
        .iter()
        .map(|(g, tally)| {
            let need = rights_needed(g.1, installs_of(&g.0), &held_by(tally));
            (g.clone(), need)
        })
        .collect();
    lend_downgrade_rights(entitlements, &mut groups, &needed, today);
    groups
        .iter()
        .map(|(group, tally)| {
            let need = needed[group];
            let held = match lists {
                Lists::Names => held_by(tally),
                Lists::CountsOnly => Vec::new(),
            };
            item(group, tally, need, installs_of(&group.0), &held, lists)
        })
        .collect()
}

/// For each model some entitlement lists as a downgrade right, the metric
/// of the first such entitlement.
pub(crate) fn downgrade_metrics(
    entitlements: &[SoftwareEntitlement],
) -> HashMap<&str, LicenseMetric> {
    let mut metrics = HashMap::new();
    for e in entitlements {
        for d in &e.downgrade_rights {
            metrics
                .entry(d.software_model_id.as_str())
                .or_insert(e.terms.license_metric);
        }
    }
    metrics
}

/// What the current installations of a model need under a metric.
fn rights_needed(metric: LicenseMetric, counted: &ModelInstalls, held: &[&AllocationHeld]) -> i64 {
    match metric {
        LicenseMetric::PerUser => counted.users,
        LicenseMetric::PerDevice | LicenseMetric::Concurrent => counted.devices,
        LicenseMetric::PerInstall => counted.installations,
        // An installation of unknown (or no) cores needs one core's right.
        LicenseMetric::PerCore => counted.cores + counted.cores_unknown,
        // Consumption is measured by what was allocated, not by installs.
        LicenseMetric::Consumption => held.iter().map(|a| a.quantity).sum(),
    }
}

/// Rights a model has beyond its needs flow to the older models its live
/// entitlements list as downgrade rights (same metric), in their order,
/// until each shortfall is covered or the surplus is spent. An unlimited or
/// enterprise-wide entitlement covers its downgrade models whole.
fn lend_downgrade_rights(
    entitlements: &[SoftwareEntitlement],
    groups: &mut BTreeMap<Group, Tally>,
    needed: &BTreeMap<Group, i64>,
    today: NaiveDate,
) {
    let mut lenders: Vec<&SoftwareEntitlement> = entitlements
        .iter()
        .filter(|e| e.state_on(today) == SoftwareState::InUse && !e.downgrade_rights.is_empty())
        .collect();
    lenders.sort_by(|a, b| a.id.cmp(&b.id));
    for lender in lenders {
        let source = (
            lender.terms.software_model_id.clone(),
            lender.terms.license_metric,
        );
        let whole = lender.terms.unlimited || lender.terms.agreement_type.enterprise_wide();
        for right in &lender.downgrade_rights {
            let target = (right.software_model_id.clone(), source.1);
            if target == source || !groups.contains_key(&target) {
                continue;
            }
            if whole {
                groups.get_mut(&target).expect("checked").covered = true;
                continue;
            }
            let spare = groups[&source].owned - needed[&source];
            let missing = needed[&target] - groups[&target].owned;
            let lent = spare.min(missing).min(lender.terms.active_rights);
            if lent <= 0 {
                continue;
            }
            groups.get_mut(&source).expect("checked").owned -= lent;
            let t = groups.get_mut(&target).expect("checked");
            t.owned += lent;
            t.lent_in += lent;
        }
    }
}

/// The rows of `current` that are under-licensed where `previous` did not
/// show them so (a row `previous` does not hold counts as not so): the
/// models that turned non-compliant.
pub fn turned_under_licensed<'a>(
    previous: &[ReconciliationItem],
    current: &'a [ReconciliationItem],
) -> Vec<&'a ReconciliationItem> {
    // Indexed once: a run of every model compares thousands of rows.
    let was_under: HashSet<(&str, LicenseMetric)> = previous
        .iter()
        .filter(|p| p.status == Compliance::UnderLicensed)
        .map(|p| (p.software_model_id.as_str(), p.license_metric))
        .collect();
    current
        .iter()
        .filter(|item| item.status == Compliance::UnderLicensed)
        .filter(|item| !was_under.contains(&(item.software_model_id.as_str(), item.license_metric)))
        .collect()
}

fn item(
    group: &Group,
    tally: &Tally,
    needed: i64,
    counted: &ModelInstalls,
    held: &[&AllocationHeld],
    lists: Lists,
) -> ReconciliationItem {
    let price = tally.price.as_ref().map(|(_, p)| *p);
    let cost = |rights: i64| {
        price.map(|p| {
            let milli = i128::from(p.milli()) * i128::from(rights);
            Quantity::from_milli(i64::try_from(milli).unwrap_or(i64::MAX))
        })
    };
    let (status, shortfall, unused) = if tally.covered {
        (Compliance::Compliant, 0, 0)
    } else if needed > tally.owned {
        (Compliance::UnderLicensed, needed - tally.owned, 0)
    } else if needed < tally.owned {
        (Compliance::OverLicensed, 0, tally.owned - needed)
    } else {
        (Compliance::Compliant, 0, 0)
    };
    let identity = Identity::of(group.1);
    let listed = match lists {
        Lists::Names => counted.first(identity),
        Lists::CountsOnly => &[],
    };
    let allocated: BTreeSet<&str> = held
        .iter()
        .filter_map(|a| identity.name(a.user.as_deref(), a.device.as_deref()))
        .collect();
    // Every allocated name was asked about; the leading names listed reach
    // `MAX_LISTED` past the allocated ones.
    let installed = |name: &str| counted.installed.contains(&(identity, name.to_string()));
    ReconciliationItem {
        software_model_id: group.0.clone(),
        license_metric: group.1,
        rights_owned: tally.owned,
        rights_from_downgrades: tally.lent_in,
        rights_needed: needed,
        covered_without_count: tally.covered,
        status,
        shortfall,
        true_up_cost: cost(shortfall),
        unused_rights: unused,
        potential_savings: cost(unused),
        allocated_not_installed: allocated
            .iter()
            .filter(|n| !installed(n))
            .take(MAX_LISTED)
            .map(|n| n.to_string())
            .collect(),
        installed_not_allocated: listed
            .iter()
            .filter(|n| !allocated.contains(n.as_str()))
            .take(MAX_LISTED)
            .cloned()
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::software::rights::{add_downgrade_right, publish};
    use crate::software::terms::tests::{day, terms};
    use crate::software::terms::AgreementType;
    use chrono::TimeZone;

    fn today() -> NaiveDate {
        day(2026, 6, 15)
    }

    fn at(d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 6, d, 12, 0, 0).unwrap()
    }

    fn owned(id: &str, model: &str, metric: LicenseMetric, rights: i64) -> SoftwareEntitlement {
        let mut t = terms();
        t.software_model_id = model.into();
        t.license_metric = metric;
        t.purchased_rights = rights;
        t.active_rights = rights;
        t.unit_cost = Some(Quantity::whole(10));
        let mut e = SoftwareEntitlement::new(id.into(), t);
        publish(&mut e, today()).unwrap();
        e
    }

    fn install(model: &str, device: &str, user: Option<&str>, cores: Option<i64>) -> Installation {
        Installation {
            software_model_id: model.into(),
            device: device.into(),
            user: user.map(str::to_string),
            cores,
            seen_at: at(14),
        }
    }

    fn run(
        e: &[SoftwareEntitlement],
        a: &[AllocationHeld],
        i: &[Installation],
    ) -> Vec<ReconciliationItem> {
        reconcile(e, a, i, today(), at(1))
    }

    #[test]
    fn a_shortfall_costs_its_true_up_and_a_surplus_its_savings() {
        let e = [owned("swe_1", "swm_a", LicenseMetric::PerDevice, 2)];
        let three: Vec<_> = ["d1", "d2", "d3"]
            .map(|d| install("swm_a", d, None, None))
            .into();
        let item = &run(&e, &[], &three)[0];
        assert_eq!((item.rights_owned, item.rights_needed), (2, 3));
        assert_eq!(item.status, Compliance::UnderLicensed);
        assert_eq!(item.shortfall, 1);
        assert_eq!(item.true_up_cost, Some(Quantity::whole(10)));
        assert_eq!(item.potential_savings, Some(Quantity::ZERO));
        let item = &run(&e, &[], &three[..1])[0];
        assert_eq!(item.status, Compliance::OverLicensed);
        assert_eq!(
            (item.unused_rights, item.potential_savings),
            (1, Some(Quantity::whole(10)))
        );
        let item = &run(&e, &[], &three[..2])[0];
        assert_eq!(item.status, Compliance::Compliant);
        assert_eq!((item.shortfall, item.unused_rights), (0, 0));
    }

    #[test]
    fn each_metric_counts_its_own_way() {
        let installs = [
            install("swm_a", "d1", Some("ann"), Some(8)),
            install("swm_a", "d2", Some("ann"), Some(4)),
            install("swm_a", "d3", None, None),
        ];
        let needed = |metric| {
            let e = [owned("swe_1", "swm_a", metric, 0)];
            let a = [AllocationHeld {
                entitlement_id: "swe_1".into(),
                user: None,
                device: None,
                quantity: 7,
            }];
            run(&e, &a, &installs)[0].rights_needed
        };
        assert_eq!(
            needed(LicenseMetric::PerUser),
            2,
            "ann, and d3 by its device"
        );
        assert_eq!(needed(LicenseMetric::PerDevice), 3);
        assert_eq!(needed(LicenseMetric::PerInstall), 3);
        assert_eq!(needed(LicenseMetric::Concurrent), 3);
        assert_eq!(
            needed(LicenseMetric::PerCore),
            13,
            "8 + 4 + 1 for an unknown count"
        );
        assert_eq!(needed(LicenseMetric::Consumption), 7);
    }

    #[test]
    fn stale_installations_stop_counting() {
        let e = [owned("swe_1", "swm_a", LicenseMetric::PerDevice, 1)];
        let mut old = install("swm_a", "d0", None, None);
        old.seen_at = at(1) - chrono::Duration::seconds(1);
        let items = run(&e, &[], &[old, install("swm_a", "d1", None, None)]);
        assert_eq!(items[0].rights_needed, 1);
        assert_eq!(items[0].status, Compliance::Compliant);
    }

    #[test]
    fn enterprise_agreements_and_unlimited_rights_are_compliant() {
        let installs: Vec<_> = (0..50)
            .map(|n| install("swm_a", &format!("d{n}"), None, None))
            .collect();
        for agreement in [AgreementType::Ea, AgreementType::Ela, AgreementType::Ula] {
            let mut e = owned("swe_1", "swm_a", LicenseMetric::PerDevice, 1);
            e.terms.agreement_type = agreement;
            let item = &run(&[e], &[], &installs)[0];
            assert_eq!(item.status, Compliance::Compliant);
            assert!(item.covered_without_count);
            assert_eq!(item.true_up_cost, Some(Quantity::ZERO));
        }
        let mut e = owned("swe_1", "swm_a", LicenseMetric::PerDevice, 0);
        e.terms.unlimited = true;
        assert_eq!(run(&[e], &[], &installs)[0].status, Compliance::Compliant);
    }

    #[test]
    fn only_entitlements_in_use_own_rights() {
        let mut draft = owned("swe_1", "swm_a", LicenseMetric::PerDevice, 5);
        draft.state = SoftwareState::Build;
        let mut retired = owned("swe_2", "swm_a", LicenseMetric::PerDevice, 5);
        retired.state = SoftwareState::Retired;
        let item = &run(
            &[draft, retired],
            &[],
            &[install("swm_a", "d1", None, None)],
        )[0];
        assert_eq!(item.rights_owned, 0);
        assert_eq!(item.status, Compliance::UnderLicensed);
    }

    #[test]
    fn installations_without_entitlements_need_a_right_each() {
        let items = run(&[], &[], &[install("swm_x", "d1", None, None)]);
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].license_metric, LicenseMetric::PerInstall);
        assert_eq!(items[0].status, Compliance::UnderLicensed);
        assert_eq!(items[0].true_up_cost, None, "no price known");
    }

    #[test]
    fn statuses_have_their_wire_names() {
        assert_eq!(Compliance::Compliant.as_str(), "compliant");
        assert_eq!(Compliance::UnderLicensed.as_str(), "under_licensed");
        assert_eq!(Compliance::OverLicensed.as_str(), "over_licensed");
    }

    #[test]
    fn a_group_is_priced_by_its_newest_entitlement_whatever_the_order() {
        let mut older = owned("swe_1", "swm_a", LicenseMetric::PerDevice, 1);
        older.terms.unit_cost = Some(Quantity::whole(10));
        let mut newer = owned("swe_2", "swm_a", LicenseMetric::PerDevice, 1);
        newer.terms.unit_cost = Some(Quantity::whole(30));
        let three: Vec<_> = ["d1", "d2", "d3"]
            .map(|d| install("swm_a", d, None, None))
            .into();
        for e in [[older.clone(), newer.clone()], [newer, older]] {
            let item = &run(&e, &[], &three)[0];
            assert_eq!(item.true_up_cost, Some(Quantity::whole(30)));
        }
    }

    #[test]
    fn the_whole_surplus_is_lent_and_no_more() {
        // 6 rights for 2 installations: 4 spare for the 4 older installations
        // that have no entitlement of their own.
        let mut new = owned("swe_new", "swm_2022", LicenseMetric::PerDevice, 6);
        add_downgrade_right(&mut new, "swm_2019", None).unwrap();
        let mut installs: Vec<_> = (0..2)
            .map(|n| install("swm_2022", &format!("n{n}"), None, None))
            .collect();
        installs.extend((0..4).map(|n| install("swm_2019", &format!("o{n}"), None, None)));
        let items = run(&[new], &[], &installs);
        let older = items
            .iter()
            .find(|i| i.software_model_id == "swm_2019")
            .unwrap();
        assert_eq!(older.rights_from_downgrades, 4);
        assert_eq!(older.status, Compliance::Compliant);
    }

    #[test]
    fn only_rights_in_use_are_lent_and_only_to_models_on_record() {
        let spare = owned("swe_1", "swm_2022", LicenseMetric::PerDevice, 5);
        // Rights of its own, but not yet published: it may lend none.
        let mut draft = owned("swe_2", "swm_2022", LicenseMetric::PerDevice, 5);
        draft.state = SoftwareState::Build;
        add_downgrade_right(&mut draft, "swm_2019", None).unwrap();
        // A right to a model nothing installs or owns lends nothing.
        add_downgrade_right(&mut draft, "swm_2016", None).unwrap();
        let installs = [
            install("swm_2022", "n1", None, None),
            install("swm_2019", "o1", None, None),
        ];
        let items = run(&[spare.clone(), draft.clone()], &[], &installs);
        let older = items
            .iter()
            .find(|i| i.software_model_id == "swm_2019")
            .unwrap();
        assert_eq!(older.rights_from_downgrades, 0);
        assert_eq!(older.status, Compliance::UnderLicensed);
        assert!(items.iter().all(|i| i.software_model_id != "swm_2016"));
        let mut lender = spare;
        add_downgrade_right(&mut lender, "swm_2016", None).unwrap();
        let items = run(&[lender], &[], &installs);
        assert!(items.iter().all(|i| i.software_model_id != "swm_2016"));
    }

    #[test]
    fn unlimited_rights_cover_their_downgrade_models_whole() {
        let mut new = owned("swe_new", "swm_2022", LicenseMetric::PerDevice, 1);
        new.terms.unlimited = true;
        add_downgrade_right(&mut new, "swm_2019", None).unwrap();
        let installs: Vec<_> = (0..5)
            .map(|n| install("swm_2019", &format!("o{n}"), None, None))
            .collect();
        let items = run(&[new], &[], &installs);
        let older = items
            .iter()
            .find(|i| i.software_model_id == "swm_2019")
            .unwrap();
        assert_eq!(older.status, Compliance::Compliant);
    }

    #[test]
    fn downgrade_rights_lend_the_surplus_of_newer_models() {
        let mut new = owned("swe_new", "swm_2022", LicenseMetric::PerDevice, 5);
        add_downgrade_right(&mut new, "swm_2019", None).unwrap();
        let old = owned("swe_old", "swm_2019", LicenseMetric::PerDevice, 1);
        let installs = [
            install("swm_2022", "d1", None, None),
            install("swm_2022", "d2", None, None),
            install("swm_2019", "d3", None, None),
            install("swm_2019", "d4", None, None),
            install("swm_2019", "d5", None, None),
        ];
        let items = run(&[new.clone(), old.clone()], &[], &installs);
        let (older, newer) = (&items[0], &items[1]);
        assert_eq!(older.software_model_id, "swm_2019");
        assert_eq!((older.rights_owned, older.rights_from_downgrades), (3, 2));
        assert_eq!(older.status, Compliance::Compliant);
        assert_eq!(
            (newer.rights_owned, newer.status),
            (3, Compliance::OverLicensed)
        );
        // Nothing is lent that the newer model needs itself.
        let more: Vec<_> = (0..5)
            .map(|n| install("swm_2022", &format!("n{n}"), None, None))
            .collect();
        let items = run(
            &[new.clone(), old],
            &[],
            &[installs.to_vec(), more].concat(),
        );
        assert_eq!(items[0].rights_from_downgrades, 0);
        assert_eq!(items[0].status, Compliance::UnderLicensed);
        // An enterprise-wide newer title covers its downgrade models whole.
        new.terms.agreement_type = AgreementType::Ula;
        let items = run(&[new], &[], &installs);
        assert_eq!(items[0].status, Compliance::Compliant);
    }

    #[test]
    fn only_rows_newly_under_licensed_turned() {
        let e = [
            owned("swe_1", "swm_a", LicenseMetric::PerDevice, 1),
            owned("swe_2", "swm_b", LicenseMetric::PerDevice, 1),
        ];
        let two = |m: &str| [install(m, "d1", None, None), install(m, "d2", None, None)];
        let before = run(&e, &[], &two("swm_a"));
        let after = run(&e, &[], &[two("swm_a"), two("swm_b")].concat());
        let turned = turned_under_licensed(&before, &after);
        let models: Vec<&str> = turned
            .iter()
            .map(|i| i.software_model_id.as_str())
            .collect();
        assert_eq!(models, ["swm_b"], "swm_a was already under-licensed");
        assert_eq!(turned_under_licensed(&[], &before).len(), 1);
        assert!(turned_under_licensed(&after, &after).is_empty());
        let mut per_user = before.clone();
        per_user[0].license_metric = LicenseMetric::PerUser;
        assert_eq!(
            turned_under_licensed(&per_user, &before).len(),
            1,
            "another metric is another row"
        );
    }

    #[test]
    fn lists_compare_allocations_with_installations() {
        let e = [owned("swe_1", "swm_a", LicenseMetric::PerUser, 5)];
        let held = |user: &str| AllocationHeld {
            entitlement_id: "swe_1".into(),
            user: Some(user.into()),
            device: None,
            quantity: 1,
        };
        let items = run(
            &e,
            &[held("ann"), held("bob")],
            &[
                install("swm_a", "d1", Some("ann"), None),
                install("swm_a", "d2", Some("cy"), None),
            ],
        );
        assert_eq!(items[0].allocated_not_installed, ["bob"]);
        assert_eq!(items[0].installed_not_allocated, ["cy"]);
        let other = AllocationHeld {
            entitlement_id: "swe_9".into(),
            ..held("cy")
        };
        let items = run(&e, &[other], &[install("swm_a", "d2", Some("cy"), None)]);
        assert_eq!(
            items[0].installed_not_allocated,
            ["cy"],
            "another entitlement's allocation"
        );
        let many: Vec<_> = (0..MAX_LISTED + 50)
            .map(|n| install("swm_a", &format!("d{n:03}"), None, None))
            .collect();
        let items = run(&e, &[], &many);
        assert_eq!(
            items[0].installed_not_allocated.len(),
            MAX_LISTED,
            "lists are bounded"
        );
        assert_eq!(
            items[0].rights_needed,
            (MAX_LISTED + 50) as i64,
            "counts are not"
        );
    }
}
