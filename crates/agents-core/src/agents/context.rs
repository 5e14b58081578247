//! What an agent run receives besides its input, and what it returns besides its output.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::events::{EventSink, NullSink};
use crate::provider::{Provider, Usage};
use crate::trace::TraceContext;

/// Everything an agent run needs besides its input: the provider to call, the limits the caller
/// set and where to report what happens.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct AgentContext {
    /// The provider (usually a fallback chain) the agent calls.
    pub provider: Arc<dyn Provider>,
    /// Correlates events, logs and the response; unique per run.
    pub request_id: String,
    /// When the caller stops waiting (from gRPC's `grpc-timeout`); the outer bound of every
    /// wait inside the run.
    pub deadline: Option<Instant>,
    /// Cancelled when the caller goes away or cancels the task; the run stops at once.
    pub cancel: CancellationToken,
    /// The caller's trace; provider calls and events continue it.
    pub trace: TraceContext,
    /// The tenant the request was authenticated as, if any.
    pub tenant: Option<String>,
    /// Where the run's CloudEvents go.
    pub events: Arc<dyn EventSink>,
}

impl AgentContext {
    /// A context with a fresh request id and trace, no deadline, and events discarded.
    pub fn new(provider: Arc<dyn Provider>) -> Self {
        Self {
            provider,
            request_id: uuid::Uuid::new_v4().to_string(),
            deadline: None,
            cancel: CancellationToken::new(),
            trace: TraceContext::new_root(),
            tenant: None,
            events: Arc::new(NullSink),
        }
    }

    /// Sets the request id.
    pub fn with_request_id(mut self, request_id: impl Into<String>) -> Self {
        self.request_id = request_id.into();
        self
    }

    /// Sets the deadline.
    pub fn with_deadline(mut self, deadline: Option<Instant>) -> Self {
        self.deadline = deadline;
        self
    }

    /// Sets a deadline this far from now.
    pub fn with_timeout(self, timeout: Duration) -> Self {
        self.with_deadline(Instant::now().checked_add(timeout))
    }

    /// Sets the cancellation token.
    pub fn with_cancel(mut self, cancel: CancellationToken) -> Self {
        self.cancel = cancel;
        self
    }

    /// Sets the trace context.
    pub fn with_trace(mut self, trace: TraceContext) -> Self {
        self.trace = trace;
        self
    }

    /// Sets the tenant.
    pub fn with_tenant(mut self, tenant: impl Into<String>) -> Self {
        self.tenant = Some(tenant.into());
        self
    }

    /// Sets where events go.
    pub fn with_events(mut self, events: Arc<dyn EventSink>) -> Self {
        self.events = events;
        self
    }

    /// Whether the deadline has passed.
    pub fn deadline_passed(&self) -> bool {
        self.deadline
            .is_some_and(|deadline| Instant::now() >= deadline)
    }
}

/// A finished run: the output document and how it was made. Its serde form is what a queued
/// task's state record stores as the result, and reads back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AgentOutput {
    /// The output, valid against the agent's output schema.
    pub output: serde_json::Value,
    /// How it was made.
    pub metadata: ExecutionMetadata,
}

/// A finished run with the output as compact JSON text: what [`Agent::execute_json`]
/// returns, for a server that writes the output to the wire as it is.
///
/// [`Agent::execute_json`]: super::Agent::execute_json
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct AgentJsonOutput {
    /// The output as JSON text, valid against the agent's output schema.
    pub output_json: String,
    /// How it was made.
    pub metadata: ExecutionMetadata,
}

impl AgentOutput {
    /// An output document and how it was made: what an [`Agent`](super::Agent) written outside
    /// this crate returns from `execute` (the type is `#[non_exhaustive]`, so it cannot be built
    /// field by field there).
    pub fn new(output: serde_json::Value, metadata: ExecutionMetadata) -> Self {
        Self { output, metadata }
    }
}

impl AgentJsonOutput {
    /// An output already serialized, and how it was made.
    pub fn new(output_json: String, metadata: ExecutionMetadata) -> Self {
        Self {
            output_json,
            metadata,
        }
    }
}

/// How an output was made: for the response, metrics and audit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[non_exhaustive]
pub struct ExecutionMetadata {
    /// The agent's id.
    pub agent_id: String,
    /// The run's request id.
    pub request_id: String,
    /// The trace id (32 hex digits).
    pub trace_id: String,
    /// The provider that produced the answer; `None` for a degraded answer.
    pub provider: Option<String>,
    /// The model that produced the answer; `None` for a degraded answer.
    pub model: Option<String>,
    /// Providers that failed before the one that answered, each once, in the order of their first
    /// failure; retries of the provider that answered are not fallbacks. For a degraded answer,
    /// every provider that was tried.
    pub fallbacks: Vec<String>,
    /// Token counts of the successful generation.
    pub usage: Usage,
    /// Wall time of the whole run, in milliseconds.
    pub latency_ms: u64,
    /// Time spent waiting for providers, in milliseconds; `latency_ms - provider_latency_ms` is
    /// what the runtime itself cost.
    pub provider_latency_ms: u64,
    /// `latency_ms` in microseconds.
    pub latency_us: u64,
    /// `provider_latency_ms` in microseconds: the runtime's own cost is well under a
    /// millisecond, too fine for the millisecond fields.
    pub provider_latency_us: u64,
    /// Of `provider_latency_us`, the answering attempt's exchange with the model's server
    /// (request sent to whole response read), in microseconds; 0 when the provider does not
    /// measure it (degraded answers, streams, providers of other crates).
    /// `latency_us - upstream_latency_us` is everything the runtime added, its resilience
    /// policies and the model's wire format included: the figure to compare with another
    /// gateway's own overhead.
    #[serde(default)]
    pub upstream_latency_us: u64,
    /// Whether code facts were computed and grounded the run (prompt, complexity, branches).
    pub grounded: bool,
    /// Why the agent has an analyzer but no facts for this run (unsupported language, parse
    /// over its time budget, ...); the run carried on ungrounded. Redacted.
    pub facts_error: Option<String>,
    /// True when no model answered and the output was built from the code facts alone.
    pub degraded: bool,
    /// Why the output is degraded (which providers failed, and how); `None` unless `degraded`.
    pub degraded_reason: Option<String>,
}

impl ExecutionMetadata {
    /// The metadata of a run of `agent_id` in `ctx`: its request and trace ids, and nothing
    /// measured yet (no provider, no usage, zero latencies, neither grounded nor degraded).
    /// Set the public fields that apply.
    pub fn new(agent_id: impl Into<String>, ctx: &AgentContext) -> Self {
        Self {
            agent_id: agent_id.into(),
            request_id: ctx.request_id.clone(),
            trace_id: ctx.trace.trace_id().to_owned(),
            provider: None,
            model: None,
            fallbacks: Vec::new(),
            usage: Usage::default(),
            latency_ms: 0,
            provider_latency_ms: 0,
            latency_us: 0,
            provider_latency_us: 0,
            upstream_latency_us: 0,
            grounded: false,
            facts_error: None,
            degraded: false,
            degraded_reason: None,
        }
    }

    /// [`upstream_latency_us`](Self::upstream_latency_us) as a duration, `None` when it was not
    /// measured (the field's 0).
    pub fn upstream_latency(&self) -> Option<Duration> {
        (self.upstream_latency_us > 0).then(|| Duration::from_micros(self.upstream_latency_us))
    }
}

pub(crate) fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

pub(crate) fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_read_back_from_their_json_form() {
        let done = AgentOutput {
            output: serde_json::json!({"summary": "ok"}),
            metadata: ExecutionMetadata {
                agent_id: "documentation".into(),
                request_id: "t1".into(),
                trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
                provider: Some("fake".into()),
                model: None,
                fallbacks: vec!["down".into()],
                usage: Usage {
                    prompt_tokens: 3,
                    completion_tokens: 4,
                },
                latency_ms: 9,
                provider_latency_ms: 8,
                latency_us: 9_001,
                provider_latency_us: 8_001,
                upstream_latency_us: 7_001,
                grounded: true,
                facts_error: None,
                degraded: false,
                degraded_reason: None,
            },
        };
        let json = serde_json::to_value(&done).unwrap_or_default();
        assert_eq!(json["metadata"]["usage"]["completion_tokens"], 4);
        let back: Option<AgentOutput> = serde_json::from_value(json).ok();
        assert_eq!(back, Some(done));
    }

    #[test]
    fn metadata_written_before_upstream_latency_still_reads() {
        let json = serde_json::json!({
            "agent_id": "documentation", "request_id": "t1",
            "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "provider": null, "model": null,
            "fallbacks": [], "usage": {"prompt_tokens": 0, "completion_tokens": 0},
            "latency_ms": 1, "provider_latency_ms": 0, "latency_us": 1_000,
            "provider_latency_us": 0, "grounded": false, "facts_error": null,
            "degraded": false, "degraded_reason": null
        });
        let metadata: ExecutionMetadata = serde_json::from_value(json).unwrap_or_else(|e| {
            panic!("an older record must still read: {e}");
        });
        assert_eq!(metadata.upstream_latency_us, 0);
        assert_eq!(metadata.upstream_latency(), None);
    }
}
