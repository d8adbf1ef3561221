//! Configuration of the Callyzer API side (the reconciliation), read from the
//! environment with every problem reported at once (merged into
//! [`crate::config::ConfigError`]), and [`register`], which builds the
//! `callyzer_reconcile_page` handler from it. What the database decides (the
//! interval, the safety buffer, retries, page size) are settings rows
//! (`callsync.setting`, keys `callyzer.reconcile_*`), not variables.
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `CALLYZER_API_TOKEN` | bearer token (secret); unset: every run fails with "not configured" | unset |
//! | `CALLYZER_API_BASE_URL` | API root without the version | `https://api1.callyzer.co/api` |
//! | `CALLYZER_API_VERSION` | path segment after the root (`v2.1`, `v2.2`) | `v2.1` |
//! | `CALLYZER_API_TIMEOUT_SECS` | per request | 30 |
//! | `CALLYZER_API_CALL_METHOD` | `call_method` to send (v2.2 reportedly requires it) | `PhoneCall` for v2.2+, else not sent |
//! | `CALLYZER_API_CALL_MODE` | `call_mode` to send (v2.2 reportedly requires it) | `Voice` for v2.2+, else not sent |
//! | `CALLYZER_API_EXCLUDE_NUMBERS` | `is_exclude_numbers` (meaning ambiguous in Callyzer's docs) | not sent |
use super::{callyzer_reconcile, Handlers};
use crate::clients::callyzer::{CallyzerClient, RequestOptions};
use crate::secret::Secret;
use std::time::Duration;
use url::Url;

/// Everything the reconciliation reads from the environment.
#[derive(Debug, Clone)]
pub struct CallyzerApiSettings {
    /// `CALLYZER_API_TOKEN`; `None`: the API is not configured.
    pub token: Option<Secret<String>>,
    /// `CALLYZER_API_BASE_URL` joined with `CALLYZER_API_VERSION`.
    pub base_url: Url,
    /// `CALLYZER_API_TIMEOUT_SECS`.
    pub timeout: Duration,
    /// Optional request fields.
    pub options: RequestOptions,
}

impl Default for CallyzerApiSettings {
    fn default() -> Self {
        CallyzerApiSettings {
            token: None,
            base_url: Url::parse("https://api1.callyzer.co/api/v2.1")
                .expect("a constant URL parses"),
            timeout: Duration::from_secs(30),
            options: RequestOptions::default(),
        }
    }
}

impl CallyzerApiSettings {
    /// Reads variables through `get`.
    ///
    /// # Errors
    /// Every problem, one line each.
    pub fn from_lookup(get: &impl Fn(&str) -> Option<String>) -> Result<Self, Vec<String>> {
        let mut errors = Vec::new();
        let val = |k: &str| {
            get(k)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let root =
            val("CALLYZER_API_BASE_URL").unwrap_or_else(|| "https://api1.callyzer.co/api".into());
        let version = val("CALLYZER_API_VERSION").unwrap_or_else(|| "v2.1".into());
        let base_url = match Url::parse(&format!(
            "{}/{}",
            root.trim_end_matches('/'),
            version.trim_matches('/')
        )) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Some(u),
            _ => {
                errors.push(format!(
                    "CALLYZER_API_BASE_URL: expected an http(s) URL, got {root:?}"
                ));
                None
            }
        };
        if !version.starts_with('v') {
            errors.push(format!(
                "CALLYZER_API_VERSION: expected e.g. v2.1, got {version:?}"
            ));
        }
        let timeout = match val("CALLYZER_API_TIMEOUT_SECS").map(|v| v.parse::<u64>()) {
            None => Duration::from_secs(30),
            Some(Ok(n)) if n > 0 => Duration::from_secs(n),
            Some(_) => {
                errors.push(
                    "CALLYZER_API_TIMEOUT_SECS: expected a positive whole number of seconds".into(),
                );
                Duration::from_secs(30)
            }
        };
        // v2.2 reportedly makes call_method/call_mode mandatory (unverified): send
        // the phone-call defaults there unless told otherwise
        let v22_or_later = version
            .trim_start_matches('v')
            .split('.')
            .map(|p| p.parse::<u32>().unwrap_or(0))
            .collect::<Vec<_>>()
            >= vec![2, 2];
        let call_method = val("CALLYZER_API_CALL_METHOD")
            .or_else(|| v22_or_later.then(|| "PhoneCall".to_string()));
        let call_mode =
            val("CALLYZER_API_CALL_MODE").or_else(|| v22_or_later.then(|| "Voice".to_string()));
        let exclude_numbers = match val("CALLYZER_API_EXCLUDE_NUMBERS").as_deref() {
            None => None,
            Some("true" | "1" | "yes" | "on") => Some(true),
            Some("false" | "0" | "no" | "off") => Some(false),
            Some(other) => {
                errors.push(format!(
                    "CALLYZER_API_EXCLUDE_NUMBERS: expected true or false, got {other:?}"
                ));
                None
            }
        };
        let base_url = match base_url {
            Some(u) if errors.is_empty() => u,
            _ => return Err(errors),
        };
        Ok(CallyzerApiSettings {
            token: val("CALLYZER_API_TOKEN").map(Secret::new),
            base_url,
            timeout,
            options: RequestOptions {
                call_method,
                call_mode,
                exclude_numbers,
            },
        })
    }
}

/// Adds `callyzer_reconcile_page` to `handlers`. Without a token (or when the
/// client cannot be built) the handler is still registered, and fails each run
/// with a clear message instead of leaving its page job to an unknown-kind error.
pub fn register(
    handlers: Handlers,
    settings: &CallyzerApiSettings,
    pool: &deadpool_postgres::Pool,
) -> Handlers {
    let client = settings.token.as_ref().and_then(|token| {
        CallyzerClient::new(
            &settings.base_url,
            token.clone(),
            settings.timeout,
            settings.options.clone(),
        )
        .map_err(|e| tracing::error!(error = %e, "Callyzer API client unavailable"))
        .ok()
    });
    handlers.register(
        callyzer_reconcile::KIND,
        callyzer_reconcile::CallyzerReconcilePage::new(pool.clone(), client),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn from(pairs: &[(&str, &str)]) -> Result<CallyzerApiSettings, Vec<String>> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        CallyzerApiSettings::from_lookup(&|k: &str| map.get(k).cloned())
    }

    #[test]
    fn defaults_point_at_v2_1_without_a_token() {
        let s = from(&[]).unwrap();
        assert!(s.token.is_none());
        assert_eq!(s.base_url.as_str(), "https://api1.callyzer.co/api/v2.1");
        assert_eq!(s.timeout, Duration::from_secs(30));
        assert_eq!(s.options, RequestOptions::default());
    }

    #[test]
    fn v2_2_sends_call_method_and_mode_by_default() {
        let s = from(&[("CALLYZER_API_VERSION", "v2.2")]).unwrap();
        assert_eq!(s.options.call_method.as_deref(), Some("PhoneCall"));
        assert_eq!(s.options.call_mode.as_deref(), Some("Voice"));
    }

    #[test]
    fn malformed_values_are_all_reported() {
        let errors = from(&[
            ("CALLYZER_API_BASE_URL", "api1.callyzer.co"),
            ("CALLYZER_API_TIMEOUT_SECS", "0"),
            ("CALLYZER_API_EXCLUDE_NUMBERS", "maybe"),
        ])
        .unwrap_err();
        assert_eq!(errors.len(), 3, "{errors:?}");
    }

    #[test]
    fn the_token_never_shows_in_debug() {
        let s = from(&[("CALLYZER_API_TOKEN", "cz-supersecret")]).unwrap();
        assert!(!format!("{s:?}").contains("supersecret"));
    }
}
