//! A circuit breaker per provider, on the [`failsafe`] state machine.
//!
//! Why: a provider that is down fails slowly. Without a breaker every request pays its full
//! timeout before the fallback chain moves on, and the dead provider keeps receiving traffic
//! that only delays its recovery. The breaker notices the outage (consecutive failures, or a
//! failure share over a window) and *opens*: calls are refused at once with
//! [`ProviderError::CircuitOpen`](agents_core::ProviderError::CircuitOpen), whose `until` says
//! when the next probe is due, so the chain falls back in microseconds. When the open time is
//! over the breaker is *half-open*: a few probe calls (`half_open_probes` at once) go through;
//! the first success closes it, a failure opens it again for twice as long (up to
//! `max_open_ms`), so a provider that stays down is probed ever more gently. Calls beyond the
//! probes are refused with an `until` one open time away (the probes' end is unknown), never
//! "now", which would have clients honouring gRPC RetryInfo retry in a tight loop.
//!
//! What counts as a failure is what the provider is to blame for: timeouts, unavailability
//! (5xx, refused connections), rate limiting and unreadable answers. A rejected request or
//! credential (`BadRequest`, `Unauthorized`) proves the provider is up and counts as a success,
//! so a caller's bad input can never open the breaker. Cancellation and refusals by layers
//! below (`Overloaded`, `CircuitOpen`, `Unhealthy`) say nothing about the provider and are not
//! counted at all.
//!
//! Streams are judged when they end: a `Finished` item is a success, an error item (or an end
//! without `Finished`) a failure, and a stream the caller drops early counts for nothing. A call
//! still running when the breaker changes state is not counted either: it describes the
//! provider as it was.
//!
//! Transitions are reported as `provider.circuit_opened` and `provider.circuit_closed` events
//! with source `/providers/<id>/breaker`. The breaker's `health()` is unhealthy while open and
//! degraded while half-open; [`CircuitBreaker::state`] tells which.
//!
//! Time: failsafe reads `std::time::Instant`, not tokio's clock, so the open duration is real
//! time even under tokio's paused clock. This crate's tests freeze failsafe's own clock.

mod circuit;
mod config;

pub use circuit::{BreakerState, CircuitBreaker};
pub use config::{BreakerConfig, FailureRateConfig};

#[cfg(test)]
mod tests;
