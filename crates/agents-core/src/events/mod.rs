//! Events: what happened during a request, as CloudEvents 1.0.
//!
//! Every step of a request (agent start and end, each provider attempt,
//! fallbacks, breaker transitions, host pressure, MCP connections, queued
//! tasks) is reported as a [`CloudEvent`] whose `data` is one of the typed
//! payloads of the catalogue. Producers hand events to an [`EventSink`]; the
//! bus crate implements the sink and carries events to NATS or the audit log.
//!
//! The catalogue is closed: [`EventPayload`] is sealed, so every event type in
//! [`EVENT_TYPES`] has a committed JSON schema (see [`catalogue`]) and
//! consumers in other languages can rely on it. Payloads grow by adding
//! fields, never by removing or renaming them, and consumers ignore fields
//! they do not know.
//!
//! Payload structs are `#[non_exhaustive]` so that adding a field is not a
//! breaking change; build them from `Default` and set the fields:
//!
//! ```
//! use agents_core::{AgentCompleted, CloudEvent, EventSink, MemorySink};
//!
//! let sink = MemorySink::new();
//! let mut done = AgentCompleted::default();
//! done.agent_id = "code-analysis".into();
//! done.latency_ms = 1_250;
//! sink.emit(CloudEvent::new("/agents/code-analysis", &done).with_subject("req-42"));
//!
//! let event = &sink.events()[0];
//! assert_eq!(event.event_type, "agent.completed");
//! let decoded: AgentCompleted = event.payload()?;
//! assert_eq!(decoded.latency_ms, 1_250);
//! # Ok::<(), agents_core::EventError>(())
//! ```

mod catalogue;
mod deferred;
mod envelope;
mod error;
mod sink;

pub use catalogue::{
    AgentCompleted, AgentFailed, AgentStarted, CircuitClosed, CircuitOpened, EVENT_TYPES,
    EventPayload, McpServerConnected, McpServerDisconnected, MemoryPressure, PressureLevel,
    ProviderFailure, ProviderFallback, ProviderRequest, ProviderSuccess, TaskCompleted,
    TaskDeadLettered, TaskFailed, TaskQueued, TaskStarted, ThermalThrottle, catalogue,
};
pub use deferred::DeferredEvent;
pub use envelope::{CloudEvent, MAX_EVENT_BYTES, SpecVersion};
pub use error::EventError;
pub use sink::{EventSink, MemorySink, NullSink};
