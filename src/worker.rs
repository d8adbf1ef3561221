//! The worker: claims due jobs in batches up to a concurrency cap, runs each
//! outside any transaction under a renewed lease, records outcomes in short
//! statements (completions batched), rescues expired leases, and drains on
//! shutdown. Database trouble never ends the loop: it backs off and carries on.
use crate::db::DbError;
use crate::jobs::{Handlers, JobError};
use crate::queue::retry::Backoff;
use crate::queue::store::Store;
use crate::queue::{ClaimedJob, JobId, JobState, LeaseId};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, Notify, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

/// Most jobs one claim statement takes, whatever the free capacity.
const MAX_CLAIM_BATCH: usize = 100;
/// Most completions one statement records.
const MAX_COMPLETE_BATCH: usize = 1000;

/// Jobs whose handler succeeded, waiting to be recorded in a batch.
type Completions = mpsc::UnboundedReceiver<(JobId, LeaseId)>;

/// How a worker behaves; [`crate::config::Config`] provides production values.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Name on leases.
    pub worker_id: String,
    /// Jobs running at once.
    pub concurrency: usize,
    /// Claim attempt interval without NOTIFY.
    pub poll_interval: Duration,
    /// Lease per claim; renewed every third of it.
    pub lease: Duration,
    /// How long shutdown waits before releasing running jobs.
    pub drain_deadline: Duration,
    /// Delay before a retryable job runs again.
    pub backoff: Backoff,
    /// Claim loops running side by side (each with its own claim in flight).
    pub claim_loops: usize,
}

impl WorkerOptions {
    /// Options from the process configuration.
    pub fn from_config(c: &crate::config::Config) -> Self {
        WorkerOptions {
            worker_id: c.worker_id.clone(),
            concurrency: c.concurrency.get(),
            poll_interval: c.poll_interval,
            lease: c.lease,
            drain_deadline: c.drain_deadline,
            backoff: Backoff::default(),
            claim_loops: c.claim_loops.get(),
        }
    }
}

/// The claim loop and everything it shares with its job tasks.
#[derive(Clone)]
pub struct Worker {
    store: Store,
    handlers: Arc<Handlers>,
    opts: Arc<WorkerOptions>,
    /// Woken by the listener on NOTIFY.
    wake: Arc<Notify>,
    permits: Arc<Semaphore>,
    /// Woken whenever a job task ends, so a full worker claims again at once.
    slot_freed: Arc<Notify>,
    /// The job tasks: their count is the jobs running in this process.
    tracker: TaskTracker,
    /// Cancelled when the drain deadline passes: every job still running stops
    /// and gives its job back. One token for all, not one per job: a job's
    /// start and end then touch no shared map.
    stop_jobs: CancellationToken,
    completions: mpsc::UnboundedSender<(JobId, LeaseId)>,
    /// Taken once by the completer task when the worker starts.
    completions_rx: Arc<Mutex<Option<Completions>>>,
    /// Unix milliseconds of the last loop pass (health checks).
    last_tick_ms: Arc<AtomicI64>,
}

impl Worker {
    /// A worker on `store` running `handlers`.
    pub fn new(store: Store, handlers: Handlers, opts: WorkerOptions) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        Worker {
            store,
            handlers: Arc::new(handlers),
            permits: Arc::new(Semaphore::new(opts.concurrency.max(1))),
            opts: Arc::new(opts),
            wake: Arc::new(Notify::new()),
            slot_freed: Arc::new(Notify::new()),
            tracker: TaskTracker::new(),
            stop_jobs: CancellationToken::new(),
            completions: tx,
            completions_rx: Arc::new(Mutex::new(Some(rx))),
            last_tick_ms: Arc::new(AtomicI64::new(0)),
        }
    }

    /// The notifier the listener wakes.
    pub fn wake_handle(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// When the loop last ran, in Unix milliseconds (0 before the first pass).
    pub fn last_tick_ms(&self) -> i64 {
        self.last_tick_ms.load(Ordering::Relaxed)
    }

    /// Jobs running in this process right now.
    pub fn running_jobs(&self) -> usize {
        self.tracker.len()
    }

    /// One step: reserves as many free slots as there are (at most one batch),
    /// claims that many due jobs and starts them. Returns how many were started.
    /// Slots are reserved before the claim, so claim loops running side by side
    /// never claim a job they have no slot for.
    ///
    /// # Errors
    /// [`DbError`] when the claim fails; nothing was started then.
    pub async fn run_once(&self) -> Result<usize, DbError> {
        Ok(self.claim_batch().await?.1)
    }

    /// `run_once`, also saying how many slots it asked for.
    async fn claim_batch(&self) -> Result<(usize, usize), DbError> {
        let want = self.permits.available_permits().min(MAX_CLAIM_BATCH);
        if want < self.min_claim() {
            return Ok((0, 0)); // wait for more slots: many tiny claims cost more than they bring
        }
        let Ok(mut reserved) = self.permits.clone().try_acquire_many_owned(want as u32) else {
            return Ok((0, 0)); // another claim loop took the slots meanwhile
        };
        let jobs = self
            .store
            .claim(&self.opts.worker_id, want, self.opts.lease)
            .await?;
        let started = jobs.len();
        for job in jobs {
            // `reserved` holds one permit per job the claim could return.
            let Some(permit) = reserved.split(1) else {
                tracing::error!(job.id = %job.id, "claimed more jobs than reserved slots; its lease will expire");
                continue;
            };
            let worker = self.clone();
            self.tracker
                .spawn(async move { worker.run_job(job, permit).await });
        }
        Ok((want, started)) // unused slots go back when `reserved` drops
    }

    /// The fewest free slots worth a claim: half a batch (or of the concurrency,
    /// when that is smaller). Claiming as soon as one slot frees up would turn a
    /// busy worker's claims into round trips for one job each.
    fn min_claim(&self) -> usize {
        (self.opts.concurrency.min(MAX_CLAIM_BATCH) / 2).max(1)
    }

    /// Runs until `shutdown` is cancelled, then drains: running jobs get the
    /// drain deadline to finish; any still running are stopped and released to
    /// the queue. Pending completions are flushed before it returns.
    pub async fn run(&self, shutdown: CancellationToken) {
        let finish = CancellationToken::new();
        let completer = self.spawn_completer(finish.clone());
        let maintenance = self.spawn_maintenance(shutdown.clone());
        tracing::info!(
            worker.id = %self.opts.worker_id,
            kinds = ?self.handlers.kinds(),
            claim_loops = self.opts.claim_loops,
            "worker started"
        );
        // Several claim loops overlap one claim's round trip with another's, the
        // way the bare SQL baseline uses several connections.
        let loops: Vec<_> = (0..self.opts.claim_loops.max(1))
            .map(|_| {
                let worker = self.clone();
                let shutdown = shutdown.clone();
                tokio::spawn(async move { worker.claim_loop(shutdown).await })
            })
            .collect();
        for l in loops {
            let _ = l.await;
        }
        self.drain().await;
        maintenance.abort();
        finish.cancel();
        // The last completions get the drain deadline too: a database that
        // stopped answering must not keep the process alive. Unrecorded
        // completions mean those jobs run again after their leases expire.
        if tokio::time::timeout(self.opts.drain_deadline, completer)
            .await
            .is_err()
        {
            tracing::warn!("completions still unrecorded at shutdown; those jobs will run again");
        }
        tracing::info!(worker.id = %self.opts.worker_id, "worker stopped");
    }

    /// Claims until `shutdown`: at once after a full batch, otherwise when a
    /// NOTIFY arrives, a slot frees up (if all were busy) or the poll interval passes.
    async fn claim_loop(&self, shutdown: CancellationToken) {
        let mut claim_backoff = Duration::from_millis(100);
        while !shutdown.is_cancelled() {
            self.last_tick_ms
                .store(chrono::Utc::now().timestamp_millis(), Ordering::Relaxed);
            let Some(claimed) = self.claim_unless_stuck(&shutdown).await else {
                break;
            };
            match claimed {
                Ok((requested, started)) => {
                    claim_backoff = Duration::from_millis(100);
                    // A full batch means there may be more: ask again at once. A short one
                    // means the claim saw no more due jobs it could take: rows another
                    // claim had locked are that claim's (SKIP LOCKED passes them and goes
                    // on to the next due row, so a drain gets full batches until its
                    // tail), a gated kind held by another worker is that worker's to
                    // claim, and a job committed after the claim's snapshot sends a
                    // NOTIFY that wakes a loop (or is kept for the next wait). Asking
                    // again at once after a short batch cost an empty claim per job at a
                    // steady rate (0.3-0.4 ms of server time each, beside every
                    // insert-to-start).
                    if requested > 0
                        && started >= requested
                        && self.permits.available_permits() >= self.min_claim()
                    {
                        continue;
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, retry_in_ms = claim_backoff.as_millis() as u64, "claim failed");
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(claim_backoff) => {}
                    }
                    claim_backoff = (claim_backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            }
            let full = self.permits.available_permits() < self.min_claim();
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = self.slot_freed.notified(), if full => {}
                _ = self.wake.notified(), if !full => {}
                _ = tokio::time::sleep(self.opts.poll_interval) => {
                    tracing::debug!("poll tick");
                }
            }
        }
    }

    /// One claim, which shutdown does not wait on forever: a claim stuck in the
    /// database (a lock, a stalled connection) gets the drain deadline to come
    /// back, then is given up (`None`). Whatever it leased by then returns to
    /// the queue when the lease expires: late, never lost.
    async fn claim_unless_stuck(
        &self,
        shutdown: &CancellationToken,
    ) -> Option<Result<(usize, usize), DbError>> {
        let claim = self.claim_batch();
        tokio::pin!(claim);
        tokio::select! {
            result = &mut claim => return Some(result),
            () = shutdown.cancelled() => {}
        }
        match tokio::time::timeout(self.opts.drain_deadline, &mut claim).await {
            Ok(result) => Some(result),
            Err(_) => {
                tracing::warn!(
                    waited_s = self.opts.drain_deadline.as_secs(),
                    "a claim was still waiting on the database at shutdown; \
                     any job it leases returns to the queue when its lease expires"
                );
                None
            }
        }
    }

    /// Waits for running jobs up to the drain deadline, then stops the rest and
    /// gives them back to the queue.
    async fn drain(&self) {
        self.tracker.close();
        let left = self.running_jobs();
        if left > 0 {
            tracing::info!(
                running = left,
                deadline_s = self.opts.drain_deadline.as_secs(),
                "waiting for running jobs"
            );
        }
        if tokio::time::timeout(self.opts.drain_deadline, self.tracker.wait())
            .await
            .is_err()
        {
            let stopped = self.stop_running();
            tracing::warn!(
                stopped,
                "drain deadline passed; releasing running jobs to the queue"
            );
            // Each stopped task releases its own job; give them a moment to say so.
            let _ = tokio::time::timeout(Duration::from_secs(5), self.tracker.wait()).await;
        }
    }

    fn stop_running(&self) -> usize {
        self.stop_jobs.cancel();
        self.running_jobs()
    }

    /// Runs one job to an outcome and records it.
    async fn run_job(self, job: ClaimedJob, permit: OwnedSemaphorePermit) {
        let span = tracing::info_span!(
            "job",
            job.id = %job.id,
            job.kind = %job.kind,
            job.attempt = job.attempt,
            outcome = tracing::field::Empty,
        );
        async {
            let started = Instant::now();
            // Biased, the handler first: a job that finishes on its first poll
            // never arms the lease timer (nor polls the stop token).
            let outcome = tokio::select! {
                biased;
                result = self.handlers.dispatch(&job) => Some(result),
                () = self.keep_lease(&job) => None,
                () = self.stop_jobs.cancelled() => {
                    self.release(&job).await;
                    tracing::Span::current().record("outcome", "released");
                    crate::metrics::job_finished(&job.kind, "released", started.elapsed());
                    self.finish_job(permit);
                    return;
                }
            };
            let recorded = match outcome {
                Some(Ok(())) => {
                    // Batched: the completer records it in its next statement.
                    let _ = self.completions.send((job.id, job.lease_id));
                    Ok("completed")
                }
                Some(Err(e)) => self.record_failure(&job, e).await,
                None => Ok("lease_lost"),
            };
            match recorded {
                Ok(outcome) => {
                    tracing::Span::current().record("outcome", outcome);
                    crate::metrics::job_finished(&job.kind, outcome, started.elapsed());
                    tracing::info!(
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        "job finished"
                    );
                }
                Err(e) => tracing::error!(
                    error = %e,
                    "could not record the outcome; the lease will expire and the job run again"
                ),
            }
            self.finish_job(permit);
        }
        .instrument(span)
        .await
    }

    fn finish_job(&self, permit: OwnedSemaphorePermit) {
        drop(permit);
        self.slot_freed.notify_one();
    }

    async fn record_failure(
        &self,
        job: &ClaimedJob,
        error: JobError,
    ) -> Result<&'static str, DbError> {
        let (retry_at, message) = match &error {
            JobError::Retryable(m) if job.attempts_left() > 0 => (
                Some(
                    self.opts
                        .backoff
                        .next_run_at(job.attempt, chrono::Utc::now()),
                ),
                m.as_str(),
            ),
            JobError::Retryable(m) | JobError::Permanent(m) => (None, m.as_str()),
        };
        let state = self.store.fail(job, message, retry_at).await?;
        Ok(match state {
            Some(JobState::Retryable) => {
                tracing::warn!(error = %message, retry_at = ?retry_at, "job failed; will retry");
                "retryable"
            }
            Some(_) => {
                tracing::error!(error = %message, "job failed for good; discarded");
                "discarded"
            }
            None => {
                tracing::warn!("lease lost before the failure was recorded");
                "lease_lost"
            }
        })
    }

    /// Renews the lease every third of its length. Returns only when the lease
    /// is lost, which stops the job (its next attempt belongs to someone else).
    async fn keep_lease(&self, job: &ClaimedJob) {
        let every = self.opts.lease / 3;
        loop {
            tokio::time::sleep(every).await;
            match self
                .store
                .renew_lease(job.id, job.lease_id, self.opts.lease)
                .await
            {
                Ok(true) => {}
                Ok(false) => {
                    tracing::warn!("lease lost (rescued or cancelled); stopping the job");
                    return;
                }
                // The database may be back before the lease runs out: keep trying.
                Err(e) => tracing::warn!(error = %e, "could not renew the lease"),
            }
        }
    }

    async fn release(&self, job: &ClaimedJob) {
        match self.store.release(&[(job.id, job.lease_id)]).await {
            Ok(ids) if ids.is_empty() => tracing::warn!("lease lost before release"),
            Ok(_) => tracing::info!("released to the queue at shutdown"),
            Err(e) => {
                tracing::error!(error = %e, "release failed; the lease will expire and the job run again")
            }
        }
    }

    /// Records completions in batches: one statement in flight at a time, and
    /// whatever arrived meanwhile goes into the next one. After `finish` it
    /// records what is left and ends.
    fn spawn_completer(&self, finish: CancellationToken) -> tokio::task::JoinHandle<()> {
        let store = self.store.clone();
        let rx = self.completions_rx.lock().ok().and_then(|mut r| r.take());
        tokio::spawn(async move {
            let Some(mut rx) = rx else {
                tracing::error!("completer already running for this worker");
                return;
            };
            let mut batch = Vec::with_capacity(MAX_COMPLETE_BATCH);
            loop {
                let first = tokio::select! {
                    biased;
                    got = rx.recv() => got,
                    () = finish.cancelled() => None,
                };
                let last_round = first.is_none();
                batch.extend(first);
                while batch.len() < MAX_COMPLETE_BATCH {
                    match rx.try_recv() {
                        Ok(done) => batch.push(done),
                        Err(_) => break,
                    }
                }
                if !batch.is_empty() {
                    flush_completions(&store, &batch).await;
                    batch.clear();
                    continue; // there may be more than one batch left
                }
                if last_round {
                    break;
                }
            }
        })
    }

    /// Rescues expired leases (of crashed workers) on a timer.
    fn spawn_maintenance(&self, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
        let store = self.store.clone();
        let every = (self.opts.lease / 2).max(Duration::from_secs(1));
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(every) => {}
                }
                match store.rescue_expired().await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(rescued = n, "expired leases returned to the queue"),
                    Err(e) => tracing::warn!(error = %e, "lease rescue failed"),
                }
            }
        })
    }
}

/// Records one batch of completions, retrying through a short outage. If the
/// database stays away the leases expire and the jobs run again: at least once.
async fn flush_completions(store: &Store, batch: &[(JobId, LeaseId)]) {
    let mut delay = Duration::from_millis(50);
    for attempt in 1..=10 {
        match store.complete(batch).await {
            Ok(done) => {
                if done.len() < batch.len() {
                    tracing::warn!(
                        lost = batch.len() - done.len(),
                        "completions not recorded: lease lost (rescued or cancelled meanwhile)"
                    );
                }
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, attempt, jobs = batch.len(), "could not record completions; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(2));
            }
        }
    }
    tracing::error!(
        jobs = batch.len(),
        "completions lost; those jobs will run again after their leases expire"
    );
}
