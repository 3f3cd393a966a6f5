//! Connection pool, and fresh databases for tests and benchmarks.

use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use allot_store::{StoreError, StoreResult};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use rand::Rng;
use tokio_postgres::NoTls;

use crate::error::Res;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a request waits for a free connection before it is answered
/// 503 `database_unavailable` (a pool exhausted by a slow or stalled server).
const WAIT_TIMEOUT: Duration = Duration::from_secs(5);

pub(crate) async fn pool(url: &str, size: usize) -> StoreResult<Pool> {
    let config = tokio_postgres::Config::from_str(url)
        .map_err(|e| StoreError::Backend(format!("invalid PostgreSQL URL: {e}")))?;
    let manager = Manager::from_config(
        config,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    let pool = Pool::builder(manager)
        .max_size(size.max(1))
        .runtime(Runtime::Tokio1)
        .create_timeout(Some(CONNECT_TIMEOUT))
        .wait_timeout(Some(WAIT_TIMEOUT))
        .recycle_timeout(Some(CONNECT_TIMEOUT))
        .build()
        .map_err(StoreError::backend)?;
    // Fail at start-up, not on the first request, when the server is unreachable.
    check(&pool).await?;
    Ok(pool)
}

async fn check(pool: &Pool) -> Res<()> {
    pool.get().await?.simple_query("SELECT 1").await?;
    Ok(())
}

static FRESH: AtomicU64 = AtomicU64::new(0);

/// Creates an empty database with a unique name on the server `admin_url`
/// points to, and returns a URL for it.
pub async fn create_fresh_database(admin_url: &str) -> StoreResult<String> {
    let name = format!(
        "allot_test_{}_{}_{:08x}",
        std::process::id(),
        FRESH.fetch_add(1, Ordering::Relaxed),
        rand::thread_rng().gen::<u32>()
    );
    let (client, connection) = tokio_postgres::connect(admin_url, NoTls)
        .await
        .map_err(StoreError::backend)?;
    let driver = tokio::spawn(connection);
    let created = client
        .batch_execute(&format!("CREATE DATABASE \"{name}\""))
        .await
        .map_err(StoreError::backend);
    drop(client);
    let _ = driver.await;
    created?;
    Ok(with_database(admin_url, &name))
}

/// The same server and credentials, another database.
fn with_database(url: &str, name: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        // key=value form: a later key wins.
        return format!("{url} dbname={name}");
    };
    let after = scheme_end + 3;
    let query_at = url[after..].find('?').map_or(url.len(), |i| after + i);
    let path_at = url[after..query_at]
        .find('/')
        .map_or(query_at, |i| after + i);
    format!("{}/{}{}", &url[..path_at], name, &url[query_at..])
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn swaps_only_the_database() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("postgresql://u:p@h/db?sslmode=disable", "x"),
            "postgresql://u:p@h/x?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://h:5432", "x"),
            "postgres://h:5432/x"
        );
        assert_eq!(
            with_database("postgres://h?application_name=a", "x"),
            "postgres://h/x?application_name=a"
        );
        assert_eq!(
            with_database("host=h user=u", "x"),
            "host=h user=u dbname=x"
        );
    }
}
