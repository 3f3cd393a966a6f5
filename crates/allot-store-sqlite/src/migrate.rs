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
    (
        "0016_reconciliation_storage",
        include_str!("../migrations/0016_reconciliation_storage.sql"),
    ),
    (
        "0017_ledger_days",
        include_str!("../migrations/0017_ledger_days.sql"),
    ),
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

    /// `0016` rebuilds `installations` clustered on its primary key: every
    /// row comes through, and the table has no rowid left.
    #[test]
    fn installations_survive_their_clustering() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let (before, after): (Vec<_>, Vec<_>) = super::MIGRATIONS
            .iter()
            .partition(|(name, _)| *name < "0016");
        assert!(!after.is_empty());
        for (_, sql) in &before {
            conn.execute_batch(sql).unwrap();
        }
        conn.execute_batch(
            "INSERT INTO software_models (id, publisher, product, created_at, updated_at)
                 VALUES ('swm_a', 'P', 'Q', 't', 't');
             INSERT INTO installations (software_model_id, device, user_name, cores, seen_at)
                 VALUES ('swm_a', 'd2', 'ann', 4, 's2'), ('swm_a', 'd1', NULL, NULL, 's1');",
        )
        .unwrap();
        let rows =
            |conn: &rusqlite::Connection| -> Vec<(String, Option<String>, Option<i64>, String)> {
                let mut statement = conn
                    .prepare(
                        "SELECT device, user_name, cores, seen_at FROM installations
                     WHERE software_model_id = 'swm_a' ORDER BY device",
                    )
                    .unwrap();
                statement
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                    .unwrap()
                    .collect::<rusqlite::Result<_>>()
                    .unwrap()
            };
        let kept = rows(&conn);
        assert!(conn.prepare("SELECT rowid FROM installations").is_ok());
        for (_, sql) in &after {
            conn.execute_batch(sql).unwrap();
        }
        assert_eq!(rows(&conn), kept);
        assert_eq!(kept.len(), 2);
        assert!(
            conn.prepare("SELECT rowid FROM installations").is_err(),
            "WITHOUT ROWID"
        );
        let duplicate = conn.execute(
            "INSERT INTO installations (software_model_id, device, seen_at) VALUES ('swm_a', 'd1', 's3')",
            [],
        );
        assert!(duplicate.is_err(), "one row per model and device");
    }

    /// `0017` sums the ledger already there per entitlement and UTC day.
    #[test]
    fn ledger_days_start_from_the_ledger() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let (before, after): (Vec<_>, Vec<_>) = super::MIGRATIONS
            .iter()
            .partition(|(name, _)| *name < "0017");
        for (_, sql) in &before {
            conn.execute_batch(sql).unwrap();
        }
        conn.execute_batch(
            "PRAGMA foreign_keys = OFF;
             INSERT INTO ledger (id, entitlement_id, period_index, quantity_milli, reason, actor,
                 created_at) VALUES
                 ('l1', 'ent_a', 0, 2000, 'usage', 'k', '2026-01-05T10:00:00.000000Z'),
                 ('l2', 'ent_a', 0, 500, 'usage', 'k', '2026-01-05T23:59:59.999999Z'),
                 ('l3', 'ent_a', 0, 1000, 'usage', 'k', '2026-01-06T00:00:00.000000Z'),
                 ('l4', 'ent_b', 0, -250, 'adjustment', 'k', '2026-01-05T12:00:00.000000Z');",
        )
        .unwrap();
        for (_, sql) in &after {
            conn.execute_batch(sql).unwrap();
        }
        let days: Vec<(String, String, i64)> = conn
            .prepare("SELECT entitlement_id, day, used_milli FROM ledger_days ORDER BY 1, 2")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        let row = |id: &str, day: &str, milli| (id.to_string(), day.to_string(), milli);
        assert_eq!(
            days,
            vec![
                row("ent_a", "2026-01-05", 2500),
                row("ent_a", "2026-01-06", 1000),
                row("ent_b", "2026-01-05", -250),
            ]
        );
    }
}
