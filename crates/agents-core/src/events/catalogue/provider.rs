//! Provider attempts, fallbacks and circuit-breaker transitions.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A request is about to be sent to a provider (`provider.request`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[non_exhaustive]
pub struct ProviderRequest {
    /// Provider name from the configuration, e.g. `openai`.
    pub provider: String,
    /// Model name sent to the provider.
    pub model: String,
    /// Attempt number at this provider, starting at 1.
    pub attempt: u32,
}

/// A provider answered (`provider.success`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[non_exhaustive]
pub struct ProviderSuccess {
    /// Provider name.
    pub provider: String,
    /// Model name.
    pub model: String,
    /// Time from sending to the full answer, in milliseconds.
    pub latency_ms: u64,
    /// Prompt tokens billed.
    pub prompt_tokens: u64,
    /// Completion tokens billed.
    pub completion_tokens: u64,
}

/// One attempt at a provider failed (`provider.failure`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[non_exhaustive]
pub struct ProviderFailure {
    /// Provider name.
    pub provider: String,
    /// Model name.
    pub model: String,
    /// Stable error kind, e.g. `timeout` or `rate_limited`.
    pub error_kind: String,
    /// Redacted human-readable description.
    pub message: String,
    /// True when the same provider may be tried again.
    pub retryable: bool,
    /// Time until the failure, in milliseconds.
    pub latency_ms: u64,
}

/// The chain moved on to the next provider (`provider.fallback`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[non_exhaustive]
pub struct ProviderFallback {
    /// Provider given up on.
    pub from_provider: String,
    /// Provider tried next.
    pub to_provider: String,
    /// Error kind that made the chain give up, e.g. `circuit_open`.
    pub reason_kind: String,
    /// Redacted human-readable description.
    pub message: String,
}

/// A provider's breaker opened and now rejects calls (`provider.circuit_opened`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[non_exhaustive]
pub struct CircuitOpened {
    /// Provider name.
    pub provider: String,
    /// Failures in a row that tripped the breaker.
    pub consecutive_failures: u32,
    /// How long the breaker stays open before a trial call, in milliseconds.
    pub open_for_ms: u64,
}

/// A provider's breaker closed after a successful trial (`provider.circuit_closed`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[non_exhaustive]
pub struct CircuitClosed {
    /// Provider name.
    pub provider: String,
}
