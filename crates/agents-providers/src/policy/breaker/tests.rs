#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! failsafe reads time from its own thread-local clock, not tokio's, so every test runs inside
//! `failsafe::clock::freeze` on a current-thread runtime (same thread, so the frozen clock is
//! the one failsafe sees) and moves time with `MockClock::advance`. Nothing sleeps.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agents_core::{
    CircuitOpened, GenerateRequest, Generation, GenerationStream, HostCondition, MemorySink,
    Provider, ProviderError, ProviderHealth, StreamDelta,
};
use failsafe::clock::MockClock;
use futures_util::StreamExt;

use super::{BreakerConfig, BreakerState, CircuitBreaker, FailureRateConfig};

const OPENED: &str = "provider.circuit_opened";
const CLOSED: &str = "provider.circuit_closed";

#[derive(Debug, Clone)]
enum Step {
    Ok,
    Fail(ProviderError),
    /// For streams: open, yield one piece, then fail.
    StreamFail(ProviderError),
}

/// Plays back `steps` (then answers `Ok`) and counts calls.
#[derive(Debug, Default)]
struct Scripted {
    steps: Mutex<VecDeque<Step>>,
    calls: AtomicUsize,
}

impl Scripted {
    fn new(steps: impl IntoIterator<Item = Step>) -> Arc<Self> {
        Arc::new(Self {
            steps: Mutex::new(steps.into_iter().collect()),
            calls: AtomicUsize::new(0),
        })
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    fn next(&self) -> Step {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.steps.lock().unwrap().pop_front().unwrap_or(Step::Ok)
    }
}

#[async_trait::async_trait]
impl Provider for Scripted {
    fn id(&self) -> &str {
        "fake"
    }

    async fn generate(&self, _: GenerateRequest) -> Result<Generation, ProviderError> {
        match self.next() {
            Step::Ok => Ok(Generation::new("fake", "m", "hi")),
            Step::Fail(error) | Step::StreamFail(error) => Err(error),
        }
    }

    async fn generate_stream(&self, _: GenerateRequest) -> Result<GenerationStream, ProviderError> {
        let last = match self.next() {
            Step::Ok => Ok(StreamDelta::Finished(Generation::new("fake", "m", "hi"))),
            Step::StreamFail(error) => Err(error),
            Step::Fail(error) => return Err(error),
        };
        let items = [Ok(StreamDelta::Text("hi".into())), last];
        Ok(Box::pin(futures_util::stream::iter(items)))
    }

    async fn health(&self) -> ProviderHealth {
        ProviderHealth::Healthy
    }
}

/// Runs `test` with failsafe's clock frozen and tokio's paused.
fn frozen(test: impl AsyncFnOnce(&mut MockClock)) {
    failsafe::clock::freeze(|clock| {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap()
            .block_on(test(clock));
    });
}

fn ms(value: u64) -> Duration {
    Duration::from_millis(value)
}

fn down() -> Step {
    Step::Fail(ProviderError::Unavailable {
        status: Some(503),
        reason: "503".into(),
    })
}

fn config(consecutive_failures: u32) -> BreakerConfig {
    BreakerConfig {
        consecutive_failures,
        failure_rate: None,
        open_ms: 1_000,
        max_open_ms: 4_000,
        half_open_probes: 1,
    }
}

fn wrap(inner: &Arc<Scripted>, config: BreakerConfig) -> (CircuitBreaker, MemorySink) {
    let sink = MemorySink::new();
    let breaker = CircuitBreaker::new(inner.clone(), config, Arc::new(sink.clone())).unwrap();
    (breaker, sink)
}

async fn call(breaker: &CircuitBreaker) -> Result<Generation, ProviderError> {
    breaker.generate(GenerateRequest::default()).await
}

fn last_opened(sink: &MemorySink) -> CircuitOpened {
    let events = sink.events();
    let event = events
        .iter()
        .rev()
        .find(|e| e.event_type == OPENED)
        .unwrap();
    assert_eq!(event.source, "/providers/fake/breaker");
    event.payload().unwrap()
}

#[test]
fn opens_after_consecutive_failures_and_then_fails_fast() {
    frozen(async |clock| {
        let inner = Scripted::new([down(), down(), down()]);
        let (breaker, sink) = wrap(&inner, config(3));
        for _ in 0..2 {
            assert!(matches!(
                call(&breaker).await,
                Err(ProviderError::Unavailable { .. })
            ));
            assert_eq!(breaker.state(), BreakerState::Closed);
        }
        assert!(breaker.health().await.is_serving());
        assert!(call(&breaker).await.is_err());
        assert_eq!(breaker.state(), BreakerState::Open);
        let opened = last_opened(&sink);
        assert_eq!(
            (opened.provider.as_str(), opened.consecutive_failures),
            ("fake", 3)
        );
        assert_eq!(opened.open_for_ms, 1_000);

        let due = clock.now() + ms(1_000);
        for _ in 0..5 {
            match call(&breaker).await {
                Err(ProviderError::CircuitOpen { until }) => assert_eq!(until, due),
                other => panic!("expected CircuitOpen, got {other:?}"),
            }
        }
        clock.advance(ms(999));
        assert!(matches!(
            call(&breaker).await,
            Err(ProviderError::CircuitOpen { .. })
        ));
        assert!(matches!(
            breaker.health().await,
            ProviderHealth::Unhealthy { .. }
        ));
        assert_eq!(
            inner.calls(),
            3,
            "an open breaker must not call the provider"
        );
        assert_eq!(sink.types(), [OPENED]);
    });
}

#[test]
fn a_failed_probe_reopens_for_longer_and_a_good_one_closes() {
    frozen(async |clock| {
        let inner = Scripted::new([down(), down(), down(), Step::Ok, down(), down()]);
        let (breaker, sink) = wrap(&inner, config(2));
        for _ in 0..2 {
            assert!(call(&breaker).await.is_err());
        }
        clock.advance(ms(1_001));
        assert_eq!(breaker.state(), BreakerState::HalfOpen);
        assert!(matches!(
            breaker.health().await,
            ProviderHealth::Degraded { .. }
        ));

        // The probe fails: open again, twice as long.
        assert!(matches!(
            call(&breaker).await,
            Err(ProviderError::Unavailable { .. })
        ));
        assert_eq!(breaker.state(), BreakerState::Open);
        let reopened = last_opened(&sink);
        assert_eq!(
            (reopened.open_for_ms, reopened.consecutive_failures),
            (2_000, 3)
        );
        clock.advance(ms(1_001));
        assert!(matches!(
            call(&breaker).await,
            Err(ProviderError::CircuitOpen { .. })
        ));
        assert_eq!(inner.calls(), 3);

        // The next probe succeeds: closed, and the open time starts over.
        clock.advance(ms(1_000));
        assert!(call(&breaker).await.is_ok());
        assert_eq!(breaker.state(), BreakerState::Closed);
        assert_eq!(sink.types(), [OPENED, OPENED, CLOSED]);
        for _ in 0..2 {
            assert!(call(&breaker).await.is_err());
        }
        assert_eq!(last_opened(&sink).open_for_ms, 1_000);
        assert_eq!(sink.types(), [OPENED, OPENED, CLOSED, OPENED]);
    });
}

#[test]
fn calls_refused_while_a_probe_hangs_are_told_to_wait_the_open_time() {
    use crate::testing::{Script, ScriptedProvider};

    frozen(async |clock| {
        let slow = ProviderError::Timeout { elapsed: ms(10) };
        let hanging = ScriptedProvider::new("fake", [Script::fail(slow)]);
        hanging.set_default(Script::delay(Duration::from_secs(3600)));
        let sink = MemorySink::new();
        let breaker = Arc::new(
            CircuitBreaker::new(hanging.clone(), config(1), Arc::new(sink.clone())).unwrap(),
        );
        assert!(call(&breaker).await.is_err());
        clock.advance(ms(1_001));
        let probe = {
            let breaker = Arc::clone(&breaker);
            tokio::spawn(async move { breaker.generate(GenerateRequest::default()).await })
        };
        // Let the probe reach the provider and hang there.
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert_eq!(hanging.calls(), 2);
        // A retry time of 0 s would have clients that honour RetryInfo loop until the probe ends.
        match call(&breaker).await {
            Err(ProviderError::CircuitOpen { until }) => {
                assert_eq!(until.saturating_duration_since(clock.now()), ms(1_000));
            }
            other => panic!("expected CircuitOpen, got {other:?}"),
        }
        assert_eq!(hanging.calls(), 2);
        probe.abort();
    });
}

#[test]
fn the_failure_rate_policy_trips_on_mixed_results() {
    frozen(async |clock| {
        let rate = |first: Step, second: Step, third: Step| {
            let steps = (0..40).flat_map(|_| [first.clone(), second.clone(), third.clone()]);
            let mut config = config(100);
            config.failure_rate = Some(FailureRateConfig {
                min_requests: 10,
                ratio: 0.5,
                window_ms: 1_000,
            });
            wrap(&Scripted::new(steps), config)
        };
        let (failing, failing_events) = rate(down(), down(), Step::Ok);
        let (healthy, healthy_events) = rate(Step::Ok, Step::Ok, down());
        let mut tripped_after = None;
        for n in 1..=120 {
            clock.advance(ms(50));
            let _ = call(&healthy).await;
            if failing.state() == BreakerState::Closed {
                let _ = call(&failing).await;
            } else if tripped_after.is_none() {
                tripped_after = Some(n - 1);
            }
        }
        // Not before a whole window (20 calls at 50 ms), and soon after it.
        let tripped_after = tripped_after.unwrap();
        assert!((20..=24).contains(&tripped_after), "{tripped_after}");
        assert!(last_opened(&failing_events).consecutive_failures <= 2);
        assert_eq!(healthy.state(), BreakerState::Closed);
        assert!(healthy_events.types().is_empty());
    });
}

#[test]
fn refusals_of_the_request_do_not_count_as_failures() {
    frozen(async |_| {
        let refusals = [
            ProviderError::BadRequest {
                status: Some(400),
                message: "too long".into(),
            },
            ProviderError::Unauthorized {
                status: Some(401),
                message: "key".into(),
            },
            ProviderError::Cancelled,
            ProviderError::Overloaded {
                scope: "rate".into(),
                retry_after: None,
            },
            ProviderError::Unhealthy {
                condition: HostCondition::Memory,
                detail: "97%".into(),
            },
        ];
        let inner = Scripted::new(refusals.into_iter().map(Step::Fail));
        let (breaker, sink) = wrap(&inner, config(1));
        for _ in 0..5 {
            assert!(call(&breaker).await.is_err());
        }
        assert_eq!(breaker.state(), BreakerState::Closed);
        assert!(sink.types().is_empty());

        // A rejected request proves the provider is up: it breaks a run of failures.
        let bad = Step::Fail(ProviderError::BadRequest {
            status: None,
            message: "x".into(),
        });
        let inner = Scripted::new([down(), bad, down(), down()]);
        let (breaker, _) = wrap(&inner, config(2));
        for _ in 0..3 {
            let _ = call(&breaker).await;
        }
        assert_eq!(breaker.state(), BreakerState::Closed);
        let _ = call(&breaker).await;
        assert_eq!(breaker.state(), BreakerState::Open);
    });
}

/// A request whose deadline is `after` from now on tokio's (paused) clock.
fn due_in(after: Duration) -> GenerateRequest {
    let deadline = tokio::time::Instant::now() + after;
    GenerateRequest::default().with_deadline(Some(deadline.into_std()))
}

#[test]
fn callers_that_give_up_while_queued_for_a_slot_do_not_open_it() {
    use crate::testing::{Script, ScriptedProvider};
    use crate::{ConcurrencyConfig, ConcurrencyLimit};

    frozen(async |_| {
        let slow = ScriptedProvider::new("fake", []);
        slow.set_default(Script::delay(Duration::from_secs(3600)));
        let config_quota = ConcurrencyConfig::default()
            .with_max_concurrent(1)
            .with_max_waiting(8);
        let quota = ConcurrencyLimit::new(slow, config_quota).unwrap();
        let sink = MemorySink::new();
        let breaker = Arc::new(
            CircuitBreaker::new(Arc::new(quota), config(1), Arc::new(sink.clone())).unwrap(),
        );
        let holder = {
            let breaker = Arc::clone(&breaker);
            tokio::spawn(async move { breaker.generate(GenerateRequest::default()).await })
        };
        // Let the holder take the only slot.
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        for _ in 0..3 {
            let result = breaker.generate(due_in(ms(50))).await;
            // Refused by the quota, never sent to the provider.
            assert!(
                matches!(result, Err(ProviderError::Overloaded { .. })),
                "{result:?}"
            );
        }
        assert_eq!(breaker.state(), BreakerState::Closed);
        assert!(sink.types().is_empty());
        holder.abort();
    });
}

#[test]
fn streams_are_judged_when_they_end() {
    frozen(async |clock| {
        let failing = Step::StreamFail(ProviderError::InvalidResponse {
            message: "eof".into(),
        });
        let inner = Scripted::new([failing, down()]);
        let (breaker, sink) = wrap(&inner, config(2));
        let request = GenerateRequest::default;

        // An error item is a failure, but only once it is read.
        let stream = breaker.generate_stream(request()).await.unwrap();
        let items: Vec<_> = stream.collect().await;
        assert!(matches!(items.as_slice(), [Ok(_), Err(_)]));
        assert_eq!(breaker.state(), BreakerState::Closed);
        // Failing to open is a failure too: two in a row open the breaker.
        assert!(breaker.generate_stream(request()).await.is_err());
        assert_eq!(breaker.state(), BreakerState::Open);
        assert!(matches!(
            breaker.generate_stream(request()).await,
            Err(ProviderError::CircuitOpen { .. })
        ));

        // Half-open: one probe at a time; a probe dropped early counts for nothing.
        clock.advance(ms(1_001));
        let mut probe = breaker.generate_stream(request()).await.unwrap();
        assert!(matches!(probe.next().await, Some(Ok(StreamDelta::Text(_)))));
        assert!(matches!(
            call(&breaker).await,
            Err(ProviderError::CircuitOpen { .. })
        ));
        drop(probe);
        assert_eq!(breaker.state(), BreakerState::HalfOpen);
        assert_eq!(sink.types(), [OPENED]);

        // A stream that reaches `Finished` is a success and closes the breaker.
        let probe = breaker.generate_stream(request()).await.unwrap();
        assert_eq!(probe.collect::<Vec<_>>().await.len(), 2);
        assert_eq!(breaker.state(), BreakerState::Closed);
        assert_eq!(sink.types(), [OPENED, CLOSED]);
        assert_eq!(inner.calls(), 4);
    });
}

#[test]
fn config_defaults_serde_and_validation() {
    let parsed: BreakerConfig = serde_json::from_str("{}").unwrap();
    assert_eq!(parsed, BreakerConfig::default());
    assert_eq!(
        parsed.failure_rate.as_ref().map(|r| r.min_requests),
        Some(20)
    );
    let off: BreakerConfig = serde_json::from_str(r#"{"failure_rate": null}"#).unwrap();
    assert_eq!(off.failure_rate, None);
    assert!(serde_json::from_str::<BreakerConfig>(r#"{"open_for_ms": 1}"#).is_err());
    assert!(serde_json::from_str::<BreakerConfig>(r#"{"failure_rate": {"x": 1}}"#).is_err());
    assert_eq!(BreakerConfig::default().validate(), Ok(()));

    type Case = (&'static str, fn(&mut BreakerConfig));
    let cases: [Case; 8] = [
        ("consecutive_failures", |c| c.consecutive_failures = 0),
        ("open_ms", |c| c.open_ms = 0),
        ("max_open_ms", |c| c.max_open_ms = c.open_ms - 1),
        ("max_open_ms", |c| c.max_open_ms = u64::MAX),
        ("half_open_probes", |c| c.half_open_probes = 0),
        ("failure_rate.min_requests", |c| rate(c).min_requests = 0),
        ("failure_rate.ratio", |c| rate(c).ratio = 1.0),
        ("failure_rate.window_ms", |c| rate(c).window_ms = 1_500),
    ];
    fn rate(config: &mut BreakerConfig) -> &mut FailureRateConfig {
        config.failure_rate.as_mut().unwrap()
    }
    for (path, break_it) in cases {
        let mut config = BreakerConfig::default();
        break_it(&mut config);
        assert_eq!(config.validate().unwrap_err().path, path);
        let built = CircuitBreaker::new(Scripted::new([]), config, Arc::new(MemorySink::new()));
        assert_eq!(built.unwrap_err().path, path);
    }
}
