//! Where events go: the one trait producers depend on.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::deferred::DeferredEvent;
use super::envelope::CloudEvent;

/// Receives the events of agents, providers, breakers and the server.
///
/// `emit` and `emit_deferred` run on the request path, so implementations **must not block**
/// and must bound what they hold: when full they drop the event and count the
/// drop (the bus crate does this with a bounded queue and a metric). Emitting
/// is fire-and-forget; a producer never learns whether an event was delivered
/// and never fails a request because of one.
pub trait EventSink: Send + Sync + std::fmt::Debug {
    /// Hands `event` over without blocking.
    fn emit(&self, event: CloudEvent);

    /// Whether emitting here does anything at all. A producer may skip building its events
    /// (payload, JSON data, redaction, ids) when this is `false`; [`NullSink`] says so. The
    /// default is `true`; a sink that is sometimes off (no subscribers) may answer per call.
    fn is_enabled(&self) -> bool {
        true
    }

    /// Hands over a borrowed event, for fan-outs that give one event to several sinks. The
    /// default clones it into [`emit`](Self::emit); a sink that only reads events overrides
    /// this and saves the copy (a CloudEvent is a tree of allocations).
    fn emit_ref(&self, event: &CloudEvent) {
        self.emit(event.clone());
    }

    /// Hands over an event whose envelope is not built yet, so that a sink which only queues
    /// events can build it off the request path. The default builds it here and calls
    /// [`emit`](Self::emit); the bus crate's queue overrides it and builds the event on its
    /// publishing task. Either way the event is redacted before anything reads it.
    fn emit_deferred(&self, event: DeferredEvent) {
        self.emit(event.build());
    }

    /// Shows a deferred event that another sink keeps, for a fan-out: a sink that reads events
    /// on the spot (metrics) overrides this and reads the typed payload
    /// ([`DeferredEvent::payload`], unredacted: redact what you pass on), so nothing is built
    /// on the request path. The default builds a copy ([`DeferredEvent::to_event`]) and calls
    /// [`emit`](Self::emit).
    fn emit_deferred_ref(&self, event: &DeferredEvent) {
        self.emit(event.to_event());
    }

    /// Whether this sink does anything with events of `event_type`. A fan-out asks before
    /// showing a [`DeferredEvent`] to a sink that reads events on the spot
    /// ([`emit_deferred_ref`](Self::emit_deferred_ref)), so a sink that does not want the type
    /// costs nothing. The default is `true`.
    fn wants(&self, event_type: &str) -> bool {
        let _ = event_type;
        true
    }
}

impl<T: EventSink + ?Sized> EventSink for Arc<T> {
    fn emit(&self, event: CloudEvent) {
        (**self).emit(event);
    }

    fn is_enabled(&self) -> bool {
        (**self).is_enabled()
    }

    fn emit_ref(&self, event: &CloudEvent) {
        (**self).emit_ref(event);
    }

    fn emit_deferred(&self, event: DeferredEvent) {
        (**self).emit_deferred(event);
    }

    fn emit_deferred_ref(&self, event: &DeferredEvent) {
        (**self).emit_deferred_ref(event);
    }

    fn wants(&self, event_type: &str) -> bool {
        (**self).wants(event_type)
    }
}

/// Discards every event, for callers that want none.
#[derive(Debug, Default, Clone, Copy)]
pub struct NullSink;

impl EventSink for NullSink {
    fn emit(&self, _event: CloudEvent) {}

    fn is_enabled(&self) -> bool {
        false
    }

    fn emit_ref(&self, _event: &CloudEvent) {}

    fn emit_deferred(&self, _event: DeferredEvent) {}

    fn emit_deferred_ref(&self, _event: &DeferredEvent) {}

    fn wants(&self, _event_type: &str) -> bool {
        false
    }
}

/// Keeps every event in memory in emission order; clones share one store.
///
/// Unbounded, so meant for tests and short-lived embedding; a long-running
/// process uses the bus's bounded sink or drains this one with
/// [`MemorySink::take`]. The lock is held only to push or copy, which keeps
/// `emit` within the non-blocking contract in practice.
#[derive(Debug, Default, Clone)]
pub struct MemorySink {
    events: Arc<Mutex<Vec<CloudEvent>>>,
}

impl MemorySink {
    /// An empty sink.
    pub fn new() -> Self {
        Self::default()
    }

    /// A copy of the events emitted so far.
    pub fn events(&self) -> Vec<CloudEvent> {
        self.lock().clone()
    }

    /// The `type` of each event emitted so far, in order.
    pub fn types(&self) -> Vec<String> {
        self.lock().iter().map(|e| e.event_type.clone()).collect()
    }

    /// Removes and returns the events emitted so far.
    pub fn take(&self) -> Vec<CloudEvent> {
        std::mem::take(&mut *self.lock())
    }

    fn lock(&self) -> MutexGuard<'_, Vec<CloudEvent>> {
        // Every critical section is a single push, clone or swap, so a panic
        // elsewhere while the lock was held cannot leave the Vec half-changed.
        self.events.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl EventSink for MemorySink {
    fn emit(&self, event: CloudEvent) {
        self.lock().push(event);
    }
}

#[cfg(test)]
mod tests {
    use super::super::{CircuitClosed, TaskQueued};
    use super::*;

    #[test]
    fn memory_sink_keeps_order_and_clones_share_it() {
        let sink = MemorySink::new();
        let shared: Arc<dyn EventSink> = Arc::new(sink.clone());
        shared.emit(CloudEvent::new("/a", &TaskQueued::default()));
        Arc::clone(&shared).emit(CloudEvent::new("/a", &CircuitClosed::default()));
        NullSink.emit(CloudEvent::new("/a", &TaskQueued::default()));
        // Borrowed events are copied by default.
        shared.emit_ref(&CloudEvent::new("/a", &TaskQueued::default()));
        assert!(shared.is_enabled());
        let null: Arc<dyn EventSink> = Arc::new(NullSink);
        assert!(
            !null.is_enabled(),
            "NullSink says producers may skip events"
        );
        null.emit_ref(&CloudEvent::new("/a", &TaskQueued::default()));
        assert_eq!(
            sink.types(),
            ["task.queued", "provider.circuit_closed", "task.queued"]
        );
        assert_eq!(sink.take().len(), 3);
        assert!(sink.events().is_empty());
    }

    #[test]
    fn deferred_events_are_built_by_default_and_dropped_by_the_null_sink() {
        let sink = MemorySink::new();
        let shared: Arc<dyn EventSink> = Arc::new(sink.clone());
        assert!(shared.wants("task.queued"));
        shared.emit_deferred(DeferredEvent::new("/a", TaskQueued::default()).with_subject("t-1"));
        let null: Arc<dyn EventSink> = Arc::new(NullSink);
        assert!(!null.wants("task.queued"));
        null.emit_deferred(DeferredEvent::new("/a", TaskQueued::default()));
        let events = sink.take();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].event_type, "task.queued");
        assert_eq!(events[0].subject.as_deref(), Some("t-1"));
    }

    #[test]
    fn memory_sink_survives_a_poisoned_lock() {
        let sink = MemorySink::new();
        let inner = sink.clone();
        let joined = std::thread::spawn(move || {
            let _guard = inner.events.lock();
            std::panic::resume_unwind(Box::new("poison the lock"));
        })
        .join();
        assert!(joined.is_err() && sink.events.is_poisoned());
        sink.emit(CloudEvent::new("/a", &TaskQueued::default()));
        assert_eq!(sink.types(), ["task.queued"]);
    }
}
