#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! Every test runs on tokio's paused clock: waits pass instantly and deterministically, and
//! `tokio::time::Instant` measures how long they were.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agents_core::{
    GenerateRequest, Generation, GenerationStream, Provider, ProviderError, ProviderErrorKind,
    ProviderHealth, StreamDelta,
};
use futures_util::StreamExt;
use proptest::prelude::*;
use tokio::time::Instant;

use super::{BudgetConfig, Retry, RetryConfig};

#[derive(Debug, Clone)]
enum Step {
    Ok,
    Fail(ProviderError),
    /// For streams: open, then fail as the first item.
    FirstItemFails(ProviderError),
    /// For streams: open, yield a piece, then fail.
    LaterItemFails(ProviderError),
}

/// Plays back `steps` (then answers `Ok`, or repeats `Fail` forever when built with
/// [`Scripted::failing`]) and counts calls.
#[derive(Debug)]
struct Scripted {
    steps: Mutex<VecDeque<Step>>,
    then: Step,
    calls: AtomicUsize,
}

impl Scripted {
    fn new(steps: impl IntoIterator<Item = Step>) -> Arc<Self> {
        Arc::new(Self {
            steps: Mutex::new(steps.into_iter().collect()),
            then: Step::Ok,
            calls: AtomicUsize::new(0),
        })
    }

    fn failing() -> Arc<Self> {
        Arc::new(Self {
            steps: Mutex::new(VecDeque::new()),
            then: unavailable("down"),
            calls: AtomicUsize::new(0),
        })
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    fn next(&self) -> Step {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let next = self.steps.lock().unwrap().pop_front();
        next.unwrap_or_else(|| self.then.clone())
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
            Step::Fail(e) | Step::FirstItemFails(e) | Step::LaterItemFails(e) => Err(e),
        }
    }

    async fn generate_stream(&self, _: GenerateRequest) -> Result<GenerationStream, ProviderError> {
        let text = || Ok(StreamDelta::Text("hi".into()));
        let items = match self.next() {
            Step::Ok => vec![
                text(),
                Ok(StreamDelta::Finished(Generation::new("fake", "m", "hi"))),
            ],
            Step::Fail(error) => return Err(error),
            Step::FirstItemFails(error) => vec![Err(error)],
            Step::LaterItemFails(error) => vec![text(), Err(error)],
        };
        Ok(Box::pin(futures_util::stream::iter(items)))
    }

    async fn health(&self) -> ProviderHealth {
        ProviderHealth::Healthy
    }
}

fn unavailable(reason: &str) -> Step {
    Step::Fail(ProviderError::Unavailable {
        status: Some(503),
        reason: reason.into(),
    })
}

fn rate_limited(seconds: u64) -> Step {
    Step::Fail(ProviderError::RateLimited {
        retry_after: Some(Duration::from_secs(seconds)),
    })
}

fn retry(inner: &Arc<Scripted>, config: RetryConfig) -> Retry {
    Retry::new(inner.clone(), config).unwrap()
}

fn request_within(seconds: u64) -> GenerateRequest {
    let deadline = std::time::Instant::now() + Duration::from_secs(seconds);
    GenerateRequest::default().with_deadline(Some(deadline))
}

#[tokio::test(start_paused = true)]
async fn retries_a_503_then_succeeds() {
    let inner = Scripted::new([unavailable("reloading")]);
    let generation = retry(&inner, RetryConfig::default())
        .generate(GenerateRequest::default())
        .await
        .unwrap();
    assert_eq!(inner.calls(), 2);
    let kinds: Vec<_> = generation
        .failed_attempts
        .iter()
        .map(|a| a.error.kind())
        .collect();
    assert_eq!(kinds, [ProviderErrorKind::Unavailable]);
    assert_eq!(generation.failed_attempts[0].provider, "fake");
}

#[tokio::test(start_paused = true)]
async fn does_not_retry_a_bad_request() {
    let bad = ProviderError::BadRequest {
        status: Some(400),
        message: "too long".into(),
    };
    let inner = Scripted::new([Step::Fail(bad)]);
    let result = retry(&inner, RetryConfig::default())
        .generate(GenerateRequest::default())
        .await;
    assert!(matches!(result, Err(ProviderError::BadRequest { .. })));
    assert_eq!(inner.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn gives_up_after_max_retries_with_the_last_error() {
    let inner = Scripted::new([unavailable("a"), unavailable("b"), unavailable("c")]);
    let result = retry(&inner, RetryConfig::default())
        .generate(GenerateRequest::default())
        .await;
    match result {
        Err(ProviderError::Unavailable { reason, .. }) => assert_eq!(reason, "c"),
        other => panic!("expected the last error, got {other:?}"),
    }
    assert_eq!(inner.calls(), 3);
}

#[tokio::test(start_paused = true)]
async fn honours_retry_after() {
    let inner = Scripted::new([rate_limited(3)]);
    let started = Instant::now();
    let retry = retry(&inner, RetryConfig::default());
    assert!(retry.generate(GenerateRequest::default()).await.is_ok());
    assert!(started.elapsed() >= Duration::from_secs(3));
    assert_eq!(inner.calls(), 2);

    // Unless told not to: then the computed backoff (under base_delay for the first retry).
    let inner = Scripted::new([rate_limited(3)]);
    let config = RetryConfig {
        respect_retry_after: false,
        ..RetryConfig::default()
    };
    let started = Instant::now();
    assert!(
        self::retry(&inner, config)
            .generate(GenerateRequest::default())
            .await
            .is_ok()
    );
    assert!(started.elapsed() < Duration::from_millis(100));
}

#[tokio::test(start_paused = true)]
async fn a_retry_after_beyond_the_limit_is_not_waited_for() {
    let inner = Scripted::new([rate_limited(60)]);
    let started = Instant::now();
    let result = retry(&inner, RetryConfig::default())
        .generate(GenerateRequest::default())
        .await;
    assert!(matches!(result, Err(ProviderError::RateLimited { .. })));
    assert_eq!((inner.calls(), started.elapsed()), (1, Duration::ZERO));
}

#[tokio::test(start_paused = true)]
async fn the_deadline_stops_waits() {
    // A Retry-After past the deadline: give up at once.
    let inner = Scripted::new([rate_limited(2)]);
    let started = Instant::now();
    let result = retry(&inner, RetryConfig::default())
        .generate(request_within(1))
        .await;
    assert!(matches!(result, Err(ProviderError::RateLimited { .. })));
    assert_eq!((inner.calls(), started.elapsed()), (1, Duration::ZERO));

    // Backoff waits: retry while they fit, never wait past the deadline.
    let inner = Scripted::failing();
    let config = RetryConfig {
        max_retries: 10,
        base_delay_ms: 400,
        max_delay_ms: 400,
        ..RetryConfig::default()
    };
    let started = Instant::now();
    let result = retry(&inner, config).generate(request_within(1)).await;
    assert!(matches!(result, Err(ProviderError::Unavailable { .. })));
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert!(inner.calls() < 11);
}

#[tokio::test(start_paused = true)]
async fn the_budget_caps_retries_during_an_outage() {
    let inner = Scripted::failing();
    let config = RetryConfig {
        base_delay_ms: 1,
        max_delay_ms: 1,
        ..RetryConfig::default()
    };
    let retry = retry(&inner, config);
    for _ in 0..100 {
        assert!(retry.generate(GenerateRequest::default()).await.is_err());
    }
    // 100 requests in well under the 10 s window: 20% of them plus 5/s * 10 s of reserve.
    let retries = inner.calls() - 100;
    assert!((60..=70).contains(&retries), "{retries} retries");
}

#[tokio::test(start_paused = true)]
async fn streams_are_retried_only_before_their_first_item() {
    let first_fails = Step::FirstItemFails(ProviderError::InvalidResponse {
        message: "eof".into(),
    });
    let inner = Scripted::new([unavailable("open"), first_fails]);
    let retry = retry(&inner, RetryConfig::default());
    let items: Vec<_> = retry
        .generate_stream(GenerateRequest::default())
        .await
        .unwrap()
        .collect()
        .await;
    assert_eq!(inner.calls(), 3);
    match items.as_slice() {
        [
            Ok(StreamDelta::Text(text)),
            Ok(StreamDelta::Finished(generation)),
        ] => {
            assert_eq!(text, "hi");
            assert_eq!(generation.failed_attempts.len(), 2);
        }
        other => panic!("unexpected stream {other:?}"),
    }

    // Once a piece was handed over, a failure is the caller's to see.
    let inner = Scripted::new([Step::LaterItemFails(ProviderError::InvalidResponse {
        message: "reset".into(),
    })]);
    let retry = self::retry(&inner, RetryConfig::default());
    let stream = retry
        .generate_stream(GenerateRequest::default())
        .await
        .unwrap();
    let items: Vec<_> = stream.collect().await;
    assert!(matches!(
        items.as_slice(),
        [Ok(StreamDelta::Text(_)), Err(_)]
    ));
    assert_eq!(inner.calls(), 1);
}

#[test]
fn config_defaults_serde_and_validation() {
    let parsed: RetryConfig = serde_json::from_str(r#"{"budget": {"ratio": 0.1}}"#).unwrap();
    assert_eq!(parsed.budget.ratio, 0.1);
    assert_eq!(parsed.budget.window_ms, BudgetConfig::default().window_ms);
    assert_eq!(
        serde_json::from_str::<RetryConfig>("{}").unwrap(),
        RetryConfig::default()
    );
    assert!(serde_json::from_str::<RetryConfig>(r#"{"retries": 3}"#).is_err());
    assert_eq!(RetryConfig::default().validate(), Ok(()));

    type Case = (&'static str, fn(&mut RetryConfig));
    let cases: [Case; 7] = [
        ("max_retries", |c| c.max_retries = 11),
        ("base_delay_ms", |c| c.base_delay_ms = 0),
        ("max_delay_ms", |c| c.max_delay_ms = c.base_delay_ms - 1),
        ("max_retry_after_ms", |c| c.max_retry_after_ms = u64::MAX),
        ("budget.ratio", |c| c.budget.ratio = -0.1),
        ("budget.ratio", |c| c.budget.ratio = f64::NAN),
        ("budget.window_ms", |c| c.budget.window_ms = 999),
    ];
    for (path, break_it) in cases {
        let mut config = RetryConfig::default();
        break_it(&mut config);
        assert_eq!(config.validate().unwrap_err().path, path);
        let built = Retry::new(Scripted::new([]), config);
        assert_eq!(built.unwrap_err().path, path);
    }
}

proptest! {
    #[test]
    fn backoff_stays_within_its_ceiling(
        base in 1..=3_600_000_u64,
        extra in 0..=3_600_000_u64,
        attempt in any::<u32>(),
    ) {
        let config = RetryConfig {
            base_delay_ms: base,
            max_delay_ms: base.saturating_add(extra).min(3_600_000),
            ..RetryConfig::default()
        };
        prop_assume!(config.validate().is_ok());
        let wait = config.backoff(attempt);
        prop_assert!(wait < Duration::from_millis(config.max_delay_ms));
        let exponential = 2_f64.powf(f64::from(attempt)) * base as f64;
        prop_assert!((wait.as_millis() as f64) < exponential);
    }
}
