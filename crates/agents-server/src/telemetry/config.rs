//! The `[telemetry]` section: where spans go, how many are kept, and how logs look.

use agents_core::ConfigError;
use serde::{Deserialize, Serialize};

/// Tracing and logging settings.
///
/// With no `otlp_endpoint` nothing is exported, but every request still gets a server span, so
/// trace ids reach the logs, the provider requests and the audit log all the same.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct TelemetryConfig {
    /// An OTLP/gRPC collector, e.g. `http://127.0.0.1:4317`; unset exports nothing.
    pub otlp_endpoint: Option<String>,
    /// The share of new traces to keep, `0.0..=1.0`. A trace the client started keeps the
    /// client's decision (its `traceparent` sampled flag): the sampler is parent-based.
    pub sampling_ratio: f64,
    /// `service.name` of the exported spans.
    pub service_name: String,
    /// How long one export to the collector may take, in milliseconds.
    pub export_timeout_ms: u64,
    /// Log lines on stderr: `json` (one object a line, with `trace_id` and `span_id`) or
    /// `text` (for people at a terminal).
    pub log_format: LogFormat,
}

/// How log records are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum LogFormat {
    /// One JSON object a line, with the current span's `trace_id` and `span_id`.
    #[default]
    Json,
    /// Human-readable lines.
    Text,
}

/// The longest export timeout accepted: beyond it a stuck collector would hold shutdown.
const MAX_EXPORT_TIMEOUT_MS: u64 = 60_000;

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            otlp_endpoint: None,
            sampling_ratio: 1.0,
            service_name: "agents-server".to_owned(),
            export_timeout_ms: 10_000,
            log_format: LogFormat::Json,
        }
    }
}

impl TelemetryConfig {
    /// Every problem, each named by its key under `telemetry.`.
    pub fn validate(&self) -> Vec<ConfigError> {
        let mut errors = Vec::new();
        if let Some(endpoint) = &self.otlp_endpoint
            && let Err(message) = check_endpoint(endpoint)
        {
            errors.push(ConfigError::new("telemetry.otlp_endpoint", message));
        }
        if !(0.0..=1.0).contains(&self.sampling_ratio) {
            errors.push(ConfigError::new(
                "telemetry.sampling_ratio",
                format!(
                    "must be between 0.0 (keep no new trace) and 1.0 (keep every trace), not {}",
                    self.sampling_ratio
                ),
            ));
        }
        if self.service_name.trim().is_empty() {
            errors.push(ConfigError::new(
                "telemetry.service_name",
                "must not be empty; collectors group spans by it (e.g. \"agents-server\")",
            ));
        }
        if self.export_timeout_ms == 0 || self.export_timeout_ms > MAX_EXPORT_TIMEOUT_MS {
            errors.push(ConfigError::new(
                "telemetry.export_timeout_ms",
                format!("must be between 1 and {MAX_EXPORT_TIMEOUT_MS}"),
            ));
        }
        errors
    }
}

/// An OTLP/gRPC endpoint: `http://host:port`. TLS is not built in, so `https` is refused with
/// what to do instead.
fn check_endpoint(endpoint: &str) -> Result<(), String> {
    let uri: tonic::codegen::http::Uri = endpoint
        .parse()
        .map_err(|_| format!("`{endpoint}` is not a URL; write it as http://host:4317"))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => {
            return Err(format!(
                "`{endpoint}`: this build exports over plain gRPC only; send to a collector on this host or network (http://127.0.0.1:4317) and let it forward over TLS"
            ));
        }
        _ => {
            return Err(format!(
                "`{endpoint}` needs the http:// scheme, e.g. http://127.0.0.1:4317"
            ));
        }
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(format!(
            "`{endpoint}` names no host; write it as http://host:4317"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(config: &TelemetryConfig) -> Vec<String> {
        config.validate().into_iter().map(|e| e.path).collect()
    }

    #[test]
    fn defaults_are_valid_and_export_nothing() {
        let config = TelemetryConfig::default();
        assert!(config.validate().is_empty());
        assert_eq!(config.otlp_endpoint, None);
        assert_eq!(config.log_format, LogFormat::Json);
    }

    #[test]
    fn bad_values_name_their_key() {
        let mut config = TelemetryConfig {
            sampling_ratio: 1.5,
            service_name: " ".into(),
            export_timeout_ms: 0,
            ..TelemetryConfig::default()
        };
        for endpoint in [
            "not a url",
            "127.0.0.1:4317",
            "https://collector:4317",
            "http:///x",
        ] {
            config.otlp_endpoint = Some(endpoint.into());
            assert_eq!(
                paths(&config),
                [
                    "telemetry.otlp_endpoint",
                    "telemetry.sampling_ratio",
                    "telemetry.service_name",
                    "telemetry.export_timeout_ms"
                ],
                "{endpoint}"
            );
        }
        config.sampling_ratio = f64::NAN;
        assert!(paths(&config).contains(&"telemetry.sampling_ratio".to_owned()));
        let ok = TelemetryConfig {
            otlp_endpoint: Some("http://127.0.0.1:4317".into()),
            sampling_ratio: 0.0,
            ..TelemetryConfig::default()
        };
        assert!(ok.validate().is_empty());
    }
}
