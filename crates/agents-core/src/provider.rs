//! The `Provider` contract: one model endpoint (or a chain of them) that turns messages into text.
//!
//! Adapters (OpenAI-compatible HTTP, MCP) and resilience layers (breakers, quotas, fallback
//! chains) all implement this one trait, so they stack: a fallback chain is a `Provider` made of
//! `Provider`s, and an agent never knows which it holds.

use std::fmt;
use std::pin::Pin;
use std::time::{Duration, Instant};

use futures_util::Stream;

use serde::{Deserialize, Serialize};

use crate::error::{ProviderAttempt, ProviderError};
use crate::trace::TraceContext;

/// A model endpoint, or a composition of them.
///
/// Object safe: the runtime holds providers as `Arc<dyn Provider>`.
///
/// ```
/// use agents_core::{GenerateRequest, Generation, Message, Provider, ProviderError, ProviderHealth, Usage};
/// use std::time::Duration;
///
/// /// Answers every request with the same text: handy in examples, useless in production.
/// #[derive(Debug)]
/// struct Canned;
///
/// #[agents_core::async_trait]
/// impl Provider for Canned {
///     fn id(&self) -> &str { "canned" }
///     async fn generate(&self, request: GenerateRequest) -> Result<Generation, ProviderError> {
///         Ok(Generation::new("canned", request.model.as_deref().unwrap_or("none"), "{}"))
///     }
///     async fn health(&self) -> ProviderHealth { ProviderHealth::Healthy }
/// }
///
/// let provider: std::sync::Arc<dyn Provider> = std::sync::Arc::new(Canned);
/// assert_eq!(provider.id(), "canned");
/// ```
#[async_trait::async_trait]
pub trait Provider: Send + Sync + fmt::Debug {
    /// A stable id for logs, metrics, events and fallback reports, e.g. `local-mlx`.
    fn id(&self) -> &str;

    /// Runs one generation. Implementations honour `request.deadline` and return
    /// [`ProviderError::Timeout`] when it passes.
    async fn generate(&self, request: GenerateRequest) -> Result<Generation, ProviderError>;

    /// Runs one generation and returns its text as it is produced: [`StreamDelta::Text`] pieces,
    /// then exactly one [`StreamDelta::Finished`] with the whole generation. An `Err` item ends
    /// the stream.
    ///
    /// The default calls [`generate`](Provider::generate) and yields its text in one piece, so
    /// every provider can be streamed from; adapters that can stream override it.
    async fn generate_stream(
        &self,
        request: GenerateRequest,
    ) -> Result<GenerationStream, ProviderError> {
        let generation = self.generate(request).await?;
        let text = StreamDelta::Text(generation.text.clone());
        Ok(Box::pin(futures_util::stream::iter([
            Ok(text),
            Ok(StreamDelta::Finished(generation)),
        ])))
    }

    /// Whether the provider can take work now, without spending a generation on finding out.
    async fn health(&self) -> ProviderHealth;
}

/// A streamed generation: text pieces, then the finished generation. See
/// [`Provider::generate_stream`].
pub type GenerationStream =
    Pin<Box<dyn Stream<Item = Result<StreamDelta, ProviderError>> + Send + 'static>>;

/// One item of a [`GenerationStream`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum StreamDelta {
    /// The next piece of text.
    Text(String),
    /// The last item: the whole generation (its `text` is every piece joined), with usage.
    Finished(Generation),
}

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Role {
    /// Instructions that frame the conversation.
    System,
    /// The request.
    User,
    /// An earlier model answer (few-shot examples).
    Assistant,
}

/// One chat message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Message {
    /// Who wrote it.
    pub role: Role,
    /// The text.
    pub content: String,
}

impl Message {
    /// A system message.
    pub fn system(content: impl Into<String>) -> Self {
        Self {
            role: Role::System,
            content: content.into(),
        }
    }

    /// A user message.
    pub fn user(content: impl Into<String>) -> Self {
        Self {
            role: Role::User,
            content: content.into(),
        }
    }

    /// An assistant message.
    pub fn assistant(content: impl Into<String>) -> Self {
        Self {
            role: Role::Assistant,
            content: content.into(),
        }
    }
}

/// What shape of answer to ask the model for.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case", tag = "type")]
#[non_exhaustive]
pub enum ResponseFormat {
    /// Free text.
    #[default]
    Text,
    /// Any JSON object (OpenAI `json_object`).
    JsonObject,
    /// A JSON object matching a schema (OpenAI `json_schema`), for servers that support
    /// constrained decoding. Adapters that cannot send it fall back to `JsonObject`: the agent
    /// validates the answer against the schema either way.
    JsonSchema {
        /// A short name for the schema.
        name: String,
        /// The JSON Schema, shared: a request is cloned per retry and per fallback attempt, and
        /// agents send the same schema with every request.
        schema: std::sync::Arc<serde_json::Value>,
    },
}

/// One generation request.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct GenerateRequest {
    /// The conversation, system message first.
    pub messages: Vec<Message>,
    /// The model; `None` lets the provider use its configured default.
    pub model: Option<String>,
    /// Sampling temperature.
    pub temperature: Option<f32>,
    /// Upper bound on completion tokens.
    pub max_tokens: Option<u32>,
    /// Stop sequences.
    pub stop: Vec<String>,
    /// Seed for providers that support reproducible sampling.
    pub seed: Option<u64>,
    /// The shape of answer wanted.
    pub response_format: ResponseFormat,
    /// When the caller stops waiting: the outer bound of every timeout below it.
    pub deadline: Option<Instant>,
    /// The W3C trace context to send with the request.
    pub trace: Option<TraceContext>,
    /// Which attempt at this request this is, set by a retry policy: 1 for the first call, 2
    /// for the first retry. 0 when nothing counts attempts.
    pub attempt: u32,
}

impl GenerateRequest {
    /// A request with these messages and everything else unset.
    pub fn new(messages: Vec<Message>) -> Self {
        Self {
            messages,
            ..Self::default()
        }
    }

    /// Sets the model.
    pub fn with_model(mut self, model: impl Into<String>) -> Self {
        self.model = Some(model.into());
        self
    }

    /// Sets the temperature.
    pub fn with_temperature(mut self, temperature: f32) -> Self {
        self.temperature = Some(temperature);
        self
    }

    /// Sets the completion token limit.
    pub fn with_max_tokens(mut self, max_tokens: u32) -> Self {
        self.max_tokens = Some(max_tokens);
        self
    }

    /// Sets the stop sequences.
    pub fn with_stop(mut self, stop: Vec<String>) -> Self {
        self.stop = stop;
        self
    }

    /// Sets the seed.
    pub fn with_seed(mut self, seed: Option<u64>) -> Self {
        self.seed = seed;
        self
    }

    /// Sets the response format.
    pub fn with_response_format(mut self, format: ResponseFormat) -> Self {
        self.response_format = format;
        self
    }

    /// Sets the deadline.
    pub fn with_deadline(mut self, deadline: Option<Instant>) -> Self {
        self.deadline = deadline;
        self
    }

    /// Sets the trace context.
    pub fn with_trace(mut self, trace: TraceContext) -> Self {
        self.trace = Some(trace);
        self
    }

    /// Time left before the deadline: `None` without one, zero once it has passed.
    pub fn remaining(&self) -> Option<Duration> {
        self.deadline
            .map(|d| d.saturating_duration_since(Instant::now()))
    }
}

/// Token counts of one generation.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
pub struct Usage {
    /// Tokens in the prompt.
    pub prompt_tokens: u64,
    /// Tokens generated.
    pub completion_tokens: u64,
}

impl Usage {
    /// Prompt plus completion tokens.
    pub fn total(&self) -> u64 {
        self.prompt_tokens.saturating_add(self.completion_tokens)
    }
}

impl std::ops::Add for Usage {
    type Output = Self;

    fn add(self, other: Self) -> Self {
        Self {
            prompt_tokens: self.prompt_tokens.saturating_add(other.prompt_tokens),
            completion_tokens: self
                .completion_tokens
                .saturating_add(other.completion_tokens),
        }
    }
}

/// One generation's result.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Generation {
    /// What the model said.
    pub text: String,
    /// Which provider answered (for a chain: the one that succeeded).
    pub provider_id: String,
    /// Which model answered.
    pub model: String,
    /// Token counts.
    pub usage: Usage,
    /// Time spent in the provider, including retries and fallbacks.
    pub latency: Duration,
    /// Of `latency`, the answering attempt's exchange with the model's server. The OpenAI
    /// adapter measures from sending the encoded request to having the whole body, before
    /// parsing it; the MCP provider measures the tool call, whose JSON-RPC encoding and
    /// decoding happen inside rmcp and so count here. `None` from a provider that does not
    /// measure it (and for streams). Everything else in `latency` (policies, encoding the
    /// request, parsing the answer, failed attempts, back-off) is the runtime's own work or
    /// waiting.
    pub upstream_latency: Option<Duration>,
    /// Attempts that failed before this one succeeded (fallbacks and retries), in order.
    pub failed_attempts: Vec<ProviderAttempt>,
}

impl Generation {
    /// A generation with zero usage, zero latency and no failed attempts.
    pub fn new(
        provider_id: impl Into<String>,
        model: impl Into<String>,
        text: impl Into<String>,
    ) -> Self {
        Self {
            text: text.into(),
            provider_id: provider_id.into(),
            model: model.into(),
            usage: Usage::default(),
            latency: Duration::ZERO,
            upstream_latency: None,
            failed_attempts: Vec::new(),
        }
    }

    /// Sets the token counts.
    pub fn with_usage(mut self, usage: Usage) -> Self {
        self.usage = usage;
        self
    }

    /// Sets the latency.
    pub fn with_latency(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }

    /// Sets the answering attempt's exchange time (see
    /// [`upstream_latency`](Self::upstream_latency)).
    pub fn with_upstream_latency(mut self, upstream: Duration) -> Self {
        self.upstream_latency = Some(upstream);
        self
    }

    /// Sets the attempts that failed before this one.
    pub fn with_failed_attempts(mut self, attempts: Vec<ProviderAttempt>) -> Self {
        self.failed_attempts = attempts;
        self
    }
}

/// Whether a provider can take work.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case", tag = "status")]
#[non_exhaustive]
pub enum ProviderHealth {
    /// Ready.
    Healthy,
    /// Serving, but slowed or capped (host guard warning, half-open breaker).
    Degraded {
        /// Why.
        reason: String,
    },
    /// Not serving now.
    Unhealthy {
        /// Why.
        reason: String,
    },
}

impl ProviderHealth {
    /// Whether the provider should be given work (healthy or degraded).
    pub fn is_serving(&self) -> bool {
        !matches!(self, Self::Unhealthy { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builders_set_every_field() {
        let trace = TraceContext::new_root();
        let deadline = Instant::now() + Duration::from_secs(5);
        let request = GenerateRequest::new(vec![
            Message::system("s"),
            Message::user("u"),
            Message::assistant("a"),
        ])
        .with_model("m")
        .with_temperature(0.5)
        .with_max_tokens(10)
        .with_stop(vec!["END".into()])
        .with_seed(Some(3))
        .with_response_format(ResponseFormat::JsonObject)
        .with_deadline(Some(deadline))
        .with_trace(trace.clone());
        assert_eq!(request.messages[1].role, Role::User);
        assert_eq!(request.model.as_deref(), Some("m"));
        assert_eq!(request.temperature, Some(0.5));
        assert_eq!(request.max_tokens, Some(10));
        assert_eq!(request.stop, ["END"]);
        assert_eq!(request.seed, Some(3));
        assert_eq!(request.response_format, ResponseFormat::JsonObject);
        assert_eq!(request.trace, Some(trace));
        assert!(
            request
                .remaining()
                .is_some_and(|left| left <= Duration::from_secs(5))
        );
        assert_eq!(GenerateRequest::default().remaining(), None);
        let passed = GenerateRequest::default().with_deadline(Some(Instant::now()));
        assert_eq!(passed.remaining(), Some(Duration::ZERO));
    }

    #[derive(Debug)]
    struct Echo;

    #[async_trait::async_trait]
    impl Provider for Echo {
        fn id(&self) -> &str {
            "echo"
        }
        async fn generate(&self, request: GenerateRequest) -> Result<Generation, ProviderError> {
            match request.messages.first() {
                Some(message) => Ok(Generation::new("echo", "m", message.content.clone())),
                None => Err(ProviderError::BadRequest {
                    status: None,
                    message: "no messages".into(),
                }),
            }
        }
        async fn health(&self) -> ProviderHealth {
            ProviderHealth::Healthy
        }
    }

    #[test]
    fn the_default_stream_yields_the_text_then_the_generation() {
        use futures_util::StreamExt;
        futures_executor::block_on(async {
            let stream = Echo
                .generate_stream(GenerateRequest::new(vec![Message::user("hi")]))
                .await
                .unwrap();
            let items: Vec<_> = stream.collect().await;
            assert!(matches!(&items[0], Ok(StreamDelta::Text(t)) if t == "hi"));
            assert!(
                matches!(&items[1], Ok(StreamDelta::Finished(g)) if g.text == "hi" && g.provider_id == "echo")
            );
            assert_eq!(items.len(), 2);
            assert!(
                Echo.generate_stream(GenerateRequest::default())
                    .await
                    .is_err()
            );
            assert!(Echo.health().await.is_serving());
        });
    }

    #[test]
    fn usage_adds_without_overflow() {
        let a = Usage {
            prompt_tokens: u64::MAX,
            completion_tokens: 1,
        };
        let sum = a + Usage {
            prompt_tokens: 5,
            completion_tokens: 2,
        };
        assert_eq!(sum.prompt_tokens, u64::MAX);
        assert_eq!(sum.completion_tokens, 3);
        assert_eq!(sum.total(), u64::MAX);
    }

    #[test]
    fn generation_builders_and_health() {
        let generation = Generation::new("p", "m", "t")
            .with_usage(Usage {
                prompt_tokens: 1,
                completion_tokens: 2,
            })
            .with_latency(Duration::from_millis(3))
            .with_upstream_latency(Duration::from_millis(2))
            .with_failed_attempts(vec![ProviderAttempt::new("q", ProviderError::Cancelled)]);
        assert_eq!(generation.usage.total(), 3);
        assert_eq!(generation.latency, Duration::from_millis(3));
        assert_eq!(generation.upstream_latency, Some(Duration::from_millis(2)));
        assert_eq!(Generation::new("p", "m", "t").upstream_latency, None);
        assert_eq!(generation.failed_attempts[0].provider, "q");
        assert!(ProviderHealth::Healthy.is_serving());
        assert!(
            ProviderHealth::Degraded {
                reason: "warm".into()
            }
            .is_serving()
        );
        assert!(
            !ProviderHealth::Unhealthy {
                reason: "down".into()
            }
            .is_serving()
        );
        let json = serde_json::to_value(ResponseFormat::JsonSchema {
            name: "n".into(),
            schema: serde_json::json!({}).into(),
        })
        .unwrap();
        assert_eq!(json["type"], "json_schema");
    }
}
