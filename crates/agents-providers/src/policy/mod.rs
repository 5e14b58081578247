//! Resilience policies. Each one wraps an `Arc<dyn Provider>` and is a `Provider` itself, so a
//! downstream team can use any of them alone; [`crate::stack`] writes down, in one place, the
//! order the runtime stacks them in.

pub(crate) mod breaker;
pub(crate) mod quota;
pub(crate) mod rate;
pub(crate) mod retry;
pub(crate) mod timeout;

use std::time::Duration;

/// Milliseconds from config as a `Duration`.
pub(crate) fn ms(value: u64) -> Duration {
    Duration::from_millis(value)
}
