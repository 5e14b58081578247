//! What a [`CircuitBreaker`](super::CircuitBreaker) is told: when to trip, how long to stay open.

use std::time::Duration;

use agents_core::ConfigError;
use serde::{Deserialize, Serialize};

/// Longest open duration accepted: a breaker open for more than a day is a provider to remove
/// from the configuration, and the bound keeps `Instant + open` far from overflow.
const MAX_OPEN_MS: u64 = 24 * 60 * 60 * 1000;

/// Configuration of a [`CircuitBreaker`](super::CircuitBreaker).
///
/// The breaker trips when either policy says so: `consecutive_failures` failures in a row, or
/// (when `failure_rate` is set) a failure share above `failure_rate.ratio`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct BreakerConfig {
    /// Failures in a row that open the breaker. At least 1.
    pub consecutive_failures: u32,
    /// Trip on a high failure share too; `null` turns this policy off.
    pub failure_rate: Option<FailureRateConfig>,
    /// How long the breaker stays open after its first trip, in milliseconds.
    pub open_ms: u64,
    /// The open duration doubles each time a probe fails, up to this, in milliseconds.
    pub max_open_ms: u64,
    /// How many probe calls may be in flight at once while half-open; further calls are
    /// rejected as if the breaker were open.
    pub half_open_probes: u32,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            consecutive_failures: 5,
            failure_rate: Some(FailureRateConfig::default()),
            open_ms: 5_000,
            max_open_ms: 60_000,
            half_open_probes: 1,
        }
    }
}

/// The failure-share policy of a [`BreakerConfig`].
///
/// failsafe measures the success rate as a moving average weighted by time (its mean lifetime
/// is the window), so the share is of recent time rather than of a fixed number of requests.
/// The policy can trip only once the breaker has watched for a whole window since it was built
/// or last closed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct FailureRateConfig {
    /// Calls the window must hold before the share is trusted. At least 1.
    pub min_requests: u32,
    /// Failure share above which the breaker opens, strictly between 0 and 1.
    pub ratio: f64,
    /// The window, in milliseconds: a whole number of seconds, as failsafe counts it in seconds.
    pub window_ms: u64,
}

impl Default for FailureRateConfig {
    fn default() -> Self {
        Self {
            min_requests: 20,
            ratio: 0.5,
            window_ms: 30_000,
        }
    }
}

impl BreakerConfig {
    /// Checks every setting; the error names the offending one relative to this struct (use
    /// [`ConfigError::within`] to prefix where the struct sits in the file).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.consecutive_failures == 0 {
            return Err(ConfigError::new(
                "consecutive_failures",
                "must be at least 1",
            ));
        }
        if self.open_ms == 0 || self.open_ms > MAX_OPEN_MS {
            return Err(ConfigError::new(
                "open_ms",
                format!("must be between 1 and {MAX_OPEN_MS} (one day)"),
            ));
        }
        if self.max_open_ms < self.open_ms || self.max_open_ms > MAX_OPEN_MS {
            return Err(ConfigError::new(
                "max_open_ms",
                format!("must be between open_ms and {MAX_OPEN_MS} (one day)"),
            ));
        }
        if self.half_open_probes == 0 {
            return Err(ConfigError::new("half_open_probes", "must be at least 1"));
        }
        if let Some(rate) = &self.failure_rate {
            rate.validate().map_err(|e| e.within("failure_rate"))?;
        }
        Ok(())
    }

    pub(super) fn open(&self) -> Duration {
        Duration::from_millis(self.open_ms)
    }

    pub(super) fn max_open(&self) -> Duration {
        Duration::from_millis(self.max_open_ms)
    }
}

impl FailureRateConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.min_requests == 0 {
            return Err(ConfigError::new("min_requests", "must be at least 1"));
        }
        // Not 0 (every failure would trip) and not 1 (failsafe would need a success rate
        // below zero, so the policy would never trip).
        if !(self.ratio > 0.0 && self.ratio < 1.0) {
            return Err(ConfigError::new(
                "ratio",
                "must be strictly between 0 and 1",
            ));
        }
        if self.window_ms < 1_000
            || !self.window_ms.is_multiple_of(1_000)
            || self.window_ms > 3_600_000
        {
            return Err(ConfigError::new(
                "window_ms",
                "must be a whole number of seconds between 1000 and 3600000",
            ));
        }
        Ok(())
    }
}
