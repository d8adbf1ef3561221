//! An OpenAI-compatible chat-completions API (OpenAI, Azure-compatible
//! gateways, vLLM, Ollama's `/v1`): one request asking for a JSON object that
//! follows a JSON schema (`response_format.type = "json_schema"`, strict), and
//! the object out of the answer. Owns the HTTP exchange; the prompt, the schema
//! and the validation of the answer belong to the caller.
use crate::secret::Secret;
use serde_json::{json, Value};
use std::time::Duration;
use url::Url;

/// Why no JSON answer came back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LlmError {
    /// Timeout, connection failure, 408, 429, 5xx: another attempt may succeed.
    #[error("LLM unavailable: {0}")]
    Retryable(String),
    /// Bad key, unknown model, refused request, an answer that is not the object asked for.
    #[error("LLM failed: {0}")]
    Permanent(String),
}

/// The client.
#[derive(Debug, Clone)]
pub struct LlmClient {
    http: reqwest::Client,
    endpoint: Url,
    model: String,
    key: Option<Secret<String>>,
}

impl LlmClient {
    /// A client for `base_url` (e.g. `https://api.openai.com/v1`; the request
    /// goes to `<base_url>/chat/completions`), `model`, and an optional API key.
    ///
    /// # Errors
    /// [`LlmError::Permanent`] when the URL cannot take a path or TLS set-up fails.
    pub fn new(
        base_url: &Url,
        model: String,
        key: Option<Secret<String>>,
        timeout: Duration,
    ) -> Result<Self, LlmError> {
        let mut base = base_url.as_str().trim_end_matches('/').to_string();
        base.push_str("/chat/completions");
        let endpoint = Url::parse(&base).map_err(|e| LlmError::Permanent(e.to_string()))?;
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| LlmError::Permanent(e.to_string()))?;
        Ok(LlmClient {
            http,
            endpoint,
            model,
            key,
        })
    }

    /// The model name (recorded with each analysis).
    pub fn model(&self) -> &str {
        &self.model
    }

    /// Asks for an object following `schema` (named `name`) given a system
    /// prompt and the user's message. Returns the parsed object.
    ///
    /// # Errors
    /// [`LlmError`]: retryable for transport trouble, permanent otherwise.
    pub async fn complete_json(
        &self,
        name: &str,
        schema: &Value,
        system: &str,
        user: &str,
    ) -> Result<Value, LlmError> {
        let body = json!({
            "model": self.model,
            "temperature": 0,
            "messages": [
                {"role": "system", "content": system},
                {"role": "user", "content": user},
            ],
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": name, "strict": true, "schema": schema},
            },
        });
        let mut request = self.http.post(self.endpoint.clone()).json(&body);
        if let Some(key) = &self.key {
            request = request.bearer_auth(key.expose());
        }
        let sent = request.send().await;
        crate::metrics::record_response("llm", &sent);
        let response = sent.map_err(|e| {
            LlmError::Retryable(if e.is_timeout() {
                "timeout".to_string()
            } else {
                format!("request failed: {e}")
            })
        })?;
        let status = response.status().as_u16();
        let text = response
            .text()
            .await
            .map_err(|e| LlmError::Retryable(format!("reading the answer: {e}")))?;
        match status {
            200 => {}
            408 | 429 | 500..=599 => return Err(LlmError::Retryable(format!("HTTP {status}"))),
            other => {
                return Err(LlmError::Permanent(format!(
                    "HTTP {other}: {}",
                    text.chars().take(300).collect::<String>()
                )))
            }
        }
        let answer: Value = serde_json::from_str(&text)
            .map_err(|_| LlmError::Permanent("the answer is not JSON".into()))?;
        let message = answer.pointer("/choices/0/message").unwrap_or(&Value::Null);
        if let Some(refusal) = message.get("refusal").and_then(Value::as_str) {
            return Err(LlmError::Permanent(format!("the model refused: {refusal}")));
        }
        let content = message
            .get("content")
            .and_then(Value::as_str)
            .ok_or_else(|| LlmError::Permanent("the answer has no message content".into()))?;
        // some servers wrap JSON in a code fence despite the response format
        let content = content
            .trim()
            .trim_start_matches("```json")
            .trim_start_matches("```")
            .trim_end_matches("```")
            .trim();
        match serde_json::from_str::<Value>(content) {
            Ok(v) if v.is_object() => Ok(v),
            _ => Err(LlmError::Permanent(
                "the message content is not a JSON object".into(),
            )),
        }
    }
}
