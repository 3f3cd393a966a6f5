//! The one writer thread and the pool of read-only connections.
//!
//! Every mutation runs on the writer thread, so our own writes never meet
//! SQLITE_BUSY; reads run on blocking threads, each on a leased read-only
//! connection (WAL lets them proceed while the writer commits), and point
//! reads on the calling thread when a connection is idle.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;

use allot_store::{StoreError, StoreResult};
use rusqlite::Connection;
use tokio::sync::{oneshot, Semaphore};

use crate::error::Res;

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

pub(crate) struct Writer {
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
}

fn stopped() -> StoreError {
    StoreError::Backend("the SQLite writer thread has stopped".into())
}

impl Writer {
    pub(crate) fn start(mut conn: Connection) -> StoreResult<Writer> {
        let (jobs, rx) = mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("allot-sqlite-writer".into())
            .spawn(move || {
                for job in rx {
                    // A panicking job drops its reply (the caller sees an
                    // error) and rolls back its transaction while
                    // unwinding; the writer itself carries on.
                    let _ = catch_unwind(AssertUnwindSafe(|| job(&mut conn)));
                }
            })
            .map_err(StoreError::backend)?;
        Ok(Writer {
            jobs: Some(jobs),
            thread: Some(thread),
        })
    }

    pub(crate) async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Res<T> + Send + 'static,
    ) -> StoreResult<T> {
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let _ = reply.send(f(conn).map_err(StoreError::from));
        });
        self.jobs
            .as_ref()
            .ok_or_else(stopped)?
            .send(job)
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Closing the channel ends the thread after the job in hand; joining
        // closes the database cleanly (final checkpoint).
        self.jobs.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

pub(crate) struct Readers {
    idle: Mutex<Vec<Connection>>,
    permits: Arc<Semaphore>,
}

/// A connection on loan; it goes back to the pool however the read ends.
struct Lease<'a> {
    pool: &'a Mutex<Vec<Connection>>,
    conn: Option<Connection>,
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let (Some(conn), Ok(mut idle)) = (self.conn.take(), self.pool.lock()) {
            idle.push(conn);
        }
    }
}

impl Readers {
    pub(crate) fn new(conns: Vec<Connection>) -> Readers {
        Readers {
            permits: Arc::new(Semaphore::new(conns.len())),
            idle: Mutex::new(conns),
        }
    }

    pub(crate) async fn run<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&Connection) -> Res<T> + Send + 'static,
    ) -> StoreResult<T> {
        // Waiting for a permit here, not in the blocking pool, keeps idle
        // threads from piling up behind a busy pool.
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(StoreError::backend)?;
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            this.leased(f)
        })
        .await
        .map_err(StoreError::backend)?
    }

    /// A point read (an index seek to a row or a few) on the calling
    /// thread when a connection is idle: the hop to a blocking thread and
    /// back costs more than such a read. Anything that may scan stays on
    /// `run`, which keeps the async workers free. With every connection
    /// busy, the read waits its turn there too.
    pub(crate) async fn point<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&Connection) -> Res<T> + Send + 'static,
    ) -> StoreResult<T> {
        match self.permits.try_acquire() {
            Ok(_permit) => self.leased(f),
            Err(_) => self.run(f).await,
        }
    }

    /// Runs `f` on an idle connection; the caller holds a permit.
    fn leased<T>(&self, f: impl FnOnce(&Connection) -> Res<T>) -> StoreResult<T> {
        let conn = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let lease = Lease {
            pool: &self.idle,
            conn,
        };
        match &lease.conn {
            Some(conn) => f(conn).map_err(StoreError::from),
            None => Err(StoreError::Backend("no SQLite reader available".into())),
        }
    }
}
