use std::fmt;
use std::time::Duration;

use agents_core::ConfigError;
use serde::{Deserialize, Serialize};

use crate::OutboxConfig;

/// The JetStream stream that stores events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct EventStreamConfig {
    /// Stream name.
    pub name: String,
    /// Oldest event kept, in seconds; older ones are discarded.
    pub max_age_secs: u64,
    /// Bytes kept; beyond that the oldest events are discarded.
    pub max_bytes: u64,
    /// How long an event id is remembered for de-duplication, in seconds (default 600).
    ///
    /// Must be at least the longest outage to be survived without duplicates: an event whose
    /// ack was lost (stored, but the send timed out) is re-sent from the outbox when NATS is
    /// back, and a re-send after the window is stored a second time. At most `max_age_secs`.
    pub duplicate_window_secs: u64,
    /// Replicas in a cluster (1 for a single server).
    pub replicas: usize,
}

impl Default for EventStreamConfig {
    fn default() -> Self {
        Self {
            name: "AGENTS_EVENTS".into(),
            max_age_secs: 7 * 24 * 3600,
            max_bytes: 1024 * 1024 * 1024,
            duplicate_window_secs: 600,
            replicas: 1,
        }
    }
}

/// Settings of the [`NatsBus`](super::NatsBus).
///
/// Its `Debug` output masks the user, password or token in `url`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct NatsConfig {
    /// Server URL, e.g. `nats://127.0.0.1:4222`. Never logged: it may carry credentials.
    pub url: String,
    /// Subjects are `<subject_prefix>.<event type>`.
    pub subject_prefix: String,
    /// The stream. Its `duplicate_window_secs` must be at least the longest NATS outage to
    /// be survived without duplicates (see [`EventStreamConfig::duplicate_window_secs`]).
    pub stream: EventStreamConfig,
    /// Longest wait for a publish ack before the event goes to the outbox.
    pub publish_timeout_ms: u64,
    /// Longest wait for a connection attempt.
    pub connect_timeout_ms: u64,
    /// Longest pause between reconnection attempts and outbox retries.
    pub max_retry_delay_ms: u64,
    /// Longest a shutdown waits for the outbox to drain; what is left stays on disk and is
    /// sent by the next process.
    pub shutdown_timeout_ms: u64,
    /// Events a subscription buffers before the consumer waits for the subscriber; also the
    /// most a consumer has delivered and not yet acknowledged (`max_ack_pending`).
    pub subscriber_buffer: usize,
    /// How long the server waits for an ack of a delivered event before it delivers it
    /// again. Events waiting in a subscription's buffer get an in-progress ack every third of
    /// it, so they are not delivered twice.
    pub ack_wait_ms: u64,
    /// The outbox.
    pub outbox: OutboxConfig,
}

impl fmt::Debug for NatsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Destructured so that a new field cannot be left out (or leak) unnoticed.
        let Self {
            url,
            subject_prefix,
            stream,
            publish_timeout_ms,
            connect_timeout_ms,
            max_retry_delay_ms,
            shutdown_timeout_ms,
            subscriber_buffer,
            ack_wait_ms,
            outbox,
        } = self;
        f.debug_struct("NatsConfig")
            .field("url", &masked_url(url))
            .field("subject_prefix", subject_prefix)
            .field("stream", stream)
            .field("publish_timeout_ms", publish_timeout_ms)
            .field("connect_timeout_ms", connect_timeout_ms)
            .field("max_retry_delay_ms", max_retry_delay_ms)
            .field("shutdown_timeout_ms", shutdown_timeout_ms)
            .field("subscriber_buffer", subscriber_buffer)
            .field("ack_wait_ms", ack_wait_ms)
            .field("outbox", outbox)
            .finish()
    }
}

/// `url` with the user information (`user:password@` or `token@`) of each comma-separated
/// server replaced by `***`, for logs and `Debug`.
pub(crate) fn masked_url(url: &str) -> String {
    url.split(',')
        .map(|server| {
            let start = server.find("://").map_or(0, |i| i + 3);
            let (scheme, rest) = server.split_at(start);
            let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
            match rest[..authority_end].rfind('@') {
                Some(at) => format!("{scheme}***{}", &rest[at..]),
                None => server.to_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

impl Default for NatsConfig {
    fn default() -> Self {
        Self {
            url: "nats://127.0.0.1:4222".into(),
            subject_prefix: "agents.events".into(),
            stream: EventStreamConfig::default(),
            publish_timeout_ms: 2_000,
            connect_timeout_ms: 2_000,
            max_retry_delay_ms: 2_000,
            shutdown_timeout_ms: 5_000,
            subscriber_buffer: 1024,
            ack_wait_ms: 30_000,
            outbox: OutboxConfig::default(),
        }
    }
}

impl NatsConfig {
    /// Defaults for the server at `url`, with the outbox in `outbox_dir`.
    pub fn new(url: impl Into<String>, outbox_dir: impl Into<std::path::PathBuf>) -> Self {
        Self {
            url: url.into(),
            outbox: OutboxConfig::new(outbox_dir),
            ..Self::default()
        }
    }

    /// Sets the stream name.
    pub fn with_stream_name(mut self, name: impl Into<String>) -> Self {
        self.stream.name = name.into();
        self
    }

    /// Sets the publish ack timeout.
    pub fn with_publish_timeout_ms(mut self, ms: u64) -> Self {
        self.publish_timeout_ms = ms;
        self
    }

    /// Sets the longest retry pause.
    pub fn with_max_retry_delay_ms(mut self, ms: u64) -> Self {
        self.max_retry_delay_ms = ms;
        self
    }

    /// Sets the outbox.
    pub fn with_outbox(mut self, outbox: OutboxConfig) -> Self {
        self.outbox = outbox;
        self
    }

    pub(crate) fn publish_timeout(&self) -> Duration {
        Duration::from_millis(self.publish_timeout_ms)
    }

    pub(crate) fn max_retry_delay(&self) -> Duration {
        Duration::from_millis(self.max_retry_delay_ms)
    }

    /// Refuses empty names, zero timeouts and limits, and a prefix that is not a plain subject.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.url.trim().is_empty() {
            return Err(ConfigError::new("url", "must name a NATS server"));
        }
        if !crate::filter::is_subject_tail(&self.subject_prefix) {
            return Err(ConfigError::new(
                "subject_prefix",
                "must be dot-separated tokens without wildcards or spaces",
            ));
        }
        let name = &self.stream.name;
        let plain = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
        if name.is_empty() || !name.chars().all(plain) {
            return Err(ConfigError::new(
                "stream.name",
                "must be letters, digits, `_` and `-`",
            ));
        }
        for (path, value) in [
            ("stream.max_age_secs", self.stream.max_age_secs),
            ("stream.max_bytes", self.stream.max_bytes),
            (
                "stream.duplicate_window_secs",
                self.stream.duplicate_window_secs,
            ),
            ("stream.replicas", self.stream.replicas as u64),
            ("publish_timeout_ms", self.publish_timeout_ms),
            ("connect_timeout_ms", self.connect_timeout_ms),
            ("max_retry_delay_ms", self.max_retry_delay_ms),
            ("shutdown_timeout_ms", self.shutdown_timeout_ms),
            ("subscriber_buffer", self.subscriber_buffer as u64),
            ("ack_wait_ms", self.ack_wait_ms),
        ] {
            if value == 0 {
                return Err(ConfigError::new(path, "must be at least 1"));
            }
        }
        if self.stream.max_bytes > i64::MAX as u64 {
            return Err(ConfigError::new("stream.max_bytes", "is too large"));
        }
        if self.stream.duplicate_window_secs > self.stream.max_age_secs {
            return Err(ConfigError::new(
                "stream.duplicate_window_secs",
                "must not exceed stream.max_age_secs",
            ));
        }
        self.outbox.validate().map_err(|e| e.within("outbox"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_names_each_setting() {
        assert!(
            NatsConfig::new("nats://x:4222", "/tmp/o")
                .validate()
                .is_ok()
        );
        let path = |c: NatsConfig| c.validate().map_err(|e| e.path);
        let base = NatsConfig::new("nats://x:4222", "/tmp/o");
        assert_eq!(
            path(NatsConfig {
                url: " ".into(),
                ..base.clone()
            }),
            Err("url".into())
        );
        let prefix = NatsConfig {
            subject_prefix: "a.*".into(),
            ..base.clone()
        };
        assert_eq!(path(prefix), Err("subject_prefix".into()));
        assert_eq!(
            path(base.clone().with_stream_name("a.b")),
            Err("stream.name".into())
        );
        assert_eq!(
            path(base.clone().with_publish_timeout_ms(0)),
            Err("publish_timeout_ms".into())
        );
        let mut window = base.clone();
        window.stream.duplicate_window_secs = window.stream.max_age_secs + 1;
        assert_eq!(path(window), Err("stream.duplicate_window_secs".into()));
        let mut huge = base.clone();
        huge.stream.max_bytes = u64::MAX;
        assert_eq!(path(huge), Err("stream.max_bytes".into()));
        let outbox = base.with_outbox(OutboxConfig::new("/o").with_max_events(0));
        assert_eq!(path(outbox), Err("outbox.max_events".into()));
        let parsed: NatsConfig =
            serde_json::from_str(r#"{"url": "nats://h:1", "stream": {"name": "EV"}}"#)
                .unwrap_or_default();
        assert_eq!(
            (parsed.url.as_str(), parsed.stream.name.as_str()),
            ("nats://h:1", "EV")
        );
        assert_eq!(parsed.stream.replicas, 1);
    }

    #[test]
    fn debug_masks_credentials_in_the_url() {
        for (url, shown) in [
            ("nats://alice:hunter2@h:4222", "nats://***@h:4222"),
            ("nats://s3cr3t-token@h", "nats://***@h"),
            ("tls://u:p%40ss@h:1/x@y", "tls://***@h:1/x@y"),
            ("u:hunter2@h:4222", "***@h:4222"),
            (
                "nats://a:hunter2@h1:1,nats://h2:2,nats://b:s3cr3t-token@h3",
                "nats://***@h1:1,nats://h2:2,nats://***@h3",
            ),
            ("nats://127.0.0.1:4222", "nats://127.0.0.1:4222"),
        ] {
            assert_eq!(masked_url(url), shown);
            let debug = format!("{:?}", NatsConfig::new(url, "/tmp/o"));
            assert!(debug.contains(&format!("url: {shown:?}")), "{debug}");
            for secret in ["hunter2", "s3cr3t-token", "alice", "p%40ss"] {
                assert!(!debug.contains(secret), "{debug}");
            }
        }
    }
}
