//! SQLite baseline: N threads, each with its own connection, one `BEGIN IMMEDIATE` transaction per use.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rusqlite::{params, Connection, OpenFlags};

use crate::cli::Synchronous;
use crate::scenarios::{Layout, LoadJob};
use crate::stats::{Clock, Outcome, Tally, WorkerResult};
use crate::verify::{BalanceRow, MILLI};

const SCHEMA: &str = "
    PRAGMA journal_mode = WAL;
    CREATE TABLE balances (
        entitlement_id TEXT PRIMARY KEY,
        cap INTEGER,
        used INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE ledger (
        id INTEGER PRIMARY KEY,
        entitlement_id TEXT NOT NULL,
        quantity INTEGER NOT NULL,
        created_at INTEGER NOT NULL
    );
    CREATE INDEX ledger_entitlement ON ledger (entitlement_id);
    CREATE TABLE idempotency (
        key TEXT PRIMARY KEY,
        entitlement_id TEXT NOT NULL,
        created_at INTEGER NOT NULL
    );
";

pub(crate) const UPDATE: &str = "UPDATE balances SET used = used + ?1
    WHERE entitlement_id = ?2 AND (cap IS NULL OR used + ?1 <= cap)";
pub(crate) const INSERT_LEDGER: &str =
    "INSERT INTO ledger (entitlement_id, quantity, created_at) VALUES (?1, ?2, ?3)";
pub(crate) const INSERT_IDEMPOTENCY: &str =
    "INSERT INTO idempotency (key, entitlement_id, created_at) VALUES (?1, ?2, ?3)";

/// Ledger, balance sum and cap of every entitlement, in milli-units.
const ROWS: &str = "
    SELECT b.entitlement_id, b.used, b.cap, CAST(COALESCE(s.total, 0) AS INTEGER)
    FROM balances b
    LEFT JOIN (SELECT entitlement_id, SUM(quantity) AS total FROM ledger GROUP BY entitlement_id) s
        ON s.entitlement_id = b.entitlement_id";

#[derive(Debug, Clone)]
pub struct SqliteBaseline {
    path: PathBuf,
    synchronous: Synchronous,
}

impl SqliteBaseline {
    /// Creates a fresh database file with the layout's entitlements (caps in milli-units).
    pub fn create(path: &Path, synchronous: Synchronous, layout: &Layout) -> Result<Self> {
        if path.exists() {
            std::fs::remove_file(path)?;
        }
        let baseline = SqliteBaseline {
            path: path.to_path_buf(),
            synchronous,
        };
        let mut conn = baseline.open()?;
        conn.execute_batch(SCHEMA)?;
        let tx = conn.transaction()?;
        {
            let mut insert =
                tx.prepare("INSERT INTO balances (entitlement_id, cap) VALUES (?1, ?2)")?;
            for (index, id) in layout.baseline_ids().iter().enumerate() {
                let cap = i64::try_from(layout.cap_of(index))? * MILLI;
                insert.execute(params![id, cap])?;
            }
        }
        tx.commit()?;
        Ok(baseline)
    }

    fn open(&self) -> Result<Connection> {
        let conn = Connection::open(&self.path)
            .with_context(|| format!("opening {}", self.path.display()))?;
        conn.busy_timeout(Duration::from_secs(60))?;
        conn.pragma_update(None, "synchronous", self.synchronous.pragma())?;
        Ok(conn)
    }

    /// Runs the use loop on `job.concurrency` threads (blocking).
    pub fn run(&self, ids: &[String], job: &LoadJob, tally: &Tally) -> Result<Outcome> {
        let clock = Clock::start(job.stop, job.warmup);
        let results = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..job.concurrency)
                .map(|slot| {
                    let seed = rand::thread_rng().gen::<u64>() ^ slot as u64;
                    let clock = &clock;
                    scope.spawn(move || self.worker(ids, job, clock, tally, seed))
                })
                .collect();
            handles
                .into_iter()
                .map(|handle| match handle.join() {
                    Ok(result) => result,
                    Err(_) => Err(anyhow::anyhow!("sqlite baseline worker panicked")),
                })
                .collect::<Result<Vec<_>>>()
        })?;
        Outcome::merge(&clock, results)
    }

    fn worker(
        &self,
        ids: &[String],
        job: &LoadJob,
        clock: &Clock,
        tally: &Tally,
        seed: u64,
    ) -> Result<WorkerResult> {
        let conn = self.open()?;
        let mut rng = StdRng::seed_from_u64(seed);
        let mut result = WorkerResult::new();
        while clock.next_ticket() {
            let index = job.pick.next(&mut rng);
            let key = format!("{:032x}", rng.gen::<u128>());
            tally.sent(index);
            let began = Instant::now();
            let used = use_once(&conn, &ids[index], &key);
            let done = Instant::now();
            match used {
                Ok(true) => {
                    tally.accepted(index);
                    result.answered(clock, began, done, false);
                }
                Ok(false) => result.answered(clock, began, done, true),
                Err(err) => {
                    tally.in_doubt(index);
                    if !conn.is_autocommit() {
                        let _ = conn.execute_batch("ROLLBACK");
                    }
                    result.counts.add_unexpected(format!("sqlite: {err}"));
                }
            }
        }
        Ok(result)
    }

    /// Adds `rows` ledger rows of 1 unit spread round-robin over `pool_ids`, with one
    /// INSERT … SELECT over a recursive CTE, and the same sums into `used`.
    pub fn prefill_ledger(&self, pool_ids: &[String], rows: u64) -> Result<()> {
        if pool_ids.is_empty() || rows == 0 {
            return Ok(());
        }
        let mut conn = self.open()?;
        let tx = conn.transaction()?;
        let (rows, pool) = (i64::try_from(rows)?, i64::try_from(pool_ids.len())?);
        tx.execute_batch("CREATE TEMP TABLE bench_pool (n INTEGER PRIMARY KEY, id TEXT NOT NULL)")?;
        {
            let mut insert = tx.prepare("INSERT INTO bench_pool (n, id) VALUES (?1, ?2)")?;
            for (n, id) in pool_ids.iter().enumerate() {
                insert.execute(params![i64::try_from(n)?, id])?;
            }
        }
        tx.execute(
            "WITH RECURSIVE seq(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM seq WHERE n + 1 < ?1)
             INSERT INTO ledger (entitlement_id, quantity, created_at)
             SELECT p.id, ?3, 0 FROM seq JOIN bench_pool p ON p.n = seq.n % ?2",
            params![rows, pool, MILLI],
        )?;
        tx.execute(
            "UPDATE balances SET used = used + ?3 * (?1 / ?2 + (p.n < ?1 % ?2))
             FROM bench_pool p WHERE balances.entitlement_id = p.id",
            params![rows, pool, MILLI],
        )?;
        tx.execute_batch("DROP TABLE bench_pool")?;
        tx.commit()?;
        Ok(())
    }

    /// Every balance with its ledger sum, read through a read-only connection.
    pub fn rows(&self) -> Result<Vec<BalanceRow>> {
        let conn = Connection::open_with_flags(&self.path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        let mut statement = conn.prepare(ROWS)?;
        let rows = statement
            .query_map([], |row| {
                Ok(BalanceRow {
                    id: row.get(0)?,
                    used_milli: row.get(1)?,
                    cap_milli: row.get(2)?,
                    ledger_milli: Some(row.get(3)?),
                    restricted: true,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }
}

/// One use as its own transaction: true if applied, false if it would exceed the cap.
fn use_once(conn: &Connection, id: &str, key: &str) -> rusqlite::Result<bool> {
    let now = unix_millis();
    conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
    let changed = conn.prepare_cached(UPDATE)?.execute(params![MILLI, id])?;
    if changed == 0 {
        conn.prepare_cached("ROLLBACK")?.execute([])?;
        return Ok(false);
    }
    conn.prepare_cached(INSERT_LEDGER)?
        .execute(params![id, MILLI, now])?;
    conn.prepare_cached(INSERT_IDEMPOTENCY)?
        .execute(params![key, id, now])?;
    conn.prepare_cached("COMMIT")?.execute([])?;
    Ok(true)
}

pub(crate) fn unix_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenarios::{Op, Pick};
    use crate::stats::Stop;
    use crate::verify::{check, used_by_id};

    fn temp_db(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("allot-bench-test-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("base.db")
    }

    #[test]
    fn exhaust_stops_exactly_at_cap_and_verifies() {
        let path = temp_db("exhaust");
        let layout = Layout {
            pool: 4,
            exhaust_cap: 50,
        };
        let baseline = SqliteBaseline::create(&path, Synchronous::Normal, &layout).unwrap();
        let ids = layout.baseline_ids();
        baseline.prefill_ledger(&ids[..layout.pool], 10).unwrap();
        let before = used_by_id(&baseline.rows().unwrap());
        let tally = Tally::new(ids.len());
        let job = LoadJob {
            op: Op::Usage,
            pick: Pick::Single(layout.exhaust()),
            concurrency: 8,
            stop: Stop::Requests(100),
            warmup: Duration::ZERO,
        };
        let outcome = baseline.run(&ids, &job, &tally).unwrap();
        assert_eq!(outcome.counts.ok, 50);
        assert_eq!(outcome.counts.refused, 50);
        assert_eq!(outcome.counts.unexpected_total(), 0);
        let rows = baseline.rows().unwrap();
        let verdict = check("database", &rows, &ids, &before, &tally);
        assert!(verdict.valid, "{:?}", verdict.problems);
        let pool_used: i64 = rows.iter().take(4).map(|r| r.used_milli).sum();
        assert_eq!(pool_used, 10 * MILLI);
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn uniform_run_for_a_duration() {
        let path = temp_db("uniform");
        let layout = Layout {
            pool: 16,
            exhaust_cap: 1,
        };
        let baseline = SqliteBaseline::create(&path, Synchronous::Normal, &layout).unwrap();
        let ids = layout.baseline_ids();
        let tally = Tally::new(ids.len());
        let job = LoadJob {
            op: Op::Usage,
            pick: Pick::Uniform(layout.pool),
            concurrency: 4,
            stop: Stop::For(Duration::from_millis(200)),
            warmup: Duration::from_millis(50),
        };
        let outcome = baseline.run(&ids, &job, &tally).unwrap();
        assert!(outcome.summary.requests > 0);
        let verdict = check(
            "database",
            &baseline.rows().unwrap(),
            &ids,
            &Default::default(),
            &tally,
        );
        assert!(verdict.valid, "{:?}", verdict.problems);
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }
}
