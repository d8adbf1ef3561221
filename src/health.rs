//! The worker's small internal HTTP port (`HEALTH_ADDR`, e.g. `0.0.0.0:9090` on
//! Fly; off when unset): `GET /healthz` and `GET /metrics`. It owns no state of
//! its own: it asks the database, the LISTEN connection and the claim loop, and
//! renders [`crate::metrics`] plus per-scrape figures from SQL functions the
//! worker role may execute (`callsync.queue_stats`,
//! `callsync.webhook_rejection_counts`). It does not restart anything: on Fly
//! no check restarts a Machine, so a stuck worker must exit by itself.
use crate::listener::ListenerState;
use crate::metrics::{family, sample};
use crate::worker::Worker;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use deadpool_postgres::Pool;
use std::net::SocketAddr;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const QUEUE_STATS: &str = include_str!("../sql/queries/job_stats.sql");
const REJECTIONS: &str = include_str!("../sql/queries/webhook_rejection_counts.sql");

/// How long one database check may take before the database counts as unreachable.
const DB_CHECK_TIMEOUT: Duration = Duration::from_secs(3);

/// What the endpoints look at.
#[derive(Clone)]
pub struct HealthState {
    /// A pool of its own (one or two connections), so a busy worker's full pool
    /// never makes the database look unreachable.
    pub pool: Pool,
    /// The LISTEN connection; `None` in poll-only mode (`WORKER_LISTEN=false`).
    pub listener: Option<ListenerState>,
    /// The claim loop's clock and running jobs.
    pub worker: Worker,
    /// The loop counts as stuck when it has not ticked for this long.
    pub stale_after: Duration,
    /// Cancelled when shutdown starts: `/healthz` then answers 503 `draining`.
    pub draining: CancellationToken,
}

/// Binds `addr` (so a bad address fails start-up) and serves until `stop`.
///
/// # Errors
/// When the address cannot be bound.
pub async fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await
}

/// Serves `/healthz` and `/metrics` on `listener` until `stop` is cancelled.
pub async fn serve(listener: tokio::net::TcpListener, state: HealthState, stop: CancellationToken) {
    let app = Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .with_state(state);
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(stop.cancelled_owned())
        .await
    {
        tracing::error!(error = %e, "health server failed");
    }
}

/// The answer of `/healthz`: healthy, or each reason it is not.
#[derive(Debug, serde::Serialize)]
pub struct Health {
    /// True when every check passed.
    pub healthy: bool,
    /// One line per failed check.
    pub reasons: Vec<String>,
    /// `select 1` answered within the timeout.
    pub database: bool,
    /// The LISTEN connection is up (`null` in poll-only mode).
    pub listen: Option<bool>,
    /// Milliseconds since the claim loop last ticked (`null` before its first pass).
    pub last_tick_age_ms: Option<i64>,
    /// Jobs running in this process.
    pub running_jobs: usize,
}

/// Runs every check.
pub async fn check(state: &HealthState) -> Health {
    let mut reasons = Vec::new();
    if state.draining.is_cancelled() {
        reasons.push("draining: shutdown in progress".to_string());
    }
    let database = match ping(&state.pool).await {
        Ok(()) => true,
        Err(e) => {
            reasons.push(format!("database unreachable: {e}"));
            false
        }
    };
    let listen = state.listener.as_ref().map(ListenerState::is_alive);
    if listen == Some(false) {
        reasons.push("LISTEN connection is down".to_string());
    }
    let last = state.worker.last_tick_ms();
    let last_tick_age_ms = (last > 0).then(|| chrono::Utc::now().timestamp_millis() - last);
    match last_tick_age_ms {
        None => reasons.push("claim loop has not started".to_string()),
        Some(age) if age > state.stale_after.as_millis() as i64 => {
            reasons.push(format!("claim loop has not ticked for {} s", age / 1000))
        }
        Some(_) => {}
    }
    Health {
        healthy: reasons.is_empty(),
        reasons,
        database,
        listen,
        last_tick_age_ms,
        running_jobs: state.worker.running_jobs(),
    }
}

async fn ping(pool: &Pool) -> Result<(), String> {
    let attempt = async {
        let client = pool.get().await.map_err(|e| e.to_string())?;
        client
            .simple_query("select 1")
            .await
            .map_err(|e| e.to_string())?;
        Ok::<(), String>(())
    };
    match tokio::time::timeout(DB_CHECK_TIMEOUT, attempt).await {
        Ok(result) => result,
        Err(_) => Err(format!("no answer within {DB_CHECK_TIMEOUT:?}")),
    }
}

async fn healthz(State(state): State<HealthState>) -> impl IntoResponse {
    let health = check(&state).await;
    if !health.healthy {
        tracing::warn!(reasons = ?health.reasons, "unhealthy");
    }
    let status = if health.healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(health))
}

async fn metrics(State(state): State<HealthState>) -> impl IntoResponse {
    let mut out = String::with_capacity(4096);
    crate::metrics::render(&mut out);

    family(
        &mut out,
        "callsync_worker_running_jobs",
        "gauge",
        "Jobs running in this process.",
    );
    sample(
        &mut out,
        "callsync_worker_running_jobs",
        &[],
        state.worker.running_jobs() as f64,
    );
    if let Some(listener) = &state.listener {
        family(
            &mut out,
            "callsync_listener_up",
            "gauge",
            "1 while the LISTEN connection is up.",
        );
        sample(
            &mut out,
            "callsync_listener_up",
            &[],
            f64::from(u8::from(listener.is_alive())),
        );
    }
    let last = state.worker.last_tick_ms();
    if last > 0 {
        family(
            &mut out,
            "callsync_loop_last_tick_age_seconds",
            "gauge",
            "Seconds since the claim loop last ran.",
        );
        let age = (chrono::Utc::now().timestamp_millis() - last) as f64 / 1000.0;
        sample(&mut out, "callsync_loop_last_tick_age_seconds", &[], age);
    }

    let from_db = tokio::time::timeout(DB_CHECK_TIMEOUT, database_metrics(&state.pool)).await;
    let up = match from_db {
        Ok(Ok(text)) => {
            out.push_str(&text);
            1.0
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "metrics: database figures unavailable");
            0.0
        }
        Err(_) => {
            tracing::warn!("metrics: database figures timed out");
            0.0
        }
    };
    family(
        &mut out,
        "callsync_database_up",
        "gauge",
        "1 when this scrape could read the queue figures from the database.",
    );
    sample(&mut out, "callsync_database_up", &[], up);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
}

/// Queue depth, oldest waiting job and webhook rejections. Every machine
/// reports the same queue figures: aggregate them with `max`, not `sum`.
async fn database_metrics(pool: &Pool) -> Result<String, crate::db::DbError> {
    let client = pool.get().await?;
    let stmt = client.prepare_cached(QUEUE_STATS).await?;
    let rows = client.query(&stmt, &[]).await?;
    let mut out = String::new();
    let gauges = [
        (
            "callsync_queue_available_jobs",
            "Jobs due now and waiting for a worker, by kind.",
            1,
        ),
        (
            "callsync_queue_scheduled_jobs",
            "Jobs waiting for their run_at (backoff, future work), by kind.",
            2,
        ),
        (
            "callsync_queue_running_jobs",
            "Jobs running in any worker, by kind.",
            3,
        ),
        (
            "callsync_queue_oldest_available_age_seconds",
            "How long the oldest due job has waited, by kind.",
            4,
        ),
    ];
    for (name, help, column) in gauges {
        family(&mut out, name, "gauge", help);
        for row in &rows {
            let kind: String = row.try_get(0)?;
            let value: f64 = if column == 4 {
                row.try_get(column)?
            } else {
                row.try_get::<_, i64>(column)? as f64
            };
            sample(&mut out, name, &[("kind", &kind)], value);
        }
    }
    family(
        &mut out,
        "callsync_job_kind_paused",
        "gauge",
        "1 for a paused job kind.",
    );
    for row in &rows {
        let kind: String = row.try_get(0)?;
        let paused: bool = row.try_get(5)?;
        sample(
            &mut out,
            "callsync_job_kind_paused",
            &[("kind", &kind)],
            f64::from(u8::from(paused)),
        );
    }

    let stmt = client.prepare_cached(REJECTIONS).await?;
    let rows = client.query(&stmt, &[]).await?;
    family(
        &mut out,
        "callsync_webhook_rejections_total",
        "counter",
        "Webhook requests the Edge Functions refused, by source and reason (rows kept in callsync.webhook_rejection).",
    );
    for row in &rows {
        let source: String = row.try_get(0)?;
        let reason: String = row.try_get(1)?;
        let n: i64 = row.try_get(2)?;
        sample(
            &mut out,
            "callsync_webhook_rejections_total",
            &[("source", &source), ("reason", &reason)],
            n as f64,
        );
    }
    Ok(out)
}

/// The running health server: stop it after the worker has drained.
pub struct HealthServer {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl HealthServer {
    /// Binds `addr` and serves. `draining` is the shutdown token (it flips
    /// `/healthz` to 503 while the worker drains); the server itself keeps
    /// answering until [`HealthServer::stop`].
    ///
    /// # Errors
    /// When the address cannot be bound or the URL does not parse.
    pub async fn start(
        addr: SocketAddr,
        database_url: &str,
        worker: Worker,
        listener: Option<ListenerState>,
        poll_interval: Duration,
        draining: CancellationToken,
    ) -> Result<Self, std::io::Error> {
        let pool = crate::db::pool(database_url, 2)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()))?;
        let socket = bind(addr).await?;
        tracing::info!(%addr, "serving /healthz and /metrics");
        let state = HealthState {
            pool,
            listener,
            worker,
            // the loop ticks at least once per poll interval, and within 5 s of a failed claim
            stale_after: (poll_interval * 5).max(Duration::from_secs(30)),
            draining,
        };
        let stop = CancellationToken::new();
        let task = tokio::spawn(serve(socket, state, stop.clone()));
        Ok(HealthServer { stop, task })
    }

    /// Stops serving and waits for the server to end.
    pub async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}
