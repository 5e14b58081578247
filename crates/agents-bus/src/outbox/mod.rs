//! The local outbox: where events wait on disk while the transport is unreachable.
//!
//! Why: a NATS outage must neither block agent runs (publishes would wait for acks that never
//! come) nor lose their events. So the NATS bus writes events it cannot deliver here, and a
//! background task re-sends them, oldest first, when NATS is back. Events stay in order because
//! nothing is published directly while the outbox holds anything.
//!
//! The outbox is one append-only JSON-lines file plus a small position file naming the first
//! unsent line (its offset and its event id, so a stale position is detected and the outbox
//! re-sent from the start instead of skipping events; JetStream drops the duplicates by id).
//! A crash mid-write tears at most the line being written, which is cut off on open. The file
//! is truncated whenever the outbox empties and compacted once the sent part grows past the
//! size bound. It is bounded in events and bytes; when full, new events are refused, counted
//! in `outbox_dropped` and logged.

mod config;
mod queue;

pub use config::OutboxConfig;
pub(crate) use queue::{Entry, Outbox};
