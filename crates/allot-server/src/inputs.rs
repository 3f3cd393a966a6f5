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

/// "Not blank" as the document states it: at least one character that is
/// not white space (exactly the characters `str::trim` removes, Unicode
/// `White_Space`), written out so every regex engine reads it the same.
pub const NOT_BLANK: &str = "[^\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]";

/// Checks a free-text field's length (as sent, like the document's
/// `maxLength`) and that it is not blank; keeps it trimmed.
pub fn text(field: &str, value: &str, max: usize) -> Result<String, ApiError> {
    let v = value.trim();
    if v.is_empty() {
        return Err(ApiError::field(field, "must not be empty"));
    }
    if value.chars().count() > max {
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
    #[schema(schema_with = schemas::text)]
    pub name: String,
    pub parent_id: Option<String>,
    #[serde(default)]
    #[schema(schema_with = schemas::optional_text)]
    pub manager_name: Option<String>,
    #[serde(default)]
    #[schema(schema_with = crate::alerts::inputs::schemas::email)]
    pub manager_email: Option<String>,
    /// The account's key in another system, unique: what imports refer to it by.
    #[serde(default)]
    #[schema(schema_with = schemas::optional_text)]
    pub external_id: Option<String>,
}

/// The fields of an account a manager may change; absent fields stay,
/// `null` clears.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchAccount {
    #[serde(default, deserialize_with = "present")]
    #[schema(schema_with = schemas::optional_text)]
    pub manager_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(schema_with = crate::alerts::inputs::schemas::email)]
    pub manager_email: Option<Option<String>>,
}

/// A field that is present, `null` or not: `Some(None)` is an explicit `null`.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateContact {
    pub account_id: String,
    #[schema(schema_with = schemas::text)]
    pub name: String,
    /// Any text with an `@`.
    #[schema(schema_with = schemas::email)]
    pub email: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProduct {
    #[schema(schema_with = schemas::text)]
    pub name: String,
    #[schema(schema_with = schemas::optional_text)]
    pub sku: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelInput {
    /// Unique among the entitlement's channels.
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = "[^\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]"
    )]
    pub channel: String,
    /// Whole for cases and visits.
    #[schema(schema_with = schemas::non_negative_quantity)]
    pub total: Quantity,
}

impl From<ChannelInput> for ChannelTerm {
    fn from(c: ChannelInput) -> ChannelTerm {
        ChannelTerm {
            channel: c.channel,
            total: c.total,
        }
    }
}

impl From<&ChannelTerm> for ChannelInput {
    fn from(c: &ChannelTerm) -> ChannelInput {
        ChannelInput {
            channel: c.channel.clone(),
            total: c.total,
        }
    }
}

/// An entitlement's terms as a client writes them (create, and the result
/// of applying a PATCH to the current terms).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EntitlementInput {
    /// An existing account.
    #[schema(schema_with = schemas::id)]
    pub account_id: String,
    #[schema(schema_with = schemas::text)]
    pub name: String,
    #[serde(default)]
    #[schema(max_length = 4000)]
    pub description: Option<String>,
    #[serde(default)]
    #[schema(max_length = 4000)]
    pub owner: Option<String>,
    /// Mailed with the account manager about this entitlement's alerts.
    #[serde(default)]
    #[schema(schema_with = crate::alerts::inputs::schemas::email)]
    pub owner_email: Option<String>,
    #[schema(value_type = schemas::UnitName, example = "hours")]
    pub unit: Unit,
    /// The cap (whole for cases and visits); null or absent with `unlimited: true`.
    #[serde(default)]
    #[schema(schema_with = schemas::optional_non_negative_quantity)]
    pub total: Option<Quantity>,
    #[serde(default)]
    pub unlimited: bool,
    #[serde(default = "yes")]
    pub restrict: bool,
    #[serde(default)]
    #[schema(value_type = schemas::DecrementOnName, example = "creation")]
    pub decrement_on: DecrementOn,
    #[schema(schema_with = schemas::date)]
    pub start_date: NaiveDate,
    /// Not before `start_date`, at most 100 years after it.
    #[schema(schema_with = schemas::date)]
    pub end_date: NaiveDate,
    #[serde(default)]
    #[schema(value_type = schemas::PeriodName, example = "none")]
    pub period: Period,
    /// Carried into the next period; needs a period and a total.
    #[serde(default)]
    #[schema(schema_with = schemas::non_negative_quantity)]
    pub rollover: Quantity,
    #[serde(default)]
    #[schema(max_items = 32)]
    pub channels: Vec<ChannelInput>,
    /// Existing products.
    #[serde(default)]
    #[schema(max_items = 1000)]
    pub product_ids: Vec<String>,
    /// Existing contacts of the account.
    #[serde(default)]
    #[schema(max_items = 1000)]
    pub contact_ids: Vec<String>,
    #[serde(default)]
    pub is_default: bool,
    #[serde(default)]
    pub pooled: bool,
    /// Percent-used numbers (e.g. 80) or `{"remaining": 2}`.
    #[serde(default, deserialize_with = "whole::thresholds")]
    #[schema(schema_with = schemas::alert_thresholds)]
    pub alert_thresholds: Vec<AlertThreshold>,
    /// Hours only: each use rounds up to this increment (at most 24).
    #[serde(default)]
    #[schema(schema_with = schemas::rounding)]
    pub rounding: Option<Quantity>,
    #[serde(default)]
    pub auto_renew: bool,
    /// An existing contract of the same account; the dates must lie inside its own.
    #[serde(default)]
    pub contract_id: Option<String>,
    #[serde(default)]
    #[schema(max_length = 4000)]
    pub sla: Option<String>,
    /// A line of `contract_id`.
    #[serde(default)]
    pub contract_line_id: Option<String>,
}

fn yes() -> bool {
    true
}

impl EntitlementInput {
    pub fn into_terms(self) -> Result<Terms, ApiError> {
        let mut checks = Checks::new();
        // As sent, like the document's maxLength (the trimmed name is kept).
        if self.name.chars().count() > MAX_TEXT {
            checks.push("name", format!("must be at most {MAX_TEXT} characters"));
        }
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
            owner_email: self.owner_email,
            unit: self.unit,
            total: self.total,
            period: self.period,
            rollover: self.rollover,
            restrict: self.restrict,
            decrement_on: self.decrement_on,
            start_date: self.start_date,
            end_date: self.end_date,
            channels: self.channels.into_iter().map(ChannelTerm::from).collect(),
            product_ids: self.product_ids,
            contact_ids: self.contact_ids,
            is_default: self.is_default,
            pooled: self.pooled,
            alert_thresholds: self.alert_thresholds,
            rounding: self.rounding,
            auto_renew: self.auto_renew,
            contract_id: self.contract_id,
            sla: self.sla,
            contract_line_id: self.contract_line_id,
            template_id: None,
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
            owner_email: t.owner_email.clone(),
            unit: t.unit,
            total: t.total,
            unlimited: t.total.is_none(),
            restrict: t.restrict,
            decrement_on: t.decrement_on,
            start_date: t.start_date,
            end_date: t.end_date,
            period: t.period,
            rollover: t.rollover,
            channels: t.channels.iter().map(ChannelInput::from).collect(),
            product_ids: t.product_ids.clone(),
            contact_ids: t.contact_ids.clone(),
            is_default: t.is_default,
            pooled: t.pooled,
            alert_thresholds: t.alert_thresholds.clone(),
            rounding: t.rounding,
            auto_renew: t.auto_renew,
            contract_id: t.contract_id.clone(),
            sla: t.sla.clone(),
            contract_line_id: t.contract_line_id.clone(),
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
    #[schema(schema_with = schemas::positive_quantity)]
    pub quantity: Quantity,
    /// One of the entitlement's channels.
    #[schema(schema_with = schemas::optional_text)]
    pub channel: Option<String>,
    /// e.g. a work order number.
    #[schema(schema_with = schemas::optional_text)]
    pub reference: Option<String>,
    #[serde(default)]
    pub kind: UsageKind,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PostAdjustment {
    /// Signed, not zero: positive adds usage, negative gives it back (never below zero used).
    #[schema(schema_with = schemas::non_zero_quantity)]
    pub quantity: Quantity,
    /// Why: required, kept on the ledger entry.
    #[schema(schema_with = schemas::text)]
    pub reason: String,
    #[schema(schema_with = schemas::optional_text)]
    pub channel: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateReservation {
    /// Positive; whole for cases and visits.
    #[schema(schema_with = schemas::positive_quantity)]
    pub quantity: Quantity,
    /// How long the hold lasts before it is released by itself (at most a week).
    #[schema(minimum = 1, maximum = 604800)]
    #[serde(deserialize_with = "whole::u32")]
    pub timeout_seconds: u32,
    #[schema(schema_with = schemas::optional_text)]
    pub channel: Option<String>,
    #[schema(schema_with = schemas::optional_text)]
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
    /// The amount actually used (whole for cases and visits); the held amount when absent.
    #[schema(schema_with = schemas::optional_non_negative_quantity)]
    pub quantity: Option<Quantity>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKey {
    #[schema(value_type = schemas::RoleName)]
    pub role: String,
    /// Required for, and only for, customer keys: the account they may see.
    pub account_id: Option<String>,
    #[schema(schema_with = schemas::optional_text)]
    pub name: Option<String>,
}

pub fn short_text(field: &str, value: &Option<String>) -> Result<Option<String>, ApiError> {
    optional_text(field, value, MAX_TEXT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenCase {
    pub account_id: String,
    #[schema(schema_with = schemas::text)]
    pub title: String,
    pub contact_id: Option<String>,
    pub product_id: Option<String>,
    #[schema(schema_with = schemas::optional_text)]
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
    #[schema(required = true)]
    pub entitlement_id: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LogTime {
    /// Whole minutes, 1 to 1440 (converted to hours, rounded up to the
    /// thousandth); or give `hours`, not both.
    #[schema(minimum = 1, maximum = 1440)]
    #[serde(default, deserialize_with = "whole::optional_u32")]
    pub minutes: Option<u32>,
    /// More than 0, at most 24.
    #[schema(schema_with = schemas::log_hours)]
    pub hours: Option<Quantity>,
    #[schema(schema_with = schemas::optional_text)]
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

/// Whole numbers as JSON Schema counts them: `60` and `60.0` alike.
pub(crate) mod whole {
    use serde::de::Error;
    use serde::{Deserialize, Deserializer};
    use serde_json::Number;

    fn to_u32<E: Error>(n: &Number) -> Result<u32, E> {
        let whole = n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f <= f64::from(u32::MAX))
                .map(|f| f as u64)
        });
        whole.and_then(|w| u32::try_from(w).ok()).ok_or_else(|| {
            E::custom(format!(
                "invalid value: {n}, expected a whole number from 0 to {}",
                u32::MAX
            ))
        })
    }

    pub fn u32<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
        to_u32(&Number::deserialize(d)?)
    }

    pub fn optional_u32<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
        Option::<Number>::deserialize(d)?
            .map(|n| to_u32(&n))
            .transpose()
    }

    /// Alert thresholds: a percentage as a whole number (`80` or `80.0`),
    /// or `{"remaining": n}`.
    pub fn thresholds<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Vec<allot_core::entitlement::AlertThreshold>, D::Error> {
        use allot_core::entitlement::AlertThreshold;
        Vec::<serde_json::Value>::deserialize(d)?
            .into_iter()
            .enumerate()
            .map(|(i, value)| {
                match value {
                    serde_json::Value::Number(n) => to_u32(&n).map(AlertThreshold::PercentUsed),
                    other => serde_json::from_value(other).map_err(D::Error::custom),
                }
                .map_err(|e: D::Error| D::Error::custom(format!("item {i}: {e}")))
            })
            .collect()
    }
}

/// Closed sets of names as the document states them, each built from the
/// domain's own list so the document cannot drift from what is parsed.
pub mod schemas {
    use allot_core::cases::CaseStatus;
    use allot_core::entitlement::{DecrementOn, Period, Status, Unit};
    use allot_store::model::Role;
    use utoipa::openapi::schema::SchemaType;
    use utoipa::openapi::{Object, ObjectBuilder, OneOfBuilder, RefOr, Schema, Type};

    use super::{MAX_TEXT, NOT_BLANK};

    fn types(types: &[Type]) -> SchemaType {
        SchemaType::from_iter(types.iter().cloned())
    }

    /// Free text: not blank, at most `MAX_TEXT` characters (`inputs::text`).
    pub fn text() -> Object {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(1))
            .max_length(Some(MAX_TEXT))
            .pattern(Some(NOT_BLANK))
            .build()
    }

    /// An id of an object that must exist: not blank.
    pub fn id() -> Object {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(1))
            .pattern(Some(NOT_BLANK))
            .build()
    }

    /// Optional free text (`inputs::short_text`): null, or as `text`.
    pub fn optional_text() -> Object {
        ObjectBuilder::new()
            .schema_type(types(&[Type::String, Type::Null]))
            .min_length(Some(1))
            .max_length(Some(MAX_TEXT))
            .pattern(Some(NOT_BLANK))
            .build()
    }

    pub fn email() -> Object {
        ObjectBuilder::new()
            .schema_type(types(&[Type::String, Type::Null]))
            .max_length(Some(MAX_TEXT))
            .pattern(Some("@"))
            .description(Some("Any text with an `@`."))
            .build()
    }

    /// A quantity's text form without its sign: at most 10^12, at most 3
    /// decimal places (`Quantity::from_str`).
    const UNSIGNED: &str = "(?:[0-9]{1,12}(?:\\.[0-9]{1,3})?|1000000000000(?:\\.0{1,3})?)";
    const MAX_QUANTITY: f64 = 1e12;

    /// Which quantities a field takes.
    #[derive(Clone, Copy)]
    enum Sign {
        /// Greater than zero.
        Positive,
        /// Zero or more.
        NonNegative,
        /// Anything but zero.
        NonZero,
    }

    const QUANTITY_DOC: &str =
        "An exact decimal with at most 3 places: a JSON number (1.5) or decimal text (\"1.5\").";

    /// An exact decimal with at most 3 places, as a JSON number or as
    /// decimal text (`Quantity::from_json`).
    fn quantity(sign: Sign, nullable: bool) -> RefOr<Schema> {
        let unsigned = UNSIGNED;
        let number = |min: Option<(f64, bool)>, max: (f64, bool)| {
            let mut b = ObjectBuilder::new()
                .schema_type(Type::Number)
                .multiple_of(Some(0.001));
            b = match min {
                Some((m, true)) => b.exclusive_minimum(Some(m)),
                Some((m, false)) => b.minimum(Some(m)),
                None => b,
            };
            match max {
                (m, true) => b.exclusive_maximum(Some(m)),
                (m, false) => b.maximum(Some(m)),
            }
        };
        let text = |pattern: String| {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(pattern))
        };
        let mut one_of = OneOfBuilder::new().description(Some(QUANTITY_DOC));
        one_of = match sign {
            // A digit other than 0 somewhere: not zero.
            Sign::Positive => one_of
                .item(number(Some((0.0, true)), (MAX_QUANTITY, false)))
                .item(text(format!("^(?=.*[1-9]){unsigned}$"))),
            Sign::NonNegative => one_of
                .item(number(Some((0.0, false)), (MAX_QUANTITY, false)))
                .item(text(format!("^{unsigned}$"))),
            Sign::NonZero => one_of
                .item(number(Some((-MAX_QUANTITY, false)), (0.0, true)))
                .item(number(Some((0.0, true)), (MAX_QUANTITY, false)))
                .item(text(format!("^-?(?=.*[1-9]){unsigned}$"))),
        };
        if nullable {
            one_of = one_of.item(ObjectBuilder::new().schema_type(Type::Null));
        }
        one_of.into()
    }

    pub fn positive_quantity() -> RefOr<Schema> {
        quantity(Sign::Positive, false)
    }
    pub fn non_negative_quantity() -> RefOr<Schema> {
        quantity(Sign::NonNegative, false)
    }
    pub fn optional_non_negative_quantity() -> RefOr<Schema> {
        quantity(Sign::NonNegative, true)
    }
    pub fn non_zero_quantity() -> RefOr<Schema> {
        quantity(Sign::NonZero, false)
    }

    /// Hours: more than 0, at most 24, or null.
    fn up_to_a_day() -> RefOr<Schema> {
        OneOfBuilder::new()
            .description(Some(QUANTITY_DOC))
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::Number)
                    .multiple_of(Some(0.001))
                    .exclusive_minimum(Some(0.0))
                    .maximum(Some(24.0)),
            )
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some("^0*(?:(?=[0-9.]*[1-9])(?:[0-9]|1[0-9]|2[0-3])(?:\\.[0-9]{1,3})?|24(?:\\.0{1,3})?)$")),
            )
            .item(ObjectBuilder::new().schema_type(Type::Null))
            .into()
    }

    pub fn rounding() -> RefOr<Schema> {
        up_to_a_day()
    }

    pub fn log_hours() -> RefOr<Schema> {
        up_to_a_day()
    }

    /// A date (YYYY-MM-DD) in the years 1900 to 9999 (`validate_terms`).
    pub fn date() -> Object {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                utoipa::openapi::KnownFormat::Date,
            )))
            .pattern(Some("^(?:19[0-9]{2}|[2-9][0-9]{3})-"))
            .build()
    }

    /// A percentage used (1 to 1000), or `{"remaining": n}`.
    pub fn alert_thresholds() -> utoipa::openapi::schema::Array {
        let percent = ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(1))
            .maximum(Some(1000));
        let remaining = ObjectBuilder::new()
            .schema_type(Type::Object)
            .property("remaining", non_negative_quantity())
            .required("remaining");
        utoipa::openapi::schema::ArrayBuilder::new()
            .items(OneOfBuilder::new().item(percent).item(remaining))
            .build()
    }

    /// A string schema that takes only these names.
    pub fn one_of(names: impl IntoIterator<Item = &'static str>) -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(names))
            .into()
    }

    /// A schema type for a closed set of names (`$list`).
    macro_rules! names {
        ($name:ident, $doc:literal, $list:expr) => {
            #[doc = $doc]
            pub struct $name;
            impl utoipa::PartialSchema for $name {
                fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
                    $crate::inputs::schemas::one_of($list)
                }
            }
            impl utoipa::ToSchema for $name {}
        };
    }
    pub(crate) use names;

    names!(
        UnitName,
        "What an entitlement counts.",
        Unit::ALL.map(Unit::as_str)
    );
    names!(
        PeriodName,
        "How often the allotment resets.",
        [Period::None, Period::Month, Period::Quarter, Period::Year].map(Period::as_str)
    );
    names!(
        DecrementOnName,
        "When a case uses its entitlement.",
        [DecrementOn::Creation, DecrementOn::Resolution].map(DecrementOn::as_str)
    );
    names!(
        StatusName,
        "An entitlement's state.",
        Status::ALL.map(Status::as_str)
    );
    names!(
        CaseStatusName,
        "A case's state.",
        CaseStatus::ALL.map(CaseStatus::as_str)
    );
    names!(RoleName, "An API key's role.", Role::ALL.map(Role::as_str));
}
