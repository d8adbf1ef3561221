//! Tracing set-up, once per process: JSON lines on Fly (`LOG_FORMAT=json`),
//! readable text locally. The filter comes from `RUST_LOG`, defaulting to
//! `info,tokio_postgres=warn`.
use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable, for terminals.
    Pretty,
    /// One JSON object per line, for Fly's log shipping.
    Json,
}

/// Installs the global subscriber. A second call is a no-op (tests call it freely).
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,tokio_postgres=warn"));
    // Colours only on a terminal: log files and Fly's collector get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        // A failed log write (stderr piped to a reader that died) must not panic:
        // the fallback eprintln! would, and take the task that logged with it.
        .log_internal_errors(false);
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
        LogFormat::Pretty => builder.compact().try_init(),
    };
}
