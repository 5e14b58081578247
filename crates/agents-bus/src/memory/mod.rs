//! The in-process bus: fan-out to subscribers in the same process, the default transport.
//!
//! Why it looks like this: a publisher is an agent run or a provider call, and must never wait
//! for a subscriber. Each subscriber gets its own bounded buffer; a publish puts the event in
//! every matching buffer with `try_send` and moves on. A subscriber that falls behind loses the
//! newest events *for itself only*, and every loss is counted, per subscriber
//! ([`Subscription::lagged`](crate::Subscription::lagged)) and in the bus's `lagged` metric, so
//! a slow consumer shows up on a dashboard instead of stalling requests or eating memory.

mod bus;
mod config;

pub use bus::InProcessBus;
pub use config::InProcessConfig;
