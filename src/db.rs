//! The Postgres connection pool, single connections (LISTEN, migrations, probes),
//! TLS, and the one error type for database calls. Statement text lives in
//! `sql/queries/*.sql` and is compiled in with `include_str!` by the modules that
//! run it; nothing here builds SQL.
//!
//! TLS follows libpq's `sslmode` in `DATABASE_URL`: `disable` never encrypts;
//! `prefer` (libpq's default) encrypts when the server offers it; `require`
//! insists on TLS. A URL without `sslmode` whose hosts are all loopback
//! (the local stack, the tests) stays plain: TLS buys nothing there and its
//! extra round trip per connection is felt on a loaded machine.
//! As in libpq, the server's certificate is verified only when asked to:
//! `sslmode=verify-full` (or `verify-ca`, treated the same) or an
//! `sslrootcert=<path to PEM>` parameter. Hosted Supabase signs its database
//! certificates with its own CA (downloadable from the dashboard), so
//! verification needs that file; public CAs (webpki roots) are trusted too.
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::sync::Arc;
use tokio_postgres::config::SslMode;
use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres_rustls::MakeRustlsConnect;

/// The TLS connector every connection uses (plain when the server or `sslmode` says so).
pub type Tls = MakeRustlsConnect;

/// A single connection's driver, as returned by [`connect`].
pub type Connection = tokio_postgres::Connection<
    tokio_postgres::Socket,
    <Tls as MakeTlsConnect<tokio_postgres::Socket>>::Stream,
>;

/// A database call failed.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// No connection could be had from the pool (database down, pool closed).
    #[error("no database connection: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    /// The statement failed on the server or the connection broke.
    #[error("database error: {}", describe(.0))]
    Query(#[from] tokio_postgres::Error),
    /// The URL could not be parsed.
    #[error("invalid database URL: {0}")]
    Url(String),
    /// The TLS settings could not be used (unreadable `sslrootcert`).
    #[error("database TLS: {0}")]
    Tls(String),
}

/// The server's own words when it refused a statement (`tokio_postgres::Error`
/// alone prints just "db error", which tells an operator reading a job's last
/// error nothing), else the client-side error with its cause.
fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} {}: {}", db.severity(), db.code().code(), db.message()),
        None => match std::error::Error::source(e) {
            Some(cause) => format!("{e}: {cause}"),
            None => e.to_string(),
        },
    }
}

/// Parses a libpq-style URL. The error never repeats the URL (it holds a password).
///
/// # Errors
/// [`DbError::Url`] when the URL does not parse.
pub fn parse_url(url: &str) -> Result<tokio_postgres::Config, DbError> {
    Ok(parse(url)?.0)
}

/// Parses a URL into the connection settings and the TLS connector they ask for.
///
/// # Errors
/// [`DbError::Url`] when the URL does not parse; [`DbError::Tls`] when its
/// `sslrootcert` cannot be read.
pub fn parse(url: &str) -> Result<(tokio_postgres::Config, Tls), DbError> {
    let (url, tls) = split_tls_options(url)?;
    let mut cfg = url
        .parse::<tokio_postgres::Config>()
        .map_err(|e| DbError::Url(e.to_string()))?;
    if tls.verify && cfg.get_ssl_mode() == SslMode::Prefer {
        cfg.ssl_mode(SslMode::Require); // verifying a certificate means insisting on one
    }
    if !tls.mode_given && only_loopback(&cfg) {
        cfg.ssl_mode(SslMode::Disable);
    }
    Ok((cfg, connector(&tls)?))
}

/// Opens one connection outside the pool (LISTEN, migrations, start-up probes).
///
/// # Errors
/// [`DbError`] when the URL is bad or the connection fails.
pub async fn connect(url: &str) -> Result<(tokio_postgres::Client, Connection), DbError> {
    let (cfg, tls) = parse(url)?;
    Ok(cfg.connect(tls).await?)
}

/// Builds a pool of at most `size` connections. Connections open lazily, so this
/// succeeds even while the database is down; broken ones are replaced on checkout.
///
/// # Errors
/// [`DbError::Url`] when the URL does not parse, [`DbError::Tls`] for a bad `sslrootcert`.
pub fn pool(url: &str, size: usize) -> Result<Pool, DbError> {
    let (mut cfg, tls) = parse(url)?;
    if cfg.get_application_name().is_none() {
        cfg.application_name("callsync");
    }
    let manager = Manager::from_config(
        cfg,
        tls,
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

/// The port a URL connects to (5432 when it names none); `None` when it does not parse.
pub fn url_port(url: &str) -> Option<u16> {
    let cfg = parse_url(url).ok()?;
    Some(cfg.get_ports().first().copied().unwrap_or(5432))
}

/// What the URL asks of TLS beyond what tokio-postgres understands.
#[derive(Debug, Default, PartialEq, Eq)]
struct TlsOptions {
    verify: bool,
    root_cert: Option<String>,
    /// The URL says `sslmode` itself (otherwise loopback stays plain).
    mode_given: bool,
}

/// Every host is a loopback TCP address (`localhost`, `127.x`, `::1`).
fn only_loopback(cfg: &tokio_postgres::Config) -> bool {
    use tokio_postgres::config::Host;
    !cfg.get_hosts().is_empty()
        && cfg.get_hosts().iter().all(|h| match h {
            Host::Tcp(name) => {
                name == "localhost"
                    || name
                        .trim_matches(|c| c == '[' || c == ']')
                        .parse::<std::net::IpAddr>()
                        .is_ok_and(|ip| ip.is_loopback())
            }
            #[allow(unreachable_patterns)] // Host::Unix exists on unix only
            _ => false,
        })
}

/// Takes libpq's `sslrootcert` and `sslmode=verify-ca|verify-full|allow` out of a
/// URL (tokio-postgres refuses them) and says what they asked for. Key=value
/// connection strings pass through unchanged.
fn split_tls_options(raw: &str) -> Result<(String, TlsOptions), DbError> {
    if !(raw.starts_with("postgres://") || raw.starts_with("postgresql://")) {
        let opts = TlsOptions {
            mode_given: raw.contains("sslmode"),
            ..TlsOptions::default()
        };
        return Ok((raw.to_string(), opts));
    }
    let mut url = url::Url::parse(raw).map_err(|e| DbError::Url(e.to_string()))?;
    let mut opts = TlsOptions::default();
    let mut kept = Vec::new();
    for (k, v) in url.query_pairs() {
        opts.mode_given |= k == "sslmode";
        match (k.as_ref(), v.as_ref()) {
            ("sslrootcert", path) => {
                opts.root_cert = Some(path.to_string());
                opts.verify = true; // libpq: a root certificate turns require into verify-ca
            }
            ("sslmode", "verify-full" | "verify-ca") => {
                opts.verify = true;
                kept.push(("sslmode".to_string(), "require".to_string()));
            }
            ("sslmode", "allow") => kept.push(("sslmode".to_string(), "prefer".to_string())),
            (k, v) => kept.push((k.to_string(), v.to_string())),
        }
    }
    if kept.is_empty() {
        url.set_query(None);
    } else {
        url.query_pairs_mut().clear().extend_pairs(kept);
    }
    Ok((url.to_string(), opts))
}

fn connector(opts: &TlsOptions) -> Result<Tls, DbError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| DbError::Tls(e.to_string()))?;
    let config = if opts.verify {
        let mut roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        if let Some(path) = &opts.root_cert {
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|e| DbError::Tls(format!("sslrootcert {path}: {e}")))?;
            for cert in certs {
                roots
                    .add(cert)
                    .map_err(|e| DbError::Tls(format!("sslrootcert {path}: {e}")))?;
            }
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(EncryptOnly(provider)))
            .with_no_client_auth()
    };
    Ok(MakeRustlsConnect::new(config))
}

/// libpq's `sslmode=require`: the channel is encrypted and the handshake
/// signatures are checked, but the certificate chain is not (no CA was given).
#[derive(Debug)]
struct EncryptOnly(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libpq_only_tls_options_are_taken_out_of_the_url() {
        let (url, opts) = split_tls_options(
            "postgres://u:p%40ss@db.example.supabase.co:5432/postgres?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem&application_name=x",
        )
        .unwrap();
        assert_eq!(
            url,
            "postgres://u:p%40ss@db.example.supabase.co:5432/postgres?sslmode=require&application_name=x"
        );
        assert!(opts.verify);
        assert_eq!(opts.root_cert.as_deref(), Some("/etc/ca.pem"));
        url.parse::<tokio_postgres::Config>().unwrap();
    }

    #[test]
    fn require_encrypts_without_verifying_and_plain_urls_stay_as_they_are() {
        let (cfg, _) = parse("postgres://u:p@h:6543/db?sslmode=require").unwrap();
        assert_eq!(cfg.get_ssl_mode(), SslMode::Require);
        let (cfg, _) = parse("postgres://u:p@db.example.supabase.co:5432/db").unwrap();
        assert_eq!(
            cfg.get_ssl_mode(),
            SslMode::Prefer,
            "libpq's default elsewhere"
        );
        let (cfg, _) = parse("postgres://u:p@127.0.0.1:5432/db").unwrap();
        assert_eq!(
            cfg.get_ssl_mode(),
            SslMode::Disable,
            "loopback without sslmode"
        );
        let (cfg, _) = parse("postgres://u:p@localhost/db?sslmode=prefer").unwrap();
        assert_eq!(
            cfg.get_ssl_mode(),
            SslMode::Prefer,
            "an explicit sslmode wins"
        );
        let (url, opts) = split_tls_options("host=localhost user=u").unwrap();
        assert_eq!(url, "host=localhost user=u");
        assert_eq!(opts, TlsOptions::default());
    }

    #[test]
    fn an_unreadable_root_certificate_is_a_clear_error() {
        let Err(err) = parse("postgres://u:p@h/db?sslrootcert=/nonexistent/ca.pem") else {
            panic!("an unreadable sslrootcert must fail");
        };
        assert!(
            err.to_string().contains("sslrootcert /nonexistent/ca.pem"),
            "{err}"
        );
    }

    #[test]
    fn the_port_of_a_url() {
        assert_eq!(url_port("postgres://u:p@h:6543/db"), Some(6543));
        assert_eq!(url_port("postgres://u:p@h/db"), Some(5432));
        assert_eq!(url_port("not a url"), None);
    }
}
