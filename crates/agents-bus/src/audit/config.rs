use std::path::PathBuf;
use std::time::Duration;

use agents_core::ConfigError;
use serde::{Deserialize, Serialize};

/// When the audit log forces its writes to disk (`fsync`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum FsyncPolicy {
    /// After every event, before the publish returns: nothing acknowledged is lost, even on
    /// power loss; a few hundred events per second on ordinary disks.
    EveryEvent,
    /// A background thread syncs every `interval_ms`: a power loss loses at most that long.
    Interval {
        /// Milliseconds between syncs.
        interval_ms: u64,
    },
    /// Never forced; the operating system writes back when it likes. A process crash still
    /// loses nothing but the event being written.
    Never,
}

impl Default for FsyncPolicy {
    fn default() -> Self {
        Self::Interval { interval_ms: 1000 }
    }
}

/// Settings of the [`AuditLog`](super::AuditLog).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct AuditConfig {
    /// Directory of the audit files; created if missing.
    pub dir: PathBuf,
    /// File name prefix: files are `<prefix>-<YYYY-MM-DD>[.<n>].jsonl`.
    pub file_prefix: String,
    /// Start a new file when the UTC date changes.
    pub rotate_daily: bool,
    /// Start a new file before one would grow past this many bytes; 0 for no limit.
    pub max_file_bytes: u64,
    /// When writes are forced to disk.
    pub fsync: FsyncPolicy,
    /// Longest a publish waits for its write (and fsync) before it reports a timeout.
    pub write_timeout_ms: u64,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("audit"),
            file_prefix: "audit".into(),
            rotate_daily: true,
            max_file_bytes: 256 * 1024 * 1024,
            fsync: FsyncPolicy::default(),
            write_timeout_ms: 5_000,
        }
    }
}

impl AuditConfig {
    /// Defaults, writing into `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            ..Self::default()
        }
    }

    /// Sets the fsync policy.
    pub fn with_fsync(mut self, fsync: FsyncPolicy) -> Self {
        self.fsync = fsync;
        self
    }

    /// Sets the size limit per file (0: none).
    pub fn with_max_file_bytes(mut self, bytes: u64) -> Self {
        self.max_file_bytes = bytes;
        self
    }

    /// Turns daily rotation on or off.
    pub fn with_rotate_daily(mut self, daily: bool) -> Self {
        self.rotate_daily = daily;
        self
    }

    /// Sets the file name prefix.
    pub fn with_file_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.file_prefix = prefix.into();
        self
    }

    pub(crate) fn write_timeout(&self) -> Duration {
        Duration::from_millis(self.write_timeout_ms)
    }

    /// Refuses an empty directory or prefix, a prefix that is not a plain file name, and zero
    /// intervals or timeouts.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.dir.as_os_str().is_empty() {
            return Err(ConfigError::new("dir", "must name a directory"));
        }
        let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.');
        if self.file_prefix.is_empty() || !self.file_prefix.chars().all(plain) {
            return Err(ConfigError::new(
                "file_prefix",
                "must be a non-empty name of letters, digits, `_`, `-` and `.`",
            ));
        }
        if let FsyncPolicy::Interval { interval_ms: 0 } = self.fsync {
            return Err(ConfigError::new(
                "fsync.interval_ms",
                "must be at least 1; use mode `every_event` to sync every write",
            ));
        }
        if self.write_timeout_ms == 0 {
            return Err(ConfigError::new("write_timeout_ms", "must be at least 1"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_and_serde_shape() {
        assert!(AuditConfig::new("/tmp/a").validate().is_ok());
        let path = |c: AuditConfig| c.validate().map_err(|e| e.path);
        assert_eq!(path(AuditConfig::new("")), Err("dir".into()));
        let bad_prefix = AuditConfig::new("/a").with_file_prefix("../x");
        assert_eq!(path(bad_prefix), Err("file_prefix".into()));
        let zero = AuditConfig::new("/a").with_fsync(FsyncPolicy::Interval { interval_ms: 0 });
        assert_eq!(path(zero), Err("fsync.interval_ms".into()));
        let mut no_timeout = AuditConfig::new("/a");
        no_timeout.write_timeout_ms = 0;
        assert_eq!(path(no_timeout), Err("write_timeout_ms".into()));

        let parsed: AuditConfig =
            serde_json::from_str(r#"{"dir": "/var/audit", "fsync": {"mode": "every_event"}}"#)
                .unwrap_or_default();
        assert_eq!(parsed.fsync, FsyncPolicy::EveryEvent);
        assert_eq!(parsed.dir, PathBuf::from("/var/audit"));
        let interval = serde_json::to_value(FsyncPolicy::default()).unwrap_or_default();
        assert_eq!(interval["mode"], "interval");
        assert_eq!(interval["interval_ms"], 1000);
    }
}
