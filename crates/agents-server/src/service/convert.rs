//! Core types as protocol messages.

use agents_core::{Agent, AgentOutput};

use crate::pb;

pub(super) fn summary(agent: &dyn Agent) -> pb::AgentSummary {
    pb::AgentSummary {
        id: agent.id().to_owned(),
        capability: agent.capability().as_str().to_owned(),
        description: agent.description().to_owned(),
    }
}

pub(super) fn descriptor(agent: &dyn Agent) -> pb::AgentDescriptor {
    pb::AgentDescriptor {
        summary: Some(summary(agent)),
        input_schema_json: agent.input_schema().to_string(),
        output_schema_json: agent.output_schema().to_string(),
    }
}

/// The response of a finished run: for Execute, and for a queued task's stored result (which is
/// `done`'s serde form, decoded again).
pub(crate) fn response(done: &AgentOutput) -> pb::ExecuteResponse {
    let m = &done.metadata;
    pb::ExecuteResponse {
        // Straight into a byte buffer: `Display` goes through the formatter for every token.
        // Serializing a `Value` cannot fail (its keys are strings); the fallback is never taken.
        output_json: serde_json::to_string(&done.output)
            .unwrap_or_else(|_| done.output.to_string()),
        metadata: Some(pb::ExecutionMetadata {
            agent_id: m.agent_id.clone(),
            request_id: m.request_id.clone(),
            trace_id: m.trace_id.clone(),
            provider: m.provider.clone().unwrap_or_default(),
            model: m.model.clone().unwrap_or_default(),
            fallbacks: m.fallbacks.clone(),
            prompt_tokens: m.usage.prompt_tokens,
            completion_tokens: m.usage.completion_tokens,
            latency_ms: m.latency_ms,
            provider_latency_ms: m.provider_latency_ms,
            degraded: m.degraded,
            degraded_reason: m.degraded_reason.clone().unwrap_or_default(),
            latency_us: m.latency_us,
            provider_latency_us: m.provider_latency_us,
        }),
    }
}
