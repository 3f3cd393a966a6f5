//! What software requests may carry: parsed into these (unknown fields
//! refused), then into domain values, every failure naming its field.

use allot_core::software::reconcile::Installation;
use allot_core::software::terms::{purchased_rights, validate};
use allot_core::software::{
    AgreementType, LicenseMetric, LicenseType, SoftwareTerms, SubscriptionPeriod, MAX_RIGHTS,
};
use allot_core::Quantity;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::inputs::{short_text, text, MAX_TEXT};

/// Most installations one request records (`sequences::MAX_INSTALLATIONS`).
pub const MAX_INSTALLATIONS: usize = allot_store::software::sequences::MAX_INSTALLATIONS;
/// Most licence keys one request adds.
pub const MAX_KEYS_PER_REQUEST: usize = 1_000;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SoftwareModelInput {
    #[schema(schema_with = crate::inputs::schemas::text)]
    pub publisher: String,
    #[schema(schema_with = crate::inputs::schemas::text)]
    pub product: String,
    #[serde(default)]
    #[schema(schema_with = crate::inputs::schemas::optional_text)]
    pub version: Option<String>,
    #[serde(default)]
    #[schema(schema_with = crate::inputs::schemas::optional_text)]
    pub edition: Option<String>,
    #[serde(default)]
    #[schema(schema_with = crate::inputs::schemas::optional_text)]
    pub platform: Option<String>,
}

/// A model's fields, checked.
pub struct ModelFields {
    pub publisher: String,
    pub product: String,
    pub version: Option<String>,
    pub edition: Option<String>,
    pub platform: Option<String>,
}

impl SoftwareModelInput {
    pub fn checked(self) -> Result<ModelFields, ApiError> {
        Ok(ModelFields {
            publisher: text("publisher", &self.publisher, MAX_TEXT)?,
            product: text("product", &self.product, MAX_TEXT)?,
            version: short_text("version", &self.version)?,
            edition: short_text("edition", &self.edition)?,
            platform: short_text("platform", &self.platform)?,
        })
    }
}

/// A software entitlement's terms as a client writes them (create, and the
/// result of applying a PATCH to the current terms).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SoftwareEntitlementInput {
    /// An existing software model.
    #[schema(schema_with = crate::inputs::schemas::id)]
    pub software_model_id: String,
    /// An existing account, if the rights belong to one.
    #[serde(default)]
    pub account_id: Option<String>,
    #[serde(default)]
    #[schema(schema_with = crate::inputs::schemas::optional_text)]
    pub display_name: Option<String>,
    #[serde(default)]
    #[schema(schema_with = crate::inputs::schemas::optional_text)]
    pub publisher_part_number: Option<String>,
    #[schema(value_type = names::LicenseMetricName)]
    pub license_metric: LicenseMetric,
    #[schema(value_type = names::LicenseTypeName)]
    pub license_type: LicenseType,
    #[serde(default = "no_agreement")]
    #[schema(value_type = names::AgreementTypeName)]
    pub agreement_type: AgreementType,
    #[serde(default, deserialize_with = "whole::optional")]
    #[schema(minimum = 0, maximum = 1_000_000_000)]
    pub rights_per_pack: Option<i64>,
    #[serde(default, deserialize_with = "whole::optional")]
    #[schema(minimum = 0, maximum = 1_000_000_000)]
    pub number_of_packs: Option<i64>,
    /// `rights_per_pack × number_of_packs` when both are given (a different value is refused).
    #[serde(default, deserialize_with = "whole::optional")]
    #[schema(minimum = 0, maximum = 1_000_000_000)]
    pub purchased_rights: Option<i64>,
    /// At most `purchased_rights`; `purchased_rights` when absent.
    #[serde(default, deserialize_with = "whole::optional")]
    #[schema(minimum = 0, maximum = 1_000_000_000)]
    pub active_rights: Option<i64>,
    #[serde(default)]
    pub unlimited: bool,
    #[serde(default)]
    #[schema(schema_with = crate::inputs::schemas::optional_non_negative_quantity)]
    pub unit_cost: Option<Quantity>,
    /// ISO 4217, e.g. `USD`.
    #[serde(default)]
    #[schema(pattern = "^[A-Z]{3}$")]
    pub currency: Option<String>,
    #[serde(default = "entire_term")]
    #[schema(value_type = names::SubscriptionPeriodName)]
    pub subscription_period: SubscriptionPeriod,
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Date)]
    pub start_date: Option<NaiveDate>,
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Date)]
    pub end_date: Option<NaiveDate>,
    #[serde(default)]
    #[schema(schema_with = crate::inputs::schemas::optional_text)]
    pub contract_id: Option<String>,
    #[serde(default)]
    #[schema(schema_with = crate::inputs::schemas::optional_text)]
    pub asset_tag: Option<String>,
    #[serde(default)]
    #[schema(schema_with = crate::inputs::schemas::optional_text)]
    pub cost_center: Option<String>,
    #[serde(default)]
    #[schema(schema_with = crate::inputs::schemas::optional_text)]
    pub vendor: Option<String>,
    #[serde(default)]
    #[schema(schema_with = crate::inputs::schemas::optional_text)]
    pub po_number: Option<String>,
}

fn no_agreement() -> AgreementType {
    AgreementType::None
}

fn entire_term() -> SubscriptionPeriod {
    SubscriptionPeriod::EntireTerm
}

impl SoftwareEntitlementInput {
    pub fn into_terms(self) -> Result<SoftwareTerms, ApiError> {
        let purchased = purchased_rights(
            self.rights_per_pack,
            self.number_of_packs,
            self.purchased_rights,
        )?;
        if self
            .active_rights
            .is_some_and(|a| !(0..=MAX_RIGHTS).contains(&a))
        {
            return Err(ApiError::field(
                "active_rights",
                "must be from 0 to purchased_rights",
            ));
        }
        let terms = SoftwareTerms {
            software_model_id: self.software_model_id,
            account_id: self.account_id,
            display_name: short_text("display_name", &self.display_name)?,
            publisher_part_number: short_text(
                "publisher_part_number",
                &self.publisher_part_number,
            )?,
            license_metric: self.license_metric,
            license_type: self.license_type,
            agreement_type: self.agreement_type,
            rights_per_pack: self.rights_per_pack,
            number_of_packs: self.number_of_packs,
            purchased_rights: purchased,
            active_rights: self.active_rights.unwrap_or(purchased),
            unlimited: self.unlimited,
            unit_cost: self.unit_cost,
            currency: self.currency,
            subscription_period: self.subscription_period,
            start_date: self.start_date,
            end_date: self.end_date,
            contract_id: short_text("contract_id", &self.contract_id)?,
            asset_tag: short_text("asset_tag", &self.asset_tag)?,
            cost_center: short_text("cost_center", &self.cost_center)?,
            vendor: short_text("vendor", &self.vendor)?,
            po_number: short_text("po_number", &self.po_number)?,
        };
        validate(&terms)?;
        Ok(terms)
    }

    pub fn from_terms(t: &SoftwareTerms) -> Self {
        SoftwareEntitlementInput {
            software_model_id: t.software_model_id.clone(),
            account_id: t.account_id.clone(),
            display_name: t.display_name.clone(),
            publisher_part_number: t.publisher_part_number.clone(),
            license_metric: t.license_metric,
            license_type: t.license_type,
            agreement_type: t.agreement_type,
            rights_per_pack: t.rights_per_pack,
            number_of_packs: t.number_of_packs,
            purchased_rights: Some(t.purchased_rights),
            active_rights: Some(t.active_rights),
            unlimited: t.unlimited,
            unit_cost: t.unit_cost,
            currency: t.currency.clone(),
            subscription_period: t.subscription_period,
            start_date: t.start_date,
            end_date: t.end_date,
            contract_id: t.contract_id.clone(),
            asset_tag: t.asset_tag.clone(),
            cost_center: t.cost_center.clone(),
            vendor: t.vendor.clone(),
            po_number: t.po_number.clone(),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAllocation {
    /// Who the rights go to: a user, a device, or both (at least one).
    #[serde(default)]
    #[schema(schema_with = crate::inputs::schemas::optional_text)]
    pub user: Option<String>,
    #[serde(default)]
    #[schema(schema_with = crate::inputs::schemas::optional_text)]
    pub device: Option<String>,
    #[serde(deserialize_with = "whole::required")]
    #[schema(minimum = 1, maximum = 1_000_000_000)]
    pub quantity: i64,
    /// A free licence key of this entitlement.
    #[serde(default)]
    #[schema(schema_with = crate::inputs::schemas::optional_text)]
    pub license_key: Option<String>,
}

/// An allocation's fields, checked.
pub struct AllocationFields {
    pub user: Option<String>,
    pub device: Option<String>,
    pub quantity: i64,
    pub license_key: Option<String>,
}

impl CreateAllocation {
    pub fn checked(self) -> Result<AllocationFields, ApiError> {
        let user = short_text("user", &self.user)?;
        let device = short_text("device", &self.device)?;
        if user.is_none() && device.is_none() {
            return Err(ApiError::field("user", "give a user, a device, or both"));
        }
        if !(1..=MAX_RIGHTS).contains(&self.quantity) {
            return Err(ApiError::field(
                "quantity",
                format!("must be from 1 to {MAX_RIGHTS}"),
            ));
        }
        Ok(AllocationFields {
            user,
            device,
            quantity: self.quantity,
            license_key: short_text("license_key", &self.license_key)?,
        })
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddLicenseKeys {
    /// Each unique within the entitlement.
    #[schema(schema_with = key_list)]
    pub keys: Vec<String>,
}

/// 1 to 1000 keys, each free text.
fn key_list() -> utoipa::openapi::schema::Array {
    utoipa::openapi::schema::ArrayBuilder::new()
        .items(crate::inputs::schemas::text())
        .min_items(Some(1))
        .max_items(Some(MAX_KEYS_PER_REQUEST))
        .build()
}

impl AddLicenseKeys {
    pub fn checked(self) -> Result<Vec<String>, ApiError> {
        if self.keys.is_empty() || self.keys.len() > MAX_KEYS_PER_REQUEST {
            return Err(ApiError::field(
                "keys",
                format!("must hold 1 to {MAX_KEYS_PER_REQUEST} keys"),
            ));
        }
        self.keys
            .iter()
            .enumerate()
            .map(|(i, k)| text(&format!("keys[{i}]"), k, MAX_TEXT))
            .collect()
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddDowngradeRight {
    /// An existing, older software model the rights also cover.
    #[schema(schema_with = crate::inputs::schemas::id)]
    pub software_model_id: String,
    /// Lower first; after the last one when absent.
    #[serde(default, deserialize_with = "whole::optional")]
    #[schema(minimum = 0, maximum = 1_000_000_000)]
    pub order: Option<i64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Upgrade {
    /// The older entitlement the rights leave.
    #[schema(schema_with = crate::inputs::schemas::id)]
    pub from_entitlement_id: String,
    #[serde(deserialize_with = "whole::required")]
    #[schema(minimum = 1, maximum = 1_000_000_000)]
    pub rights: i64,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InstallationInput {
    #[schema(schema_with = crate::inputs::schemas::id)]
    pub software_model_id: String,
    #[schema(schema_with = crate::inputs::schemas::text)]
    pub device: String,
    #[serde(default)]
    #[schema(schema_with = crate::inputs::schemas::optional_text)]
    pub user: Option<String>,
    #[serde(default, deserialize_with = "whole::optional")]
    #[schema(minimum = 0, maximum = 1_000_000)]
    pub cores: Option<i64>,
    pub seen_at: DateTime<Utc>,
}

impl InstallationInput {
    pub fn checked(self, at: &str) -> Result<Installation, ApiError> {
        let field = |f: &str| format!("{at}{f}");
        if self.cores.is_some_and(|c| !(0..=1_000_000).contains(&c)) {
            return Err(ApiError::field(
                &field("cores"),
                "must be from 0 to 1000000",
            ));
        }
        Ok(Installation {
            software_model_id: self.software_model_id,
            device: text(&field("device"), &self.device, MAX_TEXT)?,
            user: short_text(&field("user"), &self.user)?,
            cores: self.cores,
            seen_at: self.seen_at,
        })
    }
}

/// Several installations at once.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InstallationBatch {
    #[schema(min_items = 1, max_items = 10000)]
    pub items: Vec<InstallationInput>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunReconciliation {
    /// Only this model; every model when absent.
    #[serde(default)]
    pub software_model_id: Option<String>,
}

/// Whole numbers as JSON Schema counts them: `6` and `6.0` alike.
mod whole {
    use serde::de::Error;
    use serde::{Deserialize, Deserializer};
    use serde_json::Number;

    fn to_i64<E: Error>(n: &Number) -> Result<i64, E> {
        n.as_i64()
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                    .map(|f| f as i64)
            })
            .ok_or_else(|| E::custom(format!("invalid value: {n}, expected a whole number")))
    }

    pub fn required<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        to_i64(&Number::deserialize(d)?)
    }

    pub fn optional<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
        Option::<Number>::deserialize(d)?
            .map(|n| to_i64(&n))
            .transpose()
    }
}

/// Closed sets of names as the document states them, built from the
/// domain's own lists.
pub mod names {
    use allot_core::software::{
        AgreementType, LicenseMetric, LicenseType, SoftwareState, SubscriptionPeriod,
    };

    use crate::inputs::schemas::names;

    names!(
        LicenseMetricName,
        "What one right counts.",
        LicenseMetric::ALL.iter().map(|v| v.as_str())
    );
    names!(
        LicenseTypeName,
        "How the rights were bought.",
        LicenseType::ALL.iter().map(|v| v.as_str())
    );
    names!(
        AgreementTypeName,
        "The agreement the rights come under; ea, ela and ula cover every installation.",
        AgreementType::ALL.iter().map(|v| v.as_str())
    );
    names!(
        SubscriptionPeriodName,
        "How often the rights are billed.",
        SubscriptionPeriod::ALL.iter().map(|v| v.as_str())
    );
    names!(
        SoftwareStateName,
        "A software entitlement's state.",
        SoftwareState::ALL.iter().map(|v| v.as_str())
    );
    names!(
        ComplianceName,
        "A reconciliation row's status.",
        ["compliant", "under_licensed", "over_licensed"]
    );
}
