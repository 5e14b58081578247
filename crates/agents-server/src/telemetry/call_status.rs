//! The gRPC status of each call, recorded on its server span ([`grpc_server_span`]).
//!
//! Why: trace error views and spanmetrics error rates read the span status; left unset, they
//! count no failed call. The status is only known from the response: in the headers of a
//! trailers-only response (how tonic answers a unary call that fails, an unknown method, a
//! shed request), or in the trailers that end the body (every successful call, and every
//! streaming call). [`CallStatusLayer`] goes around the whole router, inside tonic's
//! `trace_fn`, whose span is the current one while the response future is polled.
//!
//! Following the OpenTelemetry conventions for gRPC servers, `rpc.grpc.status_code` is always
//! recorded, and the span status is ERROR only for the codes that mean the server failed;
//! a client's mistake (NOT_FOUND, INVALID_ARGUMENT, …) leaves it unset.
//!
//! [`grpc_server_span`]: super::grpc_server_span

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http::{HeaderMap, Request, Response};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tonic::Code;
use tower_layer::Layer;
use tower_service::Service;

/// Records each call's gRPC status on the span current when its response is ready (tonic's
/// `trace_fn` span). Add it with `Server::layer`, outermost, so that it sees the answers of
/// the layers inside it too.
#[derive(Debug, Clone, Copy, Default)]
pub struct CallStatusLayer;

impl<S> Layer<S> for CallStatusLayer {
    type Service = CallStatusService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CallStatusService { inner }
    }
}

/// The service of [`CallStatusLayer`].
#[derive(Debug, Clone)]
pub struct CallStatusService<S> {
    inner: S,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for CallStatusService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<CallStatusBody<ResBody>>;
    type Error = S::Error;
    type Future = CallStatusFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        // Not `Span::current()` here: tonic enters the call's span only to poll the future.
        CallStatusFuture {
            inner: self.inner.call(request),
        }
    }
}

pin_project! {
    /// The response future of [`CallStatusService`].
    pub struct CallStatusFuture<F> {
        #[pin]
        inner: F,
    }
}

impl<F> fmt::Debug for CallStatusFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallStatusFuture").finish_non_exhaustive()
    }
}

impl<F, ResBody, E> Future for CallStatusFuture<F>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
{
    type Output = Result<Response<CallStatusBody<ResBody>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let response = ready!(self.project().inner.poll(cx))?;
        let span = tracing::Span::current();
        // A trailers-only response has its status already; any other ends with it.
        let waiting = match grpc_status(response.headers()) {
            Some(code) => {
                record(&span, code);
                None
            }
            None => Some(span),
        };
        Poll::Ready(Ok(response.map(|inner| CallStatusBody {
            inner,
            span: waiting,
        })))
    }
}

pin_project! {
    /// A response body of [`CallStatusService`]: the inner body, and the call's span while its
    /// status is still to come in the trailers. Holding the span keeps it open until then, so
    /// a streaming call's span lasts as long as the stream.
    pub struct CallStatusBody<B> {
        #[pin]
        inner: B,
        span: Option<tracing::Span>,
    }
}

impl<B: fmt::Debug> fmt::Debug for CallStatusBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallStatusBody")
            .field("inner", &self.inner)
            .field("waiting_for_trailers", &self.span.is_some())
            .finish()
    }
}

impl<B: Body> Body for CallStatusBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let frame = this.inner.poll_frame(cx);
        match &frame {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(trailers) = frame.trailers_ref()
                    && let (Some(span), Some(code)) = (this.span.take(), grpc_status(trailers))
                {
                    record(&span, code);
                }
            }
            // Ended without trailers (the stream was reset): no status to record.
            Poll::Ready(None | Some(Err(_))) => {
                this.span.take();
            }
            Poll::Pending => {}
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The `grpc-status` of headers or trailers, if they carry one.
fn grpc_status(headers: &HeaderMap) -> Option<Code> {
    headers
        .get("grpc-status")
        .map(|value| Code::from_bytes(value.as_bytes()))
}

/// Records `code` on the call's span: always as `rpc.grpc.status_code`, and as an ERROR span
/// status when it means the server failed.
fn record(span: &tracing::Span, code: Code) {
    span.record("rpc.grpc.status_code", i64::from(code as i32));
    if is_server_error(code) {
        span.record("otel.status_code", "ERROR");
        span.record("otel.status_description", code.description());
    }
}

/// The codes the OpenTelemetry gRPC conventions count as the server's failure.
fn is_server_error(code: Code) -> bool {
    matches!(
        code,
        Code::Unknown
            | Code::DeadlineExceeded
            | Code::Unimplemented
            | Code::Internal
            | Code::Unavailable
            | Code::DataLoss
    )
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::sync::{Arc, Mutex};

    use bytes::Bytes;
    use http::HeaderValue;
    use http_body_util::{BodyExt as _, Empty, Full, StreamBody};
    use opentelemetry::Value;
    use opentelemetry::trace::{Status, TracerProvider as _};
    use opentelemetry_sdk::error::OTelSdkResult;
    use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};
    use tower::ServiceExt as _;
    use tracing::Instrument as _;
    use tracing_subscriber::layer::SubscriberExt as _;

    use super::*;

    /// Keeps the spans it is sent.
    #[derive(Debug, Clone, Default)]
    struct Exported(Arc<Mutex<Vec<SpanData>>>);

    impl SpanExporter for Exported {
        async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
            self.0.lock().unwrap().extend(batch);
            Ok(())
        }
    }

    /// The one span exported after `response` is served through the layer inside a call span
    /// (as tonic's `trace_fn` makes it) and its body read to the end.
    async fn exported_call<B>(response: Response<B>) -> SpanData
    where
        B: Body + Send + 'static,
        B::Error: fmt::Debug,
    {
        let exported = Exported::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exported.clone())
            .build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        let _default = tracing::subscriber::set_default(subscriber);
        let span = tracing::info_span!(
            "grpc.server",
            otel.status_code = tracing::field::Empty,
            otel.status_description = tracing::field::Empty,
            rpc.grpc.status_code = tracing::field::Empty,
        );
        let mut response = Some(response);
        let service = CallStatusLayer.layer(tower::service_fn(move |_: Request<()>| {
            let response = response.take().unwrap();
            async move { Ok::<_, Infallible>(response) }
        }));
        let served = service
            .oneshot(Request::new(()))
            .instrument(span)
            .await
            .unwrap();
        served.into_body().collect().await.unwrap();
        let spans = exported.0.lock().unwrap().clone();
        assert_eq!(spans.len(), 1, "{spans:?}");
        spans.into_iter().next().unwrap()
    }

    fn trailers_only(code: &'static str) -> Response<Empty<Bytes>> {
        let mut response = Response::new(Empty::new());
        response
            .headers_mut()
            .insert("grpc-status", HeaderValue::from_static(code));
        response
    }

    /// A response whose status comes after its message, in the trailers.
    fn with_trailers(
        code: &'static str,
    ) -> Response<impl Body<Data = Bytes, Error = Infallible> + Send + 'static> {
        let mut trailers = HeaderMap::new();
        trailers.insert("grpc-status", HeaderValue::from_static(code));
        let frames = [
            Ok(Frame::data(Bytes::from_static(b"message"))),
            Ok(Frame::trailers(trailers)),
        ];
        Response::new(StreamBody::new(futures_util::stream::iter(frames)))
    }

    fn status_code(span: &SpanData) -> Option<Value> {
        span.attributes
            .iter()
            .find(|kv| kv.key.as_str() == "rpc.grpc.status_code")
            .map(|kv| kv.value.clone())
    }

    #[tokio::test]
    async fn a_server_failure_in_a_trailers_only_response_is_an_error() {
        let span = exported_call(trailers_only("14")).await;
        assert_eq!(status_code(&span), Some(Value::I64(14)));
        assert!(matches!(span.status, Status::Error { .. }), "{span:?}");
    }

    #[tokio::test]
    async fn a_status_in_the_trailers_is_recorded_when_the_body_ends() {
        let failed = exported_call(with_trailers("13")).await;
        assert_eq!(status_code(&failed), Some(Value::I64(13)));
        assert!(matches!(failed.status, Status::Error { .. }), "{failed:?}");

        let succeeded = exported_call(with_trailers("0")).await;
        assert_eq!(status_code(&succeeded), Some(Value::I64(0)));
        assert_eq!(succeeded.status, Status::Unset);
    }

    #[tokio::test]
    async fn a_client_mistake_is_recorded_but_is_not_a_server_error() {
        let span = exported_call(trailers_only("5")).await;
        assert_eq!(status_code(&span), Some(Value::I64(5)));
        assert_eq!(span.status, Status::Unset);
    }

    #[tokio::test]
    async fn a_response_that_is_not_grpc_records_no_status() {
        let span = exported_call(Response::new(Full::new(Bytes::from_static(b"hi")))).await;
        assert_eq!(status_code(&span), None);
        assert_eq!(span.status, Status::Unset);
    }
}
