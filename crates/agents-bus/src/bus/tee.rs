//! One bus made of several: the primary transport plus mirrors such as the audit log.
//!
//! The server publishes every event once; the tee writes it to each bus, so the audit trail
//! cannot miss an event that subscribers saw, and a failing mirror does not stop the others.

use std::sync::Arc;

use agents_core::{CloudEvent, async_trait};

use super::{Delivery, EventBus, Subscription};
use crate::{BusMetrics, Error, TypeFilter};

/// Publishes to every mirror, then to the primary bus; subscribes on the primary.
///
/// Mirrors come first so that the audit log holds an event before any subscriber can act on
/// it.
#[derive(Debug, Clone)]
pub struct Tee {
    primary: Arc<dyn EventBus>,
    mirrors: Vec<Arc<dyn EventBus>>,
}

impl Tee {
    /// A tee over `primary` and `mirrors`.
    pub fn new(primary: Arc<dyn EventBus>, mirrors: Vec<Arc<dyn EventBus>>) -> Self {
        Self { primary, mirrors }
    }
}

#[async_trait]
impl EventBus for Tee {
    /// Publishes to every bus in turn, even after one failed. Returns the primary's delivery,
    /// or the first error of any bus.
    async fn publish(&self, event: CloudEvent) -> Result<Delivery, Error> {
        let mut first_error = None;
        for mirror in &self.mirrors {
            if let Err(error) = mirror.publish(event.clone()).await {
                first_error.get_or_insert(error);
            }
        }
        let delivery = self.primary.publish(event).await;
        match first_error {
            Some(error) => Err(error),
            None => delivery,
        }
    }

    async fn subscribe(&self, filter: TypeFilter) -> Result<Subscription, Error> {
        self.primary.subscribe(filter).await
    }

    /// Shuts every bus down; returns the first error.
    async fn shutdown(&self) -> Result<(), Error> {
        let mut result = self.primary.shutdown().await;
        for mirror in &self.mirrors {
            let shut = mirror.shutdown().await;
            if result.is_ok() {
                result = shut;
            }
        }
        result
    }

    /// The primary's counters.
    fn metrics(&self) -> Arc<BusMetrics> {
        self.primary.metrics()
    }
}
