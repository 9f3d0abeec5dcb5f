//! The group-commit posting pipeline: many concurrent submitters, few database transactions.
//!
//! [`Pipeline::submit`] puts a request on a bounded queue and waits for its outcome. Writer
//! tasks drain the queues: each takes what has queued up (up to a maximum batch size, waiting
//! at most a short delay for more), applies it as one batch through [`Store::post`] and
//! resolves every waiter with its own outcome. A hot account is then locked once per batch
//! instead of once per transfer.
//!
//! Every org is served by exactly one writer, so an org's batches are applied in the order its
//! requests were queued; different orgs' batches commit concurrently. Correctness still comes
//! from the database (the batch path locks accounts), so several processes, each with its own
//! pipeline, stay correct on one database.
//!
//! Writers are shared by orgs, so no org may take all of a writer's queue: each has a budget
//! of queued requests ([`PipelineConfig::org_queued_max`]), past which its own requests are
//! refused as overloaded while other orgs' still queue.

use std::collections::HashMap;
use std::collections::hash_map::DefaultHasher;
use std::future::Future;
use std::hash::{Hash as _, Hasher as _};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::ids::OrgId;
use crate::rules::{Outcome, TransferRequest};
use crate::store::{Prepared, Speculation, Store, StoreError};

/// How the pipeline batches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PipelineConfig {
    /// Most requests in one batch (one database transaction).
    pub batch_size_max: usize,
    /// Longest a writer waits for more requests once it has one. Zero: take only what is
    /// already queued (batches still grow while the previous one commits).
    pub batch_delay_max: Duration,
    /// Most requests waiting in one writer's queue; beyond it, `submit` fails fast with
    /// [`SubmitError::Overloaded`].
    pub queue_capacity: usize,
    /// Writer tasks (at least 1). An org always goes to the same writer.
    pub writers: usize,
    /// Most requests of one org waiting in the queues, so that one org cannot fill the queue
    /// it shares with others; beyond it, its requests fail fast with
    /// [`SubmitError::Overloaded`].
    pub org_queued_max: usize,
    /// Whether a writer prepares its next batch while the previous one commits, so that one
    /// org's batches keep two database backends busy instead of one.
    pub overlap_batches: bool,
}

impl Default for PipelineConfig {
    /// Defaults chosen by measurement: see `BENCHMARKS.md`.
    fn default() -> Self {
        Self {
            batch_size_max: 1_000,
            batch_delay_max: Duration::ZERO,
            queue_capacity: 4_096,
            writers: 4,
            // Seven eighths of a writer's queue: the orgs that share it keep 512 places, and
            // 64 clients each with a batch of 50 in flight (the HTTP benchmark) still fit.
            org_queued_max: 3_584,
            overlap_batches: true,
        }
    }
}

/// Why a submitted request has no outcome.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The queue is full: try again later. Nothing was done.
    #[error("the ledger is overloaded; try again later")]
    Overloaded,
    /// The database failed while the batch was applied. The request may or may not have taken
    /// effect (if the commit itself failed); replaying it under the same id is safe and returns
    /// the original outcome.
    #[error("the ledger's database is unavailable; the outcome is unknown, replay to learn it")]
    Unavailable(#[source] Arc<StoreError>),
    /// The pipeline has shut down.
    #[error("the ledger pipeline has stopped")]
    Stopped,
}

impl SubmitError {
    /// Whether trying the same request again (same id) later can succeed.
    pub fn is_retriable(&self) -> bool {
        matches!(self, Self::Overloaded | Self::Unavailable(_))
    }
}

/// What the pipeline has done so far: for metrics and the benchmark.
#[derive(Debug, Default)]
pub struct PipelineStats {
    /// Requests waiting in the queues now.
    pub queued: AtomicUsize,
    /// Batches applied.
    pub batches: AtomicU64,
    /// Requests applied (in those batches).
    pub requests: AtomicU64,
    /// Batches that failed with a database error.
    pub failed_batches: AtomicU64,
    /// Requests refused because a queue was full.
    pub overloaded: AtomicU64,
    /// How many batches had each size, by power-of-two bucket: `[1], [2,3], [4,7], …`.
    batch_sizes: Mutex<[u64; 16]>,
}

impl PipelineStats {
    /// Batch counts by size bucket: `(smallest size of the bucket, batches)`, empty buckets
    /// left out.
    pub fn batch_size_histogram(&self) -> Vec<(usize, u64)> {
        let buckets = *self.batch_sizes.lock().unwrap_or_else(PoisonError::into_inner);
        buckets
            .iter()
            .enumerate()
            .filter(|(_, count)| **count > 0)
            .map(|(bucket, count)| (1 << bucket, *count))
            .collect()
    }

    fn record_batch(&self, size: usize) {
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.requests.fetch_add(size as u64, Ordering::Relaxed);
        let bucket = (usize::BITS - size.max(1).leading_zeros() - 1).min(15) as usize;
        self.batch_sizes.lock().unwrap_or_else(PoisonError::into_inner)[bucket] += 1;
    }
}

struct Job {
    request: TransferRequest,
    reply: oneshot::Sender<Result<Outcome, SubmitError>>,
}

/// The posting pipeline. Cheap to clone; the writers stop when every clone is dropped (after
/// applying what is queued).
#[derive(Clone, Debug)]
pub struct Pipeline {
    queues: Arc<[mpsc::Sender<Job>]>,
    stats: Arc<PipelineStats>,
    budgets: Arc<Budgets>,
}

/// How many requests each org has queued, against its budget.
#[derive(Debug)]
struct Budgets {
    max: usize,
    queued: Mutex<HashMap<OrgId, usize>>,
}

impl Budgets {
    /// Takes `n` from the org's budget, or nothing when it has not that much left.
    fn take(&self, org: OrgId, n: usize) -> bool {
        let mut queued = self.queued.lock().unwrap_or_else(PoisonError::into_inner);
        let count = queued.entry(org).or_insert(0);
        if *count + n > self.max {
            if *count == 0 {
                queued.remove(&org);
            }
            return false;
        }
        *count += n;
        true
    }

    /// Gives back what the requests of these orgs took (they left the queue, or never
    /// entered it).
    fn give_back(&self, orgs: impl IntoIterator<Item = OrgId>) {
        let mut queued = self.queued.lock().unwrap_or_else(PoisonError::into_inner);
        for org in orgs {
            if let Some(count) = queued.get_mut(&org) {
                *count = count.saturating_sub(1);
                if *count == 0 {
                    queued.remove(&org);
                }
            }
        }
    }
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job").field("id", &self.request.id).finish_non_exhaustive()
    }
}

impl Pipeline {
    /// Starts the writer tasks on the current Tokio runtime.
    pub fn start(store: &Store, config: PipelineConfig) -> Self {
        let stats = Arc::new(PipelineStats::default());
        let budgets =
            Arc::new(Budgets { max: config.org_queued_max.max(1), queued: Mutex::default() });
        let queues: Vec<mpsc::Sender<Job>> = (0..config.writers.max(1))
            .map(|_| {
                let (sender, receiver) = mpsc::channel(config.queue_capacity.max(1));
                let writer = write(store.clone(), config, receiver, stats.clone(), budgets.clone());
                tokio::spawn(writer);
                sender
            })
            .collect();
        Self { queues: queues.into(), stats, budgets }
    }

    /// Queues a request and returns a future of its outcome. Requests of one org queued one
    /// after another are applied in that order.
    ///
    /// # Errors
    ///
    /// [`SubmitError::Overloaded`] at once when the queue is full, and
    /// [`SubmitError::Stopped`] when the pipeline has shut down.
    pub fn enqueue(&self, request: TransferRequest) -> Result<Submitted, SubmitError> {
        let mut submitted = self.enqueue_all(vec![request])?;
        // One request in, one future out.
        submitted.pop().ok_or(SubmitError::Stopped)
    }

    /// Queues requests of one org all together, or none of them: when the queue or the org's
    /// budget has no room for all, nothing is queued. Applied in this order.
    ///
    /// # Errors
    ///
    /// As [`Pipeline::enqueue`]; [`SubmitError::Overloaded`] too for requests of several orgs.
    pub fn enqueue_all(
        &self,
        requests: Vec<TransferRequest>,
    ) -> Result<Vec<Submitted>, SubmitError> {
        let Some(org) = requests.first().map(|request| request.org) else {
            return Ok(Vec::new());
        };
        if requests.iter().any(|request| request.org != org) {
            return Err(SubmitError::Overloaded);
        }
        let n = requests.len();
        let refused = |error| {
            if matches!(error, SubmitError::Overloaded) {
                self.stats.overloaded.fetch_add(n as u64, Ordering::Relaxed);
            }
            Err(error)
        };
        if !self.budgets.take(org, n) {
            return refused(SubmitError::Overloaded);
        }
        let permits = match self.queues[self.writer_for(org)].try_reserve_many(n) {
            Ok(permits) => permits,
            Err(error) => {
                self.budgets.give_back(std::iter::repeat_n(org, n));
                return refused(match error {
                    mpsc::error::TrySendError::Full(()) => SubmitError::Overloaded,
                    mpsc::error::TrySendError::Closed(()) => SubmitError::Stopped,
                });
            }
        };
        self.stats.queued.fetch_add(n, Ordering::Relaxed);
        Ok(permits
            .zip(requests)
            .map(|(permit, request)| {
                let (reply, receiver) = oneshot::channel();
                permit.send(Job { request, reply });
                Submitted { receiver }
            })
            .collect())
    }

    /// Which writer serves the org (every request of an org goes to the same one).
    pub fn writer_for(&self, org: OrgId) -> usize {
        let mut hasher = DefaultHasher::new();
        org.hash(&mut hasher);
        // Truncating the hash is fine: it only picks a queue.
        #[allow(clippy::cast_possible_truncation)]
        let hash = hasher.finish() as usize;
        hash % self.queues.len()
    }

    /// Queues a request and waits for its outcome.
    ///
    /// # Errors
    ///
    /// See [`SubmitError`]: `Overloaded` and `Unavailable` are worth a retry with the same id.
    pub async fn submit(&self, request: TransferRequest) -> Result<Outcome, SubmitError> {
        self.enqueue(request)?.await
    }

    /// What the pipeline has done so far.
    pub fn stats(&self) -> &PipelineStats {
        &self.stats
    }
}

/// The outcome of a queued request, once its batch is applied.
#[derive(Debug)]
pub struct Submitted {
    receiver: oneshot::Receiver<Result<Outcome, SubmitError>>,
}

impl Future for Submitted {
    type Output = Result<Outcome, SubmitError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // A dropped reply means the writer is gone (the runtime is shutting down).
        Pin::new(&mut self.receiver)
            .poll(cx)
            .map(|reply| reply.unwrap_or(Err(SubmitError::Stopped)))
    }
}

/// A batch taken from a queue: the requests, and where each one's outcome goes.
struct Batch {
    requests: Vec<TransferRequest>,
    replies: Vec<oneshot::Sender<Result<Outcome, SubmitError>>>,
}

/// What a writer found on its queue.
enum Next {
    Batch(Batch),
    /// Nothing is queued right now.
    Empty,
    /// Every sender is gone and the queue is drained.
    Closed,
}

/// A batch prepared on one connection while the writer's previous batch commits on another.
struct InFlight {
    prepared: Prepared,
    batch: Batch,
}

/// One writer: batches from its queue until every sender is dropped.
///
/// With `overlap_batches`, while one batch commits the writer prepares the next (see
/// [`Store::prepare`]); a batch that cannot be prepared, or whose accounts changed meanwhile,
/// goes through [`Store::post`] instead.
async fn write(
    store: Store,
    config: PipelineConfig,
    mut queue: mpsc::Receiver<Job>,
    stats: Arc<PipelineStats>,
    budgets: Arc<Budgets>,
) {
    let mut overlap = Overlap::new(config.overlap_batches);
    let mut in_flight: Option<InFlight> = None;
    loop {
        let next = take(&mut queue, &config, &stats, &budgets, in_flight.is_none()).await;
        match (in_flight.take(), next) {
            (None, Next::Closed) => return,
            (None, Next::Empty) => {}
            (None, Next::Batch(batch)) => {
                in_flight = start(&store, &mut overlap, batch, &stats).await;
            }
            (Some(flight), Next::Empty | Next::Closed) => {
                let finished = finish(&store, flight, &stats).await;
                settle(&store, &mut overlap, finished, &stats).await;
            }
            (Some(flight), Next::Batch(batch)) => {
                let (finished, prepared) = tokio::join!(
                    finish(&store, flight, &stats),
                    store.prepare(&mut overlap.speculation, &batch.requests),
                );
                if !matches!(finished, Finished::Committed) {
                    // The next batch was prepared on the results this one was expected to
                    // have: roll it back before applying this one again, since it may hold
                    // ids or entries this one needs.
                    if let Ok(Some(prepared)) = prepared {
                        prepared.abandon().await;
                    }
                    settle(&store, &mut overlap, finished, &stats).await;
                    in_flight = start(&store, &mut overlap, batch, &stats).await;
                    continue;
                }
                overlap.hit();
                if let Ok(Some(prepared)) = prepared {
                    in_flight = Some(InFlight { prepared, batch });
                } else {
                    overlap.missed();
                    post(&store, batch, &stats).await;
                }
            }
        }
    }
}

/// Whether a writer overlaps its batches, and what it expects of the ledger when it does.
///
/// A prepared batch that turns out wrong (another writer changed its accounts: another server
/// process, the expiry sweeper) costs a rollback and a second application. When that keeps
/// happening, as with two processes posting to one hot purse, the writer stops overlapping for
/// a number of batches that doubles with each miss in a row.
struct Overlap {
    enabled: bool,
    speculation: Speculation,
    /// Batches still to apply one at a time before overlapping again.
    skip: u32,
    /// What `skip` becomes after the next miss.
    backoff: u32,
}

impl Overlap {
    /// Most batches applied one at a time after a miss.
    const BACKOFF_MAX: u32 = 1_024;

    fn new(enabled: bool) -> Self {
        Self { enabled, speculation: Speculation::default(), skip: 0, backoff: 1 }
    }

    /// Whether to prepare the next batch (counts down the batches to skip).
    fn wants(&mut self) -> bool {
        if self.skip > 0 {
            self.skip -= 1;
            return false;
        }
        self.enabled
    }

    /// A batch committed as prepared.
    fn hit(&mut self) {
        self.backoff = 1;
    }

    /// A batch could not be prepared, or its accounts changed before it committed.
    fn missed(&mut self) {
        self.speculation.clear();
        self.skip = self.backoff;
        self.backoff = (self.backoff * 2).min(Self::BACKOFF_MAX);
    }
}

/// The next batch: waits for a first request when `wait`, then takes what is queued (up to the
/// maximum size, waiting at most the maximum delay for more).
async fn take(
    queue: &mut mpsc::Receiver<Job>,
    config: &PipelineConfig,
    stats: &PipelineStats,
    budgets: &Budgets,
    wait: bool,
) -> Next {
    let size_max = config.batch_size_max.max(1);
    let first = if wait {
        match queue.recv().await {
            Some(job) => job,
            None => return Next::Closed,
        }
    } else {
        match queue.try_recv() {
            Ok(job) => job,
            Err(mpsc::error::TryRecvError::Empty) => return Next::Empty,
            Err(mpsc::error::TryRecvError::Disconnected) => return Next::Closed,
        }
    };
    let mut jobs = vec![first];
    let deadline = tokio::time::Instant::now() + config.batch_delay_max;
    while jobs.len() < size_max {
        match queue.try_recv() {
            Ok(job) => jobs.push(job),
            Err(mpsc::error::TryRecvError::Disconnected) => break,
            Err(mpsc::error::TryRecvError::Empty) => {
                if config.batch_delay_max.is_zero() {
                    break;
                }
                match tokio::time::timeout_at(deadline, queue.recv()).await {
                    Ok(Some(job)) => jobs.push(job),
                    Ok(None) | Err(_) => break,
                }
            }
        }
    }
    stats.queued.fetch_sub(jobs.len(), Ordering::Relaxed);
    budgets.give_back(jobs.iter().map(|job| job.request.org));
    // Waiters that gave up before their batch started need no work.
    let (requests, replies): (Vec<_>, Vec<_>) = jobs
        .into_iter()
        .filter(|job| !job.reply.is_closed())
        .map(|job| (job.request, job.reply))
        .unzip();
    if requests.is_empty() {
        return Next::Empty;
    }
    Next::Batch(Batch { requests, replies })
}

/// Prepares a batch when the writer overlaps; otherwise, or when it cannot be prepared,
/// applies it at once through [`Store::post`].
async fn start(
    store: &Store,
    overlap: &mut Overlap,
    batch: Batch,
    stats: &PipelineStats,
) -> Option<InFlight> {
    if !overlap.wants() {
        post(store, batch, stats).await;
        return None;
    }
    if let Ok(Some(prepared)) = store.prepare(&mut overlap.speculation, &batch.requests).await {
        return Some(InFlight { prepared, batch });
    }
    // An error here is met again, and reported, by `post`.
    overlap.missed();
    post(store, batch, stats).await;
    None
}

/// Deals with a finished batch once nothing else of the writer is in flight: counts the hit or
/// miss, and applies again a batch that must be.
async fn settle(store: &Store, overlap: &mut Overlap, finished: Finished, stats: &PipelineStats) {
    match finished {
        Finished::Committed => overlap.hit(),
        // Not a miss: the database failed. What the writer expected may not hold.
        Finished::Failed => overlap.speculation.clear(),
        Finished::Redo(batch) => {
            overlap.missed();
            post(store, batch, stats).await;
        }
    }
}

/// How committing a prepared batch ended.
enum Finished {
    /// Committed as prepared; its waiters have their outcomes.
    Committed,
    /// Failed; its waiters have the error.
    Failed,
    /// Its accounts changed since it was prepared, or it conflicted with another writer: it
    /// was rolled back and must be applied again.
    Redo(Batch),
}

/// Commits a prepared batch and answers its waiters, unless it must be applied again.
async fn finish(store: &Store, flight: InFlight, stats: &PipelineStats) -> Finished {
    let InFlight { prepared, batch } = flight;
    match store.commit_prepared(prepared).await {
        Ok(Some(outcomes)) => {
            answer(batch, Ok(outcomes), stats);
            Finished::Committed
        }
        Ok(None) => Finished::Redo(batch),
        Err(error) if error.is_conflict() => Finished::Redo(batch),
        Err(error) => {
            answer(batch, Err(error), stats);
            Finished::Failed
        }
    }
}

/// Applies a batch through [`Store::post`] and answers its waiters.
async fn post(store: &Store, batch: Batch, stats: &PipelineStats) {
    let result = store.post(&batch.requests).await;
    answer(batch, result, stats);
}

/// Sends every waiter its outcome, or the batch's error.
fn answer(batch: Batch, result: Result<Vec<Outcome>, StoreError>, stats: &PipelineStats) {
    match result {
        Ok(outcomes) => {
            stats.record_batch(batch.requests.len());
            for (reply, outcome) in batch.replies.into_iter().zip(outcomes) {
                // The waiter may have gone away; its outcome stands all the same.
                let _ = reply.send(Ok(outcome));
            }
        }
        Err(error) => {
            stats.failed_batches.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(error = %error, size = batch.requests.len(), "a batch failed");
            let error = Arc::new(error);
            for reply in batch.replies {
                let _ = reply.send(Err(SubmitError::Unavailable(error.clone())));
            }
        }
    }
}
