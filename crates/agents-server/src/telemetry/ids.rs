//! Span ids that other code already promised to someone.
//!
//! A provider call sends `traceparent: 00-<trace>-<id>-<flags>` to the model endpoint before our
//! span for that call is exported; `<id>` must be the id of that exported span, or the model
//! gateway's own spans hang off a parent nobody ever reports. `agents-providers` knows only the
//! `tracing` crate, so it names the id in the span's [`SPAN_ID_FIELD`] field, and the tracer here
//! gives the OpenTelemetry span exactly that id. Spans without the field get random ids.

use std::cell::Cell;

use opentelemetry::trace::{SpanBuilder, SpanId, TraceId, Tracer};
use opentelemetry::{Context, Value};
use opentelemetry_sdk::trace::{IdGenerator, RandomIdGenerator, SdkTracer, Span};

/// The span field holding the 16-hex-digit id the span must have (written by
/// `agents-providers`' Observe policy).
pub const SPAN_ID_FIELD: &str = "trace.span_id";

thread_local! {
    /// The id the next span built on this thread must have, set by [`PinningTracer`] for the
    /// duration of one synchronous `build_with_context` call.
    static PINNED: Cell<Option<SpanId>> = const { Cell::new(None) };
}

/// Random ids, except the one [`PinningTracer`] pinned for the span it is building.
#[derive(Debug, Default)]
pub(super) struct PinnedIds {
    random: RandomIdGenerator,
}

impl IdGenerator for PinnedIds {
    fn new_trace_id(&self) -> TraceId {
        self.random.new_trace_id()
    }

    fn new_span_id(&self) -> SpanId {
        PINNED
            .with(Cell::take)
            .unwrap_or_else(|| self.random.new_span_id())
    }
}

/// The SDK tracer, pinning the id of spans that carry [`SPAN_ID_FIELD`].
#[derive(Debug, Clone)]
pub(super) struct PinningTracer(pub(super) SdkTracer);

impl Tracer for PinningTracer {
    type Span = Span;

    fn build_with_context(&self, builder: SpanBuilder, parent_cx: &Context) -> Span {
        let pinned = builder
            .attributes
            .iter()
            .flatten()
            .find(|kv| kv.key.as_str() == SPAN_ID_FIELD)
            .and_then(|kv| match &kv.value {
                Value::String(id) => SpanId::from_hex(id.as_str()).ok(),
                _ => None,
            })
            .filter(|id| *id != SpanId::INVALID);
        PINNED.with(|cell| cell.set(pinned));
        let span = self.0.build_with_context(builder, parent_cx);
        // The SDK asks for an id only when it records or samples; never leave one behind.
        PINNED.with(|cell| cell.set(None));
        span
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry::KeyValue;
    use opentelemetry::trace::{Span as _, TracerProvider as _};
    use opentelemetry_sdk::trace::SdkTracerProvider;

    use super::*;

    #[test]
    fn a_span_with_the_field_gets_that_id_and_others_get_random_ones() {
        let provider = SdkTracerProvider::builder()
            .with_id_generator(PinnedIds::default())
            .build();
        let tracer = PinningTracer(provider.tracer("test"));
        let pinned = tracer.build_with_context(
            SpanBuilder::from_name("call")
                .with_attributes([KeyValue::new(SPAN_ID_FIELD, "00f067aa0ba902b7")]),
            &Context::new(),
        );
        assert_eq!(
            pinned.span_context().span_id().to_string(),
            "00f067aa0ba902b7"
        );
        let other = tracer.build_with_context(SpanBuilder::from_name("x"), &Context::new());
        assert_ne!(
            other.span_context().span_id(),
            pinned.span_context().span_id()
        );
        let garbage = tracer.build_with_context(
            SpanBuilder::from_name("call").with_attributes([KeyValue::new(SPAN_ID_FIELD, "zz")]),
            &Context::new(),
        );
        assert!(garbage.span_context().is_valid());
    }
}
