use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use agents_core::{
    ConfigError, GenerateRequest, Generation, GenerationStream, Provider, ProviderError,
    ProviderHealth, Redactor, Role, StreamDelta, Usage,
};
use futures_util::{Stream, StreamExt};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use secrecy::{ExposeSecret, SecretString};

use super::config::OpenAiConfig;
use super::encoded::EncodedMessages;
use super::errors::{from_status, from_stream_error, from_transport};
use super::key::KeySource;
use super::sse::{SseError, SseReader};
use super::wire::{ChatChunk, ChatRequest, ChatResponse, Choice};

/// An OpenAI-compatible chat-completions endpoint as a [`Provider`].
#[derive(Debug)]
pub struct OpenAiProvider {
    config: OpenAiConfig,
    client: reqwest::Client,
    /// Parsed once: a `&str` URL is parsed again on every request (a few thousand
    /// instructions per call in the load benchmark's profile).
    completions_url: reqwest::Url,
    models_url: String,
    /// Static headers, `Authorization` among them (marked sensitive so it is never printed).
    headers: HeaderMap,
    /// The system messages of recent requests, already encoded as JSON strings.
    encoded: EncodedMessages,
    /// Where the key comes from on each request, when it is not fixed in `headers`.
    key_source: Option<Source>,
    /// The last key the source gave, with its header: a key is registered with the redactor and
    /// formatted once, not on every request.
    bearer: Mutex<Option<Bearer>>,
}

impl OpenAiProvider {
    /// Builds the adapter. The API key, when there is one, is registered with the global
    /// redactor so it is masked wherever it might appear.
    pub fn new(config: OpenAiConfig, api_key: Option<SecretString>) -> Result<Self, ConfigError> {
        config.validate()?;
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        for (name, value) in &config.headers {
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                ConfigError::new(format!("headers.{name}"), "is not a valid header name")
            })?;
            let value = HeaderValue::from_str(value).map_err(|_| {
                ConfigError::new(format!("headers.{name}"), "is not a valid header value")
            })?;
            headers.insert(name, value);
        }
        if let Some(key) = api_key {
            let bearer = Bearer::new(key).map_err(|why| ConfigError::new("api_key", why))?;
            headers.insert(AUTHORIZATION, bearer.header);
        }
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_millis(config.connect_timeout_ms))
            .pool_idle_timeout(Duration::from_secs(90))
            .build()
            .map_err(|e| {
                ConfigError::new("", format!("the HTTP client could not be built: {e}"))
            })?;
        let base = config.base_url.trim_end_matches('/');
        let completions_url =
            reqwest::Url::parse(&format!("{base}/chat/completions")).map_err(|e| {
                ConfigError::new(
                    "base_url",
                    format!("is not a URL once /chat/completions is appended ({e})"),
                )
            })?;
        Ok(Self {
            completions_url,
            models_url: format!("{base}/models"),
            config,
            client,
            headers,
            encoded: EncodedMessages::default(),
            key_source: None,
            bearer: Mutex::new(None),
        })
    }

    /// Builds the adapter with a key read from `source` on every request instead of a fixed
    /// one: a key rotated in the secret store reaches the provider without a restart, and at
    /// once when the provider refuses the old one (the source is told, and forgets its copy).
    /// `first` is the key as the caller read it now: it is checked here (long enough to be
    /// masked, a valid header), so that a bad key stops the start rather than every call. Each
    /// new key is registered with the global redactor before it is sent. When the source fails
    /// (its store unreachable), the last key it gave is sent.
    pub fn with_key_source(
        config: OpenAiConfig,
        first: SecretString,
        source: Arc<dyn KeySource>,
    ) -> Result<Self, ConfigError> {
        let mut adapter = Self::new(config, None)?;
        let bearer = Bearer::new(first).map_err(|why| ConfigError::new("api_key", why))?;
        adapter.bearer = Mutex::new(Some(bearer));
        adapter.key_source = Some(Source(source));
        Ok(adapter)
    }

    /// The `Authorization` header for `source`'s current key, or for the last key it gave if it
    /// cannot answer now.
    async fn authorization(&self, source: &dyn KeySource) -> Result<HeaderValue, ProviderError> {
        let key = match source.key().await {
            Ok(key) => key,
            Err(error) => return self.last_header().ok_or(error),
        };
        let mut last = self.bearer.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(known) = last.as_ref()
            && known.key.expose_secret() == key.expose_secret()
        {
            return Ok(known.header.clone());
        }
        let bearer = Bearer::new(key).map_err(|why| ProviderError::Unauthorized {
            status: None,
            message: format!("the API key from the secret store was not sent: {why}"),
        })?;
        let header = bearer.header.clone();
        *last = Some(bearer);
        Ok(header)
    }

    fn last_header(&self) -> Option<HeaderValue> {
        self.bearer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map(|bearer| bearer.header.clone())
    }

    /// The provider refused `sent`: whether to tell the source, which happens once per key (a
    /// key that stays refused must not make every call reload the store and log).
    fn first_refusal_of(&self, sent: &HeaderValue) -> bool {
        let mut last = self.bearer.lock().unwrap_or_else(PoisonError::into_inner);
        match last.as_mut() {
            Some(bearer) if bearer.header == sent && !bearer.refused => {
                bearer.refused = true;
                true
            }
            _ => false,
        }
    }

    /// Builds the adapter, resolving an `env:NAME` API key reference itself. Other references
    /// (`vault:`, `kms:`, `file:`) need the secrets crate: resolve them and call [`new`](Self::new).
    pub fn from_config(config: OpenAiConfig) -> Result<Self, ConfigError> {
        let key = match config.api_key.as_deref() {
            None => None,
            Some(reference) => match reference.strip_prefix("env:") {
                Some(name) => Some(SecretString::from(std::env::var(name).map_err(|_| {
                    ConfigError::new("api_key", format!("environment variable {name} is not set"))
                })?)),
                None => {
                    return Err(ConfigError::new(
                        "api_key",
                        "only env:NAME references are resolved here; resolve others with agents-secrets and call OpenAiProvider::new",
                    ));
                }
            },
        };
        Self::new(config, key)
    }

    /// The configuration.
    pub fn config(&self) -> &OpenAiConfig {
        &self.config
    }

    /// Sends the request; returns the response once its status is a success, with the moment
    /// the request went out (its body already encoded): where the upstream exchange starts.
    async fn send(
        &self,
        request: &GenerateRequest,
        stream: bool,
        started: Instant,
    ) -> Result<(reqwest::Response, Instant), ProviderError> {
        // System messages repeat call after call: they go in already encoded.
        let encoded: Vec<_> = request
            .messages
            .iter()
            .map(|m| match m.role {
                Role::System => self.encoded.get(&m.content),
                _ => None,
            })
            .collect();
        let body = ChatRequest::new(
            request,
            &self.config.model,
            self.config.json_mode,
            stream,
            &encoded,
        );
        // With a key source, a 401/403 makes it forget its key; a different key after that
        // (rotated in the store) is worth one more try, so the rotation costs no failed call.
        let mut auth = match &self.key_source {
            Some(Source(source)) => Some(self.authorization(source.as_ref()).await?),
            None => None,
        };
        let mut tried_a_new_key = false;
        loop {
            let (response, sent) = self
                .exchange(&body, request, auth.clone(), stream, started)
                .await?;
            let status = response.status();
            if status.is_success() {
                return Ok((response, sent));
            }
            let headers = response.headers().clone();
            let error_body = read_prefix(response, MAX_ERROR_BODY_BYTES).await;
            let error = from_status(status, &headers, &error_body);
            if let (true, false, Some(Source(source)), Some(sent)) = (
                matches!(status.as_u16(), 401 | 403),
                tried_a_new_key,
                &self.key_source,
                &auth,
            ) && self.first_refusal_of(sent)
            {
                source.refused();
                // A store that cannot be read now leaves the provider's own answer standing.
                let fresh = self.authorization(source.as_ref()).await.ok();
                if fresh.is_some() && fresh != auth {
                    auth = fresh;
                    tried_a_new_key = true;
                    continue;
                }
            }
            return Err(error);
        }
    }

    /// One HTTP exchange: the request sent, its response's status and headers read.
    async fn exchange(
        &self,
        body: &ChatRequest<'_>,
        request: &GenerateRequest,
        auth: Option<HeaderValue>,
        stream: bool,
        started: Instant,
    ) -> Result<(reqwest::Response, Instant), ProviderError> {
        let mut call = self
            .client
            .post(self.completions_url.clone())
            .headers(self.headers.clone())
            .json(body);
        if let Some(auth) = auth {
            call = call.header(AUTHORIZATION, auth);
        }
        if let Some(trace) = &request.trace {
            call = call.header("traceparent", trace.traceparent());
            if let Some(state) = trace.tracestate() {
                call = call.header("tracestate", state);
            }
        }
        let left = request.remaining();
        if left.is_some_and(|l| l.is_zero()) {
            return Err(ProviderError::Timeout {
                elapsed: started.elapsed(),
            });
        }
        let sent = Instant::now();
        let response = match (left, stream) {
            // A whole answer must arrive by the deadline, body included.
            (Some(left), false) => call.timeout(left).send().await,
            // A stream's body is bounded piece by piece (idle timeout) and by the deadline in
            // `StreamState`; here only the wait for the response headers.
            (Some(left), true) => match tokio::time::timeout(left, call.send()).await {
                Ok(response) => response,
                Err(_) => {
                    return Err(ProviderError::Timeout {
                        elapsed: started.elapsed(),
                    });
                }
            },
            (None, _) => call.send().await,
        }
        .map_err(|e| from_transport(&e, started.elapsed()))?;
        Ok((response, sent))
    }

    async fn generate_whole(&self, request: GenerateRequest) -> Result<Generation, ProviderError> {
        let started = Instant::now();
        let (response, sent) = self.send(&request, false, started).await?;
        let body = read_limited(response, self.config.max_response_bytes, started).await?;
        // The exchange ends with the whole body: parsing it is ours, not the model's.
        let upstream = sent.elapsed();
        let parsed: ChatResponse =
            serde_json::from_slice(&body).map_err(|e| ProviderError::InvalidResponse {
                message: format!(
                    "the body is not a chat completion ({:?} error at line {}, column {})",
                    e.classify(),
                    e.line(),
                    e.column()
                ),
            })?;
        let text = answer_text(parsed.choices.into_iter().next())?;
        let usage = parsed.usage.unwrap_or_default();
        Ok(Generation::new(
            self.config.id.clone(),
            parsed.model.unwrap_or_else(|| self.model_of(&request)),
            text,
        )
        .with_usage(Usage {
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: usage.completion_tokens,
        })
        .with_latency(started.elapsed())
        .with_upstream_latency(upstream))
    }

    fn model_of(&self, request: &GenerateRequest) -> String {
        request
            .model
            .clone()
            .unwrap_or_else(|| self.config.model.clone())
    }

    async fn open_stream(
        &self,
        request: GenerateRequest,
    ) -> Result<GenerationStream, ProviderError> {
        let started = Instant::now();
        // A stream's exchange is interleaved with our parsing of its events: not measured.
        let (response, _sent) = self.send(&request, true, started).await?;
        let state = StreamState {
            bytes: Box::pin(response.bytes_stream()),
            reader: SseReader::new(self.config.max_response_bytes),
            pending: std::collections::VecDeque::new(),
            text: String::new(),
            usage: Usage::default(),
            model: self.model_of(&request),
            provider: self.config.id.clone(),
            started,
            deadline: request.deadline.map(tokio::time::Instant::from_std),
            idle: Duration::from_millis(self.config.stream_idle_timeout_ms),
            finished: false,
            max_bytes: self.config.max_response_bytes,
        };
        Ok(Box::pin(futures_util::stream::unfold(
            state,
            StreamState::next,
        )))
    }
}

/// An API key and its `Authorization` header: a fixed key's, or the last one a
/// [`KeySource`] gave.
#[derive(Debug)]
struct Bearer {
    key: SecretString,
    header: HeaderValue,
    /// Whether the provider has refused it (the source was told).
    refused: bool,
}

impl Bearer {
    /// Registers `key` with the global redactor and builds its header; why not, if it cannot be.
    fn new(key: SecretString) -> Result<Self, String> {
        // Too short to mask means too short to be a real key; refuse rather than leak it.
        Redactor::global()
            .register(key.expose_secret())
            .map_err(|e| format!("refused: {e}"))?;
        let mut header = HeaderValue::from_str(&format!("Bearer {}", key.expose_secret()))
            .map_err(|_| "contains characters a header cannot carry")?;
        // Marked sensitive so it is never printed.
        header.set_sensitive(true);
        Ok(Self {
            key,
            header,
            refused: false,
        })
    }
}

/// A key source, printed as `KeySource(..)` whatever its own `Debug` shows: the adapter's
/// `Debug` must not depend on a foreign type's care with the key.
struct Source(Arc<dyn KeySource>);

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeySource(..)")
    }
}

/// The text of the first choice. A choice the model ended without text, for a reason the same
/// request would meet again (a content filter, the token limit spent on reasoning, a tool
/// call), is `Unsupported`: not retried, and the fallback chain moves on, where an
/// `InvalidResponse` would be tried again (each try a full generation) and count against the
/// provider's breaker, though the provider is up. No choice, or no text after `stop`, stays
/// `InvalidResponse`: a garbled answer may not come twice.
fn answer_text(choice: Option<Choice>) -> Result<String, ProviderError> {
    const REFUSALS: [&str; 4] = ["content_filter", "length", "tool_calls", "function_call"];
    let Some(choice) = choice else {
        return Err(ProviderError::InvalidResponse {
            message: "the answer has no choices[0]".into(),
        });
    };
    match (choice.message.content, choice.finish_reason) {
        (Some(text), _) => Ok(text),
        (None, Some(reason)) if REFUSALS.contains(&reason.as_str()) => {
            Err(ProviderError::Unsupported {
                status: Some(200),
                message: format!(
                    "the model finished with `{reason}` and wrote no text (a content filter, \
                      the token limit spent before any text, or a tool call)"
                ),
            })
        }
        (None, _) => Err(ProviderError::InvalidResponse {
            message: "the answer has no choices[0].message.content".into(),
        }),
    }
}

/// Reads a body, refusing more than `limit` bytes.
async fn read_limited(
    response: reqwest::Response,
    limit: usize,
    started: Instant,
) -> Result<Vec<u8>, ProviderError> {
    let mut body = Vec::new();
    let mut chunks = response.bytes_stream();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|e| from_transport(&e, started.elapsed()))?;
        if body.len() + chunk.len() > limit {
            return Err(ProviderError::InvalidResponse {
                message: format!("the body is larger than {limit} bytes"),
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// How much of an error body is kept: its message and codes come first, and some servers echo
/// the whole prompt after them.
const MAX_ERROR_BODY_BYTES: usize = 16 * 1024;

/// The first `limit` bytes of a body, and what could be read of them if the connection fails.
/// For error bodies: refusing a long one outright (as [`read_limited`] does) would lose the
/// message and the context-window codes that decide whether another provider is tried.
async fn read_prefix(response: reqwest::Response, limit: usize) -> Vec<u8> {
    let mut body = Vec::new();
    let mut chunks = response.bytes_stream();
    while body.len() < limit {
        match chunks.next().await {
            Some(Ok(chunk)) => {
                let room = limit - body.len();
                body.extend_from_slice(chunk.get(..room).unwrap_or(&chunk));
            }
            // The status already says what went wrong; a cut body only shortens the message.
            Some(Err(_)) | None => break,
        }
    }
    body
}

fn sse_error(error: SseError, max_bytes: usize) -> ProviderError {
    let message = match error {
        SseError::TooLarge => format!("a stream event is larger than {max_bytes} bytes"),
        SseError::NotUtf8 => "a stream event is not UTF-8".to_owned(),
    };
    ProviderError::InvalidResponse { message }
}

type ByteStream = std::pin::Pin<Box<dyn Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>;

/// The state of one streamed answer, advanced by [`StreamState::next`].
struct StreamState {
    bytes: ByteStream,
    reader: SseReader,
    pending: std::collections::VecDeque<String>,
    text: String,
    usage: Usage,
    model: String,
    provider: String,
    started: Instant,
    /// The request's deadline: the stream ends with `Timeout` when it passes.
    deadline: Option<tokio::time::Instant>,
    /// The longest wait for the next bytes.
    idle: Duration,
    finished: bool,
    max_bytes: usize,
}

impl StreamState {
    /// The next item of the stream: text pieces, then `Finished` at `[DONE]`, or one error.
    async fn next(mut self) -> Option<(Result<StreamDelta, ProviderError>, Self)> {
        if self.finished {
            return None;
        }
        loop {
            while let Some(data) = self.pending.pop_front() {
                match self.read_event(&data) {
                    Ok(Some(delta)) => return Some((Ok(delta), self)),
                    Ok(None) => continue,
                    Err(error) => return self.fail(error),
                }
            }
            let now = tokio::time::Instant::now();
            let wait_until = self
                .deadline
                .map_or(now + self.idle, |d| d.min(now + self.idle));
            let next = match tokio::time::timeout_at(wait_until, self.bytes.next()).await {
                Ok(next) => next,
                Err(_) => {
                    let elapsed = self.started.elapsed();
                    return self.fail(ProviderError::Timeout { elapsed });
                }
            };
            match next {
                Some(Ok(chunk)) => match self.reader.feed(&chunk) {
                    Ok(events) => self.pending.extend(events),
                    Err(error) => {
                        let error = sse_error(error, self.max_bytes);
                        return self.fail(error);
                    }
                },
                Some(Err(error)) => {
                    let error = from_transport(&error, self.started.elapsed());
                    return self.fail(error);
                }
                None => match self.reader.finish() {
                    // A last event without its blank line (a `[DONE]` at EOF) still counts.
                    Ok(Some(last)) => self.pending.push_back(last),
                    Ok(None) => {
                        let message = "the stream ended before [DONE]".into();
                        return self.fail(ProviderError::InvalidResponse { message });
                    }
                    Err(error) => {
                        let error = sse_error(error, self.max_bytes);
                        return self.fail(error);
                    }
                },
            }
        }
    }

    fn fail(mut self, error: ProviderError) -> Option<(Result<StreamDelta, ProviderError>, Self)> {
        self.finished = true;
        Some((Err(error), self))
    }

    /// One SSE event: a text piece, nothing to report, or the end.
    fn read_event(&mut self, data: &str) -> Result<Option<StreamDelta>, ProviderError> {
        if data.trim() == "[DONE]" {
            self.finished = true;
            let generation = Generation::new(
                self.provider.clone(),
                self.model.clone(),
                std::mem::take(&mut self.text),
            )
            .with_usage(self.usage)
            .with_latency(self.started.elapsed());
            return Ok(Some(StreamDelta::Finished(generation)));
        }
        let chunk: ChatChunk =
            serde_json::from_str(data).map_err(|e| ProviderError::InvalidResponse {
                message: format!(
                    "a stream chunk is not JSON ({:?} error at column {})",
                    e.classify(),
                    e.column()
                ),
            })?;
        if let Some(error) = &chunk.error {
            return Err(from_stream_error(error));
        }
        if let Some(model) = chunk.model {
            self.model = model;
        }
        if let Some(usage) = chunk.usage {
            self.usage = Usage {
                prompt_tokens: usage.prompt_tokens,
                completion_tokens: usage.completion_tokens,
            };
        }
        let piece: String = chunk
            .choices
            .into_iter()
            .filter_map(|c| c.delta.content)
            .collect();
        if piece.is_empty() {
            return Ok(None);
        }
        if self.text.len() + piece.len() > self.max_bytes {
            return Err(ProviderError::InvalidResponse {
                message: format!("the answer is larger than {} bytes", self.max_bytes),
            });
        }
        self.text.push_str(&piece);
        Ok(Some(StreamDelta::Text(piece)))
    }
}

#[async_trait::async_trait]
impl Provider for OpenAiProvider {
    fn id(&self) -> &str {
        &self.config.id
    }

    async fn generate(&self, request: GenerateRequest) -> Result<Generation, ProviderError> {
        if !self.config.stream_upstream {
            return self.generate_whole(request).await;
        }
        let mut stream = self.open_stream(request).await?;
        while let Some(item) = stream.next().await {
            if let StreamDelta::Finished(generation) = item? {
                return Ok(generation);
            }
        }
        Err(ProviderError::InvalidResponse {
            message: "the stream ended before [DONE]".into(),
        })
    }

    async fn generate_stream(
        &self,
        request: GenerateRequest,
    ) -> Result<GenerationStream, ProviderError> {
        self.open_stream(request).await
    }

    /// `GET /models`, bounded to two seconds.
    async fn health(&self) -> ProviderHealth {
        let mut call = self
            .client
            .get(&self.models_url)
            .headers(self.headers.clone())
            .timeout(Duration::from_secs(2));
        if let Some(Source(source)) = &self.key_source
            && let Ok(auth) = self.authorization(source.as_ref()).await
        {
            call = call.header(AUTHORIZATION, auth);
        }
        match call.send().await {
            Ok(response) if response.status().is_success() => ProviderHealth::Healthy,
            Ok(response) => ProviderHealth::Unhealthy {
                reason: format!("GET /models answered {}", response.status()),
            },
            Err(error) => ProviderHealth::Unhealthy {
                reason: from_transport(&error, Duration::ZERO).to_string(),
            },
        }
    }
}
