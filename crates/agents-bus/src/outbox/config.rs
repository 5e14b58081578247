use std::path::PathBuf;

use agents_core::ConfigError;
use serde::{Deserialize, Serialize};

/// Settings of the file-backed outbox of the NATS bus.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct OutboxConfig {
    /// Directory of the outbox files (`outbox.jsonl`, `outbox.pos`); created if missing. One
    /// process per directory.
    pub dir: PathBuf,
    /// Events the outbox holds at most.
    pub max_events: usize,
    /// Bytes of encoded events the outbox holds at most.
    pub max_bytes: u64,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("outbox"),
            max_events: 100_000,
            max_bytes: 256 * 1024 * 1024,
        }
    }
}

impl OutboxConfig {
    /// Defaults, in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            ..Self::default()
        }
    }

    /// Sets the event bound.
    pub fn with_max_events(mut self, n: usize) -> Self {
        self.max_events = n;
        self
    }

    /// Sets the byte bound.
    pub fn with_max_bytes(mut self, n: u64) -> Self {
        self.max_bytes = n;
        self
    }

    /// Refuses an empty directory and zero bounds.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.dir.as_os_str().is_empty() {
            return Err(ConfigError::new("dir", "must name a directory"));
        }
        if self.max_events == 0 {
            return Err(ConfigError::new("max_events", "must be at least 1"));
        }
        if self.max_bytes == 0 {
            return Err(ConfigError::new("max_bytes", "must be at least 1"));
        }
        Ok(())
    }
}
