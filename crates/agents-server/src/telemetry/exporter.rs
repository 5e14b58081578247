//! The tracer provider: parent-based ratio sampling, pinned span ids, and — when an endpoint is
//! configured — a batch processor in front of the OTLP/gRPC exporter, every span redacted on
//! its way out.

use std::borrow::Cow;
use std::time::Duration;

use anyhow::Context as _;
use opentelemetry::trace::Status;
use opentelemetry::{KeyValue, Value};
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    BatchSpanProcessor, Sampler, SdkTracerProvider, SpanData, SpanExporter,
};

use super::config::TelemetryConfig;
use super::ids::PinnedIds;

/// The provider for `config`. With an endpoint it must be built inside a Tokio runtime: the
/// gRPC channel's connection task runs there.
pub(super) fn provider(config: &TelemetryConfig) -> anyhow::Result<SdkTracerProvider> {
    let resource = Resource::builder()
        .with_service_name(config.service_name.clone())
        .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
        .build();
    let sampler = Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(config.sampling_ratio)));
    let mut builder = SdkTracerProvider::builder()
        .with_resource(resource)
        .with_sampler(sampler)
        .with_id_generator(PinnedIds::default());
    if let Some(endpoint) = &config.otlp_endpoint {
        anyhow::ensure!(
            tokio::runtime::Handle::try_current().is_ok(),
            "the OTLP exporter must be set up inside the Tokio runtime that serves"
        );
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint.clone())
            .with_timeout(Duration::from_millis(config.export_timeout_ms))
            .build()
            .with_context(|| {
                format!("cannot set up the OTLP exporter for {endpoint} (telemetry.otlp_endpoint)")
            })?;
        builder =
            builder.with_span_processor(BatchSpanProcessor::builder(Redacting(exporter)).build());
    }
    Ok(builder.build())
}

/// Masks secrets in every string a span carries before it leaves the process: names, string
/// attributes, event names and attributes, and the error description.
#[derive(Debug)]
pub(super) struct Redacting<E>(pub(super) E);

impl<E: SpanExporter> SpanExporter for Redacting<E> {
    async fn export(&self, mut batch: Vec<SpanData>) -> OTelSdkResult {
        for span in &mut batch {
            redact_span(span);
        }
        self.0.export(batch).await
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.0.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.0.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.0.set_resource(resource);
    }
}

pub(super) fn redact_span(span: &mut SpanData) {
    redact_cow(&mut span.name);
    redact_attributes(&mut span.attributes);
    for event in &mut span.events.events {
        redact_cow(&mut event.name);
        redact_attributes(&mut event.attributes);
    }
    if let Status::Error { description } = &mut span.status {
        redact_cow(description);
    }
}

fn redact_cow(text: &mut Cow<'static, str>) {
    if let Cow::Owned(masked) = agents_core::redact(text) {
        *text = Cow::Owned(masked);
    }
}

fn redact_attributes(attributes: &mut [KeyValue]) {
    for attribute in attributes {
        if let Value::String(value) = &attribute.value
            && let Cow::Owned(masked) = agents_core::redact(value.as_str())
        {
            attribute.value = Value::String(masked.into());
        }
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry::InstrumentationScope;
    use opentelemetry::trace::{SpanContext, SpanId, SpanKind, TraceFlags, TraceId, TraceState};
    use opentelemetry_sdk::trace::{SpanEvents, SpanLinks};

    use super::*;

    #[test]
    fn secrets_in_names_attributes_events_and_status_are_masked() {
        let secret = "sk-telemetry-test-0123456789abcdef";
        let mut events = SpanEvents::default();
        events.events.push(opentelemetry::trace::Event::new(
            format!("failed with {secret}"),
            std::time::SystemTime::now(),
            vec![KeyValue::new("message", format!("key {secret}"))],
            0,
        ));
        let mut span = SpanData {
            span_context: SpanContext::new(
                TraceId::from(1u128),
                SpanId::from(1u64),
                TraceFlags::SAMPLED,
                false,
                TraceState::default(),
            ),
            parent_span_id: SpanId::INVALID,
            parent_span_is_remote: false,
            span_kind: SpanKind::Server,
            name: Cow::Owned(format!("call {secret}")),
            start_time: std::time::SystemTime::now(),
            end_time: std::time::SystemTime::now(),
            attributes: vec![
                KeyValue::new("error.message", format!("Bearer {secret}")),
                KeyValue::new("tokens", 12),
            ],
            dropped_attributes_count: 0,
            events,
            links: SpanLinks::default(),
            status: Status::error(format!("401 for {secret}")),
            instrumentation_scope: InstrumentationScope::builder("test").build(),
        };
        redact_span(&mut span);
        let text = format!("{span:?}");
        assert!(!text.contains(secret), "{text}");
        assert!(text.contains(agents_core::MASK), "{text}");
        assert_eq!(span.attributes[1], KeyValue::new("tokens", 12));
    }
}
