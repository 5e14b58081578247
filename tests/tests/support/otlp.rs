//! An in-test OTLP/gRPC trace receiver that keeps what it is sent, and readers for its spans.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{Request, Response, Status};

/// An OTLP/gRPC trace receiver keeping every export request in memory.
#[derive(Debug, Clone, Default)]
pub(crate) struct Receiver {
    received: Arc<Mutex<Vec<ExportTraceServiceRequest>>>,
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        self.received.lock().unwrap().push(request.into_inner());
        Ok(Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

impl Receiver {
    /// Serves on a free loopback port until `stop` fires.
    pub(crate) async fn start(&self, stop: tokio::sync::oneshot::Receiver<()>) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let service = TraceServiceServer::new(self.clone());
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async {
                    let _ = stop.await;
                }),
        );
        addr
    }

    /// Every span received, with the `service.name` of its resource.
    pub(crate) fn spans(&self) -> Vec<(String, Span)> {
        let mut spans = Vec::new();
        for request in self.received.lock().unwrap().iter() {
            for resource_spans in &request.resource_spans {
                let service = resource_spans
                    .resource
                    .iter()
                    .flat_map(|r| &r.attributes)
                    .find(|kv| kv.key == "service.name")
                    .and_then(|kv| kv.value.as_ref()?.value.as_ref())
                    .map(|v| match v {
                        AnyValue::StringValue(s) => s.clone(),
                        other => format!("{other:?}"),
                    })
                    .unwrap_or_default();
                for scope in &resource_spans.scope_spans {
                    for span in &scope.spans {
                        spans.push((service.clone(), span.clone()));
                    }
                }
            }
        }
        spans
    }
}

/// The spans of the trace `trace_id` (lower-case hex) among `spans`.
pub(crate) fn in_trace<'a>(spans: &'a [(String, Span)], trace_id: &str) -> Vec<&'a Span> {
    spans
        .iter()
        .filter(|(_, s)| hex(&s.trace_id) == trace_id)
        .map(|(_, s)| s)
        .collect()
}

/// The first span called `name` among `spans`; panics naming the spans there are.
pub(crate) fn named<'a>(spans: &[&'a Span], name: &str) -> &'a Span {
    spans
        .iter()
        .find(|s| s.name == name)
        .copied()
        .unwrap_or_else(|| panic!("no {name} span among {:?}", span_names(spans)))
}

/// The names of `spans`, for failure messages.
pub(crate) fn span_names<'a>(spans: &[&'a Span]) -> Vec<&'a str> {
    spans.iter().map(|s| s.name.as_str()).collect()
}

/// Lower-case hex of an id.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The attribute `key` of a span, as text.
pub(crate) fn attribute(span: &Span, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref()?.value.as_ref())
        .map(|v| match v {
            AnyValue::StringValue(s) => s.clone(),
            AnyValue::IntValue(i) => i.to_string(),
            other => format!("{other:?}"),
        })
}

/// Follows `from`'s parents through `spans` until one is `to`; the hops, or `None` when the
/// chain breaks (a parent that was not exported) before reaching it.
pub(crate) fn parent_hops(spans: &[&Span], from: &Span, to: &str) -> Option<usize> {
    let by_id: HashMap<String, &Span> = spans.iter().map(|s| (hex(&s.span_id), *s)).collect();
    let mut parent = hex(&from.parent_span_id);
    let mut hops = 1;
    while parent != to {
        let next = by_id.get(&parent)?;
        parent = hex(&next.parent_span_id);
        hops += 1;
        if hops > 32 {
            return None;
        }
    }
    Some(hops)
}
