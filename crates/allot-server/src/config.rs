//! The server's settings. The CLI layers them: defaults, then an optional
//! TOML file, then `ALLOT_*` environment variables, then flags.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `sqlite://path` (the embedded default) or `postgres://…`.
    pub db: String,
    pub listen: String,
    /// SQLite durability: `normal` survives a process crash, `full` a power loss.
    pub sqlite_synchronous: String,
    /// Most usage requests decided in one transaction.
    pub max_batch: usize,
    /// Batches in flight at once; default 1 on SQLite, 4 on PostgreSQL.
    pub writers: Option<usize>,
    pub pg_pool_size: usize,
    /// How often background jobs run.
    pub job_interval_seconds: u64,
    /// Installations not seen for this many days stop counting in reconciliation.
    pub install_stale_days: u32,
    /// How often the scheduled reconciliation of every software model runs.
    pub reconcile_every_seconds: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            db: "sqlite://./allot.db".into(),
            listen: "127.0.0.1:8080".into(),
            sqlite_synchronous: "normal".into(),
            max_batch: 512,
            writers: None,
            pg_pool_size: 16,
            job_interval_seconds: 30,
            install_stale_days: 30,
            reconcile_every_seconds: 86_400,
        }
    }
}

impl Config {
    pub fn is_postgres(&self) -> bool {
        self.db.starts_with("postgres://") || self.db.starts_with("postgresql://")
    }

    /// The configuration with any database password replaced, for printing and logs.
    pub fn redacted(&self) -> Config {
        Config {
            db: redact_url(&self.db),
            ..self.clone()
        }
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let Some((userinfo, host)) = rest.rsplit_once('@') else {
        return url.to_string();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_print() {
        assert_eq!(
            redact_url("postgres://allot:s3cret@db:5432/allot"),
            "postgres://allot:***@db:5432/allot"
        );
        assert_eq!(
            redact_url("postgres://allot@db/allot"),
            "postgres://allot@db/allot"
        );
        assert_eq!(redact_url("sqlite://./allot.db"), "sqlite://./allot.db");
    }
}
