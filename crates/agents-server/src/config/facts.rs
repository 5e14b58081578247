//! `[facts]`: the code facts every agent computes first.

use agents_core::ConfigError;
use serde::{Deserialize, Serialize};

/// Default `facts.cache_bytes`: 8 MiB, the facts of a few thousand typical files (1-4 KiB each).
pub const DEFAULT_FACTS_CACHE_BYTES: u64 = 8 << 20;

/// Largest `facts.cache_bytes` accepted: a cache is for the files asked about repeatedly, not a
/// store of every file.
pub const MAX_FACTS_CACHE_BYTES: u64 = 1 << 30;

/// Smallest `facts.cache_bytes` other than 0: below it an entry of a typical file is over the
/// largest share one entry may take, so the cache would keep nothing.
pub const MIN_FACTS_CACHE_BYTES: u64 = 64 << 10;

/// `[facts]`: how code facts are computed and kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct FactsConfig {
    /// The facts of sources already analysed are kept up to this many bytes (approximate: the
    /// text of the facts and a fixed cost per item; the sources are not kept), so that the
    /// same file sent again (another agent on the same file, a client's retry, an unchanged
    /// file in CI) is not parsed again. 0 turns the cache off. It counts towards the server's
    /// memory: size it with the container's limit.
    pub cache_bytes: u64,
}

impl Default for FactsConfig {
    fn default() -> Self {
        Self {
            cache_bytes: DEFAULT_FACTS_CACHE_BYTES,
        }
    }
}

impl FactsConfig {
    /// Every problem, each naming its key.
    pub fn validate(&self) -> Vec<ConfigError> {
        if self.cache_bytes != 0
            && !(MIN_FACTS_CACHE_BYTES..=MAX_FACTS_CACHE_BYTES).contains(&self.cache_bytes)
        {
            return vec![ConfigError::new(
                "facts.cache_bytes",
                format!(
                    "must be 0 (off) or between {MIN_FACTS_CACHE_BYTES} (64 KiB) and {MAX_FACTS_CACHE_BYTES} (1 GiB)"
                ),
            )];
        }
        Vec::new()
    }
}
