//! Configuration of the ElevenLabs → BPMsoft pipeline, read from the
//! environment with every problem reported at once (merged into
//! [`crate::config::ConfigError`]), and [`register`], which builds the
//! pipeline's two handlers from it. The CRM variable names are the ones the
//! team already uses.
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `EXTERNAL_CRM_ENABLED` | analyses are dispatched to BPMsoft at all | false |
//! | `EXTERNAL_CRM_DRY_RUN` | build and record the payload (`dry_run`), send nothing | true |
//! | `CRM_SERVICE_URL` | full `…/SaveWebFormObjectData` URL | required when enabled and not dry-run |
//! | `CRM_LANDING_ID` | landing GUID, sent as `formData.formId` | required when enabled |
//! | `CRM_TRUSTED_ORIGIN` | sent as `Referer` (as given) and `Origin` (scheme://host[:port]) | required when enabled |
//! | `CRM_TIMEOUT_SECS` | per request | 30 |
//! | `CRM_NO_CONTACT_POLICY` | no phone and no e-mail: `skip` (status `skipped_no_contact`) or `send` | skip |
//! | `CRM_DEFAULT_COUNTRY_CODE` | calling code for national phone numbers (`80 29 …` → `+375 29 …`) | 375 |
//! | `LLM_BASE_URL` | OpenAI-compatible API base, e.g. `https://api.openai.com/v1`; unset: no LLM | unset |
//! | `LLM_MODEL` | model name | required with `LLM_BASE_URL` |
//! | `LLM_API_KEY` | bearer key (secret) | none |
//! | `LLM_TIMEOUT_SECS` | per request | 60 |
use super::{crm_dispatch, elevenlabs_analysis, Handlers};
use crate::clients::bpmsoft::BpmsoftClient;
use crate::clients::llm::LlmClient;
use crate::secret::Secret;
use std::time::Duration;
use url::Url;

/// What to do with an analysis whose contact has neither phone nor e-mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NoContactPolicy {
    /// Record `skipped_no_contact` and send nothing.
    #[default]
    Skip,
    /// Send the lead anyway (the CRM then holds the analysis without a contact).
    Send,
}

/// The CRM side.
#[derive(Debug, Clone)]
pub struct CrmSettings {
    /// `EXTERNAL_CRM_ENABLED`.
    pub enabled: bool,
    /// `EXTERNAL_CRM_DRY_RUN`.
    pub dry_run: bool,
    /// `CRM_SERVICE_URL` (always set when enabled and not dry-run).
    pub service_url: Option<Url>,
    /// `CRM_LANDING_ID` (always set when enabled).
    pub landing_id: Option<uuid::Uuid>,
    /// `CRM_TRUSTED_ORIGIN` (always set when enabled).
    pub trusted_origin: Option<Url>,
    /// `CRM_TIMEOUT_SECS`.
    pub timeout: Duration,
    /// `CRM_NO_CONTACT_POLICY`.
    pub no_contact: NoContactPolicy,
    /// `CRM_DEFAULT_COUNTRY_CODE`, digits only; empty: national numbers are refused.
    pub default_country: Option<String>,
}

impl Default for CrmSettings {
    fn default() -> Self {
        CrmSettings {
            enabled: false,
            dry_run: true,
            service_url: None,
            landing_id: None,
            trusted_origin: None,
            timeout: Duration::from_secs(30),
            no_contact: NoContactPolicy::Skip,
            default_country: Some("375".into()),
        }
    }
}

/// The optional LLM.
#[derive(Debug, Clone)]
pub struct LlmSettings {
    /// `LLM_BASE_URL`.
    pub base_url: Url,
    /// `LLM_MODEL`.
    pub model: String,
    /// `LLM_API_KEY`.
    pub api_key: Option<Secret<String>>,
    /// `LLM_TIMEOUT_SECS`.
    pub timeout: Duration,
}

/// Everything the pipeline reads from the environment.
#[derive(Debug, Clone, Default)]
pub struct ElevenLabsCrmSettings {
    /// BPMsoft dispatch.
    pub crm: CrmSettings,
    /// `None`: analyses are mapped deterministically from the event.
    pub llm: Option<LlmSettings>,
}

impl ElevenLabsCrmSettings {
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
        let mut boolean = |k: &str, default: bool| match val(k).as_deref() {
            None => default,
            Some("true" | "1" | "yes" | "on") => true,
            Some("false" | "0" | "no" | "off") => false,
            Some(other) => {
                errors.push(format!("{k}: expected true or false, got {other:?}"));
                default
            }
        };
        let enabled = boolean("EXTERNAL_CRM_ENABLED", false);
        let dry_run = boolean("EXTERNAL_CRM_DRY_RUN", true);

        let url = |k: &str, errors: &mut Vec<String>| -> Option<Url> {
            let raw = val(k)?;
            match Url::parse(&raw) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Some(u),
                _ => {
                    errors.push(format!("{k}: expected an http(s) URL, got {raw:?}"));
                    None
                }
            }
        };
        let service_url = url("CRM_SERVICE_URL", &mut errors);
        let trusted_origin = url("CRM_TRUSTED_ORIGIN", &mut errors);
        let landing_id = val("CRM_LANDING_ID").and_then(|raw| match uuid::Uuid::parse_str(&raw) {
            Ok(id) => Some(id),
            Err(_) => {
                errors.push(format!("CRM_LANDING_ID: expected a GUID, got {raw:?}"));
                None
            }
        });
        if enabled {
            if landing_id.is_none() && val("CRM_LANDING_ID").is_none() {
                errors.push("CRM_LANDING_ID: required when EXTERNAL_CRM_ENABLED".into());
            }
            if trusted_origin.is_none() && val("CRM_TRUSTED_ORIGIN").is_none() {
                errors.push("CRM_TRUSTED_ORIGIN: required when EXTERNAL_CRM_ENABLED".into());
            }
            if !dry_run && service_url.is_none() && val("CRM_SERVICE_URL").is_none() {
                errors.push(
                    "CRM_SERVICE_URL: required when EXTERNAL_CRM_ENABLED and not EXTERNAL_CRM_DRY_RUN"
                        .into(),
                );
            }
        }
        let secs = |k: &str, default: u64, errors: &mut Vec<String>| -> Duration {
            match val(k).map(|v| v.parse::<u64>()) {
                None => Duration::from_secs(default),
                Some(Ok(n)) if n > 0 => Duration::from_secs(n),
                Some(_) => {
                    errors.push(format!("{k}: expected a positive whole number of seconds"));
                    Duration::from_secs(default)
                }
            }
        };
        let timeout = secs("CRM_TIMEOUT_SECS", 30, &mut errors);
        let llm_timeout = secs("LLM_TIMEOUT_SECS", 60, &mut errors);
        let no_contact = match val("CRM_NO_CONTACT_POLICY").as_deref() {
            None | Some("skip") => NoContactPolicy::Skip,
            Some("send") => NoContactPolicy::Send,
            Some(other) => {
                errors.push(format!(
                    "CRM_NO_CONTACT_POLICY: expected skip or send, got {other:?}"
                ));
                NoContactPolicy::Skip
            }
        };
        let default_country = match get("CRM_DEFAULT_COUNTRY_CODE") {
            None => Some("375".to_string()),
            Some(raw) => {
                let cc = raw.trim().trim_start_matches('+').to_string();
                if cc.is_empty() {
                    None
                } else if cc.len() <= 3
                    && cc.chars().all(|c| c.is_ascii_digit())
                    && !cc.starts_with('0')
                {
                    Some(cc)
                } else {
                    errors.push(format!(
                        "CRM_DEFAULT_COUNTRY_CODE: expected 1-3 digits, got {raw:?}"
                    ));
                    None
                }
            }
        };

        let llm = match (url("LLM_BASE_URL", &mut errors), val("LLM_MODEL")) {
            (Some(base_url), Some(model)) => Some(LlmSettings {
                base_url,
                model,
                api_key: val("LLM_API_KEY").map(Secret::new),
                timeout: llm_timeout,
            }),
            (Some(_), None) => {
                errors.push("LLM_MODEL: required with LLM_BASE_URL".into());
                None
            }
            (None, _) => None,
        };

        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(ElevenLabsCrmSettings {
            crm: CrmSettings {
                enabled,
                dry_run,
                service_url,
                landing_id,
                trusted_origin,
                timeout,
                no_contact,
                default_country,
            },
            llm,
        })
    }
}

/// Adds `elevenlabs_analysis` and `crm_dispatch` to `handlers`. A client that
/// cannot be built (TLS set-up) is logged and left out: analyses are then
/// mapped without the LLM, and real sends fail permanently with a clear error.
pub fn register(
    handlers: Handlers,
    settings: &ElevenLabsCrmSettings,
    pool: &deadpool_postgres::Pool,
) -> Handlers {
    let llm = settings.llm.as_ref().and_then(|l| {
        LlmClient::new(&l.base_url, l.model.clone(), l.api_key.clone(), l.timeout)
            .map_err(
                |e| tracing::error!(error = %e, "LLM client unavailable; analysing without it"),
            )
            .ok()
    });
    let crm = &settings.crm;
    let client = match (
        crm.enabled && !crm.dry_run,
        &crm.service_url,
        &crm.trusted_origin,
    ) {
        (true, Some(url), Some(origin)) => BpmsoftClient::new(url.clone(), origin, crm.timeout)
            .map_err(|e| tracing::error!(error = %e, "BPMsoft client unavailable"))
            .ok(),
        _ => None,
    };
    handlers
        .register(
            elevenlabs_analysis::KIND,
            elevenlabs_analysis::ElevenLabsAnalysis {
                pool: pool.clone(),
                llm,
                dispatch: crm.enabled,
                default_country: crm.default_country.clone(),
            },
        )
        .register(
            crm_dispatch::KIND,
            crm_dispatch::CrmDispatch {
                pool: pool.clone(),
                settings: crm.clone(),
                client,
            },
        )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn from(pairs: &[(&str, &str)]) -> Result<ElevenLabsCrmSettings, Vec<String>> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ElevenLabsCrmSettings::from_lookup(&|k: &str| map.get(k).cloned())
    }

    #[test]
    fn nothing_set_means_no_crm_and_no_llm() {
        let s = from(&[]).unwrap();
        assert!(!s.crm.enabled);
        assert!(s.crm.dry_run);
        assert!(s.llm.is_none());
    }

    #[test]
    fn an_enabled_real_send_needs_url_landing_and_origin() {
        let errors = from(&[
            ("EXTERNAL_CRM_ENABLED", "true"),
            ("EXTERNAL_CRM_DRY_RUN", "false"),
        ])
        .unwrap_err();
        assert_eq!(errors.len(), 3, "{errors:?}");
    }

    #[test]
    fn malformed_values_are_all_reported() {
        let errors = from(&[
            ("CRM_LANDING_ID", "not-a-guid"),
            ("CRM_TRUSTED_ORIGIN", "mir.utlik.pro"),
            ("CRM_NO_CONTACT_POLICY", "maybe"),
            ("LLM_BASE_URL", "http://llm.local/v1"),
        ])
        .unwrap_err();
        assert_eq!(errors.len(), 4, "{errors:?}");
    }

    #[test]
    fn the_llm_key_never_shows_in_debug() {
        let s = from(&[
            ("LLM_BASE_URL", "http://llm.local/v1"),
            ("LLM_MODEL", "m"),
            ("LLM_API_KEY", "sk-supersecret"),
        ])
        .unwrap();
        assert!(!format!("{s:?}").contains("supersecret"));
    }
}
