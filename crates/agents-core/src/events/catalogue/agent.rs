//! One agent execution: started, then completed or failed.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// An agent began executing a request (`agent.started`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[non_exhaustive]
pub struct AgentStarted {
    /// Agent name, e.g. `code-analysis`.
    pub agent_id: String,
    /// Request id; correlates every event of one request.
    pub request_id: String,
    /// Tenant the request was authenticated as, if any.
    pub tenant: Option<String>,
    /// Size of the input JSON, in bytes.
    pub input_bytes: u64,
}

/// An agent returned a result (`agent.completed`), possibly degraded.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[non_exhaustive]
pub struct AgentCompleted {
    /// Agent name.
    pub agent_id: String,
    /// Request id.
    pub request_id: String,
    /// Provider that produced the answer; `None` for an offline answer.
    pub provider: Option<String>,
    /// Number of providers given up on before the answer.
    pub fallbacks: u32,
    /// Prompt tokens billed over all attempts.
    pub prompt_tokens: u64,
    /// Completion tokens billed over all attempts.
    pub completion_tokens: u64,
    /// Wall-clock time of the execution, in milliseconds.
    pub latency_ms: u64,
    /// True when every provider failed and the answer was built offline.
    pub degraded: bool,
}

/// An agent gave up on a request (`agent.failed`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[non_exhaustive]
pub struct AgentFailed {
    /// Agent name.
    pub agent_id: String,
    /// Request id.
    pub request_id: String,
    /// Stable error kind (the error's `kind()`), e.g. `invalid_input`.
    pub error_kind: String,
    /// Redacted human-readable description; never prompt text or secrets.
    pub message: String,
    /// Time until the failure, in milliseconds.
    pub latency_ms: u64,
}
