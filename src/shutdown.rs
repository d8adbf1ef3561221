//! Turns SIGINT or SIGTERM into a cancelled [`CancellationToken`]. Callers own
//! the token and pass it down; nothing else listens for signals.
use tokio_util::sync::CancellationToken;

/// Returns a token that is cancelled on the first SIGINT or SIGTERM.
///
/// # Errors
/// When the signal handlers cannot be installed (no tokio signal driver).
pub fn on_signal() -> std::io::Result<CancellationToken> {
    use tokio::signal::unix::{signal, SignalKind};
    let token = CancellationToken::new();
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let cancel = token.clone();
    tokio::spawn(async move {
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        // Cancel first: nothing after this line may stand between a signal and the drain.
        cancel.cancel();
        tracing::info!(signal = name, "shutdown requested; draining");
    });
    Ok(token)
}
