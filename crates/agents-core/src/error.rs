//! Typed errors of the contracts.
//!
//! The resilience layers decide what to do from these types alone (retry this provider, move to
//! the next, give up), so every variant carries the fact that decision needs: a `Retry-After`, the
//! instant a breaker closes, the host condition that refused the call. Free-text fields can hold
//! what an upstream said, which may quote a key; `Display` passes them through the global
//! [`Redactor`](crate::Redactor) so an error can be logged or returned as it is.

use std::borrow::Cow;
use std::fmt;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::redact::redact;

/// Why a call to one provider failed.
///
/// Constructed by provider adapters and resilience layers in other crates, so the variants are
/// public; the enum is `#[non_exhaustive]` so new failure classes are not breaking changes.
///
/// `Debug` has the derived shape but, like `Display`, redacts every free-text field, so
/// `tracing::warn!(?error)` is as safe as `%error`.
#[derive(Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ProviderError {
    /// The provider did not answer within its timeout or the request's deadline.
    #[error("the provider did not answer within {elapsed:?}; retry, or raise the timeout")]
    Timeout {
        /// How long the call had run when it was abandoned.
        elapsed: Duration,
    },
    /// The provider said 429 (or its equivalent).
    #[error("the provider is rate limiting us{}", retry_hint(*.retry_after))]
    RateLimited {
        /// The provider's `Retry-After`, when it sent one.
        retry_after: Option<Duration>,
    },
    /// A local quota (concurrency or token bucket) for this provider is full.
    #[error("the {} quota for this provider is full{}", redact(.scope), retry_hint(*.retry_after))]
    Overloaded {
        /// Which quota refused: `concurrency`, `rate`, a tenant name, ...
        scope: String,
        /// When a token is expected to be free, if the quota can tell.
        retry_after: Option<Duration>,
    },
    /// The circuit breaker in front of this provider is open.
    #[error("the circuit breaker for this provider is open{}", retry_hint(Some(until.saturating_duration_since(Instant::now()))))]
    CircuitOpen {
        /// When the breaker will let a probe call through.
        until: Instant,
    },
    /// The provider could not be reached, or answered 5xx.
    #[error("the provider is unavailable{}: {}", status_hint(*.status), redact(.reason))]
    Unavailable {
        /// The HTTP status, when there was a response.
        status: Option<u16>,
        /// What went wrong (connect refused, 503, connection reset, ...).
        reason: String,
    },
    /// A host guard refused the call: the machine running the model is under memory or thermal
    /// pressure, so another provider should serve it.
    #[error("the host guard refused the call: {condition} is critical ({})", redact(.detail))]
    Unhealthy {
        /// Which guard refused.
        condition: HostCondition,
        /// The measured figure, e.g. `memory 97% used`.
        detail: String,
    },
    /// The provider rejected the request as malformed (4xx other than auth and 429).
    #[error("the provider rejected the request{}: {}", status_hint(*.status), redact(.message))]
    BadRequest {
        /// The HTTP status, when there was a response.
        status: Option<u16>,
        /// The provider's explanation.
        message: String,
    },
    /// This provider cannot serve this request, though another may: the model is not there
    /// (404), the prompt does not fit its context window, or the account's quota is used up.
    /// Not retried (the same provider would refuse again); the fallback chain moves on.
    #[error("this provider cannot serve the request{}: {}; the next provider of the chain may", status_hint(*.status), redact(.message))]
    Unsupported {
        /// The HTTP status, when there was a response.
        status: Option<u16>,
        /// The provider's explanation.
        message: String,
    },
    /// The provider refused our credentials (401/403).
    #[error("the provider refused our credentials{}: {}; check the API key reference in the provider config", status_hint(*.status), redact(.message))]
    Unauthorized {
        /// The HTTP status, when there was a response.
        status: Option<u16>,
        /// The provider's explanation.
        message: String,
    },
    /// The provider answered, but not with something we can read (malformed body, missing
    /// fields, a stream that ended early).
    #[error("the provider's response could not be read: {}", redact(.message))]
    InvalidResponse {
        /// What was wrong with it (never the body itself).
        message: String,
    },
    /// The caller cancelled the request.
    #[error("the request was cancelled")]
    Cancelled,
    /// Every provider of a fallback chain failed; each attempt's error is kept, in order.
    #[error("all {} provider attempts failed: {}", .attempts.len(), AttemptList(.attempts))]
    AllFailed {
        /// Every attempt, in the order it was made.
        attempts: Vec<ProviderAttempt>,
    },
}

/// A host resource watched by the host guard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum HostCondition {
    /// Available memory.
    Memory,
    /// CPU/GPU temperature or the OS's thermal state.
    Thermal,
}

impl fmt::Display for HostCondition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Memory => "memory",
            Self::Thermal => "thermal state",
        })
    }
}

/// The class of a [`ProviderError`], for metric labels, event payloads and wire codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ProviderErrorKind {
    /// See [`ProviderError::Timeout`].
    Timeout,
    /// See [`ProviderError::RateLimited`].
    RateLimited,
    /// See [`ProviderError::Overloaded`].
    Overloaded,
    /// See [`ProviderError::CircuitOpen`].
    CircuitOpen,
    /// See [`ProviderError::Unavailable`].
    Unavailable,
    /// See [`ProviderError::Unhealthy`].
    Unhealthy,
    /// See [`ProviderError::BadRequest`].
    BadRequest,
    /// See [`ProviderError::Unsupported`].
    Unsupported,
    /// See [`ProviderError::Unauthorized`].
    Unauthorized,
    /// See [`ProviderError::InvalidResponse`].
    InvalidResponse,
    /// See [`ProviderError::Cancelled`].
    Cancelled,
    /// See [`ProviderError::AllFailed`].
    AllFailed,
}

impl ProviderErrorKind {
    /// A stable snake_case name, as used in metrics and events.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::RateLimited => "rate_limited",
            Self::Overloaded => "overloaded",
            Self::CircuitOpen => "circuit_open",
            Self::Unavailable => "unavailable",
            Self::Unhealthy => "unhealthy",
            Self::BadRequest => "bad_request",
            Self::Unsupported => "unsupported",
            Self::Unauthorized => "unauthorized",
            Self::InvalidResponse => "invalid_response",
            Self::Cancelled => "cancelled",
            Self::AllFailed => "all_failed",
        }
    }
}

impl fmt::Display for ProviderErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ProviderError {
    /// The class of this error.
    pub fn kind(&self) -> ProviderErrorKind {
        match self {
            Self::Timeout { .. } => ProviderErrorKind::Timeout,
            Self::RateLimited { .. } => ProviderErrorKind::RateLimited,
            Self::Overloaded { .. } => ProviderErrorKind::Overloaded,
            Self::CircuitOpen { .. } => ProviderErrorKind::CircuitOpen,
            Self::Unavailable { .. } => ProviderErrorKind::Unavailable,
            Self::Unhealthy { .. } => ProviderErrorKind::Unhealthy,
            Self::BadRequest { .. } => ProviderErrorKind::BadRequest,
            Self::Unsupported { .. } => ProviderErrorKind::Unsupported,
            Self::Unauthorized { .. } => ProviderErrorKind::Unauthorized,
            Self::InvalidResponse { .. } => ProviderErrorKind::InvalidResponse,
            Self::Cancelled => ProviderErrorKind::Cancelled,
            Self::AllFailed { .. } => ProviderErrorKind::AllFailed,
        }
    }

    /// Whether calling the *same* provider again may succeed.
    ///
    /// Transient faults are retryable: timeouts, 429s, 5xx and connection faults, and unreadable
    /// responses (a truncated body is usually a dropped connection). A full local quota, an open
    /// breaker or a host guard refusal are not: retrying them only adds load; the fallback chain
    /// moves on instead. A chain's `AllFailed` is retryable when any of its attempts was.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Timeout { .. }
            | Self::RateLimited { .. }
            | Self::Unavailable { .. }
            | Self::InvalidResponse { .. } => true,
            Self::Overloaded { .. }
            | Self::CircuitOpen { .. }
            | Self::Unhealthy { .. }
            | Self::BadRequest { .. }
            | Self::Unsupported { .. }
            | Self::Unauthorized { .. }
            | Self::Cancelled => false,
            Self::AllFailed { attempts } => attempts.iter().any(|a| a.error.is_retryable()),
        }
    }

    /// Whether a fallback chain should try its next provider after this error: whether the
    /// request may succeed elsewhere.
    ///
    /// Yes for every fault of the provider or its policies (transient errors, a full quota, an
    /// open breaker, a hot host) and for `Unauthorized` (one provider's revoked key must not take
    /// the service down) and `Unsupported` (another model may know the name or have the context
    /// window). No for `BadRequest` (the request itself is wrong and would be refused
    /// everywhere, each refusal costing a round trip) and `Cancelled` (the caller wants no more
    /// work done).
    pub fn should_fall_back(&self) -> bool {
        !matches!(self, Self::Cancelled | Self::BadRequest { .. })
    }

    /// How long to wait before calling this provider again, when the error says.
    ///
    /// For `AllFailed`, the shortest wait any attempt asked for.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after } | Self::Overloaded { retry_after, .. } => {
                *retry_after
            }
            Self::CircuitOpen { until } => Some(until.saturating_duration_since(Instant::now())),
            Self::AllFailed { attempts } => {
                attempts.iter().filter_map(|a| a.error.retry_after()).min()
            }
            _ => None,
        }
    }
}

/// Whether the provider may serve the same request later: a transient fault, or a refusal by
/// its own policies (quota, breaker, host guard) that time lifts.
fn may_pass_later(error: &ProviderError) -> bool {
    match error {
        ProviderError::Overloaded { .. }
        | ProviderError::CircuitOpen { .. }
        | ProviderError::Unhealthy { .. } => true,
        ProviderError::AllFailed { attempts } => attempts.iter().any(|a| may_pass_later(&a.error)),
        other => other.is_retryable(),
    }
}

/// One provider call that failed, as kept by a fallback chain. `Debug` redacts like `Display`.
#[derive(Clone)]
pub struct ProviderAttempt {
    /// The provider's id.
    pub provider: String,
    /// Why it failed.
    pub error: ProviderError,
}

impl ProviderAttempt {
    /// Records a failed attempt.
    pub fn new(provider: impl Into<String>, error: ProviderError) -> Self {
        Self {
            provider: provider.into(),
            error,
        }
    }
}

/// A rule in a JSON document that a value broke: where, and what the rule said. `Debug` redacts
/// like `Display`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Violation {
    /// JSON Pointer (RFC 6901) to the offending value, e.g. `/focus/1`; `""` is the whole
    /// document. For a missing or unexpected property it points at that property.
    pub path: String,
    /// What is wrong, without echoing the value (it may be user code or a secret).
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", display_path(&self.path), redact(&self.message))
    }
}

/// Why an agent run failed.
///
/// `Debug` has the derived shape but, like `Display`, redacts every free-text field.
#[derive(Clone, thiserror::Error)]
#[non_exhaustive]
pub enum AgentError {
    /// The input does not match the agent's input schema or limits. The first violation is
    /// in `path`/`message`; `violations` holds all of them (at most [`MAX_VIOLATIONS`]).
    #[error("invalid input at {}: {}; see the agent's input schema (DescribeAgent)", display_path(.path), redact(.message))]
    Validation {
        /// JSON Pointer to the first offending value.
        path: String,
        /// What is wrong with it.
        message: String,
        /// Every violation found, the first one included.
        violations: Vec<Violation>,
    },
    /// Every provider failed; each attempt's error is kept, in order.
    #[error("all providers failed: {}", AttemptList(.attempts))]
    AllProvidersFailed {
        /// Every attempt, in the order it was made.
        attempts: Vec<ProviderAttempt>,
    },
    /// The model answered, but its answer is not valid output for this agent.
    #[error("the model's answer is not valid output at {}: {}", display_path(.path), redact(.message))]
    OutputInvalid {
        /// JSON Pointer into the model's answer; `""` when no JSON object could be extracted.
        path: String,
        /// What is wrong (never the answer itself).
        message: String,
    },
    /// The request's deadline passed before the agent finished.
    #[error(
        "the deadline passed before the agent finished; raise the client's timeout or lower max_tokens"
    )]
    DeadlineExceeded,
    /// The caller cancelled the run.
    #[error("the run was cancelled by the caller")]
    Cancelled,
    /// A fault in this library, not in the input or the providers. Please report it.
    #[error("internal error: {}; this is a bug, please report it", redact(.message))]
    Internal {
        /// What went wrong.
        message: String,
    },
}

/// At most this many violations are reported for one input, so a hostile document cannot make
/// an error response unbounded.
pub const MAX_VIOLATIONS: usize = 16;

/// The class of an [`AgentError`], for metric labels, event payloads and wire codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AgentErrorKind {
    /// See [`AgentError::Validation`].
    Validation,
    /// See [`AgentError::AllProvidersFailed`].
    AllProvidersFailed,
    /// See [`AgentError::OutputInvalid`].
    OutputInvalid,
    /// See [`AgentError::DeadlineExceeded`].
    DeadlineExceeded,
    /// See [`AgentError::Cancelled`].
    Cancelled,
    /// See [`AgentError::Internal`].
    Internal,
}

impl AgentErrorKind {
    /// A stable snake_case name, as used in metrics and events.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Validation => "validation",
            Self::AllProvidersFailed => "all_providers_failed",
            Self::OutputInvalid => "output_invalid",
            Self::DeadlineExceeded => "deadline_exceeded",
            Self::Cancelled => "cancelled",
            Self::Internal => "internal",
        }
    }
}

impl fmt::Display for AgentErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl AgentError {
    /// The class of this error.
    pub fn kind(&self) -> AgentErrorKind {
        match self {
            Self::Validation { .. } => AgentErrorKind::Validation,
            Self::AllProvidersFailed { .. } => AgentErrorKind::AllProvidersFailed,
            Self::OutputInvalid { .. } => AgentErrorKind::OutputInvalid,
            Self::DeadlineExceeded => AgentErrorKind::DeadlineExceeded,
            Self::Cancelled => AgentErrorKind::Cancelled,
            Self::Internal { .. } => AgentErrorKind::Internal,
        }
    }

    /// Whether the same request may succeed if the caller sends it again later.
    ///
    /// Provider failures are when any attempt may pass later: a transient fault, and also a
    /// full quota, an open breaker or a host guard's refusal, which end with time (calling the
    /// same provider again *at once* would not help, so [`ProviderError::is_retryable`] says
    /// no to them). An invalid model answer is (models are not deterministic); bad input,
    /// cancellation and bugs are not. A deadline is not: the same deadline will pass again.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::AllProvidersFailed { attempts } => {
                attempts.iter().any(|a| may_pass_later(&a.error))
            }
            Self::OutputInvalid { .. } => true,
            _ => false,
        }
    }

    /// The shortest wait any failed provider asked for.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::AllProvidersFailed { attempts } => {
                attempts.iter().filter_map(|a| a.error.retry_after()).min()
            }
            _ => None,
        }
    }

    /// Builds a validation error from a non-empty list of violations; `None` when it is empty.
    pub(crate) fn from_violations(mut violations: Vec<Violation>) -> Option<Self> {
        violations.truncate(MAX_VIOLATIONS);
        let first = violations.first()?.clone();
        Some(Self::Validation {
            path: first.path,
            message: first.message,
            violations,
        })
    }

    /// A single validation error at `path`.
    pub(crate) fn invalid(path: impl Into<String>, message: impl Into<String>) -> Self {
        let violation = Violation {
            path: path.into(),
            message: message.into(),
        };
        Self::Validation {
            path: violation.path.clone(),
            message: violation.message.clone(),
            violations: vec![violation],
        }
    }
}

// The `Debug` impls below keep the derived shape (variant and field names) but pass every
// free-text field through the global redactor, as `Display` does: `?error` in a log line must not
// be the one place a registered secret still shows. Exhaustive matches make a new variant a
// compile error here rather than an unredacted field.

impl fmt::Debug for ProviderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Timeout { elapsed } => {
                f.debug_struct("Timeout").field("elapsed", elapsed).finish()
            }
            Self::RateLimited { retry_after } => f
                .debug_struct("RateLimited")
                .field("retry_after", retry_after)
                .finish(),
            Self::Overloaded { scope, retry_after } => f
                .debug_struct("Overloaded")
                .field("scope", &redact(scope))
                .field("retry_after", retry_after)
                .finish(),
            Self::CircuitOpen { until } => {
                f.debug_struct("CircuitOpen").field("until", until).finish()
            }
            Self::Unavailable { status, reason } => f
                .debug_struct("Unavailable")
                .field("status", status)
                .field("reason", &redact(reason))
                .finish(),
            Self::Unhealthy { condition, detail } => f
                .debug_struct("Unhealthy")
                .field("condition", condition)
                .field("detail", &redact(detail))
                .finish(),
            Self::BadRequest { status, message } => f
                .debug_struct("BadRequest")
                .field("status", status)
                .field("message", &redact(message))
                .finish(),
            Self::Unsupported { status, message } => f
                .debug_struct("Unsupported")
                .field("status", status)
                .field("message", &redact(message))
                .finish(),
            Self::Unauthorized { status, message } => f
                .debug_struct("Unauthorized")
                .field("status", status)
                .field("message", &redact(message))
                .finish(),
            Self::InvalidResponse { message } => f
                .debug_struct("InvalidResponse")
                .field("message", &redact(message))
                .finish(),
            Self::Cancelled => f.write_str("Cancelled"),
            Self::AllFailed { attempts } => f
                .debug_struct("AllFailed")
                .field("attempts", attempts)
                .finish(),
        }
    }
}

impl fmt::Debug for ProviderAttempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderAttempt")
            .field("provider", &redact(&self.provider))
            .field("error", &self.error)
            .finish()
    }
}

impl fmt::Debug for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Violation")
            .field("path", &redact(&self.path))
            .field("message", &redact(&self.message))
            .finish()
    }
}

impl fmt::Debug for AgentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Validation {
                path,
                message,
                violations,
            } => f
                .debug_struct("Validation")
                .field("path", &redact(path))
                .field("message", &redact(message))
                .field("violations", violations)
                .finish(),
            Self::AllProvidersFailed { attempts } => f
                .debug_struct("AllProvidersFailed")
                .field("attempts", attempts)
                .finish(),
            Self::OutputInvalid { path, message } => f
                .debug_struct("OutputInvalid")
                .field("path", &redact(path))
                .field("message", &redact(message))
                .finish(),
            Self::DeadlineExceeded => f.write_str("DeadlineExceeded"),
            Self::Cancelled => f.write_str("Cancelled"),
            Self::Internal { message } => f
                .debug_struct("Internal")
                .field("message", &redact(message))
                .finish(),
        }
    }
}

/// A JSON Pointer for a message: `/` for the whole document, and redacted, because a pointer
/// names the caller's keys and a key can be a secret as well as a value can.
fn display_path(path: &str) -> Cow<'_, str> {
    if path.is_empty() {
        Cow::Borrowed("/")
    } else {
        redact(path)
    }
}

fn retry_hint(retry_after: Option<Duration>) -> String {
    match retry_after {
        Some(wait) => format!("; retry after {:.3}s", wait.as_secs_f64()),
        None => String::new(),
    }
}

fn status_hint(status: Option<u16>) -> String {
    match status {
        Some(code) => format!(" (HTTP {code})"),
        None => String::new(),
    }
}

/// Formats attempts as `a: error; b: error`.
struct AttemptList<'a>(&'a [ProviderAttempt]);

impl fmt::Display for AttemptList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("no provider was configured");
        }
        for (i, attempt) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{}: {}", redact(&attempt.provider), attempt.error)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_classes() {
        assert!(
            ProviderError::Timeout {
                elapsed: Duration::from_secs(1)
            }
            .is_retryable()
        );
        assert!(ProviderError::RateLimited { retry_after: None }.is_retryable());
        assert!(
            ProviderError::Unavailable {
                status: Some(503),
                reason: "503".into()
            }
            .is_retryable()
        );
        assert!(
            ProviderError::InvalidResponse {
                message: "eof".into()
            }
            .is_retryable()
        );
        assert!(
            !ProviderError::Overloaded {
                scope: "concurrency".into(),
                retry_after: None
            }
            .is_retryable()
        );
        assert!(
            !ProviderError::CircuitOpen {
                until: Instant::now()
            }
            .is_retryable()
        );
        assert!(
            !ProviderError::Unhealthy {
                condition: HostCondition::Memory,
                detail: "97%".into()
            }
            .is_retryable()
        );
        assert!(
            !ProviderError::BadRequest {
                status: Some(400),
                message: "x".into()
            }
            .is_retryable()
        );
        assert!(
            !ProviderError::Unauthorized {
                status: Some(401),
                message: "x".into()
            }
            .is_retryable()
        );
        let unsupported = ProviderError::Unsupported {
            status: Some(404),
            message: "model sk-0123456789abcdefghijklmnop not found".into(),
        };
        assert!(!unsupported.is_retryable() && unsupported.should_fall_back());
        assert_eq!(unsupported.kind().as_str(), "unsupported");
        assert!(!format!("{unsupported} {unsupported:?}").contains("0123456789abcdef"));
        assert!(!ProviderError::Cancelled.is_retryable());
        assert!(!ProviderError::Cancelled.should_fall_back());
        let bad_request = ProviderError::BadRequest {
            status: None,
            message: "x".into(),
        };
        assert!(
            !bad_request.should_fall_back(),
            "a bad request would be refused everywhere"
        );
        let unauthorized = ProviderError::Unauthorized {
            status: None,
            message: "x".into(),
        };
        assert!(
            unauthorized.should_fall_back(),
            "one revoked key must not stop the chain"
        );
        assert!(
            ProviderError::CircuitOpen {
                until: Instant::now()
            }
            .should_fall_back()
        );
    }

    #[test]
    fn retry_after_comes_from_the_error() {
        let wait = Duration::from_secs(7);
        assert_eq!(
            ProviderError::RateLimited {
                retry_after: Some(wait)
            }
            .retry_after(),
            Some(wait)
        );
        let open = ProviderError::CircuitOpen {
            until: Instant::now() + Duration::from_secs(30),
        };
        let left = open.retry_after().unwrap_or_default();
        assert!(left > Duration::from_secs(25) && left <= Duration::from_secs(30));
        assert_eq!(ProviderError::Timeout { elapsed: wait }.retry_after(), None);
    }

    #[test]
    fn all_failed_aggregates_attempts() {
        let attempts = vec![
            ProviderAttempt::new(
                "a",
                ProviderError::RateLimited {
                    retry_after: Some(Duration::from_secs(9)),
                },
            ),
            ProviderAttempt::new(
                "b",
                ProviderError::Overloaded {
                    scope: "rate".into(),
                    retry_after: Some(Duration::from_secs(2)),
                },
            ),
            ProviderAttempt::new(
                "c",
                ProviderError::BadRequest {
                    status: Some(400),
                    message: "too long".into(),
                },
            ),
        ];
        let chain = ProviderError::AllFailed {
            attempts: attempts.clone(),
        };
        assert!(chain.is_retryable());
        assert_eq!(chain.retry_after(), Some(Duration::from_secs(2)));
        assert_eq!(chain.kind(), ProviderErrorKind::AllFailed);
        let text = chain.to_string();
        assert!(
            text.contains("a: the provider is rate limiting us; retry after 9.000s"),
            "{text}"
        );
        assert!(
            text.contains("c: the provider rejected the request (HTTP 400): too long"),
            "{text}"
        );

        let agent = AgentError::AllProvidersFailed { attempts };
        assert!(agent.is_retryable());
        assert_eq!(agent.retry_after(), Some(Duration::from_secs(2)));
        assert_eq!(agent.kind().as_str(), "all_providers_failed");
        let none = AgentError::AllProvidersFailed { attempts: vec![] };
        assert!(none.to_string().contains("no provider was configured"));
        assert!(!none.is_retryable());
    }

    /// A run whose every provider was held back by its own policies (open breaker, full quota,
    /// hot host) may pass later: a queued task is redelivered, not failed for good, though
    /// calling those providers again at once would not help.
    #[test]
    fn a_run_refused_by_policies_that_time_lifts_may_pass_later() {
        let held_back = [
            ProviderError::CircuitOpen {
                until: Instant::now() + Duration::from_secs(30),
            },
            ProviderError::Overloaded {
                scope: "quota".into(),
                retry_after: None,
            },
            ProviderError::Unhealthy {
                condition: HostCondition::Thermal,
                detail: "hot".into(),
            },
        ];
        for error in held_back {
            assert!(!error.is_retryable(), "{error:?}");
            let nested = ProviderError::AllFailed {
                attempts: vec![ProviderAttempt::new("p", error.clone())],
            };
            for error in [error, nested] {
                let run = AgentError::AllProvidersFailed {
                    attempts: vec![ProviderAttempt::new("p", error)],
                };
                assert!(run.is_retryable(), "{run:?}");
            }
        }
        let refused = AgentError::AllProvidersFailed {
            attempts: vec![ProviderAttempt::new(
                "p",
                ProviderError::Unauthorized {
                    status: Some(401),
                    message: "no".into(),
                },
            )],
        };
        assert!(!refused.is_retryable());
    }

    #[test]
    fn kinds_have_stable_names() {
        let errors = [
            ProviderError::Timeout {
                elapsed: Duration::ZERO,
            },
            ProviderError::RateLimited { retry_after: None },
            ProviderError::Overloaded {
                scope: "s".into(),
                retry_after: None,
            },
            ProviderError::CircuitOpen {
                until: Instant::now(),
            },
            ProviderError::Unavailable {
                status: None,
                reason: "r".into(),
            },
            ProviderError::Unhealthy {
                condition: HostCondition::Thermal,
                detail: "d".into(),
            },
            ProviderError::BadRequest {
                status: None,
                message: "m".into(),
            },
            ProviderError::Unauthorized {
                status: None,
                message: "m".into(),
            },
            ProviderError::InvalidResponse {
                message: "m".into(),
            },
            ProviderError::Cancelled,
            ProviderError::AllFailed { attempts: vec![] },
        ];
        let names: Vec<&str> = errors.iter().map(|e| e.kind().as_str()).collect();
        assert_eq!(
            names,
            [
                "timeout",
                "rate_limited",
                "overloaded",
                "circuit_open",
                "unavailable",
                "unhealthy",
                "bad_request",
                "unauthorized",
                "invalid_response",
                "cancelled",
                "all_failed"
            ]
        );
        for error in &errors {
            assert!(!error.to_string().is_empty());
            assert_eq!(error.kind().to_string(), error.kind().as_str());
            assert_eq!(
                serde_json::to_value(error.kind()).ok(),
                Some(serde_json::Value::String(error.kind().as_str().into()))
            );
        }
        for (kind, name) in [
            (AgentError::DeadlineExceeded, "deadline_exceeded"),
            (AgentError::Cancelled, "cancelled"),
            (
                AgentError::Internal {
                    message: "x".into(),
                },
                "internal",
            ),
            (
                AgentError::OutputInvalid {
                    path: String::new(),
                    message: "x".into(),
                },
                "output_invalid",
            ),
            (AgentError::invalid("/a", "b"), "validation"),
        ] {
            assert_eq!(kind.kind().to_string(), name);
            assert_eq!(kind.retry_after(), None);
        }
    }

    #[test]
    fn debug_and_display_never_show_a_registered_secret() -> Result<(), crate::RedactError> {
        // Unique to this test and shaped like no built-in pattern, so only registration masks it.
        let secret = "debug-leak-canary-7f3a9c";
        crate::Redactor::global().register(secret)?;
        let text = |what: &str| format!("upstream said {what} twice: {what}");
        let provider_errors = || {
            vec![
                ProviderError::Overloaded {
                    scope: text(secret),
                    retry_after: None,
                },
                ProviderError::Unavailable {
                    status: Some(503),
                    reason: text(secret),
                },
                ProviderError::Unhealthy {
                    condition: HostCondition::Memory,
                    detail: text(secret),
                },
                ProviderError::BadRequest {
                    status: Some(400),
                    message: text(secret),
                },
                ProviderError::Unauthorized {
                    status: Some(401),
                    message: text(secret),
                },
                ProviderError::InvalidResponse {
                    message: text(secret),
                },
            ]
        };
        let attempts: Vec<ProviderAttempt> = provider_errors()
            .into_iter()
            .map(|error| ProviderAttempt::new(secret, error))
            .collect();
        let violation = Violation {
            path: format!("/{secret}"),
            message: text(secret),
        };
        let mut shown: Vec<String> = Vec::new();
        for error in provider_errors()
            .into_iter()
            .chain([ProviderError::AllFailed {
                attempts: attempts.clone(),
            }])
        {
            shown.extend([
                format!("{error:?}"),
                format!("{error:#?}"),
                error.to_string(),
            ]);
        }
        for error in [
            AgentError::Validation {
                path: format!("/{secret}"),
                message: text(secret),
                violations: vec![violation.clone()],
            },
            AgentError::AllProvidersFailed {
                attempts: attempts.clone(),
            },
            AgentError::OutputInvalid {
                path: format!("/{secret}"),
                message: text(secret),
            },
            AgentError::Internal {
                message: text(secret),
            },
        ] {
            shown.extend([
                format!("{error:?}"),
                format!("{error:#?}"),
                error.to_string(),
            ]);
        }
        for attempt in &attempts {
            shown.extend([format!("{attempt:?}"), format!("{attempt:#?}")]);
        }
        shown.extend([
            format!("{violation:?}"),
            format!("{violation:#?}"),
            violation.to_string(),
        ]);
        for text in &shown {
            assert!(!text.contains(secret), "{text}");
        }
        // The derived shape is kept: variant and field names, masked values.
        assert_eq!(
            format!("{:?}", provider_errors()[1]),
            r#"Unavailable { status: Some(503), reason: "upstream said *** twice: ***" }"#
        );
        assert_eq!(
            format!(
                "{:?}",
                AgentError::Internal {
                    message: "x".into()
                }
            ),
            r#"Internal { message: "x" }"#
        );
        assert_eq!(format!("{:?}", ProviderError::Cancelled), "Cancelled");
        Ok(())
    }

    #[test]
    fn messages_say_what_to_do_and_never_show_secrets() {
        let key = "sk-proj-abcdefghijklmnopqrstuvwxyz012345";
        let error = ProviderError::Unauthorized {
            status: Some(401),
            message: format!("Incorrect API key provided: {key}"),
        };
        let text = error.to_string();
        assert!(!text.contains(key), "{text}");
        assert!(text.contains("check the API key reference"), "{text}");

        let validation = AgentError::invalid("", "must be an object");
        assert!(
            validation
                .to_string()
                .starts_with("invalid input at /: must be an object")
        );
        assert!(AgentError::from_violations(vec![]).is_none());
        let many: Vec<Violation> = (0..40)
            .map(|i| Violation {
                path: format!("/x/{i}"),
                message: "bad".into(),
            })
            .collect();
        match AgentError::from_violations(many) {
            Some(AgentError::Validation {
                path, violations, ..
            }) => {
                assert_eq!(path, "/x/0");
                assert_eq!(violations.len(), MAX_VIOLATIONS);
            }
            other => panic!("expected a validation error, got {other:?}"),
        }
        assert_eq!(
            Violation {
                path: String::new(),
                message: "m".into()
            }
            .to_string(),
            "/: m"
        );
        assert_eq!(HostCondition::Memory.to_string(), "memory");
    }
}
