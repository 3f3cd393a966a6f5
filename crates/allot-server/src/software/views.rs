//! The wire shape of software models, entitlements, allocations and
//! reconciliations.

use allot_core::software::cost::{current_period_spend, total_cost};
use allot_core::software::reconcile::ReconciliationItem;
use allot_core::Quantity;
use allot_store::software::{Allocation, Reconciliation, SoftwareEntitlementRecord, SoftwareModel};
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::inputs::names;

#[derive(Debug, Serialize, ToSchema)]
pub struct SoftwareModelView {
    pub id: String,
    pub publisher: String,
    pub product: String,
    pub version: Option<String>,
    pub edition: Option<String>,
    pub platform: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<&SoftwareModel> for SoftwareModelView {
    fn from(m: &SoftwareModel) -> Self {
        SoftwareModelView {
            id: m.id.clone(),
            publisher: m.publisher.clone(),
            product: m.product.clone(),
            version: m.version.clone(),
            edition: m.edition.clone(),
            platform: m.platform.clone(),
            created_at: m.created_at,
            updated_at: m.updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LicenseKeyView {
    pub key: String,
    pub allocated: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DowngradeRightView {
    pub software_model_id: String,
    pub order: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SoftwareEntitlementView {
    pub id: String,
    pub software_model_id: String,
    pub account_id: Option<String>,
    pub display_name: Option<String>,
    pub publisher_part_number: Option<String>,
    #[schema(value_type = names::LicenseMetricName)]
    pub license_metric: &'static str,
    #[schema(value_type = names::LicenseTypeName)]
    pub license_type: &'static str,
    #[schema(value_type = names::AgreementTypeName)]
    pub agreement_type: &'static str,
    pub rights_per_pack: Option<i64>,
    pub number_of_packs: Option<i64>,
    pub purchased_rights: i64,
    /// 0 once retired.
    pub active_rights: i64,
    /// Σ allocation quantities (retired: still listed, covering nothing).
    pub allocated_rights: i64,
    /// `active_rights − allocated_rights` (never below 0); null when unlimited.
    pub allocations_available: Option<i64>,
    pub unlimited: bool,
    /// Today's state: a published subscription follows its dates.
    #[schema(value_type = names::SoftwareStateName)]
    pub state: &'static str,
    #[schema(value_type = Option<f64>)]
    pub unit_cost: Option<Quantity>,
    pub currency: Option<String>,
    #[schema(value_type = names::SubscriptionPeriodName)]
    pub subscription_period: &'static str,
    pub start_date: Option<NaiveDate>,
    pub end_date: Option<NaiveDate>,
    /// Purchased rights × unit cost × billing periods in the term; null without a unit cost.
    #[schema(value_type = Option<f64>)]
    pub total_cost: Option<Quantity>,
    /// The spend of the billing period holding today; null without a unit cost.
    #[schema(value_type = Option<f64>)]
    pub current_period_spend: Option<Quantity>,
    pub contract_id: Option<String>,
    pub asset_tag: Option<String>,
    pub cost_center: Option<String>,
    pub vendor: Option<String>,
    pub po_number: Option<String>,
    pub license_keys: Vec<LicenseKeyView>,
    pub downgrade_rights: Vec<DowngradeRightView>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl SoftwareEntitlementView {
    pub fn new(r: &SoftwareEntitlementRecord, today: NaiveDate) -> Self {
        let e = &r.entitlement;
        let t = &e.terms;
        SoftwareEntitlementView {
            id: e.id.clone(),
            software_model_id: t.software_model_id.clone(),
            account_id: t.account_id.clone(),
            display_name: t.display_name.clone(),
            publisher_part_number: t.publisher_part_number.clone(),
            license_metric: t.license_metric.as_str(),
            license_type: t.license_type.as_str(),
            agreement_type: t.agreement_type.as_str(),
            rights_per_pack: t.rights_per_pack,
            number_of_packs: t.number_of_packs,
            purchased_rights: t.purchased_rights,
            active_rights: t.active_rights,
            allocated_rights: e.allocated_rights,
            allocations_available: e.available(),
            unlimited: t.unlimited,
            state: e.state_on(today).as_str(),
            unit_cost: t.unit_cost,
            currency: t.currency.clone(),
            subscription_period: t.subscription_period.as_str(),
            start_date: t.start_date,
            end_date: t.end_date,
            total_cost: total_cost(t),
            current_period_spend: current_period_spend(t, today),
            contract_id: t.contract_id.clone(),
            asset_tag: t.asset_tag.clone(),
            cost_center: t.cost_center.clone(),
            vendor: t.vendor.clone(),
            po_number: t.po_number.clone(),
            license_keys: e
                .license_keys
                .iter()
                .map(|k| LicenseKeyView {
                    key: k.key.clone(),
                    allocated: k.allocated,
                })
                .collect(),
            downgrade_rights: e
                .downgrade_rights
                .iter()
                .map(|d| DowngradeRightView {
                    software_model_id: d.software_model_id.clone(),
                    order: d.order,
                })
                .collect(),
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AllocationView {
    pub id: String,
    pub entitlement_id: String,
    pub user: Option<String>,
    pub device: Option<String>,
    pub quantity: i64,
    pub license_key: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl From<&Allocation> for AllocationView {
    fn from(a: &Allocation) -> Self {
        AllocationView {
            id: a.id.clone(),
            entitlement_id: a.entitlement_id.clone(),
            user: a.user.clone(),
            device: a.device.clone(),
            quantity: a.quantity,
            license_key: a.license_key.clone(),
            created_at: a.created_at,
        }
    }
}

/// A new allocation and its entitlement after it.
#[derive(Debug, Serialize, ToSchema)]
pub struct AllocatedView {
    pub id: String,
    pub allocation: AllocationView,
    pub entitlement: SoftwareEntitlementView,
}

/// Both entitlements of an upgrade, after it.
#[derive(Debug, Serialize, ToSchema)]
pub struct UpgradedView {
    /// The entitlement that received the rights.
    pub entitlement: SoftwareEntitlementView,
    /// The entitlement the rights left.
    pub from_entitlement: SoftwareEntitlementView,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InstallationsRecorded {
    /// Installations recorded (new, or seen again).
    pub recorded: usize,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReconciliationItemView {
    pub software_model_id: String,
    #[schema(value_type = names::LicenseMetricName)]
    pub license_metric: &'static str,
    pub rights_owned: i64,
    /// Of `rights_owned`, lent by newer models' downgrade rights.
    pub rights_from_downgrades: i64,
    pub rights_needed: i64,
    /// An unlimited entitlement or an ea/ela/ula agreement covers the title.
    pub covered_without_count: bool,
    #[schema(value_type = names::ComplianceName)]
    pub status: &'static str,
    pub shortfall: i64,
    /// Shortfall × the latest unit cost; null when no unit cost is known.
    #[schema(value_type = Option<f64>)]
    pub true_up_cost: Option<Quantity>,
    pub unused_rights: i64,
    #[schema(value_type = Option<f64>)]
    pub potential_savings: Option<Quantity>,
    /// Users (per-user metric) or devices allocated but not installed (at most 100).
    pub allocated_not_installed: Vec<String>,
    /// Users (per-user metric) or devices installed but not allocated (at most 100).
    pub installed_not_allocated: Vec<String>,
}

impl From<ReconciliationItem> for ReconciliationItemView {
    fn from(i: ReconciliationItem) -> Self {
        ReconciliationItemView {
            software_model_id: i.software_model_id,
            license_metric: i.license_metric.as_str(),
            rights_owned: i.rights_owned,
            rights_from_downgrades: i.rights_from_downgrades,
            rights_needed: i.rights_needed,
            covered_without_count: i.covered_without_count,
            status: i.status.as_str(),
            shortfall: i.shortfall,
            true_up_cost: i.true_up_cost,
            unused_rights: i.unused_rights,
            potential_savings: i.potential_savings,
            allocated_not_installed: i.allocated_not_installed,
            installed_not_allocated: i.installed_not_allocated,
        }
    }
}

impl From<&ReconciliationItem> for ReconciliationItemView {
    fn from(i: &ReconciliationItem) -> Self {
        ReconciliationItemView::from(i.clone())
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReconciliationView {
    pub id: String,
    /// The one model reconciled; null for all.
    pub software_model_id: Option<String>,
    pub run_at: DateTime<Utc>,
    pub items: Vec<ReconciliationItemView>,
}

/// Moves the rows' names rather than copying them (the run just made).
impl From<Reconciliation> for ReconciliationView {
    fn from(r: Reconciliation) -> Self {
        ReconciliationView {
            id: r.id,
            software_model_id: r.software_model_id,
            run_at: r.run_at,
            items: r.items.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<&Reconciliation> for ReconciliationView {
    fn from(r: &Reconciliation) -> Self {
        ReconciliationView {
            id: r.id.clone(),
            software_model_id: r.software_model_id.clone(),
            run_at: r.run_at,
            items: r.items.iter().map(Into::into).collect(),
        }
    }
}
