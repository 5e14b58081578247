//! Numbers other crates own, read at scrape time: the bus counters, audit write errors,
//! providers' concurrency quotas and the code-facts cache.
//!
//! The bus keeps its own atomics ([`agents_bus::BusMetrics`]); copying them into this registry
//! on a timer would show stale numbers and cost work when nobody scrapes. A collector asks the
//! registered callback on every scrape instead.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use super::bounded::label_value;

/// Returns the bus counters as `(name, value)` pairs, like `BusMetricsSnapshot::pairs`.
pub(super) type BusSource = Arc<dyn Fn() -> Vec<(&'static str, u64)> + Send + Sync>;

/// Returns one counter's current value.
pub(super) type CountSource = Arc<dyn Fn() -> u64 + Send + Sync>;

/// Returns the facts cache's numbers as they are now.
pub(super) type FactsCacheSource = Arc<dyn Fn() -> FactsCacheSample + Send + Sync>;

/// The code-facts cache at one moment (`agents_facts::CacheStats`, without depending on it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FactsCacheSample {
    /// Calls answered from the cache since start.
    pub hits: u64,
    /// Calls that computed the facts since start.
    pub misses: u64,
    /// Approximate bytes held now.
    pub bytes: u64,
}

/// Returns each provider's concurrency quota as it is now.
pub(super) type QuotaSource = Arc<dyn Fn() -> Vec<QuotaSample> + Send + Sync>;

/// One provider's concurrency quota at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaSample {
    /// The provider's id (a label value: redacted and cut like every other).
    pub provider: String,
    /// Calls holding a slot now.
    pub in_flight: u64,
    /// Callers queued for a slot now.
    pub waiting: u64,
}

/// The numbers `/metrics` shows for the server's event bus: the primary bus (the audit log
/// when configured) publishes, writes and drops; the in-process bus, a mirror with its own
/// counters, is where subscribers get (or miss) events. So delivery numbers come from the
/// in-process bus and everything else from the primary, and no event is counted twice.
pub fn merge_bus_numbers(
    primary: &[(&'static str, u64)],
    in_process: &[(&'static str, u64)],
) -> Vec<(&'static str, u64)> {
    const FROM_SUBSCRIBERS: [&str; 5] = [
        "delivered",
        "lagged",
        "handled",
        "handler_errors",
        "decode_errors",
    ];
    primary
        .iter()
        .map(|&(name, value)| {
            let value = if FROM_SUBSCRIBERS.contains(&name) {
                in_process
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map_or(value, |&(_, v)| value.saturating_add(v))
            } else {
                value
            };
            (name, value)
        })
        .collect()
}

/// The callbacks, set by the server once its bus and audit log exist.
#[derive(Default)]
pub(super) struct Sources {
    bus: RwLock<Option<BusSource>>,
    audit_write_errors: RwLock<Option<CountSource>>,
    quota: RwLock<Option<QuotaSource>>,
    facts_cache: RwLock<Option<FactsCacheSource>>,
}

impl fmt::Debug for Sources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sources")
            .field("bus", &read(&self.bus).is_some())
            .field(
                "audit_write_errors",
                &read(&self.audit_write_errors).is_some(),
            )
            .field("quota", &read(&self.quota).is_some())
            .field("facts_cache", &read(&self.facts_cache).is_some())
            .finish()
    }
}

impl Sources {
    pub(super) fn set_bus(&self, source: BusSource) {
        *self.bus.write().unwrap_or_else(PoisonError::into_inner) = Some(source);
    }

    pub(super) fn set_facts_cache(&self, source: FactsCacheSource) {
        *self
            .facts_cache
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(source);
    }

    pub(super) fn set_quota(&self, source: QuotaSource) {
        *self.quota.write().unwrap_or_else(PoisonError::into_inner) = Some(source);
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
                    encode_one(&mut encoder, &family, &help, &ConstGauge::new(value))?;
                } else {
                    encode_one(&mut encoder, &family, &help, &ConstCounter::new(value))?;
                }
            }
        }
        if let Some(audit) = read(&self.0.audit_write_errors) {
            encode_one(
                &mut encoder,
                "audit_write_errors",
                "Audit log appends that failed: an event the audit trail is missing.",
                &ConstCounter::new(audit()),
            )?;
        }
        if let Some(quota) = read(&self.0.quota) {
            encode_quota(&mut encoder, &quota())?;
        }
        if let Some(cache) = read(&self.0.facts_cache) {
            encode_facts_cache(&mut encoder, cache())?;
        }
        Ok(())
    }
}

/// `agents_quota_waiting{provider}` and `agents_quota_in_flight{provider}`, one series per
/// provider (providers come from the config, so they are few).
fn encode_quota(encoder: &mut DescriptorEncoder<'_>, samples: &[QuotaSample]) -> fmt::Result {
    let mut seen = BTreeSet::new();
    let samples: Vec<(String, &QuotaSample)> = samples
        .iter()
        .map(|s| (label_value(&s.provider), s))
        // Two providers whose labels collide would make a duplicate series.
        .filter(|(label, _)| seen.insert(label.clone()))
        .collect();
    type Family = (&'static str, &'static str, fn(&QuotaSample) -> u64);
    let families: [Family; 2] = [
        (
            "quota_waiting",
            "Callers queued for a provider's concurrency quota now.",
            |s| s.waiting,
        ),
        (
            "quota_in_flight",
            "Calls holding a slot of a provider's concurrency quota now.",
            |s| s.in_flight,
        ),
    ];
    for (name, help, value_of) in families {
        if samples.is_empty() {
            continue;
        }
        let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
        for (label, sample) in &samples {
            let gauge = ConstGauge::new(i64::try_from(value_of(sample)).unwrap_or(i64::MAX));
            gauge.encode(family.encode_family(&[("provider", label.as_str())])?)?;
        }
    }
    Ok(())
}

/// `agents_facts_cache_hits_total`, `agents_facts_cache_misses_total` and
/// `agents_facts_cache_bytes`.
fn encode_facts_cache(
    encoder: &mut DescriptorEncoder<'_>,
    sample: FactsCacheSample,
) -> fmt::Result {
    let counters = [
        (
            "facts_cache_hits",
            "Code facts answered from the cache (the same language and source seen before).",
            sample.hits,
        ),
        (
            "facts_cache_misses",
            "Code facts computed by parsing (not in the cache, or too large to keep).",
            sample.misses,
        ),
    ];
    for (name, help, value) in counters {
        encode_one(encoder, name, help, &ConstCounter::new(value))?;
    }
    encode_one(
        encoder,
        "facts_cache_bytes",
        "Approximate bytes the code facts cache holds now (the text of the facts and a fixed cost per entry; sources are not kept).",
        &ConstGauge::new(i64::try_from(sample.bytes).unwrap_or(i64::MAX)),
    )
}

/// One metric without labels: its descriptor (name, help, type), then its value.
fn encode_one(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    metric: &impl EncodeMetric,
) -> fmt::Result {
    let family = encoder.encode_descriptor(name, help, None, metric.metric_type())?;
    metric.encode(family)
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
        "tasks_refused_full" => "Tasks the task queue refused because it was full",
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

    #[test]
    fn delivery_numbers_come_from_the_in_process_bus_and_the_rest_from_the_primary() {
        let primary = [("published", 5), ("lagged", 0), ("sink_dropped", 1)];
        let in_process = [("published", 5), ("lagged", 3), ("delivered", 9)];
        assert_eq!(
            merge_bus_numbers(&primary, &in_process),
            [("published", 5), ("lagged", 3), ("sink_dropped", 1)]
        );
    }
}
