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
    /// The organization's IANA time zone: it decides which day it is, so
    /// when dates, periods and scheduled events turn.
    pub timezone: String,
    /// Days before an entitlement's end on which `entitlement.expiring_soon`
    /// is emitted, comma-separated; empty for none.
    pub expiring_soon_days: String,
    /// The `[alerts]` table.
    pub alerts: AlertSettings,
    /// Installations not seen for this many days stop counting in reconciliation.
    pub install_stale_days: u32,
    /// How often the scheduled reconciliation of every software model runs.
    pub reconcile_every_seconds: u64,
    /// Requests handled at once at most; one more is answered 503 `overloaded`.
    pub max_requests: usize,
    /// The limit on requests at once adapts to latency, between
    /// `min_requests` and `max_requests` (`shed.rs`); off: `max_requests`.
    pub adaptive_limit: bool,
    /// The least the adaptive limit shrinks to.
    pub min_requests: usize,
    /// Writes waiting for the write path at most; one more is answered 503 `overloaded`.
    pub write_queue: usize,
    /// Writes are refused 503 `overloaded` while the write queue's head
    /// waits longer than this (milliseconds; 0: off, only `write_queue` bounds it).
    pub write_queue_delay_ms: u64,
    /// Connections served at once; on one more, every request is answered
    /// 503 `overloaded` and the connection closed (`connections.rs`).
    pub max_connections: usize,
    /// A keep-alive connection with no request for this long is closed
    /// (seconds; 0: never), so idle ones cannot hold the connection limit.
    pub idle_timeout_secs: u64,
    /// How long a resolved API key is trusted without asking the database
    /// again (milliseconds; 0: every request asks). See `auth::KeyCache`.
    pub key_cache_ms: u64,
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
            timezone: "UTC".into(),
            expiring_soon_days: "30,7".into(),
            alerts: AlertSettings::default(),
            install_stale_days: 30,
            reconcile_every_seconds: 86_400,
            max_requests: crate::shed::DEFAULT_MAX_REQUESTS,
            adaptive_limit: false,
            min_requests: crate::shed::DEFAULT_MIN_REQUESTS,
            write_queue: allot_store::write_path::DEFAULT_QUEUE,
            write_queue_delay_ms: 0,
            max_connections: crate::connections::DEFAULT_MAX_CONNECTIONS,
            idle_timeout_secs: crate::connections::DEFAULT_IDLE_TIMEOUT_SECS,
            key_cache_ms: crate::auth::DEFAULT_KEY_CACHE_MS,
        }
    }
}

impl Config {
    pub fn is_postgres(&self) -> bool {
        self.db.starts_with("postgres://") || self.db.starts_with("postgresql://")
    }

    /// The organization's time zone, parsed.
    pub fn zone(&self) -> Result<allot_core::zone::Tz, allot_core::zone::UnknownZone> {
        allot_core::zone::parse_zone(&self.timezone)
    }

    /// The expiring-soon notice days, parsed.
    pub fn expiring_soon(
        &self,
    ) -> Result<allot_core::schedule::ExpiringSoon, allot_core::schedule::BadNoticeDays> {
        allot_core::schedule::ExpiringSoon::parse(&self.expiring_soon_days)
    }

    /// The configuration with any database password replaced, for printing and logs.
    pub fn redacted(&self) -> Config {
        Config {
            db: redact_url(&self.db),
            alerts: AlertSettings {
                smtp_url: self.alerts.smtp_url.as_deref().map(redact_url),
                ..self.alerts.clone()
            },
            ..self.clone()
        }
    }
}

/// Delivery of alerts: webhooks and e-mail (`delivery.rs`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertSettings {
    /// Lets webhook URLs reach loopback, private and link-local addresses
    /// (tests, on-premise receivers). Off: such URLs are refused with 422.
    pub webhook_allow_private: bool,
    /// How long one webhook delivery may take, connection included.
    pub webhook_timeout_ms: u64,
    /// Deliveries (webhook and e-mail) in flight at once, per instance.
    pub delivery_concurrency: usize,
    /// How often the delivery worker looks for new events and due retries.
    pub delivery_poll_ms: u64,
    /// `smtp://[user:password@]host:port`: e-mail is sent only when set.
    pub smtp_url: Option<String>,
    /// The sender of alert e-mail.
    pub smtp_from: String,
    /// Event types mailed to the account's `manager_email`.
    pub mail_manager_on: Vec<String>,
    /// Event types mailed to the entitlement's `owner_email`.
    pub mail_owner_on: Vec<String>,
}

impl Default for AlertSettings {
    fn default() -> Self {
        let by_default: Vec<String> = allot_core::alerts::MAIL_BY_DEFAULT
            .iter()
            .map(|k| k.to_string())
            .collect();
        AlertSettings {
            webhook_allow_private: false,
            webhook_timeout_ms: 10_000,
            delivery_concurrency: 16,
            delivery_poll_ms: 1_000,
            smtp_url: None,
            smtp_from: "allot@localhost".into(),
            mail_manager_on: by_default.clone(),
            mail_owner_on: by_default,
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
