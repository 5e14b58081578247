//! `server.max_message_bytes` end to end: a request over the limit is refused by tonic before
//! any agent code runs, with OUT_OF_RANGE, and the server keeps serving without a panic.
//!
//! The code is tonic's (0.14, `codec/decode.rs`): its decoder refuses a message whose length
//! prefix is over `max_decoding_message_size` with `Code::OutOfRange` ("decoded message length
//! too large"), for unary and streaming calls alike, before reading the body. It answers
//! RESOURCE_EXHAUSTED only for a compressed message that inflates past the limit, and this
//! server accepts no compressed requests, so clients see OUT_OF_RANGE.

// A failing test should stop loudly: unwrap and panic are how tests say so.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};

use agents_fake_model::FakeModel;
use agents_server::pb::{self, agent_service_client::AgentServiceClient};
use tonic::Code;

static PANICS: AtomicUsize = AtomicUsize::new(0);

fn execute(source: &str) -> pb::ExecuteRequest {
    pb::ExecuteRequest {
        agent_id: "code-analysis".into(),
        input_json: serde_json::json!({"source_code": source, "language": "rust"}).to_string(),
        request_id: String::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_over_max_message_bytes_is_out_of_range_and_the_server_keeps_serving() {
    // Counts panics on any thread (tonic's and the server's tasks included).
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICS.fetch_add(1, Ordering::SeqCst);
        previous(info);
    }));

    let fake = FakeModel::start().await.unwrap();
    let audit = tempfile::tempdir().unwrap();
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nmetrics_listen = \"127.0.0.1:0\"\nmax_message_bytes = 4096\n\
         [agents]\nmax_source_bytes = 2048\n\
         [bus.audit]\ndir = \"{}\"\n\
         [[providers]]\nopenai = {{ id = \"fake\", base_url = \"{}\", model = \"fake-model\" }}\n",
        audit.path().display(),
        fake.base_url()
    );
    let (running, mut client) = support::serve_config(&text).await;
    let huge = "x".repeat(64 * 1024);

    let refused = client.execute(execute(&huge)).await.unwrap_err();
    assert_eq!(refused.code(), Code::OutOfRange, "{refused:?}");
    assert!(
        refused.message().contains("message length too large"),
        "{refused:?}"
    );
    let refused = client.execute_stream(execute(&huge)).await.unwrap_err();
    assert_eq!(refused.code(), Code::OutOfRange, "{refused:?}");
    let chats = || {
        fake.requests()
            .iter()
            .filter(|r| r.path.ends_with("/chat/completions"))
            .count()
    };
    assert_eq!(chats(), 0, "no agent ran");

    // Under the message limit but over the agent's source limit: the agent refuses it.
    let refused = client
        .execute(execute(&"x".repeat(3000)))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");

    // The same connection and a new one still get answers.
    let answered = client.execute(execute("fn f() {}")).await.unwrap();
    assert!(answered.into_inner().output_json.contains("suggestions"));
    let mut fresh = AgentServiceClient::connect(format!("http://{}", running.addr))
        .await
        .unwrap();
    let listed = fresh.list_agents(pb::ListAgentsRequest {}).await.unwrap();
    assert_eq!(listed.into_inner().agents.len(), 3);

    running.shutdown().await.unwrap();
    assert_eq!(PANICS.load(Ordering::SeqCst), 0, "something panicked");
}
