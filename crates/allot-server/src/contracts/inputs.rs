//! What contract, template and instantiation requests may carry: parsed
//! into these (unknown fields refused), then into domain values, every
//! failure naming its field.

use allot_core::entitlement::{AlertThreshold, ChannelTerm, DecrementOn, Period, Unit};
use allot_core::templates::{validate_template, Duration, TemplateTerms};
use allot_core::Quantity;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::inputs::{schemas, short_text, text, ChannelInput, MAX_TEXT};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContractInput {
    /// An existing account.
    #[schema(schema_with = schemas::id)]
    pub account_id: String,
    /// Unique across contracts.
    #[schema(schema_with = schemas::text)]
    pub number: String,
    #[serde(default)]
    #[schema(schema_with = schemas::optional_text)]
    pub name: Option<String>,
    #[schema(schema_with = schemas::date)]
    pub start_date: NaiveDate,
    /// Not before `start_date`.
    #[schema(schema_with = schemas::date)]
    pub end_date: NaiveDate,
    /// Renewed (and the renewal activated) when it expires.
    #[serde(default)]
    pub auto_renew: bool,
}

/// A contract's fields, checked.
pub struct ContractFields {
    pub account_id: String,
    pub number: String,
    pub name: Option<String>,
    pub start_date: NaiveDate,
    pub end_date: NaiveDate,
    pub auto_renew: bool,
}

impl ContractInput {
    pub fn checked(self) -> Result<ContractFields, ApiError> {
        let number = text("number", &self.number, MAX_TEXT)?;
        let name = short_text("name", &self.name)?;
        allot_core::contracts::check_contract_dates(self.start_date, self.end_date)?;
        Ok(ContractFields {
            account_id: self.account_id,
            number,
            name,
            start_date: self.start_date,
            end_date: self.end_date,
            auto_renew: self.auto_renew,
        })
    }
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContractLineInput {
    /// An existing product.
    #[serde(default)]
    #[schema(schema_with = schemas::optional_text)]
    pub product_id: Option<String>,
    #[serde(default)]
    #[schema(schema_with = schemas::optional_non_negative_quantity)]
    pub quantity: Option<Quantity>,
    /// An existing entitlement template.
    #[serde(default)]
    #[schema(schema_with = schemas::optional_text)]
    pub template_id: Option<String>,
    /// Inside the contract's dates; the contract's start when absent.
    #[serde(default)]
    #[schema(schema_with = schemas::date)]
    pub start_date: Option<NaiveDate>,
    /// Inside the contract's dates; the contract's end when absent.
    #[serde(default)]
    #[schema(schema_with = schemas::date)]
    pub end_date: Option<NaiveDate>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RenewContract {
    /// The renewal's number; the old number with the new start date
    /// (`CTR-1/2027-01-01`) when absent.
    #[serde(default)]
    #[schema(schema_with = schemas::optional_text)]
    pub number: Option<String>,
}

/// How long an instantiated entitlement runs: `{"months": 12}` or `{"days": 30}`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DurationInput {
    #[serde(default, deserialize_with = "crate::inputs::whole::optional_u32")]
    #[schema(minimum = 1, maximum = 1200)]
    pub months: Option<u32>,
    #[serde(default, deserialize_with = "crate::inputs::whole::optional_u32")]
    #[schema(minimum = 1, maximum = 36600)]
    pub days: Option<u32>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateInput {
    /// Unique across templates; the name of the entitlements it makes.
    #[schema(schema_with = schemas::text)]
    pub name: String,
    #[schema(value_type = schemas::UnitName, example = "cases")]
    pub unit: Unit,
    /// The cap; null or absent with `unlimited: true`.
    #[serde(default)]
    #[schema(schema_with = schemas::optional_non_negative_quantity)]
    pub total: Option<Quantity>,
    #[serde(default)]
    pub unlimited: bool,
    #[serde(default)]
    #[schema(value_type = schemas::PeriodName, example = "quarter")]
    pub period: Period,
    #[serde(default)]
    #[schema(schema_with = schemas::non_negative_quantity)]
    pub rollover: Quantity,
    pub restrict: bool,
    #[schema(value_type = schemas::DecrementOnName, example = "creation")]
    pub decrement_on: DecrementOn,
    #[serde(default)]
    #[schema(max_items = 32)]
    pub channels: Vec<ChannelInput>,
    /// Existing products.
    #[serde(default)]
    #[schema(max_items = 1000)]
    pub product_ids: Vec<String>,
    #[serde(default, deserialize_with = "crate::inputs::whole::thresholds")]
    #[schema(schema_with = schemas::alert_thresholds)]
    pub alert_thresholds: Vec<AlertThreshold>,
    #[serde(default)]
    #[schema(schema_with = schemas::rounding)]
    pub rounding: Option<Quantity>,
    #[serde(default)]
    #[schema(max_length = 4000)]
    pub sla: Option<String>,
    pub duration: DurationInput,
}

impl TemplateInput {
    /// The template's terms, held to the rules of the terms it makes
    /// (`templates::validate_template`, on `today` as the sample start).
    pub fn into_terms(self, today: NaiveDate) -> Result<TemplateTerms, ApiError> {
        let name = text("name", &self.name, MAX_TEXT)?;
        let total = match (self.unlimited, self.total) {
            (true, Some(_)) => {
                return Err(ApiError::field(
                    "total",
                    "must be null when unlimited is true",
                ))
            }
            (false, None) => {
                return Err(ApiError::field(
                    "total",
                    "is required unless unlimited is true",
                ))
            }
            (_, total) => total,
        };
        let duration = match (self.duration.months, self.duration.days) {
            (Some(m), None) => Duration::Months(m),
            (None, Some(d)) => Duration::Days(d),
            _ => {
                return Err(ApiError::field(
                    "duration",
                    "must be {\"months\": n} or {\"days\": n}",
                ))
            }
        };
        let terms = TemplateTerms {
            name,
            unit: self.unit,
            total,
            period: self.period,
            rollover: self.rollover,
            restrict: self.restrict,
            decrement_on: self.decrement_on,
            channels: self.channels.into_iter().map(ChannelTerm::from).collect(),
            product_ids: self.product_ids,
            alert_thresholds: self.alert_thresholds,
            rounding: self.rounding,
            sla: self.sla,
            duration,
        };
        validate_template(&terms, today)?;
        Ok(terms)
    }

    pub fn from_terms(t: &TemplateTerms) -> Self {
        let (months, days) = match t.duration {
            Duration::Months(m) => (Some(m), None),
            Duration::Days(d) => (None, Some(d)),
        };
        TemplateInput {
            name: t.name.clone(),
            unit: t.unit,
            total: t.total,
            unlimited: t.total.is_none(),
            period: t.period,
            rollover: t.rollover,
            restrict: t.restrict,
            decrement_on: t.decrement_on,
            channels: t.channels.iter().map(ChannelInput::from).collect(),
            product_ids: t.product_ids.clone(),
            alert_thresholds: t.alert_thresholds.clone(),
            rounding: t.rounding,
            sla: t.sla.clone(),
            duration: DurationInput { months, days },
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InstantiateInput {
    /// One entitlement per account, each account once; above 100 the
    /// answer is a job (202).
    #[schema(min_items = 1, max_items = 10000)]
    pub account_ids: Vec<String>,
    /// Today when absent.
    #[serde(default)]
    #[schema(schema_with = schemas::date)]
    pub start_date: Option<NaiveDate>,
    /// Activate each entitlement (by its dates) rather than leave a draft.
    #[serde(default)]
    pub activate: bool,
    /// A contract of the accounts; the terms must lie inside its dates.
    #[serde(default)]
    #[schema(schema_with = schemas::optional_text)]
    pub contract_id: Option<String>,
    /// A line of `contract_id`.
    #[serde(default)]
    #[schema(schema_with = schemas::optional_text)]
    pub contract_line_id: Option<String>,
}
