//! WAL checkpoints off the write path. With SQLite's automatic checkpoint
//! the committing writer copies the WAL back into the database (and
//! fsyncs) inside a batch's commit, stalling every request of that batch;
//! here a thread of its own does it with PASSIVE checkpoints, which never
//! block the writer. The writer keeps a far larger automatic threshold as
//! a backstop, should this thread fall behind.

use std::path::PathBuf;
use std::sync::{Arc, Weak};
use std::time::Duration;

use rusqlite::Connection;

const EVERY: Duration = Duration::from_millis(250);

/// Runs until the returned token is dropped (with the store).
pub(crate) fn start(path: PathBuf) -> Arc<()> {
    let token = Arc::new(());
    let alive: Weak<()> = Arc::downgrade(&token);
    let spawned = std::thread::Builder::new().name("allot-sqlite-ckpt".into()).spawn(move || {
        let conn = match Connection::open(&path) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "WAL checkpointer could not open the database; the writer checkpoints alone");
                return;
            }
        };
        let _ = conn.busy_timeout(Duration::from_millis(50));
        while alive.upgrade().is_some() {
            std::thread::sleep(EVERY);
            if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                tracing::debug!(error = %e, "passive checkpoint skipped");
            }
        }
    });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "WAL checkpointer thread did not start");
    }
    token
}
