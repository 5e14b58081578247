//! Turns the event stream into metrics.
//!
//! Providers, breakers and the host guard already report what they do as CloudEvents; counting
//! those events, rather than instrumenting each policy a second time, keeps the metrics and the
//! audit trail telling the same story.

use std::borrow::Cow;
use std::sync::Arc;

use agents_core::{
    CircuitClosed, CircuitOpened, CloudEvent, DeferredEvent, EventPayload, EventSink,
    MemoryPressure, PressureLevel, ProviderFailure, ProviderFallback, ProviderRequest,
    ProviderSuccess, ThermalThrottle,
};

use super::Metrics;

/// The `error_kind` / `reason_kind` of a local quota refusal (`ProviderErrorKind::Overloaded`).
const OVERLOADED: &str = "overloaded";

/// An [`EventSink`] that updates [`Metrics`] from the events it receives; build one with
/// [`Metrics::sink`] and tee it next to the bus.
///
/// It never blocks on I/O: it reads the payload (typed from a deferred event, decoded from a
/// built one) and bumps atomics, taking a short lock only the first time a label set is seen.
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
        self.metrics.observe(event.event_type.as_str(), &event);
    }

    /// Reads the event where it is: no copy.
    fn emit_ref(&self, event: &CloudEvent) {
        self.metrics.observe(event.event_type.as_str(), event);
    }

    /// Reads the typed payload: nothing is built or decoded. Labels are redacted by the
    /// families as always, so the unredacted payload goes nowhere else.
    fn emit_deferred(&self, event: DeferredEvent) {
        self.metrics.observe(event.event_type(), &event);
    }

    fn emit_deferred_ref(&self, event: &DeferredEvent) {
        self.metrics.observe(event.event_type(), event);
    }

    /// Only the types that change a metric; the agents' own events are counted by the
    /// service, so a fan-out need not show them to this sink.
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

/// An event's payload, read as the type its `type` names: decoded from a built event's JSON
/// data, or borrowed from a deferred event.
trait Payloads {
    fn read<P: EventPayload + Clone + 'static>(&self) -> Option<Cow<'_, P>>;
}

impl Payloads for CloudEvent {
    fn read<P: EventPayload + Clone + 'static>(&self) -> Option<Cow<'_, P>> {
        self.payload::<P>().ok().map(Cow::Owned)
    }
}

impl Payloads for DeferredEvent {
    fn read<P: EventPayload + Clone + 'static>(&self) -> Option<Cow<'_, P>> {
        self.payload::<P>().map(Cow::Borrowed)
    }
}

impl Metrics {
    /// Updates the event-derived families from one event of type `event_type`; events of
    /// other types, and events whose data does not decode, change nothing.
    fn observe(&self, event_type: &str, event: &impl Payloads) {
        match event_type {
            ProviderRequest::TYPE => {
                if let Some(p) = event.read::<ProviderRequest>() {
                    self.provider_requests.get([&p.provider]).inc();
                }
            }
            ProviderSuccess::TYPE => {
                if let Some(p) = event.read::<ProviderSuccess>() {
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
                if let Some(p) = event.read::<ProviderFailure>() {
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
                if let Some(p) = event.read::<ProviderFallback>() {
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
                if let Some(p) = event.read::<CircuitOpened>() {
                    self.breaker_open.get([&p.provider]).set(1);
                }
            }
            CircuitClosed::TYPE => {
                if let Some(p) = event.read::<CircuitClosed>() {
                    self.breaker_open.get([&p.provider]).set(0);
                }
            }
            MemoryPressure::TYPE => {
                if let Some(p) = event.read::<MemoryPressure>() {
                    self.set_pressure("memory", p.level);
                }
            }
            ThermalThrottle::TYPE => {
                if let Some(p) = event.read::<ThermalThrottle>() {
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

    /// A deferred event, read from its typed payload, changes the metrics exactly as the same
    /// event built and decoded does.
    #[test]
    fn deferred_events_count_as_built_ones_do() {
        fn both<P: EventPayload + Clone + Send + 'static>(
            payload: P,
        ) -> (CloudEvent, DeferredEvent) {
            (
                CloudEvent::new("/t", &payload),
                DeferredEvent::new("/t", payload),
            )
        }
        let mut request = ProviderRequest::default();
        request.provider = "local".into();
        let mut success = ProviderSuccess::default();
        success.provider = "local".into();
        success.latency_ms = 12;
        success.prompt_tokens = 30;
        success.completion_tokens = 7;
        let mut failure = ProviderFailure::default();
        failure.provider = "local".into();
        failure.error_kind = OVERLOADED.into();
        failure.message = ProviderError::Overloaded {
            scope: "rate".into(),
            retry_after: None,
        }
        .to_string();
        let mut fallback = ProviderFallback::default();
        fallback.from_provider = "local".into();
        fallback.to_provider = "remote".into();
        fallback.reason_kind = "timeout".into();
        let mut opened = CircuitOpened::default();
        opened.provider = "remote".into();
        let mut pressure = MemoryPressure::default();
        pressure.level = PressureLevel::Critical;
        let events = [
            both(request),
            both(success),
            both(failure),
            both(fallback),
            both(opened),
            both(pressure),
            both(agents_core::AgentStarted::default()),
        ];
        let (built, deferred) = (Arc::new(Metrics::new()), Arc::new(Metrics::new()));
        let (built_sink, deferred_sink) = (built.sink(), deferred.sink());
        for (event, pending) in &events {
            built_sink.emit_ref(event);
            deferred_sink.emit_deferred_ref(pending);
        }
        // The same series and values; label sets come in each family's hash order.
        let sorted = |text: String| {
            let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
            lines.sort_unstable();
            lines
        };
        let text = deferred.encode();
        assert_eq!(sorted(text.clone()), sorted(built.encode()));
        for line in [
            "agents_provider_requests_total{provider=\"local\"} 1",
            "agents_provider_tokens_total{provider=\"local\",direction=\"prompt\"} 30",
        ] {
            assert!(text.contains(line), "{line} not in {text}");
        }
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
