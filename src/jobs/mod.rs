//! Job handlers, registered by kind, and the one error type they return.
//! The worker looks a claimed job's kind up in [`Handlers`]; an unknown kind is
//! discarded with a clear error instead of retried (no deploy will teach this
//! worker the kind before its attempts run out).
pub mod callyzer_api_settings;
pub mod callyzer_apply_batcher;
pub mod callyzer_call_in;
pub mod callyzer_delivery;
pub mod callyzer_reconcile;
pub mod crm_dispatch;
pub mod elevenlabs_analysis;
pub mod elevenlabs_crm_settings;
pub mod noop;
pub mod notify_admin;
pub mod notify_message;

use crate::queue::ClaimedJob;
use futures_util::future::BoxFuture;
use std::collections::HashMap;
use std::sync::Arc;

/// How a job failed. Handlers return only these two cases; the worker turns
/// them into a retry (with backoff, while attempts last) or a discard.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Worth another attempt: timeouts, 5xx, 429, a database that went away.
    #[error("{0}")]
    Retryable(String),
    /// Another attempt would fail the same way: bad input, 4xx, auth.
    #[error("{0}")]
    Permanent(String),
}

impl JobError {
    /// A retryable error from anything displayable.
    pub fn retryable(e: impl std::fmt::Display) -> Self {
        JobError::Retryable(e.to_string())
    }

    /// A permanent error from anything displayable.
    pub fn permanent(e: impl std::fmt::Display) -> Self {
        JobError::Permanent(e.to_string())
    }
}

impl From<crate::db::DbError> for JobError {
    /// Database trouble is retryable: the next attempt may find it back.
    fn from(e: crate::db::DbError) -> Self {
        JobError::Retryable(e.to_string())
    }
}

/// One kind's handler.
pub trait Handler: Send + Sync + 'static {
    /// Runs one attempt of `job`. Called outside any transaction; may be
    /// cancelled (dropped) when the lease is lost or the drain deadline passes.
    fn run<'a>(&'a self, job: &'a ClaimedJob) -> BoxFuture<'a, Result<(), JobError>>;
}

/// Handlers by kind.
#[derive(Default, Clone)]
pub struct Handlers {
    by_kind: HashMap<String, Arc<dyn Handler>>,
}

impl Handlers {
    /// No handlers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `handler` for `kind` (replacing any earlier one).
    pub fn register(mut self, kind: &str, handler: impl Handler) -> Self {
        self.by_kind.insert(kind.to_string(), Arc::new(handler));
        self
    }

    /// The kinds this worker can run.
    pub fn kinds(&self) -> Vec<&str> {
        let mut kinds: Vec<&str> = self.by_kind.keys().map(String::as_str).collect();
        kinds.sort_unstable();
        kinds
    }

    /// Runs `job` with the handler for its kind.
    pub async fn dispatch(&self, job: &ClaimedJob) -> Result<(), JobError> {
        match self.by_kind.get(&job.kind) {
            Some(handler) => handler.run(job).await,
            None => Err(JobError::Permanent(format!(
                "no handler for job kind {:?} in this worker (known: {})",
                job.kind,
                self.kinds().join(", ")
            ))),
        }
    }
}

/// The handlers of the production worker. Each pipeline registers its kinds
/// here with what it needs from the configuration and the pool.
pub fn all(config: &crate::config::Config, pool: &deadpool_postgres::Pool) -> Handlers {
    let handlers = elevenlabs_crm_settings::register(Handlers::new(), &config.elevenlabs, pool);
    let handlers = callyzer_api_settings::register(handlers, &config.callyzer_api, pool);
    handlers
        .register(noop::KIND, noop::Noop)
        .register(
            callyzer_delivery::KIND,
            callyzer_delivery::CallyzerDelivery::new(pool.clone()),
        )
        .register(
            notify_admin::KIND,
            notify_admin::NotifyAdmin::new(pool.clone(), &config.notify),
        )
}
