//! Core types as protocol messages.

use agents_core::{Agent, AgentOutput, ExecutionMetadata};

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

/// The response of a finished run whose output is a JSON tree: for in-process tasks and a
/// queued task's stored result (which is `done`'s serde form, decoded again). Execute and
/// ExecuteStream write their output as text instead ([`response_of_json`]); both share the
/// metadata mapping.
pub(crate) fn response(done: &AgentOutput) -> pb::ExecuteResponse {
    // Straight into a byte buffer: `Display` goes through the formatter for every token.
    // Serializing a `Value` cannot fail (its keys are strings), so the default is never used.
    let output_json = serde_json::to_string(&done.output).unwrap_or_default();
    response_of_json(output_json, &done.metadata)
}

/// The response of a run whose output is already JSON text (`Agent::execute_json`).
pub(crate) fn response_of_json(output_json: String, m: &ExecutionMetadata) -> pb::ExecuteResponse {
    pb::ExecuteResponse {
        output_json,
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
            upstream_latency_us: m.upstream_latency_us,
        }),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use agents_core::AgentOutput;
    use serde_json::json;

    use super::response;

    #[test]
    fn output_json_is_the_compact_json_of_the_output() {
        // Nesting, escapes, non-ASCII text, floats and large integers: the bytes clients got
        // from `Display` before, byte for byte.
        let output = json!({
            "summary": "quote \" backslash \\ newline \n tab \t nul \u{0} é 漢 😀",
            "scores": [1.5, -0.0, 1e300, 12_345_678_901_234_567_u64, -42],
            "nested": {"empty": {}, "list": [], "null": null, "yes": true},
        });
        // Built through serde: both types are `#[non_exhaustive]`.
        let done: AgentOutput = serde_json::from_value(json!({
            "output": output,
            "metadata": {"agent_id": "code-analysis", "request_id": "r", "trace_id": "ab",
                         "provider": "fake", "model": null, "fallbacks": [],
                         "usage": {"prompt_tokens": 1, "completion_tokens": 2},
                         "latency_ms": 1, "provider_latency_ms": 1, "latency_us": 900,
                         "provider_latency_us": 800, "grounded": true, "facts_error": null,
                         "degraded": false, "degraded_reason": null}
        }))
        .unwrap();
        let encoded = response(&done).output_json;
        assert_eq!(encoded, output.to_string());
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&encoded).unwrap(),
            output
        );
    }
}
