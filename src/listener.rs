//! The LISTEN connection: one dedicated session (never from the pool, whose
//! connections come and go) that turns `NOTIFY callsync_jobs` into a wake-up of
//! the claim loop. It reconnects with backoff when the database goes away and
//! wakes the loop after every (re)connect, because notifications sent while it
//! was away are lost.
use crate::secret::Secret;
use futures_util::StreamExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_postgres::AsyncMessage;
use tokio_util::sync::CancellationToken;

/// The channel the queue's insert trigger notifies.
pub const CHANNEL: &str = "callsync_jobs";

/// Whether the LISTEN session is up right now (for health checks).
#[derive(Clone, Default)]
pub struct ListenerState {
    alive: Arc<AtomicBool>,
}

impl ListenerState {
    /// True while LISTEN is established.
    pub fn is_alive(&self) -> bool {
        self.alive.load(Ordering::Relaxed)
    }
}

/// Runs until `shutdown`, calling `wake.notify_one()` on every notification and
/// after every (re)connect.
pub async fn run(
    url: Secret<String>,
    wake: Arc<Notify>,
    state: ListenerState,
    shutdown: CancellationToken,
) {
    let mut delay = Duration::from_millis(100);
    while !shutdown.is_cancelled() {
        match listen_once(&url, &wake, &state, &shutdown).await {
            Ok(()) => delay = Duration::from_millis(100),
            Err(e) => {
                tracing::error!(error = %e, retry_in_ms = delay.as_millis() as u64, "LISTEN connection failed");
            }
        }
        state.alive.store(false, Ordering::Relaxed);
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

/// One session: connect, LISTEN, forward notifications until the connection ends.
async fn listen_once(
    url: &Secret<String>,
    wake: &Arc<Notify>,
    state: &ListenerState,
    shutdown: &CancellationToken,
) -> Result<(), crate::db::DbError> {
    let (client, mut connection) = crate::db::connect(url.expose()).await?;
    // The connection's driver wakes the claim loop itself: a notification is on
    // the insert-to-start path of every job, and a hop through another task
    // (a channel, one more wake-up) only added to it.
    let woken = wake.clone();
    let mut driver = tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(_)) => woken.notify_one(),
                Ok(_) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    });
    client.batch_execute("listen callsync_jobs").await?; // = CHANNEL
    state.alive.store(true, Ordering::Relaxed);
    tracing::info!(channel = CHANNEL, "listening for new jobs");
    wake.notify_one(); // anything enqueued while we were not listening
    let ended = tokio::select! {
        _ = shutdown.cancelled() => { driver.abort(); return Ok(()); }
        ended = &mut driver => ended,
    };
    drop(client);
    match ended {
        Ok(Ok(())) => {
            tracing::warn!("LISTEN connection closed by the server; reconnecting");
            Ok(())
        }
        Ok(Err(e)) => Err(e.into()),
        Err(_) => Ok(()),
    }
}

/// What a start-up LISTEN probe found.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The server answered LISTEN with an error: a transaction pooler (or a
    /// proxy) that cannot keep a session. Retrying will not help.
    #[error("the database refused LISTEN ({0})")]
    Refused(String),
    /// The database could not be reached; the listener will keep trying.
    #[error("could not reach the database to try LISTEN: {0}")]
    Unreachable(crate::db::DbError),
}

/// Opens one connection and tries `LISTEN` on it, to tell at start-up a
/// connection that cannot carry LISTEN (Supabase's transaction pooler) from
/// one that can.
///
/// # Errors
/// [`ProbeError::Refused`] when the server answers LISTEN with an error,
/// [`ProbeError::Unreachable`] when there is no connection at all.
pub async fn probe(url: &Secret<String>) -> Result<(), ProbeError> {
    let (client, connection) = crate::db::connect(url.expose())
        .await
        .map_err(ProbeError::Unreachable)?;
    let driver = tokio::spawn(connection);
    let result = match client.batch_execute("listen callsync_jobs").await {
        Ok(()) => Ok(()),
        Err(e) => match e.as_db_error() {
            Some(db) => Err(ProbeError::Refused(format!(
                "{}: {}",
                db.code().code(),
                db.message()
            ))),
            None => Err(ProbeError::Unreachable(e.into())),
        },
    };
    drop(client);
    let _ = driver.await;
    result
}

/// Supabase's transaction pooler (Supavisor) listens on this port.
pub const TRANSACTION_POOLER_PORT: u16 = 6543;

/// Why the worker refuses to start on this connection.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionModeError {
    /// The URL names the transaction pooler's port.
    #[error(
        "DATABASE_URL uses port 6543, Supabase's transaction pooler, which cannot carry LISTEN \
         (nor session state). Use the direct connection (db.<ref>.supabase.co:5432) or the \
         session pooler (<region>.pooler.supabase.com:5432), or set WORKER_LISTEN=false to run \
         poll-only"
    )]
    TransactionPoolerPort,
    /// The server answered LISTEN with an error.
    #[error(
        "{0}: DATABASE_URL looks like a transaction pooler or a proxy without sessions. Use the \
         direct connection or the session pooler (port 5432), or set WORKER_LISTEN=false to run \
         poll-only"
    )]
    ListenRefused(ProbeError),
}

/// The start-up check of the connection mode (README, "Connecting the worker").
/// With LISTEN on, a URL on port 6543 or a server that answers LISTEN with an
/// error stops the worker with a clear message; a database that cannot be
/// reached at all does not (the worker waits for it, as after a restart). With
/// LISTEN off (poll-only), nothing is checked and port 6543 only warns.
///
/// # Errors
/// [`ConnectionModeError`] when LISTEN is on and cannot work on this connection.
pub async fn check_connection_mode(
    url: &Secret<String>,
    listen: bool,
) -> Result<(), ConnectionModeError> {
    let pooler = crate::db::url_port(url.expose()) == Some(TRANSACTION_POOLER_PORT);
    if !listen {
        if pooler {
            tracing::warn!(
                "poll-only through port 6543 (transaction pooler): jobs are found by polling only; \
                 the worker's statements are prepared per connection, which a transaction pooler \
                 may not keep (untested against Supavisor)"
            );
        }
        return Ok(());
    }
    if pooler {
        return Err(ConnectionModeError::TransactionPoolerPort);
    }
    match probe(url).await {
        Ok(()) => Ok(()),
        Err(refused @ ProbeError::Refused(_)) => Err(ConnectionModeError::ListenRefused(refused)),
        Err(ProbeError::Unreachable(e)) => {
            tracing::warn!(error = %e, "database unreachable at start-up; starting anyway and retrying");
            Ok(())
        }
    }
}
