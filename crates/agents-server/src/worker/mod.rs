//! Queued tasks on NATS JetStream: the server's side (`dispatch = "queue"`: SubmitTask
//! publishes, GetTask and CancelTask read and write the state bucket) and the
//! `agents-server worker` process that runs them.
//!
//! Why it is built this way: JetStream is the engine, and the code here only uses it so that a
//! crash, a restart or a network cut neither loses a task nor records its effect twice.
//!
//! - **Submit**: the state record (`task.<id>`, `submitted`) is created first, then the input
//!   is published to `agents.tasks.<agent>` with `Nats-Msg-Id` = task id. A retried submit
//!   finds the record and publishes again; the stream drops the duplicate. A publish that
//!   fails removes the record, so the client's retry starts clean.
//! - **Pull only what can run**: each worker asks for as many tasks as it has free slots
//!   (`[worker] concurrency`), so no task waits in a buffer while its ack wait runs out.
//! - **Heartbeats**: a running task gets an in-progress ack every third of the ack wait; a
//!   worker that dies stops sending them and the task is redelivered after the ack wait.
//! - **Idempotent effect**: the record turns `completed` by compare-and-set, once; a
//!   redelivered task whose record is finished is acknowledged without running.
//! - **Dead letters**: the worker holding the last delivery records `dead_lettered` with the
//!   reason and moves the task to the dead-letter stream. A last delivery whose worker was lost
//!   is found through JetStream's max-deliveries advisory and dead-lettered with kind
//!   `worker_lost` (every worker runs that sweeper, in one queue group).
//! - **Cancel**: CancelTask marks the record `canceled` (final, so no result can land after
//!   it) and writes `cancel.<id>`; every worker watches `cancel.>` and stops the run it holds,
//!   which drops the provider call.
//! - **Shutdown**: the worker stops pulling, lets running tasks finish within the grace period,
//!   then stops the rest and hands them back (nak) for another worker.
//! - **Traces**: `traceparent`/`tracestate` travel as message headers; each delivery runs in a
//!   `task.run` span whose parent they name, so the client's trace continues in the worker and
//!   on to the provider call.
//! - **Metrics**: each delivery is timed by outcome, and the first one's wait since submission
//!   recorded; the server and every worker count the queue depth per agent from the stream
//!   (`depth.rs`); a worker over its memory hint says so in a gauge while it pulls nothing.

mod depth;
mod dispatch;
mod record;
mod run;

pub use dispatch::QueueDispatch;
pub use run::{Worker, run_until_signal};

/// Header carrying the submitting tenant; a task without it belongs to `anonymous`.
pub const TENANT_HEADER: &str = "Agents-Tenant";
