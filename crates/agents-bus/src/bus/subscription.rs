//! What a subscriber holds: a bounded buffer of events, and a way to run a handler over it.
//!
//! Handlers fail. The bus this crate replaces swallowed those failures; here every error (and
//! every panic) of a handler is logged with the event's id and type, never its data, and
//! counted, and the next event is handled as usual.

use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use agents_core::{CloudEvent, Redactor, async_trait};
use futures_util::{FutureExt, Stream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::BusMetrics;

/// What a [`Handler`] returns when it fails; its text is redacted before it is logged.
pub type HandlerError = Box<dyn std::error::Error + Send + Sync>;

/// Processes the events of a subscription, one at a time.
///
/// Closures `Fn(Arc<CloudEvent>) -> impl Future<Output = Result<(), HandlerError>>` are
/// handlers.
#[async_trait]
pub trait Handler: Send + Sync {
    /// Handles one event.
    async fn handle(&self, event: Arc<CloudEvent>) -> Result<(), HandlerError>;
}

#[async_trait]
impl<F, Fut> Handler for F
where
    F: Fn(Arc<CloudEvent>) -> Fut + Send + Sync,
    Fut: Future<Output = Result<(), HandlerError>> + Send,
{
    async fn handle(&self, event: Arc<CloudEvent>) -> Result<(), HandlerError> {
        self(event).await
    }
}

/// What [`Subscription::dispatch`] did before the subscription ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DispatchReport {
    /// Events handled without error.
    pub handled: u64,
    /// Events whose handler returned an error or panicked.
    pub failed: u64,
    /// Events this subscriber missed because its buffer was full.
    pub lagged: u64,
}

/// One event in a subscription's buffer, with the handle that acknowledges it to the
/// transport when the subscriber takes it (JetStream), so a buffered but never-read event is
/// redelivered rather than lost.
pub(crate) struct Envelope {
    pub(crate) event: Arc<CloudEvent>,
    #[cfg(feature = "nats")]
    pub(crate) ack: Option<async_nats::jetstream::message::Acker>,
}

impl Envelope {
    pub(crate) fn plain(event: Arc<CloudEvent>) -> Self {
        Self {
            event,
            #[cfg(feature = "nats")]
            ack: None,
        }
    }

    /// Acknowledges in the background (for callers that cannot await).
    fn ack_soon(self) -> Arc<CloudEvent> {
        #[cfg(feature = "nats")]
        if let Some(acker) = self.ack
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(async move { acker.ack().await });
        }
        self.event
    }

    async fn ack_now(self) -> Arc<CloudEvent> {
        #[cfg(feature = "nats")]
        if let Some(acker) = self.ack
            && let Err(error) = acker.ack().await
        {
            tracing::debug!(%error, "ack failed; the event may be delivered again");
        }
        self.event
    }
}

/// A stream of the events that passed a subscriber's filter.
///
/// The buffer is bounded: when it is full the bus drops the newest event for this subscriber
/// only, and counts it in [`lagged`](Self::lagged) and in the bus's metrics. Publishers and
/// other subscribers never wait for a slow one. Dropping the subscription unsubscribes.
#[derive(Debug)]
pub struct Subscription {
    rx: mpsc::Receiver<Envelope>,
    lagged: Arc<AtomicU64>,
    metrics: Arc<BusMetrics>,
    /// The transport task feeding `rx`, stopped when the subscription is dropped.
    feeder: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Envelope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Envelope")
            .field("id", &self.event.id)
            .finish_non_exhaustive()
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Some(feeder) = &self.feeder {
            feeder.abort();
        }
        // Hand events that were buffered but never taken back to the transport at once,
        // instead of after its ack wait.
        #[cfg(feature = "nats")]
        {
            self.rx.close();
            let mut unread = Vec::new();
            while let Ok(envelope) = self.rx.try_recv() {
                unread.extend(envelope.ack);
            }
            if !unread.is_empty()
                && let Ok(runtime) = tokio::runtime::Handle::try_current()
            {
                use async_nats::jetstream::AckKind;
                runtime.spawn(async move {
                    for acker in unread {
                        let _ = acker.ack_with(AckKind::Nak(None)).await;
                    }
                });
            }
        }
    }
}

impl Subscription {
    pub(crate) fn new(
        rx: mpsc::Receiver<Envelope>,
        lagged: Arc<AtomicU64>,
        metrics: Arc<BusMetrics>,
    ) -> Self {
        Self {
            rx,
            lagged,
            metrics,
            feeder: None,
        }
    }

    /// Ties a transport task to this subscription's life.
    #[cfg_attr(not(feature = "nats"), allow(dead_code))]
    pub(crate) fn with_feeder(mut self, feeder: JoinHandle<()>) -> Self {
        self.feeder = Some(feeder);
        self
    }

    /// The next event; `None` once the bus shut down (or the subscription's transport task
    /// ended) and the buffer is empty.
    pub async fn recv(&mut self) -> Option<Arc<CloudEvent>> {
        Some(self.rx.recv().await?.ack_now().await)
    }

    /// The next buffered event, without waiting.
    pub fn try_recv(&mut self) -> Option<Arc<CloudEvent>> {
        self.rx.try_recv().ok().map(Envelope::ack_soon)
    }

    /// Unsubscribes and waits until the transport has stopped delivering to this
    /// subscription; buffered events not taken yet are handed back to the transport for
    /// redelivery (JetStream). Dropping does the same without waiting, so a durable consumer
    /// resumed right after a drop may see an in-flight event redelivered later, out of order.
    pub async fn close(mut self) {
        if let Some(feeder) = self.feeder.take() {
            feeder.abort();
            // Cancelled, or finished: either way it no longer delivers.
            let _ = feeder.await;
        }
    }

    /// Events this subscriber missed because its buffer was full.
    pub fn lagged(&self) -> u64 {
        self.lagged.load(Ordering::Relaxed)
    }

    /// Events waiting in the buffer.
    pub fn queued(&self) -> usize {
        self.rx.len()
    }

    /// Runs `handler` on every event until the subscription ends. Errors and panics are
    /// logged (event id and type, the redacted error) and counted in the bus's
    /// `handler_errors`; successes in `handled`. Spawn it to run in the background.
    pub async fn dispatch<H: Handler>(mut self, handler: H) -> DispatchReport {
        let mut report = DispatchReport::default();
        while let Some(event) = self.recv().await {
            let outcome = AssertUnwindSafe(handler.handle(Arc::clone(&event)))
                .catch_unwind()
                .await;
            match outcome {
                Ok(Ok(())) => {
                    report.handled += 1;
                    BusMetrics::inc(&self.metrics.handled);
                }
                Ok(Err(error)) => {
                    report.failed += 1;
                    BusMetrics::inc(&self.metrics.handler_errors);
                    let error = Redactor::global().redact(&error.to_string()).into_owned();
                    tracing::warn!(event_id = %event.id, event_type = %event.event_type, %error, "event handler failed");
                }
                Err(_) => {
                    report.failed += 1;
                    BusMetrics::inc(&self.metrics.handler_errors);
                    tracing::error!(event_id = %event.id, event_type = %event.event_type, "event handler panicked");
                }
            }
        }
        report.lagged = self.lagged();
        report
    }
}

impl Stream for Subscription {
    type Item = Arc<CloudEvent>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx
            .poll_recv(cx)
            .map(|envelope| envelope.map(Envelope::ack_soon))
    }
}
