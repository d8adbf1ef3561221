//! `callyzer_reconcile_page`: one page of a Callyzer reconciliation run. Sends
//! the request its args carry, outside any transaction, marks the answer's
//! arrival (the next page's claim is spaced from it, not from this claim), then
//! applies its
//! calls through the webhook path's set-based upsert (source `api`; calls stored
//! and unchanged are skipped by it) and moves the run on in one transaction.
//! A failed request is handed to SQL, which retries the same page as a new job
//! (after `Retry-After` for 429, after a backoff for transient failures) or
//! fails the run (auth: with an alert). The rate limit is not here: the kind's
//! `min_interval` spaces the claims across every worker process. The run row's
//! position fences everything: a page job that runs twice (a lost lease) makes
//! its request again, and its answer is ignored.
//! Not here: planning the window and moving the cursor (SQL,
//! `callsync.callyzer_reconcile_start` / `callyzer_sync_finish`).
use super::callyzer_delivery::{apply_calls, CallSource};
use super::{Handler, JobError};
use crate::clients::callyzer::{CallyzerClient, HistoryQuery, PageOutcome};
use crate::db::DbError;
use crate::domain::call_record::{parse_record, CallRecord, RecordProblem};
use crate::queue::ClaimedJob;
use deadpool_postgres::Pool;
use futures_util::future::BoxFuture;
use serde_json::Value;

/// The kind name (`callsync.job.kind`), enqueued by the reconciliation SQL.
pub const KIND: &str = "callyzer_reconcile_page";

const LOAD: &str = include_str!("../../sql/queries/callyzer_sync_run_load_page.sql");
const DONE: &str = include_str!("../../sql/queries/callyzer_sync_run_page_done.sql");
const FAIL: &str = include_str!("../../sql/queries/callyzer_sync_run_page_fail.sql");
const MARK: &str = include_str!("../../sql/queries/job_kind_mark_request.sql");
const START: &str = include_str!("../../sql/queries/callyzer_sync_run_start.sql");

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

            let Some(api) = &self.client else {
                return self
                    .failed(
                        at,
                        "permanent",
                        "Callyzer API not configured: set CALLYZER_API_TOKEN",
                        None,
                    )
                    .await;
            };
            let answer = api.history_page(&query).await;
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
                PageOutcome::RateLimited { retry_after } => {
                    return self
                        .failed(
                            at,
                            "rate_limited",
                            "HTTP 429 Too Many Requests",
                            retry_after,
                        )
                        .await
                }
                PageOutcome::Unauthorized(m) => return self.failed(at, "auth", &m, None).await,
                PageOutcome::Rejected(m) => return self.failed(at, "permanent", &m, None).await,
                PageOutcome::Transient(m) => return self.failed(at, "transient", &m, None).await,
            };

            let (records, problems) = parse_rows(&rows, default_country.as_deref().unwrap_or(""));
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
            let count = |k: &str| summary.get(k).and_then(Value::as_i64).unwrap_or(0);
            tracing::info!(
                run.id = at.run_id,
                chunk = at.chunk,
                page = at.page,
                calls.fetched = fetched,
                calls.inserted = count("inserted"),
                calls.updated = count("updated"),
                calls.unchanged = count("unchanged"),
                calls.rejected = count("rejected"),
                next = %status,
                "callyzer page applied"
            );
            if status == "failed" {
                return Err(JobError::Permanent(format!(
                    "reconciliation run {} failed after page {}",
                    at.run_id, at.page
                )));
            }
            Ok(())
        })
    }
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
