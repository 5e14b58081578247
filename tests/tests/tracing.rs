//! One trace end to end over real sockets: the `traceparent` a gRPC client sends reaches the
//! model endpoint's request headers, every audit-log event of the run, and the spans the server
//! exports to an OTLP/gRPC collector (a real OTLP receiver, started here, that keeps what it is
//! sent).

// A failing test should stop loudly: unwrap and panic are how tests say so.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::HashMap;
use std::time::Duration;

use agents_fake_model::Behavior;
use agents_fake_model::FakeModel;
use agents_server::pb::agent_service_client::AgentServiceClient;
use agents_server::pb::{self};
use agents_server::{config, serve, telemetry};
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use support::otlp::{Receiver, attribute, hex, in_trace, named, parent_hops, span_names};
use tonic::codegen::{Service, http};
use tonic::transport::Channel;
use tonic::{Code, Request};

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT_SPAN_ID: &str = "00f067aa0ba902b7";

/// A server exporting every span to an in-test OTLP receiver, its model endpoint `fake`.
struct Traced {
    receiver: Receiver,
    stop_receiver: tokio::sync::oneshot::Sender<()>,
    telemetry: telemetry::Telemetry,
    running: serve::Running,
    audit: tempfile::TempDir,
}

impl Traced {
    /// Installs the one global subscriber of this test's process (nextest runs each test in
    /// its own), exactly as `serve` installs it, and starts the server.
    async fn start(fake: &FakeModel) -> Self {
        let receiver = Receiver::default();
        let (stop_receiver, receiver_stopped) = tokio::sync::oneshot::channel();
        let collector = receiver.start(receiver_stopped).await;
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
        let telemetry = telemetry::init(&config.telemetry).unwrap();
        assert!(telemetry.is_exporting());
        let running = serve::start(config).await.unwrap();
        Self {
            receiver,
            stop_receiver,
            telemetry,
            running,
            audit,
        }
    }

    async fn client(&self) -> AgentServiceClient<Channel> {
        AgentServiceClient::connect(format!("http://{}", self.running.addr))
            .await
            .unwrap()
    }

    /// Stops everything and returns every span the receiver got. Graceful shutdown drains the
    /// calls and their events; the telemetry shutdown then exports every queued span before it
    /// returns, so what the receiver holds then is all there is.
    async fn stop(self) -> (Vec<(String, Span)>, tempfile::TempDir) {
        self.running.shutdown().await.unwrap();
        self.telemetry.shutdown().await.unwrap();
        let _ = self.stop_receiver.send(());
        (self.receiver.spans(), self.audit)
    }
}

/// A request carrying the sampled `traceparent` of the client span `CLIENT_SPAN_ID` in `trace`.
fn traced<T>(message: T, trace: &str) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert(
        "traceparent",
        format!("00-{trace}-{CLIENT_SPAN_ID}-01").parse().unwrap(),
    );
    request.set_timeout(Duration::from_secs(20));
    request
}

fn execute(request_id: &str, input: serde_json::Value) -> pb::ExecuteRequest {
    pb::ExecuteRequest {
        agent_id: "code-analysis".into(),
        input_json: input.to_string(),
        request_id: request_id.into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_traceparent_reaches_the_provider_the_audit_log_and_the_exported_spans() {
    let fake = FakeModel::start().await.unwrap();
    let traced_server = Traced::start(&fake).await;
    let mut client = traced_server.client().await;

    let request = traced(
        execute(
            "traced-1",
            serde_json::json!({
                "source_code": "pub fn id<T>(x: T) -> T { x }",
                "language": "rust"
            }),
        ),
        TRACE_ID,
    );
    let response = client.execute(request).await.unwrap().into_inner();
    assert_eq!(response.metadata.unwrap().trace_id, TRACE_ID);
    let (spans, audit) = traced_server.stop().await;

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

/// The exported server span of `method` in `trace`.
fn server_span<'a>(spans: &'a [(String, Span)], trace: &str, method: &str) -> &'a Span {
    let ours = in_trace(spans, trace);
    let span = named(&ours, method);
    assert_eq!(span.kind, SpanKind::Server as i32);
    span
}

/// The span status code of `span`.
fn status_code(span: &Span) -> StatusCode {
    span.status
        .as_ref()
        .map_or(StatusCode::Unset, |status| status.code())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_call_exports_an_error_span_with_its_grpc_status() {
    const FAILED: &str = "5bf92f3577b34da6a3ce929d0e0e4736";
    const SUCCEEDED: &str = "6bf92f3577b34da6a3ce929d0e0e4736";
    let fake = FakeModel::start().await.unwrap();
    let traced_server = Traced::start(&fake).await;
    let mut client = traced_server.client().await;
    // Wants the model's answer or an error, never a degraded answer from code facts.
    let strict = serde_json::json!({
        "source_code": "pub fn id<T>(x: T) -> T { x }",
        "language": "rust",
        "allow_degraded": false
    });

    fake.push(Behavior::Status {
        code: 503,
        retry_after: None,
        message: "down".into(),
    });
    let failed = client
        .execute(traced(execute("failed-1", strict.clone()), FAILED))
        .await
        .unwrap_err();
    assert_eq!(failed.code(), Code::Unavailable, "{failed:?}");
    client
        .execute(traced(execute("succeeded-1", strict), SUCCEEDED))
        .await
        .unwrap();
    let (spans, _audit) = traced_server.stop().await;

    let failed = server_span(&spans, FAILED, "agents.v1.AgentService/Execute");
    assert_eq!(
        attribute(failed, "rpc.grpc.status_code").as_deref(),
        Some("14")
    );
    assert_eq!(status_code(failed), StatusCode::Error, "{failed:?}");
    let succeeded = server_span(&spans, SUCCEEDED, "agents.v1.AgentService/Execute");
    assert_eq!(
        attribute(succeeded, "rpc.grpc.status_code").as_deref(),
        Some("0")
    );
    assert_ne!(status_code(succeeded), StatusCode::Error, "{succeeded:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_to_an_unknown_path_exports_a_span_of_a_fixed_name() {
    const SCANNED: &str = "7bf92f3577b34da6a3ce929d0e0e4736";
    const PATH: &str = "/x/scanner-7f3a9c2e";
    let fake = FakeModel::start().await.unwrap();
    let traced_server = Traced::start(&fake).await;
    let channel = Channel::from_shared(format!("http://{}", traced_server.running.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut scanner = AgentServiceClient::new(Rerouted {
        channel,
        path: PATH,
    });

    let refused = scanner
        .list_agents(traced(pb::ListAgentsRequest::default(), SCANNED))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unimplemented, "{refused:?}");
    let (spans, _audit) = traced_server.stop().await;

    let ours = in_trace(&spans, SCANNED);
    assert_eq!(span_names(&ours), ["grpc.server/unknown"]);
    let span = ours[0];
    assert_eq!(span.kind, SpanKind::Server as i32);
    assert_eq!(hex(&span.parent_span_id), CLIENT_SPAN_ID);
    assert_eq!(attribute(span, "rpc.method"), None);
}

/// A channel that sends every call to `path`, whatever its method: a scanner's request.
#[derive(Debug, Clone)]
struct Rerouted {
    channel: Channel,
    path: &'static str,
}

impl Service<http::Request<tonic::body::Body>> for Rerouted {
    type Response = <Channel as Service<http::Request<tonic::body::Body>>>::Response;
    type Error = <Channel as Service<http::Request<tonic::body::Body>>>::Error;
    type Future = <Channel as Service<http::Request<tonic::body::Body>>>::Future;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        Service::<http::Request<tonic::body::Body>>::poll_ready(&mut self.channel, cx)
    }

    fn call(&mut self, mut request: http::Request<tonic::body::Body>) -> Self::Future {
        let mut parts = request.uri().clone().into_parts();
        parts.path_and_query = Some(http::uri::PathAndQuery::from_static(self.path));
        *request.uri_mut() = http::Uri::from_parts(parts).unwrap();
        self.channel.call(request)
    }
}
