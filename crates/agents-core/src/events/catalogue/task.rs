//! Queued work: a task's way from the queue to a worker and out.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A task was accepted onto the queue (`task.queued`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[non_exhaustive]
pub struct TaskQueued {
    /// Task id.
    pub task_id: String,
    /// Agent that will run the task.
    pub agent_id: String,
    /// Tenant that submitted the task, if any.
    pub tenant: Option<String>,
}

/// A worker picked a task up (`task.started`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[non_exhaustive]
pub struct TaskStarted {
    /// Task id.
    pub task_id: String,
    /// Agent running the task.
    pub agent_id: String,
    /// Worker name.
    pub worker: String,
    /// Delivery attempt, starting at 1.
    pub attempt: u32,
}

/// A task finished with a result (`task.completed`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[non_exhaustive]
pub struct TaskCompleted {
    /// Task id.
    pub task_id: String,
    /// Agent that ran the task.
    pub agent_id: String,
    /// Worker name.
    pub worker: String,
    /// Time the worker spent on the task, in milliseconds.
    pub latency_ms: u64,
}

/// One attempt at a task failed; it may be redelivered (`task.failed`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[non_exhaustive]
pub struct TaskFailed {
    /// Task id.
    pub task_id: String,
    /// Agent that ran the task.
    pub agent_id: String,
    /// Stable error kind.
    pub error_kind: String,
    /// Redacted human-readable description.
    pub message: String,
    /// Delivery attempt that failed, starting at 1.
    pub attempt: u32,
}

/// A task ran out of deliveries and was set aside (`task.dead_lettered`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[non_exhaustive]
pub struct TaskDeadLettered {
    /// Task id.
    pub task_id: String,
    /// Agent the task was for.
    pub agent_id: String,
    /// Deliveries made before giving up.
    pub deliveries: u32,
    /// Redacted reason, usually the last attempt's error kind.
    pub reason: String,
}
