//! Where the database is and how each connection is set up.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use allot_store::{StoreError, StoreResult};
use rusqlite::{Connection, OpenFlags};

use crate::error::Res;

/// `PRAGMA synchronous` for the writer: NORMAL may lose the last commits on
/// power loss (never on a crash of the process); FULL syncs every commit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Synchronous {
    #[default]
    Normal,
    Full,
}

impl Synchronous {
    fn pragma(self) -> &'static str {
        match self {
            Synchronous::Normal => "NORMAL",
            Synchronous::Full => "FULL",
        }
    }
}

impl FromStr for Synchronous {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "normal" => Ok(Synchronous::Normal),
            "full" => Ok(Synchronous::Full),
            _ => Err(format!("synchronous must be normal or full, not {s:?}")),
        }
    }
}

#[derive(Debug, Clone)]
pub struct SqliteOptions {
    pub synchronous: Synchronous,
    /// Read-only connections for concurrent reads; 0 sends reads through
    /// the writer.
    pub readers: usize,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            synchronous: Synchronous::Normal,
            readers: 4,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Location {
    File(PathBuf),
    /// A private in-memory database: only the writer connection sees it.
    Memory,
}

/// `sqlite://relative.db`, `sqlite:///absolute.db`, `sqlite:path`, or a
/// bare path; a query string (`?mode=rwc`) is ignored.
pub(crate) fn parse_url(url: &str) -> StoreResult<Location> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    let path = rest.split('?').next().unwrap_or_default();
    match path {
        "" => Err(StoreError::Backend(format!(
            "SQLite URL without a path: {url}"
        ))),
        ":memory:" => Ok(Location::Memory),
        _ => Ok(Location::File(PathBuf::from(path))),
    }
}

const BUSY: Duration = Duration::from_secs(5);
const STATEMENT_CACHE: usize = 128;
/// A backstop: `checkpoint.rs` checkpoints long before the WAL gets here.
const WAL_CHECKPOINT_PAGES: i64 = 50_000;
const WAL_SIZE_LIMIT: i64 = 256 * 1024 * 1024;

/// `cache_kib`: page cache of this connection; the writer's is larger as
/// every batch walks the ledger and key indexes.
fn tune(conn: &Connection, cache_kib: i64) -> Res<()> {
    conn.busy_timeout(BUSY)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    // Negative means KiB rather than pages.
    conn.pragma_update(None, "cache_size", -cache_kib)?;
    Ok(())
}

pub(crate) fn open_writer(location: &Location, synchronous: Synchronous) -> Res<Connection> {
    let conn = match location {
        Location::Memory => Connection::open_in_memory()?,
        Location::File(path) => {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .map_err(|e| StoreError::Backend(format!("creating {}: {e}", dir.display())))?;
            }
            Connection::open(path)?
        }
    };
    tune(&conn, 8 * 1024)?;
    let _mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    conn.pragma_update(None, "synchronous", synchronous.pragma())?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // The background checkpointer (checkpoint.rs) keeps the WAL short; the
    // writer itself checkpoints only if that falls ~200 MiB behind.
    conn.pragma_update(None, "wal_autocheckpoint", WAL_CHECKPOINT_PAGES)?;
    // After a checkpoint lets the WAL restart, shrink the file back.
    conn.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT)?;
    Ok(conn)
}

pub(crate) fn open_reader(path: &Path) -> Res<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    let conn = Connection::open_with_flags(path, flags)?;
    // Small: every commit of the writer invalidates a reader's cache, and
    // dropping a large cache costs time on every read transaction.
    tune(&conn, 1024)?;
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_paths() {
        let file = |p: &str| Some(Location::File(PathBuf::from(p)));
        assert_eq!(parse_url("sqlite:///tmp/a.db").ok(), file("/tmp/a.db"));
        assert_eq!(parse_url("sqlite://./data/a.db").ok(), file("./data/a.db"));
        assert_eq!(parse_url("sqlite://a.db?mode=rwc").ok(), file("a.db"));
        assert_eq!(parse_url("sqlite:a.db").ok(), file("a.db"));
        assert_eq!(parse_url("/var/a.db").ok(), file("/var/a.db"));
        assert_eq!(parse_url("sqlite::memory:").ok(), Some(Location::Memory));
        assert!(parse_url("sqlite://").is_err());
    }

    #[test]
    fn synchronous_parses_case_insensitively() {
        assert_eq!("FULL".parse(), Ok(Synchronous::Full));
        assert_eq!("normal".parse(), Ok(Synchronous::Normal));
        assert!("off".parse::<Synchronous>().is_err());
    }
}
