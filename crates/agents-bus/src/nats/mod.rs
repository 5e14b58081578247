//! The NATS JetStream transport: events that outlive the process and reach other processes.
//!
//! Why each part exists:
//! - **Subjects `agents.events.<type>`, structured CloudEvents JSON**: consumers in any language
//!   filter by subject and read a standard envelope.
//! - **`Nats-Msg-Id` = event id**: a publish retried after a lost ack (or re-sent from the
//!   outbox) is stored once, within the stream's duplicate window.
//! - **The stream is created or updated from config** (max age, max bytes, discard old): the
//!   retention an operator configured is the one in force, and the stream cannot grow without
//!   bound.
//! - **Publish waits for the stream's ack**, bounded by `publish_timeout_ms`: an accepted event
//!   is stored, not merely written to a socket.
//! - **The outbox**: while NATS is unreachable, events go to a bounded file on disk instead of
//!   blocking agent runs or being dropped, and are re-sent in order when NATS returns (see the
//!   outbox module). Once anything is in the outbox, new events queue behind it, so per-source
//!   order holds across an outage.
//! - **Durable consumers**: another process follows the events from where it stopped, after its
//!   own restart or the server's.

mod bus;
mod config;
mod consumer;
mod drain;
mod stream;

pub use bus::{NatsBus, StreamStats};
pub use config::{EventStreamConfig, NatsConfig};
