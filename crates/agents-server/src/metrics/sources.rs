//! Numbers other crates own, read at scrape time: the bus counters and audit write errors.
//!
//! The bus keeps its own atomics ([`agents_bus::BusMetrics`]); copying them into this registry
//! on a timer would show stale numbers and cost work when nobody scrapes. A collector asks the
//! registered callback on every scrape instead.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// Returns the bus counters as `(name, value)` pairs, like `BusMetricsSnapshot::pairs`.
pub(super) type BusSource = Arc<dyn Fn() -> Vec<(&'static str, u64)> + Send + Sync>;

/// Returns one counter's current value.
pub(super) type CountSource = Arc<dyn Fn() -> u64 + Send + Sync>;

/// The callbacks, set by the server once its bus and audit log exist.
#[derive(Default)]
pub(super) struct Sources {
    bus: RwLock<Option<BusSource>>,
    audit_write_errors: RwLock<Option<CountSource>>,
}

impl fmt::Debug for Sources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sources")
            .field("bus", &read(&self.bus).is_some())
            .field(
                "audit_write_errors",
                &read(&self.audit_write_errors).is_some(),
            )
            .finish()
    }
}

impl Sources {
    pub(super) fn set_bus(&self, source: BusSource) {
        *self.bus.write().unwrap_or_else(PoisonError::into_inner) = Some(source);
    }

    pub(super) fn set_audit_write_errors(&self, source: CountSource) {
        *self
            .audit_write_errors
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(source);
    }
}

/// Clones the callback out, so it runs without the lock held: a callback that itself set a
/// source would otherwise deadlock.
fn read<T: ?Sized>(slot: &RwLock<Option<Arc<T>>>) -> Option<Arc<T>> {
    slot.read().unwrap_or_else(PoisonError::into_inner).clone()
}

/// Encodes [`Sources`] on each scrape, under the registry's `agents_` prefix.
#[derive(Debug)]
pub(super) struct SourceCollector(pub(super) Arc<Sources>);

impl Collector for SourceCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> fmt::Result {
        if let Some(bus) = read(&self.0.bus) {
            let mut seen = BTreeSet::new();
            for (name, value) in bus() {
                // A duplicate or malformed name would make the whole exposition invalid.
                if !valid_name(name) || !seen.insert(name) {
                    continue;
                }
                let family = format!("bus_{name}");
                let help = bus_help(name);
                if is_gauge(name) {
                    let gauge = ConstGauge::new(value);
                    let metric =
                        encoder.encode_descriptor(&family, &help, None, gauge.metric_type())?;
                    gauge.encode(metric)?;
                } else {
                    let counter = ConstCounter::new(value);
                    let metric =
                        encoder.encode_descriptor(&family, &help, None, counter.metric_type())?;
                    counter.encode(metric)?;
                }
            }
        }
        if let Some(audit) = read(&self.0.audit_write_errors) {
            let counter = ConstCounter::new(audit());
            let metric = encoder.encode_descriptor(
                "audit_write_errors",
                "Audit log appends that failed: an event the audit trail is missing.",
                None,
                counter.metric_type(),
            )?;
            counter.encode(metric)?;
        }
        Ok(())
    }
}

/// Bus numbers that go up and down; every other bus number only grows.
fn is_gauge(name: &str) -> bool {
    name.ends_with("_depth")
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// What each `BusMetrics` counter tells an operator; unknown names get a generic text.
fn bus_help(name: &str) -> String {
    let known = match name {
        "published" => "Events a bus publish accepted",
        "publish_errors" => "Bus publishes that failed",
        "delivered" => "Events put into a subscriber's buffer",
        "lagged" => "Events a subscriber missed because its buffer was full",
        "handled" => "Events subscription handlers processed without error",
        "handler_errors" => "Events a subscription handler failed on",
        "sink_dropped" => "Events the event sink dropped because its queue was full or closed",
        "decode_errors" => "Events from the transport that were not valid CloudEvents",
        "audit_appended" => "Lines appended to the audit log",
        "audit_fsyncs" => "fsync calls made by the audit log",
        "audit_rotations" => "Audit files started because of the day or size limit",
        "audit_repaired" => "Torn last lines removed from the audit log at start",
        "outbox_enqueued" => "Events written to the outbox while the transport was unreachable",
        "outbox_resent" => "Outbox events the transport has since acknowledged",
        "outbox_dropped" => "Events dropped because the outbox was full",
        "outbox_depth" => "Events waiting in the outbox now",
        "tasks_submitted" => "Tasks submitted to the task queue",
        "tasks_dead_lettered" => "Tasks moved to the dead-letter subject",
        _ => return format!("Bus counter {name}, read from the bus at scrape time."),
    };
    format!("{known}.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_metric_safe_names_are_exported() {
        assert!(valid_name("outbox_depth"));
        for bad in ["", "Published", "a-b", "a b", "a{b}", "é"] {
            assert!(!valid_name(bad), "{bad}");
        }
        assert!(is_gauge("outbox_depth") && !is_gauge("outbox_dropped"));
    }
}
