//! Counters of everything the bus accepts, hands out and drops.
//!
//! Every queue in the crate is bounded, and a bound that silently drops is a hidden outage: an
//! operator must see that a subscriber lags, that the sink queue overflowed or that the outbox
//! is full. So each of those paths bumps a counter here; the server exports a
//! [`BusMetrics::snapshot`] to Prometheus. Counters hold numbers only, never event data.
//!
//! Relaxed atomics are enough: each counter is read on its own, and a scrape that sees one
//! counter a few events ahead of another is still a true picture of the moment.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

macro_rules! metrics {
    ($($(#[doc = $doc:literal])+ $name:ident,)+) => {
        /// The bus's counters. Share one between buses with `Arc` to get one set of numbers.
        #[derive(Debug, Default)]
        pub struct BusMetrics {
            $($(#[doc = $doc])+ pub(crate) $name: AtomicU64,)+
        }

        /// A copy of [`BusMetrics`] at one moment.
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
        #[non_exhaustive]
        pub struct BusMetricsSnapshot {
            $($(#[doc = $doc])+ pub $name: u64,)+
        }

        impl BusMetrics {
            /// Reads every counter.
            pub fn snapshot(&self) -> BusMetricsSnapshot {
                BusMetricsSnapshot {
                    $($name: self.$name.load(Ordering::Relaxed),)+
                }
            }
        }

        impl BusMetricsSnapshot {
            /// Every counter as `(name, value)`, in declaration order, for exporters.
            pub fn pairs(&self) -> Vec<(&'static str, u64)> {
                vec![$((stringify!($name), self.$name),)+]
            }
        }
    };
}

metrics! {
    /// Events a publish accepted (delivered, written, acknowledged or put in the outbox).
    published,
    /// Publishes that returned an error.
    publish_errors,
    /// Events put into a subscriber's buffer.
    delivered,
    /// Events a subscriber missed because its buffer was full.
    lagged,
    /// Events a subscription handler processed without error.
    handled,
    /// Events a subscription handler failed on (error or panic).
    handler_errors,
    /// Events the non-blocking `EventSink` dropped because its queue was full or closed.
    sink_dropped,
    /// Events received from the transport that were not valid CloudEvents.
    decode_errors,
    /// Lines appended to the audit log.
    audit_appended,
    /// fsync calls made by the audit log.
    audit_fsyncs,
    /// Audit files started because of the day or size limit.
    audit_rotations,
    /// Torn last lines removed from the audit log at start.
    audit_repaired,
    /// Events written to the outbox while the transport was unreachable.
    outbox_enqueued,
    /// Events from the outbox the transport has since acknowledged.
    outbox_resent,
    /// Events dropped because the outbox was full.
    outbox_dropped,
    /// Events in the outbox now (a gauge).
    outbox_depth,
    /// Events a `Tee` mirror failed to publish (the primary's outcome is what the caller got).
    mirror_errors,
    /// Tasks submitted to the task queue.
    tasks_submitted,
    /// Tasks the task queue refused because it was full (its `max_bytes`): back-pressure,
    /// answered as [`Error::Full`](crate::Error::Full).
    tasks_refused_full,
    /// Tasks moved to the dead-letter subject after their last delivery failed.
    tasks_dead_lettered,
    /// Deliveries of a task after its first (a worker failed it, gave it back or was lost).
    tasks_redelivered,
    /// Deliveries acknowledged without running, because the task's effect was already recorded.
    tasks_skipped,
    /// Tasks waiting for or held by this process's agents' workers, at the last count (a gauge).
    tasks_queue_depth,
}

impl BusMetrics {
    /// A zeroed set of counters.
    pub fn new() -> Self {
        Self::default()
    }

    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn inc(counter: &AtomicU64) {
        Self::add(counter, 1);
    }

    #[cfg_attr(not(feature = "nats"), allow(dead_code))]
    pub(crate) fn set(counter: &AtomicU64, n: u64) {
        counter.store(n, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_reads_every_counter() {
        let metrics = BusMetrics::new();
        BusMetrics::inc(&metrics.published);
        BusMetrics::add(&metrics.lagged, 5);
        BusMetrics::set(&metrics.outbox_depth, 9);
        let snapshot = metrics.snapshot();
        assert_eq!(snapshot.published, 1);
        assert_eq!(snapshot.lagged, 5);
        assert_eq!(snapshot.outbox_depth, 9);
        let pairs = snapshot.pairs();
        assert_eq!(pairs[0], ("published", 1));
        assert!(pairs.contains(&("lagged", 5)));
        assert_eq!(pairs.len(), 23);
    }
}
