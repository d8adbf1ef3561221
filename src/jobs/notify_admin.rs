//! `notify_admin`: sends one admin message (an alert opened, reminded or
//! resolved, or a daily report) to every configured channel, and records each
//! attempt per channel in `callsync.notification_delivery`. A retry skips the
//! channels that already took the message (no duplicates) or refused it for
//! good; the job is retryable while any channel failed in a way worth
//! retrying, and the queue bounds the attempts (`queue.max_attempts`). The
//! kind runs at most two at a time (`callsync.job_kind`), so a hanging channel
//! never takes the slots that process calls. Not here: deciding when to alert
//! (SQL: `callsync.run_monitor`) and the wording (`notify_message`).
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `NOTIFY_SLACK_WEBHOOK_URL` | Slack-compatible incoming webhook URL (secret: the path is the credential) | unset: no Slack |
//! | `NOTIFY_TELEGRAM_BOT_TOKEN` | bot token from @BotFather (secret) | unset: no Telegram |
//! | `NOTIFY_TELEGRAM_CHAT_ID` | chat, group (`-100…`) or `@channel` to post to | required with the token |
//! | `NOTIFY_TELEGRAM_API_URL` | Bot API base | `https://api.telegram.org` |
//! | `NOTIFY_TIMEOUT_SECS` | per request, seconds | 10 |
//! | `NOTIFY_DASHBOARD_URL` | base put in front of the PostgREST paths in messages, e.g. `https://<ref>.supabase.co/rest/v1` | unset: paths only |
use super::notify_message::{alert_message, report_message, AlertEvent};
use super::{Handler, JobError};
use crate::clients::notify::{Channel, Outcome};
use crate::queue::ClaimedJob;
use crate::secret::Secret;
use deadpool_postgres::Pool;
use futures_util::future::BoxFuture;
use std::time::Duration;
use url::Url;

/// The kind name, enqueued by `callsync.raise_alert`, `callsync.resolve_alert`,
/// `callsync.run_monitor` (reminders) and `callsync.run_daily_report_if_due`.
pub const KIND: &str = "notify_admin";

const ALERT_LOAD: &str = include_str!("../../sql/queries/alert_load.sql");
const REPORT_LOAD: &str = include_str!("../../sql/queries/daily_report_load.sql");
const DONE: &str = include_str!("../../sql/queries/notification_delivery_done.sql");
const RECORD: &str = include_str!("../../sql/queries/notification_delivery_record.sql");

/// The Telegram side.
#[derive(Debug, Clone)]
pub struct TelegramSettings {
    /// `NOTIFY_TELEGRAM_API_URL`.
    pub api_url: Url,
    /// `NOTIFY_TELEGRAM_BOT_TOKEN`.
    pub bot_token: Secret<String>,
    /// `NOTIFY_TELEGRAM_CHAT_ID`.
    pub chat_id: String,
}

/// Everything the notifications read from the environment.
#[derive(Debug, Clone)]
pub struct NotifySettings {
    /// `NOTIFY_SLACK_WEBHOOK_URL`.
    pub slack_webhook_url: Option<Secret<Url>>,
    /// `NOTIFY_TELEGRAM_*`.
    pub telegram: Option<TelegramSettings>,
    /// `NOTIFY_TIMEOUT_SECS`.
    pub timeout: Duration,
    /// `NOTIFY_DASHBOARD_URL`.
    pub dashboard_url: Option<String>,
}

impl Default for NotifySettings {
    fn default() -> Self {
        NotifySettings {
            slack_webhook_url: None,
            telegram: None,
            timeout: Duration::from_secs(10),
            dashboard_url: None,
        }
    }
}

impl NotifySettings {
    /// Reads variables through `get`.
    ///
    /// # Errors
    /// Every problem, one line each (never the secret values).
    pub fn from_lookup(get: &impl Fn(&str) -> Option<String>) -> Result<Self, Vec<String>> {
        let mut errors = Vec::new();
        let val = |k: &str| {
            get(k)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let http_url =
            |k: &str, raw: &str, errors: &mut Vec<String>, secret: bool| match Url::parse(raw) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Some(u),
                _ if secret => {
                    errors.push(format!("{k}: expected an http(s) URL"));
                    None
                }
                _ => {
                    errors.push(format!("{k}: expected an http(s) URL, got {raw:?}"));
                    None
                }
            };
        let slack_webhook_url = val("NOTIFY_SLACK_WEBHOOK_URL")
            .and_then(|raw| http_url("NOTIFY_SLACK_WEBHOOK_URL", &raw, &mut errors, true))
            .map(Secret::new);
        let api_url =
            val("NOTIFY_TELEGRAM_API_URL").unwrap_or_else(|| "https://api.telegram.org".into());
        let api_url = http_url("NOTIFY_TELEGRAM_API_URL", &api_url, &mut errors, false);
        let telegram = match (
            val("NOTIFY_TELEGRAM_BOT_TOKEN"),
            val("NOTIFY_TELEGRAM_CHAT_ID"),
        ) {
            (Some(token), Some(chat_id)) => api_url.map(|api_url| TelegramSettings {
                api_url,
                bot_token: Secret::new(token),
                chat_id,
            }),
            (Some(_), None) => {
                errors.push(
                    "NOTIFY_TELEGRAM_CHAT_ID: required with NOTIFY_TELEGRAM_BOT_TOKEN".into(),
                );
                None
            }
            (None, Some(_)) => {
                errors.push(
                    "NOTIFY_TELEGRAM_BOT_TOKEN: required with NOTIFY_TELEGRAM_CHAT_ID".into(),
                );
                None
            }
            (None, None) => None,
        };
        let timeout = match val("NOTIFY_TIMEOUT_SECS").map(|raw| (raw.parse::<u64>(), raw)) {
            None => Duration::from_secs(10),
            Some((Ok(n), _)) if n > 0 => Duration::from_secs(n),
            Some((_, raw)) => {
                errors.push(format!(
                    "NOTIFY_TIMEOUT_SECS: expected a positive whole number, got {raw:?}"
                ));
                Duration::from_secs(10)
            }
        };
        let dashboard_url = val("NOTIFY_DASHBOARD_URL");
        if let Some(raw) = &dashboard_url {
            http_url("NOTIFY_DASHBOARD_URL", raw, &mut errors, false);
        }
        if errors.is_empty() {
            Ok(NotifySettings {
                slack_webhook_url,
                telegram,
                timeout,
                dashboard_url,
            })
        } else {
            Err(errors)
        }
    }

    /// The configured channels. A channel whose HTTP client cannot be built is
    /// left out and logged (TLS set-up failing is not worth stopping the worker).
    pub fn channels(&self) -> Vec<Channel> {
        let mut channels = Vec::new();
        if let Some(url) = &self.slack_webhook_url {
            match Channel::slack(url.clone(), self.timeout) {
                Ok(c) => channels.push(c),
                Err(e) => tracing::error!(error = %e.without_url(), "slack channel unusable"),
            }
        }
        if let Some(t) = &self.telegram {
            match Channel::telegram(
                t.api_url.clone(),
                t.bot_token.clone(),
                t.chat_id.clone(),
                self.timeout,
            ) {
                Ok(c) => channels.push(c),
                Err(e) => tracing::error!(error = %e.without_url(), "telegram channel unusable"),
            }
        }
        channels
    }
}

/// The handler.
pub struct NotifyAdmin {
    pool: Pool,
    channels: Vec<Channel>,
    dashboard_url: Option<String>,
}

impl NotifyAdmin {
    /// A handler on `pool` sending to the channels `settings` configure.
    pub fn new(pool: Pool, settings: &NotifySettings) -> Self {
        let channels = settings.channels();
        if channels.is_empty() {
            tracing::warn!("no admin notification channel configured (NOTIFY_SLACK_WEBHOOK_URL, NOTIFY_TELEGRAM_*): alerts are recorded but not sent");
        }
        NotifyAdmin {
            pool,
            channels,
            dashboard_url: settings.dashboard_url.clone(),
        }
    }
}

/// What one job is about.
enum Subject {
    Alert { id: i64, event: AlertEvent },
    Report { day: chrono::NaiveDate },
}

fn subject(args: &serde_json::Value) -> Result<Subject, JobError> {
    let event = args.get("event").and_then(serde_json::Value::as_str);
    if let Some(id) = args.get("alert_id").and_then(serde_json::Value::as_i64) {
        let event = event
            .and_then(AlertEvent::parse)
            .ok_or_else(|| JobError::Permanent(format!("unknown alert event {event:?}")))?;
        return Ok(Subject::Alert { id, event });
    }
    if let Some(day) = args.get("report_day").and_then(serde_json::Value::as_str) {
        let day = chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d")
            .map_err(|_| JobError::Permanent(format!("report_day {day:?} is not a date")))?;
        return Ok(Subject::Report { day });
    }
    Err(JobError::Permanent(
        "args have neither alert_id nor report_day".into(),
    ))
}

impl Handler for NotifyAdmin {
    fn run<'a>(&'a self, job: &'a ClaimedJob) -> BoxFuture<'a, Result<(), JobError>> {
        Box::pin(async move {
            let subject = subject(&job.args)?;
            let client = self.pool.get().await.map_err(JobError::retryable)?;
            let dashboard = self.dashboard_url.as_deref();
            let (text, alert_id, report_day, event) = match &subject {
                Subject::Alert { id, event } => {
                    let stmt = client
                        .prepare_cached(ALERT_LOAD)
                        .await
                        .map_err(JobError::retryable)?;
                    let row = client
                        .query_one(&stmt, &[id])
                        .await
                        .map_err(JobError::retryable)?;
                    let alert: Option<serde_json::Value> =
                        row.try_get(0).map_err(JobError::retryable)?;
                    let alert = alert
                        .ok_or_else(|| JobError::Permanent(format!("alert {id} does not exist")))?;
                    let name = match event {
                        AlertEvent::Opened => "opened",
                        AlertEvent::Reminder => "reminder",
                        AlertEvent::Resolved => "resolved",
                    };
                    (
                        alert_message(&alert, *event, dashboard),
                        Some(*id),
                        None,
                        name,
                    )
                }
                Subject::Report { day } => {
                    let stmt = client
                        .prepare_cached(REPORT_LOAD)
                        .await
                        .map_err(JobError::retryable)?;
                    let row = client
                        .query_one(&stmt, &[day])
                        .await
                        .map_err(JobError::retryable)?;
                    let report: Option<serde_json::Value> =
                        row.try_get(0).map_err(JobError::retryable)?;
                    let report = report
                        .ok_or_else(|| JobError::Permanent(format!("no daily report for {day}")))?;
                    (
                        report_message(&report, dashboard),
                        None,
                        Some(*day),
                        "daily_report",
                    )
                }
            };

            let record = client
                .prepare_cached(RECORD)
                .await
                .map_err(JobError::retryable)?;
            if self.channels.is_empty() {
                client
                    .execute(
                        &record,
                        &[
                            &job.id.0,
                            &job.attempt,
                            &alert_id,
                            &report_day,
                            &event,
                            &"none",
                            &"skipped",
                            &None::<i32>,
                            &None::<String>,
                            &None::<i32>,
                        ],
                    )
                    .await
                    .map_err(JobError::retryable)?;
                return Ok(());
            }

            let done_stmt = client
                .prepare_cached(DONE)
                .await
                .map_err(JobError::retryable)?;
            let done: Vec<String> = client
                .query_one(&done_stmt, &[&job.id.0])
                .await
                .and_then(|r| r.try_get(0))
                .map_err(JobError::retryable)?;
            let pending: Vec<&Channel> = self
                .channels
                .iter()
                .filter(|c| !done.iter().any(|d| d == c.name().as_str()))
                .collect();
            // all channels at once, each recorded as soon as it answers: a slow
            // channel neither delays the other nor keeps its result unrecorded
            let client = &client;
            let record = &record;
            let text = &text;
            let results = futures_util::future::join_all(pending.iter().map(|channel| async move {
                let d = channel.send(text).await;
                let name = channel.name().as_str();
                let (status, error) = match &d.outcome {
                    Outcome::Sent => ("sent", None),
                    Outcome::Failed(e) => {
                        tracing::warn!(channel = name, error = %e, "admin notification failed; will retry");
                        ("failed", Some(e.clone()))
                    }
                    Outcome::Refused(e) => {
                        tracing::error!(channel = name, error = %e, "admin notification refused");
                        ("refused", Some(e.clone()))
                    }
                };
                let http_status = d.http_status.map(i32::from);
                let ms = i32::try_from(d.duration.as_millis()).unwrap_or(i32::MAX);
                let recorded = client
                    .execute(
                        record,
                        &[
                            &job.id.0,
                            &job.attempt,
                            &alert_id,
                            &report_day,
                            &event,
                            &name,
                            &status,
                            &http_status,
                            &error,
                            &Some(ms),
                        ],
                    )
                    .await;
                (name, d.outcome, recorded)
            }))
            .await;

            let mut retry = Vec::new();
            let mut refused = Vec::new();
            for (name, outcome, recorded) in results {
                match outcome {
                    Outcome::Sent => {}
                    Outcome::Failed(e) => retry.push(format!("{name}: {e}")),
                    Outcome::Refused(e) => refused.push(format!("{name}: {e}")),
                }
                // an unrecorded success would be sent again by the retry: say so
                recorded.map_err(|e| {
                    JobError::Retryable(format!("{name}: delivery not recorded: {e}"))
                })?;
            }
            if !retry.is_empty() {
                retry.extend(refused);
                return Err(JobError::Retryable(retry.join("; ")));
            }
            if !refused.is_empty() {
                return Err(JobError::Permanent(refused.join("; ")));
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn from(pairs: &[(&str, &str)]) -> Result<NotifySettings, Vec<String>> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        NotifySettings::from_lookup(&|k: &str| map.get(k).cloned())
    }

    #[test]
    fn nothing_configured_means_no_channels_and_no_error() {
        let s = from(&[]).unwrap();
        assert!(s.slack_webhook_url.is_none() && s.telegram.is_none());
        assert_eq!(s.timeout, Duration::from_secs(10));
    }

    #[test]
    fn both_channels_are_read_and_secrets_stay_out_of_debug() {
        let s = from(&[
            (
                "NOTIFY_SLACK_WEBHOOK_URL",
                "https://hooks.slack.com/services/T0/B0/s3cr3tpath",
            ),
            ("NOTIFY_TELEGRAM_BOT_TOKEN", "123:t0ken"),
            ("NOTIFY_TELEGRAM_CHAT_ID", "-100123"),
            ("NOTIFY_TIMEOUT_SECS", "3"),
        ])
        .unwrap();
        assert_eq!(s.channels().len(), 2);
        assert_eq!(s.timeout, Duration::from_secs(3));
        let debug = format!("{s:?}");
        assert!(
            !debug.contains("s3cr3tpath") && !debug.contains("t0ken"),
            "{debug}"
        );
    }

    #[test]
    fn every_problem_is_reported_and_no_secret_is_repeated() {
        let errors = from(&[
            ("NOTIFY_SLACK_WEBHOOK_URL", "not a url s3cr3t"),
            ("NOTIFY_TELEGRAM_BOT_TOKEN", "123:t0ken"),
            ("NOTIFY_TIMEOUT_SECS", "0"),
        ])
        .unwrap_err();
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(!errors.join(" ").contains("s3cr3t"));
    }

    #[test]
    fn args_name_an_alert_event_or_a_report_day() {
        assert!(matches!(
            subject(&serde_json::json!({"alert_id": 3, "event": "resolved"})),
            Ok(Subject::Alert {
                id: 3,
                event: AlertEvent::Resolved
            })
        ));
        assert!(matches!(
            subject(&serde_json::json!({"report_day": "2026-11-19", "event": "daily_report"})),
            Ok(Subject::Report { .. })
        ));
        assert!(subject(&serde_json::json!({"alert_id": 3, "event": "exploded"})).is_err());
        assert!(subject(&serde_json::json!({})).is_err());
    }
}
