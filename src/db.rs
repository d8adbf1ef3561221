//! The Postgres connection pool and the one error type for database calls.
//! Statement text lives in `sql/queries/*.sql` and is compiled in with
//! `include_str!` by the modules that run it; nothing here builds SQL.
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::NoTls;

/// A database call failed.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// No connection could be had from the pool (database down, pool closed).
    #[error("no database connection: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    /// The statement failed on the server or the connection broke.
    #[error("database error: {0}")]
    Query(#[from] tokio_postgres::Error),
    /// The URL could not be parsed.
    #[error("invalid database URL: {0}")]
    Url(String),
}

/// Parses a libpq-style URL. The error never repeats the URL (it holds a password).
///
/// # Errors
/// [`DbError::Url`] when the URL does not parse.
pub fn parse_url(url: &str) -> Result<tokio_postgres::Config, DbError> {
    url.parse::<tokio_postgres::Config>()
        .map_err(|e| DbError::Url(e.to_string()))
}

/// Builds a pool of at most `size` connections. Connections open lazily, so this
/// succeeds even while the database is down; broken ones are replaced on checkout.
///
/// # Errors
/// [`DbError::Url`] when the URL does not parse.
pub fn pool(url: &str, size: usize) -> Result<Pool, DbError> {
    let mut cfg = parse_url(url)?;
    if cfg.get_application_name().is_none() {
        cfg.application_name("callsync");
    }
    let manager = Manager::from_config(
        cfg,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(size)
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .create_timeout(Some(std::time::Duration::from_secs(5)))
        .wait_timeout(Some(std::time::Duration::from_secs(10)))
        .build()
        .map_err(|e| DbError::Url(e.to_string()))
}
