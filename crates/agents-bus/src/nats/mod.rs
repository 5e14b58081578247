//! The NATS JetStream transport: events that outlive the process and reach other processes.
//!
//! Why each part exists:
//! - **Subjects `agents.events.<type>`, structured CloudEvents JSON**: consumers in any language
//!   filter by subject and read a standard envelope.
//! - **`Nats-Msg-Id` = event id**: a publish retried after a lost ack (or re-sent from the
//!   outbox) is stored once, within the stream's duplicate window. A send that timed out after
//!   the server had stored the event is re-sent from the outbox when NATS is back, possibly
//!   much later; the stream recognises it only if the duplicate window
//!   (`stream.duplicate_window_secs`, 10 minutes by default) is at least as long as the
//!   longest outage to be survived without duplicates. Past the window, such an event is
//!   stored twice.
//! - **The stream is created or updated from config** (max age, max bytes, discard old): the
//!   retention an operator configured is the one in force, and the stream cannot grow without
//!   bound.
//! - **Publish waits for the stream's ack**, bounded by `publish_timeout_ms`: an accepted event
//!   is stored, not merely written to a socket.
//! - **The outbox**: while NATS is unreachable, events go to a bounded file on disk instead of
//!   blocking agent runs or being dropped, and are re-sent in order when NATS returns (see the
//!   outbox module). Once anything is in the outbox, new events queue behind it, so per-source
//!   order holds across an outage.
//! - **One publish at a time**: checking that the outbox is empty, sending directly and, if the
//!   send fails, writing the event to the outbox form one critical section, held in arrival
//!   order. Without it, a publisher that checked the outbox while another's send was timing
//!   out would be stored before the other's event reached the outbox, breaking per-source
//!   order under concurrent publishers. The cost is one ack round trip per publish (a stalled
//!   server holds publishers for at most `publish_timeout_ms` each before the outbox takes
//!   over); pipelining sends would reopen the same hole when a later send succeeds after an
//!   earlier one failed.
//! - **Durable consumers**: another process follows the events from where it stopped, after its
//!   own restart or the server's.
//! - **No duplicates for a slow subscriber**: an event is acknowledged when the subscriber
//!   takes it, so JetStream delivers no more unacknowledged events than the subscriber's
//!   buffer holds (`max_ack_pending`), and the feeding task sends in-progress acks for the
//!   buffered ones, so none is delivered again while it waits (see the buffer module).

mod buffer;
mod bus;
mod config;
mod consumer;
mod drain;
mod stream;

pub use bus::{NatsBus, StreamStats};
pub use config::{EventStreamConfig, NatsConfig};
