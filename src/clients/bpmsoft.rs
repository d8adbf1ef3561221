//! BPMsoft (Creatio) `SaveWebFormObjectData`: the landing form wire format,
//! one POST, and what its answer means (reference bpmsoft.md). Owns the HTTP
//! exchange and its classification; what goes into the form (fields, limits,
//! idempotency) is the `crm_dispatch` job's business.
//!
//! | answer | [`Outcome`] | retried |
//! |---|---|---|
//! | 200, inner `resultCode` 0 | `Success` | — |
//! | 200, inner `resultCode` −1 (or any other code) | `Rejected` with `resultMessage` | no |
//! | 200, inner result `""` (request-shape bug) | `EmptyResult` | no |
//! | 200, body unreadable | `Unreadable` | no |
//! | 408, 429, 5xx, timeout, connection failure | `Retryable` | yes |
//! | any other status (400, 404, …) | `HttpError` | no |
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use url::Url;

/// A landing form submission: `formData` of the wire format.
#[derive(Debug, Clone, PartialEq)]
pub struct LandingForm {
    /// `formData.formId`: the landing's Id (`CRM_LANDING_ID`).
    pub form_id: uuid::Uuid,
    /// `formData.formFieldsData`: target object columns, values as strings.
    pub fields: Vec<(String, String)>,
    /// `formData.contactFieldsData`: contact columns (`FullName`, `Phone`, `Email`).
    pub contact_fields: Vec<(String, String)>,
}

impl LandingForm {
    /// The exact JSON body: `{"formData": {"formId", "formFieldsData", "contactFieldsData"}}`.
    pub fn to_json(&self) -> Value {
        let pairs = |v: &[(String, String)]| -> Vec<Value> {
            v.iter()
                .map(|(n, v)| json!({"name": n, "value": v}))
                .collect()
        };
        json!({"formData": {
            "formId": self.form_id.to_string(),
            "formFieldsData": pairs(&self.fields),
            "contactFieldsData": pairs(&self.contact_fields),
        }})
    }
}

/// What an attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// `resultCode` 0 (in BPMsoft's async mode: accepted, not yet created).
    Success {
        /// `resultMessage`.
        message: String,
    },
    /// `resultCode` other than 0: configuration or data problem; not retried.
    Rejected {
        /// The code (−1 in every known case).
        code: i64,
        /// `resultMessage`: the localized reason.
        message: String,
    },
    /// An empty inner result: `formData` or `formFieldsData` did not arrive.
    EmptyResult,
    /// HTTP 200 but no result could be read from the body.
    Unreadable(String),
    /// A status that another attempt will not change.
    HttpError(u16),
    /// Timeout, connection failure, 408, 429 or 5xx.
    Retryable(String),
}

/// One attempt, for the dispatch log.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// The HTTP status, if an answer came.
    pub http_status: Option<u16>,
    /// The answer's body as received (may be empty).
    pub response_text: String,
    /// The inner `resultCode`, when one could be read.
    pub result_code: Option<i64>,
    /// Classification.
    pub outcome: Outcome,
    /// Wall time of the request.
    pub duration: Duration,
}

/// The client. No authentication: the service trusts the `Referer` (and
/// perhaps `Origin`) domain, so both carry `CRM_TRUSTED_ORIGIN`.
#[derive(Debug, Clone)]
pub struct BpmsoftClient {
    http: reqwest::Client,
    url: Url,
    origin: String,
    referer: String,
}

impl BpmsoftClient {
    /// A client for the service at `url` (the full `…/SaveWebFormObjectData`
    /// URL), sending `trusted` as `Origin` (scheme, host, port) and `Referer`
    /// (as given), with a per-request `timeout`.
    ///
    /// # Errors
    /// The reqwest builder's error (TLS set-up).
    pub fn new(url: Url, trusted: &Url, timeout: Duration) -> Result<Self, reqwest::Error> {
        Ok(BpmsoftClient {
            http: reqwest::Client::builder()
                .timeout(timeout)
                .connect_timeout(timeout.min(Duration::from_secs(10)))
                .build()?,
            url,
            origin: trusted.origin().ascii_serialization(),
            referer: trusted.as_str().to_string(),
        })
    }

    /// Sends `body` once and classifies the answer. Never fails: every way a
    /// request can go wrong is an [`Outcome`].
    pub async fn send(&self, body: &Value) -> Attempt {
        let started = Instant::now();
        let sent = self
            .http
            .post(self.url.clone())
            .header("Content-Type", "application/json; charset=UTF-8")
            .header("Accept", "application/json")
            .header("Origin", &self.origin)
            .header("Referer", &self.referer)
            .body(body.to_string())
            .send()
            .await;
        crate::metrics::record_response("bpmsoft", &sent);
        let response = match sent {
            Ok(r) => r,
            Err(e) => {
                let what = if e.is_timeout() {
                    "timeout"
                } else {
                    "request failed"
                };
                return Attempt {
                    http_status: None,
                    response_text: String::new(),
                    result_code: None,
                    outcome: Outcome::Retryable(format!("{what}: {e}")),
                    duration: started.elapsed(),
                };
            }
        };
        let status = response.status().as_u16();
        let text = match response.text().await {
            Ok(t) => t,
            Err(e) => {
                return Attempt {
                    http_status: Some(status),
                    response_text: String::new(),
                    result_code: None,
                    outcome: Outcome::Retryable(format!("reading the answer failed: {e}")),
                    duration: started.elapsed(),
                }
            }
        };
        let duration = started.elapsed();
        let (outcome, result_code) = match status {
            200 => classify_body(&text),
            408 | 429 | 500..=599 => (Outcome::Retryable(format!("HTTP {status}")), None),
            other => (Outcome::HttpError(other), None),
        };
        Attempt {
            http_status: Some(status),
            response_text: text,
            result_code,
            outcome,
            duration,
        }
    }
}

/// Reads a 200 answer: the wrapped result string (or object), leniently.
pub fn classify_body(text: &str) -> (Outcome, Option<i64>) {
    let outer: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(_) => return (Outcome::Unreadable("the answer is not JSON".into()), None),
    };
    let inner = ["SaveWebFormObjectDataResult", "SaveWebFormLeadDataResult"]
        .iter()
        .find_map(|k| outer.get(*k));
    let result = match inner {
        Some(Value::String(s)) if s.trim().is_empty() => return (Outcome::EmptyResult, None),
        Some(Value::String(s)) => match parse_inner(s) {
            Some(r) => r,
            None => {
                return (
                    Outcome::Unreadable("the inner result has no resultCode".into()),
                    None,
                )
            }
        },
        Some(obj @ Value::Object(_)) => match read_result(obj) {
            Some(r) => r,
            None => {
                return (
                    Outcome::Unreadable("the inner result has no resultCode".into()),
                    None,
                )
            }
        },
        Some(Value::Null) | None => return (Outcome::EmptyResult, None),
        Some(_) => return (Outcome::Unreadable("unexpected inner result".into()), None),
    };
    let (code, message) = result;
    let outcome = if code == 0 {
        Outcome::Success { message }
    } else {
        Outcome::Rejected { code, message }
    };
    (outcome, Some(code))
}

/// The inner string: strict JSON first; then with bare keys quoted (Creatio's
/// own script does this before `JSON.parse`); last, `resultCode` found by hand.
pub fn parse_inner(s: &str) -> Option<(i64, String)> {
    if let Ok(v) = serde_json::from_str::<Value>(s) {
        if let Some(r) = read_result(&v) {
            return Some(r);
        }
    }
    if let Ok(v) = serde_json::from_str::<Value>(&quote_bare_keys(s)) {
        if let Some(r) = read_result(&v) {
            return Some(r);
        }
    }
    let at = s.find("resultCode")? + "resultCode".len();
    let rest = s[at..].trim_start_matches(|c: char| c == '"' || c == '\'' || c.is_whitespace());
    let rest = rest
        .strip_prefix(':')?
        .trim_start_matches(|c: char| c == '"' || c.is_whitespace());
    let end = rest
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_digit() || (i == 0 && c == '-')))
        .map_or(rest.len(), |(i, _)| i);
    let code = rest[..end].parse::<i64>().ok()?;
    Some((code, String::new()))
}

fn read_result(v: &Value) -> Option<(i64, String)> {
    let code = match v.get("resultCode")? {
        Value::Number(n) => n.as_i64()?,
        Value::String(s) => s.trim().parse().ok()?,
        _ => return None,
    };
    let message = match v.get("resultMessage") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    };
    Some((code, message))
}

/// Quotes identifiers used as object keys outside string literals:
/// `{resultCode:0}` → `{"resultCode":0}`.
fn quote_bare_keys(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 16);
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    let mut in_string = false;
    let mut last_significant = ' ';
    while i < chars.len() {
        let c = chars[i];
        if in_string {
            out.push(c);
            if c == '\\' && i + 1 < chars.len() {
                out.push(chars[i + 1]);
                i += 2;
                continue;
            }
            if c == '"' {
                in_string = false;
                last_significant = '"';
            }
            i += 1;
            continue;
        }
        if c == '"' {
            in_string = true;
            out.push(c);
            i += 1;
            continue;
        }
        if (c.is_ascii_alphabetic() || c == '_') && matches!(last_significant, '{' | ',') {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let ident: String = chars[start..i].iter().collect();
            let mut j = i;
            while j < chars.len() && chars[j].is_whitespace() {
                j += 1;
            }
            if j < chars.len() && chars[j] == ':' {
                out.push('"');
                out.push_str(&ident);
                out.push('"');
            } else {
                out.push_str(&ident);
            }
            last_significant = 'x';
            continue;
        }
        if !c.is_whitespace() {
            last_significant = c;
        }
        out.push(c);
        i += 1;
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_wire_format_wraps_everything_in_form_data() {
        let form = LandingForm {
            form_id: uuid::Uuid::nil(),
            fields: vec![("Commentary".into(), "c".into())],
            contact_fields: vec![("Phone".into(), "+375291234567".into())],
        };
        let v = form.to_json();
        assert_eq!(
            v["formData"]["formId"],
            "00000000-0000-0000-0000-000000000000"
        );
        assert_eq!(v["formData"]["formFieldsData"][0]["name"], "Commentary");
        assert_eq!(
            v["formData"]["contactFieldsData"][0]["value"],
            "+375291234567"
        );
        assert!(v.get("landingId").is_none() && v.get("fields").is_none());
    }

    #[test]
    fn an_inner_string_with_unquoted_keys_is_read() {
        let body = r#"{"SaveWebFormObjectDataResult": "{resultMessage:\"Данные, сохранены: да\",resultCode:0}"}"#;
        assert_eq!(
            classify_body(body),
            (
                Outcome::Success {
                    message: "Данные, сохранены: да".into()
                },
                Some(0)
            )
        );
    }

    #[test]
    fn a_strict_json_inner_string_with_minus_one_is_a_rejection_with_its_message() {
        let body = r#"{"SaveWebFormObjectDataResult": "{\"resultCode\":-1,\"resultMessage\":\"Запрос с недопустимого адреса\"}"}"#;
        assert_eq!(
            classify_body(body),
            (
                Outcome::Rejected {
                    code: -1,
                    message: "Запрос с недопустимого адреса".into()
                },
                Some(-1)
            )
        );
    }

    #[test]
    fn an_empty_inner_result_is_its_own_outcome() {
        assert_eq!(
            classify_body(r#"{"SaveWebFormObjectDataResult": ""}"#).0,
            Outcome::EmptyResult
        );
    }

    #[test]
    fn the_legacy_result_key_is_accepted() {
        let body = r#"{"SaveWebFormLeadDataResult": "{resultCode:0,resultMessage:\"ok\"}"}"#;
        assert!(matches!(classify_body(body).0, Outcome::Success { .. }));
    }

    #[test]
    fn a_garbled_inner_string_still_yields_its_result_code() {
        assert_eq!(
            parse_inner("{resultCode: -1, resultMessage: oops}"),
            Some((-1, String::new()))
        );
    }

    #[test]
    fn html_instead_of_json_is_unreadable() {
        assert!(matches!(
            classify_body("<html>error</html>").0,
            Outcome::Unreadable(_)
        ));
    }
}
