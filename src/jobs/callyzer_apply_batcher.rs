//! Group commit for Callyzer deliveries: the `callyzer_delivery` jobs that are
//! ready to apply at the same moment hand their parsed calls here, and one
//! statement applies them all (`callsync.callyzer_apply_batch`). Each job
//! still waits for, and reports, its own outcome. A batch that fails is retried
//! one delivery per statement, so a bad delivery fails only its own job.
//! Not here: loading and parsing a delivery (`callyzer_delivery`), the upsert
//! rules (SQL).
use super::callyzer_call_in::{apply_calls, ApplyBatch, CallSource};
use super::JobError;
use crate::db::DbError;
use crate::domain::call_record::{CallRecord, RecordProblem};
use deadpool_postgres::{Object, Pool};
use serde_json::Value;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, Mutex};

/// Most deliveries one statement applies (50 calls each, typically)...
const MAX_DELIVERIES: usize = 16;
/// ...and most calls: the statement's JSON is built in memory at once.
const MAX_CALLS: usize = 2_000;
/// Batch statements in flight at once: one applies while the next gathers.
const APPLIERS: usize = 2;

/// One parsed delivery waiting to be applied.
pub struct Delivery {
    /// `callsync.webhook_event.id`, marked processed by the same statement.
    pub event_id: i64,
    pub records: Vec<CallRecord>,
    pub problems: Vec<RecordProblem>,
}

type Reply = oneshot::Sender<Result<Value, JobError>>;

/// The queue of deliveries to apply and the tasks that apply them.
#[derive(Clone)]
pub struct ApplyBatcher {
    tx: mpsc::UnboundedSender<(Delivery, Reply)>,
}

impl ApplyBatcher {
    /// Starts the appliers on the current Tokio runtime, with `pool` (the
    /// worker's role). They end when the last handle is dropped.
    pub fn start(pool: Pool) -> Self {
        let (tx, rx) = mpsc::unbounded_channel::<(Delivery, Reply)>();
        let rx = Arc::new(Mutex::new(rx));
        for _ in 0..APPLIERS {
            let rx = rx.clone();
            let pool = pool.clone();
            tokio::spawn(async move {
                // The applier keeps its connection: a batch is megabytes of JSON
                // and a connection keeps a buffer the size of the largest message
                // it sent, so batches spread over the whole pool held one such
                // buffer per connection (the webhook worker's peak: 34 -> 112 MiB).
                let mut held: Option<Object> = None;
                while let Some(batch) = next_batch(&rx).await {
                    let client = match held.take() {
                        Some(c) if !c.is_closed() => c,
                        _ => match pool.get().await {
                            Ok(c) => c,
                            Err(e) => {
                                let e = DbError::from(e).to_string();
                                for (_, reply) in batch {
                                    let _ = reply.send(Err(JobError::Retryable(e.clone())));
                                }
                                continue;
                            }
                        },
                    };
                    apply_batch(&client, batch).await;
                    held = Some(client);
                }
            });
        }
        ApplyBatcher { tx }
    }

    /// Applies `delivery` (with whatever else is waiting) and returns the
    /// summary of the statement that applied it.
    ///
    /// # Errors
    /// [`JobError::Retryable`] when the database refused it or went away.
    pub async fn apply(&self, delivery: Delivery) -> Result<Value, JobError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send((delivery, reply))
            .map_err(|_| JobError::Retryable("the delivery applier has stopped".into()))?;
        answer
            .await
            .map_err(|_| JobError::Retryable("the delivery applier dropped the delivery".into()))?
    }
}

/// Waits for one delivery, then takes whatever else is already waiting.
async fn next_batch(
    rx: &Mutex<mpsc::UnboundedReceiver<(Delivery, Reply)>>,
) -> Option<Vec<(Delivery, Reply)>> {
    let mut rx = rx.lock().await;
    let first = rx.recv().await?;
    let mut calls = first.0.records.len();
    let mut batch = vec![first];
    while batch.len() < MAX_DELIVERIES && calls < MAX_CALLS {
        match rx.try_recv() {
            Ok(next) => {
                calls += next.0.records.len();
                batch.push(next);
            }
            Err(_) => break,
        }
    }
    Some(batch)
}

async fn apply_batch(client: &Object, batch: Vec<(Delivery, Reply)>) {
    if batch.len() > 1 {
        match apply_together(client, &batch).await {
            Ok(summary) => {
                tracing::debug!(
                    deliveries = batch.len(),
                    "callyzer deliveries applied together"
                );
                for (_, reply) in batch {
                    let _ = reply.send(Ok(summary.clone()));
                }
                return;
            }
            Err(e) => tracing::warn!(
                error = %e,
                deliveries = batch.len(),
                "a batch of deliveries failed; applying them one by one"
            ),
        }
    }
    for (delivery, reply) in batch {
        let _ = reply.send(apply_one(client, &delivery).await.map_err(JobError::from));
    }
}

async fn apply_together(client: &Object, batch: &[(Delivery, Reply)]) -> Result<Value, DbError> {
    let mut together = ApplyBatch::default();
    for (d, _) in batch {
        together.add(Some(d.event_id), &d.records, &d.problems);
    }
    together.apply(client, CallSource::Webhook).await
}

async fn apply_one(client: &Object, d: &Delivery) -> Result<Value, DbError> {
    apply_calls(
        client,
        Some(d.event_id),
        &d.records,
        &d.problems,
        CallSource::Webhook,
    )
    .await
}
