//! The guard as a [`Provider`] wrapped around the local model's adapter.

use std::sync::{Arc, Mutex, PoisonError};

use agents_core::{
    CloudEvent, ConfigError, EventSink, GenerateRequest, Generation, GenerationStream,
    MemoryPressure, PressureLevel, Provider, ProviderError, ProviderHealth, ThermalThrottle,
};
use tokio::time::Instant;

use super::config::GuardConfig;
use super::level::{Assessment, Verdict};
use super::probe::HostProbe;

/// Caps or refuses generations while the host that serves the model is under memory or
/// thermal pressure, so a local model cannot push the machine into swap or throttling.
///
/// The host is sampled at most once per [`GuardConfig::sample_interval`]; the worse of the
/// memory and thermal levels decides. Normal passes the request through; warning caps
/// `max_tokens` at [`GuardConfig::warning_max_tokens`] (health: degraded); critical refuses with
/// [`ProviderError::Unhealthy`] without calling the model, so a fallback chain moves on (health:
/// unhealthy). `system.memory_pressure` / `system.thermal_throttle` events are emitted from
/// `/providers/<id>/guard` only when a measured level changes.
///
/// A probe that fails is logged (once per interval) and the host counts as normal: the guard
/// fails open, because a fault in an optimisation must not take down a provider that can serve.
#[derive(Debug)]
pub struct HostGuard {
    inner: Arc<dyn Provider>,
    probe: Arc<dyn HostProbe>,
    config: GuardConfig,
    events: Arc<dyn EventSink>,
    source: String,
    state: Mutex<State>,
}

/// The cached assessment, and the last levels announced on the event bus.
#[derive(Debug, Default)]
struct State {
    cache: Option<(Instant, Assessment)>,
    announced_memory: PressureLevel,
    announced_thermal: PressureLevel,
}

impl HostGuard {
    /// Guards `inner` with readings from `probe`, announcing level changes on `events`.
    pub fn new(
        inner: Arc<dyn Provider>,
        probe: Arc<dyn HostProbe>,
        config: GuardConfig,
        events: Arc<dyn EventSink>,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        let source = format!("/providers/{}/guard", inner.id());
        Ok(Self {
            inner,
            probe,
            config,
            events,
            source,
            state: Mutex::new(State::default()),
        })
    }

    /// The current assessment: cached for `sample_interval`, else a fresh sample.
    fn assess(&self) -> Assessment {
        let now = Instant::now();
        let mut events = Vec::new();
        let assessment = {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some((at, cached)) = &state.cache
                && now.duration_since(*at) < self.config.sample_interval
            {
                return cached.clone();
            }
            let assessment = match self.probe.sample() {
                Ok(sample) => Assessment::of(sample, &self.config),
                Err(error) => {
                    tracing::warn!(provider = self.inner.id(), %error,
                        "host probe failed; treating the host as normal until the next sample");
                    Assessment::default()
                }
            };
            self.announce(&mut state, &assessment, &mut events);
            state.cache = Some((now, assessment.clone()));
            assessment
        };
        for event in events {
            self.events.emit(event);
        }
        assessment
    }

    /// Queues an event for each part whose level changed since it was last announced. Only
    /// measured parts count: a failed or partial sample announces nothing.
    fn announce(&self, state: &mut State, assessment: &Assessment, events: &mut Vec<CloudEvent>) {
        if let Some(memory) = assessment.sample.memory
            && assessment.memory != state.announced_memory
        {
            state.announced_memory = assessment.memory;
            let mut payload = MemoryPressure::default();
            payload.level = assessment.memory;
            payload.used_percent = memory.used_percent();
            payload.available_bytes = memory.available_bytes;
            events.push(CloudEvent::new(self.source.as_str(), &payload));
        }
        if let Some(thermal) = &assessment.sample.thermal
            && assessment.thermal != state.announced_thermal
        {
            state.announced_thermal = assessment.thermal;
            let mut payload = ThermalThrottle::default();
            payload.level = assessment.thermal;
            payload.temperature_celsius = Some(thermal.celsius);
            payload.zone = Some(thermal.zone.clone());
            events.push(CloudEvent::new(self.source.as_str(), &payload));
        }
    }

    /// Refuses the request when critical, caps its tokens at warning, else leaves it alone.
    fn admit(&self, mut request: GenerateRequest) -> Result<GenerateRequest, ProviderError> {
        match self.assess().verdict() {
            Verdict::Normal => {}
            Verdict::Warning(_) => {
                let cap = self.config.warning_max_tokens;
                request.max_tokens = Some(request.max_tokens.map_or(cap, |asked| asked.min(cap)));
            }
            Verdict::Critical(condition, detail) => {
                return Err(ProviderError::Unhealthy { condition, detail });
            }
        }
        Ok(request)
    }
}

#[async_trait::async_trait]
impl Provider for HostGuard {
    fn id(&self) -> &str {
        self.inner.id()
    }

    async fn generate(&self, request: GenerateRequest) -> Result<Generation, ProviderError> {
        let request = self.admit(request)?;
        self.inner.generate(request).await
    }

    async fn generate_stream(
        &self,
        request: GenerateRequest,
    ) -> Result<GenerationStream, ProviderError> {
        let request = self.admit(request)?;
        self.inner.generate_stream(request).await
    }

    /// Unhealthy when critical; degraded at warning unless the inner provider is unhealthy
    /// anyway; otherwise whatever the inner provider says.
    async fn health(&self) -> ProviderHealth {
        match self.assess().verdict() {
            Verdict::Critical(_, reason) => ProviderHealth::Unhealthy { reason },
            Verdict::Warning(reason) => match self.inner.health().await {
                unhealthy @ ProviderHealth::Unhealthy { .. } => unhealthy,
                _ => ProviderHealth::Degraded { reason },
            },
            Verdict::Normal => self.inner.health().await,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use agents_core::{HostCondition, MemorySink, Message};
    use futures_util::StreamExt;

    use super::super::probe::{HostSample, ProbeError, ScriptedProbe};
    use super::*;

    /// Records the last request and counts calls.
    #[derive(Debug, Default)]
    struct Recording {
        calls: AtomicUsize,
        last: Mutex<Option<GenerateRequest>>,
    }

    #[async_trait::async_trait]
    impl Provider for Recording {
        fn id(&self) -> &str {
            "local-mlx"
        }
        async fn generate(&self, request: GenerateRequest) -> Result<Generation, ProviderError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            *self.last.lock().unwrap() = Some(request);
            Ok(Generation::new("local-mlx", "m", "ok"))
        }
        async fn health(&self) -> ProviderHealth {
            ProviderHealth::Healthy
        }
    }

    struct Fixture {
        inner: Arc<Recording>,
        probe: Arc<ScriptedProbe>,
        sink: MemorySink,
        guard: HostGuard,
    }

    const GIB: u64 = 1 << 30;
    /// 50 % used: normal.
    fn calm() -> HostSample {
        HostSample::default().with_memory(16 * GIB, 8 * GIB)
    }
    /// 90 % used: warning.
    fn tight() -> HostSample {
        HostSample::default().with_memory(100 * GIB, 10 * GIB)
    }
    /// 97 % used: critical.
    fn full() -> HostSample {
        HostSample::default().with_memory(100 * GIB, 3 * GIB)
    }

    fn fixture(sample: HostSample) -> Fixture {
        let inner = Arc::new(Recording::default());
        let probe = Arc::new(ScriptedProbe::new(sample));
        let sink = MemorySink::new();
        let guard = HostGuard::new(
            inner.clone(),
            probe.clone(),
            GuardConfig::default(),
            Arc::new(sink.clone()),
        )
        .unwrap();
        Fixture {
            inner,
            probe,
            sink,
            guard,
        }
    }

    fn request(max_tokens: Option<u32>) -> GenerateRequest {
        let request = GenerateRequest::new(vec![Message::user("hi")]);
        match max_tokens {
            Some(n) => request.with_max_tokens(n),
            None => request,
        }
    }

    async fn next_interval() {
        tokio::time::advance(Duration::from_secs(1)).await;
    }

    #[tokio::test(start_paused = true)]
    async fn normal_passes_through_and_warning_caps_max_tokens() {
        let f = fixture(calm());
        assert_eq!(f.guard.id(), "local-mlx");
        f.guard.generate(request(Some(4096))).await.unwrap();
        assert_eq!(
            f.inner.last.lock().unwrap().as_ref().unwrap().max_tokens,
            Some(4096)
        );

        f.probe.set(tight());
        next_interval().await;
        for (asked, sent) in [
            (Some(4096), Some(512)),
            (Some(100), Some(100)),
            (None, Some(512)),
        ] {
            f.guard.generate(request(asked)).await.unwrap();
            let last = f.inner.last.lock().unwrap().clone().unwrap();
            assert_eq!(last.max_tokens, sent, "asked {asked:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn critical_refuses_without_calling_the_inner_provider() {
        let f = fixture(full());
        let error = f.guard.generate(request(None)).await.unwrap_err();
        match &error {
            ProviderError::Unhealthy { condition, detail } => {
                assert_eq!(*condition, HostCondition::Memory);
                assert!(detail.starts_with("memory 97.0% used"), "{detail}");
            }
            other => panic!("expected Unhealthy, got {other:?}"),
        }
        assert!(error.should_fall_back() && !error.is_retryable());
        assert!(f.guard.generate_stream(request(None)).await.is_err());
        assert_eq!(f.inner.calls.load(Ordering::SeqCst), 0);

        f.probe.set(HostSample::default().with_thermal(99.5, "cpu"));
        next_interval().await;
        let error = f.guard.generate(request(None)).await.unwrap_err();
        assert!(matches!(
            error,
            ProviderError::Unhealthy {
                condition: HostCondition::Thermal,
                ..
            }
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn the_stream_is_guarded_and_capped_too() {
        let f = fixture(tight());
        let items: Vec<_> = f
            .guard
            .generate_stream(request(None))
            .await
            .unwrap()
            .collect()
            .await;
        assert_eq!(items.len(), 2);
        assert_eq!(
            f.inner.last.lock().unwrap().as_ref().unwrap().max_tokens,
            Some(512)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_host_is_sampled_at_most_once_per_interval() {
        let f = fixture(calm());
        for _ in 0..3 {
            f.guard.generate(request(None)).await.unwrap();
        }
        let _ = f.guard.health().await;
        assert_eq!(f.probe.calls(), 1);
        tokio::time::advance(Duration::from_millis(999)).await;
        f.guard.generate(request(None)).await.unwrap();
        assert_eq!(f.probe.calls(), 1);
        tokio::time::advance(Duration::from_millis(1)).await;
        f.guard.generate(request(None)).await.unwrap();
        assert_eq!(f.probe.calls(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn events_are_emitted_only_when_a_level_changes() {
        let f = fixture(calm());
        let mut seen = Vec::new();
        for sample in [calm(), tight(), tight(), full(), full(), calm(), calm()] {
            f.probe.set(sample);
            next_interval().await;
            let _ = f.guard.generate(request(None)).await;
        }
        for event in f.sink.take() {
            assert_eq!(event.source, "/providers/local-mlx/guard");
            seen.push(event.payload::<MemoryPressure>().unwrap().level);
        }
        use PressureLevel::*;
        assert_eq!(seen, [Warning, Critical, Normal]);

        f.probe.set(HostSample::default().with_thermal(90.0, "cpu"));
        next_interval().await;
        let _ = f.guard.generate(request(None)).await;
        let events = f.sink.take();
        assert_eq!(events.len(), 1, "no memory reading, so no memory event");
        let thermal: ThermalThrottle = events[0].payload().unwrap();
        assert_eq!(thermal.level, Warning);
        assert_eq!(thermal.zone.as_deref(), Some("cpu"));
        assert_eq!(thermal.temperature_celsius, Some(90.0));
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_probe_fails_open_and_announces_nothing() {
        let f = fixture(full());
        assert!(f.guard.generate(request(None)).await.is_err());
        f.probe
            .fail(ProbeError::new("/proc/meminfo", "permission denied"));
        next_interval().await;
        f.guard.generate(request(Some(4096))).await.unwrap();
        assert_eq!(
            f.inner.last.lock().unwrap().as_ref().unwrap().max_tokens,
            Some(4096)
        );
        assert_eq!(f.guard.health().await, ProviderHealth::Healthy);
        assert_eq!(
            f.sink.types(),
            ["system.memory_pressure"],
            "only the critical one"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn health_reflects_the_level() {
        let f = fixture(calm());
        assert_eq!(f.guard.health().await, ProviderHealth::Healthy);
        f.probe.set(tight());
        next_interval().await;
        assert!(
            matches!(f.guard.health().await, ProviderHealth::Degraded { reason } if reason.starts_with("memory 90.0% used"))
        );
        f.probe.set(full());
        next_interval().await;
        assert!(!f.guard.health().await.is_serving());
    }

    #[test]
    fn an_invalid_config_is_refused() {
        let config = GuardConfig {
            warning_max_tokens: 0,
            ..GuardConfig::default()
        };
        let error = HostGuard::new(
            Arc::new(Recording::default()),
            Arc::new(ScriptedProbe::default()),
            config,
            Arc::new(MemorySink::new()),
        )
        .unwrap_err();
        assert_eq!(error.path, "warning_max_tokens");
    }
}
