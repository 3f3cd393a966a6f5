//! Entitlements: the columns of `POST /v1/entitlements` (the same checks:
//! each row is read as that body), plus the id to keep, the account by
//! `account_external_id`, products by `product_skus`, and `status`.
//! List cells (`channels`, `alert_thresholds`) are JSON, as an export
//! writes them; `product_ids`, `contact_ids` and `product_skus` are JSON
//! arrays or `;`-separated.

use std::collections::HashSet;

use allot_core::entitlement::{Entitlement, Status};
use allot_core::lifecycle::effective_status;
use allot_store::ids::EntitlementId;
use allot_store::imports::{new_rows, ImportChunk, Table};
use serde_json::{Map, Value};

use super::accounts::{required_account, unknown_account, AccountRef, KnownAccounts};
use super::kinds::{existing, parse_all, Column, KindDef, Row, Session};
use super::products::KnownProducts;
use super::{ImportReport, RowError};
use crate::error::ApiResult;
use crate::inputs::EntitlementInput;

const fn col(name: &'static str, required: bool, doc: &'static str) -> Column {
    Column {
        name,
        required,
        doc,
    }
}

pub const DEF: KindDef = KindDef {
    name: "entitlements",
    columns: &[
        col("id", false, "The id to keep (ent_…); empty: a new one. Not one that exists."),
        col("account_id", false, "An existing account (this or account_external_id)."),
        col("account_external_id", false, "An existing account by its external_id."),
        col("name", false, "The entitlement's name (required unless template)."),
        col("description", false, ""),
        col("owner", false, ""),
        col("owner_email", false, ""),
        col("unit", false, "cases, hours, visits or units."),
        col("total", false, "The cap; empty with unlimited = true."),
        col("unlimited", false, "true or false (default false)."),
        col("period", false, "none (default), month, quarter or year."),
        col("rollover", false, "Carried into the next period."),
        col("restrict", false, "true (default) or false."),
        col("decrement_on", false, "creation (default) or resolution."),
        col("start_date", false, "YYYY-MM-DD."),
        col("end_date", false, "YYYY-MM-DD."),
        col("status", false, "draft (default), active (activated: waiting, active or expired by its dates) or cancelled."),
        col("channels", false, "JSON: [{\"channel\": \"phone\", \"total\": 5}]."),
        col("product_ids", false, "Existing products: a JSON array or ids separated by ;."),
        col("product_skus", false, "Existing products by SKU, separated by ;."),
        col("contact_ids", false, "Contacts of the account: a JSON array or ids separated by ;."),
        col("is_default", false, "true or false; one default per account."),
        col("pooled", false, "true or false."),
        col("alert_thresholds", false, "JSON: [80, {\"remaining\": 2}]."),
        col("rounding", false, "Hours only: each use rounds up to this increment."),
        col("auto_renew", false, "true or false."),
        col("contract_id", false, "An existing contract of the account; the dates inside its own."),
        col("contract_number", false, "The contract by number (an existing one)."),
        col("contract_line_id", false, "A line of the contract."),
        col("template", false, "An entitlement template's name: the terms come from it (with account, start_date — default today —, status, is_default, the contract); the term columns stay empty."),
        col("sla", false, ""),
    ],
    ignored: &[
        "created_at",
        "updated_at",
        "predecessor_id",
        "renewed_from",
        "renewed_to",
        "percent_used",
        "balance.*",
        "template_id",
    ],
    example: &[
        "", "", "CRM-1001", "Gold support 2026", "", "", "", "cases", "25", "false", "quarter",
        "0", "true", "creation", "2026-01-01", "2026-12-31", "active", "", "", "SUP-PREM", "",
        "true", "false", "[80]", "", "false", "", "", "", "", "",
    ],
};

/// Columns that are JSON values in the body (booleans, lists).
const BOOLEANS: &[&str] = &[
    "unlimited",
    "restrict",
    "is_default",
    "pooled",
    "auto_renew",
];
const JSON_LISTS: &[&str] = &["channels", "alert_thresholds"];
const ID_LISTS: &[&str] = &["product_ids", "contact_ids"];
/// Columns not in the body.
const OWN: &[&str] = &[
    "id",
    "account_external_id",
    "product_skus",
    "status",
    "template",
    "contract_number",
];
/// The columns a row made from a template may fill (beside `OWN`).
const WITH_TEMPLATE: &[&str] = &[
    "start_date",
    "contract_id",
    "contract_line_id",
    "is_default",
];

struct Good {
    id: Option<String>,
    account: AccountRef,
    body: Map<String, Value>,
    skus: Vec<String>,
    status: Status,
    template: Option<String>,
}

/// A list cell: a JSON array of strings, or `;`-separated.
fn id_list(row: &Row<'_>, column: &str) -> Result<Vec<String>, RowError> {
    let Some(cell) = row.get(column) else {
        return Ok(Vec::new());
    };
    if cell.starts_with('[') {
        serde_json::from_str::<Vec<String>>(cell)
            .map_err(|_| row.error(column, "must be a JSON array of strings or ;-separated"))
    } else {
        Ok(cell
            .split(';')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect())
    }
}

fn parse(row: &Row<'_>) -> Result<Good, Vec<RowError>> {
    let mut errors = Vec::new();
    let mut body = Map::new();
    for column in DEF.columns.iter().map(|c| c.name) {
        if OWN.contains(&column) || column == "account_id" {
            continue;
        }
        let Some(cell) = row.get(column) else {
            continue;
        };
        let value = if BOOLEANS.contains(&column) {
            match cell.to_ascii_lowercase().as_str() {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                _ => {
                    errors.push(row.error(column, "must be true or false"));
                    continue;
                }
            }
        } else if JSON_LISTS.contains(&column) {
            match serde_json::from_str::<Value>(cell) {
                Ok(v @ Value::Array(_)) => v,
                _ => {
                    errors.push(row.error(column, "must be a JSON array"));
                    continue;
                }
            }
        } else if ID_LISTS.contains(&column) {
            match id_list(row, column) {
                Ok(ids) => Value::from(ids),
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            }
        } else {
            Value::String(cell.to_string())
        };
        body.insert(column.to_string(), value);
    }
    let id = row.new_id::<EntitlementId>(&mut errors);
    let status = match row.get("status") {
        None | Some("draft") => Status::Draft,
        Some("active" | "waiting" | "expired") => Status::Active,
        Some("cancelled") => Status::Cancelled,
        Some(_) => {
            errors.push(row.error(
                "status",
                "must be draft, active, waiting, expired or cancelled",
            ));
            Status::Draft
        }
    };
    let skus = id_list(row, "product_skus")
        .map_err(|e| errors.push(e))
        .unwrap_or_default();
    let account = required_account(row, &mut errors);
    let template = row.get("template").map(str::to_string);
    if template.is_some() {
        for column in body.keys().filter(|c| !WITH_TEMPLATE.contains(&c.as_str())) {
            errors.push(row.error(column, "comes from the template: leave it empty"));
        }
        if !skus.is_empty() {
            errors.push(row.error("product_skus", "comes from the template: leave it empty"));
        }
    }
    match account {
        Some(account) if errors.is_empty() => Ok(Good {
            id,
            account,
            body,
            skus,
            status,
            template,
        }),
        _ => Err(errors),
    }
}

/// The terms of a row made from a template.
async fn from_template(
    session: &mut Session<'_>,
    row: &Row<'_>,
    name: &str,
    account_id: &str,
    body: &Map<String, Value>,
) -> ApiResult<Result<allot_core::entitlement::Terms, Vec<RowError>>> {
    if !session.templates.contains_key(name) {
        let found = session.state.store.get_template_by_name(name).await?;
        session.templates.insert(name.to_string(), found);
    }
    let Some(template) = session.templates[name].clone() else {
        return Ok(Err(
            vec![row.error("template", "no template has this name")],
        ));
    };
    let start_date = match body.get("start_date").and_then(Value::as_str) {
        None => session.today,
        Some(d) => match chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d") {
            Ok(d) => d,
            Err(_) => {
                return Ok(Err(vec![
                    row.error("start_date", "must be a date (YYYY-MM-DD)")
                ]))
            }
        },
    };
    let text = |k: &str| body.get(k).and_then(Value::as_str);
    let place = allot_core::templates::Placement {
        template_id: &template.id,
        account_id,
        start_date,
        contract_id: text("contract_id"),
        contract_line_id: text("contract_line_id"),
    };
    let Some(mut terms) = allot_core::templates::terms_for(&template.terms, &place) else {
        return Ok(Err(vec![row.error(
            "start_date",
            "the template's term would end past the calendar",
        )]));
    };
    terms.is_default = body.get("is_default") == Some(&Value::Bool(true));
    Ok(allot_core::terms::validate_terms(&terms)
        .map(|()| terms.clone())
        .map_err(|e| row.errors_of(e.into(), "template")))
}

pub async fn chunk(
    session: &mut Session<'_>,
    rows: Vec<Row<'_>>,
    report: &mut ImportReport,
) -> ApiResult<Option<ImportChunk>> {
    let good = parse_all(&rows, report, parse);
    let store = &session.state.store;
    let accounts = KnownAccounts::read(session.state, good.iter().map(|(_, g)| &g.account)).await?;
    let product_ids: Vec<String> = good
        .iter()
        .flat_map(|(_, g)| g.body.get("product_ids").and_then(Value::as_array))
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    let skus = good.iter().flat_map(|(_, g)| g.skus.clone()).collect();
    let products = KnownProducts::read(session.state, product_ids, skus).await?;
    let contact_ids: Vec<String> = good
        .iter()
        .flat_map(|(_, g)| g.body.get("contact_ids").and_then(Value::as_array))
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    let contacts: std::collections::HashMap<String, Option<String>> = if contact_ids.is_empty() {
        Default::default()
    } else {
        store
            .existing_ids(Table::Contacts, &contact_ids)
            .await?
            .into_iter()
            .collect()
    };
    let own: Vec<String> = good.iter().filter_map(|(_, g)| g.id.clone()).collect();
    let taken = existing(session.state, Table::Entitlements, &own).await?;
    let resolved: Vec<Option<String>> = good
        .iter()
        .map(|(_, g)| accounts.resolve(session, &g.account))
        .collect();
    let wants_default: Vec<String> = good
        .iter()
        .zip(&resolved)
        .filter(|((_, g), _)| g.body.get("is_default") == Some(&Value::Bool(true)))
        .filter_map(|(_, a)| a.clone())
        .collect();
    let has_default: HashSet<String> = if wants_default.is_empty() {
        HashSet::new()
    } else {
        store
            .accounts_with_default(&wants_default)
            .await?
            .into_iter()
            .collect()
    };
    let mut made = Vec::with_capacity(good.len());
    for ((row, mut g), account_id) in good.into_iter().zip(resolved) {
        let mut errors = Vec::new();
        if let Some(id) = &g.id {
            let exists = taken.contains(id);
            session.check_free(row, ("entitlement", "id"), id, exists, &mut errors);
        }
        let Some(account_id) = account_id else {
            report.error(unknown_account(
                row,
                &g.account,
                "account_id",
                "account_external_id",
            ));
            errors.into_iter().for_each(|e| report.error(e));
            continue;
        };
        let mut product_ids: Vec<Value> = g
            .body
            .remove("product_ids")
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default();
        for sku in &g.skus {
            match products
                .by_sku(sku)
                .or_else(|| session.key("product:sku", sku).map(|(id, _)| id))
            {
                Some(id) => product_ids.push(Value::String(id.clone())),
                None => errors.push(RowError::new(
                    row.number,
                    "product_skus",
                    sku,
                    "no product has this sku",
                )),
            }
        }
        for id in product_ids.iter().filter_map(Value::as_str) {
            if !products.id_exists(id) {
                errors.push(RowError::new(
                    row.number,
                    "product_ids",
                    id,
                    "product does not exist",
                ));
            }
        }
        match super::contracts::contract_of(session, row, "contract_id", "contract_number").await? {
            Ok(Some((id, ..))) => {
                g.body.insert("contract_id".into(), Value::String(id));
            }
            Ok(None) => {}
            Err(e) => errors.push(e),
        }
        let terms = if let Some(name) = &g.template {
            match from_template(session, row, name, &account_id, &g.body).await? {
                Ok(terms) => terms,
                Err(e) => {
                    errors.extend(e);
                    errors.into_iter().for_each(|e| report.error(e));
                    continue;
                }
            }
        } else {
            g.body
                .insert("product_ids".into(), Value::Array(product_ids));
            g.body
                .insert("account_id".into(), Value::String(account_id.clone()));
            let terms = serde_json::to_vec(&g.body)
                .map_err(|e| crate::error::ApiError::Internal(e.to_string()))
                .and_then(|bytes| crate::extract::parse_json::<EntitlementInput>(&bytes))
                .and_then(EntitlementInput::into_terms);
            match terms {
                Ok(terms) => terms,
                Err(e) => {
                    errors.extend(row.errors_of(e, "body"));
                    errors.into_iter().for_each(|e| report.error(e));
                    continue;
                }
            }
        };
        if terms.contract_id.is_some() || terms.contract_line_id.is_some() {
            if let Err(e) = crate::routes::contracts::check_contract(session.state, &terms).await {
                errors.extend(row.errors_of(e, "contract_id"));
            }
        }
        for id in &terms.contact_ids {
            if contacts
                .get(id)
                .is_none_or(|owner| owner.as_deref() != Some(&account_id))
            {
                errors.push(RowError::new(
                    row.number,
                    "contact_ids",
                    id,
                    "is not a contact of this account",
                ));
            }
        }
        let live = matches!(g.status, Status::Draft | Status::Active);
        if terms.is_default && live {
            if has_default.contains(&account_id) {
                errors.push(row.error(
                    "is_default",
                    "the account already has a default entitlement",
                ));
            } else if session.defaults.contains(&account_id) {
                errors.push(row.error(
                    "is_default",
                    "an earlier row gives this account its default entitlement",
                ));
            }
        }
        if !errors.is_empty() {
            errors.into_iter().for_each(|e| report.error(e));
            continue;
        }
        if terms.is_default && live {
            session.defaults.insert(account_id);
        }
        let status = match g.status {
            Status::Active => effective_status(
                Status::Active,
                terms.start_date,
                terms.end_date,
                session.today,
            ),
            other => other,
        };
        let id =
            g.id.unwrap_or_else(|| EntitlementId::new(session.now).into_string());
        let _ = session.claim("entitlement:id", &id, &id, row.number);
        made.push(Entitlement {
            id,
            terms,
            status,
            predecessor_id: None,
        });
    }
    if made.is_empty() {
        return Ok(None);
    }
    let changes = new_rows(vec![], vec![], vec![], made, &session.audit, session.now);
    Ok(Some(ImportChunk::Rows(Box::new(changes))))
}
