//! Embedded migrations, applied once each, in name order.

use chrono::Utc;
use rusqlite::{params, Connection};

use crate::convert::ts;
use crate::error::Res;
use crate::tx::ImmediateTx;

/// (name, SQL), sorted by name. The names match the PostgreSQL backend's.
const MIGRATIONS: &[(&str, &str)] = &[
    (
        "0001_initial",
        include_str!("../migrations/0001_initial.sql"),
    ),
    ("0002_cases", include_str!("../migrations/0002_cases.sql")),
    ("0003_audit", include_str!("../migrations/0003_audit.sql")),
    ("0004_alerts", include_str!("../migrations/0004_alerts.sql")),
    (
        "0005_schedule",
        include_str!("../migrations/0005_schedule.sql"),
    ),
    (
        "0006_reports",
        include_str!("../migrations/0006_reports.sql"),
    ),
    (
        "0007_software",
        include_str!("../migrations/0007_software.sql"),
    ),
    (
        "0008_contracts",
        include_str!("../migrations/0008_contracts.sql"),
    ),
    (
        "0009_imports",
        include_str!("../migrations/0009_imports.sql"),
    ),
    (
        "0010_report_indexes",
        include_str!("../migrations/0010_report_indexes.sql"),
    ),
    (
        "0011_software_aggregate",
        include_str!("../migrations/0011_software_aggregate.sql"),
    ),
    (
        "0014_reservations_by_entitlement",
        include_str!("../migrations/0014_reservations_by_entitlement.sql"),
    ),
    ("0015_users", include_str!("../migrations/0015_users.sql")),
];

pub(crate) fn migrate(conn: &mut Connection) -> Res<()> {
    // BEGIN IMMEDIATE takes the write lock first, so processes migrating at
    // once run one after the other and the later ones find nothing to do.
    let tx = ImmediateTx::begin(conn)?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            name TEXT PRIMARY KEY,
            applied_at TEXT NOT NULL
        )",
    )?;
    for (name, sql) in MIGRATIONS {
        let applied = tx
            .prepare("SELECT 1 FROM schema_migrations WHERE name = ?1")?
            .exists([name])?;
        if !applied {
            tracing::info!(migration = name, "applying SQLite migration");
            tx.execute_batch(sql)?;
            tx.execute(
                "INSERT INTO schema_migrations (name, applied_at) VALUES (?1, ?2)",
                params![name, ts(Utc::now())],
            )?;
        }
    }
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn migrations_are_sorted_by_name() {
        let names: Vec<_> = super::MIGRATIONS.iter().map(|m| m.0).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(names, sorted);
    }
}
