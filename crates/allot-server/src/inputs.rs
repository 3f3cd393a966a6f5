//! What requests may carry: every body is parsed into one of these, with
//! unknown fields refused, then turned into domain values (`parse` at the edge).

use allot_core::entitlement::{AlertThreshold, ChannelTerm, DecrementOn, Period, Terms, Unit};
use allot_core::invalid::Checks;
use allot_core::Quantity;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::ApiError;

pub const MAX_TEXT: usize = 200;

/// Checks a free-text field's length and that it is not blank.
pub fn text(field: &str, value: &str, max: usize) -> Result<String, ApiError> {
    let v = value.trim();
    if v.is_empty() {
        return Err(ApiError::field(field, "must not be empty"));
    }
    if v.chars().count() > max {
        return Err(ApiError::field(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    Ok(v.to_string())
}

pub fn optional_text(
    field: &str,
    value: &Option<String>,
    max: usize,
) -> Result<Option<String>, ApiError> {
    value.as_deref().map(|v| text(field, v, max)).transpose()
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAccount {
    pub name: String,
    pub parent_id: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateContact {
    pub account_id: String,
    pub name: String,
    pub email: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProduct {
    pub name: String,
    pub sku: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelInput {
    pub channel: String,
    #[schema(value_type = f64)]
    pub total: Quantity,
}

/// An entitlement's terms as a client writes them (create, and the result
/// of applying a PATCH to the current terms).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EntitlementInput {
    pub account_id: String,
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub owner: Option<String>,
    #[schema(value_type = String, example = "hours")]
    pub unit: Unit,
    /// The cap; null or absent with `unlimited: true`.
    #[serde(default)]
    #[schema(value_type = Option<f64>)]
    pub total: Option<Quantity>,
    #[serde(default)]
    pub unlimited: bool,
    #[serde(default = "yes")]
    pub restrict: bool,
    #[serde(default)]
    #[schema(value_type = String, example = "creation")]
    pub decrement_on: DecrementOn,
    pub start_date: NaiveDate,
    pub end_date: NaiveDate,
    #[serde(default)]
    #[schema(value_type = String, example = "none")]
    pub period: Period,
    #[serde(default)]
    #[schema(value_type = f64)]
    pub rollover: Quantity,
    #[serde(default)]
    pub channels: Vec<ChannelInput>,
    #[serde(default)]
    pub product_ids: Vec<String>,
    #[serde(default)]
    pub contact_ids: Vec<String>,
    #[serde(default)]
    pub is_default: bool,
    #[serde(default)]
    pub pooled: bool,
    /// Percent-used numbers (e.g. 80) or `{"remaining": 2}`.
    #[serde(default)]
    #[schema(value_type = Vec<serde_json::Value>)]
    pub alert_thresholds: Vec<AlertThreshold>,
    /// Hours only: each use rounds up to this increment.
    #[serde(default)]
    #[schema(value_type = Option<f64>)]
    pub rounding: Option<Quantity>,
    #[serde(default)]
    pub auto_renew: bool,
    #[serde(default)]
    pub contract_id: Option<String>,
    #[serde(default)]
    pub sla: Option<String>,
}

fn yes() -> bool {
    true
}

impl EntitlementInput {
    pub fn into_terms(self) -> Result<Terms, ApiError> {
        let mut checks = Checks::new();
        match (self.unlimited, self.total) {
            (true, Some(_)) => checks.push("total", "must be null when unlimited is true"),
            (false, None) => checks.push("total", "is required unless unlimited is true"),
            _ => {}
        }
        checks.finish()?;
        let terms = Terms {
            account_id: self.account_id,
            name: self.name.trim().to_string(),
            description: self.description,
            owner: self.owner,
            unit: self.unit,
            total: self.total,
            period: self.period,
            rollover: self.rollover,
            restrict: self.restrict,
            decrement_on: self.decrement_on,
            start_date: self.start_date,
            end_date: self.end_date,
            channels: self
                .channels
                .into_iter()
                .map(|c| ChannelTerm {
                    channel: c.channel,
                    total: c.total,
                })
                .collect(),
            product_ids: self.product_ids,
            contact_ids: self.contact_ids,
            is_default: self.is_default,
            pooled: self.pooled,
            alert_thresholds: self.alert_thresholds,
            rounding: self.rounding,
            auto_renew: self.auto_renew,
            contract_id: self.contract_id,
            sla: self.sla,
        };
        allot_core::terms::validate_terms(&terms)?;
        Ok(terms)
    }

    pub fn from_terms(t: &Terms) -> Self {
        EntitlementInput {
            account_id: t.account_id.clone(),
            name: t.name.clone(),
            description: t.description.clone(),
            owner: t.owner.clone(),
            unit: t.unit,
            total: t.total,
            unlimited: t.total.is_none(),
            restrict: t.restrict,
            decrement_on: t.decrement_on,
            start_date: t.start_date,
            end_date: t.end_date,
            period: t.period,
            rollover: t.rollover,
            channels: t
                .channels
                .iter()
                .map(|c| ChannelInput {
                    channel: c.channel.clone(),
                    total: c.total,
                })
                .collect(),
            product_ids: t.product_ids.clone(),
            contact_ids: t.contact_ids.clone(),
            is_default: t.is_default,
            pooled: t.pooled,
            alert_thresholds: t.alert_thresholds.clone(),
            rounding: t.rounding,
            auto_renew: t.auto_renew,
            contract_id: t.contract_id.clone(),
            sla: t.sla.clone(),
        }
    }
}

/// What a use may be recorded as.
#[derive(Debug, Clone, Copy, Default, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UsageKind {
    #[default]
    Usage,
    Visit,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordUsage {
    /// Positive; whole for cases and visits; hours up to 3 decimals.
    #[schema(value_type = f64, example = 1.5)]
    pub quantity: Quantity,
    pub channel: Option<String>,
    /// e.g. a work order number.
    pub reference: Option<String>,
    #[serde(default)]
    pub kind: UsageKind,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PostAdjustment {
    /// Signed: positive adds usage, negative gives it back.
    #[schema(value_type = f64, example = -2)]
    pub quantity: Quantity,
    /// Why: required, kept on the ledger entry.
    pub reason: String,
    pub channel: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateReservation {
    #[schema(value_type = f64)]
    pub quantity: Quantity,
    /// How long the hold lasts before it is released by itself.
    pub timeout_seconds: u32,
    pub channel: Option<String>,
    pub reference: Option<String>,
}

/// The body of an action that takes no input (resolve, cancel, reactivate,
/// release): absent, or an object without fields.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoFields {}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommitReservation {
    /// The amount actually used; the held amount when absent.
    #[schema(value_type = Option<f64>)]
    pub quantity: Option<Quantity>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKey {
    /// admin, manager, agent, customer or integration.
    pub role: String,
    /// Required for customer keys: the account they may see.
    pub account_id: Option<String>,
    pub name: Option<String>,
}

pub fn short_text(field: &str, value: &Option<String>) -> Result<Option<String>, ApiError> {
    optional_text(field, value, MAX_TEXT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenCase {
    pub account_id: String,
    pub title: String,
    pub contact_id: Option<String>,
    pub product_id: Option<String>,
    pub channel: Option<String>,
    /// When absent, the account's default entitlement if it covers the case, else the best match.
    pub entitlement_id: Option<String>,
    #[serde(default)]
    pub do_not_decrement: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchCase {
    /// Moves the case (and what it used) to another entitlement; null takes it off any.
    pub entitlement_id: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LogTime {
    /// Whole minutes (converted to hours, rounded up to the thousandth); or give `hours`.
    pub minutes: Option<u32>,
    #[schema(value_type = Option<f64>)]
    pub hours: Option<Quantity>,
    pub note: Option<String>,
}

impl LogTime {
    pub fn hours(&self) -> Result<Quantity, ApiError> {
        match (self.minutes, self.hours) {
            (Some(_), Some(_)) => Err(ApiError::field(
                "minutes",
                "give minutes or hours, not both",
            )),
            (None, None) => Err(ApiError::field("minutes", "minutes or hours is required")),
            (Some(m), None) if m == 0 || m > 24 * 60 => {
                Err(ApiError::field("minutes", "must be from 1 to 1440"))
            }
            // 1 minute is 0.01666… h: round up to the thousandth so no time is lost.
            (Some(m), None) => Ok(Quantity::from_milli((m as i64 * 1000 + 59) / 60)),
            (None, Some(h)) if h.milli() <= 0 || h > Quantity::whole(24) => Err(ApiError::field(
                "hours",
                "must be greater than 0 and at most 24",
            )),
            (None, Some(h)) => Ok(h),
        }
    }
}
