//! One trace end to end over real sockets: the `traceparent` a gRPC client sends reaches the
//! model endpoint's request headers, every audit-log event of the run, and the spans the server
//! exports to an OTLP/gRPC collector (a real OTLP receiver, started here, that keeps what it is
//! sent).

// A failing test should stop loudly: unwrap and panic are how tests say so.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::HashMap;
use std::time::Duration;

use agents_fake_model::FakeModel;
use agents_server::pb::agent_service_client::AgentServiceClient;
use agents_server::pb::{self};
use agents_server::{config, serve, telemetry};
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use support::otlp::{Receiver, attribute, hex, in_trace, named, parent_hops, span_names};
use tonic::Request;

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT_SPAN_ID: &str = "00f067aa0ba902b7";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_traceparent_reaches_the_provider_the_audit_log_and_the_exported_spans() {
    let receiver = Receiver::default();
    let (stop_receiver, receiver_stopped) = tokio::sync::oneshot::channel();
    let collector = receiver.start(receiver_stopped).await;
    let fake = FakeModel::start().await.unwrap();
    let audit = tempfile::tempdir().unwrap();
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nmetrics_listen = \"127.0.0.1:0\"\nshutdown_grace_ms = 2000\n\
         [bus.audit]\ndir = \"{}\"\n\
         [[providers]]\nopenai = {{ id = \"fake\", base_url = \"{}\", model = \"fake-model\" }}\n\
         policies = {{ retry = {{ max_retries = 0 }}, timeout = {{ request_timeout_ms = 5000 }} }}\n\
         [telemetry]\notlp_endpoint = \"http://{collector}\"\nsampling_ratio = 1.0\n\
         service_name = \"agents-tracing-test\"\nlog_format = \"json\"\n",
        audit.path().display(),
        fake.base_url()
    );
    let config = config::parse(&text, Vec::new()).unwrap();
    // The one global subscriber of this test binary, exactly as `serve` installs it.
    let telemetry = telemetry::init(&config.telemetry).unwrap();
    assert!(telemetry.is_exporting());
    let running = serve::start(config).await.unwrap();
    let mut client = AgentServiceClient::connect(format!("http://{}", running.addr))
        .await
        .unwrap();

    let mut request = Request::new(pb::ExecuteRequest {
        agent_id: "code-analysis".into(),
        input_json: serde_json::json!({
            "source_code": "pub fn id<T>(x: T) -> T { x }",
            "language": "rust"
        })
        .to_string(),
        request_id: "traced-1".into(),
    });
    request.metadata_mut().insert(
        "traceparent",
        format!("00-{TRACE_ID}-{CLIENT_SPAN_ID}-01")
            .parse()
            .unwrap(),
    );
    request.set_timeout(Duration::from_secs(20));
    let response = client.execute(request).await.unwrap().into_inner();
    assert_eq!(response.metadata.unwrap().trace_id, TRACE_ID);

    // Graceful shutdown drains the call and its events; the telemetry shutdown then exports
    // every queued span before it returns, so what the receiver holds now is all there is.
    running.shutdown().await.unwrap();
    telemetry.shutdown().await.unwrap();
    let _ = stop_receiver.send(());

    // 1. The model endpoint saw the client's trace, under the provider call's span id.
    let calls: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/chat/completions"))
        .collect();
    assert_eq!(calls.len(), 1);
    let sent = calls[0].header("traceparent").unwrap().to_owned();
    let fields: Vec<&str> = sent.split('-').collect();
    assert_eq!(fields.len(), 4, "{sent}");
    assert_eq!(fields[1], TRACE_ID, "{sent}");
    let provider_span_id = fields[2].to_owned();

    // 2. Every audit event of the run carries the client's trace id.
    let mut lines = Vec::new();
    for file in std::fs::read_dir(audit.path()).unwrap() {
        let text = std::fs::read_to_string(file.unwrap().path()).unwrap();
        lines.extend(
            text.lines()
                .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()),
        );
    }
    assert!(lines.len() >= 4, "{lines:?}");
    let mut event_parents = HashMap::new();
    for line in &lines {
        let traceparent = line["traceparent"].as_str().unwrap_or_default();
        assert!(
            traceparent.starts_with(&format!("00-{TRACE_ID}-")),
            "an audit event outside the client's trace: {line}"
        );
        event_parents.insert(
            line["type"].as_str().unwrap().to_owned(),
            traceparent[36..52].to_owned(),
        );
    }

    // 3. The collector got the server span (child of the client's span) and the provider span
    //    (under the id the model endpoint was sent), whose parents lead to the server span.
    let spans = receiver.spans();
    let ours = in_trace(&spans, TRACE_ID);
    let names = span_names(&ours);
    assert!(
        spans
            .iter()
            .all(|(service, _)| service == "agents-tracing-test"),
        "{spans:?}"
    );
    let server = named(&ours, "agents.v1.AgentService/Execute");
    assert_eq!(hex(&server.parent_span_id), CLIENT_SPAN_ID);
    assert_eq!(server.kind, SpanKind::Server as i32);
    assert_eq!(attribute(server, "rpc.system").as_deref(), Some("grpc"));
    assert_eq!(attribute(server, "rpc.method").as_deref(), Some("Execute"));
    assert_eq!(
        attribute(server, "agent.id").as_deref(),
        Some("code-analysis")
    );
    let server_span_id = hex(&server.span_id);

    let provider = named(&ours, "provider.call");
    assert_eq!(hex(&provider.span_id), provider_span_id);
    assert_eq!(provider.kind, SpanKind::Client as i32);
    assert_eq!(attribute(provider, "provider.id").as_deref(), Some("fake"));
    assert_eq!(attribute(provider, "outcome").as_deref(), Some("success"));
    assert!(
        parent_hops(&ours, provider, &server_span_id).is_some(),
        "no path from the provider span to the server span among {names:?}"
    );

    // The agent's events hang off the server span; the provider's off the provider span.
    assert_eq!(event_parents["agent.started"], server_span_id);
    assert_eq!(event_parents["provider.request"], provider_span_id);
    assert_eq!(event_parents["provider.success"], provider_span_id);
}
