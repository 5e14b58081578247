//! One request end to end, as ARCHITECTURE.md draws it, minus the gRPC front end: an agent
//! validates its input, prompts a fallback chain of fully-stacked OpenAI-compatible providers
//! over real HTTP (the fake model plays the LLM), and returns output valid against its schema,
//! with the trace context carried to the model and into every event.

// A failing test should stop loudly: unwrap and panic are how tests say so.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use agents_core::{
    AgentConfig, AgentContext, AgentError, EventSink, MemorySink, TraceContext, builtin_agents,
};
use agents_fake_model::{Behavior, FakeModel};
use agents_providers::{FallbackChain, OpenAiConfig, OpenAiProvider, PolicyConfig, Stack};
use serde_json::json;

async fn chain(
    primary: &FakeModel,
    secondary: &FakeModel,
    events: Arc<dyn EventSink>,
) -> Arc<FallbackChain> {
    let stacked = |fake: &FakeModel, id: &str| {
        let adapter =
            OpenAiProvider::new(OpenAiConfig::new(id, fake.base_url(), "fake-model"), None)
                .unwrap();
        Stack::new(Arc::new(adapter))
            .events(events.clone())
            .build(&PolicyConfig::default())
            .unwrap()
    };
    let providers = vec![stacked(primary, "primary"), stacked(secondary, "secondary")];
    Arc::new(FallbackChain::ordered("default", providers, events))
}

#[tokio::test]
async fn every_agent_answers_through_the_stack_with_valid_output() {
    let primary = FakeModel::start().await.unwrap();
    let secondary = FakeModel::start().await.unwrap();
    let events = MemorySink::new();
    let chain = chain(&primary, &secondary, Arc::new(events.clone())).await;
    let trace = TraceContext::parse(
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        None,
    )
    .unwrap();
    let code = "def add(a, b):\n    return a + b  # <T> stays\n";

    for agent in builtin_agents(&AgentConfig::default()).unwrap() {
        let ctx = AgentContext::new(chain.clone())
            .with_trace(trace.clone())
            .with_events(Arc::new(events.clone()))
            .with_timeout(Duration::from_secs(30));
        let done = agent
            .execute(&ctx, json!({"source_code": code, "language": "python"}))
            .await
            .unwrap();
        let validator = jsonschema::validator_for(agent.output_schema()).unwrap();
        assert!(
            validator.is_valid(&done.output),
            "{}: {}",
            agent.id(),
            done.output
        );
        assert_eq!(done.metadata.provider.as_deref(), Some("primary"));
        assert_eq!(done.metadata.trace_id, trace.trace_id());
    }

    let requests = primary.requests();
    assert_eq!(requests.len(), 3);
    for request in &requests {
        let traceparent = request.header("traceparent").unwrap();
        assert!(
            traceparent.starts_with(&format!("00-{}-", trace.trace_id())),
            "{traceparent}"
        );
        let user = request.body["messages"][1]["content"].as_str().unwrap();
        assert!(
            user.contains(code),
            "the code reaches the model byte for byte"
        );
    }
    let events = events.events();
    assert!(events.iter().any(|e| e.event_type == "provider.request"));
    assert!(events.iter().any(|e| e.event_type == "provider.success"));
    for event in events {
        let traceparent = event.traceparent.clone().unwrap_or_default();
        let same_trace = traceparent.starts_with(&format!("00-{}-", trace.trace_id()));
        assert!(same_trace, "{}: {traceparent}", event.event_type);
    }
    assert_eq!(secondary.request_count(), 0);
}

#[tokio::test]
async fn an_outage_of_the_primary_is_invisible_and_a_total_outage_is_typed() {
    let primary = FakeModel::start().await.unwrap();
    let secondary = FakeModel::start().await.unwrap();
    primary.set_default(Behavior::Status {
        code: 503,
        retry_after: None,
        message: "down".into(),
    });
    let events = MemorySink::new();
    let chain = chain(&primary, &secondary, Arc::new(events.clone())).await;
    let agents = builtin_agents(&AgentConfig::default()).unwrap();
    let agent = &agents[0];
    let input = json!({"source_code": "fn main() {}", "language": "rust"});

    let done = agent
        .execute(&AgentContext::new(chain.clone()), input.clone())
        .await
        .unwrap();
    assert_eq!(done.metadata.provider.as_deref(), Some("secondary"));
    assert!(
        done.metadata.fallbacks.iter().all(|p| p == "primary")
            && !done.metadata.fallbacks.is_empty()
    );
    assert!(events.types().iter().any(|t| t == "provider.fallback"));

    secondary.set_default(Behavior::Drop);
    match agent.execute(&AgentContext::new(chain), input).await {
        Err(AgentError::AllProvidersFailed { attempts }) => {
            assert_eq!(
                attempts.first().map(|a| a.provider.as_str()),
                Some("primary")
            );
            assert!(attempts.iter().any(|a| a.provider == "secondary"));
        }
        other => panic!("expected AllProvidersFailed, got {other:?}"),
    }
}
