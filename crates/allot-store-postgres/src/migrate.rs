//! Schema migrations, embedded in the binary.

use deadpool_postgres::Pool;

use crate::error::Res;

/// Same names as the SQLite backend's, applied in this order.
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

/// Any constant shared by every instance: it serializes concurrent migrators.
const MIGRATION_LOCK: i64 = 0x616c_6c6f_745f_6d69;

pub(crate) async fn migrate(pool: &Pool) -> Res<()> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    // Taken before anything else, even the bookkeeping table: two instances
    // creating it at once would otherwise collide in the catalog.
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            name TEXT PRIMARY KEY,
            applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
        )",
    )
    .await?;
    let applied: Vec<String> = tx
        .query("SELECT name FROM schema_migrations", &[])
        .await?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()?;
    for (name, sql) in MIGRATIONS {
        if applied.iter().any(|a| a == name) {
            continue;
        }
        tracing::info!(migration = name, "applying migration");
        tx.batch_execute(sql).await?;
        tx.execute("INSERT INTO schema_migrations (name) VALUES ($1)", &[name])
            .await?;
    }
    tx.commit().await?;
    Ok(())
}
