//! The wire shape of contracts, contract lines, templates and jobs.

use allot_core::contracts::effective_contract_status;
use allot_core::entitlement::AlertThreshold;
use allot_core::templates::{Duration, TemplateTerms};
use allot_core::Quantity;
use allot_store::contracts::{
    Contract, ContractActed, ContractLine, EntitlementTemplate, Job, JobStatus,
};
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::contracts::inputs::DurationInput;
use crate::views::{ChannelTermView, EntitlementView};

#[derive(Debug, Serialize, ToSchema)]
pub struct ContractView {
    pub id: String,
    pub account_id: String,
    pub number: String,
    pub name: Option<String>,
    pub start_date: NaiveDate,
    pub end_date: NaiveDate,
    pub auto_renew: bool,
    /// draft, active, suspended, expired or cancelled (an active contract
    /// past its end date reads expired).
    pub status: String,
    /// The contract this one renews.
    pub predecessor_id: Option<String>,
    /// Its renewal.
    pub renewed_to: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl ContractView {
    pub fn new(c: &Contract, today: NaiveDate) -> Self {
        ContractView {
            id: c.id.clone(),
            account_id: c.account_id.clone(),
            number: c.number.clone(),
            name: c.name.clone(),
            start_date: c.start_date,
            end_date: c.end_date,
            auto_renew: c.auto_renew,
            status: effective_contract_status(c.status, c.end_date, today)
                .as_str()
                .into(),
            predecessor_id: c.predecessor_id.clone(),
            renewed_to: c.renewed_to.clone(),
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ContractLineView {
    pub id: String,
    pub contract_id: String,
    pub product_id: Option<String>,
    #[schema(value_type = Option<f64>)]
    pub quantity: Option<Quantity>,
    pub template_id: Option<String>,
    pub start_date: NaiveDate,
    pub end_date: NaiveDate,
    pub created_at: DateTime<Utc>,
}

impl From<&ContractLine> for ContractLineView {
    fn from(l: &ContractLine) -> Self {
        ContractLineView {
            id: l.id.clone(),
            contract_id: l.contract_id.clone(),
            product_id: l.product_id.clone(),
            quantity: l.quantity,
            template_id: l.template_id.clone(),
            start_date: l.start_date,
            end_date: l.end_date,
            created_at: l.created_at,
        }
    }
}

/// A contract after an action: the contract (for `renew`, the new one),
/// and the entitlements the action moved (for `renew`, the new drafts).
#[derive(Debug, Serialize, ToSchema)]
pub struct ContractActionView {
    pub contract: ContractView,
    pub entitlements: Vec<EntitlementView>,
    /// For `renew`: the new contract's lines.
    pub lines: Vec<ContractLineView>,
    /// For `renew`: the contract renewed.
    pub renewed_from: Option<ContractView>,
}

impl ContractActionView {
    pub fn new(a: &ContractActed, today: NaiveDate) -> Self {
        ContractActionView {
            contract: ContractView::new(&a.contract, today),
            entitlements: a
                .entitlements
                .iter()
                .map(|e| EntitlementView::new(e, today))
                .collect(),
            lines: a.lines.iter().map(ContractLineView::from).collect(),
            renewed_from: a.renewed_from.as_ref().map(|c| ContractView::new(c, today)),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TemplateView {
    pub id: String,
    pub name: String,
    pub unit: String,
    #[schema(value_type = Option<f64>)]
    pub total: Option<Quantity>,
    pub unlimited: bool,
    pub period: String,
    #[schema(value_type = f64)]
    pub rollover: Quantity,
    pub restrict: bool,
    pub decrement_on: String,
    pub channels: Vec<ChannelTermView>,
    pub product_ids: Vec<String>,
    #[schema(value_type = Vec<serde_json::Value>)]
    pub alert_thresholds: Vec<AlertThreshold>,
    #[schema(value_type = Option<f64>)]
    pub rounding: Option<Quantity>,
    pub sla: Option<String>,
    pub duration: DurationInput,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<&EntitlementTemplate> for TemplateView {
    fn from(t: &EntitlementTemplate) -> Self {
        let TemplateTerms {
            name,
            unit,
            total,
            period,
            rollover,
            restrict,
            decrement_on,
            channels,
            product_ids,
            alert_thresholds,
            rounding,
            sla,
            duration,
        } = &t.terms;
        let duration = match *duration {
            Duration::Months(m) => DurationInput {
                months: Some(m),
                days: None,
            },
            Duration::Days(d) => DurationInput {
                months: None,
                days: Some(d),
            },
        };
        TemplateView {
            id: t.id.clone(),
            name: name.clone(),
            unit: unit.as_str().into(),
            total: *total,
            unlimited: total.is_none(),
            period: period.as_str().into(),
            rollover: *rollover,
            restrict: *restrict,
            decrement_on: decrement_on.as_str().into(),
            channels: channels.iter().map(ChannelTermView::from).collect(),
            product_ids: product_ids.clone(),
            alert_thresholds: alert_thresholds.clone(),
            rounding: *rounding,
            sla: sla.clone(),
            duration,
            created_at: t.created_at,
            updated_at: t.updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InstantiatedView {
    /// One per account, in the order asked.
    pub items: Vec<EntitlementView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct JobView {
    pub id: String,
    /// e.g. `template.instantiate`.
    pub kind: String,
    /// running, succeeded or failed.
    pub status: String,
    /// Units of work in all (accounts, for an instantiation).
    pub total: u64,
    /// Units of work done so far.
    pub done: u64,
    /// When succeeded: what was made (`{"entitlement_ids": [...]}`).
    pub result: Option<serde_json::Value>,
    /// When failed: the error body a synchronous request would have answered.
    pub error: Option<serde_json::Value>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<&Job> for JobView {
    fn from(j: &Job) -> Self {
        JobView {
            id: j.id.clone(),
            kind: j.kind.clone(),
            status: match j.status {
                JobStatus::Running => "running",
                JobStatus::Succeeded => "succeeded",
                JobStatus::Failed => "failed",
            }
            .into(),
            total: j.total,
            done: j.done,
            result: j.result.clone(),
            error: j.error.clone(),
            created_at: j.created_at,
            updated_at: j.updated_at,
        }
    }
}
