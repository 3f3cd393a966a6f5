//! Products: `name`, optionally `sku` (the key other files refer to it by:
//! unique within the file and among existing products) and the id to keep.

use std::collections::{HashMap, HashSet};

use allot_store::ids::ProductId;
use allot_store::imports::{new_rows, ImportChunk, Table};
use allot_store::model::Product;

use super::kinds::{existing, parse_all, Column, KindDef, Row, Session};
use super::{ImportReport, RowError};
use crate::error::ApiResult;
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
    let id = row.new_id::<ProductId>(&mut errors);
    let name = row.text("name", &mut errors);
    let sku = row.short("sku", &mut errors);
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
        let ids = existing(state, Table::Products, &ids).await?;
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
            let exists = known.id_exists(id);
            session.check_free(row, ("product", "id"), id, exists, &mut errors);
        }
        if let Some(sku) = &g.sku {
            let exists = known.by_sku(sku).is_some();
            session.check_free(row, ("product", "sku"), sku, exists, &mut errors);
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
