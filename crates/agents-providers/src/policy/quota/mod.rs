//! Concurrency quota per provider: at most `max_concurrent` calls in flight, at most
//! `max_waiting` callers queued behind them, and everyone else refused at once.
//!
//! Why: a local model server serves a handful of requests at a time; sending it more only
//! lengthens every request. Callers beyond the queue fail fast with `Overloaded`, so the fallback
//! chain can send them elsewhere, and memory stays bounded however many arrive. A caller whose
//! wait ends (`max_wait_ms`, or its deadline) is refused with `Overloaded` too: the provider
//! was never called, so the circuit breaker does not count it.

mod config;
mod policy;

pub use config::ConcurrencyConfig;
pub use policy::{ConcurrencyLimit, QuotaDepth};
