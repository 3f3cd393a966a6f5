//! Contracts and contract lines. A contract: `number` (unique: what other
//! files name it by), the account, dates, `auto_renew`, `status` (`draft`
//! or `active`). A line: its contract (by `contract_number`, an earlier row
//! of a contracts file or an existing contract, or `contract_id`), a
//! product (`product_id` or `product_sku`), `quantity`, a template
//! (`template_id` or `template_name`) and dates inside the contract's
//! (its own by default).

use std::collections::HashMap;

use allot_core::contracts::{check_inside, ContractStatus};
use allot_core::Quantity;
use allot_store::audit::{snapshot, AuditEntry};
use allot_store::backend::Changes;
use allot_store::contracts::{Contract, ContractChanges, ContractLine};
use allot_store::ids::{ContractId, ContractLineId, TemplateId, TypedId};
use allot_store::imports::ImportChunk;
use chrono::NaiveDate;
use serde_json::{Map, Value};

use super::accounts::{required_account, unknown_account, AccountRef, KnownAccounts};
use super::kinds::{parse_all, Column, KindDef, Row, Session};
use super::products::KnownProducts;
use super::{ImportReport, RowError};
use crate::contracts::inputs::ContractInput;
use crate::error::ApiResult;

pub const DEF: KindDef = KindDef {
    name: "contracts",
    columns: &[
        Column {
            name: "id",
            required: false,
            doc: "The id to keep (ctr_…); empty: a new one.",
        },
        Column {
            name: "number",
            required: true,
            doc: "Unique: what contract line and entitlement files name it by.",
        },
        Column {
            name: "account_id",
            required: false,
            doc: "An existing account (this or account_external_id).",
        },
        Column {
            name: "account_external_id",
            required: false,
            doc: "An existing account by its external_id.",
        },
        Column {
            name: "name",
            required: false,
            doc: "",
        },
        Column {
            name: "start_date",
            required: true,
            doc: "YYYY-MM-DD.",
        },
        Column {
            name: "end_date",
            required: true,
            doc: "YYYY-MM-DD.",
        },
        Column {
            name: "auto_renew",
            required: false,
            doc: "true or false.",
        },
        Column {
            name: "status",
            required: false,
            doc: "draft (default) or active.",
        },
    ],
    ignored: &["created_at", "updated_at", "predecessor_id", "renewed_to"],
    example: &[
        "",
        "CTR-2026-001",
        "",
        "CRM-1001",
        "Support 2026",
        "2026-01-01",
        "2026-12-31",
        "false",
        "active",
    ],
};

pub const LINES: KindDef = KindDef {
    name: "contract-lines",
    columns: &[
        Column {
            name: "id",
            required: false,
            doc: "The id to keep (cln_…); empty: a new one.",
        },
        Column {
            name: "contract_number",
            required: false,
            doc: "Its contract by number (this or contract_id).",
        },
        Column {
            name: "contract_id",
            required: false,
            doc: "Its contract by id.",
        },
        Column {
            name: "product_id",
            required: false,
            doc: "An existing product.",
        },
        Column {
            name: "product_sku",
            required: false,
            doc: "An existing product by SKU.",
        },
        Column {
            name: "quantity",
            required: false,
            doc: "Not negative.",
        },
        Column {
            name: "template_id",
            required: false,
            doc: "An existing entitlement template.",
        },
        Column {
            name: "template_name",
            required: false,
            doc: "An existing entitlement template by name.",
        },
        Column {
            name: "start_date",
            required: false,
            doc: "Inside the contract's dates (default its start).",
        },
        Column {
            name: "end_date",
            required: false,
            doc: "Inside the contract's dates (default its end).",
        },
    ],
    ignored: &["created_at"],
    example: &[
        "",
        "CTR-2026-001",
        "",
        "",
        "SUP-PREM",
        "1",
        "",
        "Gold",
        "",
        "",
    ],
};

struct Good {
    id: Option<String>,
    account: AccountRef,
    body: Map<String, Value>,
    status: ContractStatus,
}

fn parse(row: &Row<'_>) -> Result<Good, Vec<RowError>> {
    let mut errors = Vec::new();
    let mut body = Map::new();
    for column in ["number", "name", "start_date", "end_date"] {
        if let Some(cell) = row.get(column) {
            body.insert(column.into(), Value::String(cell.into()));
        }
    }
    match row
        .get("auto_renew")
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None => {}
        Some("true") => {
            body.insert("auto_renew".into(), Value::Bool(true));
        }
        Some("false") => {
            body.insert("auto_renew".into(), Value::Bool(false));
        }
        Some(_) => errors.push(row.error("auto_renew", "must be true or false")),
    }
    let status = match row.get("status") {
        None | Some("draft") => ContractStatus::Draft,
        Some("active") => ContractStatus::Active,
        Some(_) => {
            errors.push(row.error("status", "must be draft or active"));
            ContractStatus::Draft
        }
    };
    let id = row.new_id::<ContractId>(&mut errors);
    let account = required_account(row, &mut errors);
    match account {
        Some(account) if errors.is_empty() => Ok(Good {
            id,
            account,
            body,
            status,
        }),
        _ => Err(errors),
    }
}

pub async fn chunk(
    session: &mut Session<'_>,
    rows: Vec<Row<'_>>,
    report: &mut ImportReport,
) -> ApiResult<Option<ImportChunk>> {
    let good = parse_all(&rows, report, parse);
    let accounts = KnownAccounts::read(session.state, good.iter().map(|(_, g)| &g.account)).await?;
    let mut contracts = Vec::new();
    let mut audit = Vec::new();
    for (row, mut g) in good {
        let mut errors = Vec::new();
        let Some(account_id) = accounts.resolve(session, &g.account) else {
            report.error(unknown_account(
                row,
                &g.account,
                "account_id",
                "account_external_id",
            ));
            continue;
        };
        g.body
            .insert("account_id".into(), Value::String(account_id));
        let fields = serde_json::to_vec(&g.body)
            .map_err(|e| crate::error::ApiError::Internal(e.to_string()))
            .and_then(|b| crate::extract::parse_json::<ContractInput>(&b))
            .and_then(ContractInput::checked);
        let f = match fields {
            Ok(f) => f,
            Err(e) => {
                row.errors_of(e, "body")
                    .into_iter()
                    .for_each(|e| report.error(e));
                continue;
            }
        };
        if let Some((_, first)) = session.key("contract:number", &f.number) {
            errors.push(row.error("number", format!("duplicate number: row {first} has it")));
        } else if session
            .state
            .store
            .get_contract_by_number(&f.number)
            .await?
            .is_some()
        {
            errors.push(row.error("number", "a contract with this number exists"));
        }
        if let Some(id) = &g.id {
            if session.key("contract:id", id).is_some()
                || session.state.store.get_contract(id).await?.is_some()
            {
                errors.push(row.error("id", "a contract with this id exists"));
            }
        }
        if !errors.is_empty() {
            errors.into_iter().for_each(|e| report.error(e));
            continue;
        }
        let now = session.now;
        let id = g.id.unwrap_or_else(|| ContractId::new(now).into_string());
        let _ = session.claim("contract:id", &id, &id, row.number);
        let _ = session.claim("contract:number", &f.number, &id, row.number);
        // What later line and entitlement rows need: the account and dates.
        session
            .contracts
            .insert(id.clone(), (f.account_id.clone(), f.start_date, f.end_date));
        let contract = Contract {
            id,
            account_id: f.account_id,
            number: f.number,
            name: f.name,
            start_date: f.start_date,
            end_date: f.end_date,
            auto_renew: f.auto_renew,
            status: g.status,
            predecessor_id: None,
            renewed_to: None,
            created_at: now,
            updated_at: now,
        };
        audit.push(AuditEntry::new(
            &session.audit,
            "contract.create",
            "contract",
            &contract.id,
            None,
            snapshot(&contract),
            now,
        ));
        contracts.push(contract);
    }
    if contracts.is_empty() {
        return Ok(None);
    }
    let both = (
        ContractChanges {
            contracts,
            ..ContractChanges::default()
        },
        Changes {
            audit,
            ..Changes::default()
        },
    );
    Ok(Some(ImportChunk::Contracts(Box::new(both))))
}

/// A contract a row names: (id, account, start, end).
pub async fn contract_of(
    session: &Session<'_>,
    row: &Row<'_>,
    id_column: &str,
    number_column: &str,
) -> ApiResult<Result<Option<(String, String, NaiveDate, NaiveDate)>, RowError>> {
    let found = match (row.get(id_column), row.get(number_column)) {
        (None, None) => return Ok(Ok(None)),
        (Some(_), Some(_)) => {
            return Ok(Err(row.error(
                number_column,
                format!("give {id_column} or {number_column}, not both"),
            )))
        }
        (Some(id), None) => match session.contracts.get(id) {
            Some((account, start, end)) => Some((id.to_string(), account.clone(), *start, *end)),
            None => match ContractId::parse(id) {
                Some(id) => session
                    .state
                    .store
                    .get_contract(&id)
                    .await?
                    .map(|c| (c.id, c.account_id, c.start_date, c.end_date)),
                None => None,
            },
        },
        (None, Some(number)) => match session.key("contract:number", number) {
            Some((id, _)) => session
                .contracts
                .get(id)
                .map(|(account, start, end)| (id.clone(), account.clone(), *start, *end)),
            None => session
                .state
                .store
                .get_contract_by_number(number)
                .await?
                .map(|c| (c.id, c.account_id, c.start_date, c.end_date)),
        },
    };
    Ok(match found {
        Some(c) => Ok(Some(c)),
        None if row.get(id_column).is_some() => Err(row.error(id_column, "no such contract")),
        None => Err(row.error(
            number_column,
            "no contract has this number (in the file or the service)",
        )),
    })
}

fn date(row: &Row<'_>, column: &str, errors: &mut Vec<RowError>) -> Option<NaiveDate> {
    let cell = row.get(column)?;
    match NaiveDate::parse_from_str(cell, "%Y-%m-%d") {
        Ok(d) => Some(d),
        Err(_) => {
            errors.push(row.error(column, "must be a date (YYYY-MM-DD)"));
            None
        }
    }
}

pub async fn lines_chunk(
    session: &mut Session<'_>,
    rows: Vec<Row<'_>>,
    report: &mut ImportReport,
) -> ApiResult<Option<ImportChunk>> {
    let mut lines = Vec::new();
    let mut audit = Vec::new();
    let ids: Vec<String> = rows
        .iter()
        .filter_map(|r| r.get("product_id").map(str::to_string))
        .collect();
    let skus: Vec<String> = rows
        .iter()
        .filter_map(|r| r.get("product_sku").map(str::to_string))
        .collect();
    let products = KnownProducts::read(session.state, ids, skus).await?;
    let mut templates: HashMap<String, Option<String>> = HashMap::new();
    for row in &rows {
        let mut errors = Vec::new();
        let contract = match contract_of(session, row, "contract_id", "contract_number").await? {
            Ok(Some(c)) => Some(c),
            Ok(None) => {
                errors.push(row.error(
                    "contract_number",
                    "contract_number or contract_id is required",
                ));
                None
            }
            Err(e) => {
                errors.push(e);
                None
            }
        };
        let product_id = match (row.get("product_id"), row.get("product_sku")) {
            (Some(id), None) if products.id_exists(id) => Some(id.to_string()),
            (Some(_), None) => {
                errors.push(row.error("product_id", "product does not exist"));
                None
            }
            (None, Some(sku)) => match products.by_sku(sku) {
                Some(id) => Some(id.clone()),
                None => {
                    errors.push(row.error("product_sku", "no product has this sku"));
                    None
                }
            },
            (Some(_), Some(_)) => {
                errors.push(row.error("product_sku", "give product_id or product_sku, not both"));
                None
            }
            (None, None) => None,
        };
        let quantity = match row.get("quantity").map(str::parse::<Quantity>) {
            None => None,
            Some(Ok(q)) if !q.is_negative() => Some(q),
            Some(_) => {
                errors.push(row.error("quantity", "must be a number, not negative"));
                None
            }
        };
        let template_id = match (row.get("template_id"), row.get("template_name")) {
            (Some(id), None) => match TemplateId::parse(id) {
                Some(t) if session.state.store.get_template(&t).await?.is_some() => {
                    Some(t.into_string())
                }
                _ => {
                    errors.push(row.error("template_id", "template does not exist"));
                    None
                }
            },
            (None, Some(name)) => {
                if !templates.contains_key(name) {
                    let found = session
                        .state
                        .store
                        .get_template_by_name(name)
                        .await?
                        .map(|t| t.id);
                    templates.insert(name.to_string(), found);
                }
                match &templates[name] {
                    Some(id) => Some(id.clone()),
                    None => {
                        errors.push(row.error("template_name", "no template has this name"));
                        None
                    }
                }
            }
            (Some(_), Some(_)) => {
                errors.push(row.error(
                    "template_name",
                    "give template_id or template_name, not both",
                ));
                None
            }
            (None, None) => None,
        };
        let start = date(row, "start_date", &mut errors);
        let end = date(row, "end_date", &mut errors);
        let id = match row.get("id") {
            None => None,
            Some(raw) => match ContractLineId::parse(raw) {
                Some(id)
                    if session.key("contract_line:id", &id).is_none()
                        && session.state.store.get_contract_line(&id).await?.is_none() =>
                {
                    Some(id.into_string())
                }
                _ => {
                    errors.push(row.error("id", "not a new contract line id (cln_…)"));
                    None
                }
            },
        };
        let Some((contract_id, _, c_start, c_end)) = contract.filter(|_| errors.is_empty()) else {
            errors.into_iter().for_each(|e| report.error(e));
            continue;
        };
        let (start, end) = (start.unwrap_or(c_start), end.unwrap_or(c_end));
        if let Err(e) = check_inside((c_start, c_end), start, end) {
            row.errors_of(e.into(), "start_date")
                .into_iter()
                .for_each(|e| report.error(e));
            continue;
        }
        let now = session.now;
        let id = id.unwrap_or_else(|| ContractLineId::new(now).into_string());
        let _ = session.claim("contract_line:id", &id, &id, row.number);
        let line = ContractLine {
            id,
            contract_id,
            product_id,
            quantity,
            template_id,
            start_date: start,
            end_date: end,
            created_at: now,
        };
        audit.push(AuditEntry::new(
            &session.audit,
            "contract_line.create",
            "contract_line",
            &line.id,
            None,
            snapshot(&line),
            now,
        ));
        lines.push(line);
    }
    if lines.is_empty() {
        return Ok(None);
    }
    let both = (
        ContractChanges {
            new_lines: lines,
            ..ContractChanges::default()
        },
        Changes {
            audit,
            ..Changes::default()
        },
    );
    Ok(Some(ImportChunk::Contracts(Box::new(both))))
}
