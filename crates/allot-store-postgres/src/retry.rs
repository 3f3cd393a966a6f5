//! Running a whole transaction again when it lost a race with another
//! instance.

use std::future::Future;
use std::time::Duration;

use rand::Rng;

use crate::error::{Error, Res};

/// Retries after the first attempt.
const RETRIES: u32 = 5;

/// Runs `attempt` until it succeeds, fails for good (`retry` says no), or
/// has been retried `RETRIES` times. A connection lost before COMMIT was
/// sent is retried too (nothing was applied; the pool hands out another
/// connection, or fails at once when the server is down).
pub(crate) async fn run<T, F, Fut>(what: &str, retry: fn(&Error) -> bool, mut attempt: F) -> Res<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Res<T>>,
{
    let mut retries = 0;
    loop {
        match attempt().await {
            Err(e) if retries < RETRIES && (retry(&e) || e.is_connection_lost()) => {
                retries += 1;
                tracing::debug!(what, retries, error = ?e, "transaction lost a race; retrying");
                // Random, so that two instances that collided do not collide again.
                let wait = rand::thread_rng().gen_range(1..=10 * u64::from(retries));
                tokio::time::sleep(Duration::from_millis(wait)).await;
            }
            result => return result,
        }
    }
}
