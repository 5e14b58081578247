//! Resilience policies. Each one wraps an `Arc<dyn Provider>` and is a `Provider` itself, so a
//! downstream team can use any of them alone; [`crate::stack`] writes down, in one place, the
//! order the runtime stacks them in.

pub(crate) mod breaker;
pub(crate) mod observe;
pub(crate) mod quota;
pub(crate) mod rate;
pub(crate) mod retry;
pub(crate) mod timeout;

use std::time::Duration;

/// Milliseconds since `started`, saturating.
pub(crate) fn ms_since(started: std::time::Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Milliseconds from config as a `Duration`.
pub(crate) fn ms(value: u64) -> Duration {
    Duration::from_millis(value)
}
