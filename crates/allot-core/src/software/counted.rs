//! What reconciliation needs to know of the installations, counted where
//! they are kept: the store aggregates its installation rows into one
//! `ModelInstalls` per model, as an `InstallsAsk` (decided here from the
//! entitlements and allocations) says, and `reconcile::reconcile_counted`
//! decides over those aggregates. `count_installations` is the
//! aggregate's definition, over rows in memory: a store's SQL must give
//! exactly what it gives.
//!
//! The aggregate of one model, over its installations seen at or after
//! `stale_before` (a model without any has none):
//!
//! | field | is |
//! |---|---|
//! | `installations` | the rows |
//! | `devices` | distinct devices |
//! | `users` | distinct `Identity::UserOrDevice` names, for a model in `ask.users` (else 0) |
//! | `cores` | Σ cores over the rows with cores ≥ 1, for a model in `ask.cores` (else 0) |
//! | `cores_unknown` | rows without cores, or with cores < 1, for a model in `ask.cores` (else 0) |
//! | `first_devices` | the first `ask.listed(model, Device)` distinct devices, in byte order |
//! | `first_users` | the first `ask.listed(model, UserOrDevice)` distinct names, in byte order |
//! | `installed` | the probes `(identity, name)` of `ask.probes` on this model some row answers |
//!
//! An ask for `Lists::CountsOnly` (the compliance report, which shows no
//! names) lists and probes nothing: only the counts are read.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::reconcile::{AllocationHeld, Installation, MAX_LISTED};
use super::terms::LicenseMetric;

/// The name an installation or an allocation is counted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Identity {
    /// The device.
    Device,
    /// The user, or the device where no user is known (`COALESCE(user, device)`).
    UserOrDevice,
}

impl Identity {
    /// Per-user rights count users; every other metric counts devices.
    pub fn of(metric: LicenseMetric) -> Identity {
        match metric {
            LicenseMetric::PerUser => Identity::UserOrDevice,
            _ => Identity::Device,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Identity::Device => "device",
            Identity::UserOrDevice => "user_or_device",
        }
    }

    /// The name of a user and a device under this identity.
    pub fn name<'a>(self, user: Option<&'a str>, device: Option<&'a str>) -> Option<&'a str> {
        match self {
            Identity::UserOrDevice => user.or(device),
            Identity::Device => device,
        }
    }
}

/// Whether reconciliation's items carry their lists of names
/// (`allocated_not_installed`, `installed_not_allocated`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Lists {
    /// The lists, as a kept reconciliation holds them.
    #[default]
    Names,
    /// Empty lists, and nothing read to fill them: for a view of the counts.
    CountsOnly,
}

/// What the store counts of the installations seen at or after `stale_before`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallsAsk {
    pub stale_before: DateTime<Utc>,
    pub lists: Lists,
    /// Models also counted by `Identity::UserOrDevice`, with how many
    /// leading names to list.
    pub users: BTreeMap<String, usize>,
    /// Leading devices to list where a model needs more than `MAX_LISTED`.
    pub devices: BTreeMap<String, usize>,
    /// Models whose cores are counted (a per-core row needs them; the
    /// other rows leave them unread).
    pub cores: BTreeSet<String>,
    /// Allocated (model, identity, name)s: is each installed?
    pub probes: BTreeSet<(String, Identity, String)>,
}

impl InstallsAsk {
    /// How many leading names of a model to list under an identity.
    pub fn listed(&self, model: &str, identity: Identity) -> usize {
        if self.lists == Lists::CountsOnly {
            return 0;
        }
        match identity {
            Identity::Device => self.devices.get(model).copied().unwrap_or(MAX_LISTED),
            Identity::UserOrDevice => self.users.get(model).copied().unwrap_or(0),
        }
    }

    /// What reconciling these entitlements and allocations needs: every
    /// (model, metric) group lists `MAX_LISTED` names beyond the ones its
    /// allocations hold (so the first `MAX_LISTED` installed and not
    /// allocated are among them) and asks whether each allocated name is
    /// installed; a model with a per-core row (its own, or lent by
    /// downgrade rights) has its cores counted, one lent a per-user metric
    /// is counted by user too. `Lists::CountsOnly` lists and probes nothing.
    pub fn new(
        entitlements: &[super::SoftwareEntitlement],
        allocations: &[AllocationHeld],
        stale_before: DateTime<Utc>,
        lists: Lists,
    ) -> InstallsAsk {
        let mut ask = InstallsAsk {
            stale_before,
            lists,
            users: BTreeMap::new(),
            devices: BTreeMap::new(),
            cores: BTreeSet::new(),
            probes: BTreeSet::new(),
        };
        let groups = super::reconcile::entitlement_groups(entitlements);
        let held = super::reconcile::held_by_entitlement(allocations);
        for ((model, metric), ids) in &groups {
            if *metric == LicenseMetric::PerCore {
                ask.cores.insert(model.clone());
            }
            let identity = Identity::of(*metric);
            let names: BTreeSet<&str> = ids
                .iter()
                .filter_map(|id| held.get(id.as_str()))
                .flatten()
                .filter_map(|a| identity.name(a.user.as_deref(), a.device.as_deref()))
                .collect();
            let limits = match identity {
                Identity::Device => &mut ask.devices,
                Identity::UserOrDevice => &mut ask.users,
            };
            let limit = limits.entry(model.clone()).or_insert(MAX_LISTED);
            *limit = (*limit).max(MAX_LISTED + names.len());
            if lists == Lists::CountsOnly {
                continue;
            }
            ask.probes.extend(
                names
                    .into_iter()
                    .map(|n| (model.clone(), identity, n.to_string())),
            );
        }
        let licensed: BTreeSet<&str> = groups.keys().map(|(m, _)| m.as_str()).collect();
        for (model, metric) in super::reconcile::downgrade_metrics(entitlements) {
            if licensed.contains(model) {
                continue;
            }
            if Identity::of(metric) == Identity::UserOrDevice {
                ask.users.entry(model.to_string()).or_insert(MAX_LISTED);
            }
            if metric == LicenseMetric::PerCore {
                ask.cores.insert(model.to_string());
            }
        }
        ask
    }
}

/// The fresh installations of one model, aggregated (see the module's table).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModelInstalls {
    pub software_model_id: String,
    pub installations: i64,
    pub devices: i64,
    pub users: i64,
    pub cores: i64,
    pub cores_unknown: i64,
    pub first_devices: Vec<String>,
    pub first_users: Vec<String>,
    pub installed: BTreeSet<(Identity, String)>,
}

impl ModelInstalls {
    /// The leading names listed under an identity.
    pub fn first(&self, identity: Identity) -> &[String] {
        match identity {
            Identity::Device => &self.first_devices,
            Identity::UserOrDevice => &self.first_users,
        }
    }
}

/// The aggregate's definition: one `ModelInstalls` per model with a fresh
/// installation, in model order.
pub fn count_installations(
    ask: &InstallsAsk,
    installations: &[Installation],
) -> Vec<ModelInstalls> {
    let mut by_model: BTreeMap<&str, Vec<&Installation>> = BTreeMap::new();
    for i in installations
        .iter()
        .filter(|i| i.seen_at >= ask.stale_before)
    {
        by_model
            .entry(i.software_model_id.as_str())
            .or_default()
            .push(i);
    }
    by_model
        .into_iter()
        .map(|(model, rows)| {
            let names = |identity: Identity| -> BTreeSet<&str> {
                rows.iter()
                    .filter_map(|i| identity.name(i.user.as_deref(), Some(&i.device)))
                    .collect()
            };
            let devices = names(Identity::Device);
            let every_user = names(Identity::UserOrDevice);
            let is_installed = |identity: Identity, name: &str| match identity {
                Identity::Device => devices.contains(name),
                Identity::UserOrDevice => every_user.contains(name),
            };
            let counts_cores = ask.cores.contains(model);
            let users = if ask.users.contains_key(model) {
                every_user.clone()
            } else {
                BTreeSet::new()
            };
            let first = |set: &BTreeSet<&str>, identity| -> Vec<String> {
                set.iter()
                    .take(ask.listed(model, identity))
                    .map(|n| n.to_string())
                    .collect()
            };
            let installed = ask
                .probes
                .iter()
                .filter(|(m, identity, name)| m == model && is_installed(*identity, name))
                .map(|(_, identity, name)| (*identity, name.clone()))
                .collect();
            ModelInstalls {
                software_model_id: model.to_string(),
                installations: rows.len() as i64,
                devices: devices.len() as i64,
                users: users.len() as i64,
                cores: rows
                    .iter()
                    .filter(|_| counts_cores)
                    .filter_map(|i| i.cores)
                    .filter(|c| *c >= 1)
                    .sum(),
                cores_unknown: rows
                    .iter()
                    .filter(|_| counts_cores)
                    .filter(|i| i.cores.is_none_or(|c| c < 1))
                    .count() as i64,
                first_devices: first(&devices, Identity::Device),
                first_users: first(&users, Identity::UserOrDevice),
                installed,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::software::reconcile::{reconcile, reconcile_counted, ReconciliationItem};
    use crate::software::rights::{add_downgrade_right, publish};
    use crate::software::terms::tests::{day, terms};
    use crate::software::SoftwareEntitlement;
    use chrono::{NaiveDate, TimeZone};
    use proptest::prelude::*;

    fn today() -> NaiveDate {
        day(2026, 6, 15)
    }

    fn stale_before() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap()
    }

    fn entitlement(
        id: &str,
        model: &str,
        metric: LicenseMetric,
        rights: i64,
    ) -> SoftwareEntitlement {
        let mut t = terms();
        t.software_model_id = model.into();
        t.license_metric = metric;
        t.purchased_rights = rights;
        t.active_rights = rights;
        let mut e = SoftwareEntitlement::new(id.into(), t);
        publish(&mut e, today()).unwrap();
        e
    }

    fn held(entitlement: &str, user: Option<&str>, device: Option<&str>) -> AllocationHeld {
        AllocationHeld {
            entitlement_id: entitlement.into(),
            user: user.map(str::to_string),
            device: device.map(str::to_string),
            quantity: 1,
        }
    }

    fn seen(model: &str, device: &str, user: Option<&str>, cores: Option<i64>) -> Installation {
        Installation {
            software_model_id: model.into(),
            device: device.into(),
            user: user.map(str::to_string),
            cores,
            seen_at: stale_before(),
        }
    }

    #[test]
    fn identities_name_users_or_devices() {
        assert_eq!(Identity::of(LicenseMetric::PerUser), Identity::UserOrDevice);
        for metric in LicenseMetric::ALL.iter().copied().skip(1) {
            assert_eq!(Identity::of(metric), Identity::Device, "{metric:?}");
        }
        assert_eq!(
            Identity::UserOrDevice.name(Some("ann"), Some("d1")),
            Some("ann")
        );
        assert_eq!(Identity::UserOrDevice.name(None, Some("d1")), Some("d1"));
        assert_eq!(Identity::Device.name(Some("ann"), None), None);
        assert_eq!(Identity::Device.as_str(), "device");
        assert_eq!(Identity::UserOrDevice.as_str(), "user_or_device");
    }

    #[test]
    fn the_ask_lists_past_the_allocated_names_and_probes_each() {
        let mut per_device = entitlement("swe_1", "swm_a", LicenseMetric::PerDevice, 5);
        add_downgrade_right(&mut per_device, "swm_old", None).unwrap();
        let mut per_user = entitlement("swe_2", "swm_b", LicenseMetric::PerUser, 5);
        add_downgrade_right(&mut per_user, "swm_older", None).unwrap();
        add_downgrade_right(&mut per_user, "swm_a", None).unwrap();
        let allocations = [
            held("swe_1", Some("ann"), Some("d1")),
            held("swe_1", None, Some("d2")),
            held("swe_1", Some("bob"), None),
            held("swe_2", Some("ann"), Some("d1")),
            held("swe_9", None, Some("d3")),
        ];
        let both = [per_device, per_user];
        let ask = InstallsAsk::new(&both, &allocations, stale_before(), Lists::Names);
        assert_eq!(ask.stale_before, stale_before());
        assert_eq!(ask.listed("swm_a", Identity::Device), MAX_LISTED + 2);
        assert_eq!(ask.listed("swm_b", Identity::Device), MAX_LISTED);
        assert_eq!(ask.listed("swm_b", Identity::UserOrDevice), MAX_LISTED + 1);
        assert_eq!(
            ask.listed("swm_older", Identity::UserOrDevice),
            MAX_LISTED,
            "lent a per-user metric, with no entitlement of its own"
        );
        assert_eq!(
            ask.listed("swm_a", Identity::UserOrDevice),
            0,
            "licensed per device"
        );
        assert_eq!(
            ask.listed("swm_old", Identity::UserOrDevice),
            0,
            "lent per device"
        );
        let probes: Vec<_> = ask
            .probes
            .iter()
            .map(|(m, i, n)| (m.as_str(), *i, n.as_str()))
            .collect();
        assert_eq!(
            probes,
            [
                ("swm_a", Identity::Device, "d1"),
                ("swm_a", Identity::Device, "d2"),
                ("swm_b", Identity::UserOrDevice, "ann"),
            ]
        );
    }

    #[test]
    fn cores_are_counted_only_for_per_core_rows() {
        let mut per_core = entitlement("swe_1", "swm_c", LicenseMetric::PerCore, 5);
        add_downgrade_right(&mut per_core, "swm_old", None).unwrap();
        add_downgrade_right(&mut per_core, "swm_a", None).unwrap();
        let per_device = entitlement("swe_2", "swm_a", LicenseMetric::PerDevice, 5);
        for lists in [Lists::Names, Lists::CountsOnly] {
            let ask = InstallsAsk::new(
                &[per_core.clone(), per_device.clone()],
                &[],
                stale_before(),
                lists,
            );
            let cores: Vec<&str> = ask.cores.iter().map(String::as_str).collect();
            assert_eq!(
                cores,
                ["swm_c", "swm_old"],
                "swm_a has a per-device row of its own, no per-core one"
            );
        }
    }

    #[test]
    fn a_counts_only_ask_lists_and_probes_nothing_but_still_counts_users() {
        let per_user = entitlement("swe_2", "swm_b", LicenseMetric::PerUser, 5);
        let per_device = entitlement("swe_1", "swm_a", LicenseMetric::PerDevice, 5);
        let allocations = [
            held("swe_1", None, Some("d1")),
            held("swe_2", Some("ann"), None),
        ];
        let ask = InstallsAsk::new(
            &[per_device, per_user],
            &allocations,
            stale_before(),
            Lists::CountsOnly,
        );
        assert!(ask.probes.is_empty());
        assert!(
            ask.users.contains_key("swm_b"),
            "per-user needs are counted"
        );
        for model in ["swm_a", "swm_b", "swm_z"] {
            for identity in [Identity::Device, Identity::UserOrDevice] {
                assert_eq!(ask.listed(model, identity), 0, "{model} {identity:?}");
            }
        }
        let rows = [
            seen("swm_a", "d1", None, None),
            seen("swm_b", "d2", Some("ann"), None),
        ];
        let counted = count_installations(&ask, &rows);
        assert_eq!(counted[1].users, 1);
        assert!(counted
            .iter()
            .all(|m| m.first_devices.is_empty() && m.installed.is_empty()));
    }

    #[test]
    fn counts_follow_the_table() {
        let mut ask = InstallsAsk::new(&[], &[], stale_before(), Lists::Names);
        ask.users.insert("swm_a".into(), 2);
        ask.cores.insert("swm_a".into());
        ask.devices.insert("swm_a".into(), 3);
        ask.probes
            .insert(("swm_a".into(), Identity::UserOrDevice, "ann".into()));
        ask.probes
            .insert(("swm_a".into(), Identity::Device, "ann".into()));
        ask.probes
            .insert(("swm_a".into(), Identity::Device, "d9".into()));
        ask.probes
            .insert(("swm_b".into(), Identity::Device, "d1".into()));
        let mut stale = seen("swm_a", "d0", Some("zed"), Some(64));
        stale.seen_at = stale_before() - chrono::Duration::microseconds(1);
        let rows = [
            stale,
            seen("swm_a", "d1", Some("ann"), Some(8)),
            seen("swm_a", "d2", Some("ann"), Some(0)),
            seen("swm_a", "d3", None, None),
            seen("swm_a", "d4", Some("bob"), Some(1)),
            seen("swm_a", "d9", None, Some(-2)),
            seen("swm_c", "d1", Some("cy"), Some(2)),
        ];
        let counted = count_installations(&ask, &rows);
        assert_eq!(
            counted[0],
            ModelInstalls {
                software_model_id: "swm_a".into(),
                installations: 5,
                devices: 5,
                users: 4,
                cores: 9,
                cores_unknown: 3,
                first_devices: vec!["d1".into(), "d2".into(), "d3".into()],
                first_users: vec!["ann".into(), "bob".into()],
                installed: [
                    (Identity::Device, "d9".to_string()),
                    (Identity::UserOrDevice, "ann".to_string()),
                ]
                .into(),
            }
        );
        assert_eq!(counted[0].first(Identity::UserOrDevice), ["ann", "bob"]);
        assert_eq!(counted[0].first(Identity::Device), ["d1", "d2", "d3"]);
        let other = &counted[1];
        assert_eq!(
            counted.len(),
            2,
            "no row for a model without a fresh installation"
        );
        assert_eq!(other.software_model_id, "swm_c");
        assert_eq!((other.users, other.first_users.len()), (0, 0), "not asked");
        assert_eq!((other.cores, other.cores_unknown), (0, 0), "not asked");
        assert_eq!(other.first_devices, ["d1"]);
        assert!(other.installed.is_empty(), "another model's probe");
    }

    /// What the rules said before the counts moved into the stores: every
    /// figure computed from the rows themselves.
    fn expected(
        item: &ReconciliationItem,
        entitlements: &[SoftwareEntitlement],
        allocations: &[AllocationHeld],
        installations: &[Installation],
    ) -> (i64, Vec<String>, Vec<String>) {
        let model = item.software_model_id.as_str();
        let fresh: Vec<&Installation> = installations
            .iter()
            .filter(|i| i.software_model_id == model && i.seen_at >= stale_before())
            .collect();
        let ids: BTreeSet<&str> = entitlements
            .iter()
            .filter(|e| {
                e.terms.software_model_id == model && e.terms.license_metric == item.license_metric
            })
            .map(|e| e.id.as_str())
            .collect();
        let held: Vec<&AllocationHeld> = allocations
            .iter()
            .filter(|a| ids.contains(a.entitlement_id.as_str()))
            .collect();
        let identity = Identity::of(item.license_metric);
        let installed: BTreeSet<&str> = fresh
            .iter()
            .filter_map(|i| identity.name(i.user.as_deref(), Some(&i.device)))
            .collect();
        let allocated: BTreeSet<&str> = held
            .iter()
            .filter_map(|a| identity.name(a.user.as_deref(), a.device.as_deref()))
            .collect();
        let needed = match item.license_metric {
            LicenseMetric::PerUser | LicenseMetric::PerDevice | LicenseMetric::Concurrent => {
                installed.len() as i64
            }
            LicenseMetric::PerInstall => fresh.len() as i64,
            LicenseMetric::PerCore => fresh.iter().map(|i| i.cores.unwrap_or(1).max(1)).sum(),
            LicenseMetric::Consumption => held.iter().map(|a| a.quantity).sum(),
        };
        let first = |a: &BTreeSet<&str>, b: &BTreeSet<&str>| -> Vec<String> {
            a.difference(b)
                .take(MAX_LISTED)
                .map(|n| n.to_string())
                .collect()
        };
        (
            needed,
            first(&allocated, &installed),
            first(&installed, &allocated),
        )
    }

    const MODELS: [&str; 3] = ["swm_a", "swm_b", "swm_c"];
    /// Names that sort apart in bytes and in most locales.
    const PREFIXES: [&str; 4] = ["d", "D", "é", "z"];

    fn name() -> impl Strategy<Value = String> {
        (0..PREFIXES.len(), 0..100u32).prop_map(|(p, n)| format!("{}{n}", PREFIXES[p]))
    }

    fn entitlements() -> impl Strategy<Value = Vec<SoftwareEntitlement>> {
        let one = (
            0..MODELS.len(),
            0..LicenseMetric::ALL.len(),
            0..80i64,
            proptest::option::of(0..MODELS.len()),
            any::<bool>(),
        );
        proptest::collection::vec(one, 0..6).prop_map(|specs| {
            specs
                .into_iter()
                .enumerate()
                .map(|(n, (model, metric, rights, lends, live))| {
                    let mut e = entitlement(
                        &format!("swe_{n}"),
                        MODELS[model],
                        LicenseMetric::ALL[metric],
                        rights,
                    );
                    if let Some(to) = lends {
                        add_downgrade_right(&mut e, MODELS[to], None).unwrap();
                    }
                    if !live {
                        e.state = crate::software::SoftwareState::Retired;
                    }
                    e
                })
                .collect()
        })
    }

    fn allocations() -> impl Strategy<Value = Vec<AllocationHeld>> {
        let one = (
            0..7usize,
            proptest::option::of(name()),
            proptest::option::of(name()),
            1..5i64,
        );
        proptest::collection::vec(one, 0..60).prop_map(|specs| {
            specs
                .into_iter()
                .map(|(e, user, device, quantity)| AllocationHeld {
                    entitlement_id: format!("swe_{e}"),
                    user,
                    device,
                    quantity,
                })
                .collect()
        })
    }

    fn installations() -> impl Strategy<Value = Vec<Installation>> {
        let one = (
            0..MODELS.len(),
            name(),
            proptest::option::of(name()),
            proptest::option::of(-1..20i64),
            any::<bool>(),
        );
        proptest::collection::vec(one, 0..900).prop_map(|specs| {
            specs
                .into_iter()
                .map(|(model, device, user, cores, fresh)| {
                    let mut i = seen(MODELS[model], &device, user.as_deref(), cores);
                    if !fresh {
                        i.seen_at -= chrono::Duration::seconds(1);
                    }
                    i
                })
                .collect()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// Reconciling over the counts gives what the rows themselves say,
        /// lists cut at `MAX_LISTED` included, for every model and metric.
        #[test]
        fn the_counts_reconcile_as_the_rows_would(
            e in entitlements(),
            a in allocations(),
            i in installations(),
        ) {
            let items = reconcile(&e, &a, &i, today(), stale_before());
            let mut groups: BTreeSet<(String, LicenseMetric)> = e
                .iter()
                .map(|e| (e.terms.software_model_id.clone(), e.terms.license_metric))
                .collect();
            let licensed: BTreeSet<String> = groups.iter().map(|(m, _)| m.clone()).collect();
            let lent = super::super::reconcile::downgrade_metrics(&e);
            for fresh in i.iter().filter(|i| i.seen_at >= stale_before()) {
                let model = &fresh.software_model_id;
                if !licensed.contains(model) {
                    let metric = lent.get(model.as_str()).copied().unwrap_or(LicenseMetric::PerInstall);
                    groups.insert((model.clone(), metric));
                }
            }
            let keys: BTreeSet<_> = items.iter().map(|i| (i.software_model_id.clone(), i.license_metric)).collect();
            prop_assert_eq!(keys.len(), items.len());
            prop_assert_eq!(keys, groups);
            for item in &items {
                let (needed, not_installed, not_allocated) = expected(item, &e, &a, &i);
                prop_assert_eq!(item.rights_needed, needed);
                prop_assert_eq!(&item.allocated_not_installed, &not_installed);
                prop_assert_eq!(&item.installed_not_allocated, &not_allocated);
            }
            // Counted for the counts alone: the same items, without names.
            let ask = InstallsAsk::new(&e, &a, stale_before(), Lists::CountsOnly);
            let counts = count_installations(&ask, &i);
            let counts_only = reconcile_counted(&e, &a, &counts, today(), Lists::CountsOnly);
            let unnamed: Vec<ReconciliationItem> = items
                .into_iter()
                .map(|mut item| {
                    item.allocated_not_installed.clear();
                    item.installed_not_allocated.clear();
                    item
                })
                .collect();
            prop_assert_eq!(counts_only, unnamed);
        }
    }
}
