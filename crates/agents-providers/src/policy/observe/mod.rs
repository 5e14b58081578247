//! Reports every call to the adapter as events: `provider.request` before it,
//! `provider.success` or `provider.failure` after, each with the call's trace context; and as a
//! `provider.call` tracing span around the attempt.
//!
//! Why: operators and the metrics built from the event stream need each attempt — retries
//! included — with its latency, tokens and error class. It sits innermost in the stack, right
//! around the adapter, so what it reports is what the model endpoint really did.
//!
//! Each attempt continues the request's trace with a span id of its own
//! ([`TraceContext::child`]): the adapter sends it as `traceparent`, the attempt's events carry
//! it, and the span names it in its `trace.span_id` field, so a tracer that honours the field
//! (the server's does) exports the span under the very id the model endpoint was given. Only the
//! `tracing` crate is used here; what exports the span is the embedding program's choice.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use agents_core::TraceContext;
use agents_core::{
    DeferredEvent, EventPayload, EventSink, GenerateRequest, Generation, GenerationStream,
    Provider, ProviderError, ProviderFailure, ProviderHealth, ProviderRequest, ProviderSuccess,
    StreamDelta,
};
use futures_util::Stream;
use tracing::Instrument as _;

use super::ms_since;

/// Emits `provider.request` / `provider.success` / `provider.failure` around each call.
#[derive(Debug)]
pub struct Observe {
    inner: Arc<dyn Provider>,
    events: Arc<dyn EventSink>,
    /// The model reported when a request names none.
    default_model: String,
    /// The events' `source`, `/providers/<id>`, built once.
    source: String,
}

/// What one call's events share.
#[derive(Debug, Clone)]
struct Call {
    events: Arc<dyn EventSink>,
    source: String,
    provider: String,
    model: String,
    trace: Option<TraceContext>,
    started: Instant,
    /// The attempt's `provider.call` span.
    span: tracing::Span,
}

impl Call {
    /// Whether anything listens: with a disabled sink (`NullSink`) no event is built at all.
    fn enabled(&self) -> bool {
        self.events.is_enabled()
    }

    /// Emits `payload` deferred: a queueing sink builds the envelope (JSON data, redaction,
    /// id) off the request path, and the metrics read the typed payload.
    fn emit<P: EventPayload + Send + 'static>(&self, payload: P) {
        let mut event = DeferredEvent::new(self.source.clone(), payload);
        if let Some(trace) = &self.trace {
            event = event.with_trace_context(trace);
        }
        self.events.emit_deferred(event);
    }

    fn success(&self, generation: &Generation) {
        self.span.record("outcome", "success");
        self.span
            .record("gen_ai.usage.input_tokens", generation.usage.prompt_tokens);
        self.span.record(
            "gen_ai.usage.output_tokens",
            generation.usage.completion_tokens,
        );
        if !self.enabled() {
            return;
        }
        let mut payload = ProviderSuccess::default();
        payload.provider = self.provider.clone();
        payload.model = generation.model.clone();
        payload.latency_ms = ms_since(self.started);
        payload.prompt_tokens = generation.usage.prompt_tokens;
        payload.completion_tokens = generation.usage.completion_tokens;
        self.emit(payload);
    }

    fn failure(&self, error: &ProviderError) {
        let error_kind = error.kind().as_str();
        self.span.record("outcome", "failure");
        self.span.record("error.type", error_kind);
        self.span.record("otel.status_code", "ERROR");
        if !self.enabled() {
            return;
        }
        let mut payload = ProviderFailure::default();
        payload.provider = self.provider.clone();
        payload.model = self.model.clone();
        payload.error_kind = error_kind.to_owned();
        payload.message = error.to_string();
        payload.retryable = error.is_retryable();
        payload.latency_ms = ms_since(self.started);
        self.emit(payload);
    }
}

impl Observe {
    /// Wraps `inner`; `default_model` is reported for requests that name no model.
    pub fn new(
        inner: Arc<dyn Provider>,
        events: Arc<dyn EventSink>,
        default_model: impl Into<String>,
    ) -> Self {
        let source = format!("/providers/{}", inner.id());
        Self {
            inner,
            events,
            default_model: default_model.into(),
            source,
        }
    }

    /// Opens the attempt: its own span id in the request's trace, its span, its first event.
    fn start(&self, request: &mut GenerateRequest) -> Call {
        request.trace = request.trace.as_ref().map(TraceContext::child);
        let model = request
            .model
            .clone()
            .unwrap_or_else(|| self.default_model.clone());
        let attempt = request.attempt.max(1);
        let span = tracing::info_span!(
            "provider.call",
            otel.kind = "client",
            otel.status_code = tracing::field::Empty,
            provider.id = %self.inner.id(),
            gen_ai.request.model = %model,
            provider.attempt = attempt,
            outcome = tracing::field::Empty,
            error.type = tracing::field::Empty,
            gen_ai.usage.input_tokens = tracing::field::Empty,
            gen_ai.usage.output_tokens = tracing::field::Empty,
            trace.span_id = request.trace.as_ref().map(TraceContext::parent_id),
        );
        let call = Call {
            events: self.events.clone(),
            source: self.source.clone(),
            provider: self.inner.id().to_owned(),
            model,
            trace: request.trace.clone(),
            started: Instant::now(),
            span,
        };
        if call.enabled() {
            let mut payload = ProviderRequest::default();
            payload.provider = call.provider.clone();
            payload.model = call.model.clone();
            payload.attempt = attempt;
            call.emit(payload);
        }
        call
    }
}

#[async_trait::async_trait]
impl Provider for Observe {
    fn id(&self) -> &str {
        self.inner.id()
    }

    async fn generate(&self, mut request: GenerateRequest) -> Result<Generation, ProviderError> {
        let call = self.start(&mut request);
        let result = self
            .inner
            .generate(request)
            .instrument(call.span.clone())
            .await;
        match &result {
            Ok(generation) => call.success(generation),
            Err(error) => call.failure(error),
        }
        result
    }

    async fn generate_stream(
        &self,
        mut request: GenerateRequest,
    ) -> Result<GenerationStream, ProviderError> {
        let call = self.start(&mut request);
        let opened = self
            .inner
            .generate_stream(request)
            .instrument(call.span.clone())
            .await;
        match opened {
            Ok(inner) => Ok(Box::pin(ObservedStream {
                inner,
                call: Some(call),
            })),
            Err(error) => {
                call.failure(&error);
                Err(error)
            }
        }
    }

    async fn health(&self) -> ProviderHealth {
        self.inner.health().await
    }
}

/// Reports the stream's outcome when it ends; a stream dropped early reports nothing. Its
/// span stays open until then.
struct ObservedStream {
    inner: GenerationStream,
    call: Option<Call>,
}

impl Stream for ObservedStream {
    type Item = Result<StreamDelta, ProviderError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let span = self.call.as_ref().map(|call| call.span.clone());
        let _entered = span.as_ref().map(tracing::Span::enter);
        let item = self.inner.as_mut().poll_next(cx);
        let outcome = match &item {
            Poll::Ready(Some(Ok(StreamDelta::Finished(generation)))) => Some(Ok(generation)),
            Poll::Ready(Some(Err(error))) => Some(Err(error)),
            _ => None,
        };
        if let Some(outcome) = outcome
            && let Some(call) = self.call.take()
        {
            match outcome {
                Ok(generation) => call.success(generation),
                Err(error) => call.failure(error),
            }
        }
        item
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use agents_core::{MemorySink, TraceContext};
    use futures_util::StreamExt;

    use super::*;
    use crate::testing::{Script, ScriptedProvider};

    #[tokio::test]
    async fn each_call_is_a_request_then_a_success_or_failure_with_the_trace() {
        let inner = ScriptedProvider::new(
            "p",
            [Script::fail(ProviderError::Unavailable {
                status: Some(503),
                reason: "down".into(),
            })],
        );
        let sink = MemorySink::new();
        let observed = Observe::new(inner.clone(), Arc::new(sink.clone()), "default-model");
        let trace = TraceContext::new_root();
        let mut request = GenerateRequest::default().with_trace(trace.clone());
        request.attempt = 2;
        assert!(observed.generate(request.clone()).await.is_err());
        assert!(observed.generate(request).await.is_ok());
        assert_eq!(
            sink.types(),
            [
                "provider.request",
                "provider.failure",
                "provider.request",
                "provider.success"
            ]
        );
        let events = sink.events();
        let first: ProviderRequest = events[0].payload().unwrap();
        assert_eq!(
            (first.provider.as_str(), first.model.as_str(), first.attempt),
            ("p", "default-model", 2)
        );
        let failure: ProviderFailure = events[1].payload().unwrap();
        assert_eq!(failure.error_kind, "unavailable");
        assert!(failure.retryable);
        let success: ProviderSuccess = events[3].payload().unwrap();
        assert_eq!(success.prompt_tokens, 10);
        // Each attempt continues the trace under an id of its own, sent to the adapter too.
        let sent = inner.last_request().trace.unwrap();
        assert_eq!(sent.trace_id(), trace.trace_id());
        assert_ne!(sent.parent_id(), trace.parent_id());
        let parents: Vec<&str> = events
            .iter()
            .map(|e| e.traceparent.as_deref().unwrap())
            .collect();
        assert!(parents.iter().all(|p| p.contains(trace.trace_id())));
        assert_eq!(parents[0], parents[1]);
        assert_ne!(parents[1], parents[2]);
        assert_eq!(parents[3], sent.traceparent());
        assert!(events.iter().all(|e| e.source == "/providers/p"));
    }

    /// Keeps the types of the deferred events it is handed, and of any built one apart.
    #[derive(Debug, Default)]
    struct Deferring {
        deferred: std::sync::Mutex<Vec<&'static str>>,
        built: MemorySink,
    }

    impl EventSink for Deferring {
        fn emit(&self, event: agents_core::CloudEvent) {
            self.built.emit(event);
        }

        fn emit_deferred(&self, event: DeferredEvent) {
            self.deferred
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(event.event_type());
        }
    }

    /// The events leave unbuilt, so a queueing sink builds them off the request path.
    #[tokio::test]
    async fn events_are_handed_over_deferred() {
        let inner = ScriptedProvider::new(
            "p",
            [Script::fail(ProviderError::Unavailable {
                status: Some(503),
                reason: "down".into(),
            })],
        );
        let sink = Arc::new(Deferring::default());
        let observed = Observe::new(inner, sink.clone(), "m");
        assert!(observed.generate(GenerateRequest::default()).await.is_err());
        assert!(observed.generate(GenerateRequest::default()).await.is_ok());
        assert_eq!(
            *sink
                .deferred
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
            [
                "provider.request",
                "provider.failure",
                "provider.request",
                "provider.success"
            ]
        );
        assert!(sink.built.types().is_empty());
    }

    #[tokio::test]
    async fn streams_report_when_they_end() {
        let inner = ScriptedProvider::new("p", [Script::stream(["a", "b"], Duration::ZERO)]);
        let sink = MemorySink::new();
        let observed = Observe::new(inner, Arc::new(sink.clone()), "m");
        let items: Vec<_> = observed
            .generate_stream(GenerateRequest::default())
            .await
            .unwrap()
            .collect()
            .await;
        assert_eq!(items.len(), 3);
        assert_eq!(sink.types(), ["provider.request", "provider.success"]);
        assert_eq!(observed.id(), "p");
        assert!(observed.health().await.is_serving());
    }

    /// A sink that is off, and counts what it is handed anyway.
    #[derive(Debug, Default)]
    struct Off(std::sync::atomic::AtomicUsize);

    impl EventSink for Off {
        fn emit(&self, _event: agents_core::CloudEvent) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }

        fn is_enabled(&self) -> bool {
            false
        }
    }

    #[tokio::test]
    async fn a_disabled_sink_gets_no_events_and_the_calls_still_work() {
        let inner = ScriptedProvider::new(
            "p",
            [Script::fail(ProviderError::Unavailable {
                status: Some(503),
                reason: "down".into(),
            })],
        );
        let off = Arc::new(Off::default());
        let observed = Observe::new(inner.clone(), off.clone(), "default-model");
        assert!(observed.generate(GenerateRequest::default()).await.is_err());
        assert!(observed.generate(GenerateRequest::default()).await.is_ok());
        let mut stream = observed
            .generate_stream(GenerateRequest::default())
            .await
            .unwrap();
        while stream.next().await.is_some() {}
        assert_eq!(off.0.load(std::sync::atomic::Ordering::SeqCst), 0);
    }
}
