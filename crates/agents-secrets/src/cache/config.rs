use agents_core::ConfigError;
use serde::{Deserialize, Serialize};

/// Settings of the [`CachedStore`](super::CachedStore).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct CacheConfig {
    /// How long a loaded value is served before it is loaded again: the longest a rotation
    /// takes to reach this process.
    pub ttl_ms: u64,
    /// How long before the TTL ends a background load starts while the cached value keeps being
    /// served; 0 turns refresh-ahead off. Must be less than `ttl_ms`. Unset: a fifth of the TTL.
    pub refresh_ahead_ms: Option<u64>,
    /// How long past its TTL a value may still be served while the backend is unreachable
    /// (never when it refuses); 0, the default, never serves an expired value.
    pub stale_if_error_ms: u64,
    /// Deadline of one load from the store behind the cache.
    pub fetch_timeout_ms: u64,
    /// How long a failed load's error is given to further requests for the same reference
    /// without asking the store again (or, while it is unreachable, the value `stale_if_error_ms`
    /// allows). Without it, every request behind a hung store waits `fetch_timeout_ms` in turn.
    /// 0 asks the store on every request that finds no value.
    pub error_ttl_ms: u64,
    /// Most references kept; the oldest is dropped to make room.
    pub max_entries: usize,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            ttl_ms: 300_000,
            refresh_ahead_ms: None,
            stale_if_error_ms: 0,
            fetch_timeout_ms: 10_000,
            error_ttl_ms: 1_000,
            max_entries: 1024,
        }
    }
}

impl CacheConfig {
    /// Sets the TTL.
    pub fn with_ttl_ms(mut self, ms: u64) -> Self {
        self.ttl_ms = ms;
        self
    }

    /// Sets the refresh-ahead window.
    pub fn with_refresh_ahead_ms(mut self, ms: u64) -> Self {
        self.refresh_ahead_ms = Some(ms);
        self
    }

    /// The refresh-ahead window in effect: as set, or a fifth of the TTL.
    pub fn refresh_ahead_window_ms(&self) -> u64 {
        self.refresh_ahead_ms.unwrap_or(self.ttl_ms / 5)
    }

    /// Sets how long an expired value may be served while the backend is unreachable.
    pub fn with_stale_if_error_ms(mut self, ms: u64) -> Self {
        self.stale_if_error_ms = ms;
        self
    }

    /// Sets the deadline of one load.
    pub fn with_fetch_timeout_ms(mut self, ms: u64) -> Self {
        self.fetch_timeout_ms = ms;
        self
    }

    /// Sets how long a failed load's error is remembered.
    pub fn with_error_ttl_ms(mut self, ms: u64) -> Self {
        self.error_ttl_ms = ms;
        self
    }

    /// Sets the entry bound.
    pub fn with_max_entries(mut self, n: usize) -> Self {
        self.max_entries = n;
        self
    }

    /// Refuses a zero TTL, deadline or bound, and a refresh window as long as the TTL.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.ttl_ms == 0 {
            return Err(ConfigError::new("ttl_ms", "must be at least 1"));
        }
        if self.refresh_ahead_window_ms() >= self.ttl_ms {
            return Err(ConfigError::new(
                "refresh_ahead_ms",
                "must be less than ttl_ms (0 turns refresh-ahead off)",
            ));
        }
        if self.fetch_timeout_ms == 0 {
            return Err(ConfigError::new("fetch_timeout_ms", "must be at least 1"));
        }
        if self.max_entries == 0 {
            return Err(ConfigError::new("max_entries", "must be at least 1"));
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_bad_values_are_named() {
        assert!(CacheConfig::default().validate().is_ok());
        let cases = [
            (CacheConfig::default().with_ttl_ms(0), "ttl_ms"),
            (
                CacheConfig::default()
                    .with_ttl_ms(1000)
                    .with_refresh_ahead_ms(1000),
                "refresh_ahead_ms",
            ),
            (
                CacheConfig::default().with_fetch_timeout_ms(0),
                "fetch_timeout_ms",
            ),
            (CacheConfig::default().with_max_entries(0), "max_entries"),
        ];
        for (config, path) in cases {
            assert_eq!(config.validate().unwrap_err().path, path);
        }
        let parsed: CacheConfig = serde_json::from_str(r#"{"ttl_ms": 5000}"#).unwrap();
        assert!(parsed.validate().is_ok());
        assert_eq!(parsed.ttl_ms, 5000);
        assert_eq!(parsed.refresh_ahead_window_ms(), 1000);
        assert_eq!(
            CacheConfig::default()
                .with_refresh_ahead_ms(0)
                .refresh_ahead_window_ms(),
            0
        );
        assert_eq!(parsed.max_entries, 1024);
        assert!(serde_json::from_str::<CacheConfig>(r#"{"ttl": 5}"#).is_err());
        let c = CacheConfig::default().with_stale_if_error_ms(5);
        assert_eq!(c.stale_if_error_ms, 5);
    }
}
