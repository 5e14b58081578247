//! The one error type of the crate.
//!
//! Callers ask two questions of a bus error: "is it worth trying again?" ([`Error::is_retryable`])
//! and "which kind is it?" ([`Error::kind`], stable for metrics labels). Messages say what
//! happened and what to do, and never carry event data: events hold user content and these
//! errors end up in logs. Errors of foreign crates (async-nats) are turned into redacted text
//! here, so they do not leak into this crate's semver.

use std::path::PathBuf;

use agents_core::{ConfigError, Redactor};

/// What went wrong in the bus.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The bus was shut down; nothing more is published or subscribed.
    #[error("the event bus is shut down; publish and subscribe are refused")]
    Closed,
    /// An operation did not finish within its bound.
    #[error("{operation} did not finish within {after_ms} ms; the transport is slow or down")]
    Timeout {
        /// What was being done, e.g. `publish`.
        operation: &'static str,
        /// The bound, in milliseconds.
        after_ms: u64,
    },
    /// A bounded queue was full and refused the item.
    #[error(
        "the {queue} is full ({limit} {unit}); it refused this item and counted it — raise the limit or restore the consumer"
    )]
    Full {
        /// Which queue, e.g. `outbox` or `subscriber list`.
        queue: &'static str,
        /// Its bound.
        limit: u64,
        /// What the bound counts, e.g. `events` or `bytes`.
        unit: &'static str,
    },
    /// The event cannot be carried, e.g. its type is not a valid subject token or it is too big.
    #[error("event refused: {reason}")]
    InvalidEvent {
        /// Why; never the event's content.
        reason: &'static str,
    },
    /// A record is bigger than its store takes, e.g. a task record with a large result over
    /// `max_state_bytes`. Sending it again would not help.
    #[error(
        "{what} is {bytes} bytes, over the {limit} allowed; raise {setting} or make it smaller"
    )]
    TooLarge {
        /// What was refused, e.g. `the task record with its result`.
        what: &'static str,
        /// Its encoded size.
        bytes: u64,
        /// The limit.
        limit: u64,
        /// The setting that sets the limit, e.g. `max_state_bytes`.
        setting: &'static str,
    },
    /// A file operation of the audit log or the outbox failed.
    #[error("{operation} failed for {}: {source}", path.display())]
    Io {
        /// What was being done, e.g. `append to audit log`.
        operation: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// Another audit log (in this or another process) is writing to this directory; two
    /// writers would break each other's hash chains.
    #[error(
        "the audit directory {} is in use by another audit log (it holds {}/.lock); give each process its own `[bus.audit] dir`, or stop the other one",
        dir.display(),
        dir.display()
    )]
    AuditDirInUse {
        /// The audit directory.
        dir: PathBuf,
    },
    /// This bus cannot do what was asked, e.g. subscribe to the audit log.
    #[error("{operation} is not supported by the {bus}")]
    Unsupported {
        /// The operation, e.g. `subscribe`.
        operation: &'static str,
        /// The bus, e.g. `audit log`.
        bus: &'static str,
    },
    /// The message transport (NATS) failed.
    #[error("{operation} failed: {message}")]
    Transport {
        /// What was being done, e.g. `create stream`.
        operation: &'static str,
        /// The transport's description, redacted.
        message: String,
    },
    /// The configuration was refused.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A background task could not be started because no tokio runtime is running.
    #[error("no tokio runtime is running; create the {what} from inside one")]
    NoRuntime {
        /// What needed the runtime.
        what: &'static str,
    },
}

/// The kind of an [`Error`], stable for metric labels and match arms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// [`Error::Closed`].
    Closed,
    /// [`Error::Timeout`].
    Timeout,
    /// [`Error::Full`].
    Full,
    /// [`Error::InvalidEvent`].
    InvalidEvent,
    /// [`Error::TooLarge`].
    TooLarge,
    /// [`Error::Io`].
    Io,
    /// [`Error::AuditDirInUse`].
    InUse,
    /// [`Error::Unsupported`].
    Unsupported,
    /// [`Error::Transport`].
    Transport,
    /// [`Error::Config`].
    Config,
    /// [`Error::NoRuntime`].
    NoRuntime,
}

impl ErrorKind {
    /// A short snake_case name, e.g. `timeout`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Timeout => "timeout",
            Self::Full => "full",
            Self::InvalidEvent => "invalid_event",
            Self::TooLarge => "too_large",
            Self::Io => "io",
            Self::InUse => "in_use",
            Self::Unsupported => "unsupported",
            Self::Transport => "transport",
            Self::Config => "config",
            Self::NoRuntime => "no_runtime",
        }
    }
}

impl Error {
    /// The kind of error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Closed => ErrorKind::Closed,
            Self::Timeout { .. } => ErrorKind::Timeout,
            Self::Full { .. } => ErrorKind::Full,
            Self::InvalidEvent { .. } => ErrorKind::InvalidEvent,
            Self::TooLarge { .. } => ErrorKind::TooLarge,
            Self::Io { .. } => ErrorKind::Io,
            Self::AuditDirInUse { .. } => ErrorKind::InUse,
            Self::Unsupported { .. } => ErrorKind::Unsupported,
            Self::Transport { .. } => ErrorKind::Transport,
            Self::Config(_) => ErrorKind::Config,
            Self::NoRuntime { .. } => ErrorKind::NoRuntime,
        }
    }

    /// Whether the same call may succeed later: timeouts, full queues, transport and I/O
    /// failures. A closed bus, a refused or too large event or record, a bad configuration or
    /// an audit directory in use by another writer stay so.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self.kind(),
            ErrorKind::Timeout | ErrorKind::Full | ErrorKind::Transport | ErrorKind::Io
        )
    }

    pub(crate) fn io(
        operation: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io {
            operation,
            path,
            source,
        }
    }

    /// A transport failure; `source`'s text passes the redactor (it can quote server replies).
    #[cfg_attr(not(feature = "nats"), allow(dead_code))]
    pub(crate) fn transport(operation: &'static str, source: &dyn std::fmt::Display) -> Self {
        Self::Transport {
            operation,
            message: Redactor::global().redact(&source.to_string()).into_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_retryability() {
        let cases: Vec<(Error, ErrorKind, bool)> = vec![
            (Error::Closed, ErrorKind::Closed, false),
            (
                Error::Timeout {
                    operation: "publish",
                    after_ms: 5,
                },
                ErrorKind::Timeout,
                true,
            ),
            (
                Error::Full {
                    queue: "outbox",
                    limit: 3,
                    unit: "events",
                },
                ErrorKind::Full,
                true,
            ),
            (
                Error::InvalidEvent { reason: "too big" },
                ErrorKind::InvalidEvent,
                false,
            ),
            (
                Error::io("open", "/x")(std::io::Error::other("disk")),
                ErrorKind::Io,
                true,
            ),
            (
                Error::AuditDirInUse {
                    dir: "/var/audit".into(),
                },
                ErrorKind::InUse,
                false,
            ),
            (
                Error::Unsupported {
                    operation: "subscribe",
                    bus: "audit log",
                },
                ErrorKind::Unsupported,
                false,
            ),
            (
                Error::transport("publish", &"no responders"),
                ErrorKind::Transport,
                true,
            ),
            (
                ConfigError::new("x", "bad").into(),
                ErrorKind::Config,
                false,
            ),
            (
                Error::NoRuntime { what: "sink" },
                ErrorKind::NoRuntime,
                false,
            ),
        ];
        for (error, kind, retryable) in cases {
            assert_eq!(error.kind(), kind, "{error}");
            assert_eq!(error.is_retryable(), retryable, "{error}");
            assert!(!kind.as_str().is_empty());
            assert!(!error.to_string().is_empty());
        }
    }

    #[test]
    fn transport_text_is_redacted() {
        let error = Error::transport("connect", &"auth failed: password=hunter2");
        assert!(!error.to_string().contains("hunter2"), "{error}");
        let io = Error::io("append", "/var/audit.jsonl")(std::io::Error::other("disk full"));
        assert!(io.to_string().contains("/var/audit.jsonl"));
        assert!(std::error::Error::source(&io).is_some());
    }
}
