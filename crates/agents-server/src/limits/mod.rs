//! Admission control: a global in-flight cap, and per-tenant concurrency and request rate.
//!
//! Why it exists: an agent call holds a model request open for seconds, so a burst of calls
//! piles up memory, sockets and provider quota long before the CPU is busy. The failures it
//! prevents:
//!
//! - **Overload collapse.** [`Limiter::admit`] never waits: past `max_in_flight` calls it
//!   refuses at once with `RESOURCE_EXHAUSTED` (load shedding) instead of queueing, so latency
//!   stays bounded for the calls that are admitted and memory does not grow with the backlog.
//! - **One tenant starving the others.** Each tenant has its own concurrency cap
//!   (`tenant_max_concurrent`) and, when set, a request rate (`tenant_requests_per_minute`,
//!   a [`TokenBucket`](agents_providers::TokenBucket) holding `tenant_burst_seconds` worth of
//!   requests, at least one).
//! - **Unbounded per-tenant state.** At most `max_tenants` tenants are tracked. When the table is
//!   full, idle tenants (no call in flight, rate bucket refilled) are forgotten first; if none
//!   is idle, a call from a tenant not yet tracked is refused as
//!   [`Refusal::TenantConcurrency`] rather than growing memory.
//!
//! Checks run in this order: global slot, tenant concurrency slot, tenant rate token; a refused
//! call releases what it took and consumes no rate token. The [`Admission`] guard holds the
//! slots for the whole call (a stream's whole life included) and frees them when dropped.
//! A refused call allocates nothing.

mod config;
mod limiter;
mod refusal;
#[cfg(test)]
mod tests;

pub use config::LimitsConfig;
pub use limiter::{Admission, Limiter};
pub use refusal::Refusal;
