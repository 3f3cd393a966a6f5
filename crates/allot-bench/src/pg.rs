//! PostgreSQL helpers: connecting, and creating or dropping the fresh bench databases.

use anyhow::{bail, Context, Result};
use tokio_postgres::{Client, NoTls};

/// Connects and drives the connection on the current runtime.
pub async fn connect(url: &str) -> Result<Client> {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .with_context(|| format!("connecting to {}", redact(url)))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

/// `url` with its database name replaced by `db`.
pub fn with_database(url: &str, db: &str) -> Result<String> {
    let Some(scheme_end) = url.find("://") else {
        bail!("not a postgres URL: {}", redact(url));
    };
    let (head, query) = match url.find('?') {
        Some(at) => url.split_at(at),
        None => (url, ""),
    };
    let authority_start = scheme_end + 3;
    let base = match head[authority_start..].find('/') {
        Some(slash) => &head[..authority_start + slash],
        None => head,
    };
    Ok(format!("{base}/{db}{query}"))
}

/// Hides a password in a URL for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// Creates database `name` through the admin URL; returns its URL.
pub async fn create_database(admin_url: &str, name: &str) -> Result<String> {
    check_name(name)?;
    let admin = connect(admin_url).await?;
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .with_context(|| format!("CREATE DATABASE {name}"))?;
    with_database(admin_url, name)
}

/// Drops database `name` (closing its connections) through the admin URL.
pub async fn drop_database(admin_url: &str, name: &str) -> Result<()> {
    check_name(name)?;
    let admin = connect(admin_url).await?;
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await
        .with_context(|| format!("DROP DATABASE {name}"))?;
    Ok(())
}

/// Databases created for one backend, dropped when it is done.
#[derive(Debug)]
pub struct DropList {
    admin_url: String,
    names: Vec<String>,
}

impl DropList {
    pub fn new(admin_url: &str) -> Self {
        DropList {
            admin_url: admin_url.to_owned(),
            names: Vec::new(),
        }
    }

    pub fn push(&mut self, name: String) {
        self.names.push(name);
    }

    /// Drops them all, warning about (not failing on) any that cannot be dropped.
    pub async fn drop_all(&self) {
        for name in &self.names {
            if let Err(err) = drop_database(&self.admin_url, name).await {
                eprintln!("warning: could not drop database {name}: {err:#}");
            }
        }
    }
}

fn check_name(name: &str) -> Result<()> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        bail!("unsafe database name {name:?}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swaps_database_name() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "x").unwrap(),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("postgres://u:p@h/db?sslmode=disable", "y").unwrap(),
            "postgres://u:p@h/y?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://h:5432", "z").unwrap(),
            "postgres://h:5432/z"
        );
    }

    #[test]
    fn redacts_password() {
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
    }

    #[test]
    fn rejects_odd_names() {
        assert!(check_name("allot_bench_srv_0a1b").is_ok());
        assert!(check_name("x; drop").is_err());
    }
}
