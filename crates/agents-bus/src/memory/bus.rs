use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use agents_core::{CloudEvent, EventSink, async_trait};
use tokio::sync::mpsc::{self, error::TrySendError};

use super::InProcessConfig;
use crate::bus::Envelope;
use crate::{BusMetrics, Delivery, Error, EventBus, Subscription, TypeFilter, edge};

/// Fans events out to subscribers in this process. Clones share one bus.
///
/// Publishing never waits: see the [module docs](crate#in-process-bus). It also implements
/// [`EventSink`], so agents and providers can emit into it directly.
#[derive(Debug, Clone)]
pub struct InProcessBus {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: InProcessConfig,
    metrics: Arc<BusMetrics>,
    subscribers: RwLock<Vec<Subscriber>>,
    closed: AtomicBool,
}

#[derive(Debug)]
struct Subscriber {
    filter: TypeFilter,
    tx: mpsc::Sender<Envelope>,
    lagged: Arc<AtomicU64>,
}

impl InProcessBus {
    /// A bus with its own counters.
    pub fn new(config: InProcessConfig) -> Result<Self, Error> {
        Self::with_metrics(config, Arc::new(BusMetrics::new()))
    }

    /// A bus counting into `metrics`, e.g. shared with other buses.
    pub fn with_metrics(config: InProcessConfig, metrics: Arc<BusMetrics>) -> Result<Self, Error> {
        config.validate()?;
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                metrics,
                subscribers: RwLock::new(Vec::new()),
                closed: AtomicBool::new(false),
            }),
        })
    }

    /// Publishes without awaiting anything: the same as [`EventBus::publish`], for callers
    /// that are not async.
    pub fn publish_now(&self, event: CloudEvent) -> Result<Delivery, Error> {
        let inner = &self.inner;
        if inner.closed.load(Ordering::Acquire) {
            BusMetrics::inc(&inner.metrics.publish_errors);
            return Err(Error::Closed);
        }
        // Nobody to deliver to (the usual case in the server, whose in-process bus mirrors the
        // audit log): redacting and sharing the event would be thrown away.
        let wanted = inner
            .subscribers
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .any(|subscriber| subscriber.filter.matches(&event.event_type));
        if !wanted {
            BusMetrics::inc(&inner.metrics.published);
            return Ok(Delivery::Accepted);
        }
        let event = Arc::new(edge::redact(event));
        let mut stale = false;
        {
            let subscribers = inner
                .subscribers
                .read()
                .unwrap_or_else(PoisonError::into_inner);
            for subscriber in subscribers.iter() {
                if !subscriber.filter.matches(&event.event_type) {
                    continue;
                }
                match subscriber.tx.try_send(Envelope::plain(Arc::clone(&event))) {
                    Ok(()) => BusMetrics::inc(&inner.metrics.delivered),
                    Err(TrySendError::Full(_)) => {
                        subscriber.lagged.fetch_add(1, Ordering::Relaxed);
                        BusMetrics::inc(&inner.metrics.lagged);
                    }
                    Err(TrySendError::Closed(_)) => stale = true,
                }
            }
        }
        if stale {
            self.prune();
        }
        BusMetrics::inc(&inner.metrics.published);
        Ok(Delivery::Accepted)
    }

    /// Subscribes without awaiting anything: the same as [`EventBus::subscribe`].
    pub fn subscribe_now(&self, filter: TypeFilter) -> Result<Subscription, Error> {
        let inner = &self.inner;
        let mut subscribers = inner
            .subscribers
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        // Checked under the write lock so a subscribe racing a shutdown cannot outlive it.
        if inner.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        if subscribers.len() >= inner.config.max_subscribers {
            subscribers.retain(|s| !s.tx.is_closed());
        }
        if subscribers.len() >= inner.config.max_subscribers {
            return Err(Error::Full {
                queue: "subscriber list",
                limit: inner.config.max_subscribers as u64,
                unit: "subscribers",
            });
        }
        let (tx, rx) = mpsc::channel(inner.config.subscriber_buffer);
        let lagged = Arc::new(AtomicU64::new(0));
        subscribers.push(Subscriber {
            filter,
            tx,
            lagged: Arc::clone(&lagged),
        });
        Ok(Subscription::new(rx, lagged, Arc::clone(&inner.metrics)))
    }

    /// Live subscribers.
    pub fn subscriber_count(&self) -> usize {
        self.prune();
        self.inner
            .subscribers
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Stops publishing and ends every subscription once its buffer is drained.
    pub fn close(&self) {
        let mut subscribers = self
            .inner
            .subscribers
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        self.inner.closed.store(true, Ordering::Release);
        subscribers.clear();
    }

    fn prune(&self) {
        self.inner
            .subscribers
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|s| !s.tx.is_closed());
    }
}

#[async_trait]
impl EventBus for InProcessBus {
    async fn publish(&self, event: CloudEvent) -> Result<Delivery, Error> {
        self.publish_now(event)
    }

    async fn subscribe(&self, filter: TypeFilter) -> Result<Subscription, Error> {
        self.subscribe_now(filter)
    }

    async fn shutdown(&self) -> Result<(), Error> {
        self.close();
        Ok(())
    }

    fn metrics(&self) -> Arc<BusMetrics> {
        Arc::clone(&self.inner.metrics)
    }
}

impl EventSink for InProcessBus {
    /// Publishes without blocking; an event emitted after shutdown is counted in
    /// `sink_dropped`.
    fn emit(&self, event: CloudEvent) {
        if self.publish_now(event).is_err() {
            BusMetrics::inc(&self.inner.metrics.sink_dropped);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use agents_core::{AgentStarted, CircuitOpened, TaskQueued};
    use futures_util::{FutureExt, StreamExt};

    use super::*;

    fn bus(buffer: usize) -> InProcessBus {
        InProcessBus::new(InProcessConfig::default().with_subscriber_buffer(buffer)).unwrap()
    }

    #[tokio::test]
    async fn filters_route_and_order_is_kept() {
        let bus = bus(16);
        let mut agents = bus.subscribe(TypeFilter::prefix("agent.")).await.unwrap();
        let mut all = bus.subscribe(TypeFilter::all()).await.unwrap();
        for i in 0..3 {
            let event = CloudEvent::new("/a", &AgentStarted::default()).with_id(format!("a{i}"));
            bus.publish(event).await.unwrap();
            bus.publish(CloudEvent::new("/p", &CircuitOpened::default()))
                .await
                .unwrap();
        }
        let ids: Vec<_> = (0..3)
            .map(|_| agents.try_recv().unwrap().id.clone())
            .collect();
        assert_eq!(ids, ["a0", "a1", "a2"]);
        assert!(agents.try_recv().is_none());
        assert_eq!(all.queued(), 6);
        assert_eq!(all.next().await.unwrap().id, "a0");
        let m = bus.metrics().snapshot();
        assert_eq!((m.published, m.delivered, m.lagged), (6, 9, 0));
    }

    #[tokio::test]
    async fn dropped_subscribers_are_pruned_and_limits_hold() {
        let bus = InProcessBus::new(InProcessConfig::default().with_max_subscribers(2)).unwrap();
        let first = bus.subscribe_now(TypeFilter::all()).unwrap();
        let _second = bus.subscribe_now(TypeFilter::all()).unwrap();
        let refused = bus.subscribe_now(TypeFilter::all()).unwrap_err();
        assert!(matches!(refused, Error::Full { limit: 2, .. }), "{refused}");
        drop(first);
        bus.publish_now(CloudEvent::new("/a", &TaskQueued::default()))
            .unwrap();
        assert_eq!(bus.subscriber_count(), 1);
        drop(bus.subscribe_now(TypeFilter::all()).unwrap());
        assert!(bus.subscribe_now(TypeFilter::all()).is_ok());
    }

    #[tokio::test]
    async fn shutdown_drains_then_ends_and_refuses() {
        let bus = bus(4);
        let mut sub = bus.subscribe_now(TypeFilter::all()).unwrap();
        bus.emit(CloudEvent::new("/a", &TaskQueued::default()));
        bus.shutdown().await.unwrap();
        bus.shutdown().await.unwrap();
        assert!(sub.recv().await.is_some());
        assert!(sub.recv().await.is_none());
        let refused = bus
            .publish(CloudEvent::new("/a", &TaskQueued::default()))
            .await;
        assert!(matches!(refused, Err(Error::Closed)));
        assert!(matches!(
            bus.subscribe(TypeFilter::all()).await,
            Err(Error::Closed)
        ));
        bus.emit(CloudEvent::new("/a", &TaskQueued::default()));
        let m = bus.metrics().snapshot();
        assert_eq!((m.sink_dropped, m.publish_errors), (1, 2));
    }

    #[test]
    fn publish_never_waits_even_when_a_subscriber_is_full() {
        let bus = bus(1);
        let slow = bus.subscribe_now(TypeFilter::all()).unwrap();
        for _ in 0..10 {
            let publish = bus.publish(CloudEvent::new("/a", &TaskQueued::default()));
            assert!(matches!(
                publish.now_or_never(),
                Some(Ok(Delivery::Accepted))
            ));
        }
        assert_eq!(slow.lagged(), 9);
        assert_eq!(bus.metrics().snapshot().lagged, 9);
    }

    #[test]
    fn bad_config_is_refused() {
        let error = InProcessBus::new(InProcessConfig::default().with_subscriber_buffer(0));
        assert!(matches!(error, Err(Error::Config(_))));
    }
}
