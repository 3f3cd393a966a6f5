//! The baseline loop of a backend: the SQLite or the PostgreSQL one-transaction-per-use loop.

use std::path::Path;
use std::sync::Arc;

use anyhow::Result;

use crate::baseline_postgres::PgBaseline;
use crate::baseline_sqlite::SqliteBaseline;
use crate::cli::{Backend, Synchronous};
use crate::pg::{self, DropList};
use crate::scenarios::{Layout, LoadJob};
use crate::stats::{Outcome, Tally};
use crate::verify::BalanceRow;

pub enum Baseline {
    Sqlite(SqliteBaseline),
    Postgres(PgBaseline),
}

impl Baseline {
    /// A fresh database (`baseline.db` in `run_dir`, or `allot_bench_base_<tag>`) with `layout`.
    pub async fn prepare(
        backend: Backend,
        layout: Layout,
        run_dir: &Path,
        synchronous: Synchronous,
        pg_admin_url: &str,
        tag: &str,
        drops: &mut DropList,
    ) -> Result<Self> {
        match backend {
            Backend::Sqlite => {
                let path = run_dir.join("baseline.db");
                let base = tokio::task::spawn_blocking(move || {
                    SqliteBaseline::create(&path, synchronous, &layout)
                })
                .await??;
                Ok(Baseline::Sqlite(base))
            }
            Backend::Postgres => {
                let name = format!("allot_bench_base_{tag}");
                let url = pg::create_database(pg_admin_url, &name).await?;
                drops.push(name);
                Ok(Baseline::Postgres(PgBaseline::create(&url, &layout).await?))
            }
        }
    }

    pub fn target(&self) -> &'static str {
        match self {
            Baseline::Sqlite(_) => "sqlite loop",
            Baseline::Postgres(_) => "postgres loop",
        }
    }

    pub async fn rows(&self) -> Result<Vec<BalanceRow>> {
        match self {
            Baseline::Sqlite(base) => {
                let base = base.clone();
                tokio::task::spawn_blocking(move || base.rows()).await?
            }
            Baseline::Postgres(base) => base.rows().await,
        }
    }

    pub async fn run(
        &self,
        ids: Arc<Vec<String>>,
        job: LoadJob,
        tally: Arc<Tally>,
    ) -> Result<Outcome> {
        match self {
            Baseline::Sqlite(base) => {
                let base = base.clone();
                tokio::task::spawn_blocking(move || base.run(&ids, &job, &tally)).await?
            }
            Baseline::Postgres(base) => base.run(ids, &job, tally).await,
        }
    }

    pub async fn prefill(&self, pool_ids: Vec<String>, rows: u64) -> Result<()> {
        match self {
            Baseline::Sqlite(base) => {
                let base = base.clone();
                tokio::task::spawn_blocking(move || base.prefill_ledger(&pool_ids, rows)).await?
            }
            Baseline::Postgres(base) => base.prefill_ledger(&pool_ids, rows).await,
        }
    }
}
