//! Software entitlements in storage: allocations under concurrency from
//! two instances, upgrades, installations moving forward only, and
//! reconciliation history.

use std::sync::Arc;

use allot_core::software::reconcile::{Compliance, Installation};
use allot_core::software::{
    AgreementType, LicenseMetric, LicenseType, SoftwareEntitlement, SoftwareTerms,
    SubscriptionPeriod,
};
use allot_store::software::{
    Allocation, Moment, ReconciliationRun, SoftwareChange, SoftwareEntitlementRecord,
    SoftwareFilter, SoftwareModel,
};
use allot_store::{Store, StoreError};
use chrono::Duration;

use crate::fixtures::*;
use crate::TestDatabase;

fn moment(ctx: &allot_store::AuditContext) -> Moment<'_> {
    Moment {
        audit: ctx,
        today: today(),
        now: now(),
    }
}

async fn add_model(store: &dyn Store, id: &str) -> SoftwareModel {
    let model = SoftwareModel {
        id: id.into(),
        publisher: "Microsoft".into(),
        product: "SQL Server".into(),
        version: Some(id.trim_start_matches("swm_").into()),
        edition: None,
        platform: None,
        created_at: now(),
        updated_at: now(),
    };
    store
        .insert_software_model(&model, &tester(), None)
        .await
        .unwrap();
    model
}

fn software_terms(model: &str, rights: i64) -> SoftwareTerms {
    SoftwareTerms {
        software_model_id: model.into(),
        account_id: None,
        display_name: None,
        publisher_part_number: None,
        license_metric: LicenseMetric::PerDevice,
        license_type: LicenseType::Perpetual,
        agreement_type: AgreementType::None,
        rights_per_pack: None,
        number_of_packs: None,
        purchased_rights: rights,
        active_rights: rights,
        unlimited: false,
        unit_cost: None,
        currency: None,
        subscription_period: SubscriptionPeriod::EntireTerm,
        start_date: None,
        end_date: None,
        contract_id: None,
        asset_tag: None,
        cost_center: None,
        vendor: None,
        po_number: None,
    }
}

/// A published per-device entitlement of `rights` on `model`.
async fn rights_in_use(store: &dyn Store, id: &str, model: &str, rights: i64) {
    entitled(store, id, model, LicenseMetric::PerDevice, rights, true).await;
}

fn allocation(id: &str, entitlement_id: &str, device: &str) -> Allocation {
    Allocation {
        id: id.into(),
        entitlement_id: entitlement_id.into(),
        user: None,
        device: Some(device.into()),
        quantity: 1,
        license_key: None,
        created_at: now(),
    }
}

pub async fn allocations_never_exceed_rights_across_instances(db: &TestDatabase) {
    let store = db.store();
    add_model(store.as_ref(), "swm_2022").await;
    rights_in_use(store.as_ref(), "swe_pool", "swm_2022", 10).await;
    let stores: [Arc<dyn Store>; 2] = [store.clone(), db.instance().await];
    let tasks: Vec<_> = (0..40)
        .map(|n| {
            let store = stores[n % 2].clone();
            tokio::spawn(async move {
                let ctx = tester();
                let a = allocation(&format!("sal_{n:02}"), "swe_pool", &format!("pc-{n}"));
                store.allocate_software(&a, moment(&ctx), None).await
            })
        })
        .collect();
    let (mut allocated, mut refused) = (0, 0);
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => allocated += 1,
            Err(StoreError::Software(r)) if r.code() == "rights_exhausted" => refused += 1,
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((allocated, refused), (10, 30));
    let record = store
        .get_software_entitlement("swe_pool")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.entitlement.allocated_rights, 10);
    let listed = store.list_allocations("swe_pool", &all()).await.unwrap();
    assert_eq!(listed.len(), 10);
    let ctx = tester();
    let freed = store
        .free_software("swe_pool", &listed[0].id, moment(&ctx), None)
        .await
        .unwrap();
    assert_eq!(freed.entitlement.available(), Some(1));
    let missing = store
        .free_software("swe_pool", &listed[0].id, moment(&ctx), None)
        .await;
    assert!(
        matches!(missing, Err(StoreError::NotFound { .. })),
        "{missing:?}"
    );
}

pub async fn software_rows_read_back_and_upgrade_in_one_transaction(db: &TestDatabase) {
    let store = db.store();
    let mut model = add_model(store.as_ref(), "swm_2019").await;
    add_model(store.as_ref(), "swm_2022").await;
    model.edition = Some("Enterprise".into());
    let updated = store
        .update_software_model(&model, &tester(), None)
        .await
        .unwrap();
    assert_eq!(
        store.get_software_model("swm_2019").await.unwrap(),
        Some(updated)
    );
    assert_eq!(store.list_software_models(&all()).await.unwrap().len(), 2);
    rights_in_use(store.as_ref(), "swe_old", "swm_2019", 8).await;
    rights_in_use(store.as_ref(), "swe_new", "swm_2022", 2).await;
    let ctx = tester();
    let upgraded = store
        .upgrade_software("swe_new", "swe_old", 5, moment(&ctx), None)
        .await
        .unwrap();
    assert_eq!(upgraded.to.entitlement.terms.purchased_rights, 7);
    assert_eq!(upgraded.from.entitlement.terms.purchased_rights, 3);
    let old = store
        .get_software_entitlement("swe_old")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(old, upgraded.from, "both sides committed together");
    let too_many = store
        .upgrade_software("swe_new", "swe_old", 4, moment(&ctx), None)
        .await;
    assert!(
        matches!(too_many, Err(StoreError::Software(_))),
        "{too_many:?}"
    );
    let filter = SoftwareFilter {
        software_model_id: Some("swm_2022".into()),
        ..SoftwareFilter::default()
    };
    let listed = store
        .list_software_entitlements(&filter, &all())
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].entitlement.id, "swe_new");
    let audit = store
        .list_audit(
            &allot_store::audit::AuditFilter {
                target_id: Some("swe_new".into()),
                ..Default::default()
            },
            &all(),
        )
        .await
        .unwrap();
    let actions: Vec<&str> = audit.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "software_entitlement.create",
            "software_entitlement.publish",
            "software_entitlement.upgrade"
        ]
    );
}

pub async fn installations_move_forward_and_reconciliations_are_kept(db: &TestDatabase) {
    let store = db.store();
    add_model(store.as_ref(), "swm_2022").await;
    rights_in_use(store.as_ref(), "swe_1", "swm_2022", 1).await;
    let seen = |device: &str, days_ago: i64| Installation {
        software_model_id: "swm_2022".into(),
        device: device.into(),
        user: None,
        cores: Some(4),
        seen_at: now() - Duration::days(days_ago),
    };
    let ctx = tester();
    let recorded = store
        .record_installations(&[seen("a", 1), seen("b", 1)], moment(&ctx), None)
        .await
        .unwrap();
    assert_eq!(recorded, 2);
    // An older sighting of "b" never moves it back past the stale line.
    store
        .record_installations(&[seen("b", 90)], moment(&ctx), None)
        .await
        .unwrap();
    let run = ReconciliationRun {
        id: "rec_1",
        software_model_id: None,
        stale_before: now() - Duration::days(30),
    };
    let first = store
        .run_reconciliation(&run, moment(&ctx), None)
        .await
        .unwrap();
    assert_eq!(first.items.len(), 1);
    assert_eq!(first.items[0].rights_needed, 2);
    assert_eq!(first.items[0].status, Compliance::UnderLicensed);
    let second = ReconciliationRun { id: "rec_2", ..run };
    store
        .run_reconciliation(&second, moment(&ctx), None)
        .await
        .unwrap();
    assert_eq!(
        store.get_reconciliation("rec_1").await.unwrap(),
        Some(first)
    );
    let history = store.list_reconciliations(&all()).await.unwrap();
    let ids: Vec<&str> = history.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["rec_1", "rec_2"]);
    let later = store
        .list_reconciliations(&page(Some("rec_1"), 10))
        .await
        .unwrap();
    assert_eq!(later.len(), 1);
}

pub async fn a_due_reconciliation_runs_once_across_instances(db: &TestDatabase) {
    let store = db.store();
    add_model(store.as_ref(), "swm_2022").await;
    let ctx = allot_store::AuditContext::system();
    let nothing = ReconciliationRun {
        id: "rec_empty",
        software_model_id: None,
        stale_before: now() - Duration::days(30),
    };
    let skipped = store
        .reconcile_if_due(&nothing, Duration::days(1), moment(&ctx))
        .await
        .unwrap();
    assert_eq!(skipped, None, "nothing to reconcile keeps no history");
    rights_in_use(store.as_ref(), "swe_1", "swm_2022", 1).await;
    let stores: [Arc<dyn Store>; 2] = [store.clone(), db.instance().await];
    let tasks: Vec<_> = (0..8)
        .map(|n| {
            let store = stores[n % 2].clone();
            tokio::spawn(async move {
                let ctx = allot_store::AuditContext::system();
                let id = format!("rec_{n}");
                let run = ReconciliationRun {
                    id: &id,
                    software_model_id: None,
                    stale_before: now() - Duration::days(30),
                };
                store
                    .reconcile_if_due(&run, Duration::days(1), moment(&ctx))
                    .await
                    .unwrap()
                    .is_some()
            })
        })
        .collect();
    let mut ran = 0;
    for task in tasks {
        ran += usize::from(task.await.unwrap());
    }
    assert_eq!(ran, 1);
    assert_eq!(store.list_reconciliations(&all()).await.unwrap().len(), 1);
}

/// An entitlement of `rights` on `model` under `metric`, published if `live`.
async fn entitled(
    store: &dyn Store,
    id: &str,
    model: &str,
    metric: LicenseMetric,
    rights: i64,
    live: bool,
) {
    let mut terms = software_terms(model, rights);
    terms.license_metric = metric;
    let record = SoftwareEntitlementRecord {
        entitlement: SoftwareEntitlement::new(id.into(), terms),
        created_at: now(),
        updated_at: now(),
    };
    store
        .insert_software_entitlement(&record, &tester(), None)
        .await
        .unwrap();
    if live {
        let ctx = tester();
        store
            .change_software_entitlement(id, &SoftwareChange::Publish, moment(&ctx), None)
            .await
            .unwrap();
    }
}

/// The store counts the installations in SQL (`allot_core::software::counted`);
/// reconciling over its counts, kept or live, gives exactly what the rules
/// give over every row: needs per metric, stale rows left out, names in byte
/// order (not the database's collation), lists cut at `MAX_LISTED` past the
/// allocated names, downgrade rights lending a per-user metric.
pub async fn reconciliation_counts_in_the_store_as_the_rules_over_every_row(db: &TestDatabase) {
    use allot_core::software::reconcile::{reconcile, MAX_LISTED};
    let store = db.store();
    let s = store.as_ref();
    for model in ["swm_a", "swm_b", "swm_c", "swm_old", "swm_x"] {
        add_model(s, model).await;
    }
    entitled(s, "swe_1", "swm_a", LicenseMetric::PerDevice, 50, true).await;
    entitled(s, "swe_2", "swm_a", LicenseMetric::PerCore, 20, true).await;
    entitled(s, "swe_3", "swm_b", LicenseMetric::PerUser, 5, true).await;
    entitled(s, "swe_4", "swm_c", LicenseMetric::Consumption, 10, true).await;
    entitled(s, "swe_5", "swm_a", LicenseMetric::PerInstall, 10, false).await;
    let ctx = tester();
    let lend = SoftwareChange::AddDowngradeRight {
        software_model_id: "swm_old".into(),
        order: None,
    };
    store
        .change_software_entitlement("swe_3", &lend, moment(&ctx), None)
        .await
        .unwrap();
    let held = |id: &str, e: &str, user: Option<&str>, device: Option<&str>, quantity| Allocation {
        id: id.into(),
        entitlement_id: e.into(),
        user: user.map(str::to_string),
        device: device.map(str::to_string),
        quantity,
        license_key: None,
        created_at: now(),
    };
    let allocations = [
        held("swa_1", "swe_1", None, Some("d005"), 1),
        held("swa_2", "swe_1", Some("ann"), Some("D7"), 1),
        held("swa_3", "swe_1", None, Some("é1"), 1),
        held("swa_4", "swe_1", None, Some("gone"), 1),
        held("swa_5", "swe_3", Some("ann"), None, 1),
        held("swa_6", "swe_3", Some("Bob"), None, 1),
        held("swa_7", "swe_3", None, Some("d3"), 1),
        held("swa_8", "swe_4", None, Some("d1"), 3),
    ];
    for a in &allocations {
        store
            .allocate_software(a, moment(&ctx), None)
            .await
            .unwrap();
    }
    let seen = |model: &str, device: String, user: Option<&str>, cores, days_ago| Installation {
        software_model_id: model.into(),
        device,
        user: user.map(str::to_string),
        cores,
        seen_at: now() - Duration::days(days_ago) - Duration::seconds(1),
    };
    let mut installations = Vec::new();
    let prefixes = ["d", "D", "é", "Z", "a"];
    for n in 0..(MAX_LISTED + 60) {
        let prefix = prefixes[n % prefixes.len()];
        let user = [None, Some("ann"), Some("Bob"), Some("zed")][n % 4];
        let cores = [None, Some(0), Some(8), Some(1)][n % 4];
        let days_ago = if n % 9 == 0 { 31 } else { 2 };
        installations.push(seen(
            "swm_a",
            format!("{prefix}{n:03}"),
            user,
            cores,
            days_ago,
        ));
    }
    installations.push(seen("swm_a", "D7".into(), None, None, 1));
    installations.push(seen("swm_a", "é1".into(), None, Some(64), 1));
    for (n, user) in ["ann", "Zed", "émile", "ann", "bob"]
        .into_iter()
        .enumerate()
    {
        let user = (n != 4).then_some(user);
        installations.push(seen("swm_b", format!("d{n}"), user, None, 3));
        installations.push(seen("swm_old", format!("o{n}"), user, None, 3));
    }
    installations.push(seen("swm_c", "d1".into(), None, None, 40));
    installations.push(seen("swm_x", "x1".into(), Some("ann"), None, 0));
    installations.push(seen("swm_x", "x0".into(), None, None, 0));
    store
        .record_installations(&installations, moment(&ctx), None)
        .await
        .unwrap();
    let stale_before = now() - Duration::days(30);
    let entitlements: Vec<SoftwareEntitlement> = store
        .list_software_entitlements(&SoftwareFilter::default(), &all())
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.entitlement)
        .collect();
    let held: Vec<_> = allocations.iter().map(Allocation::held).collect();
    let expected = reconcile(&entitlements, &held, &installations, today(), stale_before);
    let keys: Vec<(&str, LicenseMetric)> = expected
        .iter()
        .map(|i| (i.software_model_id.as_str(), i.license_metric))
        .collect();
    assert_eq!(
        keys,
        [
            ("swm_a", LicenseMetric::PerDevice),
            ("swm_a", LicenseMetric::PerCore),
            ("swm_a", LicenseMetric::PerInstall),
            ("swm_b", LicenseMetric::PerUser),
            ("swm_c", LicenseMetric::Consumption),
            ("swm_old", LicenseMetric::PerUser),
            ("swm_x", LicenseMetric::PerInstall),
        ]
    );
    let per_device = &expected[0];
    assert_eq!(per_device.installed_not_allocated.len(), MAX_LISTED);
    assert_eq!(per_device.allocated_not_installed, ["gone"]);
    let run = ReconciliationRun {
        id: "rec_1",
        software_model_id: None,
        stale_before,
    };
    let kept = store
        .run_reconciliation(&run, moment(&ctx), None)
        .await
        .unwrap();
    assert_eq!(kept.items, expected, "kept");
    let snapshot = store.compliance_snapshot(stale_before).await.unwrap();
    let counts_only: Vec<_> = expected
        .iter()
        .cloned()
        .map(|mut item| {
            item.allocated_not_installed.clear();
            item.installed_not_allocated.clear();
            item
        })
        .collect();
    assert_eq!(snapshot.inputs.reconcile(today()), counts_only, "live");
    assert!(
        snapshot
            .inputs
            .installs
            .iter()
            .all(|m| m.first_devices.is_empty()
                && m.first_users.is_empty()
                && m.installed.is_empty()),
        "the report reads no names"
    );
    assert_eq!(snapshot.models.len(), 5);
}
