//! Offline mode end to end: a server with no model configured answers every agent from code facts
//! (`degraded: true`, valid against the output schema); with the fake model up, the prompt it
//! receives carries the facts.

// A failing test should stop loudly: unwrap and panic are how tests say so.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use agents_fake_model::FakeModel;
use agents_server::config;
use agents_server::pb::agent_service_client::AgentServiceClient;
use agents_server::pb::{self};
use agents_server::serve::{self, Running};
use tonic::Code;
use tonic::transport::Channel;

const RUST: &str = r#"/// Absolute value, the long way.
pub fn magnitude(x: i64) -> i64 {
    if x > 0 {
        x
    } else if x == 0 {
        0
    } else {
        -x
    }
}

fn helper() {}
"#;

async fn server(providers: &str) -> (Running, AgentServiceClient<Channel>, tempfile::TempDir) {
    let audit = tempfile::tempdir().unwrap();
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nmetrics_listen = \"127.0.0.1:0\"\n\
         [bus.audit]\ndir = \"{}\"\n{providers}",
        audit.path().display(),
    );
    let mut config = config::parse(&text, Vec::new()).unwrap();
    if providers.is_empty() {
        // `parse` layers the file over the embedded defaults, which name a local gateway.
        config.providers.clear();
    }
    let running = serve::start(config).await.unwrap();
    let client = AgentServiceClient::connect(format!("http://{}", running.addr))
        .await
        .unwrap();
    (running, client, audit)
}

fn request(agent: &str, extra: serde_json::Value) -> pb::ExecuteRequest {
    let mut input = serde_json::json!({"source_code": RUST, "language": "rust"});
    input
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    pb::ExecuteRequest {
        agent_id: agent.into(),
        input_json: input.to_string(),
        request_id: String::new(),
    }
}

#[tokio::test]
async fn without_a_model_every_agent_answers_from_the_facts() {
    let (running, mut client, _audit) = server("").await;
    for agent in ["code-analysis", "documentation", "test-generation"] {
        let described = client
            .describe_agent(pb::DescribeAgentRequest {
                agent_id: agent.into(),
            })
            .await
            .unwrap()
            .into_inner();
        let schema: serde_json::Value =
            serde_json::from_str(&described.output_schema_json).unwrap();
        let response = client
            .execute(request(agent, serde_json::json!({})))
            .await
            .unwrap()
            .into_inner();
        let output: serde_json::Value = serde_json::from_str(&response.output_json).unwrap();
        assert!(
            jsonschema::validator_for(&schema)
                .unwrap()
                .is_valid(&output),
            "{agent}: {output}"
        );
        assert_eq!(output["degraded"], true, "{agent}: {output}");
        let metadata = response.metadata.unwrap();
        assert!(metadata.degraded, "{agent}");
        assert!(
            metadata
                .degraded_reason
                .contains("no-model-configured (unavailable)"),
            "{agent}: {}",
            metadata.degraded_reason
        );
        assert!(metadata.provider.is_empty());
        match agent {
            // if + else-if: two decision points, counted by the parser, not guessed.
            "code-analysis" => assert_eq!(output["complexity"]["cyclomatic"], 3, "{output}"),
            "documentation" => assert!(output.to_string().contains("magnitude"), "{output}"),
            _ => {
                let names: Vec<&str> = output["tests"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|t| t["name"].as_str().unwrap())
                    .collect();
                assert_eq!(
                    names.len(),
                    1,
                    "one skeleton per public function: {names:?}"
                );
                assert!(names[0].contains("magnitude"), "{names:?}");
            }
        }
    }

    // A caller that wants a model's answer or nothing gets UNAVAILABLE.
    let refused = client
        .execute(request(
            "code-analysis",
            serde_json::json!({"allow_degraded": false}),
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
    // Answers made without a model have no model exchange: they count as requests, and the
    // gateway overhead, which needs one, leaves them out.
    let text = support::metrics_text(running.metrics_addr.unwrap()).await;
    assert!(
        text.contains("agents_requests_total{agent=\"code-analysis\",code=\"OK\"} 1"),
        "{text}"
    );
    assert!(
        !text.contains("agents_gateway_overhead_seconds_count{"),
        "{text}"
    );
    running.shutdown().await.unwrap();
}

#[tokio::test]
async fn with_a_model_the_prompt_carries_the_facts() {
    let fake = FakeModel::start().await.unwrap();
    let providers = format!(
        "[[providers]]\nopenai = {{ id = \"fake\", base_url = \"{}\", model = \"fake-model\" }}\n",
        fake.base_url()
    );
    let (running, mut client, _audit) = server(&providers).await;
    let response = client
        .execute(request("code-analysis", serde_json::json!({})))
        .await
        .unwrap()
        .into_inner();
    let metadata = response.metadata.unwrap();
    assert!(!metadata.degraded);
    assert_eq!(metadata.provider, "fake");
    let output: serde_json::Value = serde_json::from_str(&response.output_json).unwrap();
    assert_eq!(output["complexity"]["cyclomatic"], 3, "{output}");
    let prompt = fake
        .requests()
        .into_iter()
        .find(|r| r.path.ends_with("/chat/completions"))
        .unwrap()
        .body
        .to_string();
    assert!(
        prompt.contains("pub fn magnitude(x: i64) -> i64"),
        "the prompt names the real signature: {prompt}"
    );
    running.shutdown().await.unwrap();
}
