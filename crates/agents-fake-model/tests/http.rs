//! Every behaviour of the fake model, exercised over real HTTP with reqwest.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::future::Future;
use std::time::Duration;

use agents_fake_model::{Behavior, FakeModel};
use futures_util::StreamExt as _;
use serde_json::{Value, json};

const AGENTS: [&str; 3] = ["code-analysis", "documentation", "test-generation"];

/// The outer bound of every wait in these tests: far above what any step needs, so reaching
/// it means something is stuck, not slow.
const DEADLINE: Duration = Duration::from_secs(20);

/// A client timeout far below the long delays and hangs under test.
const SHORT: Duration = Duration::from_millis(300);

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(DEADLINE)
        .build()
        .unwrap()
}

fn impatient_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(SHORT)
        .build()
        .unwrap()
}

fn reply_schema(agent: &str) -> jsonschema::Validator {
    let path = match agent {
        "code-analysis" => concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../schemas/agents/code-analysis.reply.json"
        ),
        "documentation" => concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../schemas/agents/documentation.reply.json"
        ),
        "test-generation" => concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../schemas/agents/test-generation.reply.json"
        ),
        other => panic!("no agent {other}"),
    };
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    jsonschema::validator_for(&schema).unwrap()
}

fn assert_valid(agent: &str, answer: &Value) {
    let validator = reply_schema(agent);
    let errors: Vec<String> = validator
        .iter_errors(answer)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{agent}: {errors:?}");
}

/// A chat request like the agents send: the agent's schema name in `response_format`.
fn agent_request(agent: &str, stream: bool) -> Value {
    json!({
        "model": "qwen2.5-coder",
        "messages": [
            {"role": "system", "content": "Answer with exactly one JSON object."},
            {"role": "user", "content": "def add(a, b):\n    return a + b\n"}
        ],
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": agent.replace('-', "_"), "schema": {"type": "object"}, "strict": true}
        },
        "stream": stream,
        "stream_options": if stream { json!({"include_usage": true}) } else { Value::Null },
    })
}

fn plain_request(text: &str) -> Value {
    json!({"messages": [{"role": "user", "content": text}]})
}

async fn chat(model: &FakeModel, body: &Value) -> reqwest::Response {
    client()
        .post(format!("{}/chat/completions", model.base_url()))
        .json(body)
        .send()
        .await
        .unwrap()
}

/// The content of a non-streamed answer.
async fn content(model: &FakeModel, body: &Value) -> String {
    let response = chat(model, body).await;
    assert_eq!(response.status(), 200);
    let json: Value = response.json().await.unwrap();
    json["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The `data:` payloads of an SSE body.
fn sse_events(body: &str) -> Vec<String> {
    body.split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .map(|e| {
            e.strip_prefix("data: ")
                .unwrap_or_else(|| panic!("not an SSE data event: {e:?}"))
                .to_owned()
        })
        .collect()
}

/// The content deltas of `chat.completion.chunk` events, in order.
fn deltas(chunks: &[Value]) -> String {
    chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect()
}

/// Waits until `condition` holds, failing after [`DEADLINE`].
async fn eventually<F, Fut>(mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let waited = tokio::time::timeout(DEADLINE, async {
        while !condition().await {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    assert!(
        waited.is_ok(),
        "the condition did not hold within {DEADLINE:?}"
    );
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut chain = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        chain.push_str(": ");
        chain.push_str(&cause.to_string());
        source = cause.source();
    }
    chain
}

#[tokio::test]
async fn answer_gives_each_agent_a_schema_valid_completion() {
    let model = FakeModel::start().await.unwrap();
    for agent in AGENTS {
        let request = agent_request(agent, false);
        let response = chat(&model, &request).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "application/json");
        let json: Value = response.json().await.unwrap();
        assert!(json["id"].as_str().unwrap().starts_with("chatcmpl-"));
        assert_eq!(json["object"], "chat.completion");
        assert!(json["created"].as_u64().unwrap() > 1_600_000_000);
        assert_eq!(json["model"], "qwen2.5-coder");
        assert_eq!(json["choices"][0]["index"], 0);
        assert_eq!(json["choices"][0]["message"]["role"], "assistant");
        assert_eq!(json["choices"][0]["finish_reason"], "stop");

        let text = json["choices"][0]["message"]["content"].as_str().unwrap();
        let answer: Value = serde_json::from_str(text).unwrap();
        assert_valid(agent, &answer);
        assert_eq!(answer, agents_fake_model::canned_answer(agent));

        let prompt_chars: usize = request["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["content"].as_str().unwrap().chars().count())
            .sum();
        let usage = &json["usage"];
        assert_eq!(usage["prompt_tokens"], (prompt_chars / 4).max(1));
        assert_eq!(
            usage["completion_tokens"],
            (text.chars().count() / 4).max(1)
        );
        assert_eq!(
            usage["total_tokens"].as_u64().unwrap(),
            usage["prompt_tokens"].as_u64().unwrap() + usage["completion_tokens"].as_u64().unwrap()
        );
    }
}

#[tokio::test]
async fn answer_streams_each_agent_a_schema_valid_answer_with_usage_and_done() {
    let model = FakeModel::start().await.unwrap();
    for agent in AGENTS {
        let response = chat(&model, &agent_request(agent, true)).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        let events = sse_events(&response.text().await.unwrap());
        assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
        let chunks: Vec<Value> = events[..events.len() - 1]
            .iter()
            .map(|e| serde_json::from_str(e).unwrap())
            .collect();
        assert!(
            chunks
                .iter()
                .all(|c| c["object"] == "chat.completion.chunk" && c["model"] == "qwen2.5-coder")
        );
        assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
        // More than one content piece: the client really reassembles.
        let pieces = chunks
            .iter()
            .filter(|c| c["choices"][0]["delta"]["content"].is_string())
            .count();
        assert!(pieces > 1, "{agent}: {pieces} pieces");

        let finish = chunks
            .iter()
            .find(|c| c["choices"][0]["finish_reason"].is_string())
            .unwrap();
        assert_eq!(finish["choices"][0]["finish_reason"], "stop");
        let usage = chunks.last().unwrap();
        assert_eq!(usage["choices"], json!([]));
        assert!(usage["usage"]["completion_tokens"].as_u64().unwrap() >= 1);

        let answer: Value = serde_json::from_str(&deltas(&chunks)).unwrap();
        assert_valid(agent, &answer);
    }
}

#[tokio::test]
async fn a_stream_without_include_usage_has_no_usage_chunk() {
    let model = FakeModel::start().await.unwrap();
    let mut request = agent_request("documentation", true);
    request["stream_options"] = Value::Null;
    let events = sse_events(&chat(&model, &request).await.text().await.unwrap());
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    for event in &events[..events.len() - 1] {
        let chunk: Value = serde_json::from_str(event).unwrap();
        assert!(chunk.get("usage").is_none(), "{chunk}");
    }
}

#[tokio::test]
async fn answer_finds_the_agent_in_the_system_message_or_answers_ok() {
    let model = FakeModel::start().await.unwrap();
    let request = json!({"messages": [
        {"role": "system", "content": "You are a test engineer who writes tests that compile and run."},
        {"role": "user", "content": "def add(a, b): return a + b"}
    ]});
    let answer: Value = serde_json::from_str(&content(&model, &request).await).unwrap();
    assert_valid("test-generation", &answer);
    assert_eq!(answer, agents_fake_model::canned_answer("test-generation"));

    let answer: Value =
        serde_json::from_str(&content(&model, &plain_request("hello")).await).unwrap();
    assert_eq!(answer, json!({"ok": true}));

    let response: Value = chat(&model, &plain_request("hello"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(response["model"], "fake-model");
}

#[tokio::test]
async fn reply_gives_the_fixed_text_whole_or_streamed() {
    let model = FakeModel::start().await.unwrap();
    let text = "Hello, \"world\" ✓\nsecond line";
    model.set_default(Behavior::Reply {
        text: text.to_owned(),
    });
    assert_eq!(content(&model, &plain_request("hi")).await, text);

    let request = json!({"messages": [{"role": "user", "content": "hi"}], "stream": true});
    let events = sse_events(&chat(&model, &request).await.text().await.unwrap());
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    assert_eq!(deltas(&chunks), text);
}

#[tokio::test]
async fn delay_answers_after_the_wait_and_outlasts_a_shorter_client_timeout() {
    let model = FakeModel::start().await.unwrap();
    model.push(Behavior::Delay {
        delay: Duration::from_millis(20),
        then: Box::new(Behavior::Reply {
            text: "later".to_owned(),
        }),
    });
    assert_eq!(content(&model, &plain_request("hi")).await, "later");

    model.push(Behavior::Delay {
        delay: Duration::from_secs(600),
        then: Box::new(Behavior::Reply {
            text: "much later".to_owned(),
        }),
    });
    let error = impatient_client()
        .post(format!("{}/chat/completions", model.base_url()))
        .json(&plain_request("hi"))
        .send()
        .await
        .unwrap_err();
    assert!(error.is_timeout(), "{}", error_chain(&error));
    eventually(|| async { model.request_count() == 2 }).await;

    // The delayed behaviour was consumed; the next request gets the default.
    let answer: Value = serde_json::from_str(&content(&model, &plain_request("hi")).await).unwrap();
    assert_eq!(answer, json!({"ok": true}));
}

#[tokio::test]
async fn status_sends_the_code_retry_after_and_an_openai_error_body() {
    let model = FakeModel::start().await.unwrap();
    model.push(Behavior::Status {
        code: 429,
        retry_after: Some("7".to_owned()),
        message: "Rate limit reached".to_owned(),
    });
    model.push(Behavior::Status {
        code: 503,
        retry_after: Some("Wed, 21 Oct 2015 07:28:00 GMT".to_owned()),
        message: "overloaded".to_owned(),
    });
    model.push(Behavior::Status {
        code: 500,
        retry_after: None,
        message: "boom".to_owned(),
    });

    let response = chat(&model, &plain_request("hi")).await;
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "7");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["message"], "Rate limit reached");
    assert!(body["error"]["type"].is_string());

    let response = chat(&model, &plain_request("hi")).await;
    assert_eq!(response.status(), 503);
    assert_eq!(
        response.headers()["retry-after"],
        "Wed, 21 Oct 2015 07:28:00 GMT"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["message"], "overloaded");
    assert_eq!(body["error"]["type"], "server_error");

    let response = chat(&model, &plain_request("hi")).await;
    assert_eq!(response.status(), 500);
    assert!(response.headers().get("retry-after").is_none());
}

#[tokio::test]
async fn drop_closes_the_connection_without_a_status() {
    let model = FakeModel::start().await.unwrap();
    let client = client();
    // A first request opens a keep-alive connection, so the drop happens on a reused one too.
    let first = client
        .post(format!("{}/chat/completions", model.base_url()))
        .json(&plain_request("hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 200);
    first.bytes().await.unwrap();

    model.push(Behavior::Drop);
    let error = client
        .post(format!("{}/chat/completions", model.base_url()))
        .json(&plain_request("hi"))
        .send()
        .await
        .unwrap_err();
    assert!(error.status().is_none(), "{}", error_chain(&error));
    assert!(!error.is_timeout(), "{}", error_chain(&error));
    assert!(error.is_request(), "{}", error_chain(&error));
    // hyper says "connection closed before message completed"; a reset is as good.
    let chain = error_chain(&error);
    assert!(
        chain.contains("closed") || chain.contains("reset"),
        "{chain}"
    );
    assert_eq!(model.request_count(), 2);

    // The server lives on.
    let answer: Value = serde_json::from_str(&content(&model, &plain_request("hi")).await).unwrap();
    assert_eq!(answer, json!({"ok": true}));
}

#[tokio::test]
async fn hang_never_answers_so_the_client_times_out() {
    let model = FakeModel::start().await.unwrap();
    model.push(Behavior::Hang);
    let error = impatient_client()
        .post(format!("{}/chat/completions", model.base_url()))
        .json(&plain_request("hi"))
        .send()
        .await
        .unwrap_err();
    assert!(error.is_timeout(), "{}", error_chain(&error));
    assert_eq!(model.request_count(), 1);
}

#[tokio::test]
async fn malformed_is_200_with_exactly_that_body() {
    let model = FakeModel::start().await.unwrap();
    let body = r#"{"id": "chatcmpl-1", "choices": [{"message": {"content": "trunc"#;
    model.push(Behavior::Malformed {
        body: body.to_owned(),
    });
    let response = chat(&model, &plain_request("hi")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    assert_eq!(response.text().await.unwrap(), body);
}

#[tokio::test]
async fn stream_sends_the_pieces_then_finish_usage_and_done() {
    let model = FakeModel::start().await.unwrap();
    model.push(Behavior::Stream {
        pieces: vec!["Hel".to_owned(), "lo, ".to_owned(), "wörld".to_owned()],
        gap: Duration::from_millis(5),
        stall_after: None,
    });
    // Even without `stream: true`.
    let response = chat(&model, &plain_request("hi")).await;
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let events = sse_events(&response.text().await.unwrap());
    assert_eq!(events.len(), 5, "{events:?}");
    assert_eq!(events[4], "[DONE]");
    let chunks: Vec<Value> = events[..4]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    assert_eq!(deltas(&chunks), "Hello, wörld");
    assert_eq!(chunks[3]["choices"][0]["finish_reason"], "stop");
    assert_eq!(chunks[3]["usage"]["completion_tokens"], 3);
    assert!(chunks[3]["usage"]["prompt_tokens"].as_u64().unwrap() >= 1);
}

#[tokio::test]
async fn stream_with_stall_after_sends_n_pieces_then_stalls_open() {
    let model = FakeModel::start().await.unwrap();
    model.push(Behavior::Stream {
        pieces: vec!["one".to_owned(), "two".to_owned(), "three".to_owned()],
        gap: Duration::ZERO,
        stall_after: Some(2),
    });
    let response = chat(&model, &plain_request("hi")).await;
    assert_eq!(response.status(), 200);
    let mut body = response.bytes_stream();
    let mut received = String::new();
    while received.matches("\n\n").count() < 2 {
        let chunk = tokio::time::timeout(DEADLINE, body.next())
            .await
            .expect("the first pieces arrive")
            .expect("the stream is still open")
            .unwrap();
        received.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    let chunks: Vec<Value> = sse_events(&received)
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    assert_eq!(deltas(&chunks), "onetwo");

    // Nothing more comes, and the stream does not end either.
    let next = tokio::time::timeout(SHORT, body.next()).await;
    assert!(next.is_err(), "the stream went on: {next:?}");
}

#[tokio::test]
async fn malformed_stream_sends_the_raw_data_line() {
    let model = FakeModel::start().await.unwrap();
    model.push(Behavior::MalformedStream {
        data: r#"{"choices": [{"delta": {"content": "x"#.to_owned(),
    });
    let response = chat(&model, &plain_request("hi")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let events = sse_events(&response.text().await.unwrap());
    assert_eq!(
        events,
        [r#"{"choices": [{"delta": {"content": "x"#, "[DONE]"]
    );
    assert!(serde_json::from_str::<Value>(&events[0]).is_err());
}

#[tokio::test]
async fn pushed_behaviours_are_used_once_in_order_then_the_default() {
    let model = FakeModel::start().await.unwrap();
    for text in ["first", "second"] {
        model.push(Behavior::Reply {
            text: text.to_owned(),
        });
    }
    model.set_default(Behavior::Reply {
        text: "default".to_owned(),
    });
    let mut answers = Vec::new();
    for _ in 0..4 {
        answers.push(content(&model, &plain_request("hi")).await);
    }
    assert_eq!(answers, ["first", "second", "default", "default"]);
}

#[tokio::test]
async fn every_request_is_recorded_with_its_headers_and_body() {
    let model = FakeModel::start().await.unwrap();
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let body = agent_request("code-analysis", false);
    let response = client()
        .post(format!("{}/chat/completions", model.base_url()))
        .header("traceparent", traceparent)
        .header("Authorization", "Bearer sk-test")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    client()
        .get(format!("{}/models", model.base_url()))
        .send()
        .await
        .unwrap();

    assert_eq!(model.request_count(), 2);
    let requests = model.requests();
    assert_eq!(requests.len(), 2);
    let chat = &requests[0];
    assert_eq!(chat.method, "POST");
    assert_eq!(chat.path, "/v1/chat/completions");
    assert_eq!(chat.header("traceparent"), Some(traceparent));
    assert_eq!(chat.header("authorization"), Some("Bearer sk-test"));
    assert_eq!(chat.header("AUTHORIZATION"), Some("Bearer sk-test"));
    assert!(chat.headers.iter().any(|(name, _)| name == "authorization"));
    assert_eq!(chat.header("x-missing"), None);
    assert_eq!(chat.body, body);
    assert_eq!(requests[1].method, "GET");
    assert_eq!(requests[1].path, "/v1/models");
    assert_eq!(requests[1].body, Value::Null);
}

#[tokio::test]
async fn a_request_still_being_answered_is_already_recorded() {
    let model = FakeModel::start().await.unwrap();
    model.push(Behavior::Hang);
    let url = format!("{}/chat/completions", model.base_url());
    let pending =
        tokio::spawn(async move { client().post(url).json(&plain_request("hi")).send().await });
    eventually(|| async { model.requests().len() == 1 }).await;
    assert_eq!(model.requests()[0].body, plain_request("hi"));
    assert!(!pending.is_finished());
    pending.abort();
}

#[tokio::test]
async fn with_recording_off_requests_are_counted_not_kept() {
    let model = FakeModel::start().await.unwrap();
    model.set_recording(false);
    content(&model, &plain_request("hi")).await;
    assert_eq!(model.request_count(), 1);
    assert!(model.requests().is_empty());
    model.set_recording(true);
    content(&model, &plain_request("hi")).await;
    assert_eq!(model.request_count(), 2);
    assert_eq!(model.requests().len(), 1);
}

#[tokio::test]
async fn unknown_paths_are_404_and_bad_json_is_400_without_using_a_behaviour() {
    let model = FakeModel::start().await.unwrap();
    model.push(Behavior::Reply {
        text: "kept".to_owned(),
    });

    let response = client()
        .post(format!("{}/completions", model.base_url()))
        .json(&plain_request("hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.unwrap();
    assert!(body["error"]["message"].is_string());
    assert!(body["error"]["type"].is_string());

    let response = client()
        .post(format!("{}/chat/completions", model.base_url()))
        .header("content-type", "application/json")
        .body("{\"messages\": [")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert!(body["error"]["message"].is_string());

    let requests = model.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].path, "/v1/completions");
    assert_eq!(requests[1].body, Value::Null);

    assert_eq!(content(&model, &plain_request("hi")).await, "kept");
}

#[tokio::test]
async fn models_and_health_answer() {
    let model = FakeModel::start().await.unwrap();
    let models: Value = client()
        .get(format!("{}/models", model.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(models["object"], "list");
    assert_eq!(models["data"][0]["id"], "fake-model");
    assert_eq!(models["data"][0]["object"], "model");

    let health = client()
        .get(format!("http://{}/health", model.addr()))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(health.text().await.unwrap(), "ok");
}

#[tokio::test]
async fn shutdown_ends_hanging_requests_and_stops_listening() {
    let model = FakeModel::start().await.unwrap();
    model.set_default(Behavior::Hang);
    let url = format!("{}/chat/completions", model.base_url());
    let hanging = tokio::spawn({
        let url = url.clone();
        async move { client().post(url).json(&plain_request("hi")).send().await }
    });
    eventually(|| async { model.request_count() == 1 }).await;

    let shut = tokio::time::timeout(DEADLINE, model.shutdown()).await;
    assert!(shut.is_ok(), "shutdown waited on the hanging request");
    let error = hanging.await.unwrap().unwrap_err();
    assert!(error.status().is_none() && !error.is_timeout(), "{error:?}");

    let refused = client().post(url).json(&plain_request("hi")).send().await;
    assert!(refused.unwrap_err().is_connect());
}

#[tokio::test]
async fn dropping_the_handle_stops_the_server() {
    let model = FakeModel::start().await.unwrap();
    let url = format!("http://{}/health", model.addr());
    assert_eq!(client().get(&url).send().await.unwrap().status(), 200);
    drop(model);
    eventually(|| async {
        reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(2))
            .build()
            .unwrap()
            .get(&url)
            .send()
            .await
            .is_err()
    })
    .await;
}

#[tokio::test]
async fn the_handle_debug_shows_the_address() {
    let model = FakeModel::start().await.unwrap();
    let debug = format!("{model:?}");
    assert!(debug.contains(&model.addr().to_string()), "{debug}");
    assert!(model.base_url().ends_with("/v1"));
}
