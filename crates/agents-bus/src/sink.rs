//! The non-blocking [`EventSink`] in front of any bus.
//!
//! Agents and providers emit events on the request path through the synchronous
//! `EventSink::emit`, which must not block; a JetStream publish waits for an ack and the audit
//! log may fsync. So `emit` puts the event in a bounded queue and returns, and one background
//! task publishes from the queue in order. When the queue is full the event is dropped and
//! counted in `sink_dropped`: a request is never slowed down, and never fails, because of an
//! event, yet no drop goes unseen.
//!
//! Deferred events ([`EventSink::emit_deferred`]) travel the same queue unbuilt, and the
//! background task builds them (payload to JSON, redaction, id): that work leaves the request
//! path, and their order relative to built events is kept.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use agents_core::{CloudEvent, DeferredEvent, EventSink};
use tokio::sync::mpsc::{self, error::TrySendError};
use tokio::task::JoinHandle;

use crate::{BusMetrics, Error, EventBus};

/// A bounded, non-blocking [`EventSink`] that publishes to an [`EventBus`] in the background.
#[derive(Debug)]
pub struct BusSink {
    tx: Mutex<Option<mpsc::Sender<Queued>>>,
    metrics: Arc<BusMetrics>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl BusSink {
    /// Starts the background publisher on the current tokio runtime; `capacity` events may
    /// wait for it.
    ///
    /// # Errors
    /// [`Error::NoRuntime`] outside a tokio runtime; [`Error::Config`] for a zero capacity.
    pub fn spawn(bus: Arc<dyn EventBus>, capacity: usize) -> Result<Self, Error> {
        if capacity == 0 || capacity > tokio::sync::Semaphore::MAX_PERMITS {
            return Err(agents_core::ConfigError::new(
                "sink_capacity",
                "must be between 1 and the largest channel size",
            )
            .into());
        }
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| Error::NoRuntime { what: "event sink" })?;
        let (tx, mut rx) = mpsc::channel::<Queued>(capacity);
        let metrics = bus.metrics();
        let task = runtime.spawn(async move {
            while let Some(queued) = rx.recv().await {
                let event = match queued {
                    Queued::Built(event) => event,
                    Queued::Deferred(event) => event.build(),
                };
                // The bus counts the failure in `publish_errors`; the id and type are enough
                // to find the event, its data stays out of the log. Only they are kept for
                // the log line: copying the whole event for it cost an allocation per field.
                let (id, event_type) = (event.id.clone(), event.event_type.clone());
                if let Err(error) = bus.publish(event).await {
                    tracing::warn!(event_id = %id, %event_type, %error, "event sink could not publish");
                }
            }
        });
        Ok(Self {
            tx: Mutex::new(Some(tx)),
            metrics,
            task: Mutex::new(Some(task)),
        })
    }

    /// Stops accepting events and waits up to `timeout` for the queued ones to be published.
    /// Returns whether everything queued was published in time.
    pub async fn close(&self, timeout: Duration) -> bool {
        drop(
            self.tx
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take(),
        );
        let task = self
            .task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        match task {
            Some(task) => {
                let abort = task.abort_handle();
                let finished = tokio::time::timeout(timeout, task).await.is_ok();
                if !finished {
                    abort.abort();
                }
                finished
            }
            None => true,
        }
    }

    /// Queues `queued` for the background task, or counts it dropped when the queue is full
    /// or closed.
    fn enqueue(&self, queued: Queued) {
        let sent = match &*self.tx.lock().unwrap_or_else(PoisonError::into_inner) {
            Some(tx) => match tx.try_send(queued) {
                Ok(()) => true,
                Err(TrySendError::Full(_) | TrySendError::Closed(_)) => false,
            },
            None => false,
        };
        if !sent {
            BusMetrics::inc(&self.metrics.sink_dropped);
        }
    }
}

/// What waits in the queue: an event, or one the background task still has to build.
#[derive(Debug)]
enum Queued {
    Built(CloudEvent),
    Deferred(DeferredEvent),
}

impl EventSink for BusSink {
    fn emit(&self, event: CloudEvent) {
        self.enqueue(Queued::Built(event));
    }

    fn emit_deferred(&self, event: DeferredEvent) {
        self.enqueue(Queued::Deferred(event));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use agents_core::{AgentFailed, TaskQueued};

    use super::*;
    use crate::{InProcessBus, InProcessConfig, TypeFilter};

    #[test]
    fn needs_a_runtime_and_a_capacity() {
        let bus: Arc<dyn EventBus> =
            Arc::new(InProcessBus::new(InProcessConfig::default()).unwrap());
        let outside = BusSink::spawn(Arc::clone(&bus), 4);
        assert!(matches!(outside, Err(Error::NoRuntime { .. })));
        assert!(matches!(BusSink::spawn(bus, 0), Err(Error::Config(_))));
    }

    #[tokio::test(start_paused = true)]
    async fn full_queue_drops_and_counts_close_flushes() {
        let memory = InProcessBus::new(InProcessConfig::default()).unwrap();
        let mut sub = memory.subscribe_now(TypeFilter::all()).unwrap();
        let sink = BusSink::spawn(Arc::new(memory.clone()), 2).unwrap();
        // The background task has not run yet (current-thread runtime): the third is dropped.
        for _ in 0..3 {
            sink.emit(CloudEvent::new("/a", &TaskQueued::default()));
        }
        assert!(sink.close(Duration::from_secs(5)).await);
        assert!(sink.close(Duration::from_secs(5)).await);
        sink.emit(CloudEvent::new("/a", &TaskQueued::default()));
        assert_eq!(sub.queued(), 2);
        assert!(sub.recv().await.is_some());
        let m = memory.metrics().snapshot();
        assert_eq!((m.published, m.sink_dropped), (2, 2));
    }

    #[tokio::test(start_paused = true)]
    async fn deferred_events_are_built_by_the_task_in_queue_order_and_redacted() {
        let memory = InProcessBus::new(InProcessConfig::default()).unwrap();
        let mut sub = memory.subscribe_now(TypeFilter::all()).unwrap();
        let sink = BusSink::spawn(Arc::new(memory.clone()), 3).unwrap();
        let mut failed = AgentFailed::default();
        failed.message = "upstream said Authorization: Bearer abcdefghijklmnopqrstu".into();
        sink.emit(CloudEvent::new("/a", &TaskQueued::default()));
        sink.emit_deferred(DeferredEvent::new("/agents/x", failed).with_subject("req-7"));
        sink.emit(CloudEvent::new("/a", &TaskQueued::default()));
        // A deferred event takes a queue slot like any other: the fourth is dropped and counted.
        sink.emit_deferred(DeferredEvent::new("/a", TaskQueued::default()));
        assert!(sink.close(Duration::from_secs(5)).await);
        let mut types = Vec::new();
        while sub.queued() > 0 {
            let event = sub.recv().await.unwrap();
            if event.event_type == "agent.failed" {
                assert_eq!(event.subject.as_deref(), Some("req-7"));
                let text = serde_json::to_string(&*event).unwrap();
                assert!(!text.contains("abcdefghijklmnopqrstu"), "{text}");
            }
            types.push(event.event_type.clone());
        }
        assert_eq!(types, ["task.queued", "agent.failed", "task.queued"]);
        assert_eq!(memory.metrics().snapshot().sink_dropped, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn publish_errors_are_logged_not_fatal() {
        let memory = InProcessBus::new(InProcessConfig::default()).unwrap();
        memory.close();
        let sink = BusSink::spawn(Arc::new(memory.clone()), 4).unwrap();
        sink.emit(CloudEvent::new("/a", &TaskQueued::default()));
        assert!(sink.close(Duration::from_secs(5)).await);
        assert_eq!(memory.metrics().snapshot().publish_errors, 1);
    }
}
