//! The worker's configuration: read from the environment once, parsed into
//! typed fields, with every problem reported together so one restart fixes all
//! of them. Secrets are [`Secret`]s and never appear in `Debug`.
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `DATABASE_URL` | direct or session-pooler connection (LISTEN needs a session) | required |
//! | `WORKER_ID` | name on leases and in logs | `FLY_MACHINE_ID`, else host-pid |
//! | `WORKER_CONCURRENCY` | jobs running at once in this process | 32 |
//! | `WORKER_CLAIM_LOOPS` | claims in flight at once (overlaps round trips under load) | 2 |
//! | `WORKER_POLL_INTERVAL_MS` | claim attempt when no NOTIFY arrived, milliseconds | 1000 |
//! | `WORKER_LEASE_SECS` | lease length; renewed every third of it while a job runs | 30 |
//! | `WORKER_DRAIN_SECS` | how long shutdown waits for running jobs | 20 |
//! | `WORKER_LISTEN` | `true`: LISTEN/NOTIFY plus polling; `false`: polling only (transaction poolers) | true |
//! | `DB_POOL_SIZE` | connections in the pool (claims, completions, handlers) | 8 |
//! | `LOG_FORMAT` | `pretty` or `json` | pretty |
//! | `HEALTH_ADDR` | address of `/healthz` and `/metrics`, e.g. `0.0.0.0:9090` | off |
//!
//! The ElevenLabs → BPMsoft variables (`EXTERNAL_CRM_*`, `CRM_*`, `LLM_*`) are
//! listed in [`crate::jobs::elevenlabs_crm_settings`]; the Callyzer API ones
//! (`CALLYZER_API_*`) in [`crate::jobs::callyzer_api_settings`]; the admin
//! notification channels (`NOTIFY_*`) in [`crate::jobs::notify_admin`].
use crate::secret::Secret;
use crate::telemetry::LogFormat;
use std::num::NonZeroUsize;
use std::time::Duration;

/// Everything the worker process needs, already validated.
#[derive(Debug, Clone)]
pub struct Config {
    /// Postgres connection URL; holds a password, so it is a secret.
    pub database_url: Secret<String>,
    /// The worker's name on leases (`job.leased_by`) and in logs.
    pub worker_id: String,
    /// At most this many jobs run at once in this process.
    pub concurrency: NonZeroUsize,
    /// Claim loops side by side; each has at most one claim in flight.
    pub claim_loops: NonZeroUsize,
    /// Claim attempt interval when no NOTIFY arrives (fallback and poll-only mode).
    pub poll_interval: Duration,
    /// Lease granted per claim; a job's lease is renewed every third of it.
    pub lease: Duration,
    /// Shutdown waits this long for running jobs, then releases them to the queue.
    pub drain_deadline: Duration,
    /// LISTEN for NOTIFY (false for poolers that cannot LISTEN).
    pub listen: bool,
    /// Pool size.
    pub pool_size: NonZeroUsize,
    /// Log line format.
    pub log_format: LogFormat,
    /// Where `/healthz` and `/metrics` are served (`HEALTH_ADDR`); `None`: not at all.
    pub health_addr: Option<std::net::SocketAddr>,
    /// The ElevenLabs → BPMsoft pipeline (its variables: `jobs::elevenlabs_crm_settings`).
    pub elevenlabs: crate::jobs::elevenlabs_crm_settings::ElevenLabsCrmSettings,
    /// The Callyzer API reconciliation (its variables: `jobs::callyzer_api_settings`).
    pub callyzer_api: crate::jobs::callyzer_api_settings::CallyzerApiSettings,
    /// Admin notification channels (its variables: `jobs::notify_admin`).
    pub notify: crate::jobs::notify_admin::NotifySettings,
}

/// All problems found in the environment, one line each.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration:\n  {}", .0.join("\n  "))]
pub struct ConfigError(pub Vec<String>);

impl Config {
    /// Reads the process environment.
    ///
    /// # Errors
    /// Every missing or malformed variable, together.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads variables through `get` (tests pass a map).
    ///
    /// # Errors
    /// Every missing or malformed variable, together.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut p = Parser {
            get: &get,
            errors: Vec::new(),
        };
        let database_url = p.required("DATABASE_URL").map(Secret::new);
        let worker_id = get("WORKER_ID")
            .or_else(|| get("FLY_MACHINE_ID"))
            .unwrap_or_else(default_worker_id);
        let concurrency = p.number::<NonZeroUsize>("WORKER_CONCURRENCY", "32");
        let claim_loops = p.number::<NonZeroUsize>("WORKER_CLAIM_LOOPS", "2");
        let poll_ms = p.number::<u64>("WORKER_POLL_INTERVAL_MS", "1000");
        let lease_secs = p.number::<u64>("WORKER_LEASE_SECS", "30");
        let drain_secs = p.number::<u64>("WORKER_DRAIN_SECS", "20");
        let listen = p.boolean("WORKER_LISTEN", true);
        let pool_size = p.number::<NonZeroUsize>("DB_POOL_SIZE", "8");
        let log_format = match get("LOG_FORMAT").as_deref() {
            None | Some("pretty") | Some("") => Some(LogFormat::Pretty),
            Some("json") => Some(LogFormat::Json),
            Some(other) => {
                p.errors.push(format!(
                    "LOG_FORMAT: expected pretty or json, got {other:?}"
                ));
                None
            }
        };
        let health_addr = match get("HEALTH_ADDR").filter(|v| !v.trim().is_empty()) {
            None => Some(None),
            Some(raw) => match raw.trim().parse::<std::net::SocketAddr>() {
                Ok(addr) => Some(Some(addr)),
                Err(_) => {
                    p.errors.push(format!(
                        "HEALTH_ADDR: expected host:port such as 0.0.0.0:9090, got {raw:?}"
                    ));
                    None
                }
            },
        };
        let elevenlabs =
            crate::jobs::elevenlabs_crm_settings::ElevenLabsCrmSettings::from_lookup(&get)
                .map_err(|errors| p.errors.extend(errors))
                .unwrap_or_default();
        let callyzer_api =
            crate::jobs::callyzer_api_settings::CallyzerApiSettings::from_lookup(&get)
                .map_err(|errors| p.errors.extend(errors))
                .unwrap_or_default();
        let notify = crate::jobs::notify_admin::NotifySettings::from_lookup(&get)
            .map_err(|errors| p.errors.extend(errors))
            .unwrap_or_default();
        if lease_secs == Some(0) {
            p.errors
                .push("WORKER_LEASE_SECS: must be at least 1".into());
        }
        if poll_ms == Some(0) {
            p.errors
                .push("WORKER_POLL_INTERVAL_MS: must be at least 1".into());
        }
        if !p.errors.is_empty() {
            return Err(ConfigError(p.errors));
        }
        // Every `None` above pushed an error, so with none reported all are `Some`.
        let config = (|| {
            Some(Config {
                database_url: database_url?,
                worker_id,
                concurrency: concurrency?,
                claim_loops: claim_loops?,
                poll_interval: Duration::from_millis(poll_ms?),
                lease: Duration::from_secs(lease_secs?),
                drain_deadline: Duration::from_secs(drain_secs?),
                listen: listen?,
                pool_size: pool_size?,
                log_format: log_format?,
                health_addr: health_addr?,
                elevenlabs,
                callyzer_api,
                notify,
            })
        })();
        config.ok_or_else(|| ConfigError(vec!["configuration incomplete".into()]))
    }
}

fn default_worker_id() -> String {
    let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
    let host = host.trim();
    format!(
        "{}-{}",
        if host.is_empty() { "worker" } else { host },
        std::process::id()
    )
}

/// Collects errors instead of stopping at the first.
struct Parser<'a, F: Fn(&str) -> Option<String>> {
    get: &'a F,
    errors: Vec<String>,
}

impl<F: Fn(&str) -> Option<String>> Parser<'_, F> {
    fn required(&mut self, key: &str) -> Option<String> {
        match (self.get)(key).filter(|v| !v.trim().is_empty()) {
            Some(v) => Some(v),
            None => {
                self.errors.push(format!("{key}: required"));
                None
            }
        }
    }

    fn number<T: std::str::FromStr>(&mut self, key: &str, default: &str) -> Option<T> {
        let raw = (self.get)(key).unwrap_or_else(|| default.to_string());
        match raw.trim().parse::<T>() {
            Ok(v) => Some(v),
            Err(_) => {
                self.errors.push(format!(
                    "{key}: expected a positive whole number, got {raw:?}"
                ));
                None
            }
        }
    }

    fn boolean(&mut self, key: &str, default: bool) -> Option<bool> {
        match (self.get)(key).as_deref().map(str::trim) {
            None | Some("") => Some(default),
            Some("true" | "1" | "yes" | "on") => Some(true),
            Some("false" | "0" | "no" | "off") => Some(false),
            Some(other) => {
                self.errors
                    .push(format!("{key}: expected true or false, got {other:?}"));
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn from(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_apply_when_only_the_database_is_given() {
        let c = from(&[("DATABASE_URL", "postgres://u:p@h/db")]).unwrap();
        assert_eq!(c.concurrency.get(), 32);
        assert_eq!(c.lease, Duration::from_secs(30));
        assert!(c.listen);
        assert_eq!(c.log_format, LogFormat::Pretty);
    }

    #[test]
    fn every_problem_is_reported_together() {
        let err = from(&[
            ("WORKER_CONCURRENCY", "0"),
            ("WORKER_LISTEN", "maybe"),
            ("LOG_FORMAT", "xml"),
        ])
        .unwrap_err();
        let text = err.to_string();
        for key in [
            "DATABASE_URL",
            "WORKER_CONCURRENCY",
            "WORKER_LISTEN",
            "LOG_FORMAT",
        ] {
            assert!(text.contains(key), "{key} missing from {text}");
        }
        assert_eq!(err.0.len(), 4);
    }

    #[test]
    fn the_database_password_never_shows_in_debug() {
        let c = from(&[("DATABASE_URL", "postgres://u:sup3rsecret@h/db")]).unwrap();
        assert!(!format!("{c:?}").contains("sup3rsecret"));
    }
}
