//! The job queue, Rust side. The queue itself lives in Postgres (migration
//! `create_queue`); this module names its types, runs its statements
//! ([`store`]) and computes backoff ([`retry`]).
//!
//! # States
//!
//! | from | event | to |
//! |---|---|---|
//! | (new) | `enqueue` | `available` |
//! | `available`, `retryable` (due) | `claim_jobs` | `running` (attempt + 1, new lease) |
//! | `running` | `complete_jobs` with the lease | `completed` |
//! | `running` | `fail_job` with the lease, attempts left, retryable | `retryable` (at the backoff time) |
//! | `running` | `fail_job` permanent, or last attempt | `discarded` (last error kept) |
//! | `running` | lease expired (`rescue_expired_leases`) | `retryable`, or `discarded` on the last attempt |
//! | `running` | `release_jobs` with the lease (shutdown) | `available` (the attempt is given back) |
//! | `available`, `running`, `retryable` | `cancel_job` | `cancelled` |
//! | `discarded`, `cancelled` | `retry_job` (operator) | `available` |
//!
//! `completed`, `discarded` and `cancelled` are final: `finished_at` is set exactly
//! then (a CHECK constraint). A transition that presents a lease that no longer
//! matches changes nothing and says so; the worker then logs a lost lease.
pub mod retry;
pub mod store;

use chrono::{DateTime, Utc};
use std::fmt;

/// A job's primary key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobId(pub i64);

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Proof of ownership of one attempt; every transition presents it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LeaseId(pub uuid::Uuid);

/// The states of `callsync.job_state`, in the enum's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    /// Waiting to be claimed once `run_at` passes.
    Available,
    /// Leased to a worker.
    Running,
    /// Failed; waits for its backoff to pass.
    Retryable,
    /// Done.
    Completed,
    /// Failed for good (permanent error or no attempts left).
    Discarded,
    /// Stopped by an operator.
    Cancelled,
}

impl JobState {
    /// All states, as the database enum lists them.
    pub const ALL: [JobState; 6] = [
        JobState::Available,
        JobState::Running,
        JobState::Retryable,
        JobState::Completed,
        JobState::Discarded,
        JobState::Cancelled,
    ];

    /// The database label.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Available => "available",
            JobState::Running => "running",
            JobState::Retryable => "retryable",
            JobState::Completed => "completed",
            JobState::Discarded => "discarded",
            JobState::Cancelled => "cancelled",
        }
    }

    /// Parses a database label.
    pub fn parse(label: &str) -> Option<JobState> {
        JobState::ALL.into_iter().find(|s| s.as_str() == label)
    }
}

/// A job this worker holds a lease on.
#[derive(Debug, Clone)]
pub struct ClaimedJob {
    /// Primary key.
    pub id: JobId,
    /// Which handler runs it (`callsync.job.kind`).
    pub kind: String,
    /// The handler's input.
    pub args: serde_json::Value,
    /// 1 for the first attempt.
    pub attempt: i32,
    /// Attempts allowed before the job is discarded.
    pub max_attempts: i32,
    /// The lease to present on every transition.
    pub lease_id: LeaseId,
    /// When the lease runs out unless renewed.
    pub lease_expires_at: DateTime<Utc>,
    /// When the job was enqueued (enqueue-to-start latency).
    pub created_at: DateTime<Utc>,
}

impl ClaimedJob {
    /// Attempts left after this one.
    pub fn attempts_left(&self) -> i32 {
        (self.max_attempts - self.attempt).max(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_labels_round_trip() {
        for s in JobState::ALL {
            assert_eq!(JobState::parse(s.as_str()), Some(s));
        }
        assert_eq!(JobState::parse("pending"), None);
    }
}
