//! Token buckets per provider: requests per minute and model tokens per minute.
//!
//! Why: hosted APIs enforce RPM/TPM limits and answer 429 once over them; local servers simply
//! slow down. Spending our own budget first keeps a provider inside its limits, and a call that
//! would exceed them fails at once with `Overloaded` (and when a token frees up), so the
//! fallback chain can use another provider instead of waiting.
//!
//! Tokens are charged twice: an estimate of the prompt before the call (so a burst of huge
//! prompts is refused up front) and the difference to the real usage after it (so the bucket
//! tracks what the provider actually counted).

mod bucket;
mod config;
mod policy;

pub use bucket::TokenBucket;
pub use config::RateConfig;
pub use policy::RateLimit;
