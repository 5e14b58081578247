use agents_core::ConfigError;
use serde::{Deserialize, Serialize};

/// The longest timeout accepted: a day.
const MAX_TIMEOUT_MS: u64 = 86_400_000;

/// Settings of the [`Timeout`](super::Timeout) policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct TimeoutConfig {
    /// Longest a non-streaming call, or the wait for a stream's first chunk, may take.
    pub request_timeout_ms: u64,
    /// Longest gap between two chunks of a stream.
    pub stream_idle_timeout_ms: u64,
    /// Longest a whole stream may take.
    pub stream_total_timeout_ms: u64,
}

impl Default for TimeoutConfig {
    fn default() -> Self {
        Self {
            // Long enough for a slow local model to write a full answer.
            request_timeout_ms: 120_000,
            stream_idle_timeout_ms: 15_000,
            stream_total_timeout_ms: 300_000,
        }
    }
}

impl TimeoutConfig {
    /// Sets the request timeout.
    pub fn with_request_timeout_ms(mut self, ms: u64) -> Self {
        self.request_timeout_ms = ms;
        self
    }

    /// Sets the stream idle timeout.
    pub fn with_stream_idle_timeout_ms(mut self, ms: u64) -> Self {
        self.stream_idle_timeout_ms = ms;
        self
    }

    /// Sets the stream total timeout.
    pub fn with_stream_total_timeout_ms(mut self, ms: u64) -> Self {
        self.stream_total_timeout_ms = ms;
        self
    }

    /// Refuses zero timeouts and a total shorter than the idle gap.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (field, value) in [
            ("request_timeout_ms", self.request_timeout_ms),
            ("stream_idle_timeout_ms", self.stream_idle_timeout_ms),
            ("stream_total_timeout_ms", self.stream_total_timeout_ms),
        ] {
            if value == 0 {
                return Err(ConfigError::new(field, "must be at least 1 ms"));
            }
            if value > MAX_TIMEOUT_MS {
                return Err(ConfigError::new(field, "must be at most 86400000 (a day)"));
            }
        }
        if self.stream_total_timeout_ms < self.stream_idle_timeout_ms {
            return Err(ConfigError::new(
                "stream_total_timeout_ms",
                "must be at least stream_idle_timeout_ms",
            ));
        }
        Ok(())
    }
}
