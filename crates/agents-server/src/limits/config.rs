//! The `limits` section of the config.

use agents_core::ConfigError;
use serde::{Deserialize, Serialize};

/// The `limits` section: how many calls run at once, globally and per tenant, and how fast
/// each tenant may send them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct LimitsConfig {
    /// Requests in flight across all tenants, counted by the server's front door from their
    /// arrival (before the body is decoded) to the end of their response; beyond this, requests
    /// are refused with `RESOURCE_EXHAUSTED`, without being decoded or handled. Health checks
    /// and reflection are not counted. The handler checks the same number against the calls it
    /// runs plus the inline tasks still running (SubmitTask with `dispatch = "inline"`), so
    /// running tasks can make it refuse calls the front door let in.
    pub max_in_flight: usize,
    /// The longest work may wait for a CPU: while the runtime's scheduling delay (measured every
    /// 5 ms by a probe task, and per request from arrival to the start of its handling) is
    /// above this, new requests are refused with `RESOURCE_EXHAUSTED`, so the admitted ones
    /// keep their latency. On a quiet server the probe rests (after a second of measurements
    /// that found nothing in flight) until the next admitted request, so an idle server does
    /// not wake up every 5 ms. `0` turns the check off.
    pub max_queue_delay_ms: u64,
    /// The retry hint sent with every load-shedding refusal, in milliseconds
    /// (`grpc-retry-pushback-ms` and `google.rpc.RetryInfo`).
    pub shed_retry_after_ms: u64,
    /// Calls in flight per tenant. A running inline task (SubmitTask with `dispatch =
    /// "inline"`) counts as a call until it ends, here and in `max_in_flight`'s global count.
    pub tenant_max_concurrent: usize,
    /// Requests each tenant may start per minute, on average; `None` (the default) turns the
    /// rate limit off.
    pub tenant_requests_per_minute: Option<u32>,
    /// The burst a tenant may send at once, in seconds of its rate (at least one request).
    pub tenant_burst_seconds: f64,
    /// Tenants tracked at once; bounds the limiter's memory. When full and none is idle, calls
    /// from further tenants are refused.
    pub max_tenants: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_in_flight: 256,
            max_queue_delay_ms: 100,
            shed_retry_after_ms: 100,
            tenant_max_concurrent: 32,
            tenant_requests_per_minute: None,
            tenant_burst_seconds: 10.0,
            max_tenants: 10_000,
        }
    }
}

/// The longest burst window accepted: a day.
const MAX_BURST_SECONDS: f64 = 86_400.0;

/// The longest queue delay and retry hint accepted: a minute (longer is not load shedding).
const MAX_SHED_MS: u64 = 60_000;

impl LimitsConfig {
    /// Every problem, each with its full path (`limits.max_in_flight`), not only the first.
    pub fn validate(&self) -> Vec<ConfigError> {
        let mut errors = Vec::new();
        if self.max_in_flight == 0 {
            errors.push(ConfigError::new(
                "limits.max_in_flight",
                "must be at least 1",
            ));
        }
        if self.max_queue_delay_ms > MAX_SHED_MS {
            errors.push(ConfigError::new(
                "limits.max_queue_delay_ms",
                format!("must be at most {MAX_SHED_MS}; 0 turns the check off"),
            ));
        }
        if self.shed_retry_after_ms == 0 || self.shed_retry_after_ms > MAX_SHED_MS {
            errors.push(ConfigError::new(
                "limits.shed_retry_after_ms",
                format!("must be between 1 and {MAX_SHED_MS}"),
            ));
        }
        if self.tenant_max_concurrent == 0 {
            errors.push(ConfigError::new(
                "limits.tenant_max_concurrent",
                "must be at least 1",
            ));
        }
        if self.tenant_requests_per_minute == Some(0) {
            errors.push(ConfigError::new(
                "limits.tenant_requests_per_minute",
                "must be at least 1; leave it out to turn the rate limit off",
            ));
        }
        if !(self.tenant_burst_seconds > 0.0 && self.tenant_burst_seconds <= MAX_BURST_SECONDS) {
            errors.push(ConfigError::new(
                "limits.tenant_burst_seconds",
                format!("must be greater than 0 and at most {MAX_BURST_SECONDS}"),
            ));
        }
        if self.max_tenants == 0 {
            errors.push(ConfigError::new("limits.max_tenants", "must be at least 1"));
        }
        errors
    }

    /// What the server's front door ([`ShedLayer`](crate::shed::ShedLayer)) admits.
    pub fn shed(&self) -> crate::shed::ShedConfig {
        crate::shed::ShedConfig::new(self.max_in_flight)
            .with_max_queue_delay(
                (self.max_queue_delay_ms > 0)
                    .then(|| std::time::Duration::from_millis(self.max_queue_delay_ms)),
            )
            .with_retry_after(std::time::Duration::from_millis(self.shed_retry_after_ms))
    }

    /// The rate bucket's `(capacity, refill per second)`, when the rate limit is on.
    pub(super) fn bucket(&self) -> Option<(f64, f64)> {
        self.tenant_requests_per_minute.map(|per_minute| {
            let per_second = f64::from(per_minute) / 60.0;
            (
                (per_second * self.tenant_burst_seconds).max(1.0),
                per_second,
            )
        })
    }
}
