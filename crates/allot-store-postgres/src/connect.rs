//! Connection pool, and fresh databases for tests and benchmarks.

use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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
static SWEPT: AtomicBool = AtomicBool::new(false);
const FRESH_PREFIX: &str = "allot_test_";

/// Creates an empty database with a unique name on the server `admin_url`
/// points to, and returns a URL for it.
pub async fn create_fresh_database(admin_url: &str) -> StoreResult<String> {
    let name = format!(
        "{FRESH_PREFIX}{}_{}_{:08x}",
        std::process::id(),
        FRESH.fetch_add(1, Ordering::Relaxed),
        rand::thread_rng().gen::<u32>()
    );
    let (client, connection) = tokio_postgres::connect(admin_url, NoTls)
        .await
        .map_err(StoreError::backend)?;
    let driver = tokio::spawn(connection);
    if !SWEPT.swap(true, Ordering::Relaxed) {
        sweep_abandoned(&client).await;
    }
    let created = client
        .batch_execute(&format!("CREATE DATABASE \"{name}\""))
        .await
        .map_err(StoreError::backend);
    drop(client);
    let _ = driver.await;
    created?;
    Ok(with_database(admin_url, &name))
}

/// Drops the fresh databases of test processes that have ended: every test
/// makes its own database and none drops it, so without this each run of the
/// suite leaves hundreds behind and the disk fills up. Only databases named
/// for a process id that no longer runs on this machine are dropped, and a
/// database someone is still connected to stays (no `FORCE`).
async fn sweep_abandoned(client: &tokio_postgres::Client) {
    let Ok(rows) = client
        .query(
            "SELECT datname FROM pg_database WHERE datname LIKE $1",
            &[&format!("{FRESH_PREFIX}%")],
        )
        .await
    else {
        return;
    };
    for row in rows {
        let name: String = row.get(0);
        let Some(pid) = creator_pid(&name) else {
            continue;
        };
        if pid != std::process::id() && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = client
                .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\""))
                .await;
        }
    }
}

/// The process id a fresh database's name carries.
fn creator_pid(name: &str) -> Option<u32> {
    name.strip_prefix(FRESH_PREFIX)?
        .split('_')
        .next()?
        .parse()
        .ok()
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
    use super::{creator_pid, with_database};

    #[test]
    fn reads_the_creator_from_a_fresh_name() {
        assert_eq!(creator_pid("allot_test_4242_7_0000abcd"), Some(4242));
        assert_eq!(creator_pid("allot_test_x_7_0000abcd"), None);
        assert_eq!(creator_pid("allot_bench_srv_4242"), None);
        assert_eq!(creator_pid("test"), None);
    }

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
