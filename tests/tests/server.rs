//! The gRPC server end to end over real sockets: config pointing at the fake model, every RPC
//! called with a tonic client, health and reflection, and the error codes clients act on.

// A failing test should stop loudly: unwrap and panic are how tests say so.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use agents_fake_model::{Behavior, FakeModel};
use agents_server::config;
use agents_server::pb::agent_service_client::AgentServiceClient;
use agents_server::pb::{self, execute_stream_event::Event};
use agents_server::serve::{self, Running};
use tokio_stream::StreamExt;
use tonic::transport::Channel;
use tonic::{Code, Request};
use tonic_types::StatusExt;

async fn server(fake: &FakeModel, extra: &str) -> (Running, AgentServiceClient<Channel>) {
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nshutdown_grace_ms = 2000\n\
         [[providers]]\nopenai = {{ id = \"fake\", base_url = \"{}\", model = \"fake-model\" }}\n\
         policies = {{ retry = {{ max_retries = 0 }}, timeout = {{ request_timeout_ms = 5000 }} }}\n{extra}",
        fake.base_url()
    );
    let config = config::parse(&text, Vec::new()).unwrap();
    let running = serve::start(config).await.unwrap();
    let client = AgentServiceClient::connect(format!("http://{}", running.addr))
        .await
        .unwrap();
    (running, client)
}

fn execute(agent: &str, input: serde_json::Value) -> pb::ExecuteRequest {
    pb::ExecuteRequest {
        agent_id: agent.into(),
        input_json: input.to_string(),
        request_id: String::new(),
    }
}

fn rust_input() -> serde_json::Value {
    serde_json::json!({"source_code": "pub fn id<T>(x: T) -> T { x }", "language": "rust"})
}

#[tokio::test]
async fn lists_describes_and_executes_every_agent() {
    let fake = FakeModel::start().await.unwrap();
    let (running, mut client) = server(&fake, "").await;

    let listed = client
        .list_agents(pb::ListAgentsRequest {})
        .await
        .unwrap()
        .into_inner();
    let ids: Vec<&str> = listed.agents.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids, ["code-analysis", "documentation", "test-generation"]);

    for id in ids {
        let described = client
            .describe_agent(pb::DescribeAgentRequest {
                agent_id: id.into(),
            })
            .await
            .unwrap()
            .into_inner();
        let input_schema: serde_json::Value =
            serde_json::from_str(&described.input_schema_json).unwrap();
        let output_schema: serde_json::Value =
            serde_json::from_str(&described.output_schema_json).unwrap();
        assert_eq!(input_schema["type"], "object");

        let mut request = Request::new(execute(id, rust_input()));
        request.metadata_mut().insert(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
                .parse()
                .unwrap(),
        );
        request.set_timeout(Duration::from_secs(20));
        let response = client.execute(request).await.unwrap().into_inner();
        let output: serde_json::Value = serde_json::from_str(&response.output_json).unwrap();
        assert!(
            jsonschema::validator_for(&output_schema)
                .unwrap()
                .is_valid(&output),
            "{id}: {output}"
        );
        let metadata = response.metadata.unwrap();
        assert_eq!(metadata.provider, "fake");
        assert_eq!(metadata.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
    }
    let calls: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/chat/completions"))
        .collect();
    assert_eq!(calls.len(), 3);
    for call in calls {
        let traceparent = call.header("traceparent").unwrap();
        assert!(
            traceparent.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"),
            "{traceparent}"
        );
    }
    running.shutdown().await.unwrap();
}

#[tokio::test]
async fn streams_events_then_the_result() {
    let fake = FakeModel::start().await.unwrap();
    let (running, mut client) = server(&fake, "").await;
    let mut stream = client
        .execute_stream(execute("documentation", rust_input()))
        .await
        .unwrap()
        .into_inner();
    let mut types = Vec::new();
    let mut result = None;
    while let Some(message) = stream.next().await {
        match message.unwrap().event.unwrap() {
            Event::CloudEventJson(json) => {
                let event: serde_json::Value = serde_json::from_str(&json).unwrap();
                assert_eq!(event["specversion"], "1.0");
                types.push(event["type"].as_str().unwrap().to_owned());
            }
            Event::Result(response) => result = Some(response),
        }
    }
    assert_eq!(types.first().map(String::as_str), Some("agent.started"));
    assert!(types.iter().any(|t| t == "agent.completed"), "{types:?}");
    assert!(result.unwrap().output_json.contains("sections"));
    running.shutdown().await.unwrap();
}

#[tokio::test]
async fn tasks_run_in_the_background_and_can_be_cancelled() {
    let fake = FakeModel::start().await.unwrap();
    let (running, mut client) = server(&fake, "").await;
    let submit = |task_id: &str| pb::SubmitTaskRequest {
        agent_id: "test-generation".into(),
        input_json: rust_input().to_string(),
        task_id: task_id.into(),
    };
    let submitted = client
        .submit_task(submit("task-1"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(submitted.task_id, "task-1");
    let task = wait_for_task(&mut client, "task-1", |s| s == pb::TaskState::Completed).await;
    assert!(task.result.unwrap().output_json.contains("tests"));
    assert_eq!(task.attempts, 1);

    fake.set_default(Behavior::Hang);
    client.submit_task(submit("task-2")).await.unwrap();
    wait_for_task(&mut client, "task-2", |s| s == pb::TaskState::Working).await;
    let cancelled = client
        .cancel_task(pb::CancelTaskRequest {
            task_id: "task-2".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(cancelled.state(), pb::TaskState::Canceled);
    let again = client
        .get_task(pb::GetTaskRequest {
            task_id: "task-2".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.state(), pb::TaskState::Canceled);

    let invalid = pb::SubmitTaskRequest {
        agent_id: "test-generation".into(),
        input_json: "{}".into(),
        task_id: String::new(),
    };
    assert_eq!(
        client.submit_task(invalid).await.unwrap_err().code(),
        Code::InvalidArgument,
        "bad input is refused before queueing"
    );
    let missing = client
        .get_task(pb::GetTaskRequest {
            task_id: "nope".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    running.shutdown().await.unwrap();
}

async fn wait_for_task(
    client: &mut AgentServiceClient<Channel>,
    id: &str,
    done: impl Fn(pb::TaskState) -> bool,
) -> pb::Task {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let task = client
            .get_task(pb::GetTaskRequest { task_id: id.into() })
            .await
            .unwrap()
            .into_inner();
        if done(task.state()) {
            return task;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "task {id} stuck in {:?}",
            task.state()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn errors_have_the_codes_clients_act_on() {
    let fake = FakeModel::start().await.unwrap();
    let (running, mut client) = server(&fake, "").await;

    let status = client
        .execute(execute(
            "code-analysis",
            serde_json::json!({"source_code": "x", "language": "cobol"}),
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let violations = status
        .get_error_details()
        .bad_request()
        .unwrap()
        .field_violations
        .clone();
    assert_eq!(violations[0].field, "/language");

    let status = client
        .execute(pb::ExecuteRequest {
            agent_id: "code-analysis".into(),
            input_json: "{oops".into(),
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("input_json is not valid JSON"));

    let status = client
        .execute(execute("nope", rust_input()))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);

    fake.push(Behavior::Status {
        code: 503,
        retry_after: None,
        message: "down".into(),
    });
    let status = client
        .execute(execute("code-analysis", rust_input()))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");

    fake.push(Behavior::Status {
        code: 429,
        retry_after: Some("30".into()),
        message: "busy".into(),
    });
    let status = client
        .execute(execute("code-analysis", rust_input()))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(
        status.get_error_details().retry_info().unwrap().retry_delay,
        Some(Duration::from_secs(30))
    );

    fake.push(Behavior::Hang);
    let mut request = Request::new(execute("code-analysis", rust_input()));
    request.set_timeout(Duration::from_millis(300));
    let status = client.execute(request).await.unwrap_err();
    assert!(
        matches!(status.code(), Code::DeadlineExceeded | Code::Cancelled),
        "{status:?}"
    );
    running.shutdown().await.unwrap();
}

#[tokio::test]
async fn health_and_reflection_answer() {
    let fake = FakeModel::start().await.unwrap();
    let (running, _) = server(&fake, "").await;
    let channel = Channel::from_shared(format!("http://{}", running.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();

    let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    let check = tonic_health::pb::HealthCheckRequest {
        service: "agents.v1.AgentService".into(),
    };
    let answer = health.check(check).await.unwrap().into_inner();
    assert_eq!(
        answer.status(),
        tonic_health::pb::health_check_response::ServingStatus::Serving
    );

    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    let mut reflection = ServerReflectionClient::new(channel.clone());
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut answers = reflection
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let Some(MessageResponse::ListServicesResponse(list)) =
        answers.next().await.unwrap().unwrap().message_response
    else {
        panic!()
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    assert!(
        names.contains(&"agents.v1.AgentService".to_owned()),
        "{names:?}"
    );

    use tonic_reflection::pb::v1alpha::ServerReflectionRequest as AlphaReflectionRequest;
    use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient as AlphaClient;
    use tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest as AlphaRequest;
    let mut alpha = AlphaClient::new(channel);
    let request = AlphaReflectionRequest {
        host: String::new(),
        message_request: Some(AlphaRequest::ListServices(String::new())),
    };
    let mut answers = alpha
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    assert!(
        answers.next().await.unwrap().is_ok(),
        "v1alpha answers too (grpcio-reflection speaks only it)"
    );
    running.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_public_address_without_auth_is_refused() {
    let config = config::parse("[server]\nlisten = \"0.0.0.0:0\"\n", Vec::new()).unwrap();
    let error = serve::start(config).await.unwrap_err();
    assert!(
        error
            .to_string()
            .contains("refusing to listen on 0.0.0.0:0 without authentication"),
        "{error}"
    );
}
