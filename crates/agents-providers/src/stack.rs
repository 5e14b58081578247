//! The order the runtime wraps a provider in, written down once.
//!
//! Outermost first — each layer refuses as early and as cheaply as it can:
//!
//! 1. **host guard** (feature `mlx`, when configured): a hot or swapping host refuses before
//!    anything is counted against the provider;
//! 2. **circuit breaker**: a provider that is down is skipped at once, and a whole retried call
//!    counts as one outcome;
//! 3. **rate limit**: RPM/TPM budgets, spent once per call;
//! 4. **concurrency quota**: a slot is held for the whole call, retries included;
//! 5. **retry**: backoff, Retry-After and a budget, never past the caller's deadline;
//! 6. **timeout**: each attempt's deadline, and the stream idle and total bounds;
//! 7. **observe**: `provider.request` / `provider.success` / `provider.failure` for every attempt;
//! 8. the adapter.

use std::sync::Arc;

use agents_core::{ConfigError, EventSink, NullSink, Provider};
use serde::{Deserialize, Serialize};

#[cfg(feature = "mlx")]
use crate::guard::{GuardConfig, HostGuard, HostProbe, SystemProbe};
use crate::policy::breaker::{BreakerConfig, CircuitBreaker};
use crate::policy::observe::Observe;
use crate::policy::quota::{ConcurrencyConfig, ConcurrencyLimit, QuotaDepth};
use crate::policy::rate::{RateConfig, RateLimit};
use crate::policy::retry::{Retry, RetryConfig};
use crate::policy::timeout::{Timeout, TimeoutConfig};

/// Every policy's settings for one provider. Each section defaults to sensible values.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct PolicyConfig {
    /// Per-attempt and stream timeouts.
    pub timeout: TimeoutConfig,
    /// Retries.
    pub retry: RetryConfig,
    /// The circuit breaker.
    pub breaker: BreakerConfig,
    /// The concurrency quota.
    pub concurrency: ConcurrencyConfig,
    /// RPM/TPM limits (off unless set).
    pub rate: RateConfig,
    /// The host guard, for models served on this machine (off unless set).
    #[cfg(feature = "mlx")]
    pub guard: Option<GuardConfig>,
}

impl PolicyConfig {
    /// Checks every section; errors name the section, e.g. `retry.budget.ratio`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.timeout.validate().map_err(|e| e.within("timeout"))?;
        self.retry.validate().map_err(|e| e.within("retry"))?;
        self.breaker.validate().map_err(|e| e.within("breaker"))?;
        self.concurrency
            .validate()
            .map_err(|e| e.within("concurrency"))?;
        self.rate.validate().map_err(|e| e.within("rate"))?;
        #[cfg(feature = "mlx")]
        if let Some(guard) = &self.guard {
            guard.validate().map_err(|e| e.within("guard"))?;
        }
        Ok(())
    }
}

/// Wraps an adapter in the policies, in the order above.
#[derive(Debug)]
pub struct Stack {
    adapter: Arc<dyn Provider>,
    events: Arc<dyn EventSink>,
    model: Option<String>,
    #[cfg(feature = "mlx")]
    probe: Option<Arc<dyn HostProbe>>,
}

impl Stack {
    /// A stack around `adapter`; events are discarded until [`events`](Self::events) is set.
    pub fn new(adapter: Arc<dyn Provider>) -> Self {
        Self {
            adapter,
            events: Arc::new(NullSink),
            model: None,
            #[cfg(feature = "mlx")]
            probe: None,
        }
    }

    /// Where breaker, guard and fallback events go.
    pub fn events(mut self, events: Arc<dyn EventSink>) -> Self {
        self.events = events;
        self
    }

    /// The model the adapter asks for when a request names none, for events.
    pub fn model(mut self, model: impl Into<String>) -> Self {
        self.model = Some(model.into());
        self
    }

    /// The probe the host guard reads (default: this machine's).
    #[cfg(feature = "mlx")]
    pub fn host_probe(mut self, probe: Arc<dyn HostProbe>) -> Self {
        self.probe = Some(probe);
        self
    }

    /// The wrapped provider. Its id is the adapter's.
    pub fn build(self, config: &PolicyConfig) -> Result<Arc<dyn Provider>, ConfigError> {
        self.build_with_depth(config).map(|(provider, _)| provider)
    }

    /// [`build`](Self::build), also returning a view of the concurrency quota's in-flight
    /// calls and wait queue, for metrics.
    pub fn build_with_depth(
        self,
        config: &PolicyConfig,
    ) -> Result<(Arc<dyn Provider>, QuotaDepth), ConfigError> {
        config.validate()?;
        let model = self.model.unwrap_or_default();
        let mut provider: Arc<dyn Provider> =
            Arc::new(Observe::new(self.adapter, self.events.clone(), model));
        provider = Arc::new(Timeout::new(provider, config.timeout.clone())?);
        provider = Arc::new(Retry::new(provider, config.retry.clone())?);
        let quota = ConcurrencyLimit::new(provider, config.concurrency.clone())?;
        let depth = quota.depth();
        provider = Arc::new(quota);
        if config.rate.requests_per_minute.is_some() || config.rate.tokens_per_minute.is_some() {
            provider = Arc::new(RateLimit::new(provider, config.rate.clone())?);
        }
        provider = Arc::new(CircuitBreaker::new(
            provider,
            config.breaker.clone(),
            self.events.clone(),
        )?);
        #[cfg(feature = "mlx")]
        if let Some(guard) = &config.guard {
            let probe = self.probe.unwrap_or_else(|| Arc::new(SystemProbe));
            provider = Arc::new(HostGuard::new(provider, probe, guard.clone(), self.events)?);
        }
        Ok((provider, depth))
    }
}
