//! What a [`Retry`](super::Retry) is told: how often, how long to wait, and how much retrying the
//! recent traffic can afford.

use std::time::Duration;

use agents_core::ConfigError;
use serde::{Deserialize, Serialize};

/// Longest wait accepted anywhere in this config: an hour. Longer waits belong to a queue, and
/// the bound keeps `Instant + wait` far from overflow.
const MAX_WAIT_MS: u64 = 3_600_000;

/// Configuration of a [`Retry`](super::Retry).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct RetryConfig {
    /// Retries after the first attempt, at most 10. 0 turns retrying off.
    pub max_retries: u32,
    /// The first retry waits up to this long, in milliseconds; each next one up to twice as
    /// long. At least 1.
    pub base_delay_ms: u64,
    /// No computed wait is longer than this, in milliseconds.
    pub max_delay_ms: u64,
    /// How much retrying the recent traffic allows.
    pub budget: BudgetConfig,
    /// Wait as long as the provider's `Retry-After` asks instead of the computed delay.
    pub respect_retry_after: bool,
    /// A `Retry-After` longer than this, in milliseconds, is not waited for: the error is
    /// returned so the fallback chain can move on.
    pub max_retry_after_ms: u64,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            max_retries: 2,
            base_delay_ms: 100,
            max_delay_ms: 5_000,
            budget: BudgetConfig::default(),
            respect_retry_after: true,
            max_retry_after_ms: 30_000,
        }
    }
}

/// The retry budget of a [`RetryConfig`]: retries over the last `window_ms` may number at most
/// `ratio` times the requests over that window, plus `min_per_second` per second.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct BudgetConfig {
    /// Retries allowed per request, between 0 and 10: 0.2 lets retries add 20% to the load.
    pub ratio: f64,
    /// Retries allowed per second whatever the traffic, so a quiet provider still gets some.
    pub min_per_second: u32,
    /// How far back requests and retries are remembered, in milliseconds, 1000 to 60000.
    pub window_ms: u64,
}

impl Default for BudgetConfig {
    fn default() -> Self {
        Self {
            ratio: 0.2,
            min_per_second: 5,
            window_ms: 10_000,
        }
    }
}

impl RetryConfig {
    /// Checks every setting; the error names the offending one relative to this struct (use
    /// [`ConfigError::within`] to prefix where the struct sits in the file).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_retries > 10 {
            return Err(ConfigError::new(
                "max_retries",
                "must be at most 10; more retries only add load to a failing provider",
            ));
        }
        if self.base_delay_ms == 0 || self.base_delay_ms > MAX_WAIT_MS {
            return Err(ConfigError::new(
                "base_delay_ms",
                format!("must be between 1 and {MAX_WAIT_MS}"),
            ));
        }
        if self.max_delay_ms < self.base_delay_ms || self.max_delay_ms > MAX_WAIT_MS {
            return Err(ConfigError::new(
                "max_delay_ms",
                format!("must be between base_delay_ms and {MAX_WAIT_MS}"),
            ));
        }
        if self.max_retry_after_ms > MAX_WAIT_MS {
            return Err(ConfigError::new(
                "max_retry_after_ms",
                format!("must be at most {MAX_WAIT_MS}"),
            ));
        }
        if !(0.0..=10.0).contains(&self.budget.ratio) {
            return Err(ConfigError::new("budget.ratio", "must be between 0 and 10"));
        }
        if !(1_000..=60_000).contains(&self.budget.window_ms) {
            return Err(ConfigError::new(
                "budget.window_ms",
                "must be between 1000 and 60000",
            ));
        }
        Ok(())
    }

    /// The wait before retry number `attempt + 1` (0 is the first retry), with full jitter:
    /// uniformly random in `[0, min(max_delay, base_delay * 2^attempt))`.
    ///
    /// Full jitter spreads the retries of many callers that failed together, so they do not
    /// come back as one synchronized wave.
    pub fn backoff(&self, attempt: u32) -> Duration {
        crate::jitter::full_jitter(
            self.base_delay_ms,
            attempt,
            self.max_delay_ms,
            &mut rand::rng(),
        )
    }
}
