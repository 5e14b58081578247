use std::collections::BTreeMap;

use agents_core::ConfigError;
use serde::{Deserialize, Serialize};

/// Settings of one OpenAI-compatible endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct OpenAiConfig {
    /// The provider's id in logs, metrics, events and fallback reports.
    pub id: String,
    /// Base URL up to and including `/v1`, e.g. `http://127.0.0.1:8080/v1`.
    pub base_url: String,
    /// The model to ask for when a request names none.
    pub model: String,
    /// A secret reference for the API key, e.g. `env:OPENAI_API_KEY`; local servers need none.
    /// Resolved by the caller (the server, through agents-secrets); [`OpenAiProvider::from_config`](super::OpenAiProvider::from_config)
    /// resolves `env:` references itself.
    #[serde(default)]
    pub api_key: Option<String>,
    /// Extra request headers (not secrets: they are logged on errors).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// How to ask for JSON when an agent wants it.
    #[serde(default)]
    pub json_mode: JsonMode,
    /// Use a streamed (SSE) upstream call even for non-streaming requests, so a model that
    /// stalls mid-answer is caught by `stream_idle_timeout_ms` instead of the whole request
    /// timeout.
    #[serde(default)]
    pub stream_upstream: bool,
    /// Time to establish a connection.
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// Longest wait for the next piece of a streamed answer: a model that stalls mid-answer is
    /// cut off after this, not after the whole request's deadline.
    #[serde(default = "default_stream_idle_timeout_ms")]
    pub stream_idle_timeout_ms: u64,
    /// Largest response body or SSE event accepted.
    #[serde(default = "default_max_response_bytes")]
    pub max_response_bytes: usize,
}

fn default_connect_timeout_ms() -> u64 {
    5_000
}

fn default_stream_idle_timeout_ms() -> u64 {
    30_000
}

fn default_max_response_bytes() -> usize {
    8 * 1024 * 1024
}

/// How JSON output is requested from the server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum JsonMode {
    /// `response_format: {"type": "json_object"}`: understood by most servers.
    #[default]
    JsonObject,
    /// `response_format: {"type": "json_schema", ...}` with the agent's schema, for servers with
    /// constrained decoding (vLLM, llama.cpp, OpenAI).
    JsonSchema,
    /// Send no `response_format` (the prompt asks for JSON anyway).
    Off,
}

impl OpenAiConfig {
    /// An endpoint with default settings.
    pub fn new(
        id: impl Into<String>,
        base_url: impl Into<String>,
        model: impl Into<String>,
    ) -> Self {
        Self {
            id: id.into(),
            base_url: base_url.into(),
            model: model.into(),
            api_key: None,
            headers: BTreeMap::new(),
            json_mode: JsonMode::default(),
            stream_upstream: false,
            connect_timeout_ms: default_connect_timeout_ms(),
            stream_idle_timeout_ms: default_stream_idle_timeout_ms(),
            max_response_bytes: default_max_response_bytes(),
        }
    }

    /// Sets the API key reference.
    pub fn with_api_key(mut self, reference: impl Into<String>) -> Self {
        self.api_key = Some(reference.into());
        self
    }

    /// Adds a header.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.insert(name.into(), value.into());
        self
    }

    /// Sets the JSON mode.
    pub fn with_json_mode(mut self, mode: JsonMode) -> Self {
        self.json_mode = mode;
        self
    }

    /// Sets the stream idle timeout.
    pub fn with_stream_idle_timeout_ms(mut self, ms: u64) -> Self {
        self.stream_idle_timeout_ms = ms;
        self
    }

    /// Streams upstream calls.
    pub fn with_stream_upstream(mut self, stream: bool) -> Self {
        self.stream_upstream = stream;
        self
    }

    /// Checks the id, URL, model, headers and sizes.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.id.trim().is_empty() {
            return Err(ConfigError::new("id", "must not be empty"));
        }
        let url = reqwest::Url::parse(&self.base_url).map_err(|e| {
            ConfigError::new(
                "base_url",
                format!("is not a URL ({e}); e.g. http://127.0.0.1:8080/v1"),
            )
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(ConfigError::new("base_url", "must be http:// or https://"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            // `/chat/completions` is appended to the text: after a `?` or `#` it would land in
            // the query or the fragment, and every call would go to the wrong path.
            return Err(ConfigError::new(
                "base_url",
                "must not have a query (?) or fragment (#); give the API's base path, e.g. http://127.0.0.1:8080/v1",
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(ConfigError::new(
                "base_url",
                "must not carry credentials; use api_key",
            ));
        }
        if self.model.trim().is_empty() {
            return Err(ConfigError::new("model", "must not be empty"));
        }
        for name in self.headers.keys() {
            let lower = name.to_ascii_lowercase();
            if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
                return Err(ConfigError::new(
                    format!("headers.{name}"),
                    "is not a valid header name",
                ));
            }
            if lower == "authorization" || lower.contains("key") || lower.contains("token") {
                return Err(ConfigError::new(
                    format!("headers.{name}"),
                    "looks like a credential; put it in api_key (a secret reference), not in plain headers",
                ));
            }
        }
        for (field, value) in [
            ("connect_timeout_ms", self.connect_timeout_ms),
            ("stream_idle_timeout_ms", self.stream_idle_timeout_ms),
        ] {
            if value == 0 || value > 86_400_000 {
                return Err(ConfigError::new(
                    field,
                    "must be between 1 and 86400000 (a day)",
                ));
            }
        }
        if self.max_response_bytes < 1024 {
            return Err(ConfigError::new(
                "max_response_bytes",
                "must be at least 1024",
            ));
        }
        Ok(())
    }
}
