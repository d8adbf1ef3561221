//! `callyzer_reconcile_page`: the page job of a Callyzer reconciliation run.
//!
//! Rate-limited (the kind's `min_interval` above zero): one job, one page. It
//! sends the request its args carry, outside any transaction, marks the
//! answer's arrival (the next page's claim is spaced from it, not from this
//! claim), then applies its calls through the webhook path's set-based upsert
//! (source `api`; calls stored and unchanged are skipped by it) and moves the
//! run on in one transaction. The rate limit is not here: the kind's
//! `min_interval` spaces the claims across every worker process.
//!
//! Unlimited (`min_interval` zero, so the job was enqueued with `burst`): the
//! job reads its whole chunk itself. Requests stay one at a time and in page
//! order, each sent as soon as the previous answer arrived, so a failure stops
//! everything after it exactly as one job per page would; the calls are
//! applied in batches of pages, a few batches side by side, each batch with its
//! share of the run's progress in one transaction. Only the run's page job,
//! under its current lease, may record a batch, and a page is counted once.
//!
//! Either way a failed request is handed to SQL, which retries the same page
//! as a new job (after `Retry-After` for 429, after a backoff for transient
//! failures) or fails the run (auth: with an alert). The run row fences
//! everything: a page job that runs twice (a lost lease) changes nothing, and a
//! killed worker's job goes on, when rescued, from the first page not applied.
//! Not here: planning the window and moving the cursor (SQL,
//! `callsync.callyzer_reconcile_start` / `callyzer_sync_finish`).
use super::callyzer_call_in::{apply_calls, CallSource};
use super::{Handler, JobError};
use crate::clients::callyzer::{CallyzerClient, HistoryQuery, PageOutcome};
use crate::db::DbError;
use crate::domain::call_record::{parse_record, CallRecord, RecordProblem};
use crate::queue::ClaimedJob;
use deadpool_postgres::Pool;
use futures_util::future::BoxFuture;
use serde_json::Value;
use std::sync::Arc;
use tokio::task::JoinSet;

/// How often a burst asks whether it may still go on (rate limit, fences).
const CHECK_EVERY: std::time::Duration = std::time::Duration::from_millis(100);

/// The kind name (`callsync.job.kind`), enqueued by the reconciliation SQL.
pub const KIND: &str = "callyzer_reconcile_page";

const LOAD: &str = include_str!("../../sql/queries/callyzer_sync_run_load_page.sql");
const DONE: &str = include_str!("../../sql/queries/callyzer_sync_run_page_done.sql");
const FAIL: &str = include_str!("../../sql/queries/callyzer_sync_run_page_fail.sql");
const MARK: &str = include_str!("../../sql/queries/job_kind_mark_request.sql");
const START: &str = include_str!("../../sql/queries/callyzer_sync_run_start.sql");
const BURST_LOAD: &str = include_str!("../../sql/queries/callyzer_sync_run_burst_load.sql");
const BATCH_DONE: &str = include_str!("../../sql/queries/callyzer_sync_run_batch_done.sql");
const YIELD: &str = include_str!("../../sql/queries/callyzer_sync_run_burst_yield.sql");

/// Starts a reconciliation run now (`callsync reconcile`): over `from..to`
/// (the cursor does not move), or with neither over the usual cursor window.
/// Returns the run id, or `None` while another run is still going.
///
/// # Errors
/// [`DbError`], e.g. a window that ends before it starts.
pub async fn start_run(
    pool: &Pool,
    from: Option<chrono::DateTime<chrono::Utc>>,
    to: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<Option<i64>, DbError> {
    let client = pool.get().await?;
    let stmt = client.prepare_cached(START).await?;
    let trigger = if from.is_some() || to.is_some() {
        "operator"
    } else {
        "schedule"
    };
    Ok(client
        .query_one(&stmt, &[&from, &to, &trigger])
        .await?
        .try_get(0)?)
}

/// Reads `2026-01-01T10:00:00Z` (RFC 3339) or `2026-01-01` (midnight UTC).
///
/// # Errors
/// A message saying which forms are accepted.
pub fn parse_instant(s: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s.trim()) {
        return Ok(t.with_timezone(&chrono::Utc));
    }
    chrono::NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
        .ok_or_else(|| format!("{s:?}: expected 2026-01-01T10:00:00Z or 2026-01-01"))
}

/// The handler: the worker's pool and the API client (`None`: not configured).
pub struct CallyzerReconcilePage {
    pool: Pool,
    client: Option<CallyzerClient>,
}

impl CallyzerReconcilePage {
    /// A handler on `pool` (role `callsync_worker`) asking `client`.
    pub fn new(pool: Pool, client: Option<CallyzerClient>) -> Self {
        CallyzerReconcilePage { pool, client }
    }
}

/// Which page of which run a job is about.
#[derive(Debug, Clone, Copy)]
struct PageRef {
    run_id: i64,
    chunk: i32,
    page: i32,
}

impl PageRef {
    fn from_args(args: &Value) -> Result<Self, JobError> {
        let int = |k: &str| args.get(k).and_then(Value::as_i64);
        match (int("run_id"), int("chunk"), int("page")) {
            (Some(run_id), Some(chunk), Some(page)) => Ok(PageRef {
                run_id,
                chunk: i32::try_from(chunk).map_err(JobError::permanent)?,
                page: i32::try_from(page).map_err(JobError::permanent)?,
            }),
            _ => Err(JobError::Permanent(
                "args need integer run_id, chunk and page".into(),
            )),
        }
    }
}

/// Parses API rows: each row is a flat call-log record carrying its employee's
/// fields, so it serves as both the employee and the call of the webhook parser.
pub fn parse_rows(rows: &[Value], default_country: &str) -> (Vec<CallRecord>, Vec<RecordProblem>) {
    let mut records = Vec::with_capacity(rows.len());
    let mut problems = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        let problem = |call_id: Option<String>, error: String, stored: bool| RecordProblem {
            employee: 0,
            call: Some(i),
            call_id,
            error,
            stored,
        };
        let Some(obj) = row.as_object() else {
            problems.push(problem(None, "call record is not an object".into(), false));
            continue;
        };
        match parse_record(obj, row, default_country) {
            Ok((record, warnings)) => {
                for w in warnings {
                    problems.push(problem(Some(record.id.clone()), w, true));
                }
                records.push(record);
            }
            Err((id, error)) => problems.push(problem(id, error, false)),
        }
    }
    (records, problems)
}

/// The request carried in a page job's args (`None` when they lack it).
fn request_from_args(args: &Value, at: PageRef) -> Option<(HistoryQuery, Option<String>)> {
    let query = HistoryQuery {
        synced_from: args.get("synced_from")?.as_i64()?,
        synced_to: args.get("synced_to")?.as_i64()?,
        emp_numbers: args
            .get("emp_numbers")?
            .as_array()?
            .iter()
            .map(|n| n.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()?,
        page_no: at.page,
        page_size: i32::try_from(args.get("page_size")?.as_i64()?).ok()?,
    };
    let default_country = args
        .get("default_country_code")
        .and_then(Value::as_str)
        .map(str::to_string);
    Some((query, default_country))
}

impl CallyzerReconcilePage {
    /// The request for `at` from the run row; `None` when the run moved on.
    async fn load_request(
        &self,
        at: PageRef,
    ) -> Result<Option<(HistoryQuery, Option<String>)>, JobError> {
        let client = self.pool.get().await.map_err(DbError::from)?;
        let stmt = client.prepare_cached(LOAD).await.map_err(DbError::from)?;
        let Some(row) = client
            .query_opt(&stmt, &[&at.run_id, &at.chunk, &at.page])
            .await
            .map_err(DbError::from)?
        else {
            return Ok(None);
        };
        let query = HistoryQuery {
            synced_from: row.try_get(0).map_err(DbError::from)?,
            synced_to: row.try_get(1).map_err(DbError::from)?,
            emp_numbers: row.try_get(2).map_err(DbError::from)?,
            page_no: at.page,
            page_size: row.try_get(3).map_err(DbError::from)?,
        };
        Ok(Some((query, row.try_get(4).map_err(DbError::from)?)))
    }

    /// Hands a failed request to SQL. `Ok` when the page was rescheduled (or the
    /// run had moved on), the run's failure as a permanent error otherwise.
    async fn failed(
        &self,
        at: PageRef,
        kind: &str,
        error: &str,
        retry_after: Option<std::time::Duration>,
    ) -> Result<(), JobError> {
        let client = self.pool.get().await.map_err(DbError::from)?;
        let stmt = client.prepare_cached(FAIL).await.map_err(DbError::from)?;
        let secs = retry_after.map(|d| d.as_secs_f64());
        let status: String = client
            .query_one(
                &stmt,
                &[&at.run_id, &at.chunk, &at.page, &kind, &error, &secs],
            )
            .await
            .map_err(DbError::from)?
            .try_get(0)
            .map_err(DbError::from)?;
        match status.as_str() {
            "retry" => {
                tracing::warn!(run.id = at.run_id, chunk = at.chunk, page = at.page, failure = kind, error = %error, "callyzer page failed; the same page is scheduled again");
                Ok(())
            }
            "stale" => Ok(()),
            _ => Err(JobError::Permanent(format!(
                "reconciliation run {} failed ({kind}): {error}",
                at.run_id
            ))),
        }
    }
}

impl Handler for CallyzerReconcilePage {
    fn run<'a>(&'a self, job: &'a ClaimedJob) -> BoxFuture<'a, Result<(), JobError>> {
        Box::pin(async move {
            let at = PageRef::from_args(&job.args)?;
            // Enqueued while the kind had no rate limit: read the chunk back to back.
            if job.args.get("burst").and_then(Value::as_bool) == Some(true) {
                return self.burst(job, at).await;
            }
            // The request travels in the args (migration
            // alter_callyzer_reconcile_page_args); older jobs ask the database.
            let (query, default_country) = match request_from_args(&job.args, at) {
                Some(r) => r,
                None => match self.load_request(at).await? {
                    Some(r) => r,
                    None => {
                        tracing::info!(
                            run.id = at.run_id,
                            "the run is past this page; nothing to do"
                        );
                        return Ok(());
                    }
                },
            };
            self.single_page(at, &query, default_country.as_deref())
                .await
        })
    }
}

impl CallyzerReconcilePage {
    /// One page, one request (the rate-limited way): fetch, mark the answer's
    /// arrival, then apply and move the run on in one transaction.
    async fn single_page(
        &self,
        at: PageRef,
        query: &HistoryQuery,
        default_country: Option<&str>,
    ) -> Result<(), JobError> {
        let Some(api) = &self.client else {
            return self.not_configured(at).await;
        };
        let answer = api.history_page(query).await;
        // Space the next request from this answer, not from this job's
        // claim: the server saw our request before it answered, so
        // whatever delayed the request on its way, the next one (claimed
        // min_interval after this moment at the earliest) arrives later.
        {
            let client = self.pool.get().await.map_err(DbError::from)?;
            let stmt = client.prepare_cached(MARK).await.map_err(DbError::from)?;
            client.execute(&stmt, &[]).await.map_err(DbError::from)?;
        }
        let (rows, total_records) = match answer {
            PageOutcome::Page {
                rows,
                total_records,
            } => (rows, total_records),
            failure => return self.request_failed(at, failure).await,
        };

        let applying = std::time::Instant::now();
        let (records, problems) = parse_rows(&rows, default_country.unwrap_or(""));
        let fetched = i32::try_from(rows.len()).unwrap_or(i32::MAX);
        let mut client = self.pool.get().await.map_err(DbError::from)?;
        let tx = client.transaction().await.map_err(DbError::from)?;
        let summary = apply_calls(&tx, None, &records, &problems, CallSource::Api).await?;
        let stmt = tx.prepare_cached(DONE).await.map_err(DbError::from)?;
        let status: String = tx
            .query_one(
                &stmt,
                &[
                    &at.run_id,
                    &at.chunk,
                    &at.page,
                    &fetched,
                    &total_records,
                    &summary,
                ],
            )
            .await
            .map_err(DbError::from)?
            .try_get(0)
            .map_err(DbError::from)?;
        if status == "stale" {
            tx.rollback().await.map_err(DbError::from)?;
            return Ok(());
        }
        tx.commit().await.map_err(DbError::from)?;
        log_applied(
            at.run_id,
            at.chunk,
            (at.page, at.page),
            fetched,
            &summary,
            &status,
            applying,
        );
        if status == "failed" {
            return Err(JobError::Permanent(format!(
                "reconciliation run {} failed after page {}",
                at.run_id, at.page
            )));
        }
        Ok(())
    }

    async fn not_configured(&self, at: PageRef) -> Result<(), JobError> {
        self.failed(
            at,
            "permanent",
            "Callyzer API not configured: set CALLYZER_API_TOKEN",
            None,
        )
        .await
    }

    /// Hands an answer other than a page to SQL (see [`Self::failed`]).
    async fn request_failed(&self, at: PageRef, answer: PageOutcome) -> Result<(), JobError> {
        match answer {
            PageOutcome::Page { .. } => Ok(()),
            PageOutcome::RateLimited { retry_after } => {
                self.failed(
                    at,
                    "rate_limited",
                    "HTTP 429 Too Many Requests",
                    retry_after,
                )
                .await
            }
            PageOutcome::Unauthorized(m) => self.failed(at, "auth", &m, None).await,
            PageOutcome::Rejected(m) => self.failed(at, "permanent", &m, None).await,
            PageOutcome::Transient(m) => self.failed(at, "transient", &m, None).await,
        }
    }

    /// The run's chunk, read back to back (the kind has no rate limit): one
    /// request at a time, in page order, each sent as soon as the previous
    /// answer arrived; the pages' calls applied in batches of `batch_pages`,
    /// up to `parallel_applies` batches side by side, each with its part of
    /// the run's progress in one transaction (callyzer_sync_batch_done). A
    /// failed request stops the requests: the batches before it are applied,
    /// then the page goes to SQL as in the one-page way (retried as a new job,
    /// or the run fails). A rate limit set meanwhile stops the burst within
    /// [`CHECK_EVERY`] and hands the position to a rate-limited page job.
    async fn burst(&self, job: &ClaimedJob, at: PageRef) -> Result<(), JobError> {
        let Some(plan) = self.burst_load(job, at).await? else {
            tracing::info!(
                run.id = at.run_id,
                "not the run's page job (or not under this lease) any more; nothing to do"
            );
            return Ok(());
        };
        let here = PageRef {
            page: plan.page_no,
            ..at
        };
        let Some(api) = &self.client else {
            return self.not_configured(here).await;
        };
        if !plan.unlimited {
            // a rate limit was set after this job was enqueued: one request per claim again
            return self
                .single_page(
                    here,
                    &plan.query(plan.page_no),
                    Some(plan.default_country.as_str()),
                )
                .await;
        }

        let ctx = Arc::new(BatchContext {
            pool: self.pool.clone(),
            job_id: job.id.0,
            lease_id: job.lease_id.0,
            run_id: at.run_id,
            chunk: at.chunk,
            default_country: plan.default_country.clone(),
        });
        // Dropped with this future (lost lease, shutdown): unfinished batches
        // are aborted and roll back; their pages are read again by the next attempt.
        let started = std::time::Instant::now();
        let mut applies: JoinSet<Result<BatchOutcome, JobError>> = JoinSet::new();
        let mut progress = BurstProgress::default();
        let mut batch = Batch::default();
        let mut page = plan.page_no;
        let mut last_check = std::time::Instant::now();
        let mut failure: Option<(i32, PageOutcome)> = None;
        let page_size = usize::try_from(plan.page_size).unwrap_or(usize::MAX);
        loop {
            if let Some(ahead) = plan.ahead.iter().find(|a| a.first == page) {
                // applied by an earlier attempt ahead of the position: not again
                spawn_batch(&mut applies, &mut progress, &ctx, &mut batch, plan.parallel).await;
                page = ahead.last + 1;
                if !ahead.more {
                    break;
                }
                continue;
            }
            // A rate limit set meanwhile (or the run taken from this job) stops
            // the requests within CHECK_EVERY, not only at the next batch's commit,
            // which with big batches could be many requests later.
            if last_check.elapsed() >= CHECK_EVERY {
                last_check = std::time::Instant::now();
                match self.burst_load(job, at).await? {
                    Some(now) if now.unlimited => {}
                    Some(_) => {
                        progress.limited = true;
                        break;
                    }
                    None => {
                        progress.stale = true;
                        break;
                    }
                }
            }
            let asked = std::time::Instant::now();
            let answer = api.history_page(&plan.query(page)).await;
            progress.requests += asked.elapsed();
            progress.requests_sent += 1;
            match answer {
                PageOutcome::Page {
                    rows,
                    total_records,
                } => {
                    let more = rows.len() >= page_size
                        && total_records
                            .map_or(true, |t| i64::from(page) * i64::from(plan.page_size) < t);
                    let last = !more || page >= plan.max_pages;
                    batch.push(page, rows, total_records);
                    if last || batch.pages >= plan.batch_pages {
                        spawn_batch(&mut applies, &mut progress, &ctx, &mut batch, plan.parallel)
                            .await;
                    }
                    if last {
                        break;
                    }
                    page += 1;
                }
                answer => {
                    failure = Some((page, answer));
                    break;
                }
            }
            while let Some(done) = applies.try_join_next() {
                progress.absorb(done);
            }
            if progress.must_stop() {
                break;
            }
        }
        // pages already fetched are applied even when a rate limit appeared (no
        // request in that), not after a refused or failed batch
        if progress.error.is_none() && !progress.failed && !progress.stale {
            spawn_batch(&mut applies, &mut progress, &ctx, &mut batch, plan.parallel).await;
        }
        let waiting = std::time::Instant::now();
        while let Some(done) = applies.join_next().await {
            progress.absorb(done);
        }
        progress.waiting_for_applies += waiting.elapsed();
        tracing::info!(
            run.id = at.run_id,
            chunk = at.chunk,
            pages.first = plan.page_no,
            pages.next = page,
            requests = progress.requests_sent,
            batches = progress.batches,
            elapsed_ms = started.elapsed().as_millis() as u64,
            requests_ms = progress.requests.as_millis() as u64,
            waiting_for_applies_ms = progress.waiting_for_applies.as_millis() as u64,
            "callyzer burst ended"
        );

        if let Some(error) = progress.error {
            // database trouble: the job runs again and goes on from the run's position
            return Err(error);
        }
        if progress.failed {
            return Err(JobError::Permanent(format!(
                "reconciliation run {} failed",
                at.run_id
            )));
        }
        if progress.stale {
            tracing::info!(
                run.id = at.run_id,
                "the run moved on without this job; stopping"
            );
            return Ok(());
        }
        if let Some((page, answer)) = failure {
            return self.request_failed(PageRef { page, ..at }, answer).await;
        }
        if progress.limited && !progress.chunk_done {
            let client = self.pool.get().await.map_err(DbError::from)?;
            let stmt = client.prepare_cached(YIELD).await.map_err(DbError::from)?;
            let status: String = client
                .query_one(&stmt, &[&at.run_id, &job.id.0, &job.lease_id.0])
                .await
                .map_err(DbError::from)?
                .try_get(0)
                .map_err(DbError::from)?;
            tracing::info!(run.id = at.run_id, status = %status, "a rate limit was set: the run goes on one request per claim");
        }
        Ok(())
    }

    /// The burst's plan from the run row; `None` unless this job, under this
    /// lease, is the run's page job at `at.chunk`.
    async fn burst_load(
        &self,
        job: &ClaimedJob,
        at: PageRef,
    ) -> Result<Option<BurstPlan>, JobError> {
        let client = self.pool.get().await.map_err(DbError::from)?;
        let stmt = client
            .prepare_cached(BURST_LOAD)
            .await
            .map_err(DbError::from)?;
        let Some(row) = client
            .query_opt(&stmt, &[&at.run_id, &job.id.0, &job.lease_id.0, &at.chunk])
            .await
            .map_err(DbError::from)?
        else {
            return Ok(None);
        };
        let get_i32 =
            |i: usize| -> Result<i32, JobError> { Ok(row.try_get(i).map_err(DbError::from)?) };
        let ahead: Value = row.try_get(6).map_err(DbError::from)?;
        let ahead = ahead
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| {
                        Some(Ahead {
                            first: i32::try_from(e.get("first")?.as_i64()?).ok()?,
                            last: i32::try_from(e.get("last")?.as_i64()?).ok()?,
                            more: e.get("more")?.as_bool()?,
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(Some(BurstPlan {
            synced_from: row.try_get(0).map_err(DbError::from)?,
            synced_to: row.try_get(1).map_err(DbError::from)?,
            emp_numbers: row.try_get(2).map_err(DbError::from)?,
            page_size: get_i32(3)?,
            default_country: row
                .try_get::<_, Option<String>>(4)
                .map_err(DbError::from)?
                .unwrap_or_default(),
            page_no: get_i32(5)?,
            ahead,
            unlimited: row.try_get(7).map_err(DbError::from)?,
            batch_pages: usize::try_from(get_i32(8)?).unwrap_or(1).max(1),
            parallel: usize::try_from(get_i32(9)?).unwrap_or(1).max(1),
            max_pages: get_i32(10)?,
        }))
    }
}

/// A batch applied ahead of the run's position by an earlier attempt.
#[derive(Debug, Clone, Copy)]
struct Ahead {
    first: i32,
    last: i32,
    /// false: its last page ended the chunk
    more: bool,
}

/// What a burst reads its chunk with (callyzer_sync_burst_load).
struct BurstPlan {
    synced_from: i64,
    synced_to: i64,
    emp_numbers: Vec<String>,
    page_size: i32,
    default_country: String,
    /// the first page not applied yet
    page_no: i32,
    ahead: Vec<Ahead>,
    unlimited: bool,
    batch_pages: usize,
    parallel: usize,
    max_pages: i32,
}

impl BurstPlan {
    fn query(&self, page_no: i32) -> HistoryQuery {
        HistoryQuery {
            synced_from: self.synced_from,
            synced_to: self.synced_to,
            emp_numbers: self.emp_numbers.clone(),
            page_no,
            page_size: self.page_size,
        }
    }
}

/// Consecutive fetched pages waiting to be applied together.
#[derive(Default)]
struct Batch {
    first: i32,
    last: i32,
    pages: usize,
    rows: Vec<Value>,
    /// rows and `total_records` of the last page: whether it ended the chunk
    last_rows: i32,
    total_records: Option<i64>,
}

impl Batch {
    fn push(&mut self, page: i32, rows: Vec<Value>, total_records: Option<i64>) {
        if self.pages == 0 {
            self.first = page;
        }
        self.last = page;
        self.pages += 1;
        self.last_rows = i32::try_from(rows.len()).unwrap_or(i32::MAX);
        self.total_records = total_records;
        self.rows.extend(rows);
    }
}

/// What every batch of one burst shares.
struct BatchContext {
    pool: Pool,
    job_id: i64,
    lease_id: uuid::Uuid,
    run_id: i64,
    chunk: i32,
    default_country: String,
}

/// What one batch's transaction came to.
struct BatchOutcome {
    status: String,
    unlimited: bool,
}

/// The burst's view of its batches so far.
#[derive(Default)]
struct BurstProgress {
    /// a batch could not be applied (database trouble)
    error: Option<JobError>,
    /// the run failed (max pages)
    failed: bool,
    /// a batch was refused: another attempt or job has the run
    stale: bool,
    /// a rate limit was set meanwhile
    limited: bool,
    /// the chunk's last batch committed (the next chunk's job is enqueued, or the run ended)
    chunk_done: bool,
    /// where the burst's time went (logged at its end): waiting for Callyzer's
    /// answers, and waiting for a batch slot (the applies being the slower side)
    requests: std::time::Duration,
    waiting_for_applies: std::time::Duration,
    requests_sent: u32,
    batches: u32,
}

impl BurstProgress {
    fn absorb(&mut self, done: Result<Result<BatchOutcome, JobError>, tokio::task::JoinError>) {
        match done {
            Ok(Ok(outcome)) => {
                match outcome.status.as_str() {
                    "stale" => self.stale = true,
                    "failed" => self.failed = true,
                    "next_chunk" | "succeeded" => self.chunk_done = true,
                    _ => {}
                }
                self.limited |= !outcome.unlimited;
            }
            Ok(Err(e)) => {
                self.error.get_or_insert(e);
            }
            Err(e) => {
                self.error
                    .get_or_insert(JobError::retryable(format!("batch task: {e}")));
            }
        }
    }

    /// No more requests: they would be wasted or, with a rate limit, too many.
    fn must_stop(&self) -> bool {
        self.error.is_some() || self.failed || self.stale || self.limited
    }
}

/// Starts applying `batch` (if it has pages), first waiting for a free slot
/// among `parallel` batches in flight.
async fn spawn_batch(
    applies: &mut JoinSet<Result<BatchOutcome, JobError>>,
    progress: &mut BurstProgress,
    ctx: &Arc<BatchContext>,
    batch: &mut Batch,
    parallel: usize,
) {
    if batch.pages == 0 {
        return;
    }
    let waiting = std::time::Instant::now();
    while applies.len() >= parallel {
        match applies.join_next().await {
            Some(done) => progress.absorb(done),
            None => break,
        }
    }
    progress.waiting_for_applies += waiting.elapsed();
    progress.batches += 1;
    let batch = std::mem::take(batch);
    let ctx = ctx.clone();
    applies.spawn(async move { apply_batch(&ctx, batch).await });
}

/// Parses and applies one batch and records it on the run, in one transaction
/// (rolled back when the run refuses it as stale).
async fn apply_batch(ctx: &BatchContext, batch: Batch) -> Result<BatchOutcome, JobError> {
    let applying = std::time::Instant::now();
    let (records, problems) = parse_rows(&batch.rows, &ctx.default_country);
    let fetched = i32::try_from(batch.rows.len()).unwrap_or(i32::MAX);
    // the records hold what is needed; the worker's peak memory is a target
    let batch = Batch {
        rows: Vec::new(),
        ..batch
    };
    let mut client = ctx.pool.get().await.map_err(DbError::from)?;
    let tx = client.transaction().await.map_err(DbError::from)?;
    let summary = apply_calls(&tx, None, &records, &problems, CallSource::Api).await?;
    let stmt = tx.prepare_cached(BATCH_DONE).await.map_err(DbError::from)?;
    let row = tx
        .query_one(
            &stmt,
            &[
                &ctx.run_id,
                &ctx.job_id,
                &ctx.lease_id,
                &ctx.chunk,
                &batch.first,
                &batch.last,
                &fetched,
                &batch.last_rows,
                &batch.total_records,
                &summary,
            ],
        )
        .await
        .map_err(DbError::from)?;
    let status: String = row.try_get(0).map_err(DbError::from)?;
    let unlimited: bool = row.try_get(1).map_err(DbError::from)?;
    if status == "stale" {
        tx.rollback().await.map_err(DbError::from)?;
    } else {
        tx.commit().await.map_err(DbError::from)?;
        log_applied(
            ctx.run_id,
            ctx.chunk,
            (batch.first, batch.last),
            fetched,
            &summary,
            &status,
            applying,
        );
    }
    Ok(BatchOutcome { status, unlimited })
}

/// One applied page or batch, in the log.
fn log_applied(
    run_id: i64,
    chunk: i32,
    pages: (i32, i32),
    fetched: i32,
    summary: &Value,
    next: &str,
    started: std::time::Instant,
) {
    let count = |k: &str| summary.get(k).and_then(Value::as_i64).unwrap_or(0);
    tracing::info!(
        run.id = run_id,
        chunk = chunk,
        page = pages.0,
        last_page = pages.1,
        calls.fetched = fetched,
        calls.inserted = count("inserted"),
        calls.updated = count("updated"),
        calls.unchanged = count("unchanged"),
        calls.rejected = count("rejected"),
        next = %next,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "callyzer page applied"
    );
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn api_rows_parse_with_their_own_employee_fields() {
        let rows = vec![
            json!({"id": "a", "emp_code": "S1", "emp_country_code": "48", "emp_number": "600100200",
                   "client_country_code": "48", "client_number": "601202303", "duration": 5,
                   "call_type": "Outgoing", "call_date": "2026-01-01", "call_time": "10:00:00",
                   "modified_at": "2026-01-01 10:01:00 +03"}),
            json!({"emp_code": "S1", "call_type": "Outgoing"}),
            json!("garbage"),
        ];
        let (records, problems) = parse_rows(&rows, "48");
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].emp_code.as_deref(), Some("S1"));
        assert_eq!(problems.iter().filter(|p| !p.stored).count(), 2);
    }

    #[test]
    fn page_args_are_required() {
        assert!(PageRef::from_args(&json!({"run_id": 1, "chunk": 0})).is_err());
        assert!(PageRef::from_args(&json!({"run_id": 1, "chunk": 0, "page": 2})).is_ok());
    }
}
