//! The one write path: every usage change is queued here, gathered into
//! batches and applied by `Store::apply_batch` in one transaction (group
//! commit). A request is answered only after its batch committed.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::clock::Clock;
use crate::error::StoreError;
use crate::plan::{contended_row, BatchItem, ItemAnswer};
use crate::store::Store;

#[derive(Debug, Clone, Copy)]
pub struct WritePathConfig {
    /// Most items decided in one transaction.
    pub max_batch: usize,
    /// Batches in flight at once; 1 for SQLite (one writer), more for
    /// PostgreSQL, where row locks keep concurrent batches correct.
    pub writers: usize,
    /// Items waiting for a writer at most (each writer's queue holds
    /// `queue / writers`); a request beyond it is refused at once
    /// (`SubmitError::Overloaded`) instead of waiting in line.
    pub queue: usize,
    /// When the last batch's first item had waited longer than this in
    /// the queue, and the queue is not empty, a new request is refused at
    /// once (`SubmitError::Overloaded`): the queue holds only what the
    /// writers get through in about this time. `None`: only the count bounds it.
    pub max_queue_delay: Option<std::time::Duration>,
}

impl Default for WritePathConfig {
    fn default() -> Self {
        WritePathConfig {
            max_batch: 512,
            writers: 1,
            queue: DEFAULT_QUEUE,
            max_queue_delay: None,
        }
    }
}

/// Items queued at most by default: two full batches for each of a few
/// writers, so a request that is accepted waits for a few batches at most.
pub const DEFAULT_QUEUE: usize = 2_048;

#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// Another request with the same idempotency key is being applied.
    #[error("a request with this idempotency key is in flight")]
    KeyInFlight,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the write path has stopped")]
    Stopped,
    /// The queue is full: nothing was queued, nothing applied.
    #[error("the write queue is full")]
    Overloaded,
}

struct Job {
    queued_at: Instant,
    item: BatchItem,
    reply: oneshot::Sender<Result<ItemAnswer, StoreError>>,
    /// The other items of a group (`submit_all`): decided right after
    /// `item`, in order, in the same transaction; never split.
    rest: Option<Group>,
}

/// The tail of a group of items and where their answers go.
struct Group {
    items: Vec<BatchItem>,
    reply: oneshot::Sender<Result<Vec<ItemAnswer>, StoreError>>,
}

type InFlight = Arc<Mutex<HashSet<(String, String)>>>;

#[derive(Clone)]
pub struct WritePath {
    /// One queue per writer; an item goes to its contended row's
    /// (`lane`), so one entitlement's items are batched together.
    queues: Arc<[mpsc::Sender<Job>]>,
    /// How long the last batch's first item waited, in microseconds.
    head_wait_us: Arc<AtomicU64>,
    max_queue_delay: Option<std::time::Duration>,
    in_flight: InFlight,
    /// Set once by `close`; every writer watches it.
    closing: Arc<watch::Sender<bool>>,
    writers: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

/// An idempotency key held in flight in this process; released however the
/// request ends (even if the client goes away mid-request).
pub struct KeyHold {
    in_flight: InFlight,
    key: Option<(String, String)>,
}

impl Drop for KeyHold {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            if let Ok(mut set) = self.in_flight.lock() {
                set.remove(&key);
            }
        }
    }
}

impl WritePath {
    pub fn start(store: Arc<dyn Store>, clock: Arc<dyn Clock>, config: WritePathConfig) -> Self {
        let lanes = config.writers.max(1);
        // The bound is the path's: each writer's queue holds its share
        // (so one hot entitlement's lane is shed sooner than the whole).
        let per_lane = (config.queue / lanes).max(1);
        let (closing, closed) = watch::channel(false);
        let head_wait_us = Arc::new(AtomicU64::new(0));
        let (queues, writers): (Vec<_>, Vec<_>) = (0..lanes)
            .map(|_| {
                let (queue, rx) = mpsc::channel::<Job>(per_lane);
                let (store, clock) = (store.clone(), clock.clone());
                let closed = closed.clone();
                let max_batch = config.max_batch.max(1);
                let head_wait_us = head_wait_us.clone();
                let writer = tokio::spawn(async move {
                    writer(store, clock, rx, closed, max_batch, head_wait_us).await
                });
                (queue, writer)
            })
            .unzip();
        WritePath {
            queues: queues.into(),
            head_wait_us,
            max_queue_delay: config.max_queue_delay,
            in_flight: Arc::new(Mutex::new(HashSet::new())),
            closing: Arc::new(closing),
            writers: Arc::new(Mutex::new(writers)),
        }
    }

    /// The queue of the writer that takes `item`.
    fn queue_of(&self, item: &BatchItem) -> &mpsc::Sender<Job> {
        &self.queues[lane(contended_row(&item.command), self.queues.len())]
    }

    /// Graceful stop: from now on `submit` answers `Stopped`; every item
    /// already queued is still applied and answered; returns once the
    /// writers have committed the last batch and let go of the store.
    /// Idempotent.
    pub async fn close(&self) {
        self.closing.send_replace(true);
        let writers = match self.writers.lock() {
            Ok(mut writers) => std::mem::take(&mut *writers),
            Err(_) => return,
        };
        for writer in writers {
            if let Err(e) = writer.await {
                tracing::error!(error = %e, "a writer task ended abnormally");
            }
        }
    }

    /// Holds `(scope, key)` while its request runs: a second request with
    /// the same key in this process is `KeyInFlight` meanwhile. The write
    /// path and the mutations outside it share these holds.
    pub fn hold_key(&self, key: Option<(String, String)>) -> Result<KeyHold, SubmitError> {
        if let Some(key) = &key {
            let mut set = self.in_flight.lock().map_err(|_| SubmitError::Stopped)?;
            if !set.insert(key.clone()) {
                return Err(SubmitError::KeyInFlight);
            }
        }
        Ok(KeyHold {
            in_flight: self.in_flight.clone(),
            key,
        })
    }

    /// The queue is not empty and its last head waited over `max_queue_delay`.
    fn backed_up(&self, queue: &mpsc::Sender<Job>) -> bool {
        let Some(limit) = self.max_queue_delay else {
            return false;
        };
        let waited = self.head_wait_us.load(Ordering::Relaxed);
        let queued = queue.max_capacity() - queue.capacity();
        queued > 0 && u128::from(waited) > limit.as_micros()
    }

    pub async fn submit(&self, item: BatchItem) -> Result<ItemAnswer, SubmitError> {
        let key = item
            .idempotency
            .as_ref()
            .map(|k| (k.scope.clone(), k.key.clone()));
        let queue = self.queue_of(&item);
        if self.backed_up(queue) {
            metrics::counter!("allot_write_queue_delay_shed_total").increment(1);
            return Err(SubmitError::Overloaded);
        }
        let _hold = self.hold_key(key)?;
        let (reply, answer) = oneshot::channel();
        // Never wait for room: a full queue sheds the request at once.
        queue
            .try_send(Job {
                queued_at: Instant::now(),
                item,
                reply,
                rest: None,
            })
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => {
                    metrics::counter!("allot_write_queue_full_total").increment(1);
                    SubmitError::Overloaded
                }
                mpsc::error::TrySendError::Closed(_) => SubmitError::Stopped,
            })?;
        let answer = answer.await.map_err(|_| SubmitError::Stopped)?;
        Ok(answer?)
    }

    /// Submits the items of one request together: they are decided in this
    /// order, one after the other, in one transaction (with whatever else
    /// the batch holds), and answered in this order. Each item's key is
    /// held in flight meanwhile; a key that comes twice in the group is
    /// held once (the planner replays or refuses its second use).
    pub async fn submit_all(&self, items: Vec<BatchItem>) -> Result<Vec<ItemAnswer>, SubmitError> {
        let keys: HashSet<(String, String)> = items
            .iter()
            .filter_map(|i| i.idempotency.as_ref())
            .map(|k| (k.scope.clone(), k.key.clone()))
            .collect();
        let _holds = keys
            .into_iter()
            .map(|key| self.hold_key(Some(key)))
            .collect::<Result<Vec<_>, _>>()?;
        let mut items = items.into_iter();
        let Some(item) = items.next() else {
            return Ok(Vec::new());
        };
        let queue = self.queue_of(&item);
        if self.backed_up(queue) {
            metrics::counter!("allot_write_queue_delay_shed_total").increment(1);
            return Err(SubmitError::Overloaded);
        }
        let (reply, first) = oneshot::channel();
        let (rest_reply, rest) = oneshot::channel();
        // Never wait for room: a full queue sheds the request at once.
        queue
            .try_send(Job {
                queued_at: Instant::now(),
                item,
                reply,
                rest: Some(Group {
                    items: items.collect(),
                    reply: rest_reply,
                }),
            })
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => {
                    metrics::counter!("allot_write_queue_full_total").increment(1);
                    SubmitError::Overloaded
                }
                mpsc::error::TrySendError::Closed(_) => SubmitError::Stopped,
            })?;
        let first = first.await.map_err(|_| SubmitError::Stopped)??;
        let rest = rest.await.map_err(|_| SubmitError::Stopped)??;
        Ok(std::iter::once(first).chain(rest).collect())
    }
}

async fn writer(
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    mut rx: mpsc::Receiver<Job>,
    mut closed: watch::Receiver<bool>,
    max_batch: usize,
    head_wait_us: Arc<AtomicU64>,
) {
    loop {
        let mut jobs = Vec::new();
        {
            let first = tokio::select! {
                biased;
                job = rx.recv() => job,
                () = until_closed(&mut closed) => {
                    // A closed channel refuses new sends but still yields
                    // what it holds: the writers drain it, then stop.
                    rx.close();
                    rx.recv().await
                }
            };
            match first {
                Some(job) => {
                    let waited = job.queued_at.elapsed().as_micros();
                    head_wait_us
                        .store(u64::try_from(waited).unwrap_or(u64::MAX), Ordering::Relaxed);
                    jobs.push(job);
                }
                None => return,
            }
            // A group counts with all its items; it is never split.
            let mut size = jobs.len() + grouped(&jobs);
            while size < max_batch {
                match rx.try_recv() {
                    Ok(job) => {
                        size += 1 + job.rest.as_ref().map_or(0, |r| r.items.len());
                        jobs.push(job);
                    }
                    Err(_) => break,
                }
            }
        }
        let (items, replies, groups) = flatten(jobs);
        metrics::histogram!("allot_write_batch_size").record(items.len() as f64);
        let started = Instant::now();
        let now = clock.now();
        let result = store.apply_batch(&items, clock.today(), now).await;
        metrics::histogram!("allot_write_batch_seconds").record(started.elapsed().as_secs_f64());
        match result {
            Ok(answers) => {
                let mut answers = answers.into_iter();
                for (reply, group) in replies.into_iter().zip(groups) {
                    let Some(answer) = answers.next() else { break };
                    record_metrics(&answer);
                    let _ = reply.send(Ok(answer));
                    if let Some((len, reply)) = group {
                        let group: Vec<ItemAnswer> = answers.by_ref().take(len).collect();
                        group.iter().for_each(record_metrics);
                        let _ = reply.send(Ok(group));
                    }
                }
            }
            Err(e) => {
                if matches!(e, StoreError::OutcomeUnknown(_)) {
                    tracing::error!(error = %e, batch = items.len(), "write batch's commit unconfirmed; it may or may not have been applied");
                } else {
                    tracing::error!(error = %e, batch = items.len(), "write batch failed; nothing was applied");
                }
                metrics::counter!("allot_write_batch_failures_total").increment(1);
                for (reply, group) in replies.into_iter().zip(groups) {
                    let _ = reply.send(Err(e.for_each_request()));
                    if let Some((_, reply)) = group {
                        let _ = reply.send(Err(e.for_each_request()));
                    }
                }
            }
        }
    }
}

type Reply = oneshot::Sender<Result<ItemAnswer, StoreError>>;
type GroupReply = Option<(usize, oneshot::Sender<Result<Vec<ItemAnswer>, StoreError>>)>;

/// The items of the jobs in order (a group's right after its first), and
/// where their answers go.
fn flatten(jobs: Vec<Job>) -> (Vec<BatchItem>, Vec<Reply>, Vec<GroupReply>) {
    let mut items = Vec::with_capacity(jobs.len() + grouped(&jobs));
    let (mut replies, mut groups) = (Vec::with_capacity(jobs.len()), Vec::new());
    for job in jobs {
        items.push(job.item);
        replies.push(job.reply);
        groups.push(job.rest.map(|rest| {
            let len = rest.items.len();
            items.extend(rest.items);
            (len, rest.reply)
        }));
    }
    (items, replies, groups)
}

/// Which of `lanes` writers takes the items contending for `row`: the
/// same writer for the same row, rows spread evenly (FNV-1a, stable
/// across processes and runs).
fn lane(row: &str, lanes: usize) -> usize {
    let hash = row.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    usize::try_from(hash % lanes.max(1) as u64).expect("a lane fits in usize")
}

/// Items the jobs carry beyond one each.
fn grouped(jobs: &[Job]) -> usize {
    jobs.iter()
        .filter_map(|j| j.rest.as_ref())
        .map(|r| r.items.len())
        .sum()
}

/// Returns once `close` was called (or every `WritePath` is gone).
async fn until_closed(closed: &mut watch::Receiver<bool>) {
    let _ = closed.wait_for(|closed| *closed).await;
}

fn record_metrics(answer: &ItemAnswer) {
    use crate::plan::Outcome;
    match answer {
        ItemAnswer::Done {
            outcome: Outcome::Applied { entries, .. },
        } => {
            metrics::counter!("allot_usage_writes_total").increment(entries.len() as u64);
        }
        ItemAnswer::Done {
            outcome: Outcome::Refused { refusal },
        } => {
            metrics::counter!("allot_refusals_total", "code" => refusal.code()).increment(1);
        }
        ItemAnswer::Replayed { .. } => {
            metrics::counter!("allot_idempotent_replays_total").increment(1);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::lane;

    #[test]
    fn one_rows_items_go_to_one_writer_and_rows_spread_over_all() {
        let rows: Vec<String> = (0..400).map(|n| format!("ent_{n:026}")).collect();
        for row in &rows {
            assert_eq!(lane(row, 4), lane(row, 4));
            assert_eq!(lane(row, 1), 0);
        }
        let mut per_lane = [0usize; 4];
        for row in &rows {
            per_lane[lane(row, 4)] += 1;
        }
        assert!(
            per_lane.iter().all(|&n| (60..=140).contains(&n)),
            "rows spread over every writer: {per_lane:?}"
        );
    }
}
