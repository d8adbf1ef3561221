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
    wake: &Notify,
    state: &ListenerState,
    shutdown: &CancellationToken,
) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) =
        tokio_postgres::connect(url.expose(), tokio_postgres::NoTls).await?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let driver = tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(_)) => {
                    if tx.send(()).is_err() {
                        break;
                    }
                }
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
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => { driver.abort(); return Ok(()); }
            got = rx.recv() => match got {
                Some(()) => wake.notify_one(),
                None => break,
            }
        }
    }
    drop(client);
    match driver.await {
        Ok(Ok(())) => {
            tracing::warn!("LISTEN connection closed by the server; reconnecting");
            Ok(())
        }
        Ok(Err(e)) => Err(e),
        Err(_) => Ok(()),
    }
}
