//! Layered configuration: defaults, then a TOML file, then `ALLOT_*`
//! environment variables, then flags (clap reads the last two).

use std::path::PathBuf;

use allot_server::Config;
use anyhow::Context;
use clap::Args;

#[derive(Debug, Clone, Args, Default)]
pub struct ConfigArgs {
    /// A TOML file with any of the settings below.
    #[arg(long, env = "ALLOT_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Database URL: sqlite://path (default sqlite://./allot.db) or postgres://…
    #[arg(long, env = "ALLOT_DATABASE_URL", global = true)]
    pub db: Option<String>,
    /// Address to listen on (host:port; port 0 picks a free one).
    #[arg(long, env = "ALLOT_LISTEN", global = true)]
    pub listen: Option<String>,
    /// SQLite durability: normal (survives a process crash) or full (survives power loss).
    #[arg(long, env = "ALLOT_SQLITE_SYNCHRONOUS", global = true)]
    pub sqlite_synchronous: Option<String>,
    /// Most usage requests decided in one transaction.
    #[arg(long, env = "ALLOT_MAX_BATCH", global = true)]
    pub max_batch: Option<usize>,
    /// Write batches in flight at once (default 1 on SQLite, 4 on PostgreSQL).
    #[arg(long, env = "ALLOT_WRITERS", global = true)]
    pub writers: Option<usize>,
    #[arg(long, env = "ALLOT_PG_POOL_SIZE", global = true)]
    pub pg_pool_size: Option<usize>,
    #[arg(long, env = "ALLOT_JOB_INTERVAL_SECONDS", global = true)]
    pub job_interval_seconds: Option<u64>,
    /// The organization's IANA time zone (default UTC): when days, periods and scheduled events turn.
    #[arg(long, env = "ALLOT_TIMEZONE", global = true)]
    pub timezone: Option<String>,
    /// Days before an entitlement's end to emit entitlement.expiring_soon (default 30,7; empty for none).
    #[arg(long, env = "ALLOT_EXPIRING_SOON_DAYS", global = true)]
    pub expiring_soon_days: Option<String>,
    /// Let webhook URLs reach loopback, private and link-local addresses.
    #[arg(long, env = "ALLOT_WEBHOOK_ALLOW_PRIVATE", global = true)]
    pub webhook_allow_private: Option<bool>,
    /// How long one webhook delivery may take (default 10 000).
    #[arg(long, env = "ALLOT_WEBHOOK_TIMEOUT_MS", global = true)]
    pub webhook_timeout_ms: Option<u64>,
    /// SMTP server for alert e-mail: smtp://[user:password@]host:port.
    #[arg(long, env = "ALLOT_SMTP_URL", global = true, hide_env_values = true)]
    pub smtp_url: Option<String>,
    /// The sender of alert e-mail.
    #[arg(long, env = "ALLOT_SMTP_FROM", global = true)]
    pub smtp_from: Option<String>,
    /// Installations not seen for this many days stop counting in reconciliation (default 30).
    #[arg(long, env = "ALLOT_INSTALL_STALE_DAYS", global = true)]
    pub install_stale_days: Option<u32>,
    /// Seconds between scheduled reconciliations of every software model (default 86400, daily).
    #[arg(long, env = "ALLOT_RECONCILE_EVERY", global = true)]
    pub reconcile_every: Option<u64>,
    /// Requests handled at once; more are answered 503 overloaded (default 128).
    #[arg(long, env = "ALLOT_MAX_REQUESTS", global = true)]
    pub max_requests: Option<usize>,
    /// Adapt the requests handled at once to latency, between ALLOT_MIN_REQUESTS and ALLOT_MAX_REQUESTS (default false).
    #[arg(long, env = "ALLOT_ADAPTIVE_LIMIT", global = true)]
    pub adaptive_limit: Option<bool>,
    /// The least the adaptive limit on requests at once shrinks to (default 32).
    #[arg(long, env = "ALLOT_MIN_REQUESTS", global = true)]
    pub min_requests: Option<usize>,
    /// Writes queued for the write path at most; more are answered 503 overloaded (default 2048).
    #[arg(long, env = "ALLOT_WRITE_QUEUE", global = true)]
    pub write_queue: Option<usize>,
    /// Refuse writes 503 overloaded while the write queue's head waits longer than this (ms; 0: off, the default).
    #[arg(long, env = "ALLOT_WRITE_QUEUE_DELAY_MS", global = true)]
    pub write_queue_delay_ms: Option<u64>,
    /// Connections served at once; requests on more are answered 503 overloaded and closed (default 1024).
    #[arg(long, env = "ALLOT_MAX_CONNECTIONS", global = true)]
    pub max_connections: Option<usize>,
    /// Close a keep-alive connection idle for this long, in seconds (default 60; 0: never).
    #[arg(long, env = "ALLOT_IDLE_TIMEOUT_SECS", global = true)]
    pub idle_timeout_secs: Option<u64>,
    /// How long a resolved API key is trusted before the database is asked again, in ms (default 1000; 0: always ask).
    #[arg(long, env = "ALLOT_KEY_CACHE_MS", global = true)]
    pub key_cache_ms: Option<u64>,
}

impl ConfigArgs {
    pub fn resolve(&self) -> anyhow::Result<Config> {
        let mut config = match &self.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?
            }
            None => Config::default(),
        };
        if let Some(v) = &self.db {
            config.db = v.clone();
        }
        if let Some(v) = &self.listen {
            config.listen = v.clone();
        }
        if let Some(v) = &self.sqlite_synchronous {
            config.sqlite_synchronous = v.to_ascii_lowercase();
        }
        if let Some(v) = self.max_batch {
            config.max_batch = v;
        }
        if let Some(v) = self.max_requests {
            config.max_requests = v;
        }
        if let Some(v) = self.adaptive_limit {
            config.adaptive_limit = v;
        }
        if let Some(v) = self.min_requests {
            config.min_requests = v;
        }
        if let Some(v) = self.write_queue {
            config.write_queue = v;
        }
        if let Some(v) = self.write_queue_delay_ms {
            config.write_queue_delay_ms = v;
        }
        if let Some(v) = self.max_connections {
            config.max_connections = v;
        }
        if let Some(v) = self.idle_timeout_secs {
            config.idle_timeout_secs = v;
        }
        if let Some(v) = self.key_cache_ms {
            config.key_cache_ms = v;
        }
        if let Some(v) = self.writers {
            config.writers = Some(v);
        }
        if let Some(v) = self.pg_pool_size {
            config.pg_pool_size = v;
        }
        if let Some(v) = self.job_interval_seconds {
            config.job_interval_seconds = v;
        }
        if let Some(v) = &self.timezone {
            config.timezone = v.clone();
        }
        if let Some(v) = &self.expiring_soon_days {
            config.expiring_soon_days = v.clone();
        }
        config.zone()?;
        config.expiring_soon()?;
        if let Some(v) = self.webhook_allow_private {
            config.alerts.webhook_allow_private = v;
        }
        if let Some(v) = self.webhook_timeout_ms {
            config.alerts.webhook_timeout_ms = v;
        }
        if let Some(v) = &self.smtp_url {
            config.alerts.smtp_url = Some(v.clone());
        }
        if let Some(v) = &self.smtp_from {
            config.alerts.smtp_from = v.clone();
        }
        if let Some(v) = self.install_stale_days {
            config.install_stale_days = v;
        }
        if let Some(v) = self.reconcile_every {
            config.reconcile_every_seconds = v;
        }
        anyhow::ensure!(
            matches!(config.sqlite_synchronous.as_str(), "normal" | "full"),
            "sqlite_synchronous must be normal or full"
        );
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_the_file_and_the_file_overrides_defaults() {
        let dir = std::env::temp_dir().join(format!("allot-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("allot.toml");
        std::fs::write(&file, "listen = \"0.0.0.0:9000\"\nmax_batch = 64\n").unwrap();
        let args = ConfigArgs {
            config: Some(file),
            max_batch: Some(8),
            ..Default::default()
        };
        let config = args.resolve().unwrap();
        assert_eq!(config.listen, "0.0.0.0:9000");
        assert_eq!(config.max_batch, 8);
        assert_eq!(config.db, Config::default().db);
    }

    #[test]
    fn the_time_zone_and_notice_days_are_checked_before_serving() {
        let args = ConfigArgs {
            timezone: Some("Europe/Berlin".into()),
            expiring_soon_days: Some("60,14".into()),
            ..Default::default()
        };
        let config = args.resolve().unwrap();
        assert_eq!(config.timezone, "Europe/Berlin");
        assert_eq!(config.expiring_soon().unwrap().to_string(), "60,14");
        for bad in [
            ConfigArgs {
                timezone: Some("Europe/Atlantis".into()),
                ..Default::default()
            },
            ConfigArgs {
                expiring_soon_days: Some("soon".into()),
                ..Default::default()
            },
        ] {
            assert!(bad.resolve().is_err());
        }
    }

    #[test]
    fn unknown_settings_in_the_file_are_refused() {
        let dir = std::env::temp_dir().join(format!("allot-cfg-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("allot.toml");
        std::fs::write(&file, "lisen = \"x\"\n").unwrap();
        assert!(ConfigArgs {
            config: Some(file),
            ..Default::default()
        }
        .resolve()
        .is_err());
    }
}
