//! One bus made of several: the primary transport plus mirrors such as the audit log.
//!
//! The server publishes every event once; the tee writes it to each bus, so the audit trail
//! cannot miss an event that subscribers saw, and a failing mirror does not stop the others.
//!
//! The primary's outcome is the publish's outcome. A caller that retries a failed publish
//! must not write the primary twice because a mirror failed, so a mirror's failure is
//! counted (`mirror_errors` in the primary's [`BusMetrics`]) and logged, not returned.

use std::sync::Arc;

use agents_core::{CloudEvent, Redactor, async_trait};

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
    /// Publishes to every bus in turn, even after one failed, and returns the primary's
    /// outcome. A mirror's failure is counted in `mirror_errors` and logged (redacted).
    async fn publish(&self, event: CloudEvent) -> Result<Delivery, Error> {
        for (mirror_index, mirror) in self.mirrors.iter().enumerate() {
            if let Err(error) = mirror.publish(event.clone()).await {
                BusMetrics::inc(&self.primary.metrics().mirror_errors);
                let error = Redactor::global().redact(&error.to_string()).into_owned();
                tracing::warn!(
                    mirror_index,
                    event_id = %event.id,
                    event_type = %event.event_type,
                    %error,
                    "tee: a mirror failed to publish the event; the primary still gets it"
                );
            }
        }
        self.primary.publish(event).await
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
