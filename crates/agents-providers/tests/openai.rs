//! The OpenAI-compatible adapter against the fake model over real HTTP: answers, streams, and
//! every failure mapped to the `ProviderError` the policies act on.

// A failing test should stop loudly: unwrap and panic are how tests say so.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use agents_core::{
    GenerateRequest, Message, Provider, ProviderError, ResponseFormat, StreamDelta, TraceContext,
};
use agents_fake_model::{Behavior, FakeModel};
use agents_providers::{JsonMode, OpenAiConfig, OpenAiProvider};
use futures_util::StreamExt;
use secrecy::SecretString;

/// A fake-model behaviour and a check of the error it must become.
type Case = (Behavior, fn(&ProviderError) -> bool);

fn provider(fake: &FakeModel) -> OpenAiProvider {
    OpenAiProvider::new(
        OpenAiConfig::new("local", fake.base_url(), "fake-model"),
        None,
    )
    .unwrap()
}

fn request() -> GenerateRequest {
    GenerateRequest::new(vec![
        Message::system("Answer in JSON."),
        Message::user("fn main() {}"),
    ])
    .with_max_tokens(64)
    .with_deadline(Instant::now().checked_add(Duration::from_secs(10)))
}

#[tokio::test]
async fn answers_carry_text_usage_and_the_request_carries_trace_and_options() {
    let fake = FakeModel::start().await.unwrap();
    fake.push(Behavior::Reply {
        text: "hello there".into(),
    });
    let trace = TraceContext::parse(
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        Some("k=v"),
    )
    .unwrap();
    let config = OpenAiConfig::new("local", fake.base_url(), "fake-model")
        .with_json_mode(JsonMode::JsonSchema)
        .with_header("x-team", "platform");
    let key = SecretString::from("sk-local-key-0123456789abcdef".to_owned());
    let provider = OpenAiProvider::new(config, Some(key)).unwrap();
    let request = request()
        .with_trace(trace.clone())
        .with_seed(Some(42))
        .with_temperature(0.1)
        .with_stop(vec!["END".into()])
        .with_response_format(ResponseFormat::JsonSchema {
            name: "code_analysis".into(),
            schema: serde_json::json!({"type": "object"}).into(),
        });
    let generation = provider.generate(request).await.unwrap();
    assert_eq!(generation.text, "hello there");
    assert_eq!(generation.provider_id, "local");
    assert!(generation.usage.prompt_tokens > 0 && generation.usage.completion_tokens > 0);

    let sent = &fake.requests()[0];
    assert_eq!(sent.path, "/v1/chat/completions");
    assert_eq!(sent.header("traceparent"), Some(trace.traceparent()));
    assert_eq!(sent.header("tracestate"), Some("k=v"));
    assert_eq!(
        sent.header("authorization"),
        Some("Bearer sk-local-key-0123456789abcdef")
    );
    assert_eq!(sent.header("x-team"), Some("platform"));
    assert_eq!(sent.body["model"], "fake-model");
    assert_eq!(sent.body["max_tokens"], 64);
    assert_eq!(sent.body["seed"], 42);
    assert_eq!(sent.body["stop"][0], "END");
    assert_eq!(sent.body["stream"], false);
    assert_eq!(sent.body["messages"][0]["role"], "system");
    assert_eq!(sent.body["response_format"]["type"], "json_schema");
    assert_eq!(
        sent.body["response_format"]["json_schema"]["name"],
        "code_analysis"
    );
}

/// The answer says how long the exchange with the model's server took: at least the model's
/// own wait, and part of the provider's whole time. A stream does not measure it.
#[tokio::test]
async fn answers_carry_the_upstream_exchange_time() {
    let fake = FakeModel::start().await.unwrap();
    let wait = Duration::from_millis(30);
    fake.push(Behavior::Delay {
        delay: wait,
        then: Box::new(Behavior::Reply {
            text: "late".into(),
        }),
    });
    let generation = provider(&fake).generate(request()).await.unwrap();
    let upstream = generation.upstream_latency.unwrap();
    assert!(upstream >= wait, "{upstream:?} < the model's {wait:?}");
    assert!(upstream <= generation.latency, "{generation:?}");

    fake.push(Behavior::Reply {
        text: "streamed".into(),
    });
    let mut stream = provider(&fake).generate_stream(request()).await.unwrap();
    let mut finished = None;
    while let Some(delta) = stream.next().await {
        if let StreamDelta::Finished(generation) = delta.unwrap() {
            finished = Some(generation);
        }
    }
    assert_eq!(finished.unwrap().upstream_latency, None);
}

/// System messages go into the body pre-encoded after the first call: every call must still
/// carry them, and the user messages, character for character.
#[tokio::test]
async fn repeated_system_messages_reach_the_model_unchanged() {
    let fake = FakeModel::start().await.unwrap();
    let provider = provider(&fake);
    let system = "Answer with JSON matching {\"type\":\"object\"}.\n\t\\ \u{00e9} </script>";
    let other = "You document code.";
    let calls = [
        (system, "fn a() {}"),
        (system, "fn b() -> &'static str { \"\\\"\" }"),
        (other, "fn c() {}"),
        (system, "fn d() {}"),
    ];
    for (system, user) in calls {
        fake.push(Behavior::Reply { text: "{}".into() });
        let request = GenerateRequest::new(vec![Message::system(system), Message::user(user)]);
        provider.generate(request).await.unwrap();
    }
    let sent = fake.requests();
    assert_eq!(sent.len(), calls.len());
    for (sent, (system, user)) in sent.iter().zip(calls) {
        assert_eq!(sent.body["messages"][0]["role"], "system");
        assert_eq!(sent.body["messages"][0]["content"], system);
        assert_eq!(sent.body["messages"][1]["content"], user);
    }
}

#[tokio::test]
async fn each_failure_maps_to_its_error() {
    let fake = FakeModel::start().await.unwrap();
    let provider = provider(&fake);
    let status = |code: u16, retry_after: Option<&str>| Behavior::Status {
        code,
        retry_after: retry_after.map(str::to_owned),
        message: format!("status {code}"),
    };
    let cases: Vec<Case> = vec![
        (
            status(429, Some("7")),
            |e| matches!(e, ProviderError::RateLimited { retry_after: Some(d) } if *d == Duration::from_secs(7)),
        ),
        (status(429, None), |e| {
            matches!(e, ProviderError::RateLimited { retry_after: None })
        }),
        (
            status(500, None),
            |e| matches!(e, ProviderError::Unavailable { status: Some(500), reason } if reason == "status 500"),
        ),
        (status(502, None), |e| {
            matches!(
                e,
                ProviderError::Unavailable {
                    status: Some(502),
                    ..
                }
            )
        }),
        (status(503, Some("2")), |e| {
            matches!(
                e,
                ProviderError::Unavailable {
                    status: Some(503),
                    ..
                }
            )
        }),
        (status(401, None), |e| {
            matches!(
                e,
                ProviderError::Unauthorized {
                    status: Some(401),
                    ..
                }
            )
        }),
        (status(403, None), |e| {
            matches!(
                e,
                ProviderError::Unauthorized {
                    status: Some(403),
                    ..
                }
            )
        }),
        (
            status(400, None),
            |e| matches!(e, ProviderError::BadRequest { status: Some(400), message } if message == "status 400"),
        ),
        (status(404, None), |e| {
            matches!(
                e,
                ProviderError::Unsupported {
                    status: Some(404),
                    ..
                }
            )
        }),
        (status(408, None), |e| {
            matches!(e, ProviderError::Timeout { .. })
        }),
        (Behavior::Drop, |e| {
            matches!(e, ProviderError::Unavailable { status: None, .. })
        }),
        (
            Behavior::Malformed {
                body: r#"{"choices": [{"message": {"content": "cut"#.into(),
            },
            |e| matches!(e, ProviderError::InvalidResponse { .. }),
        ),
        (
            Behavior::Malformed {
                body: r#"{"choices": []}"#.into(),
            },
            |e| matches!(e, ProviderError::InvalidResponse { message } if message.contains("choices[0]")),
        ),
        (
            Behavior::Malformed {
                body: "<html>Bad Gateway</html>".into(),
            },
            |e| matches!(e, ProviderError::InvalidResponse { .. }),
        ),
    ];
    for (behavior, expected) in cases {
        let description = format!("{behavior:?}");
        fake.push(behavior);
        let error = provider.generate(request()).await.unwrap_err();
        assert!(expected(&error), "{description} gave {error:?}");
    }
}

#[tokio::test]
async fn a_long_error_body_is_cut_not_dropped() {
    let fake = FakeModel::start().await.unwrap();
    let provider = provider(&fake);
    // A context-length error that echoes the prompt: 20 KiB, over the 16 KiB kept.
    fake.push(Behavior::Status {
        code: 400,
        retry_after: None,
        message: format!("context_length_exceeded: {}", "x".repeat(20 * 1024)),
    });
    let error = provider.generate(request()).await.unwrap_err();
    // Unsupported, so a fallback chain tries a model with a bigger context window.
    assert!(
        matches!(&error, ProviderError::Unsupported { status: Some(400), message } if message.contains("context_length_exceeded")),
        "{error:?}"
    );
}

/// A model that ends without text for a reason the same request meets again (a content filter,
/// the token limit) is `Unsupported`: not retried, and the fallback chain moves on. It was an
/// `InvalidResponse`, retried (a full generation each time) and counted against the breaker.
#[tokio::test]
async fn an_answer_ended_without_text_by_a_filter_or_the_limit_is_not_retried() {
    let fake = FakeModel::start().await.unwrap();
    let provider = provider(&fake);
    for reason in ["content_filter", "length"] {
        fake.push(Behavior::Malformed {
            body: serde_json::json!({
                "choices": [{"message": {"role": "assistant", "content": null}, "finish_reason": reason}]
            })
            .to_string(),
        });
        let error = provider.generate(request()).await.unwrap_err();
        assert!(
            matches!(&error, ProviderError::Unsupported { status: Some(200), message } if message.contains(reason)),
            "{error:?}"
        );
        assert!(
            !error.is_retryable() && error.should_fall_back(),
            "{error:?}"
        );
    }
    // No text after `stop`, or no choice at all: garbled, and worth another try.
    for body in [
        r#"{"choices": [{"message": {"content": null}, "finish_reason": "stop"}]}"#,
        r#"{"choices": []}"#,
    ] {
        fake.push(Behavior::Malformed { body: body.into() });
        let error = provider.generate(request()).await.unwrap_err();
        assert!(
            matches!(error, ProviderError::InvalidResponse { .. }),
            "{body}: {error:?}"
        );
    }
}

#[tokio::test]
async fn a_silent_server_is_a_timeout_and_a_closed_port_is_unavailable() {
    let fake = FakeModel::start().await.unwrap();
    fake.push(Behavior::Hang);
    let provider = provider(&fake);
    let deadline = Instant::now() + Duration::from_millis(300);
    let error = provider
        .generate(request().with_deadline(Some(deadline)))
        .await
        .unwrap_err();
    assert!(matches!(error, ProviderError::Timeout { .. }), "{error:?}");

    let addr = fake.addr();
    fake.shutdown().await;
    let closed = OpenAiProvider::new(
        OpenAiConfig::new("gone", format!("http://{addr}/v1"), "m"),
        None,
    )
    .unwrap();
    let error = closed.generate(request()).await.unwrap_err();
    assert!(
        matches!(&error, ProviderError::Unavailable { status: None, reason } if reason.starts_with("cannot connect")),
        "{error:?}"
    );
    assert!(!closed.health().await.is_serving());
    let error = closed
        .generate(request().with_deadline(Some(Instant::now())))
        .await
        .unwrap_err();
    assert!(
        matches!(error, ProviderError::Timeout { .. }),
        "a passed deadline never sends: {error:?}"
    );
}

#[tokio::test]
async fn streams_yield_pieces_then_the_whole_generation() {
    let fake = FakeModel::start().await.unwrap();
    fake.push(Behavior::Stream {
        pieces: vec!["Hel".into(), "lo".into(), "!".into()],
        gap: Duration::ZERO,
        stall_after: None,
    });
    let provider = provider(&fake);
    let items: Vec<_> = provider
        .generate_stream(request())
        .await
        .unwrap()
        .collect()
        .await;
    let texts: Vec<String> = items
        .iter()
        .filter_map(|i| match i {
            Ok(StreamDelta::Text(t)) => Some(t.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(texts.concat(), "Hello!");
    match items.last() {
        Some(Ok(StreamDelta::Finished(g))) => {
            assert_eq!(g.text, "Hello!");
            assert!(
                g.usage.completion_tokens > 0,
                "usage comes from the final chunk"
            );
        }
        other => panic!("expected Finished, got {other:?}"),
    }
    let sent = &fake.requests()[0];
    assert_eq!(sent.body["stream"], true);
    assert_eq!(sent.body["stream_options"]["include_usage"], true);
}

#[tokio::test]
async fn broken_streams_end_with_an_error() {
    let fake = FakeModel::start().await.unwrap();
    let provider = provider(&fake);

    fake.push(Behavior::MalformedStream {
        data: "{not json".into(),
    });
    let items: Vec<_> = provider
        .generate_stream(request())
        .await
        .unwrap()
        .collect()
        .await;
    assert!(
        matches!(
            items.last(),
            Some(Err(ProviderError::InvalidResponse { .. }))
        ),
        "{items:?}"
    );

    fake.push(Behavior::Status {
        code: 503,
        retry_after: None,
        message: "down".into(),
    });
    assert!(matches!(
        provider.generate_stream(request()).await,
        Err(ProviderError::Unavailable { .. })
    ));

    // A stream that stalls is cut by the request deadline here (the Timeout policy adds an
    // idle bound; see the fallback tests).
    fake.push(Behavior::Stream {
        pieces: vec!["a".into(), "b".into()],
        gap: Duration::ZERO,
        stall_after: Some(1),
    });
    let deadline = Instant::now() + Duration::from_millis(500);
    let items: Vec<_> = provider
        .generate_stream(request().with_deadline(Some(deadline)))
        .await
        .unwrap()
        .collect()
        .await;
    assert!(matches!(&items[0], Ok(StreamDelta::Text(t)) if t == "a"));
    assert!(
        matches!(items.last(), Some(Err(ProviderError::Timeout { .. }))),
        "{items:?}"
    );
}

#[tokio::test]
async fn an_error_event_inside_a_stream_is_an_error_not_an_empty_answer() {
    let fake = FakeModel::start().await.unwrap();
    let provider = provider(&fake);
    fake.push(Behavior::MalformedStream {
        data: r#"{"error": {"message": "engine died", "type": "server_error"}}"#.into(),
    });
    let items: Vec<_> = provider
        .generate_stream(request())
        .await
        .unwrap()
        .collect()
        .await;
    assert!(
        matches!(items.last(), Some(Err(ProviderError::Unavailable { .. }))),
        "{items:?}"
    );

    fake.push(Behavior::MalformedStream {
        data: r#"{"error": {"message": "slow down", "code": 429}}"#.into(),
    });
    let config =
        OpenAiConfig::new("local", fake.base_url(), "fake-model").with_stream_upstream(true);
    let upstream = OpenAiProvider::new(config, None).unwrap();
    assert!(matches!(
        upstream.generate(request()).await,
        Err(ProviderError::RateLimited { .. })
    ));
}

#[tokio::test]
async fn a_stalled_stream_is_cut_by_the_idle_timeout_before_the_deadline() {
    let fake = FakeModel::start().await.unwrap();
    fake.push(Behavior::Stream {
        pieces: vec!["a".into(), "b".into()],
        gap: Duration::ZERO,
        stall_after: Some(1),
    });
    let config = OpenAiConfig::new("local", fake.base_url(), "fake-model")
        .with_stream_upstream(true)
        .with_stream_idle_timeout_ms(200);
    let provider = OpenAiProvider::new(config, None).unwrap();
    // The request may take a minute; the stall is caught by the 200 ms idle bound.
    let request = request().with_deadline(Instant::now().checked_add(Duration::from_secs(60)));
    assert!(matches!(
        provider.generate(request).await,
        Err(ProviderError::Timeout { .. })
    ));
}

#[tokio::test]
async fn streaming_upstream_serves_whole_answers_too() {
    let fake = FakeModel::start().await.unwrap();
    fake.push(Behavior::Stream {
        pieces: vec!["{\"ok\":".into(), " true}".into()],
        gap: Duration::ZERO,
        stall_after: None,
    });
    let config =
        OpenAiConfig::new("local", fake.base_url(), "fake-model").with_stream_upstream(true);
    let provider = OpenAiProvider::new(config, None).unwrap();
    let generation = provider.generate(request()).await.unwrap();
    assert_eq!(generation.text, "{\"ok\": true}");
    assert_eq!(fake.requests()[0].body["stream"], true);
    assert!(provider.health().await.is_serving());
}

/// A secret store as the adapter sees it: `key` answers the current value; `refused` stands for
/// the cache forgetting it, after which the store's newer value (`next`), if any, is loaded.
#[derive(Debug)]
struct RotatingKey {
    current: std::sync::Mutex<String>,
    next: std::sync::Mutex<Option<String>>,
    refused: std::sync::atomic::AtomicUsize,
    /// Set: `key` fails as a store that cannot be reached does.
    fail: std::sync::atomic::AtomicBool,
}

impl RotatingKey {
    fn new(key: &str) -> std::sync::Arc<Self> {
        std::sync::Arc::new(Self {
            current: std::sync::Mutex::new(key.into()),
            next: std::sync::Mutex::new(None),
            refused: std::sync::atomic::AtomicUsize::new(0),
            fail: std::sync::atomic::AtomicBool::new(false),
        })
    }

    fn set(&self, key: &str) {
        *self.current.lock().unwrap() = key.into();
    }

    fn rotate_on_refusal(&self, key: &str) {
        *self.next.lock().unwrap() = Some(key.into());
    }
}

#[async_trait::async_trait]
impl agents_providers::KeySource for RotatingKey {
    async fn key(&self) -> Result<SecretString, ProviderError> {
        if self.fail.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(ProviderError::Unavailable {
                status: None,
                reason: "the secret store is unreachable".into(),
            });
        }
        Ok(SecretString::from(self.current.lock().unwrap().clone()))
    }

    fn refused(&self) {
        self.refused
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if let Some(next) = self.next.lock().unwrap().take() {
            self.set(&next);
        }
    }
}

/// The `Authorization` headers of the chat requests the fake model received, in order.
fn keys_sent(fake: &FakeModel) -> Vec<String> {
    fake.requests()
        .iter()
        .filter(|r| r.path.ends_with("/chat/completions"))
        .map(|r| r.header("authorization").unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn a_key_source_is_read_on_every_request_and_a_refused_key_is_replaced_once() {
    let fake = FakeModel::start().await.unwrap();
    let (first, second, third) = (
        "sk-first-key-0123456789abcdef",
        "sk-second-key-0123456789abcdef",
        "sk-third-key-0123456789abcdef",
    );
    let source = RotatingKey::new(first);
    let provider = OpenAiProvider::with_key_source(
        OpenAiConfig::new("hosted", fake.base_url(), "m"),
        SecretString::from(first.to_owned()),
        source.clone(),
    )
    .unwrap();
    provider.generate(request()).await.unwrap();
    // Rotated in the store: the next request sends the new key, no restart.
    source.set(second);
    provider.generate(request()).await.unwrap();

    // The provider refuses the key it had while the store already holds a newer one: one more
    // try with the newer key, and the caller sees no failure.
    source.rotate_on_refusal(third);
    fake.push(Behavior::Status {
        code: 401,
        retry_after: None,
        message: "key revoked".into(),
    });
    provider.generate(request()).await.unwrap();
    let bearer = |key: &str| format!("Bearer {key}");
    assert_eq!(
        keys_sent(&fake),
        [bearer(first), bearer(second), bearer(second), bearer(third)]
    );
    assert_eq!(source.refused.load(std::sync::atomic::Ordering::SeqCst), 1);

    // Refused again with no newer key in the store: no second try, the provider's own answer.
    fake.push(Behavior::Status {
        code: 401,
        retry_after: None,
        message: "key revoked".into(),
    });
    let error = provider.generate(request()).await.unwrap_err();
    assert!(
        matches!(
            error,
            ProviderError::Unauthorized {
                status: Some(401),
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(keys_sent(&fake).len(), 5);
    assert_eq!(source.refused.load(std::sync::atomic::Ordering::SeqCst), 2);
    // The same key refused once more: the source is not told again (no reload per call).
    fake.push(Behavior::Status {
        code: 401,
        retry_after: None,
        message: "key revoked".into(),
    });
    provider.generate(request()).await.unwrap_err();
    assert_eq!(source.refused.load(std::sync::atomic::Ordering::SeqCst), 2);

    // The store cannot be reached: the last key is sent.
    source.fail.store(true, std::sync::atomic::Ordering::SeqCst);
    provider.generate(request()).await.unwrap();
    assert_eq!(keys_sent(&fake).last(), Some(&bearer(third)));
    for text in [format!("{error}"), format!("{provider:?}")] {
        assert!(!text.contains("0123456789abcdef"), "a key leaked: {text}");
    }
}

#[test]
fn a_key_source_whose_first_key_cannot_be_sent_is_refused_when_built() {
    for bad in ["abc", "sk-with-a-newline\n0123456789abcdef"] {
        let error = OpenAiProvider::with_key_source(
            OpenAiConfig::new("hosted", "http://127.0.0.1:9/v1", "m"),
            SecretString::from(bad.to_owned()),
            RotatingKey::new(bad),
        )
        .unwrap_err();
        assert_eq!(error.path, "api_key", "{error}");
    }
}

#[tokio::test]
async fn an_api_key_never_appears_in_errors_or_debug_output() {
    let fake = FakeModel::start().await.unwrap();
    let key = format!("sk-canary-{}", "0123456789abcdefghij");
    let provider = OpenAiProvider::new(
        OpenAiConfig::new("hosted", fake.base_url(), "m"),
        Some(SecretString::from(key.clone())),
    )
    .unwrap();
    // Upstreams do echo keys: "Incorrect API key provided: sk-...".
    for code in [400, 401, 403, 429, 500, 503] {
        fake.push(Behavior::Status {
            code,
            retry_after: None,
            message: format!("Incorrect API key provided: {key}"),
        });
        let error = provider.generate(request()).await.unwrap_err();
        for text in [error.to_string(), format!("{error:?}")] {
            assert!(!text.contains(&key), "HTTP {code} leaked the key: {text}");
            assert!(
                !text.contains("0123456789abcdefghij"),
                "HTTP {code} leaked part of the key: {text}"
            );
        }
    }
    fake.push(Behavior::Malformed {
        body: format!("{{\"echo\": \"{key}\""),
    });
    let error = provider.generate(request()).await.unwrap_err();
    assert!(!format!("{error} {error:?}").contains(&key));
    assert!(
        !format!("{provider:?}").contains(&key),
        "the provider's Debug hides the Authorization header"
    );
}

#[tokio::test]
async fn a_base_url_with_a_trailing_slash_reaches_the_same_path() {
    let fake = FakeModel::start().await.unwrap();
    fake.push(Behavior::Reply { text: "ok".into() });
    let provider = OpenAiProvider::new(
        OpenAiConfig::new("local", format!("{}/", fake.base_url()), "fake-model"),
        None,
    )
    .unwrap();
    provider.generate(request()).await.unwrap();
    assert_eq!(fake.requests()[0].path, "/v1/chat/completions");
}

#[test]
fn config_is_validated_and_env_references_resolve() {
    let bad = [
        (OpenAiConfig::new("", "http://127.0.0.1:1/v1", "m"), "id"),
        (OpenAiConfig::new("a", "not a url", "m"), "base_url"),
        (
            OpenAiConfig::new("a", "ftp://127.0.0.1/v1", "m"),
            "base_url",
        ),
        (
            OpenAiConfig::new("a", "http://user:pw@127.0.0.1/v1", "m"),
            "base_url",
        ),
        (
            OpenAiConfig::new("a", "http://127.0.0.1/v1?api-version=1", "m"),
            "base_url",
        ),
        (
            OpenAiConfig::new("a", "http://127.0.0.1/v1#frag", "m"),
            "base_url",
        ),
        (OpenAiConfig::new("a", "http://127.0.0.1/v1", " "), "model"),
        (
            OpenAiConfig::new("a", "http://127.0.0.1/v1", "m").with_header("X-Api-Key", "k"),
            "headers.X-Api-Key",
        ),
        (
            OpenAiConfig::new("a", "http://127.0.0.1/v1", "m").with_header("bad header", "v"),
            "headers.bad header",
        ),
    ];
    for (config, path) in bad {
        assert_eq!(OpenAiProvider::new(config, None).unwrap_err().path, path);
    }
    let missing = OpenAiConfig::new("a", "http://127.0.0.1/v1", "m")
        .with_api_key("env:AGENTS_TEST_SURELY_UNSET_KEY");
    let error = OpenAiProvider::from_config(missing).unwrap_err();
    assert!(error.message.contains("AGENTS_TEST_SURELY_UNSET_KEY"));
    let vault =
        OpenAiConfig::new("a", "http://127.0.0.1/v1", "m").with_api_key("vault:secret/llm#key");
    assert!(
        OpenAiProvider::from_config(vault)
            .unwrap_err()
            .message
            .contains("agents-secrets")
    );
    let short = OpenAiProvider::new(
        OpenAiConfig::new("a", "http://127.0.0.1/v1", "m"),
        Some(SecretString::from("abc".to_owned())),
    );
    assert_eq!(short.unwrap_err().path, "api_key");
    let parsed: OpenAiConfig = serde_json::from_value(serde_json::json!({
        "id": "mlx", "base_url": "http://127.0.0.1:8080/v1", "model": "mlx-community/Qwen", "json_mode": "off"
    }))
    .unwrap();
    assert_eq!(parsed.json_mode, JsonMode::Off);
    assert!(OpenAiProvider::from_config(parsed).is_ok());
}
