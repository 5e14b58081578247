//! Task records as protocol messages, and agent outputs as stored results.

use std::time::{Duration, UNIX_EPOCH};

use agents_bus::{TaskRecord, TaskState};
use agents_core::AgentOutput;
use serde_json::{Value, json};

use crate::pb;

/// The stored form of a result: the output document and how it was made.
pub(super) fn result_json(done: &AgentOutput) -> Value {
    let m = &done.metadata;
    json!({
        "output": done.output,
        "metadata": {
            "agent_id": m.agent_id,
            "request_id": m.request_id,
            "trace_id": m.trace_id,
            "provider": m.provider,
            "model": m.model,
            "fallbacks": m.fallbacks,
            "prompt_tokens": m.usage.prompt_tokens,
            "completion_tokens": m.usage.completion_tokens,
            "latency_ms": m.latency_ms,
            "provider_latency_ms": m.provider_latency_ms,
            "latency_us": m.latency_us,
            "provider_latency_us": m.provider_latency_us,
            "degraded": m.degraded,
            "degraded_reason": m.degraded_reason,
        }
    })
}

fn response(result: &Value) -> pb::ExecuteResponse {
    let m = &result["metadata"];
    let text = |key: &str| m[key].as_str().unwrap_or_default().to_owned();
    let number = |key: &str| m[key].as_u64().unwrap_or_default();
    pb::ExecuteResponse {
        output_json: result["output"].to_string(),
        metadata: Some(pb::ExecutionMetadata {
            agent_id: text("agent_id"),
            request_id: text("request_id"),
            trace_id: text("trace_id"),
            provider: text("provider"),
            model: text("model"),
            fallbacks: m["fallbacks"]
                .as_array()
                .map(|list| {
                    list.iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default(),
            prompt_tokens: number("prompt_tokens"),
            completion_tokens: number("completion_tokens"),
            latency_ms: number("latency_ms"),
            provider_latency_ms: number("provider_latency_ms"),
            degraded: m["degraded"].as_bool().unwrap_or_default(),
            degraded_reason: text("degraded_reason"),
            latency_us: number("latency_us"),
            provider_latency_us: number("provider_latency_us"),
        }),
    }
}

fn timestamp(ms: u64) -> prost_types::Timestamp {
    prost_types::Timestamp::from(UNIX_EPOCH + Duration::from_millis(ms))
}

pub(super) fn state(state: TaskState) -> pb::TaskState {
    match state {
        TaskState::Submitted => pb::TaskState::Submitted,
        TaskState::Working => pb::TaskState::Working,
        TaskState::Completed => pb::TaskState::Completed,
        TaskState::Failed => pb::TaskState::Failed,
        TaskState::Canceled => pb::TaskState::Canceled,
        TaskState::DeadLettered => pb::TaskState::DeadLettered,
        _ => pb::TaskState::Unspecified,
    }
}

pub(super) fn task(record: &TaskRecord) -> pb::Task {
    pb::Task {
        task_id: record.task_id.clone(),
        agent_id: record.agent_id.clone(),
        state: state(record.state) as i32,
        submitted_at: Some(timestamp(record.submitted_at_ms)),
        updated_at: Some(timestamp(record.updated_at_ms)),
        attempts: record.attempts,
        result: record.result.as_ref().map(response),
        error_kind: record.error_kind.clone().unwrap_or_default(),
        error_message: record.error_message.clone().unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_results_read_back_as_responses() {
        let stored = json!({
            "output": {"summary": "ok"},
            "metadata": {"agent_id": "documentation", "trace_id": "ab", "provider": "fake",
                         "fallbacks": ["a"], "prompt_tokens": 3, "latency_ms": 9}
        });
        let back = response(&stored);
        assert_eq!(back.output_json, r#"{"summary":"ok"}"#);
        let m = back.metadata.unwrap_or_default();
        assert_eq!((m.provider.as_str(), m.prompt_tokens), ("fake", 3));
        assert_eq!(m.fallbacks, ["a"]);
        let mut record = TaskRecord::submitted("t", "documentation", None);
        assert!(record.complete(stored));
        let task = task(&record);
        assert_eq!(task.state, pb::TaskState::Completed as i32);
        assert!(task.result.is_some());
    }
}
