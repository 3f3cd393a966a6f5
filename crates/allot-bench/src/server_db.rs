//! Direct access to the server's own database: balances and ledger sums for verification.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use rusqlite::{Connection, OpenFlags};

use crate::pg;
use crate::verify::BalanceRow;

/// Every balance with its entitlement's cap and the ledger sum of its current period.
const ROWS: &str = r#"
    SELECT b.entitlement_id,
           b.used_milli,
           CAST(COALESCE(b.carried_milli, 0) AS BIGINT),
           e.total_milli,
           CAST(e."restrict" AS INTEGER),
           CAST(COALESCE(s.total, 0) AS BIGINT)
    FROM balances b
    JOIN entitlements e ON e.id = b.entitlement_id
    LEFT JOIN (
        SELECT entitlement_id, period_index, SUM(quantity_milli) AS total
        FROM ledger GROUP BY entitlement_id, period_index
    ) s ON s.entitlement_id = b.entitlement_id AND s.period_index = b.period_index"#;

/// The server's database, from its `--db` URL.
#[derive(Debug, Clone)]
pub enum ServerDb {
    Sqlite(PathBuf),
    Postgres(String),
}

impl ServerDb {
    pub fn parse(url: &str) -> Result<Self> {
        if let Some(rest) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            let path = rest.split('?').next().unwrap_or_default();
            if path.is_empty() || path == ":memory:" {
                bail!("sqlite URL without a file path: {url}");
            }
            return Ok(ServerDb::Sqlite(PathBuf::from(path)));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(ServerDb::Postgres(url.to_owned()));
        }
        bail!("unsupported database URL {}", pg::redact(url))
    }

    /// Balance rows for verification (SQLite is opened read-only).
    pub async fn rows(&self) -> Result<Vec<BalanceRow>> {
        match self {
            ServerDb::Sqlite(path) => {
                let path = path.clone();
                tokio::task::spawn_blocking(move || sqlite_rows(&path)).await?
            }
            ServerDb::Postgres(url) => postgres_rows(url).await,
        }
    }
}

fn row_of(
    id: String,
    used: i64,
    carried: i64,
    total: Option<i64>,
    restrict: i64,
    ledger: i64,
) -> BalanceRow {
    BalanceRow {
        id,
        used_milli: used,
        ledger_milli: Some(ledger),
        cap_milli: total.map(|total| total.saturating_add(carried)),
        restricted: restrict != 0,
    }
}

fn sqlite_rows(path: &std::path::Path) -> Result<Vec<BalanceRow>> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .with_context(|| format!("opening {} read-only", path.display()))?;
    let mut statement = conn.prepare(ROWS)?;
    let rows = statement
        .query_map([], |row| {
            Ok(row_of(
                row.get(0)?,
                row.get(1)?,
                row.get(2)?,
                row.get(3)?,
                row.get(4)?,
                row.get(5)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

async fn postgres_rows(url: &str) -> Result<Vec<BalanceRow>> {
    let client = pg::connect(url).await?;
    let rows = client.query(ROWS, &[]).await.context("reading balances")?;
    Ok(rows
        .iter()
        .map(|row| {
            row_of(
                row.get(0),
                row.get(1),
                row.get(2),
                row.get(3),
                i64::from(row.get::<_, i32>(4)),
                row.get(5),
            )
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        match ServerDb::parse("sqlite:///tmp/x.db").unwrap() {
            ServerDb::Sqlite(path) => assert_eq!(path, PathBuf::from("/tmp/x.db")),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            ServerDb::parse("postgres://u@h/db").unwrap(),
            ServerDb::Postgres(_)
        ));
        match ServerDb::parse("sqlite://a.db?mode=rwc").unwrap() {
            ServerDb::Sqlite(path) => assert_eq!(path, PathBuf::from("a.db")),
            other => panic!("{other:?}"),
        }
        assert!(ServerDb::parse("sqlite::memory:").is_err());
        assert!(ServerDb::parse("mysql://x").is_err());
    }

    #[test]
    fn effective_cap_includes_carry() {
        let row = row_of("e".to_owned(), 5, 2, Some(10), 1, 5);
        assert_eq!(row.cap_milli, Some(12));
        assert!(row.restricted);
        assert_eq!(row_of("u".to_owned(), 5, 0, None, 0, 5).cap_milli, None);
    }
}
