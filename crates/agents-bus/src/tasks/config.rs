use std::time::Duration;

use agents_core::ConfigError;
use serde::{Deserialize, Serialize};

/// Settings of the [`TaskQueue`](super::TaskQueue).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct TaskQueueConfig {
    /// The work-queue stream. The max-deliveries advisories of its consumers are kept in
    /// `<stream>_LOST` until a sweeper has handled them.
    pub stream: String,
    /// Tasks are published to `<subject_prefix>.<agent>`.
    pub subject_prefix: String,
    /// The stream dead tasks are moved to.
    pub dead_letter_stream: String,
    /// Dead tasks are published to `<dead_letter_prefix>.<agent>`.
    pub dead_letter_prefix: String,
    /// How long a worker may hold a task without a heartbeat before it is redelivered.
    pub ack_wait_ms: u64,
    /// Deliveries of one task before it is dead-lettered.
    pub max_deliver: u32,
    /// Bytes of waiting tasks; beyond that, submits are refused (the queue never drops).
    pub max_bytes: u64,
    /// Oldest task kept, in seconds (waiting tasks and dead letters alike).
    pub max_age_secs: u64,
    /// How long a task id is remembered for de-duplication, in seconds.
    pub duplicate_window_secs: u64,
    /// Longest wait for the server to store a submitted task.
    pub publish_timeout_ms: u64,
    /// The key-value bucket holding each task's state and result (`task.<id>`) and cancel
    /// requests (`cancel.<id>`).
    pub state_bucket: String,
    /// Largest stored state record (with its result), in bytes; a bigger result fails the task.
    pub max_state_bytes: u32,
}

impl Default for TaskQueueConfig {
    fn default() -> Self {
        Self {
            stream: "AGENTS_TASKS".into(),
            subject_prefix: "agents.tasks".into(),
            dead_letter_stream: "AGENTS_TASKS_DEAD".into(),
            dead_letter_prefix: "agents.dead".into(),
            ack_wait_ms: 30_000,
            max_deliver: 5,
            max_bytes: 1024 * 1024 * 1024,
            max_age_secs: 7 * 24 * 3600,
            duplicate_window_secs: 600,
            publish_timeout_ms: 2_000,
            state_bucket: "AGENTS_TASK_STATE".into(),
            max_state_bytes: 1024 * 1024,
        }
    }
}

impl TaskQueueConfig {
    /// Sets the ack wait.
    pub fn with_ack_wait_ms(mut self, ms: u64) -> Self {
        self.ack_wait_ms = ms;
        self
    }

    /// Sets the deliveries before dead-lettering.
    pub fn with_max_deliver(mut self, n: u32) -> Self {
        self.max_deliver = n;
        self
    }

    /// Sets the state bucket.
    pub fn with_state_bucket(mut self, bucket: impl Into<String>) -> Self {
        self.state_bucket = bucket.into();
        self
    }

    /// How often a worker holding a task should send a heartbeat: a third of the ack wait, so
    /// two may be lost before the task is redelivered.
    pub fn heartbeat_interval(&self) -> Duration {
        Duration::from_millis((self.ack_wait_ms / 3).max(1))
    }

    pub(crate) fn ack_wait(&self) -> Duration {
        Duration::from_millis(self.ack_wait_ms)
    }

    /// Refuses invalid names, overlapping subjects and zero limits.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let plain = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        };
        for (path, name) in [
            ("stream", &self.stream),
            ("dead_letter_stream", &self.dead_letter_stream),
            ("state_bucket", &self.state_bucket),
        ] {
            if !plain(name) {
                return Err(ConfigError::new(
                    path,
                    "must be letters, digits, `_` and `-`",
                ));
            }
        }
        if self.stream == self.dead_letter_stream {
            return Err(ConfigError::new(
                "dead_letter_stream",
                "must differ from `stream`",
            ));
        }
        let lost = super::sweeper::lost_stream_name(self);
        if self.dead_letter_stream == lost {
            return Err(ConfigError::new(
                "dead_letter_stream",
                format!(
                    "must differ from `{lost}`, the stream the queue keeps lost-task advisories in"
                ),
            ));
        }
        for (path, prefix) in [
            ("subject_prefix", &self.subject_prefix),
            ("dead_letter_prefix", &self.dead_letter_prefix),
        ] {
            if !crate::filter::is_subject_tail(prefix) {
                return Err(ConfigError::new(
                    path,
                    "must be dot-separated tokens without wildcards or spaces",
                ));
            }
        }
        let (a, b) = (&self.subject_prefix, &self.dead_letter_prefix);
        if a == b || a.starts_with(&format!("{b}.")) || b.starts_with(&format!("{a}.")) {
            return Err(ConfigError::new(
                "dead_letter_prefix",
                "must not overlap `subject_prefix`",
            ));
        }
        for (path, value) in [
            ("ack_wait_ms", self.ack_wait_ms),
            ("max_deliver", u64::from(self.max_deliver)),
            ("max_bytes", self.max_bytes),
            ("max_age_secs", self.max_age_secs),
            ("duplicate_window_secs", self.duplicate_window_secs),
            ("publish_timeout_ms", self.publish_timeout_ms),
            ("max_state_bytes", u64::from(self.max_state_bytes)),
        ] {
            if value == 0 {
                return Err(ConfigError::new(path, "must be at least 1"));
            }
        }
        if self.duplicate_window_secs > self.max_age_secs {
            return Err(ConfigError::new(
                "duplicate_window_secs",
                "must not exceed max_age_secs",
            ));
        }
        if self.max_bytes > i64::MAX as u64 {
            return Err(ConfigError::new("max_bytes", "is too large"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_names_each_setting() {
        assert!(TaskQueueConfig::default().validate().is_ok());
        let path = |c: TaskQueueConfig| c.validate().map_err(|e| e.path);
        let base = TaskQueueConfig::default;
        assert_eq!(
            path(TaskQueueConfig {
                stream: "a.b".into(),
                ..base()
            }),
            Err("stream".into())
        );
        let same = TaskQueueConfig {
            dead_letter_stream: "AGENTS_TASKS".into(),
            ..base()
        };
        assert_eq!(path(same), Err("dead_letter_stream".into()));
        let lost = TaskQueueConfig {
            dead_letter_stream: "AGENTS_TASKS_LOST".into(),
            ..base()
        };
        let error = lost.validate().unwrap_err();
        assert_eq!(error.path, "dead_letter_stream");
        assert!(error.message.contains("`AGENTS_TASKS_LOST`"), "{error}");
        let wild = TaskQueueConfig {
            subject_prefix: "a.>".into(),
            ..base()
        };
        assert_eq!(path(wild), Err("subject_prefix".into()));
        let overlap = TaskQueueConfig {
            dead_letter_prefix: "agents.tasks.dead".into(),
            ..base()
        };
        assert_eq!(path(overlap), Err("dead_letter_prefix".into()));
        assert_eq!(path(base().with_max_deliver(0)), Err("max_deliver".into()));
        let window = TaskQueueConfig {
            duplicate_window_secs: 10,
            max_age_secs: 5,
            ..base()
        };
        assert_eq!(path(window), Err("duplicate_window_secs".into()));
        let huge = TaskQueueConfig {
            max_bytes: u64::MAX,
            ..base()
        };
        assert_eq!(path(huge), Err("max_bytes".into()));
        assert_eq!(
            path(base().with_state_bucket("a.b")),
            Err("state_bucket".into())
        );
        assert_eq!(
            base().with_ack_wait_ms(3_000).heartbeat_interval(),
            Duration::from_secs(1)
        );
        assert_eq!(
            base().with_ack_wait_ms(5).ack_wait(),
            Duration::from_millis(5)
        );
    }
}
