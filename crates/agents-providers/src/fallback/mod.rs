//! The fallback chain: several providers behind one, tried in order until one answers.
//!
//! Why: one model server is one point of failure. The chain moves to the next provider when a
//! call fails in a way another provider may not (see `ProviderError::should_fall_back`), skips
//! open breakers and hot hosts without waiting (those layers refuse at once), keeps every
//! attempt's error for the caller, and says why it moved on with a `provider.fallback` event.
//! Streams fall back the same way as long as nothing has reached the caller yet.

mod chain;
mod config;

pub use chain::FallbackChain;
pub use config::{ChainConfig, ChainEntryConfig};
