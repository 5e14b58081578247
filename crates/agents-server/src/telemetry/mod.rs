//! Tracing and logs: the global `tracing` subscriber of `agents-server serve` and `worker`.
//!
//! Why: a slow or failed call must be followed across the client, this server and the model
//! endpoint by one id. Each gRPC call gets a server span whose parent is the client's
//! `traceparent` ([`grpc_server_span`]); the agents get that span's context
//! ([`current_trace_context`]), send it to the provider and stamp it on every CloudEvent; the
//! provider call is a child span. The call's gRPC status goes on its span ([`CallStatusLayer`]),
//! so failed calls export as errors. In a worker, each task delivery runs in a `task.run` span
//! ([`task_span`]) whose parent is the `traceparent` that rode in the task message's headers.
//! Spans go to an OTLP/gRPC collector when `telemetry.otlp_endpoint` is set (batched, redacted, sampled parent-based by
//! `telemetry.sampling_ratio`); ids are made either way, so logs and events carry them.
//!
//! Log records go to stderr through the redactor, as JSON with `trace_id` / `span_id` or as
//! text (`telemetry.log_format`), filtered by `RUST_LOG` (default `info`). Exported spans are
//! filtered apart from the logs: `info` and above, never the HTTP/2 stack's own.

mod call_status;
mod config;
mod exporter;
mod ids;
mod json;
mod propagation;

pub use call_status::{CallStatusBody, CallStatusFuture, CallStatusLayer, CallStatusService};
pub use config::{LogFormat, TelemetryConfig};
pub use ids::SPAN_ID_FIELD;
pub use propagation::{UNKNOWN_METHOD_SPAN, current_trace_context, grpc_server_span, task_span};

use anyhow::Context as _;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer as _};

use crate::logging::RedactingStderr;

/// The installed tracer provider. [`shutdown`](Self::shutdown) exports the spans still queued:
/// call it last on the way out.
#[derive(Debug)]
pub struct Telemetry {
    provider: SdkTracerProvider,
    exporting: bool,
}

impl Telemetry {
    /// Whether spans are exported (an endpoint is configured).
    pub fn is_exporting(&self) -> bool {
        self.exporting
    }

    /// Exports every span still queued, then stops the exporter. The export's own timeout
    /// (`telemetry.export_timeout_ms`) bounds it.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let provider = self.provider;
        // Shutting down blocks until the batch thread has exported, and the gRPC channel it
        // exports through is driven by this runtime: never block a runtime thread on it.
        tokio::task::spawn_blocking(move || provider.shutdown())
            .await
            .context("the span exporter's shutdown task failed")?
            .map_err(|e| anyhow::anyhow!("could not flush the last spans: {e}"))
    }
}

/// Installs the global subscriber for `config`: the OpenTelemetry layer (exporting when an
/// endpoint is set) and the log layer. Call it once, inside the Tokio runtime that serves.
///
/// # Errors
/// When the exporter cannot be built, or a global subscriber is already installed.
pub fn init(config: &TelemetryConfig) -> anyhow::Result<Telemetry> {
    let provider = exporter::provider(config)?;
    let tracer = ids::PinningTracer(provider.tracer("agents-server"));
    // Spans for the collector: ours, not the transport's (whose spans would also trace the
    // export itself).
    let spans = Targets::new()
        .with_default(LevelFilter::INFO)
        .with_target("h2", LevelFilter::OFF)
        .with_target("hyper", LevelFilter::OFF)
        .with_target("hyper_util", LevelFilter::OFF)
        .with_target("tonic", LevelFilter::OFF)
        .with_target("tower", LevelFilter::OFF)
        .with_target("opentelemetry", LevelFilter::OFF)
        .with_target("opentelemetry_sdk", LevelFilter::OFF)
        .with_target("opentelemetry_otlp", LevelFilter::OFF);
    let otel = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_filter(spans);
    let logs = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let fmt = match config.log_format {
        LogFormat::Json => json::layer(RedactingStderr).with_filter(logs).boxed(),
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(RedactingStderr)
            .with_filter(logs)
            .boxed(),
    };
    tracing_subscriber::registry()
        .with(otel)
        .with(fmt)
        .try_init()
        .context(
            "a global tracing subscriber is already installed; call telemetry::init once, first",
        )?;
    Ok(Telemetry {
        provider,
        exporting: config.otlp_endpoint.is_some(),
    })
}
