//! # agents-bus
//!
//! The event bus of the `agents` runtime. Agents, providers, breakers and the server describe
//! what happens as [`CloudEvent`](agents_core::CloudEvent)s; this crate carries them:
//!
//! - [`EventBus`]: the object-safe contract — `publish` (bounded in time, returns once the
//!   event is accepted at the transport's durability level, see [`Delivery`]), `subscribe`
//!   with a [`TypeFilter`] (exact, prefix or glob), and `shutdown`, which flushes.
//! - [`InProcessBus`]: fan-out inside the process, the default.
//! - [`AuditLog`]: the durable, hash-chained JSON-lines audit trail, and
//!   [`verify_audit_file`] to check one.
//! - `NatsBus` (feature `nats`): JetStream, with a file-backed outbox for outages and durable
//!   consumers; `TaskQueue`: the JetStream work queue workers pull from.
//! - [`BusSink`]: the non-blocking [`EventSink`](agents_core::EventSink) in front of any bus,
//!   and [`Tee`]: one publish to several buses (say NATS and the audit log).
//! - [`BusMetrics`]: what every bus accepted, delivered and dropped.
//!
//! Every bus redacts event data with the global [`Redactor`](agents_core::Redactor) before it
//! leaves the process, bounds every queue and counts every drop. Logs and metrics never carry
//! event data, only ids, types and counts.
//!
//! ## In-process bus
//!
//! Each subscriber has its own bounded buffer; a publish `try_send`s into every matching one
//! and never waits. A subscriber that falls behind misses events — counted per subscriber
//! ([`Subscription::lagged`]) and in the `lagged` metric — while publishers and other
//! subscribers carry on. Handler errors and panics in [`Subscription::dispatch`] are logged and
//! counted, never swallowed.
//!
//! ## Audit log
//!
//! One CloudEvent per line, append-only, a new file per UTC day and per size limit, fsync
//! after every event, on an interval or never ([`FsyncPolicy`]). Each line carries a
//! `chainhash` attribute, SHA-256 of the previous hash and the line, so [`verify_audit_file`]
//! names the first edited, removed or reordered line. A crash mid-write loses only the event
//! being written; the torn line is cut off at the next start. One log writes a directory at a
//! time: it holds a lock on `<dir>/.lock`, and a second open is [`Error::AuditDirInUse`].
//!
//! ## JetStream
//!
//! Events go to `agents.events.<type>` as structured-mode CloudEvents JSON with `Nats-Msg-Id`
//! set to the event id, so a retried publish is stored once; the publish waits for the
//! stream's ack. The stream (max age, max bytes, discard old) is created or updated from the
//! config. While NATS is unreachable, events go to a bounded outbox on disk and are re-sent in
//! order when it returns; a full outbox is counted and logged.
//!
//! ## Features
//!
//! | feature | default | what it adds |
//! |---------|---------|--------------|
//! | (none)  |         | `EventBus`, `InProcessBus`, `AuditLog`, `BusSink`, `Tee`, metrics |
//! | `nats`  |         | `NatsBus` (JetStream transport, outbox, durable consumers) and `TaskQueue` (work queue with heartbeats, max deliveries and a dead-letter stream) |
//! | `full`  |         | everything |
//!
//! ## Example
//!
//! ```
//! use agents_bus::{EventBus, InProcessBus, InProcessConfig, TypeFilter};
//! use agents_core::{AgentStarted, CloudEvent};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
//! let bus = InProcessBus::new(InProcessConfig::default())?;
//! let mut agents = bus.subscribe(TypeFilter::prefix("agent.")).await?;
//!
//! let mut started = AgentStarted::default();
//! started.agent_id = "code-analysis".into();
//! bus.publish(CloudEvent::new("/agents/code-analysis", &started)).await?;
//!
//! let event = agents.recv().await.ok_or("no event")?;
//! assert_eq!(event.event_type, "agent.started");
//! assert_eq!(bus.metrics().snapshot().delivered, 1);
//! bus.shutdown().await?;
//! # Ok::<_, Box<dyn std::error::Error>>(())
//! # })
//! # }
//! ```
//!
//! MSRV: Rust 1.95.

mod audit;
mod bus;
mod edge;
mod error;
mod filter;
mod memory;
mod metrics;
#[cfg(feature = "nats")]
mod nats;
#[cfg(feature = "nats")]
mod outbox;
mod sink;
#[cfg(feature = "nats")]
mod tasks;

pub use audit::{
    AuditConfig, AuditLog, AuditReport, ChainBreak, ChainProblem, FsyncPolicy, verify_audit_file,
};
pub use bus::{Delivery, DispatchReport, EventBus, Handler, HandlerError, Subscription, Tee};
pub use error::{Error, ErrorKind};
pub use filter::TypeFilter;
pub use memory::{InProcessBus, InProcessConfig};
pub use metrics::{BusMetrics, BusMetricsSnapshot};
pub use sink::BusSink;

#[cfg(feature = "nats")]
pub use nats::{EventStreamConfig, NatsBus, NatsConfig, StreamStats};
#[cfg(feature = "nats")]
pub use outbox::OutboxConfig;
#[cfg(feature = "nats")]
pub use tasks::{
    Cancellations, Change, Created, JetStreamTaskStore, Task, TaskOutcome, TaskQueue,
    TaskQueueConfig, TaskRecord, TaskState, TaskStore, TaskWorker, is_valid_task_id,
};
