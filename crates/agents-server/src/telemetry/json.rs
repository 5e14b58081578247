//! JSON log records: one object a line, carrying the `trace_id` and `span_id` of the span the
//! record was written in, so a log line leads to its trace and back. Every string in the record
//! is redacted before it is serialized (a secret JSON-escaped would slip past a line-level
//! match), and the line goes through the redacting writer as well.
//!
//! The ids are those of the innermost span that both the logs and the exporter see; with
//! `RUST_LOG` below `info` the request spans are filtered out of the logs, and so are their ids.

use std::fmt;
use std::sync::OnceLock;

use opentelemetry::trace::TraceContextExt as _;
use serde_json::{Map, Value};
use tracing::dispatcher::WeakDispatch;
use tracing::field::{Field, Visit};
use tracing::span::Id;
use tracing::{Dispatch, Event, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields, MakeWriter};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

/// The layer writing JSON records to `writer`. Add it after the OpenTelemetry layer.
pub(super) fn layer<S, W>(writer: W) -> impl Layer<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    TraceIdsLayer::default().and_then(
        tracing_subscriber::fmt::layer()
            .fmt_fields(JsonFields::new())
            .event_format(JsonWithTrace)
            .with_writer(writer),
    )
}

/// A span's OpenTelemetry ids, kept in its extensions for the records written inside it.
#[derive(Debug, Clone)]
struct TraceIds {
    trace_id: String,
    span_id: String,
}

/// Notes each span's [`TraceIds`] when it is first entered (the OpenTelemetry layer has built
/// the span by then). The formatter cannot look them up itself: it runs inside the dispatcher,
/// where the dispatcher is out of reach.
#[derive(Debug, Default)]
struct TraceIdsLayer {
    dispatch: OnceLock<WeakDispatch>,
}

impl<S> Layer<S> for TraceIdsLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_register_dispatch(&self, dispatch: &Dispatch) {
        let _ = self.dispatch.set(dispatch.downgrade());
    }

    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else {
            return;
        };
        if span.extensions().get::<TraceIds>().is_some() {
            return;
        }
        let Some(dispatch) = self.dispatch.get().and_then(WeakDispatch::upgrade) else {
            return;
        };
        if let Some(ids) = trace_ids(id, &dispatch) {
            // `replace`: another thread may have entered the same span meanwhile.
            span.extensions_mut().replace(ids);
        }
    }
}

/// The record format; see the module docs.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct JsonWithTrace;

impl<S, N> FormatEvent<S, N> for JsonWithTrace
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut record = Map::new();
        let mut timestamp = String::new();
        if SystemTime
            .format_time(&mut Writer::new(&mut timestamp))
            .is_ok()
        {
            record.insert("timestamp".into(), timestamp.into());
        }
        let metadata = event.metadata();
        record.insert("level".into(), metadata.level().as_str().into());
        record.insert("target".into(), metadata.target().into());
        let mut fields = FieldVisitor::default();
        event.record(&mut fields);
        if let Some(message) = fields.message.take() {
            record.insert("message".into(), message);
        }
        if !fields.fields.is_empty() {
            record.insert("fields".into(), Value::Object(fields.fields));
        }
        if let Some(scope) = ctx.event_scope() {
            let mut spans = Vec::new();
            let mut ids = None;
            // Leaf first: the innermost span that has an OpenTelemetry context names the ids.
            for span in scope {
                if ids.is_none() {
                    ids = span.extensions().get::<TraceIds>().cloned();
                }
                let mut entry = Map::new();
                entry.insert("name".into(), span.name().into());
                if let Some(formatted) = span.extensions().get::<FormattedFields<N>>()
                    && let Ok(Value::Object(values)) =
                        serde_json::from_str::<Value>(&formatted.fields)
                {
                    entry.extend(values);
                }
                spans.push(Value::Object(entry));
            }
            spans.reverse();
            if let Some(Value::Object(leaf)) = spans.last()
                && let Some(name) = leaf.get("name")
            {
                record.insert("span".into(), name.clone());
            }
            record.insert("spans".into(), Value::Array(spans));
            if let Some(ids) = ids {
                record.insert("trace_id".into(), ids.trace_id.into());
                record.insert("span_id".into(), ids.span_id.into());
            }
        }
        let mut record = Value::Object(record);
        agents_core::Redactor::global().redact_json(&mut record);
        writeln!(writer, "{record}")
    }
}

/// The ids of a span's OpenTelemetry context, when it has a valid one.
fn trace_ids(id: &Id, dispatch: &Dispatch) -> Option<TraceIds> {
    let context = tracing_opentelemetry::get_otel_context(id, dispatch)?;
    let span = context.span();
    let span_context = span.span_context();
    span_context.is_valid().then(|| TraceIds {
        trace_id: span_context.trace_id().to_string(),
        span_id: span_context.span_id().to_string(),
    })
}

/// An event's fields as JSON values; `message` kept apart.
#[derive(Default)]
struct FieldVisitor {
    message: Option<Value>,
    fields: Map<String, Value>,
}

impl FieldVisitor {
    fn put(&mut self, field: &Field, value: Value) {
        if field.name() == "message" {
            self.message = Some(value);
        } else {
            self.fields.insert(field.name().to_owned(), value);
        }
    }
}

impl Visit for FieldVisitor {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, value.into());
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, value.into());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, value.into());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, value.into());
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, value.into());
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put(field, value.to_string().into());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, format!("{value:?}").into());
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_sdk::trace::SdkTracerProvider;
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    use tracing_subscriber::layer::SubscriberExt as _;

    use super::*;

    /// Collects what the layer writes.
    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Capture {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Capture {
        type Writer = Capture;

        fn make_writer(&'a self) -> Capture {
            self.clone()
        }
    }

    #[test]
    fn records_carry_the_span_ids_and_never_a_registered_secret() {
        let secret = "json-log-secret-7f3a9c2e";
        agents_core::Redactor::global().register(secret).unwrap();
        let provider = SdkTracerProvider::builder().build();
        let capture = Capture::default();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")))
            .with(layer(capture.clone()));
        let expected = tracing::subscriber::with_default(subscriber, || {
            tracing::info!("outside any span");
            let span = tracing::info_span!("request", tenant = "acme", key = secret);
            let _entered = span.enter();
            tracing::warn!(
                error = %format!("upstream said \"{secret}\""),
                attempts = 2,
                "the provider refused"
            );
            let context = span.context();
            let otel = context.span();
            let ids = otel.span_context();
            (ids.trace_id().to_string(), ids.span_id().to_string())
        });
        let text = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
        assert!(!text.contains(secret), "{text}");
        let lines: Vec<Value> = text
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert_eq!(lines[0]["message"], "outside any span");
        assert!(lines[0].get("trace_id").is_none());

        let record = &lines[1];
        assert_eq!(record["level"], "WARN");
        assert_eq!(record["message"], "the provider refused");
        assert_eq!(record["fields"]["attempts"], 2);
        assert!(
            record["fields"]["error"]
                .as_str()
                .unwrap()
                .contains(agents_core::MASK)
        );
        assert_eq!(record["span"], "request");
        assert_eq!(record["spans"][0]["tenant"], "acme");
        assert_eq!(record["spans"][0]["key"], agents_core::MASK);
        assert_eq!(record["trace_id"], expected.0.as_str(), "{text}");
        assert_eq!(record["span_id"], expected.1.as_str(), "{text}");
        assert_eq!(expected.0.len(), 32);
    }
}
