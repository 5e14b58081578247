use agents_core::ConfigError;
use serde::{Deserialize, Serialize};

/// Settings of the [`ConcurrencyLimit`](super::ConcurrencyLimit) policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct ConcurrencyConfig {
    /// Calls in flight at once.
    pub max_concurrent: usize,
    /// Callers that may wait for a slot; the next one is refused at once.
    pub max_waiting: usize,
    /// Longest a caller waits for a slot before it is refused with `Overloaded` (the request's
    /// deadline may cut it shorter; the refusal is `Overloaded` then too).
    pub max_wait_ms: u64,
}

impl Default for ConcurrencyConfig {
    fn default() -> Self {
        Self {
            max_concurrent: 8,
            max_waiting: 32,
            max_wait_ms: 10_000,
        }
    }
}

impl ConcurrencyConfig {
    /// Sets the calls in flight.
    pub fn with_max_concurrent(mut self, n: usize) -> Self {
        self.max_concurrent = n;
        self
    }

    /// Sets the queue length.
    pub fn with_max_waiting(mut self, n: usize) -> Self {
        self.max_waiting = n;
        self
    }

    /// Sets the longest wait.
    pub fn with_max_wait_ms(mut self, ms: u64) -> Self {
        self.max_wait_ms = ms;
        self
    }

    /// Refuses a zero limit and sizes the semaphore cannot hold.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_concurrent == 0 {
            return Err(ConfigError::new("max_concurrent", "must be at least 1"));
        }
        if self.max_wait_ms > 3_600_000 {
            return Err(ConfigError::new(
                "max_wait_ms",
                "must be at most 3600000 (an hour)",
            ));
        }
        if self.max_concurrent > tokio::sync::Semaphore::MAX_PERMITS {
            return Err(ConfigError::new(
                "max_concurrent",
                "is larger than a semaphore can hold",
            ));
        }
        Ok(())
    }
}
