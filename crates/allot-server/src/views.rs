//! What responses look like: the wire shape of every object, documented
//! in the OpenAPI document from these very types.

use allot_core::balance::Balance;
use allot_core::entitlement::{AlertThreshold, ChannelTerm, Status};
use allot_core::lifecycle::effective_status;
use allot_store::model::{
    Account, ApiKey, Contact, EntitlementRecord, Event, LedgerEntry, Product, Transition,
};
use allot_store::plan::Reservation;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
pub struct AccountView {
    pub id: String,
    pub name: String,
    pub parent_id: Option<String>,
    /// The account manager, e-mailed about the account's alerts.
    pub manager_name: Option<String>,
    pub manager_email: Option<String>,
    pub created_at: DateTime<Utc>,
    /// The account's key in another system (unique when set).
    pub external_id: Option<String>,
}

impl From<Account> for AccountView {
    fn from(a: Account) -> Self {
        AccountView {
            id: a.id,
            name: a.name,
            parent_id: a.parent_id,
            manager_name: a.manager_name,
            manager_email: a.manager_email,
            created_at: a.created_at,
            external_id: a.external_id,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ContactView {
    pub id: String,
    pub account_id: String,
    pub name: String,
    pub email: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl From<Contact> for ContactView {
    fn from(c: Contact) -> Self {
        ContactView {
            id: c.id,
            account_id: c.account_id,
            name: c.name,
            email: c.email,
            created_at: c.created_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProductView {
    pub id: String,
    pub name: String,
    pub sku: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl From<Product> for ProductView {
    fn from(p: Product) -> Self {
        ProductView {
            id: p.id,
            name: p.name,
            sku: p.sku,
            created_at: p.created_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ChannelTermView {
    pub channel: String,
    #[schema(value_type = f64)]
    pub total: allot_core::Quantity,
}

impl From<&ChannelTerm> for ChannelTermView {
    fn from(c: &ChannelTerm) -> ChannelTermView {
        ChannelTermView {
            channel: c.channel.clone(),
            total: c.total,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EntitlementView {
    pub id: String,
    pub account_id: String,
    pub name: String,
    pub description: Option<String>,
    pub owner: Option<String>,
    pub owner_email: Option<String>,
    /// cases, hours, visits or units.
    pub unit: String,
    /// The cap per term or period; null when unlimited.
    #[schema(value_type = Option<f64>)]
    pub total: Option<allot_core::Quantity>,
    pub unlimited: bool,
    /// none, month, quarter or year.
    pub period: String,
    #[schema(value_type = f64)]
    pub rollover: allot_core::Quantity,
    pub restrict: bool,
    /// creation or resolution.
    pub decrement_on: String,
    pub start_date: NaiveDate,
    pub end_date: NaiveDate,
    /// draft, waiting, active, expired, cancelled or suspended (by its contract): as the dates imply today.
    pub status: String,
    pub channels: Vec<ChannelTermView>,
    pub product_ids: Vec<String>,
    pub contact_ids: Vec<String>,
    pub is_default: bool,
    pub pooled: bool,
    /// Percentages used (numbers) or `{"remaining": n}`.
    #[schema(value_type = Vec<serde_json::Value>)]
    pub alert_thresholds: Vec<AlertThreshold>,
    #[schema(value_type = Option<f64>)]
    pub rounding: Option<allot_core::Quantity>,
    pub auto_renew: bool,
    pub contract_id: Option<String>,
    pub sla: Option<String>,
    pub predecessor_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The entitlement this one renews (the same as `predecessor_id`).
    pub renewed_from: Option<String>,
    /// The latest renewal of this one, automatic (`auto_renew`) or not.
    pub renewed_to: Option<String>,
    /// The line of `contract_id` it delivers.
    pub contract_line_id: Option<String>,
    /// The template it was made from; later edits of the template do not change it.
    pub template_id: Option<String>,
}

pub fn status_today(record: &EntitlementRecord, today: NaiveDate) -> Status {
    let e = &record.entitlement;
    effective_status(e.status, e.terms.start_date, e.terms.end_date, today)
}

impl EntitlementView {
    pub fn new(record: &EntitlementRecord, today: NaiveDate) -> Self {
        let e = &record.entitlement;
        let t = &e.terms;
        EntitlementView {
            id: e.id.clone(),
            account_id: t.account_id.clone(),
            name: t.name.clone(),
            description: t.description.clone(),
            owner: t.owner.clone(),
            owner_email: t.owner_email.clone(),
            unit: t.unit.as_str().into(),
            total: t.total,
            unlimited: t.total.is_none(),
            period: t.period.as_str().into(),
            rollover: t.rollover,
            restrict: t.restrict,
            decrement_on: t.decrement_on.as_str().into(),
            start_date: t.start_date,
            end_date: t.end_date,
            status: status_today(record, today).as_str().into(),
            channels: t.channels.iter().map(ChannelTermView::from).collect(),
            product_ids: t.product_ids.clone(),
            contact_ids: t.contact_ids.clone(),
            is_default: t.is_default,
            pooled: t.pooled,
            alert_thresholds: t.alert_thresholds.clone(),
            rounding: t.rounding,
            auto_renew: t.auto_renew,
            contract_id: t.contract_id.clone(),
            sla: t.sla.clone(),
            predecessor_id: e.predecessor_id.clone(),
            created_at: record.created_at,
            updated_at: record.updated_at,
            renewed_from: e.predecessor_id.clone(),
            renewed_to: record.renewed_to.clone(),
            contract_line_id: t.contract_line_id.clone(),
            template_id: t.template_id.clone(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WindowView {
    pub index: i64,
    pub start: NaiveDate,
    pub end: NaiveDate,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ChannelBalanceView {
    pub channel: String,
    #[schema(value_type = f64)]
    pub total: allot_core::Quantity,
    #[schema(value_type = f64)]
    pub used: allot_core::Quantity,
    #[schema(value_type = f64)]
    pub held: allot_core::Quantity,
    #[schema(value_type = f64)]
    pub remaining: allot_core::Quantity,
}

/// The live balance in the current period.
#[derive(Debug, Serialize, ToSchema)]
pub struct BalanceView {
    pub entitlement_id: String,
    pub unit: String,
    pub unlimited: bool,
    /// The period's allotment; null when unlimited.
    #[schema(value_type = Option<f64>)]
    pub total: Option<allot_core::Quantity>,
    /// Unused allotment rolled over from the previous period.
    #[schema(value_type = f64)]
    pub carried_over: allot_core::Quantity,
    #[schema(value_type = f64)]
    pub used: allot_core::Quantity,
    /// Held by open reservations.
    #[schema(value_type = f64)]
    pub held: allot_core::Quantity,
    /// total + carried_over − used − held; negative in overage; null when unlimited.
    #[schema(value_type = Option<f64>)]
    pub remaining: Option<allot_core::Quantity>,
    #[schema(value_type = f64)]
    pub overage: allot_core::Quantity,
    pub period: WindowView,
    pub channels: Vec<ChannelBalanceView>,
}

impl From<Balance> for BalanceView {
    fn from(b: Balance) -> Self {
        BalanceView {
            entitlement_id: b.entitlement_id,
            unit: b.unit.as_str().into(),
            unlimited: b.unlimited,
            total: b.total,
            carried_over: b.carried_over,
            used: b.used,
            held: b.held,
            remaining: b.remaining,
            overage: b.overage,
            period: WindowView {
                index: b.period.index,
                start: b.period.start,
                end: b.period.end,
            },
            channels: b
                .channels
                .into_iter()
                .map(|c| ChannelBalanceView {
                    channel: c.channel,
                    total: c.total,
                    used: c.used,
                    held: c.held,
                    remaining: c.remaining,
                })
                .collect(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LedgerEntryView {
    pub id: String,
    pub entitlement_id: String,
    pub period_index: i64,
    pub channel: Option<String>,
    /// Signed: negative entries give usage back.
    #[schema(value_type = f64)]
    pub quantity: allot_core::Quantity,
    pub reason: String,
    pub reference: Option<String>,
    /// The API key that caused it.
    pub actor: String,
    pub created_at: DateTime<Utc>,
}

impl From<LedgerEntry> for LedgerEntryView {
    fn from(e: LedgerEntry) -> Self {
        LedgerEntryView {
            id: e.id,
            entitlement_id: e.entitlement_id,
            period_index: e.period_index,
            channel: e.channel,
            quantity: e.quantity,
            reason: e.reason.as_str().into(),
            reference: e.reference,
            actor: e.actor,
            created_at: e.created_at,
        }
    }
}

/// The answer to a recorded use or adjustment.
#[derive(Debug, Serialize, ToSchema)]
pub struct UsageRecorded {
    pub entry: Option<LedgerEntryView>,
    pub balance: BalanceView,
    /// Present (non-empty) when the entitlement went into overage.
    pub warnings: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReservationView {
    pub id: String,
    pub entitlement_id: String,
    #[schema(value_type = f64)]
    pub quantity: allot_core::Quantity,
    pub channel: Option<String>,
    pub reference: Option<String>,
    /// held, committed, released or expired.
    pub status: String,
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub settled_at: Option<DateTime<Utc>>,
    #[schema(value_type = Option<f64>)]
    pub committed_quantity: Option<allot_core::Quantity>,
}

impl From<Reservation> for ReservationView {
    fn from(r: Reservation) -> Self {
        ReservationView {
            id: r.id,
            entitlement_id: r.entitlement_id,
            quantity: r.quantity,
            channel: r.channel,
            reference: r.reference,
            status: r.status.as_str().into(),
            expires_at: r.expires_at,
            created_at: r.created_at,
            settled_at: r.settled_at,
            committed_quantity: r.committed_quantity,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReservationAnswer {
    pub reservation: ReservationView,
    pub balance: BalanceView,
    pub entry: Option<LedgerEntryView>,
    pub warnings: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventView {
    pub id: String,
    pub kind: String,
    pub entitlement_id: Option<String>,
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

impl From<Event> for EventView {
    fn from(e: Event) -> Self {
        EventView {
            id: e.id,
            kind: e.kind,
            entitlement_id: e.entitlement_id,
            data: e.data,
            created_at: e.created_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TransitionView {
    pub from_status: String,
    pub to_status: String,
    pub action: String,
    pub actor: String,
    pub at: DateTime<Utc>,
}

impl From<Transition> for TransitionView {
    fn from(t: Transition) -> Self {
        TransitionView {
            from_status: t.from_status.as_str().into(),
            to_status: t.to_status.as_str().into(),
            action: t.action,
            actor: t.actor,
            at: t.at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyView {
    pub id: String,
    pub name: Option<String>,
    pub role: String,
    pub account_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<ApiKey> for ApiKeyView {
    fn from(k: ApiKey) -> Self {
        ApiKeyView {
            id: k.id,
            name: k.name,
            role: k.role.as_str().into(),
            account_id: k.account_id,
            created_at: k.created_at,
            revoked_at: k.revoked_at,
        }
    }
}

/// A new key: the secret is shown here once and never again.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedApiKey {
    #[serde(flatten)]
    pub key: ApiKeyView,
    pub secret: String,
}

/// One page of a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct Listing<T: ToSchema> {
    pub items: Vec<T>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EligibleEntitlement {
    pub entitlement: EntitlementView,
    pub balance: BalanceView,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Eligibility {
    pub account_id: String,
    /// Best match first: the account's default, then the most specific, then the one ending soonest.
    pub items: Vec<EligibleEntitlement>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TimeEntryView {
    pub id: String,
    /// Hours as logged.
    #[schema(value_type = f64)]
    pub hours: allot_core::Quantity,
    /// Hours as counted on the entitlement (rounded up to its increment).
    #[schema(value_type = f64)]
    pub counted_hours: allot_core::Quantity,
    /// Whether the counted hours are used on the entitlement now.
    pub charged: bool,
    pub logged_by: Option<String>,
    pub logged_at: Option<DateTime<Utc>>,
    pub note: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CaseView {
    pub id: String,
    pub account_id: String,
    pub contact_id: Option<String>,
    pub product_id: Option<String>,
    pub channel: Option<String>,
    /// The entitlement applied to the case; null when none covers it.
    pub entitlement_id: Option<String>,
    pub title: String,
    /// open, resolved or cancelled.
    pub status: String,
    pub do_not_decrement: bool,
    pub time_entries: Vec<TimeEntryView>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The applied entitlement's balance after the change.
    pub entitlement_balance: Option<BalanceView>,
    /// Present when the change took an entitlement into overage, or none covers the case.
    pub warnings: Vec<String>,
}

impl CaseView {
    pub fn new(
        record: allot_store::plan::CaseRecord,
        balance: Option<BalanceView>,
        warnings: Vec<String>,
    ) -> Self {
        let notes = record.time_notes;
        let s = record.state;
        CaseView {
            id: s.id,
            account_id: record.account_id,
            contact_id: record.contact_id,
            product_id: record.product_id,
            channel: s.channel,
            entitlement_id: s.entitlement_id,
            title: record.title,
            status: s.status.as_str().into(),
            do_not_decrement: s.do_not_decrement,
            time_entries: s
                .time_entries
                .into_iter()
                .map(|e| {
                    let note = notes.iter().find(|n| n.entry_id == e.id);
                    TimeEntryView {
                        hours: e.logged,
                        counted_hours: e.hours,
                        charged: e.charged,
                        logged_by: note.map(|n| n.actor.clone()),
                        logged_at: note.map(|n| n.at),
                        note: note.and_then(|n| n.note.clone()),
                        id: e.id,
                    }
                })
                .collect(),
            created_at: record.created_at,
            updated_at: record.updated_at,
            entitlement_balance: balance,
            warnings,
        }
    }
}
