//! A cache in front of a store, with a TTL and refresh-ahead.
//!
//! Without it every request would ask Vault or KMS for its API key: a Vault outage would fail
//! every request at once, and the secret service would carry our request rate. With it:
//!
//! - a value is served from memory until it is `ttl_ms` old, so an outage shorter than what is
//!   left of the TTL fails no request, and a rotation in the backend is picked up within the TTL;
//! - in the last `refresh_ahead_ms` of the TTL (by default its last fifth) one background load replaces the value while the
//!   old one keeps being served, so busy secrets never expire on the request path;
//! - concurrent misses for one reference wait for a single load (no stampede on the backend);
//! - optionally (`stale_if_error_ms`) an expired value is served a little longer when the
//!   backend is unreachable, never when it refused (a revoked credential is not served again);
//! - every load has a deadline (`fetch_timeout_ms`), and the number of entries is bounded;
//! - a failed load's error answers the requests of the next `error_ttl_ms` (1 s) without
//!   asking the store again, so requests behind a hung store do not each wait a deadline.

mod config;
mod store;

pub use config::CacheConfig;
pub use store::{CacheStats, CachedStore};
