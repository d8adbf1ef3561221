//! The queue's statements: claim, complete, fail, renew, release, rescue,
//! enqueue. The only Rust file that speaks SQL to the queue; each statement is a
//! named file under `sql/queries` with bound parameters only.
use super::{ClaimedJob, JobId, JobState, LeaseId};
use crate::db::DbError;
use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use std::time::Duration;

const CLAIM: &str = include_str!("../../sql/queries/job_claim.sql");
const COMPLETE: &str = include_str!("../../sql/queries/job_complete.sql");
const FAIL: &str = include_str!("../../sql/queries/job_fail.sql");
const RENEW: &str = include_str!("../../sql/queries/job_renew_lease.sql");
const RELEASE: &str = include_str!("../../sql/queries/job_release.sql");
const RESCUE: &str = include_str!("../../sql/queries/job_rescue.sql");
const ENQUEUE: &str = include_str!("../../sql/queries/job_enqueue.sql");

/// A new job, as [`Store::enqueue`] takes it.
#[derive(Debug, Clone)]
pub struct NewJob {
    /// Handler name.
    pub kind: String,
    /// Handler input.
    pub args: serde_json::Value,
    /// Lower runs first; 100 by default.
    pub priority: i16,
    /// Not before this time (now when `None`).
    pub run_at: Option<DateTime<Utc>>,
    /// At most one live job per key.
    pub unique_key: Option<String>,
    /// Overrides the `queue.max_attempts` setting.
    pub max_attempts: Option<i32>,
}

impl NewJob {
    /// A job of `kind` with `args` and every default.
    pub fn new(kind: impl Into<String>, args: serde_json::Value) -> Self {
        NewJob {
            kind: kind.into(),
            args,
            priority: 100,
            run_at: None,
            unique_key: None,
            max_attempts: None,
        }
    }
}

/// Runs queue statements on a pool.
#[derive(Clone)]
pub struct Store {
    pool: Pool,
}

impl Store {
    /// A store on `pool`.
    pub fn new(pool: Pool) -> Self {
        Store { pool }
    }

    /// The pool, for handlers that need their own statements.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Leases up to `limit` due jobs to `worker_id` for `lease`.
    ///
    /// # Errors
    /// [`DbError`] when the database cannot be reached or the statement fails.
    pub async fn claim(
        &self,
        worker_id: &str,
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<ClaimedJob>, DbError> {
        let client = self.pool.get().await?;
        let stmt = client.prepare_cached(CLAIM).await?;
        let limit = i32::try_from(limit).unwrap_or(i32::MAX);
        let rows = client
            .query(&stmt, &[&worker_id, &limit, &interval(lease)])
            .await?;
        rows.iter()
            .map(|r| {
                Ok(ClaimedJob {
                    id: JobId(r.try_get(0)?),
                    kind: r.try_get(1)?,
                    args: r.try_get(2)?,
                    attempt: r.try_get(3)?,
                    max_attempts: r.try_get(4)?,
                    lease_id: LeaseId(r.try_get(5)?),
                    lease_expires_at: r.try_get(6)?,
                    created_at: r.try_get(7)?,
                })
            })
            .collect()
    }

    /// Completes a batch. Returns the jobs whose lease still matched.
    ///
    /// # Errors
    /// [`DbError`]; then nothing was recorded and the leases will expire.
    pub async fn complete(&self, jobs: &[(JobId, LeaseId)]) -> Result<Vec<JobId>, DbError> {
        self.batch(COMPLETE, jobs).await
    }

    /// Gives running jobs back to the queue without counting the attempt.
    ///
    /// # Errors
    /// [`DbError`]; then the leases will expire and the rescuer takes over.
    pub async fn release(&self, jobs: &[(JobId, LeaseId)]) -> Result<Vec<JobId>, DbError> {
        self.batch(RELEASE, jobs).await
    }

    async fn batch(&self, sql: &str, jobs: &[(JobId, LeaseId)]) -> Result<Vec<JobId>, DbError> {
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<i64> = jobs.iter().map(|(id, _)| id.0).collect();
        let leases: Vec<uuid::Uuid> = jobs.iter().map(|(_, l)| l.0).collect();
        let client = self.pool.get().await?;
        let stmt = client.prepare_cached(sql).await?;
        let rows = client.query(&stmt, &[&ids, &leases]).await?;
        rows.iter().map(|r| Ok(JobId(r.try_get(0)?))).collect()
    }

    /// Records a failed attempt: retryable at `retry_at`, or discarded when
    /// `retry_at` is `None` (permanent) or no attempts are left. Returns the new
    /// state, or `None` when the lease was lost and nothing was recorded.
    ///
    /// # Errors
    /// [`DbError`].
    pub async fn fail(
        &self,
        job: &ClaimedJob,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<Option<JobState>, DbError> {
        let client = self.pool.get().await?;
        let stmt = client.prepare_cached(FAIL).await?;
        let row = client
            .query_one(&stmt, &[&job.id.0, &job.lease_id.0, &error, &retry_at])
            .await?;
        let state: Option<String> = row.try_get(0)?;
        Ok(state.as_deref().and_then(JobState::parse))
    }

    /// Extends a running job's lease. False when the lease was already lost.
    ///
    /// # Errors
    /// [`DbError`].
    pub async fn renew_lease(
        &self,
        id: JobId,
        lease: LeaseId,
        length: Duration,
    ) -> Result<bool, DbError> {
        let client = self.pool.get().await?;
        let stmt = client.prepare_cached(RENEW).await?;
        let row = client
            .query_one(&stmt, &[&id.0, &lease.0, &interval(length)])
            .await?;
        Ok(row.try_get(0)?)
    }

    /// Returns expired leases to the queue; how many were rescued.
    ///
    /// # Errors
    /// [`DbError`].
    pub async fn rescue_expired(&self) -> Result<i32, DbError> {
        let client = self.pool.get().await?;
        let stmt = client.prepare_cached(RESCUE).await?;
        Ok(client.query_one(&stmt, &[]).await?.try_get(0)?)
    }

    /// Enqueues one job. `None` when its unique key is held by a live job.
    ///
    /// # Errors
    /// [`DbError`].
    pub async fn enqueue(&self, job: &NewJob) -> Result<Option<JobId>, DbError> {
        let client = self.pool.get().await?;
        let stmt = client.prepare_cached(ENQUEUE).await?;
        let row = client
            .query_one(
                &stmt,
                &[
                    &job.kind,
                    &job.args,
                    &job.priority,
                    &job.run_at,
                    &job.unique_key,
                    &job.max_attempts,
                ],
            )
            .await?;
        Ok(row.try_get::<_, Option<i64>>(0)?.map(JobId))
    }
}

/// Postgres interval text for a duration, exact to the millisecond.
fn interval(d: Duration) -> String {
    format!("{} milliseconds", d.as_millis())
}
