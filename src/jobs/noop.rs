//! `noop`: a job that does nothing, or waits `{"sleep_ms": N}` to stand in for
//! real work. It measures the queue itself (benchmarks), lets tests hold jobs
//! in flight (crash and shutdown tests), and lets an operator check that a
//! worker is alive end to end.
use super::{Handler, JobError};
use crate::queue::ClaimedJob;
use futures_util::future::BoxFuture;

/// The kind name.
pub const KIND: &str = "noop";

/// The handler.
pub struct Noop;

impl Handler for Noop {
    fn run<'a>(&'a self, job: &'a ClaimedJob) -> BoxFuture<'a, Result<(), JobError>> {
        Box::pin(async move {
            if let Some(ms) = job.args.get("sleep_ms").and_then(serde_json::Value::as_u64) {
                tokio::time::sleep(std::time::Duration::from_millis(ms.min(600_000))).await;
            }
            Ok(())
        })
    }
}
