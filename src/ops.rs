//! Operator actions behind the runbooks (docs/runbooks.md) and the `callsync`
//! subcommands that run them: retry discarded jobs, replay a stored webhook
//! event, resend an event to the CRM, pause and resume a job kind. Each is one
//! SQL function call (`sql/queries/*.sql`); the functions are executable by
//! their owner only, so these run on an operator connection (the `postgres`
//! role), never as `callsync_worker`. Nothing here decides anything: the SQL
//! functions hold the rules.
use crate::db::DbError;
use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;

const RETRY_DISCARDED: &str = include_str!("../sql/queries/job_retry_discarded.sql");
const RETRY_ONE: &str = include_str!("../sql/queries/job_retry.sql");
const REPLAY: &str = include_str!("../sql/queries/webhook_event_replay.sql");
const SET_PAUSED: &str = include_str!("../sql/queries/job_kind_set_paused.sql");
const RESEND_CRM: &str = include_str!("../sql/queries/crm_dispatch_resend.sql");

/// Puts discarded jobs back in the queue: of `kind` (all kinds when `None`),
/// finished at or after `since` (any time when `None`), at most `limit`.
/// Returns how many were retried (a job whose unique key a live job holds is skipped).
///
/// # Errors
/// [`DbError`] when the call fails (e.g. a role without the privilege).
pub async fn retry_discarded(
    pool: &Pool,
    kind: Option<&str>,
    since: Option<DateTime<Utc>>,
    limit: i32,
) -> Result<i32, DbError> {
    let client = pool.get().await?;
    Ok(client
        .query_one(RETRY_DISCARDED, &[&kind, &since, &limit])
        .await?
        .try_get(0)?)
}

/// Retries one discarded or cancelled job. False when it was in another state
/// (or its unique key is held by a live job).
///
/// # Errors
/// [`DbError`] when the call fails.
pub async fn retry_job(pool: &Pool, id: i64) -> Result<bool, DbError> {
    let client = pool.get().await?;
    Ok(client.query_one(RETRY_ONE, &[&id]).await?.try_get(0)?)
}

/// Queues a stored webhook event for processing again. Returns the new job's
/// id, or `None` when a replay of it is already queued or running.
///
/// # Errors
/// [`DbError`] for an unknown event, an event type that is never processed, or
/// a failed call.
pub async fn replay_event(pool: &Pool, event_id: i64) -> Result<Option<i64>, DbError> {
    let client = pool.get().await?;
    Ok(client.query_one(REPLAY, &[&event_id]).await?.try_get(0)?)
}

/// Pauses (`true`) or resumes (`false`) a job kind. Returns whether it was paused before.
///
/// # Errors
/// [`DbError`] when the call fails (e.g. a kind name that is not snake_case).
pub async fn set_paused(pool: &Pool, kind: &str, paused: bool) -> Result<bool, DbError> {
    let client = pool.get().await?;
    Ok(client
        .query_one(SET_PAUSED, &[&kind, &paused])
        .await?
        .try_get(0)?)
}

/// Queues a CRM dispatch of an analysed event (`force`: send even after a
/// success). Returns `{event_id, job_id, queued, force}`.
///
/// # Errors
/// [`DbError`] for an event without an analysis, or a failed call.
pub async fn resend_crm(
    pool: &Pool,
    event_id: i64,
    force: bool,
) -> Result<serde_json::Value, DbError> {
    let client = pool.get().await?;
    Ok(client
        .query_one(RESEND_CRM, &[&event_id, &force])
        .await?
        .try_get(0)?)
}

/// The runbook subcommands of `callsync` (each reads `DATABASE_URL`: an operator role).
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Put discarded jobs back in the queue (one by --id, or by --kind/--since).
    RetryDiscarded {
        /// One job id (discarded or cancelled); ignores the other filters.
        #[arg(long, conflicts_with_all = ["kind", "since"])]
        id: Option<i64>,
        /// Only jobs of this kind.
        #[arg(long)]
        kind: Option<String>,
        /// Only jobs discarded at or after this time (RFC 3339, e.g. 2026-11-20T08:00:00Z).
        #[arg(long)]
        since: Option<DateTime<Utc>>,
        /// At most this many.
        #[arg(long, default_value_t = 1000)]
        limit: i32,
    },
    /// Process a stored webhook event again (callyzer_delivery or elevenlabs_analysis).
    ReplayEvent {
        /// callsync.webhook_event id.
        #[arg(long)]
        id: i64,
    },
    /// Queue a CRM dispatch of an analysed ElevenLabs event.
    ResendCrm {
        /// callsync.webhook_event id of the event.
        #[arg(long)]
        event_id: i64,
        /// Send even if the CRM already accepted this event.
        #[arg(long)]
        force: bool,
    },
    /// Stop claiming jobs of a kind (they wait; running ones finish).
    Pause {
        /// Job kind, e.g. crm_dispatch.
        #[arg(long)]
        kind: String,
    },
    /// Claim jobs of a paused kind again.
    Resume {
        /// Job kind, e.g. crm_dispatch.
        #[arg(long)]
        kind: String,
    },
}

/// Runs one runbook subcommand and says what happened, in one line.
///
/// # Errors
/// [`DbError`] from the SQL function (its message says why).
pub async fn run(pool: &Pool, command: Command) -> Result<String, DbError> {
    Ok(match command {
        Command::RetryDiscarded { id: Some(id), .. } => match retry_job(pool, id).await? {
            true => format!("job {id} is available again"),
            false => format!(
                "job {id} was not retried: not discarded or cancelled, or a live job holds its unique key"
            ),
        },
        Command::RetryDiscarded {
            id: None,
            kind,
            since,
            limit,
        } => {
            let n = retry_discarded(pool, kind.as_deref(), since, limit).await?;
            format!("retried {n} discarded job(s)")
        }
        Command::ReplayEvent { id } => match replay_event(pool, id).await? {
            Some(job) => format!("webhook event {id} queued again as job {job}"),
            None => format!("webhook event {id} not queued: a replay of it is already queued or running"),
        },
        Command::ResendCrm { event_id, force } => resend_crm(pool, event_id, force).await?.to_string(),
        Command::Pause { kind } => {
            let was = set_paused(pool, &kind, true).await?;
            format!("job kind {kind} paused{}", if was { " (it already was)" } else { "" })
        }
        Command::Resume { kind } => {
            let was = set_paused(pool, &kind, false).await?;
            format!("job kind {kind} resumed{}", if was { "" } else { " (it was not paused)" })
        }
    })
}
