//! Admin notification channels: a Slack-compatible incoming webhook (Slack,
//! Mattermost, Rocket.Chat, Discord's `/slack` endpoint) and the Telegram Bot
//! API `sendMessage`. One plain-text message, one POST, and what the answer
//! means. Owns the HTTP exchange and its classification; what the message says
//! and which channels already got it belong to the `notify_admin` job.
//!
//! | answer | [`Delivery`] | retried |
//! |---|---|---|
//! | 2xx (Telegram: and `"ok": true`) | `Sent` | — |
//! | timeout, connection failure, 408, 429, 5xx | `Failed` | yes |
//! | any other status, Telegram `"ok": false` | `Refused` | no |
//!
//! Both URLs carry a secret (the Slack webhook path, the bot token), so no
//! error text here ever contains a URL.
use crate::secret::Secret;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use url::Url;

/// Which channel a delivery went to (`notification_delivery.channel`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChannelName {
    /// Slack-compatible incoming webhook.
    Slack,
    /// Telegram Bot API.
    Telegram,
}

impl ChannelName {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelName::Slack => "slack",
            ChannelName::Telegram => "telegram",
        }
    }
}

/// How one attempt to one channel ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The channel took the message.
    Sent,
    /// Worth another attempt (timeout, 408, 429, 5xx, connection failure).
    Failed(String),
    /// Another attempt would fail the same way (bad URL, revoked token, unknown chat).
    Refused(String),
}

/// One attempt, for the notification log.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The HTTP status, if an answer came.
    pub http_status: Option<u16>,
    /// Classification.
    pub outcome: Outcome,
    /// Wall time of the request.
    pub duration: Duration,
}

/// One configured channel.
#[derive(Debug, Clone)]
pub struct Channel {
    http: reqwest::Client,
    target: Target,
}

#[derive(Debug, Clone)]
enum Target {
    Slack {
        url: Secret<Url>,
    },
    Telegram {
        api: Url,
        token: Secret<String>,
        chat_id: String,
    },
}

fn http(timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .build()
}

impl Channel {
    /// A Slack-compatible incoming webhook at `url`.
    ///
    /// # Errors
    /// The reqwest builder's error (TLS set-up).
    pub fn slack(url: Secret<Url>, timeout: Duration) -> Result<Self, reqwest::Error> {
        Ok(Channel {
            http: http(timeout)?,
            target: Target::Slack { url },
        })
    }

    /// The Telegram Bot API at `api` (normally `https://api.telegram.org`),
    /// posting as the bot with `token` to `chat_id`.
    ///
    /// # Errors
    /// The reqwest builder's error (TLS set-up).
    pub fn telegram(
        api: Url,
        token: Secret<String>,
        chat_id: String,
        timeout: Duration,
    ) -> Result<Self, reqwest::Error> {
        Ok(Channel {
            http: http(timeout)?,
            target: Target::Telegram {
                api,
                token,
                chat_id,
            },
        })
    }

    /// Which channel this is.
    pub fn name(&self) -> ChannelName {
        match self.target {
            Target::Slack { .. } => ChannelName::Slack,
            Target::Telegram { .. } => ChannelName::Telegram,
        }
    }

    /// Sends `text` once. Never fails: every way it can go wrong is an [`Outcome`].
    pub async fn send(&self, text: &str) -> Delivery {
        let started = Instant::now();
        let request = match &self.target {
            Target::Slack { url } => self
                .http
                .post(url.expose().clone())
                .json(&json!({ "text": text })),
            Target::Telegram {
                api,
                token,
                chat_id,
            } => {
                let endpoint = format!(
                    "{}/bot{}/sendMessage",
                    api.as_str().trim_end_matches('/'),
                    token.expose()
                );
                self.http.post(endpoint).json(&json!({
                    "chat_id": chat_id,
                    "text": text,
                    "disable_web_page_preview": true,
                }))
            }
        };
        let sent = request.send().await;
        crate::metrics::record_response("notify", &sent);
        let response = match sent {
            Ok(r) => r,
            Err(e) => {
                let what = if e.is_timeout() {
                    "timeout"
                } else {
                    "request failed"
                };
                return Delivery {
                    http_status: None,
                    // without_url: the URL holds the secret
                    outcome: Outcome::Failed(format!("{what}: {}", e.without_url())),
                    duration: started.elapsed(),
                };
            }
        };
        let status = response.status().as_u16();
        let body = response.text().await.unwrap_or_default();
        Delivery {
            http_status: Some(status),
            outcome: classify(self.name(), status, &body),
            duration: started.elapsed(),
        }
    }
}

/// What an answer means. Public for the unit tests of each case.
pub fn classify(channel: ChannelName, status: u16, body: &str) -> Outcome {
    let snippet: String = body.chars().take(200).collect();
    match status {
        200..=299 => {
            if channel == ChannelName::Telegram {
                // Telegram answers {"ok": true, "result": …}; anything else is not a delivery
                let ok = serde_json::from_str::<Value>(body)
                    .ok()
                    .and_then(|v| v.get("ok").and_then(Value::as_bool));
                if ok != Some(true) {
                    return Outcome::Refused(format!(
                        "HTTP {status} without \"ok\": true: {snippet}"
                    ));
                }
            }
            Outcome::Sent
        }
        408 | 429 | 500..=599 => Outcome::Failed(format!("HTTP {status}: {snippet}")),
        _ => Outcome::Refused(format!("HTTP {status}: {snippet}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_needs_ok_true_from_telegram_but_only_2xx_from_slack() {
        assert_eq!(classify(ChannelName::Slack, 200, "ok"), Outcome::Sent);
        assert_eq!(
            classify(ChannelName::Telegram, 200, r#"{"ok":true,"result":{}}"#),
            Outcome::Sent
        );
        assert!(matches!(
            classify(ChannelName::Telegram, 200, r#"{"ok":false}"#),
            Outcome::Refused(_)
        ));
    }

    #[test]
    fn timeouts_429_and_5xx_retry_and_other_4xx_do_not() {
        for status in [408, 429, 500, 502, 503] {
            assert!(
                matches!(classify(ChannelName::Slack, status, ""), Outcome::Failed(_)),
                "{status}"
            );
        }
        for status in [400, 401, 403, 404, 410] {
            assert!(
                matches!(
                    classify(ChannelName::Telegram, status, "{}"),
                    Outcome::Refused(_)
                ),
                "{status}"
            );
        }
    }
}
