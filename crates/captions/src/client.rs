//! A blocking client for OpenAI-compatible chat-completions endpoints (GPT-4o, Qwen-VL behind vLLM,
//! local servers): images inline as base64 data URLs, retries with exponential back-off on 429, 5xx,
//! timeouts and unusable answers.

use crate::error::{ClientError, ExtractError};
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::time::Duration;

/// Endpoint, timeouts and retry policy (its `Debug` output hides the API key).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientConfig {
    /// Base URL up to and including `/v1` (e.g. `http://127.0.0.1:8000/v1`).
    pub base_url: String,
    /// Bearer token, if the endpoint needs one.
    #[serde(default, skip_serializing)]
    pub api_key: Option<String>,
    /// Whole-request timeout.
    pub timeout: Duration,
    /// Attempts per request, first one included (at least 1).
    pub max_attempts: u32,
    /// Wait before the first retry; doubled at each further retry.
    pub backoff_initial: Duration,
    /// Longest wait between retries (also caps a server's `Retry-After`).
    pub backoff_max: Duration,
    /// Sampling temperature (0 for reproducible attributes).
    pub temperature: f32,
    /// Answer length limit.
    pub max_tokens: u32,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            base_url: "http://127.0.0.1:8000/v1".to_string(),
            api_key: None,
            timeout: Duration::from_secs(120),
            max_attempts: 5,
            backoff_initial: Duration::from_secs(2),
            backoff_max: Duration::from_secs(60),
            temperature: 0.0,
            max_tokens: 1024,
        }
    }
}

impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConfig")
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<hidden>"))
            .field("timeout", &self.timeout)
            .field("max_attempts", &self.max_attempts)
            .field("backoff_initial", &self.backoff_initial)
            .field("backoff_max", &self.backoff_max)
            .field("temperature", &self.temperature)
            .field("max_tokens", &self.max_tokens)
            .finish()
    }
}

/// An image to send inline.
#[derive(Debug, Clone, Copy)]
pub struct InlineImage<'a> {
    /// Encoded file bytes (JPEG, PNG, ...).
    pub bytes: &'a [u8],
    /// MIME type (`image/jpeg`).
    pub mime: &'a str,
}

impl<'a> InlineImage<'a> {
    /// An image whose MIME type is guessed from a file name's extension (JPEG when unknown).
    pub fn from_file_bytes(file_name: &str, bytes: &'a [u8]) -> Self {
        let lower = file_name.to_ascii_lowercase();
        let mime = if lower.ends_with(".png") {
            "image/png"
        } else if lower.ends_with(".bmp") {
            "image/bmp"
        } else if lower.ends_with(".webp") {
            "image/webp"
        } else {
            "image/jpeg"
        };
        Self { bytes, mime }
    }

    /// The `data:` URL of the image.
    pub fn data_url(&self) -> String {
        format!(
            "data:{};base64,{}",
            self.mime,
            base64::engine::general_purpose::STANDARD.encode(self.bytes)
        )
    }
}

/// A chat-completions client shared by worker threads.
#[derive(Debug, Clone)]
pub struct ChatClient {
    agent: ureq::Agent,
    config: ClientConfig,
}

impl ChatClient {
    /// A client for the configured endpoint.
    pub fn new(config: ClientConfig) -> Self {
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(config.timeout.min(Duration::from_secs(30)))
            .timeout(config.timeout)
            .build();
        Self { agent, config }
    }

    /// The configuration in use.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// The chat-completions URL.
    pub fn url(&self) -> String {
        format!(
            "{}/chat/completions",
            self.config.base_url.trim_end_matches('/')
        )
    }

    /// One request, no retries: the text of the first choice's message.
    pub fn complete_once(
        &self,
        model: &str,
        prompt: &str,
        image: Option<InlineImage<'_>>,
    ) -> Result<String, ClientError> {
        let url = self.url();
        let mut content = vec![json!({"type": "text", "text": prompt})];
        if let Some(image) = image {
            content.push(json!({"type": "image_url", "image_url": {"url": image.data_url()}}));
        }
        let body = json!({
            "model": model,
            "messages": [{"role": "user", "content": content}],
            "temperature": self.config.temperature,
            "max_tokens": self.config.max_tokens,
        });
        let mut request = self
            .agent
            .post(&url)
            .set("Content-Type", "application/json");
        if let Some(key) = &self.config.api_key {
            request = request.set("Authorization", &format!("Bearer {key}"));
        }
        let response = match request.send_string(&body.to_string()) {
            Ok(r) => r,
            Err(ureq::Error::Status(status, r)) => {
                let retry_after = r
                    .header("Retry-After")
                    .and_then(|v| v.trim().parse::<u64>().ok());
                let text: String = r
                    .into_string()
                    .unwrap_or_default()
                    .chars()
                    .take(300)
                    .collect();
                let body = match retry_after {
                    Some(s) => format!("{text} (retry after {s}s)"),
                    None => text,
                };
                return Err(ClientError::Status { url, status, body });
            }
            Err(ureq::Error::Transport(t)) => {
                return Err(ClientError::Transport {
                    url,
                    message: t.to_string(),
                });
            }
        };
        let text = response.into_string().map_err(|e| ClientError::Transport {
            url: url.clone(),
            message: e.to_string(),
        })?;
        let value: Value = serde_json::from_str(&text).map_err(|e| ClientError::Protocol {
            url: url.clone(),
            message: format!("not JSON: {e}"),
        })?;
        value["choices"][0]["message"]["content"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| ClientError::Protocol {
                url,
                message: "no choices[0].message.content".to_string(),
            })
    }

    /// Ask until `accept` takes the answer: retryable failures (429, 5xx, timeouts, rejected answers)
    /// are retried with exponential back-off up to `max_attempts`; the last error is returned.
    pub fn complete_validated<T>(
        &self,
        model: &str,
        prompt: &str,
        image: Option<InlineImage<'_>>,
        accept: impl Fn(&str) -> Result<T, ExtractError>,
    ) -> Result<(String, T), ClientError> {
        let attempts = self.config.max_attempts.max(1);
        let mut wait = self.config.backoff_initial;
        let mut attempt = 1;
        loop {
            let result = self.complete_once(model, prompt, image).and_then(|answer| {
                accept(&answer)
                    .map(|v| (answer, v))
                    .map_err(ClientError::from)
            });
            match result {
                Ok(ok) => return Ok(ok),
                Err(e) if attempt < attempts && e.is_retryable() => {
                    std::thread::sleep(retry_wait(&e, wait, self.config.backoff_max));
                    wait = (wait * 2).min(self.config.backoff_max);
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// How long to wait before retrying after `error`: the back-off, or the server's `Retry-After` (capped).
fn retry_wait(error: &ClientError, backoff: Duration, cap: Duration) -> Duration {
    if let ClientError::Status { body, .. } = error {
        if let Some(s) = body
            .rsplit_once("(retry after ")
            .and_then(|(_, r)| r.strip_suffix("s)"))
        {
            if let Ok(secs) = s.parse::<u64>() {
                return Duration::from_secs(secs).min(cap);
            }
        }
    }
    backoff.min(cap)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_hides_the_api_key() {
        let config = ClientConfig {
            api_key: Some("sk-secret".into()),
            ..ClientConfig::default()
        };
        let text = format!("{:?}", ChatClient::new(config));
        assert!(
            !text.contains("sk-secret") && text.contains("<hidden>"),
            "{text}"
        );
    }

    #[test]
    fn data_url_and_mime() {
        let img = InlineImage::from_file_bytes("a.PNG", b"abc");
        assert_eq!(img.data_url(), "data:image/png;base64,YWJj");
        assert_eq!(
            InlineImage::from_file_bytes("a.jpg", b"").mime,
            "image/jpeg"
        );
    }

    #[test]
    fn retry_after_is_honoured_and_capped() {
        let e = |body: &str| ClientError::Status {
            url: String::new(),
            status: 429,
            body: body.to_string(),
        };
        let cap = Duration::from_secs(10);
        assert_eq!(
            retry_wait(
                &e("slow down (retry after 3s)"),
                Duration::from_millis(5),
                cap
            ),
            Duration::from_secs(3)
        );
        assert_eq!(
            retry_wait(&e("x (retry after 300s)"), Duration::from_millis(5), cap),
            cap
        );
        assert_eq!(
            retry_wait(&e("x"), Duration::from_millis(5), cap),
            Duration::from_millis(5)
        );
    }

    #[test]
    fn refused_connection_is_a_retryable_transport_error() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let config = ClientConfig {
            base_url: format!("http://127.0.0.1:{port}/v1"),
            timeout: Duration::from_millis(500),
            max_attempts: 2,
            backoff_initial: Duration::from_millis(1),
            ..ClientConfig::default()
        };
        let err = ChatClient::new(config)
            .complete_once("m", "hi", None)
            .unwrap_err();
        assert!(
            matches!(err, ClientError::Transport { .. }) && err.is_retryable(),
            "{err}"
        );
        assert!(
            err.to_string().contains(&format!("127.0.0.1:{port}")),
            "{err}"
        );
    }
}
