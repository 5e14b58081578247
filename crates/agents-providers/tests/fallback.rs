//! The fallback chain over the whole stack and real HTTP: whatever is wrong with the primary —
//! 503, 429, a timeout, a stream that stalls mid-answer, a hot host, an open breaker — the
//! secondary answers, and the `provider.fallback` events say why.

// A failing test should stop loudly: unwrap and panic are how tests say so.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use agents_core::{
    EventSink, GenerateRequest, MemorySink, Message, Provider, ProviderError, ProviderFallback,
    StreamDelta,
};
use agents_fake_model::{Behavior, FakeModel};
use agents_providers::{
    BreakerConfig, FallbackChain, GuardConfig, HostSample, OpenAiConfig, OpenAiProvider,
    PolicyConfig, RetryConfig, ScriptedProbe, Stack, TimeoutConfig,
};
use futures_util::StreamExt;

/// Fast-failing policies, so each case ends quickly; retries off unless a case wants them.
fn policies() -> PolicyConfig {
    let mut config = PolicyConfig::default();
    config.timeout = TimeoutConfig::default()
        .with_request_timeout_ms(400)
        .with_stream_idle_timeout_ms(300)
        .with_stream_total_timeout_ms(5_000);
    let mut retry = RetryConfig::default();
    retry.max_retries = 0;
    config.retry = retry;
    config
}

struct Pair {
    primary: FakeModel,
    secondary: FakeModel,
    chain: FallbackChain,
    events: MemorySink,
}

async fn pair(
    configure: impl FnOnce(&mut PolicyConfig, &mut OpenAiConfig),
    probe: Option<Arc<ScriptedProbe>>,
) -> Pair {
    let primary = FakeModel::start().await.unwrap();
    let secondary = FakeModel::start().await.unwrap();
    secondary.set_default(Behavior::Reply {
        text: "from the secondary".into(),
    });
    let events = MemorySink::new();
    let sink: Arc<dyn EventSink> = Arc::new(events.clone());

    let mut config = policies();
    let mut adapter = OpenAiConfig::new("primary", primary.base_url(), "fake-model");
    configure(&mut config, &mut adapter);
    let mut stack =
        Stack::new(Arc::new(OpenAiProvider::new(adapter, None).unwrap())).events(sink.clone());
    if let Some(probe) = probe {
        stack = stack.host_probe(probe);
    }
    let first = stack.build(&config).unwrap();
    let second = Stack::new(Arc::new(
        OpenAiProvider::new(
            OpenAiConfig::new("secondary", secondary.base_url(), "fake-model"),
            None,
        )
        .unwrap(),
    ))
    .events(sink.clone())
    .build(&policies())
    .unwrap();
    let chain = FallbackChain::ordered("chain", vec![first, second], sink);
    Pair {
        primary,
        secondary,
        chain,
        events,
    }
}

fn request() -> GenerateRequest {
    GenerateRequest::new(vec![Message::user("hello")])
        .with_deadline(Instant::now().checked_add(Duration::from_secs(20)))
}

/// The secondary answered, the primary's failure is reported first, and one fallback event
/// names both providers and the reason.
async fn assert_fell_back(pair: &Pair, reason: &str) {
    let generation = pair.chain.generate(request()).await.unwrap();
    assert_eq!(generation.text, "from the secondary");
    assert_eq!(generation.provider_id, "secondary");
    assert_eq!(
        generation.failed_attempts.len(),
        1,
        "{:?}",
        generation.failed_attempts
    );
    assert_eq!(generation.failed_attempts[0].provider, "primary");
    assert_eq!(generation.failed_attempts[0].error.kind().as_str(), reason);
    let fallbacks: Vec<ProviderFallback> = pair
        .events
        .events()
        .iter()
        .filter(|e| e.event_type == "provider.fallback")
        .map(|e| e.payload().unwrap())
        .collect();
    let last = fallbacks.last().expect("a provider.fallback event");
    assert_eq!(
        (last.from_provider.as_str(), last.to_provider.as_str()),
        ("primary", "secondary")
    );
    assert_eq!(last.reason_kind, reason);
    assert!(!last.message.is_empty());
}

#[tokio::test]
async fn primary_503() {
    let pair = pair(|_, _| {}, None).await;
    pair.primary.set_default(Behavior::Status {
        code: 503,
        retry_after: None,
        message: "overloaded".into(),
    });
    assert_fell_back(&pair, "unavailable").await;
}

#[tokio::test]
async fn primary_429_longer_than_the_retry_policy_will_wait() {
    let pair = pair(
        |config, _| {
            config.retry.max_retries = 2;
            config.retry.max_retry_after_ms = 1_000;
        },
        None,
    )
    .await;
    pair.primary.set_default(Behavior::Status {
        code: 429,
        retry_after: Some("60".into()),
        message: "slow down".into(),
    });
    assert_fell_back(&pair, "rate_limited").await;
    assert_eq!(
        pair.primary.request_count(),
        1,
        "a 60 s Retry-After is not waited for"
    );
}

#[tokio::test]
async fn primary_times_out() {
    let pair = pair(|_, _| {}, None).await;
    pair.primary.set_default(Behavior::Hang);
    assert_fell_back(&pair, "timeout").await;
    // The upstream time is the answering attempt's exchange alone: the primary's 400 ms wait
    // is in the chain's latency, not in it.
    let generation = pair.chain.generate(request()).await.unwrap();
    let upstream = generation.upstream_latency.unwrap();
    assert!(
        generation.latency.saturating_sub(upstream) >= Duration::from_millis(400),
        "{upstream:?} of {:?}",
        generation.latency
    );
}

#[tokio::test]
async fn primary_stalls_mid_stream() {
    let pair = pair(
        |_, adapter| *adapter = adapter.clone().with_stream_upstream(true),
        None,
    )
    .await;
    pair.primary.set_default(Behavior::Stream {
        pieces: vec!["{\"partial\":".into(), " 1".into()],
        gap: Duration::ZERO,
        stall_after: Some(1),
    });
    assert_fell_back(&pair, "timeout").await;
}

#[tokio::test]
async fn primary_host_is_under_memory_pressure() {
    let probe = Arc::new(ScriptedProbe::new(
        HostSample::default().with_memory(16 << 30, 256 << 20),
    ));
    let pair = pair(
        |config, _| config.guard = Some(GuardConfig::default()),
        Some(probe),
    )
    .await;
    assert_fell_back(&pair, "unhealthy").await;
    assert_eq!(
        pair.primary.request_count(),
        0,
        "a critical host is never called"
    );
    assert!(
        pair.events
            .types()
            .iter()
            .any(|t| t == "system.memory_pressure")
    );
}

#[tokio::test]
async fn primary_breaker_is_open() {
    let pair = pair(
        |config, _| {
            let mut breaker = BreakerConfig::default();
            breaker.consecutive_failures = 1;
            breaker.open_ms = 60_000;
            config.breaker = breaker;
        },
        None,
    )
    .await;
    pair.primary.set_default(Behavior::Status {
        code: 500,
        retry_after: None,
        message: "boom".into(),
    });
    assert_fell_back(&pair, "unavailable").await;
    assert!(
        pair.events
            .types()
            .iter()
            .any(|t| t == "provider.circuit_opened")
    );
    assert_fell_back(&pair, "circuit_open").await;
    assert_eq!(
        pair.primary.request_count(),
        1,
        "an open breaker is skipped without a call"
    );
}

#[tokio::test]
async fn streams_fall_back_until_output_reaches_the_caller() {
    let pair = pair(|_, _| {}, None).await;
    pair.secondary.set_default(Behavior::Stream {
        pieces: vec!["se".into(), "cond".into()],
        gap: Duration::ZERO,
        stall_after: None,
    });

    pair.primary.push(Behavior::Status {
        code: 503,
        retry_after: None,
        message: "down".into(),
    });
    pair.primary.push(Behavior::MalformedStream {
        data: "{broken".into(),
    });
    for _ in 0..2 {
        let items: Vec<_> = pair
            .chain
            .generate_stream(request())
            .await
            .unwrap()
            .collect()
            .await;
        match items.last() {
            Some(Ok(StreamDelta::Finished(g))) => {
                assert_eq!(g.text, "second");
                assert_eq!(g.failed_attempts.len(), 1);
                assert_eq!(g.failed_attempts[0].provider, "primary");
            }
            other => panic!("expected the secondary's stream, got {other:?}"),
        }
    }

    // Once the primary's first piece has reached the caller, a stall is the caller's error:
    // the chain cannot take back what was shown.
    pair.primary.push(Behavior::Stream {
        pieces: vec!["first".into(), "x".into()],
        gap: Duration::ZERO,
        stall_after: Some(1),
    });
    let items: Vec<_> = pair
        .chain
        .generate_stream(request())
        .await
        .unwrap()
        .collect()
        .await;
    assert!(matches!(&items[0], Ok(StreamDelta::Text(t)) if t == "first"));
    assert!(
        matches!(items.last(), Some(Err(ProviderError::Timeout { .. }))),
        "{items:?}"
    );
    assert_eq!(pair.secondary.request_count(), 2);
}

#[tokio::test]
async fn every_attempt_is_kept_when_all_fail_and_bad_requests_stop_the_chain() {
    let pair = pair(|_, _| {}, None).await;
    pair.primary.set_default(Behavior::Status {
        code: 503,
        retry_after: None,
        message: "down".into(),
    });
    pair.secondary.set_default(Behavior::Status {
        code: 429,
        retry_after: None,
        message: "busy".into(),
    });
    match pair.chain.generate(request()).await {
        Err(ProviderError::AllFailed { attempts }) => {
            let kinds: Vec<(&str, &str)> = attempts
                .iter()
                .map(|a| (a.provider.as_str(), a.error.kind().as_str()))
                .collect();
            assert_eq!(
                kinds,
                [("primary", "unavailable"), ("secondary", "rate_limited")]
            );
        }
        other => panic!("expected AllFailed, got {other:?}"),
    }

    pair.primary.push(Behavior::Status {
        code: 400,
        retry_after: None,
        message: "context too long".into(),
    });
    let before = pair.secondary.request_count();
    match pair.chain.generate(request()).await {
        Err(ProviderError::AllFailed { attempts }) => assert_eq!(attempts.len(), 1),
        other => panic!("expected AllFailed, got {other:?}"),
    }
    assert_eq!(
        pair.secondary.request_count(),
        before,
        "a bad request is not sent elsewhere"
    );
    assert!(pair.chain.health().await.is_serving());
}
