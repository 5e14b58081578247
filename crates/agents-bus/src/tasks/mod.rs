//! The task queue workers pull from: building blocks for queued agent runs.
//!
//! Why a JetStream work queue: a submitted task must survive the server that accepted it and
//! the worker that picked it up. Each task is stored once (`Nats-Msg-Id` = task id, so a
//! retried submit is not run twice), handed to exactly one worker of its agent (a durable pull
//! consumer per agent, shared by every worker process), and removed only when the worker
//! acknowledges it. A worker that dies mid-task stops sending heartbeats, so the task is
//! redelivered after `ack_wait_ms`; a task that keeps failing stops after `max_deliver`
//! attempts and is moved to a dead-letter stream with the reason, instead of looping forever.
//! A task whose last delivery ended without an answer is dead-lettered by the sweeper (see
//! `sweeper.rs`), from advisories kept in a stream until handled.
//!
//! Payloads are carried as given: they are the agent's input, which the worker must see
//! unchanged. The dead-letter reason, which is ours, passes the redactor.

mod config;
mod queue;
mod state;
mod sweeper;

pub use config::TaskQueueConfig;
pub use queue::{Task, TaskOutcome, TaskQueue, TaskWorker};
pub use state::{
    Cancellations, Change, Created, JetStreamTaskStore, TaskRecord, TaskState, TaskStore,
    is_valid_task_id,
};
