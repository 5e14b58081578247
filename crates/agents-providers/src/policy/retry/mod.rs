//! Retries with backoff, `Retry-After` and a retry budget.
//!
//! Why: a transient fault (a 503 while a model reloads, a dropped connection, a 429) should not
//! fail a request that the same provider would answer a moment later. But retries are load:
//! during an outage every failing request comes back `max_retries` more times, tripling the
//! traffic on a provider that is already down (a retry storm). So retries are capped by a
//! *budget*, as in tower's retry budget, linkerd and Finagle: over a sliding window, retries
//! may add at most `budget.ratio` of the original requests, plus `budget.min_per_second` so a
//! quiet provider still gets a few. With the defaults, a total outage under heavy traffic costs
//! a provider about 1.2 calls per request instead of 3.
//!
//! When it retries: only errors for which
//! [`ProviderError::is_retryable`](agents_core::ProviderError::is_retryable) holds, at most
//! `max_retries` times. The wait is exponential with full jitter (random in `[0, min(max_delay,
//! base_delay * 2^n))`), so callers that failed together do not return together. A
//! `Retry-After` from the provider replaces the computed wait; one longer than
//! `max_retry_after_ms` is not waited for at all: the error goes back at once so the fallback
//! chain can try another provider. The request's deadline bounds everything: no wait is begun
//! that would end at or after it. When retrying stops, the caller gets the last attempt's error
//! unchanged; on success the generation lists the attempts retried away.
//!
//! Streams are retried only until their first item is handed over (opening the stream, or an
//! error as its first item); after that the caller holds part of an answer, and a retry would
//! duplicate it.

mod budget;
mod config;
mod policy;

pub use config::{BudgetConfig, RetryConfig};
pub use policy::Retry;

#[cfg(test)]
mod tests;
