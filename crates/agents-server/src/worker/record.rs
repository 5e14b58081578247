//! Task records as protocol messages, and agent outputs as stored results.
//!
//! A result is stored in [`AgentOutput`]'s own serde form and read back into it, so the
//! response a queued task gives is made by [`convert::response`], whose metadata mapping
//! Execute's response shares: one mapping, not a hand-kept mirror of it. (The output JSON is
//! the same value; its keys may come in another order.)

use std::time::{Duration, UNIX_EPOCH};

use agents_bus::{TaskRecord, TaskState};
use agents_core::AgentOutput;
use serde_json::{Value, json};

use crate::pb;
use crate::service::convert;

/// The stored form of a result: the output document and how it was made.
pub(super) fn result_json(done: &AgentOutput) -> Value {
    // Cannot fail (string keys, no custom serializers); the output alone is the fallback.
    serde_json::to_value(done).unwrap_or_else(|_| json!({ "output": done.output }))
}

/// Records written before results were stored as [`AgentOutput`] kept the token counts flat in
/// `metadata` and had no `usage` or `grounded`: lift them into today's form.
fn upgrade_legacy(result: &mut Value) {
    let Some(metadata) = result.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    if !metadata.contains_key("usage") {
        let count = |key: &str| metadata.get(key).and_then(Value::as_u64).unwrap_or(0);
        let usage = json!({
            "prompt_tokens": count("prompt_tokens"),
            "completion_tokens": count("completion_tokens"),
        });
        metadata.insert("usage".into(), usage);
    }
    metadata.entry("grounded").or_insert(Value::Bool(false));
}

fn response(result: &Value) -> pb::ExecuteResponse {
    let mut decoded = result.clone();
    upgrade_legacy(&mut decoded);
    match serde_json::from_value::<AgentOutput>(decoded) {
        Ok(done) => convert::response(&done),
        Err(error) => {
            // Written by something else than a worker (or damaged): the output still reads.
            tracing::warn!(%error, "a stored task result has no readable metadata");
            pb::ExecuteResponse {
                output_json: result["output"].to_string(),
                metadata: None,
            }
        }
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

    /// A result as workers stored it before it was `AgentOutput`'s serde form.
    fn legacy() -> Value {
        json!({
            "output": {"summary": "ok"},
            "metadata": {"agent_id": "documentation", "request_id": "t", "trace_id": "ab",
                         "provider": "fake", "model": null, "fallbacks": ["a"],
                         "prompt_tokens": 3, "completion_tokens": 4, "latency_ms": 9,
                         "provider_latency_ms": 8, "latency_us": 9001,
                         "provider_latency_us": 8001, "degraded": false,
                         "degraded_reason": null}
        })
    }

    #[test]
    fn stored_results_read_back_as_the_execute_response() {
        let mut done: AgentOutput = serde_json::from_value({
            let mut today = legacy();
            upgrade_legacy(&mut today);
            today
        })
        .unwrap();
        done.metadata.facts_error = Some("unsupported language".into());
        done.metadata.degraded_reason = Some("all down".into());
        let stored = result_json(&done);
        assert_eq!(stored["metadata"]["usage"]["prompt_tokens"], 3);
        assert_eq!(response(&stored), convert::response(&done));
        let mut record = TaskRecord::submitted("t", "documentation", None);
        assert!(record.complete(stored));
        let task = task(&record);
        assert_eq!(task.state, pb::TaskState::Completed as i32);
        assert_eq!(task.result, Some(convert::response(&done)));
    }

    #[test]
    fn results_in_the_old_form_still_read() {
        let back = response(&legacy());
        assert_eq!(back.output_json, r#"{"summary":"ok"}"#);
        let m = back.metadata.unwrap();
        assert_eq!((m.provider.as_str(), m.model.as_str()), ("fake", ""));
        assert_eq!((m.prompt_tokens, m.completion_tokens), (3, 4));
        assert_eq!((m.latency_us, m.provider_latency_us), (9001, 8001));
        assert_eq!(m.fallbacks, ["a"]);
        // Unreadable metadata keeps the output.
        let odd = response(&json!({"output": [1], "metadata": "?"}));
        assert_eq!((odd.output_json.as_str(), odd.metadata), ("[1]", None));
    }
}
