//! The client's W3C trace context in, and the server span's context out.
//!
//! Each gRPC call gets a span whose OpenTelemetry parent is the `traceparent` / `tracestate`
//! the client sent. The agents then get a [`TraceContext`] of that same span (client's trace id,
//! the server span's id as parent), which they send to the provider and stamp on every
//! CloudEvent, so the model request, the audit log and the exported spans share one trace.

use std::collections::HashSet;
use std::sync::OnceLock;

use agents_core::TraceContext;
use opentelemetry::propagation::{Extractor, TextMapPropagator as _};
use opentelemetry::trace::TraceContextExt as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use prost::Message as _;
use prost_types::FileDescriptorSet;
use tonic::codegen::http::{HeaderMap, Request};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// The span of one gRPC call, for tonic's `Server::trace_fn`. Named after the method
/// (`agents.v1.AgentService/Execute`) when this server has that method, else
/// [`UNKNOWN_METHOD_SPAN`]; `agent.id` and `tenant` are recorded by the service once it knows
/// them, the status by [`CallStatusLayer`](super::CallStatusLayer). Credentials are never
/// recorded.
pub fn grpc_server_span(request: &Request<()>) -> tracing::Span {
    let path = request.uri().path();
    let span = match known_method(path) {
        Some((service, method)) => tracing::info_span!(
            "grpc.server",
            otel.name = %format_args!("{service}/{method}"),
            otel.kind = "server",
            otel.status_code = tracing::field::Empty,
            otel.status_description = tracing::field::Empty,
            rpc.system = "grpc",
            rpc.service = %service,
            rpc.method = %method,
            rpc.grpc.status_code = tracing::field::Empty,
            agent.id = tracing::field::Empty,
            tenant = tracing::field::Empty,
        ),
        // Anyone can send any path, before any credential is checked: a name (or a label)
        // per path would let a scanner grow the trace backend's operation index without end.
        None => tracing::info_span!(
            "grpc.server",
            otel.name = UNKNOWN_METHOD_SPAN,
            otel.kind = "server",
            otel.status_code = tracing::field::Empty,
            otel.status_description = tracing::field::Empty,
            rpc.system = "grpc",
            rpc.grpc.status_code = tracing::field::Empty,
            url.path = %capped(path, MAX_UNKNOWN_PATH_BYTES),
        ),
    };
    let parent = TraceContextPropagator::new().extract(&Headers(request.headers()));
    // Fails only when no OpenTelemetry layer is installed; the span is then a plain one.
    let _ = span.set_parent(parent);
    span
}

/// The name of the span of a call to a method this server does not have.
pub const UNKNOWN_METHOD_SPAN: &str = "grpc.server/unknown";

/// How much of an unknown path its span keeps, in bytes.
const MAX_UNKNOWN_PATH_BYTES: usize = 128;

/// The service and method of `path` (`/package.Service/Method`), when this server serves it.
fn known_method(path: &str) -> Option<(&str, &str)> {
    let name = path.strip_prefix('/')?;
    if !KNOWN_METHODS.get_or_init(served_methods).contains(name) {
        return None;
    }
    name.split_once('/')
}

/// Every `package.Service/Method` of [`served_methods`], read once.
static KNOWN_METHODS: OnceLock<HashSet<String>> = OnceLock::new();

/// The methods of the services `serve` registers, from their descriptors, so a method added
/// to the proto is known without a list to keep in step.
fn served_methods() -> HashSet<String> {
    let descriptor_sets = [
        crate::pb::FILE_DESCRIPTOR_SET,
        tonic_health::pb::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
    ];
    let mut methods = HashSet::new();
    // The sets are compiled in: one that does not decode would only leave its methods unknown.
    for set in descriptor_sets
        .into_iter()
        .filter_map(|bytes| FileDescriptorSet::decode(bytes).ok())
    {
        for file in set.file {
            for service in &file.service {
                for method in &service.method {
                    methods.insert(format!(
                        "{}.{}/{}",
                        file.package(),
                        service.name(),
                        method.name()
                    ));
                }
            }
        }
    }
    methods
}

/// `text` cut to at most `max` bytes, on a character boundary.
fn capped(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The span of one delivery of a queued task in a worker, continuing the trace whose
/// `traceparent` / `tracestate` rode in the task's message headers (the submitting server's
/// call span, or an external publisher's). Named `task.run` (kind consumer) with `agent.id`,
/// `task.id` and `task.delivery_count`; the worker records `outcome` when the delivery ends.
/// Inside it, [`current_trace_context`] is the context the agent and provider calls continue.
pub fn task_span(
    agent: &str,
    task_id: &str,
    delivery_count: u32,
    traceparent: Option<&str>,
    tracestate: Option<&str>,
) -> tracing::Span {
    let span = tracing::info_span!(
        "task.run",
        otel.kind = "consumer",
        otel.status_code = tracing::field::Empty,
        agent.id = %agent,
        task.id = %task_id,
        task.delivery_count = delivery_count,
        outcome = tracing::field::Empty,
    );
    let parent = TraceContextPropagator::new().extract(&TaskHeaders {
        traceparent,
        tracestate,
    });
    // Fails only when no OpenTelemetry layer is installed; the span is then a plain one.
    let _ = span.set_parent(parent);
    span
}

/// The trace headers of a task message.
struct TaskHeaders<'a> {
    traceparent: Option<&'a str>,
    tracestate: Option<&'a str>,
}

impl Extractor for TaskHeaders<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        match key {
            "traceparent" => self.traceparent,
            "tracestate" => self.tracestate,
            _ => None,
        }
    }

    fn keys(&self) -> Vec<&str> {
        vec!["traceparent", "tracestate"]
    }
}

/// The trace context of the current span (the server span, inside a call), for the agents; or
/// `None` when no OpenTelemetry layer is installed or the span is disabled.
pub fn current_trace_context() -> Option<TraceContext> {
    let context = tracing::Span::current().context();
    let span = context.span();
    let span_context = span.span_context();
    if !span_context.is_valid() {
        return None;
    }
    let tracestate = span_context.trace_state().header();
    TraceContext::from_ids(
        span_context.trace_id().to_bytes(),
        span_context.span_id().to_bytes(),
        span_context.trace_flags().to_u8(),
        Some(&tracestate),
    )
    .ok()
}

/// Reads trace headers from an HTTP/2 request's headers (gRPC metadata).
struct Headers<'a>(&'a HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|name| name.as_str()).collect()
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_sdk::trace::SdkTracerProvider;
    use tracing_subscriber::layer::SubscriberExt as _;

    use super::*;

    const CLIENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn request(traceparent: Option<&str>) -> Request<()> {
        let mut builder = Request::builder().uri("/agents.v1.AgentService/Execute");
        if let Some(value) = traceparent {
            builder = builder
                .header("traceparent", value)
                .header("tracestate", "congo=t61rcWkgMzE");
        }
        builder.body(()).unwrap()
    }

    #[test]
    fn the_call_span_continues_the_client_trace() {
        let provider = SdkTracerProvider::builder().build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        tracing::subscriber::with_default(subscriber, || {
            let span = grpc_server_span(&request(Some(CLIENT)));
            let trace = span.in_scope(current_trace_context).unwrap();
            assert_eq!(trace.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
            assert_ne!(trace.parent_id(), "00f067aa0ba902b7");
            assert!(trace.sampled());
            assert_eq!(trace.tracestate(), Some("congo=t61rcWkgMzE"));

            let fresh = grpc_server_span(&request(Some("garbage")));
            let trace = fresh.in_scope(current_trace_context).unwrap();
            assert_ne!(trace.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        });
    }

    #[test]
    fn a_task_span_continues_the_trace_of_its_message_headers() {
        let provider = SdkTracerProvider::builder().build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        tracing::subscriber::with_default(subscriber, || {
            let span = task_span("documentation", "t1", 2, Some(CLIENT), Some("congo=t61"));
            let trace = span.in_scope(current_trace_context).unwrap();
            assert_eq!(trace.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
            assert_ne!(trace.parent_id(), "00f067aa0ba902b7");
            assert_eq!(trace.tracestate(), Some("congo=t61"));
            let fresh = task_span("documentation", "t2", 1, None, None);
            let trace = fresh.in_scope(current_trace_context).unwrap();
            assert_ne!(trace.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        });
    }

    #[test]
    fn only_the_methods_this_server_serves_name_a_span() {
        assert_eq!(
            known_method("/agents.v1.AgentService/Execute"),
            Some(("agents.v1.AgentService", "Execute"))
        );
        for served in [
            "/agents.v1.AgentService/ExecuteStream",
            "/grpc.health.v1.Health/Check",
            "/grpc.health.v1.Health/Watch",
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
            "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        ] {
            assert!(known_method(served).is_some(), "{served}");
        }
        for unknown in [
            "/agents.v1.AgentService/Nope",
            "/agents.v1.AgentService/Execute/more",
            "/agents.v1.AgentService",
            "/x/7f3a9c2e",
            "/",
            "",
        ] {
            assert_eq!(known_method(unknown), None, "{unknown}");
        }
    }

    #[test]
    fn an_unknown_path_is_cut_on_a_character_boundary() {
        assert_eq!(capped("/x/ééé", 5), "/x/é");
        assert_eq!(capped("/x/ééé", 6), "/x/é");
        assert_eq!(capped("/x", 128), "/x");
    }

    #[test]
    fn without_an_opentelemetry_layer_there_is_no_context() {
        let span = grpc_server_span(&request(Some(CLIENT)));
        assert_eq!(span.in_scope(current_trace_context), None);
    }
}
