//! The contract every transport implements, and what subscribers hold.
//!
//! Producers and the server depend on [`EventBus`] alone, so the same code runs with the
//! in-process bus in a test, with JetStream in production and with the audit log next to
//! either ([`Tee`]). The trait is object safe: the server picks the transports from its
//! configuration and hands out an `Arc<dyn EventBus>`.

mod subscription;
mod tee;

use std::sync::Arc;

use agents_core::{CloudEvent, async_trait};

pub(crate) use subscription::Envelope;
pub use subscription::{DispatchReport, Handler, HandlerError, Subscription};
pub use tee::Tee;

use crate::{BusMetrics, Error, TypeFilter};

/// How far a published event got when [`EventBus::publish`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Delivery {
    /// The transport accepted it at its durability level: fanned out to the subscribers'
    /// buffers (in-process), written (audit log) or acknowledged by the stream (JetStream).
    Accepted,
    /// The transport already held an event with this id and kept one copy (JetStream
    /// de-duplication of a retried publish).
    Duplicate,
    /// The transport was unreachable: the event is in the local outbox on disk and is sent,
    /// in order, when the transport returns.
    Outboxed,
}

/// An event bus: publish CloudEvents, subscribe by type, shut down cleanly.
///
/// Every implementation redacts events before they leave the process, bounds every queue and
/// counts what it drops in its [`BusMetrics`].
#[async_trait]
pub trait EventBus: Send + Sync + std::fmt::Debug {
    /// Publishes `event`, returning once the bus accepted it at its durability level (see
    /// [`Delivery`]). Bounded in time: a slow or absent transport yields an error or
    /// [`Delivery::Outboxed`], never an unbounded wait.
    async fn publish(&self, event: CloudEvent) -> Result<Delivery, Error>;

    /// Events whose type passes `filter`, from now on (a durable NATS consumer can also
    /// replay; see the transport). The subscription has a bounded buffer; see
    /// [`Subscription::lagged`].
    async fn subscribe(&self, filter: TypeFilter) -> Result<Subscription, Error>;

    /// Stops accepting publishes and flushes what the bus holds (files synced, the outbox
    /// sent within the configured bound). Subscriptions end after their buffered events.
    /// Calling it again does nothing.
    async fn shutdown(&self) -> Result<(), Error>;

    /// The bus's counters.
    fn metrics(&self) -> Arc<BusMetrics>;
}
