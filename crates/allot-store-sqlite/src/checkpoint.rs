//! WAL checkpoints off the write path. With SQLite's automatic checkpoint
//! the committing writer copies the WAL back into the database (and
//! fsyncs) inside a batch's commit, stalling every request of that batch;
//! here a thread of its own does it with PASSIVE checkpoints, which never
//! block the writer. The writer keeps a far larger automatic threshold as
//! a backstop, should this thread fall behind.

use std::path::PathBuf;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;

const EVERY: Duration = Duration::from_millis(250);

/// The checkpointer thread; dropping this stops it and waits until its
/// connection is closed, so the writer, dropped after it, closes the
/// database last: SQLite checkpoints the WAL and removes it only then.
pub(crate) struct Checkpointer {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.stop.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

pub(crate) fn start(path: PathBuf) -> Checkpointer {
    let (stop, stopped) = mpsc::channel::<()>();
    let spawned = std::thread::Builder::new().name("allot-sqlite-ckpt".into()).spawn(move || {
        let conn = match Connection::open(&path) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "WAL checkpointer could not open the database; the writer checkpoints alone");
                return;
            }
        };
        let _ = conn.busy_timeout(Duration::from_millis(50));
        // Wakes every EVERY, or at once when the store drops its sender.
        while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(EVERY) {
            if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                tracing::debug!(error = %e, "passive checkpoint skipped");
            }
        }
    });
    let thread = match spawned {
        Ok(thread) => Some(thread),
        Err(e) => {
            tracing::warn!(error = %e, "WAL checkpointer thread did not start");
            None
        }
    };
    Checkpointer {
        stop: Some(stop),
        thread,
    }
}
