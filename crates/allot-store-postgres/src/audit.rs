//! The audit trail: each change writes its entry in its own transaction.

use allot_store::audit::{AuditEntry, AuditFilter};
use allot_store::clock::stored_time;
use allot_store::model::Page;
use deadpool_postgres::{GenericClient, Pool};
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use crate::error::Res;
use crate::rows;

const AUDIT_COLS: &str =
    "id, actor, role, action, target_type, target_id, before, after, request_id, at";

/// Writes many entries with one statement.
pub(crate) const WRITE_ALL: &str = "INSERT INTO audit_log (id, actor, role, action,
        target_type, target_id, before, after, request_id, at)
    SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
        $6::text[], $7::jsonb[], $8::jsonb[], $9::text[], $10::timestamptz[])";

/// The column arrays of `WRITE_ALL`, borrowed from the entries.
#[derive(Default)]
pub(crate) struct AuditColumns<'p> {
    pub id: Vec<&'p str>,
    pub actor: Vec<&'p str>,
    pub role: Vec<&'p str>,
    pub action: Vec<&'p str>,
    pub target_type: Vec<&'p str>,
    pub target_id: Vec<&'p str>,
    pub before: Vec<Option<&'p serde_json::Value>>,
    pub after: Vec<Option<&'p serde_json::Value>>,
    pub request_id: Vec<Option<&'p str>>,
    pub at: Vec<chrono::DateTime<chrono::Utc>>,
}

impl<'p> AuditColumns<'p> {
    pub(crate) fn of(entries: &'p [AuditEntry]) -> Self {
        let mut c = AuditColumns::default();
        for e in entries {
            c.id.push(&e.id);
            c.actor.push(&e.actor);
            c.role.push(&e.role);
            c.action.push(&e.action);
            c.target_type.push(&e.target_type);
            c.target_id.push(&e.target_id);
            c.before.push(e.before.as_ref());
            c.after.push(e.after.as_ref());
            c.request_id.push(e.request_id.as_deref());
            c.at.push(stored_time(e.at));
        }
        c
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.id.is_empty()
    }

    pub(crate) fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        vec![
            &self.id,
            &self.actor,
            &self.role,
            &self.action,
            &self.target_type,
            &self.target_id,
            &self.before,
            &self.after,
            &self.request_id,
            &self.at,
        ]
    }
}

fn entry(r: &Row) -> Res<AuditEntry> {
    Ok(AuditEntry {
        id: r.try_get(0)?,
        actor: r.try_get(1)?,
        role: r.try_get(2)?,
        action: r.try_get(3)?,
        target_type: r.try_get(4)?,
        target_id: r.try_get(5)?,
        before: r.try_get(6)?,
        after: r.try_get(7)?,
        request_id: r.try_get(8)?,
        at: r.try_get(9)?,
    })
}

/// Filters ANDed; by id, after `page.after`, at most `page.limit`.
pub(crate) async fn list(pool: &Pool, filter: &AuditFilter, page: &Page) -> Res<Vec<AuditEntry>> {
    if page.limit == 0 {
        return Ok(Vec::new());
    }
    let after = rows::after(page);
    let limit = rows::limit(page);
    // Only the filters given become conditions, so each combination gets a
    // plan that can use its index.
    let mut given: Vec<(&str, &(dyn ToSql + Sync))> = Vec::new();
    if let Some(actor) = &filter.actor {
        given.push(("actor = $", actor));
    }
    if let Some(action) = &filter.action {
        given.push(("action = $", action));
    }
    if let Some(target_id) = &filter.target_id {
        given.push(("target_id = $", target_id));
    }
    if let Some(since) = &filter.since {
        given.push(("at >= $", since));
    }
    if let Some(until) = &filter.until {
        given.push(("at < $", until));
    }
    let mut params: Vec<&(dyn ToSql + Sync)> = vec![&after];
    let mut conditions = vec!["id > $1".to_string()];
    for (condition, param) in given {
        params.push(param);
        conditions.push(format!("{condition}{}", params.len()));
    }
    params.push(&limit);
    let sql = format!(
        "SELECT {AUDIT_COLS} FROM audit_log WHERE {} ORDER BY id LIMIT ${}",
        conditions.join(" AND "),
        params.len()
    );
    let client = pool.get().await?;
    let stmt = client.prepare_cached(&sql).await?;
    client
        .query(&stmt, &params)
        .await?
        .iter()
        .map(entry)
        .collect()
}
