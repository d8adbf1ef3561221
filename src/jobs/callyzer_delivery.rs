//! `callyzer_delivery`: processes one stored Callyzer webhook delivery. Loads
//! the raw event, parses it into [`CallRecord`](crate::domain::call_record::CallRecord)s (a bad record becomes a
//! reported problem, the rest go on), and applies all of them with one
//! set-based SQL call that also marks the event processed (together with the
//! other deliveries ready at that moment: `callyzer_apply_batcher`). Running it twice is
//! harmless: the upsert keeps the newest copy of each call. Not here: HTTP
//! (the Edge Function stored the event) and matching rules (SQL).
use super::callyzer_apply_batcher::{ApplyBatcher, Delivery};
use super::{Handler, JobError};
use crate::domain::call_record::parse_delivery;
use crate::queue::ClaimedJob;
use deadpool_postgres::Pool;
use futures_util::future::BoxFuture;
use std::sync::OnceLock;

/// The kind name (`callsync.job.kind`), enqueued by `public.ingest_callyzer_webhook`.
pub const KIND: &str = "callyzer_delivery";

const LOAD: &str = include_str!("../../sql/queries/webhook_event_load_callyzer.sql");
const FAIL: &str = include_str!("../../sql/queries/webhook_event_fail_callyzer.sql");

/// The handler; holds the pool it runs its statements on.
pub struct CallyzerDelivery {
    pool: Pool,
    /// Started on the first run, on the runtime the worker runs on.
    batcher: OnceLock<ApplyBatcher>,
}

impl CallyzerDelivery {
    /// A handler on `pool` (the worker's pool, role `callsync_worker`).
    pub fn new(pool: Pool) -> Self {
        CallyzerDelivery {
            pool,
            batcher: OnceLock::new(),
        }
    }

    fn batcher(&self) -> &ApplyBatcher {
        self.batcher
            .get_or_init(|| ApplyBatcher::start(self.pool.clone()))
    }
}

impl Handler for CallyzerDelivery {
    fn run<'a>(&'a self, job: &'a ClaimedJob) -> BoxFuture<'a, Result<(), JobError>> {
        Box::pin(async move {
            let event_id = job
                .args
                .get("event_id")
                .and_then(serde_json::Value::as_i64)
                .ok_or_else(|| JobError::Permanent("args have no integer event_id".into()))?;
            let client = self.pool.get().await.map_err(crate::db::DbError::from)?;
            let stmt = client
                .prepare_cached(LOAD)
                .await
                .map_err(crate::db::DbError::from)?;
            let row = client
                .query_opt(&stmt, &[&event_id])
                .await
                .map_err(crate::db::DbError::from)?
                .ok_or_else(|| {
                    JobError::Permanent(format!("callyzer event {event_id} does not exist"))
                })?;
            let body: serde_json::Value = row.try_get(0).map_err(crate::db::DbError::from)?;
            let status: String = row.try_get(1).map_err(crate::db::DbError::from)?;
            let default_country: Option<String> =
                row.try_get(2).map_err(crate::db::DbError::from)?;
            if status == "failed" {
                // an operator's retry of a delivery already judged unusable: same answer
                return Err(JobError::Permanent(format!(
                    "callyzer event {event_id} was marked failed"
                )));
            }

            let delivery = match parse_delivery(&body, default_country.as_deref().unwrap_or("")) {
                Ok(d) => d,
                Err(shape) => {
                    let stmt = client
                        .prepare_cached(FAIL)
                        .await
                        .map_err(crate::db::DbError::from)?;
                    client
                        .execute(&stmt, &[&event_id, &shape.to_string()])
                        .await
                        .map_err(crate::db::DbError::from)?;
                    return Err(JobError::Permanent(shape.to_string()));
                }
            };
            // Nothing but the parsed calls is held while the delivery waits for its
            // batch: not the connection, not the raw body (with 32 jobs at once the
            // raw copies tripled the worker's peak memory).
            drop((client, row, body));
            let (parsed, refused) = (delivery.records.len(), delivery.problems.len());
            let summary = self
                .batcher()
                .apply(Delivery {
                    event_id,
                    records: delivery.records,
                    problems: delivery.problems,
                })
                .await?;
            let count = |k: &str| {
                summary
                    .get(k)
                    .and_then(serde_json::Value::as_i64)
                    .unwrap_or(0)
            };
            // `batch.*`: the statement that applied this delivery with the others ready then
            tracing::info!(
                event.id = event_id,
                calls.parsed = parsed,
                calls.problems = refused,
                batch.received = count("received"),
                batch.inserted = count("inserted"),
                batch.updated = count("updated"),
                batch.unchanged = count("unchanged"),
                batch.matched = count("matched"),
                batch.unmatched = count("unmatched"),
                batch.rejected = count("rejected"),
                "callyzer delivery applied"
            );
            Ok(())
        })
    }
}
