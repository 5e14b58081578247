//! Turns the event stream into metrics.
//!
//! Providers, breakers and the host guard already report what they do as CloudEvents; counting
//! those events, rather than instrumenting each policy a second time, keeps the metrics and the
//! audit trail telling the same story.

use std::sync::Arc;

use agents_core::{
    CircuitClosed, CircuitOpened, CloudEvent, EventPayload, EventSink, MemoryPressure,
    PressureLevel, ProviderFailure, ProviderFallback, ProviderRequest, ProviderSuccess,
    ThermalThrottle,
};

use super::Metrics;

/// The `error_kind` / `reason_kind` of a local quota refusal (`ProviderErrorKind::Overloaded`).
const OVERLOADED: &str = "overloaded";

/// An [`EventSink`] that updates [`Metrics`] from the events it receives; build one with
/// [`Metrics::sink`] and tee it next to the bus.
///
/// `emit` never blocks on I/O: it decodes the payload and bumps atomics, taking a short lock
/// only the first time a label set is seen.
#[derive(Debug, Clone)]
pub struct MetricsSink {
    metrics: Arc<Metrics>,
}

impl MetricsSink {
    pub(super) fn new(metrics: Arc<Metrics>) -> Self {
        Self { metrics }
    }
}

impl EventSink for MetricsSink {
    fn emit(&self, event: CloudEvent) {
        self.metrics.observe(&event);
    }

    /// Reads the event where it is: no copy.
    fn emit_ref(&self, event: &CloudEvent) {
        self.metrics.observe(event);
    }

    /// Only the types that change a metric; the agents' own events are counted by the
    /// service, so a fan-out need not build them for this sink.
    fn wants(&self, event_type: &str) -> bool {
        OBSERVED.contains(&event_type)
    }
}

/// The event types that change a metric: exactly the arms of [`Metrics::observe`].
const OBSERVED: [&str; 8] = [
    ProviderRequest::TYPE,
    ProviderSuccess::TYPE,
    ProviderFailure::TYPE,
    ProviderFallback::TYPE,
    CircuitOpened::TYPE,
    CircuitClosed::TYPE,
    MemoryPressure::TYPE,
    ThermalThrottle::TYPE,
];

impl Metrics {
    /// Updates the event-derived families from one event; events of other types, and events
    /// whose data does not decode, change nothing.
    fn observe(&self, event: &CloudEvent) {
        match event.event_type.as_str() {
            ProviderRequest::TYPE => {
                if let Ok(p) = event.payload::<ProviderRequest>() {
                    self.provider_requests.get([&p.provider]).inc();
                }
            }
            ProviderSuccess::TYPE => {
                if let Ok(p) = event.payload::<ProviderSuccess>() {
                    self.provider_duration
                        .get([&p.provider, "success"])
                        .observe(seconds(p.latency_ms));
                    self.provider_tokens
                        .get([&p.provider, "prompt"])
                        .inc_by(p.prompt_tokens);
                    self.provider_tokens
                        .get([&p.provider, "completion"])
                        .inc_by(p.completion_tokens);
                }
            }
            ProviderFailure::TYPE => {
                if let Ok(p) = event.payload::<ProviderFailure>() {
                    self.provider_duration
                        .get([&p.provider, "failure"])
                        .observe(seconds(p.latency_ms));
                    self.provider_errors.get([&p.provider, &p.error_kind]).inc();
                    if p.error_kind == OVERLOADED {
                        self.quota_rejections
                            .get([&p.provider, quota_scope(&p.message)])
                            .inc();
                    }
                }
            }
            ProviderFallback::TYPE => {
                if let Ok(p) = event.payload::<ProviderFallback>() {
                    self.fallbacks
                        .get([&p.from_provider, &p.to_provider, &p.reason_kind])
                        .inc();
                    // The rate and concurrency quotas sit outside `Observe` in the provider
                    // stack, so their refusals never become `provider.failure`; the chain moving
                    // on because of one is where they show.
                    if p.reason_kind == OVERLOADED {
                        self.quota_rejections
                            .get([&p.from_provider, quota_scope(&p.message)])
                            .inc();
                    }
                }
            }
            CircuitOpened::TYPE => {
                if let Ok(p) = event.payload::<CircuitOpened>() {
                    self.breaker_open.get([&p.provider]).set(1);
                }
            }
            CircuitClosed::TYPE => {
                if let Ok(p) = event.payload::<CircuitClosed>() {
                    self.breaker_open.get([&p.provider]).set(0);
                }
            }
            MemoryPressure::TYPE => {
                if let Ok(p) = event.payload::<MemoryPressure>() {
                    self.set_pressure("memory", p.level);
                }
            }
            ThermalThrottle::TYPE => {
                if let Ok(p) = event.payload::<ThermalThrottle>() {
                    self.set_pressure("thermal", p.level);
                }
            }
            _ => {}
        }
    }

    fn set_pressure(&self, resource: &str, level: PressureLevel) {
        let value = match level {
            PressureLevel::Normal => 0,
            PressureLevel::Warning => 1,
            PressureLevel::Critical => 2,
            // A level added later: leave the gauge as it was rather than guess its number.
            _ => return,
        };
        self.host_pressure.get([resource]).set(value);
    }
}

fn seconds(ms: u64) -> f64 {
    // Exact below 2^53 ms (285,000 years).
    ms as f64 / 1_000.0
}

/// Which quota refused, from `ProviderError::Overloaded`'s message ("the rate quota for this
/// provider is full…"); the events carry no scope field. Only the two quotas the provider stack
/// has are named, so the label stays bounded whatever the message says.
fn quota_scope(message: &str) -> &'static str {
    match message.strip_prefix("the ") {
        Some(rest) if rest.starts_with("rate quota ") => "rate",
        Some(rest) if rest.starts_with("concurrency quota ") => "concurrency",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use agents_core::ProviderError;

    use super::*;

    /// `wants` must name exactly the types `observe` counts: a type it left out would never
    /// reach the metrics through a fan-out of deferred events.
    #[test]
    fn wants_exactly_the_types_that_change_a_metric() {
        let metrics = Arc::new(Metrics::new());
        let sink = MetricsSink::new(Arc::clone(&metrics));
        fn event<P: EventPayload + Default>() -> CloudEvent {
            CloudEvent::new("/t", &P::default())
        }
        let every_type = [
            event::<agents_core::AgentStarted>(),
            event::<agents_core::AgentCompleted>(),
            event::<agents_core::AgentFailed>(),
            event::<ProviderRequest>(),
            event::<ProviderSuccess>(),
            event::<ProviderFailure>(),
            event::<ProviderFallback>(),
            event::<CircuitOpened>(),
            event::<CircuitClosed>(),
            event::<MemoryPressure>(),
            event::<ThermalThrottle>(),
            event::<agents_core::McpServerConnected>(),
            event::<agents_core::McpServerDisconnected>(),
            event::<agents_core::TaskQueued>(),
            event::<agents_core::TaskStarted>(),
            event::<agents_core::TaskCompleted>(),
            event::<agents_core::TaskFailed>(),
            event::<agents_core::TaskDeadLettered>(),
        ];
        let mut listed: Vec<&str> = every_type.iter().map(|e| e.event_type.as_str()).collect();
        let mut catalogue = agents_core::EVENT_TYPES.to_vec();
        listed.sort_unstable();
        catalogue.sort_unstable();
        assert_eq!(listed, catalogue, "a new event type: add it to this test");
        let mut changed = Vec::new();
        for event in &every_type {
            let before = metrics.encode();
            sink.emit_ref(event);
            if metrics.encode() != before {
                changed.push(event.event_type.as_str());
            }
        }
        let mut wanted: Vec<&str> = agents_core::EVENT_TYPES
            .iter()
            .copied()
            .filter(|t| sink.wants(t))
            .collect();
        wanted.sort_unstable();
        changed.sort_unstable();
        assert_eq!(wanted, changed);
        assert!(!sink.wants(agents_core::AgentStarted::TYPE));
    }

    #[test]
    fn quota_scope_is_read_from_the_error_message() {
        let rate = ProviderError::Overloaded {
            scope: "rate".into(),
            retry_after: Some(Duration::from_millis(500)),
        };
        let concurrency = ProviderError::Overloaded {
            scope: "concurrency".into(),
            retry_after: None,
        };
        let tenant = ProviderError::Overloaded {
            scope: "acme".into(),
            retry_after: None,
        };
        assert_eq!(quota_scope(&rate.to_string()), "rate");
        assert_eq!(quota_scope(&concurrency.to_string()), "concurrency");
        assert_eq!(quota_scope(&tenant.to_string()), "unknown");
        assert_eq!(quota_scope(""), "unknown");
    }
}
