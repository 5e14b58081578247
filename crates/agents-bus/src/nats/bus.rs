use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use agents_core::{CloudEvent, async_trait};
use async_nats::connection::State;
use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::{self, consumer};
use async_nats::{Client, ConnectOptions};
use tokio::sync::Notify;
use tokio::task::{AbortHandle, JoinHandle};

use super::stream::{self, NotReady};
use super::{NatsConfig, consumer as feed, drain};
use crate::filter::is_subject_tail;
use crate::outbox::{Entry, Outbox};
use crate::{BusMetrics, Delivery, Error, EventBus, Subscription, TypeFilter, edge};

/// Events through NATS JetStream, with a file-backed outbox for outages (see the
/// [crate docs](crate#jetstream)). Clones share one connection and one outbox.
#[derive(Debug, Clone)]
pub struct NatsBus {
    shared: Arc<Shared>,
}

/// The state of the event stream on the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct StreamStats {
    /// Events stored.
    pub messages: u64,
    /// Bytes stored.
    pub bytes: u64,
    /// Sequence of the oldest stored event.
    pub first_sequence: u64,
    /// Sequence of the newest stored event.
    pub last_sequence: u64,
    /// Consumers of the stream.
    pub consumers: usize,
}

pub(crate) struct Shared {
    pub(crate) client: Client,
    pub(crate) js: jetstream::Context,
    pub(crate) config: NatsConfig,
    pub(crate) metrics: Arc<BusMetrics>,
    outbox: Mutex<Outbox>,
    /// Held by a publish from its "is the outbox empty?" check through its direct send to the
    /// outbox write if that send fails, so that no publish can be stored while an earlier one
    /// is still on its way to the outbox (see the [module docs](super)). Fair (FIFO), so
    /// publishers are served in the order they arrived.
    send_order: tokio::sync::Mutex<()>,
    /// Wakes the drainer when the outbox gets an event, the bus closes or is dropped.
    pub(crate) wake: Arc<Notify>,
    closed: AtomicBool,
    stream_ready: AtomicBool,
    /// Whether "outbox full" was logged since it last had room.
    full: AtomicBool,
    drainer: Mutex<Option<JoinHandle<()>>>,
    feeders: Mutex<Vec<AbortHandle>>,
}

impl std::fmt::Debug for Shared {
    // By hand: the connection's and the outbox's own `Debug` would print server details and
    // every waiting event; the config's masks the credentials in its URL.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("config", &self.config)
            .field("connected", &self.connected())
            .field("stream_ready", &self.stream_ready())
            .field("closed", &self.is_closed())
            // `try_lock`: formatting must not wait for (or deadlock on) an outbox write.
            .field("outbox_len", &self.outbox.try_lock().ok().map(|o| o.len()))
            .finish_non_exhaustive()
    }
}

/// Why a send to JetStream failed.
#[derive(Debug)]
pub(crate) enum SendError {
    /// Worth retrying (timeout, connection, missing stream): the event goes to the outbox.
    Retry(Error),
    /// Never accepted (too big for the server): retrying cannot help.
    Never(Error),
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Critical sections leave the outbox consistent at every step (file first, then memory).
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Reconnect pause: 0 for the first attempt, then doubling from 10 ms up to `max`.
pub(crate) fn retry_delay(attempt: usize, max: Duration) -> Duration {
    match attempt {
        0 | 1 => Duration::ZERO,
        n => Duration::from_millis(10u64.saturating_mul(1 << (n - 2).min(16))).min(max),
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // Lets the drainer see that the bus is gone.
        self.wake.notify_one();
    }
}

impl Shared {
    pub(crate) fn subject(&self, event_type: &str) -> String {
        format!("{}.{event_type}", self.config.subject_prefix)
    }

    pub(crate) fn connected(&self) -> bool {
        self.client.connection_state() == State::Connected
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    pub(crate) fn stream_ready(&self) -> bool {
        self.stream_ready.load(Ordering::Acquire)
    }

    /// Creates or updates the stream; remembers success.
    pub(crate) async fn ensure_stream(&self) -> Result<(), NotReady> {
        stream::ensure(&self.js, &self.config).await?;
        self.stream_ready.store(true, Ordering::Release);
        Ok(())
    }

    /// Publishes one event and waits for the stream's ack, within the publish timeout.
    pub(crate) async fn send(&self, entry: &Entry) -> Result<Delivery, SendError> {
        let publish = PublishMessage::build()
            .payload(entry.payload.clone().into())
            .message_id(&entry.id);
        let subject = self.subject(&entry.event_type);
        let attempt = async {
            let ack = self.js.send_publish(subject, publish).await?;
            ack.await
        };
        let timeout = self.config.publish_timeout();
        match tokio::time::timeout(timeout, attempt).await {
            Ok(Ok(ack)) if ack.duplicate => Ok(Delivery::Duplicate),
            Ok(Ok(_)) => Ok(Delivery::Accepted),
            Ok(Err(error)) => {
                let wrapped = Error::transport("publish to JetStream", &error);
                match error.kind() {
                    PublishErrorKind::MaxPayloadExceeded => Err(SendError::Never(wrapped)),
                    PublishErrorKind::StreamNotFound => {
                        self.stream_ready.store(false, Ordering::Release);
                        Err(SendError::Retry(wrapped))
                    }
                    _ => Err(SendError::Retry(wrapped)),
                }
            }
            Err(_) => Err(SendError::Retry(Error::Timeout {
                operation: "JetStream publish ack",
                after_ms: timeout.as_millis() as u64,
            })),
        }
    }

    pub(crate) fn outbox_front(&self) -> Option<Entry> {
        lock(&self.outbox).front().cloned()
    }

    pub(crate) fn outbox_len(&self) -> usize {
        lock(&self.outbox).len()
    }

    /// Removes the front event after it was acknowledged (or refused for good).
    pub(crate) fn outbox_pop(&self) {
        let mut outbox = lock(&self.outbox);
        if let Err(error) = outbox.pop() {
            tracing::error!(%error, "outbox: could not record a sent event; it may be sent again");
        }
        if outbox.has_room(0) && self.full.swap(false, Ordering::AcqRel) {
            tracing::info!("outbox has room again");
        }
    }

    fn enqueue(&self, entry: Entry) -> Result<Delivery, Error> {
        let pushed = lock(&self.outbox).push(entry);
        match pushed {
            Ok(()) => {
                self.wake.notify_one();
                Ok(Delivery::Outboxed)
            }
            Err(error) => {
                if let Error::Full { .. } = error {
                    BusMetrics::inc(&self.metrics.outbox_dropped);
                    if !self.full.swap(true, Ordering::AcqRel) {
                        tracing::error!(%error, "outbox full: events are being dropped until NATS is reachable");
                    }
                }
                Err(error)
            }
        }
    }

    async fn publish(&self, event: CloudEvent) -> Result<Delivery, Error> {
        if self.is_closed() {
            return Err(Error::Closed);
        }
        let event = edge::redact(event);
        if !is_subject_tail(&event.event_type) {
            return Err(Error::InvalidEvent {
                reason: "the event type is not a valid NATS subject (empty token, wildcard or space)",
            });
        }
        if event.id.is_empty() {
            return Err(Error::InvalidEvent {
                reason: "the event has an empty id",
            });
        }
        let entry = Entry {
            payload: edge::encode(&event)?,
            id: event.id,
            event_type: event.event_type,
        };
        // Direct only while nothing waits in the outbox: events never overtake older ones.
        // Check, send and (on failure) enqueue are one critical section: a publisher that
        // checked the outbox while another's send was failing would otherwise be stored
        // before the other's event reaches the outbox.
        let _order = self.send_order.lock().await;
        if self.is_closed() {
            return Err(Error::Closed);
        }
        if self.stream_ready() && self.connected() && lock(&self.outbox).is_empty() {
            match self.send(&entry).await {
                Ok(delivery) => return Ok(delivery),
                Err(SendError::Never(error)) => return Err(error),
                Err(SendError::Retry(error)) => {
                    tracing::warn!(%error, "NATS publish failed; events go to the outbox until it is back");
                }
            }
        }
        self.enqueue(entry)
    }
}

impl NatsBus {
    /// Connects to `config.url` and creates or updates the event stream. An unreachable
    /// server is not an error: events go to the outbox until it is reachable. A server that
    /// refuses the stream configuration is.
    pub async fn connect(config: NatsConfig) -> Result<Self, Error> {
        Self::connect_with_metrics(config, Arc::new(BusMetrics::new())).await
    }

    /// Like [`connect`](Self::connect), counting into `metrics`.
    pub async fn connect_with_metrics(
        config: NatsConfig,
        metrics: Arc<BusMetrics>,
    ) -> Result<Self, Error> {
        config.validate()?;
        let max_delay = config.max_retry_delay();
        let client = ConnectOptions::new()
            .name("agents-bus")
            .retry_on_initial_connect()
            .connection_timeout(Duration::from_millis(config.connect_timeout_ms))
            .request_timeout(Some(config.publish_timeout()))
            .reconnect_delay_callback(move |attempt| retry_delay(attempt, max_delay))
            .connect(config.url.as_str())
            .await
            // The kind only: the full error can quote the URL, which may hold credentials.
            .map_err(|e| Error::transport("connect to NATS", &e.kind()))?;
        Self::with_client(client, config, metrics).await
    }

    /// Uses an existing connection (e.g. shared with the task queue).
    pub async fn with_client(
        client: Client,
        config: NatsConfig,
        metrics: Arc<BusMetrics>,
    ) -> Result<Self, Error> {
        config.validate()?;
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| Error::NoRuntime { what: "NATS bus" })?;
        let outbox = Outbox::open(config.outbox.clone(), Arc::clone(&metrics))?;
        let js = jetstream::ContextBuilder::new()
            .timeout(config.publish_timeout())
            .build(client.clone());
        let shared = Arc::new(Shared {
            client,
            js,
            config,
            metrics,
            outbox: Mutex::new(outbox),
            send_order: tokio::sync::Mutex::new(()),
            wake: Arc::new(Notify::new()),
            closed: AtomicBool::new(false),
            stream_ready: AtomicBool::new(false),
            full: AtomicBool::new(false),
            drainer: Mutex::new(None),
            feeders: Mutex::new(Vec::new()),
        });
        match shared.ensure_stream().await {
            Ok(()) => {}
            Err(NotReady::Refused(error)) => return Err(error),
            Err(NotReady::Unreachable(error)) => {
                tracing::warn!(%error, "NATS is not reachable yet; events go to the outbox until it is");
            }
        }
        let drainer = runtime.spawn(drain::run(Arc::downgrade(&shared)));
        *lock(&shared.drainer) = Some(drainer);
        shared.wake.notify_one();
        Ok(Self { shared })
    }

    /// The connection, for other users such as the task queue.
    pub fn client(&self) -> Client {
        self.shared.client.clone()
    }

    /// Whether the connection to NATS is up now.
    pub fn is_connected(&self) -> bool {
        self.shared.connected()
    }

    /// Events waiting in the outbox.
    pub fn outbox_len(&self) -> usize {
        self.shared.outbox_len()
    }

    /// What the server holds in the event stream.
    pub async fn stream_stats(&self) -> Result<StreamStats, Error> {
        let name = &self.shared.config.stream.name;
        let mut stream = self
            .shared
            .js
            .get_stream(name)
            .await
            .map_err(|e| Error::transport("get the event stream", &e))?;
        let state = &stream
            .info()
            .await
            .map_err(|e| Error::transport("read the event stream", &e))?
            .state;
        Ok(StreamStats {
            messages: state.messages,
            bytes: state.bytes,
            first_sequence: state.first_sequence,
            last_sequence: state.last_sequence,
            consumers: state.consumer_count,
        })
    }

    /// Follows the stream through the durable consumer `name`: from the first stored event
    /// the first time, from where it stopped afterwards (across restarts of either side).
    /// An event is acknowledged when the subscriber takes it from the subscription; events
    /// still buffered when the subscription is dropped are handed back for redelivery. While
    /// the buffer is full the consumer waits, so nothing is dropped: the stream holds the
    /// backlog. Buffered events get in-progress acks every third of `ack_wait_ms`, so a slow
    /// subscriber does not get them twice.
    pub async fn subscribe_durable(
        &self,
        name: &str,
        filter: TypeFilter,
    ) -> Result<Subscription, Error> {
        let valid = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !valid {
            return Err(agents_core::ConfigError::new(
                "durable",
                "a durable consumer name must be letters, digits, `_` and `-`",
            )
            .into());
        }
        let config = consumer::pull::Config {
            durable_name: Some(name.to_owned()),
            deliver_policy: consumer::DeliverPolicy::All,
            ..self.consumer_config(&filter)
        };
        self.subscribe_with(config, filter).await
    }

    fn consumer_config(&self, filter: &TypeFilter) -> consumer::pull::Config {
        consumer::pull::Config {
            filter_subject: filter.nats_subject(&self.shared.config.subject_prefix),
            ack_policy: consumer::AckPolicy::Explicit,
            // No more unacknowledged than the buffer holds: an event waiting outside it (in
            // the client's pull batch) would get no in-progress ack and be delivered again.
            max_ack_pending: self.shared.config.subscriber_buffer as i64,
            ack_wait: Duration::from_millis(self.shared.config.ack_wait_ms),
            ..Default::default()
        }
    }

    async fn subscribe_with(
        &self,
        config: consumer::pull::Config,
        filter: TypeFilter,
    ) -> Result<Subscription, Error> {
        let shared = &self.shared;
        if shared.is_closed() {
            return Err(Error::Closed);
        }
        if !shared.stream_ready() {
            shared.ensure_stream().await.map_err(|e| match e {
                NotReady::Refused(e) | NotReady::Unreachable(e) => e,
            })?;
        }
        let subscription = feed::start(Arc::clone(shared), config, filter).await?;
        let mut feeders = lock(&shared.feeders);
        feeders.retain(|f| !f.is_finished());
        if let Some(feeder) = subscription.1 {
            feeders.push(feeder);
        }
        Ok(subscription.0)
    }
}

#[async_trait]
impl EventBus for NatsBus {
    /// Publishes to `agents.events.<type>` and waits for the stream's ack; while NATS is
    /// unreachable (or anything waits in the outbox), writes the event to the outbox instead.
    async fn publish(&self, event: CloudEvent) -> Result<Delivery, Error> {
        let result = self.shared.publish(event).await;
        let counter = match &result {
            Ok(_) => &self.shared.metrics.published,
            Err(_) => &self.shared.metrics.publish_errors,
        };
        BusMetrics::inc(counter);
        result
    }

    /// New events only, through an ephemeral consumer the server removes once the
    /// subscription is gone; see [`NatsBus::subscribe_durable`] to resume or replay.
    async fn subscribe(&self, filter: TypeFilter) -> Result<Subscription, Error> {
        let config = consumer::pull::Config {
            deliver_policy: consumer::DeliverPolicy::New,
            inactive_threshold: Duration::from_secs(60),
            ..self.consumer_config(&filter)
        };
        self.subscribe_with(config, filter).await
    }

    /// Refuses new publishes, gives the outbox up to `shutdown_timeout_ms` to drain (what is
    /// left stays on disk for the next start), ends the subscriptions and flushes.
    async fn shutdown(&self) -> Result<(), Error> {
        let shared = &self.shared;
        if shared.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        shared.wake.notify_one();
        let timeout = Duration::from_millis(shared.config.shutdown_timeout_ms);
        let drainer = lock(&shared.drainer).take();
        if let Some(drainer) = drainer {
            let abort = drainer.abort_handle();
            if tokio::time::timeout(timeout, drainer).await.is_err() {
                abort.abort();
                tracing::warn!(
                    events = shared.outbox_len(),
                    dir = %lock(&shared.outbox).dir().display(),
                    "outbox not drained at shutdown; the events stay on disk and are sent by the next start"
                );
            }
        }
        for feeder in lock(&shared.feeders).drain(..) {
            feeder.abort();
        }
        if tokio::time::timeout(timeout, shared.client.flush())
            .await
            .is_err()
        {
            tracing::debug!("NATS flush at shutdown timed out");
        }
        lock(&shared.outbox).sync()
    }

    fn metrics(&self) -> Arc<BusMetrics> {
        Arc::clone(&self.shared.metrics)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delays_grow_to_the_cap() {
        let max = Duration::from_millis(500);
        let delays: Vec<_> = (0..12).map(|n| retry_delay(n, max).as_millis()).collect();
        assert_eq!(delays[..8], [0, 0, 10, 20, 40, 80, 160, 320]);
        assert!(delays[8..].iter().all(|&d| d == 500));
        assert_eq!(retry_delay(usize::MAX, max), max);
    }
}
