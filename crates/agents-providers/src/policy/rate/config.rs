use agents_core::ConfigError;
use serde::{Deserialize, Serialize};

/// Settings of the [`RateLimit`](super::RateLimit) policy. Each limit is off when unset.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct RateConfig {
    /// Requests per minute.
    pub requests_per_minute: Option<u32>,
    /// Model tokens (prompt + completion) per minute.
    pub tokens_per_minute: Option<u64>,
    /// How many seconds' worth of each budget may be spent at once (the bucket size), default
    /// 10: a 600 RPM limit admits a burst of 100, then 10 a second.
    pub burst_seconds: Option<f64>,
}

impl RateConfig {
    /// Sets the request limit.
    pub fn with_requests_per_minute(mut self, rpm: u32) -> Self {
        self.requests_per_minute = Some(rpm);
        self
    }

    /// Sets the token limit.
    pub fn with_tokens_per_minute(mut self, tpm: u64) -> Self {
        self.tokens_per_minute = Some(tpm);
        self
    }

    /// Sets the burst.
    pub fn with_burst_seconds(mut self, seconds: f64) -> Self {
        self.burst_seconds = Some(seconds);
        self
    }

    pub(super) fn burst(&self) -> f64 {
        self.burst_seconds.unwrap_or(10.0)
    }

    /// Refuses zero limits and a burst outside (0, 60] seconds.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.requests_per_minute == Some(0) {
            return Err(ConfigError::new(
                "requests_per_minute",
                "must be at least 1, or unset for no limit",
            ));
        }
        if self.tokens_per_minute == Some(0) {
            return Err(ConfigError::new(
                "tokens_per_minute",
                "must be at least 1, or unset for no limit",
            ));
        }
        let burst = self.burst();
        if !(burst > 0.0 && burst <= 60.0) {
            return Err(ConfigError::new(
                "burst_seconds",
                "must be more than 0 and at most 60",
            ));
        }
        Ok(())
    }
}
