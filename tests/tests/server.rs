//! The gRPC server end to end over real sockets: config pointing at the fake model, every RPC
//! called with a tonic client, health and reflection, and the error codes clients act on.

// A failing test should stop loudly: unwrap and panic are how tests say so.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

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

/// A running server, its client, and the temp dir holding its audit log.
type Served = (Running, AgentServiceClient<Channel>, tempfile::TempDir);

async fn server(fake: &FakeModel, extra: &str) -> Served {
    let audit = tempfile::tempdir().unwrap();
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nmetrics_listen = \"127.0.0.1:0\"\nshutdown_grace_ms = 2000\n\
         [bus.audit]\ndir = \"{}\"\n\
         [[providers]]\nopenai = {{ id = \"fake\", base_url = \"{}\", model = \"fake-model\" }}\n\
         policies = {{ retry = {{ max_retries = 0 }}, timeout = {{ request_timeout_ms = 5000 }} }}\n{extra}",
        audit.path().display(),
        fake.base_url()
    );
    let (running, client) = support::serve_config(&text).await;
    (running, client, audit)
}

fn execute(agent: &str, input: serde_json::Value) -> pb::ExecuteRequest {
    pb::ExecuteRequest {
        agent_id: agent.into(),
        input_json: input.to_string(),
        request_id: String::new(),
    }
}

/// An input that wants a model's answer or an error, never a degraded answer from code facts.
fn strict_input() -> serde_json::Value {
    let mut input = rust_input();
    input["allow_degraded"] = false.into();
    input
}

fn rust_input() -> serde_json::Value {
    serde_json::json!({"source_code": "pub fn id<T>(x: T) -> T { x }", "language": "rust"})
}

#[tokio::test]
async fn lists_describes_and_executes_every_agent() {
    let fake = FakeModel::start().await.unwrap();
    let (running, mut client, _audit) = server(&fake, "").await;

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
        // Microsecond timings: the runtime's overhead is their difference.
        assert!(metadata.provider_latency_us > 0, "{metadata:?}");
        assert!(
            metadata.latency_us >= metadata.provider_latency_us,
            "{metadata:?}"
        );
        // The model's exchange is part of the provider chain's time.
        assert!(metadata.upstream_latency_us > 0, "{metadata:?}");
        assert!(
            metadata.provider_latency_us >= metadata.upstream_latency_us,
            "{metadata:?}"
        );
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
    let (running, mut client, _audit) = server(&fake, "").await;
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
    let result = result.unwrap();
    assert!(result.output_json.contains("sections"));
    // The stream's result is written as Execute writes its own: the same text for the same
    // answer, and the whole call's time, of which the model's exchange is a part.
    let unary = client
        .execute(execute("documentation", rust_input()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(result.output_json, unary.output_json);
    let metadata = result.metadata.unwrap();
    assert!(metadata.upstream_latency_us > 0, "{metadata:?}");
    assert!(
        metadata.latency_us >= metadata.provider_latency_us
            && metadata.provider_latency_us >= metadata.upstream_latency_us,
        "{metadata:?}"
    );
    running.shutdown().await.unwrap();
}

#[tokio::test]
async fn tasks_run_in_the_background_and_can_be_cancelled() {
    let fake = FakeModel::start().await.unwrap();
    let (running, mut client, _audit) = server(&fake, "").await;
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

/// The status of a call that wants the model's answer, when the model answers HTTP `code`
/// (with `Retry-After: retry_after`).
async fn answered_with(
    client: &mut AgentServiceClient<Channel>,
    fake: &FakeModel,
    code: u16,
    retry_after: Option<&str>,
) -> tonic::Status {
    fake.push(Behavior::Status {
        code,
        retry_after: retry_after.map(Into::into),
        message: format!("the model said {code}"),
    });
    client
        .execute(execute("code-analysis", strict_input()))
        .await
        .unwrap_err()
}

#[tokio::test]
async fn errors_have_the_codes_clients_act_on() {
    let fake = FakeModel::start().await.unwrap();
    let (running, mut client, _audit) = server(&fake, "").await;

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

    // With a degraded answer refused, all providers down is UNAVAILABLE (offline answers are
    // tested in offline.rs).
    let status = answered_with(&mut client, &fake, 503, None).await;
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");

    // Every provider refused the request itself: retrying cannot help.
    let status = answered_with(&mut client, &fake, 400, None).await;
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");

    let status = answered_with(&mut client, &fake, 429, Some("30")).await;
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(
        status.get_error_details().retry_info().unwrap().retry_delay,
        Some(Duration::from_secs(30))
    );

    fake.push(Behavior::Hang);
    let mut request = Request::new(execute("code-analysis", strict_input()));
    request.set_timeout(Duration::from_millis(300));
    let status = client.execute(request).await.unwrap_err();
    assert!(
        matches!(status.code(), Code::DeadlineExceeded | Code::Cancelled),
        "{status:?}"
    );
    running.shutdown().await.unwrap();
}

/// The field a status's first `BadRequest` violation names.
fn violated_field(status: &tonic::Status) -> String {
    status
        .get_error_details()
        .bad_request()
        .map(|b| b.field_violations[0].field.clone())
        .unwrap_or_default()
}

#[tokio::test]
async fn client_ids_are_checked_before_they_name_a_run() {
    let fake = FakeModel::start().await.unwrap();
    let (running, mut client, _audit) = server(&fake, "").await;
    // A space, a dot, and an id too long to carry in every event and audit line of the run.
    for bad in ["a b", "v1.2", &"x".repeat(129)] {
        let mut request = execute("code-analysis", rust_input());
        request.request_id = bad.into();
        let status = client.execute(request.clone()).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{bad}: {status:?}");
        assert_eq!(violated_field(&status), "request_id");
        let status = client.execute_stream(request).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{bad}: {status:?}");
        let status = client
            .submit_task(pb::SubmitTaskRequest {
                agent_id: "test-generation".into(),
                input_json: rust_input().to_string(),
                task_id: bad.into(),
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{bad}: {status:?}");
        assert_eq!(violated_field(&status), "task_id");
    }
    let chats = fake
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/chat/completions"))
        .count();
    assert_eq!(chats, 0, "refused ids never reach the model");

    let mut request = execute("code-analysis", rust_input());
    request.request_id = format!("Req-{}_1", "x".repeat(122));
    let done = client.execute(request).await.unwrap().into_inner();
    assert_eq!(
        done.metadata.unwrap().request_id,
        format!("Req-{}_1", "x".repeat(122)),
        "128 characters is the longest id taken"
    );
    running.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_inline_task_holds_its_tenants_slot_until_it_ends() {
    let fake = FakeModel::start().await.unwrap();
    // The model never answers: the task runs until the provider's 5 s timeout ends it.
    fake.set_default(Behavior::Hang);
    let (running, mut client, _audit) =
        server(&fake, "[limits]\ntenant_max_concurrent = 1\n").await;
    let submit = |task_id: &str| pb::SubmitTaskRequest {
        agent_id: "test-generation".into(),
        input_json: strict_input().to_string(),
        task_id: task_id.into(),
    };
    client.submit_task(submit("first")).await.unwrap();
    wait_for_task(&mut client, "first", |s| s == pb::TaskState::Working).await;

    let refused = client.submit_task(submit("second")).await.unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    let refused = client
        .execute(execute("code-analysis", rust_input()))
        .await
        .unwrap_err();
    assert_eq!(
        refused.code(),
        Code::ResourceExhausted,
        "a running task and a call share the tenant's slots: {refused:?}"
    );

    // Submitting the running task again is a retry: it answers with the task, not a refusal.
    let again = client
        .submit_task(submit("first"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (again.task_id.as_str(), again.state()),
        ("first", pb::TaskState::Working)
    );

    let first = wait_for_task(&mut client, "first", |s| s == pb::TaskState::Failed).await;
    assert_eq!(first.error_kind, "all_providers_failed", "{first:?}");
    client.submit_task(submit("third")).await.unwrap();
    wait_for_task(&mut client, "third", |s| s == pb::TaskState::Working).await;
    // A task shown cancelled has given its slot back: the next submit is taken at once.
    client
        .cancel_task(pb::CancelTaskRequest {
            task_id: "third".into(),
        })
        .await
        .unwrap();
    fake.set_default(Behavior::Answer);
    client.submit_task(submit("fourth")).await.unwrap();
    wait_for_task(&mut client, "fourth", |s| s == pb::TaskState::Completed).await;
    running.shutdown().await.unwrap();
}

#[tokio::test]
async fn health_watchers_hear_not_serving_when_the_server_drains() {
    use tonic_health::pb::health_check_response::ServingStatus;
    let fake = FakeModel::start().await.unwrap();
    let (running, _, _audit) = server(&fake, "").await;
    let channel = support::channel(running.addr).await;
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let mut watches = Vec::new();
    for service in ["", "agents.v1.AgentService"] {
        let request = tonic_health::pb::HealthCheckRequest {
            service: service.into(),
        };
        let mut watch = health.watch(request).await.unwrap().into_inner();
        let first = watch.message().await.unwrap().unwrap();
        assert_eq!(first.status(), ServingStatus::Serving, "{service:?}");
        watches.push((service, watch));
    }
    let shutdown = tokio::spawn(running.shutdown());
    for (service, watch) in &mut watches {
        // A hang guard, not a timing check: without the change the stream stays silent.
        let next = tokio::time::timeout(Duration::from_secs(30), watch.message())
            .await
            .expect("no health change while the server drains")
            .unwrap()
            .unwrap();
        assert_eq!(next.status(), ServingStatus::NotServing, "{service:?}");
    }
    // The watches are calls in flight: the drain ends once their client hangs up.
    drop(watches);
    shutdown.await.unwrap().unwrap();
}

#[tokio::test]
async fn health_and_reflection_answer() {
    let fake = FakeModel::start().await.unwrap();
    let (running, _, _audit) = server(&fake, "").await;
    let channel = support::channel(running.addr).await;

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

#[tokio::test]
async fn graceful_shutdown_finishes_calls_in_flight_and_loses_no_audit_event() {
    let fake = FakeModel::start().await.unwrap();
    let (running, client, audit) = server(&fake, "").await;
    // Every call takes a while at the model, so shutdown starts while they are in flight.
    fake.set_default(Behavior::Delay {
        delay: Duration::from_millis(400),
        then: Box::new(Behavior::Answer),
    });
    let mut calls = Vec::new();
    for _ in 0..5 {
        let mut client = client.clone();
        calls.push(tokio::spawn(async move {
            client.execute(execute("code-analysis", rust_input())).await
        }));
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while fake.request_count() < 5 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the calls never reached the model"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    running.shutdown().await.unwrap();
    for call in calls {
        let response = call.await.unwrap().unwrap().into_inner();
        assert!(
            response.output_json.contains("confidence"),
            "in-flight calls finish"
        );
    }

    let types: Vec<String> = audit_events(audit.path())
        .into_iter()
        .map(|(kind, _)| kind)
        .collect();
    for kind in [
        "agent.started",
        "provider.request",
        "provider.success",
        "agent.completed",
    ] {
        assert_eq!(
            types.iter().filter(|t| *t == kind).count(),
            5,
            "{kind} in {types:?}"
        );
    }
}

/// The audit lines (type and data) of the one audit file in `dir`, checked intact.
fn audit_events(dir: &std::path::Path) -> Vec<(String, serde_json::Value)> {
    let files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let report = agents_bus::verify_audit_file(&files[0]).unwrap();
    assert!(report.is_intact(), "{report:?}");
    std::fs::read_to_string(&files[0])
        .unwrap()
        .lines()
        .map(|l| {
            let line: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                line["type"].as_str().unwrap().to_owned(),
                line["data"].clone(),
            )
        })
        .collect()
}

/// How the run of task `id` ended in the audit log: `agent.completed`, or `agent.failed` with
/// its error kind.
fn run_end(events: &[(String, serde_json::Value)], id: &str) -> Option<String> {
    events.iter().find_map(|(kind, data)| {
        (data["request_id"] == id).then_some(())?;
        match kind.as_str() {
            "agent.completed" => Some(kind.clone()),
            "agent.failed" => Some(format!("{kind}: {}", data["error_kind"])),
            _ => None,
        }
    })
}

/// A server with a 300 ms shutdown grace period and the default provider policies (a 120 s
/// request timeout), in front of a model that never answers.
async fn short_grace_server_at_a_hung_model() -> (FakeModel, Served) {
    let fake = FakeModel::start().await.unwrap();
    fake.set_default(Behavior::Hang);
    let audit = tempfile::tempdir().unwrap();
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nshutdown_grace_ms = 300\n\
         [bus.audit]\ndir = \"{}\"\n\
         [[providers]]\nopenai = {{ id = \"fake\", base_url = \"{}\", model = \"fake-model\" }}\n",
        audit.path().display(),
        fake.base_url()
    );
    let (running, client) = support::serve_config(&text).await;
    (fake, (running, client, audit))
}

/// Waits (within a bound) until the model has been asked for a completion once (the server's
/// start-up health check of the provider is a request too).
async fn reached_the_model(fake: &FakeModel) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let asked = |fake: &FakeModel| {
        fake.requests()
            .iter()
            .any(|r| r.path.ends_with("/chat/completions"))
    };
    while !asked(fake) {
        assert!(tokio::time::Instant::now() < deadline, "the task never ran");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Inline tasks outlive their SubmitTask call, so the HTTP/2 drain did not wait for them: a
/// shutdown dropped them mid-run, with no end in the audit log. Now a task that finishes
/// within the grace period finishes, and one that does not is cancelled, both on record.
#[tokio::test]
async fn shutdown_lets_inline_tasks_finish_within_the_grace_period_and_cancels_the_rest() {
    let submit = |task_id: &str| pb::SubmitTaskRequest {
        agent_id: "code-analysis".into(),
        input_json: strict_input().to_string(),
        task_id: task_id.into(),
    };

    // Done within the grace period (2 s): it finishes, and its events are written.
    let fake = FakeModel::start().await.unwrap();
    fake.set_default(Behavior::Delay {
        delay: Duration::from_millis(300),
        then: Box::new(Behavior::Answer),
    });
    let (running, mut client, audit) = server(&fake, "").await;
    client.submit_task(submit("finishes")).await.unwrap();
    reached_the_model(&fake).await;
    running.shutdown().await.unwrap();
    assert_eq!(
        run_end(&audit_events(audit.path()), "finishes").as_deref(),
        Some("agent.completed")
    );

    // Still at the model when the grace period (300 ms) ends: cancelled, and on record.
    let (fake, (running, mut client, audit)) = short_grace_server_at_a_hung_model().await;
    client.submit_task(submit("cut-off")).await.unwrap();
    reached_the_model(&fake).await;
    running.shutdown().await.unwrap();
    assert_eq!(
        run_end(&audit_events(audit.path()), "cut-off").as_deref(),
        Some("agent.failed: \"cancelled\"")
    );
}

/// A call still running when the grace period ends is cut off: tonic runs connections as tasks
/// of their own, so dropping the server future at the end of the grace period used to leave
/// such a call running (here, for the provider's 120 s timeout), its events going nowhere.
#[tokio::test]
async fn calls_still_running_when_the_grace_period_ends_are_cut_off() {
    let (fake, (running, client, audit)) = short_grace_server_at_a_hung_model().await;
    let call = tokio::spawn(async move {
        let mut client = client;
        client
            .execute(execute("code-analysis", strict_input()))
            .await
    });
    reached_the_model(&fake).await;
    running.shutdown().await.unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(20), call)
        .await
        .expect("the call is still running after the grace period")
        .unwrap();
    let status = ended.unwrap_err();
    assert!(
        matches!(
            status.code(),
            Code::Unavailable | Code::Cancelled | Code::Unknown | Code::Internal
        ),
        "{status:?}"
    );
    // Its run is ended on record before the event pipeline closes.
    let events = audit_events(audit.path());
    let ends: Vec<&serde_json::Value> = events
        .iter()
        .filter(|(kind, _)| kind == "agent.failed")
        .map(|(_, data)| &data["error_kind"])
        .collect();
    assert_eq!(ends, ["cancelled"], "{events:?}");
}

/// A request carrying an API key.
fn with_key<T>(message: T, key: &str) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {key}").parse().unwrap());
    request
}

#[tokio::test]
async fn api_keys_decide_who_may_call_what_and_see_which_tasks() {
    let fake = FakeModel::start().await.unwrap();
    let digest = agents_server::auth::digest_hex;
    let auth = format!(
        "[auth]\nkeys = [\n\
         {{ id = \"reader\", tenant = \"a\", roles = [\"read\"], sha256 = \"{}\" }},\n\
         {{ id = \"ci-a\", tenant = \"a\", roles = [\"execute\"], sha256 = \"{}\" }},\n\
         {{ id = \"ci-b\", tenant = \"b\", roles = [\"execute\"], sha256 = \"{}\" }},\n]\n",
        digest("read-key-0123456789"),
        digest("exec-key-a-0123456789"),
        digest("exec-key-b-0123456789"),
    );
    let (running, mut client, _audit) = server(&fake, &auth).await;

    let status = client
        .list_agents(pb::ListAgentsRequest {})
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(status.message().contains("missing API key"));
    let status = client
        .list_agents(with_key(pb::ListAgentsRequest {}, "wrong-key-0123456789"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(
        !status.message().contains("wrong-key-0123456789"),
        "the presented key is never echoed"
    );

    assert!(
        client
            .list_agents(with_key(pb::ListAgentsRequest {}, "read-key-0123456789"))
            .await
            .is_ok()
    );
    let status = client
        .execute(with_key(
            execute("code-analysis", rust_input()),
            "read-key-0123456789",
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert!(
        status
            .message()
            .contains("`reader` lacks the `execute` role"),
        "{}",
        status.message()
    );

    assert!(
        client
            .execute(with_key(
                execute("code-analysis", rust_input()),
                "exec-key-a-0123456789"
            ))
            .await
            .is_ok()
    );
    let submit = pb::SubmitTaskRequest {
        agent_id: "documentation".into(),
        input_json: rust_input().to_string(),
        task_id: "t-a".into(),
    };
    client
        .submit_task(with_key(submit, "exec-key-a-0123456789"))
        .await
        .unwrap();
    let get = |key: &'static str| {
        with_key(
            pb::GetTaskRequest {
                task_id: "t-a".into(),
            },
            key,
        )
    };
    assert!(client.get_task(get("exec-key-a-0123456789")).await.is_ok());
    let status = client
        .get_task(get("exec-key-b-0123456789"))
        .await
        .unwrap_err();
    assert_eq!(
        status.code(),
        Code::NotFound,
        "another tenant's task is invisible"
    );
    let cancel = with_key(
        pb::CancelTaskRequest {
            task_id: "t-a".into(),
        },
        "exec-key-b-0123456789",
    );
    assert_eq!(
        client.cancel_task(cancel).await.unwrap_err().code(),
        Code::NotFound
    );
    running.shutdown().await.unwrap();
}

#[tokio::test]
async fn load_beyond_the_in_flight_cap_is_shed_at_once_and_then_served() {
    let fake = FakeModel::start().await.unwrap();
    fake.set_default(Behavior::Delay {
        delay: Duration::from_millis(1500),
        then: Box::new(Behavior::Answer),
    });
    let cap = 4;
    let (running, client, _audit) =
        server(&fake, &format!("[limits]\nmax_in_flight = {cap}\n")).await;
    let mut calls = Vec::new();
    for _ in 0..cap + 100 {
        let mut client = client.clone();
        calls.push(tokio::spawn(async move {
            client.execute(execute("code-analysis", rust_input())).await
        }));
    }
    let mut ok = 0;
    let mut shed = 0;
    for call in calls {
        match call.await.unwrap() {
            Ok(_) => ok += 1,
            Err(status) => {
                assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
                shed += 1;
            }
        }
    }
    assert_eq!((ok, shed), (cap, 100));
    assert!(
        fake.request_count() <= cap + 1,
        "shed calls never reach the model"
    );
    fake.set_default(Behavior::Answer);
    let mut client = client.clone();
    assert!(
        client
            .execute(execute("code-analysis", rust_input()))
            .await
            .is_ok(),
        "served normally after the burst"
    );
    running.shutdown().await.unwrap();
}

#[tokio::test]
async fn metrics_health_and_readiness_answer_over_http() {
    let fake = FakeModel::start().await.unwrap();
    let (running, mut client, _audit) = server(&fake, "").await;
    // The same file twice: parsed once, then answered from the facts cache with the same facts.
    let mut answers = Vec::new();
    for _ in 0..2 {
        let reply = client
            .execute(execute("code-analysis", rust_input()))
            .await
            .unwrap()
            .into_inner();
        let output: serde_json::Value = serde_json::from_str(&reply.output_json).unwrap();
        answers.push(output["complexity"].clone());
    }
    assert_eq!(answers[0], answers[1]);
    assert!(answers[0].is_object(), "{answers:?}");
    let status = client
        .execute(execute(
            "code-analysis",
            serde_json::json!({"language": "go"}),
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);

    let addr = running.metrics_addr.unwrap();
    let get = |path: &'static str| async move {
        let response = reqwest::get(format!("http://{addr}{path}")).await.unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    };
    assert_eq!(get("/healthz").await.0, 200);
    assert_eq!(get("/readyz").await.0, 200);
    let (code, text) = get("/metrics").await;
    assert_eq!(code, 200);
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap();
    let value = |name: &str, labels: &[(&str, &str)]| -> f64 {
        scrape
            .samples
            .iter()
            .filter(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .map(|s| match s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                _ => 0.0,
            })
            .sum()
    };
    assert_eq!(
        value(
            "agents_requests_total",
            &[("agent", "code-analysis"), ("code", "OK")]
        ),
        2.0,
        "{text}"
    );
    assert_eq!(value("agents_facts_cache_misses_total", &[]), 1.0, "{text}");
    assert_eq!(value("agents_facts_cache_hits_total", &[]), 1.0, "{text}");
    assert!(value("agents_facts_cache_bytes", &[]) > 0.0, "{text}");
    assert_eq!(
        value(
            "agents_requests_total",
            &[("agent", "code-analysis"), ("code", "INVALID_ARGUMENT")]
        ),
        1.0
    );
    assert!(
        value("agents_provider_requests_total", &[("provider", "fake")]) >= 1.0,
        "{text}"
    );
    assert!(text.contains("agents_request_duration_seconds"));
    // Both answers came from the fake model over HTTP, so each says what the server added
    // to the model's exchange: more than nothing, less than the calls' whole time.
    let agent = [("agent", "code-analysis")];
    assert_eq!(
        value("agents_gateway_overhead_seconds_count", &agent),
        2.0,
        "{text}"
    );
    let gateway = value("agents_gateway_overhead_seconds_sum", &agent);
    let total = value("agents_request_duration_seconds_sum", &agent);
    // The exchange is part of the provider chain's time, so the gateway overhead is at least
    // the runtime overhead, which leaves the whole chain out.
    let runtime = value("agents_runtime_overhead_seconds_sum", &agent);
    assert!(gateway >= runtime, "{gateway} < {runtime}\n{text}");
    assert!(
        gateway > 0.0 && gateway < total,
        "{gateway} of {total}\n{text}"
    );
    assert!(text.contains("agents_bus_published_total"), "{text}");
    // The provider's concurrency quota, idle now; and the numbers of the in-process bus
    // (delivery, lag) and of the audit log next to each other.
    assert!(text.contains("# TYPE agents_quota_waiting gauge"), "{text}");
    assert!(
        text.contains("agents_quota_waiting{provider=\"fake\"} 0"),
        "{text}"
    );
    assert!(
        text.contains("agents_quota_in_flight{provider=\"fake\"} 0"),
        "{text}"
    );
    assert!(text.contains("agents_bus_lagged_total"), "{text}");
    assert!(
        value("agents_bus_audit_appended_total", &[]) >= 1.0,
        "{text}"
    );
    assert_eq!(value("agents_audit_write_errors_total", &[]), 0.0, "{text}");
    assert!(
        text.contains("# TYPE agents_audit_write_errors_total counter"),
        "{text}"
    );
    running.shutdown().await.unwrap();

    // With the cache off, each call parses and the cache's metrics are absent.
    let (running, mut client, _audit) = server(&fake, "[facts]\ncache_bytes = 0\n").await;
    for _ in 0..2 {
        client
            .execute(execute("code-analysis", rust_input()))
            .await
            .unwrap();
    }
    let text = support::metrics_text(running.metrics_addr.unwrap()).await;
    assert!(text.contains("agents_requests_total"), "{text}");
    assert!(!text.contains("agents_facts_cache"), "{text}");
    running.shutdown().await.unwrap();
}
