//! The allot server under test: a child `allot serve` restarted per scenario, or a `--url`.

use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Result};

use crate::api::Api;
use crate::cli::{Backend, Synchronous};
use crate::ledger_fill;
use crate::pg::{self, DropList};
use crate::scenarios::Layout;
use crate::server::{RunningServer, ServerSpec};
use crate::server_db::ServerDb;
use crate::verify::{BalanceRow, MILLI};

pub enum Allot {
    /// A child `allot serve` on a fresh database, restarted for every scenario.
    Managed {
        spec: ServerSpec,
        key: String,
        db: ServerDb,
    },
    /// A server given with `--url`; verification reads `db` if given, else only the API.
    External {
        url: String,
        key: String,
        db: Option<ServerDb>,
    },
}

/// Where a managed server keeps its data.
pub struct ManagedSetup<'a> {
    pub bin: &'a Path,
    pub run_dir: &'a Path,
    pub pg_admin_url: &'a str,
    pub tag: &'a str,
    pub synchronous: Synchronous,
}

/// A started (or external) server: its process if ours, base URL and key.
pub struct Started {
    pub server: Option<RunningServer>,
    pub url: String,
    pub key: String,
}

impl Started {
    pub fn pid(&self) -> Option<u32> {
        self.server.as_ref().map(RunningServer::pid)
    }

    pub fn peak_rss_kib(&self) -> Option<u64> {
        self.server.as_ref().and_then(RunningServer::peak_rss_kib)
    }

    pub async fn stop(self) -> Result<()> {
        match self.server {
            Some(server) => server.stop().await,
            None => Ok(()),
        }
    }
}

impl Allot {
    /// A fresh database for `backend`, migrated, with an admin key.
    pub async fn managed(
        backend: Backend,
        setup: &ManagedSetup<'_>,
        drops: &mut DropList,
    ) -> Result<Self> {
        let db_url = match backend {
            Backend::Sqlite => {
                let path = setup.run_dir.join("allot-server.db");
                format!("sqlite://{}", path.display())
            }
            Backend::Postgres => {
                let name = format!("allot_bench_srv_{}", setup.tag);
                let url = pg::create_database(setup.pg_admin_url, &name).await?;
                drops.push(name);
                url
            }
        };
        let spec = ServerSpec {
            bin: setup.bin.to_path_buf(),
            db_url: db_url.clone(),
            synchronous: setup.synchronous,
            log: setup.run_dir.join(format!("allot-{}.log", backend.name())),
        };
        let key = spec.prepare()?;
        Ok(Allot::Managed {
            spec,
            key,
            db: ServerDb::parse(&db_url)?,
        })
    }

    pub fn external(url: &str, key: &str, server_db: Option<&str>) -> Result<Self> {
        Ok(Allot::External {
            url: url.to_owned(),
            key: key.to_owned(),
            db: server_db.map(ServerDb::parse).transpose()?,
        })
    }

    /// Whether the server under test keeps its data in PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        match self {
            Allot::Managed { db, .. } | Allot::External { db: Some(db), .. } => {
                matches!(db, ServerDb::Postgres(_))
            }
            Allot::External { db: None, .. } => false,
        }
    }

    /// Starts a fresh server (managed) or hands out the external one.
    pub async fn start(&self) -> Result<Started> {
        match self {
            Allot::Managed { spec, key, .. } => {
                let server = spec.start().await?;
                Ok(Started {
                    url: server.base_url.clone(),
                    server: Some(server),
                    key: key.clone(),
                })
            }
            Allot::External { url, key, .. } => Ok(Started {
                server: None,
                url: url.clone(),
                key: key.clone(),
            }),
        }
    }

    /// Creates the layout's entitlements over the API; returns their ids in layout order.
    pub async fn create_entitlements(
        &self,
        layout: &Layout,
        parallel: usize,
    ) -> Result<Vec<String>> {
        let began = Instant::now();
        let started = self.start().await?;
        let created = async {
            Api::new(&started.url, &started.key)?
                .create_layout(layout, parallel)
                .await
        }
        .await;
        started.stop().await?;
        let ids = created?;
        eprintln!(
            "setup: {} entitlements created over HTTP in {:.1}s",
            ids.len(),
            began.elapsed().as_secs_f64()
        );
        Ok(ids)
    }

    /// Balances to verify, and how they were read (`database` or `api`).
    pub async fn rows(
        &self,
        ids: &[String],
        parallel: usize,
    ) -> Result<(Vec<BalanceRow>, &'static str)> {
        match self {
            Allot::Managed { db, .. } | Allot::External { db: Some(db), .. } => {
                Ok((db.rows().await?, "database"))
            }
            Allot::External { url, key, db: None } => {
                let balances = Api::new(url, key)?.balances(ids, parallel).await?;
                let milli = |units: f64| (units * MILLI as f64).round() as i64;
                let rows = ids
                    .iter()
                    .zip(balances)
                    .map(|(id, balance)| BalanceRow {
                        id: id.clone(),
                        used_milli: milli(balance.used),
                        ledger_milli: None,
                        cap_milli: balance.total.map(milli),
                        restricted: true,
                    })
                    .collect();
                Ok((rows, "api"))
            }
        }
    }

    /// `--ledger-rows`: directly in the server's database (a managed server is stopped now).
    pub async fn prefill(&self, pool_ids: &[String], rows: u64) -> Result<()> {
        match self {
            Allot::Managed { db, .. } => ledger_fill::prefill_server(db, pool_ids, rows).await,
            Allot::External { db: Some(db), .. } => {
                eprintln!("warning: pre-filling the ledger of a running server");
                ledger_fill::prefill_server(db, pool_ids, rows).await
            }
            Allot::External { db: None, .. } => {
                bail!("--ledger-rows with --url needs --server-db")
            }
        }
    }
}
