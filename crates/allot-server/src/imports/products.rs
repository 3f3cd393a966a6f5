//! Products: `name`, optionally `sku` (the key other files refer to it by:
//! unique within the file and among existing products) and the id to keep.

use std::collections::{HashMap, HashSet};

use allot_store::ids::{ProductId, TypedId};
use allot_store::imports::{new_rows, ImportChunk, Table};
use allot_store::model::Product;

use super::kinds::{parse_all, Column, KindDef, Row, Session};
use super::{ImportReport, RowError};
use crate::error::ApiResult;
use crate::inputs::{text, MAX_TEXT};
use crate::state::AppState;

pub const DEF: KindDef = KindDef {
    name: "products",
    columns: &[
        Column {
            name: "id",
            required: false,
            doc: "The id to keep (prd_…); empty: a new one. Not one that exists.",
        },
        Column {
            name: "name",
            required: true,
            doc: "The product's name.",
        },
        Column {
            name: "sku",
            required: false,
            doc: "Stock-keeping unit: what entitlement files name it by (product_skus). Unique.",
        },
    ],
    ignored: &["created_at"],
    example: &["", "Premium Support", "SUP-PREM"],
};

struct Good {
    id: Option<String>,
    name: String,
    sku: Option<String>,
}

fn parse(row: &Row<'_>) -> Result<Good, Vec<RowError>> {
    let mut errors = Vec::new();
    let id = match row.get("id") {
        None => None,
        Some(raw) => match ProductId::parse(raw) {
            Some(id) => Some(id.into_string()),
            None => {
                errors.push(row.error("id", "not a product id (prd_…)"));
                None
            }
        },
    };
    let name = text("name", row.raw("name"), MAX_TEXT)
        .map_err(|e| errors.extend(row.errors_of(e, "name")))
        .ok();
    let sku = row.get("sku").map(str::to_string);
    if sku.as_ref().is_some_and(|s| s.chars().count() > MAX_TEXT) {
        errors.push(row.error("sku", format!("must be at most {MAX_TEXT} characters")));
    }
    match name {
        Some(name) if errors.is_empty() => Ok(Good { id, name, sku }),
        _ => Err(errors),
    }
}

/// Existing products by id and by SKU, read once per chunk.
#[derive(Debug, Default)]
pub struct KnownProducts {
    ids: HashSet<String>,
    skus: HashMap<String, String>,
}

impl KnownProducts {
    pub async fn read(state: &AppState, ids: Vec<String>, skus: Vec<String>) -> ApiResult<Self> {
        let ids = if ids.is_empty() {
            HashSet::new()
        } else {
            let found = state.store.existing_ids(Table::Products, &ids).await?;
            found.into_iter().map(|(id, _)| id).collect()
        };
        let skus = if skus.is_empty() {
            HashMap::new()
        } else {
            state
                .store
                .products_by_sku(&skus)
                .await?
                .into_iter()
                .collect()
        };
        Ok(KnownProducts { ids, skus })
    }

    pub fn id_exists(&self, id: &str) -> bool {
        self.ids.contains(id)
    }

    pub fn by_sku(&self, sku: &str) -> Option<&String> {
        self.skus.get(sku)
    }
}

pub async fn chunk(
    session: &mut Session<'_>,
    rows: Vec<Row<'_>>,
    report: &mut ImportReport,
) -> ApiResult<Option<ImportChunk>> {
    let good = parse_all(&rows, report, parse);
    let ids = good.iter().filter_map(|(_, g)| g.id.clone()).collect();
    let skus = good.iter().filter_map(|(_, g)| g.sku.clone()).collect();
    let known = KnownProducts::read(session.state, ids, skus).await?;
    let mut products = Vec::with_capacity(good.len());
    for (row, g) in good {
        let mut errors = Vec::new();
        if let Some(id) = &g.id {
            if known.id_exists(id) {
                errors.push(row.error("id", "a product with this id exists"));
            } else if let Some((_, first)) = session.key("product:id", id) {
                errors.push(row.error("id", format!("duplicate id: row {first} has it")));
            }
        }
        if let Some(sku) = &g.sku {
            if known.by_sku(sku).is_some() {
                errors.push(row.error("sku", "a product with this sku exists"));
            } else if let Some((_, first)) = session.key("product:sku", sku) {
                errors.push(row.error("sku", format!("duplicate sku: row {first} has it")));
            }
        }
        if !errors.is_empty() {
            errors.into_iter().for_each(|e| report.error(e));
            continue;
        }
        let id =
            g.id.unwrap_or_else(|| ProductId::new(session.now).into_string());
        let _ = session.claim("product:id", &id, &id, row.number);
        if let Some(sku) = &g.sku {
            let _ = session.claim("product:sku", sku, &id, row.number);
        }
        products.push(Product {
            id,
            name: g.name,
            sku: g.sku,
            created_at: session.now,
        });
    }
    if products.is_empty() {
        return Ok(None);
    }
    let changes = new_rows(
        vec![],
        vec![],
        products,
        vec![],
        &session.audit,
        session.now,
    );
    Ok(Some(ImportChunk::Rows(Box::new(changes))))
}
