//! Callyzer's REST API, call-history endpoint only (reference callyzer.md §3):
//! one POST per page, and what its answer means. Owns the HTTP exchange and its
//! classification; which page to ask for, retries and the rate limit belong to
//! the `callyzer_reconcile_page` job and the queue (one request per claim of a
//! rate-limited kind, so no sleeping here).
//!
//! | answer | [`PageOutcome`] | the run |
//! |---|---|---|
//! | 200, `message` Success (or absent), `result` an array | `Page` | goes on |
//! | 429 | `RateLimited` with `Retry-After` | same page after the wait |
//! | 401, 403 | `Unauthorized` | fails, alert, no retry |
//! | 408, 5xx, timeout, connection error, unreadable (non-JSON) body | `Transient` | same page, a few times |
//! | 400 and other 4xx, `message` other than Success, JSON without a `result` array | `Rejected` | fails, no retry |
//!
//! Open points coded both ways (reference §8): `Retry-After` is read as seconds,
//! or as an HTTP date; a number above 600 is taken to be milliseconds (the unit is
//! unverified). v2.2 is reported to require `call_method`/`call_mode`: they are
//! sent when configured, and by default (`PhoneCall`/`Voice`) for v2.2 and later.
use crate::secret::Secret;
use serde_json::{json, Value};
use std::time::Duration;
use url::Url;

/// One history request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryQuery {
    /// Sync window start, UNIX seconds UTC.
    pub synced_from: i64,
    /// Sync window end, UNIX seconds UTC.
    pub synced_to: i64,
    /// Employee numbers as `CC-NUMBER`.
    pub emp_numbers: Vec<String>,
    /// 1-based.
    pub page_no: i32,
    /// Rows per page (100 at most).
    pub page_size: i32,
}

/// What one request came to.
#[derive(Debug, Clone, PartialEq)]
pub enum PageOutcome {
    /// The page's rows (call-log records, not yet parsed) and `total_records` when sent.
    Page {
        /// `result`.
        rows: Vec<Value>,
        /// `total_records`.
        total_records: Option<i64>,
    },
    /// 429: ask again after this long (`None`: no usable `Retry-After`).
    RateLimited {
        /// Parsed `Retry-After`.
        retry_after: Option<Duration>,
    },
    /// 401/403: the token is wrong, revoked, or the API add-on expired.
    Unauthorized(String),
    /// Another attempt will fail the same way.
    Rejected(String),
    /// Another attempt may succeed.
    Transient(String),
}

/// Optional request fields whose need is unverified (reference §3.1, §8).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestOptions {
    /// `call_method` (v2.2: reportedly mandatory, e.g. `PhoneCall`).
    pub call_method: Option<String>,
    /// `call_mode` (v2.2: reportedly mandatory, e.g. `Voice`).
    pub call_mode: Option<String>,
    /// `is_exclude_numbers`; unset: not sent (the API's default applies).
    pub exclude_numbers: Option<bool>,
}

/// The client.
#[derive(Debug, Clone)]
pub struct CallyzerClient {
    http: reqwest::Client,
    history_url: Url,
    token: Secret<String>,
    options: RequestOptions,
}

impl CallyzerClient {
    /// A client for `base` (e.g. `https://api1.callyzer.co/api/v2.1`, the version
    /// in the path), with a bearer `token` and a per-request `timeout`.
    ///
    /// # Errors
    /// The reqwest builder's error (TLS set-up), or a base URL that cannot be joined.
    pub fn new(
        base: &Url,
        token: Secret<String>,
        timeout: Duration,
        options: RequestOptions,
    ) -> Result<Self, String> {
        let mut base = base.clone();
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        let history_url = base
            .join("call-log/history")
            .map_err(|e| format!("Callyzer base URL: {e}"))?;
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(CallyzerClient {
            http,
            history_url,
            token,
            options,
        })
    }

    /// The JSON body of one request.
    pub fn body(&self, q: &HistoryQuery) -> Value {
        let mut body = json!({
            "synced_from": q.synced_from,
            "synced_to": q.synced_to,
            "call_types": ["Incoming", "Outgoing", "Missed", "Rejected"],
            "emp_numbers": q.emp_numbers,
            "page_no": q.page_no,
            "page_size": q.page_size,
        });
        if let Some(o) = body.as_object_mut() {
            if let Some(m) = &self.options.call_method {
                o.insert("call_method".into(), json!(m));
            }
            if let Some(m) = &self.options.call_mode {
                o.insert("call_mode".into(), json!(m));
            }
            if let Some(x) = self.options.exclude_numbers {
                o.insert("is_exclude_numbers".into(), json!(x));
            }
        }
        body
    }

    /// Fetches one page and classifies the answer. Never fails: every way a
    /// request can go wrong is a [`PageOutcome`].
    pub async fn history_page(&self, q: &HistoryQuery) -> PageOutcome {
        let sent = self
            .http
            .post(self.history_url.clone())
            .bearer_auth(self.token.expose())
            .header("Accept", "application/json")
            .json(&self.body(q))
            .send()
            .await;
        crate::metrics::record_response("callyzer", &sent);
        let response = match sent {
            Ok(r) => r,
            Err(e) if e.is_timeout() => return PageOutcome::Transient(format!("timeout: {e}")),
            Err(e) => return PageOutcome::Transient(format!("request failed: {e}")),
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, chrono::Utc::now()));
        let text = match response.text().await {
            Ok(t) => t,
            Err(e) if e.is_timeout() => {
                return PageOutcome::Transient(format!("timeout reading the answer: {e}"))
            }
            Err(e) => return PageOutcome::Transient(format!("reading the answer failed: {e}")),
        };
        classify(status, retry_after, &text)
    }
}

/// Classifies an answer (status, parsed `Retry-After`, body).
pub fn classify(status: u16, retry_after: Option<Duration>, text: &str) -> PageOutcome {
    let message = || api_message(text).unwrap_or_else(|| snippet(text));
    match status {
        200..=299 => {}
        429 => return PageOutcome::RateLimited { retry_after },
        401 | 403 => return PageOutcome::Unauthorized(format!("HTTP {status}: {}", message())),
        408 | 500..=599 => return PageOutcome::Transient(format!("HTTP {status}: {}", message())),
        _ => return PageOutcome::Rejected(format!("HTTP {status}: {}", message())),
    }
    let mut body: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        // a cut-off or garbled answer: a proxy or a dropped connection, worth another try
        Err(e) => {
            return PageOutcome::Transient(format!("HTTP {status} with an unreadable body: {e}"))
        }
    };
    match body.get("message") {
        None | Some(Value::Null) => {}
        Some(Value::String(m)) if m.trim().eq_ignore_ascii_case("success") => {}
        Some(other) => {
            let m = other
                .as_str()
                .map_or_else(|| other.to_string(), str::to_string);
            return PageOutcome::Rejected(format!("HTTP {status}, message {m:?}"));
        }
    }
    let total_records = body.get("total_records").and_then(|t| match t {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    });
    // the rows are moved out, not copied: a page is 100 of them
    match body.get_mut("result") {
        Some(Value::Array(rows)) => PageOutcome::Page {
            rows: std::mem::take(rows),
            total_records,
        },
        // some APIs send null for "nothing": an empty page
        Some(Value::Null) if total_records.unwrap_or(0) == 0 => PageOutcome::Page {
            rows: Vec::new(),
            total_records,
        },
        _ => PageOutcome::Rejected(format!(
            "HTTP {status}: malformed page, `result` is not an array"
        )),
    }
}

/// The API's own `message` (errors carry one), if the body is JSON with it.
fn api_message(text: &str) -> Option<String> {
    let v: Value = serde_json::from_str(text).ok()?;
    match v.get("message")? {
        Value::String(s) => Some(s.chars().take(300).collect()),
        other => Some(other.to_string().chars().take(300).collect()),
    }
}

fn snippet(text: &str) -> String {
    let t: String = text.trim().chars().take(200).collect();
    if t.is_empty() {
        "(empty body)".into()
    } else {
        t
    }
}

/// `Retry-After`: whole seconds (a value above 600 is read as milliseconds:
/// the unit is unverified), fractional seconds, or an HTTP date.
pub fn parse_retry_after(value: &str, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    let v = value.trim();
    if let Ok(n) = v.parse::<u64>() {
        return Some(if n > 600 {
            Duration::from_millis(n)
        } else {
            Duration::from_secs(n)
        });
    }
    if let Ok(f) = v.parse::<f64>() {
        return (f.is_finite() && f >= 0.0).then(|| Duration::from_secs_f64(f.min(600.0)));
    }
    let at = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let wait = at.with_timezone(&chrono::Utc) - now;
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_success_page_gives_rows_and_total() {
        let out = classify(
            200,
            None,
            r#"{"message":"Success","total_records":250,"result":[{"id":"a"},{"id":"b"}]}"#,
        );
        assert_eq!(
            out,
            PageOutcome::Page {
                rows: vec![json!({"id":"a"}), json!({"id":"b"})],
                total_records: Some(250)
            }
        );
    }

    #[test]
    fn statuses_are_classified() {
        assert!(matches!(
            classify(429, Some(Duration::from_secs(4)), ""),
            PageOutcome::RateLimited { retry_after: Some(d) } if d == Duration::from_secs(4)
        ));
        assert!(matches!(
            classify(401, None, r#"{"message":"Invalid token"}"#),
            PageOutcome::Unauthorized(m) if m.contains("Invalid token")
        ));
        assert!(matches!(
            classify(403, None, "forbidden"),
            PageOutcome::Unauthorized(_)
        ));
        assert!(matches!(
            classify(400, None, r#"{"message":"synced_to is required"}"#),
            PageOutcome::Rejected(m) if m.contains("synced_to is required")
        ));
        assert!(matches!(
            classify(503, None, "<html>"),
            PageOutcome::Transient(_)
        ));
        assert!(matches!(classify(408, None, ""), PageOutcome::Transient(_)));
    }

    #[test]
    fn a_200_with_another_message_is_rejected() {
        assert!(matches!(
            classify(200, None, r#"{"message":"Date range exceeds 180 days","result":[]}"#),
            PageOutcome::Rejected(m) if m.contains("180 days")
        ));
    }

    #[test]
    fn a_malformed_page_is_rejected_and_a_cut_off_one_is_transient() {
        assert!(matches!(
            classify(200, None, r#"{"message":"Success","result":{"id":"a"}}"#),
            PageOutcome::Rejected(_)
        ));
        assert!(matches!(
            classify(200, None, r#"{"message":"Success","result":[{"id""#),
            PageOutcome::Transient(_)
        ));
    }

    #[test]
    fn retry_after_in_seconds_milliseconds_and_dates() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        assert_eq!(parse_retry_after("3", now), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_retry_after("2500", now),
            Some(Duration::from_millis(2500))
        );
        assert_eq!(
            parse_retry_after("1.5", now),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            parse_retry_after("Thu, 01 Jan 2026 00:00:07 GMT", now),
            Some(Duration::from_secs(7))
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn the_body_has_the_window_numbers_and_page() {
        let c = CallyzerClient::new(
            &Url::parse("https://api1.callyzer.co/api/v2.2").unwrap(),
            Secret::new("t".into()),
            Duration::from_secs(1),
            RequestOptions {
                call_method: Some("PhoneCall".into()),
                call_mode: Some("Voice".into()),
                exclude_numbers: None,
            },
        )
        .unwrap();
        assert_eq!(
            c.history_url.as_str(),
            "https://api1.callyzer.co/api/v2.2/call-log/history"
        );
        let b = c.body(&HistoryQuery {
            synced_from: 1,
            synced_to: 2,
            emp_numbers: vec!["48-600100200".into()],
            page_no: 3,
            page_size: 100,
        });
        assert_eq!(b["emp_numbers"][0], "48-600100200");
        assert_eq!(b["page_no"], 3);
        assert_eq!(b["call_method"], "PhoneCall");
        assert!(b.get("is_exclude_numbers").is_none());
    }
}
