//! The one error type of the crate.
//!
//! Gateways leak keys through exception messages more than anywhere else: an upstream error
//! quotes the request, a parse error quotes the input, and the message lands in a log. So every
//! error here is built from facts that are not the secret (the reference, the backend, what the
//! backend said about it) and never from the value. Free text from a backend is passed through
//! the global [`Redactor`](agents_core::Redactor) when the error is built (so `Debug` is safe)
//! and again when it is displayed (so a secret registered later is masked too).
//!
//! Variants are `#[non_exhaustive]`: callers match on them, only this crate builds them.

use std::fmt;

use agents_core::{ConfigError, redact};

/// Which secret backend an error came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Backend {
    /// Environment variables (`env:`).
    Env,
    /// Files (`file:`).
    File,
    /// Vault or OpenBao KV v2 (`vault:`).
    Vault,
    /// AWS KMS (`kms:`, `kms-file:`, `kms-envelope-file:`).
    AwsKms,
    /// The in-memory store.
    Memory,
    /// The caching layer.
    Cache,
    /// The router that picks a store by scheme.
    Router,
}

impl Backend {
    /// The backend's name in messages and logs.
    pub fn name(self) -> &'static str {
        match self {
            Self::Env => "env",
            Self::File => "file",
            Self::Vault => "vault",
            Self::AwsKms => "aws-kms",
            Self::Memory => "memory",
            Self::Cache => "cache",
            Self::Router => "router",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What went wrong, without the details: what callers branch on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SecretErrorKind {
    /// The reference string is malformed.
    InvalidReference,
    /// The backend has no such secret (variable unset, file absent, no such path or key).
    NotFound,
    /// The backend refused our credentials or policy for this secret.
    PermissionDenied,
    /// The backend could not be reached, timed out, or is sealed/overloaded: try again later.
    Unreachable,
    /// The backend answered with a refusal that is none of the above (bad ciphertext, disabled
    /// key, malformed request).
    Rejected,
    /// The secret is stored unsafely (a file readable by other users) and was refused.
    Insecure,
    /// The value was loaded but cannot be used (not UTF-8, not a string, too short to mask).
    InvalidValue,
    /// No configured store serves this kind of reference.
    Unsupported,
    /// The secrets configuration is invalid.
    Config,
}

/// Why a secret could not be loaded. Never contains the secret.
///
/// Every variant names the reference (as written in the config, shortened for `kms:`
/// ciphertexts) and, where one was involved, the backend.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum SecretError {
    /// The reference string does not parse.
    #[error("invalid secret reference {}: {}", redact(.reference), redact(.reason))]
    #[non_exhaustive]
    InvalidReference {
        /// The reference, or a description of it when echoing it could leak a value.
        reference: String,
        /// What is wrong and what is expected.
        reason: String,
    },
    /// The backend has no such secret.
    #[error("secret `{}` not found in {backend}: {}", redact(.reference), redact(.detail))]
    #[non_exhaustive]
    NotFound {
        /// The reference.
        reference: String,
        /// The backend asked.
        backend: Backend,
        /// What was missing.
        detail: String,
    },
    /// The backend refused access.
    #[error("{backend} refused access to secret `{}`: {}; check the credentials and the policy they carry", redact(.reference), redact(.detail))]
    #[non_exhaustive]
    PermissionDenied {
        /// The reference.
        reference: String,
        /// The backend that refused.
        backend: Backend,
        /// What the backend said.
        detail: String,
    },
    /// The backend could not be reached; retrying later may succeed.
    #[error("{backend} is unreachable while loading secret `{}`: {}; retry later", redact(.reference), redact(.detail))]
    #[non_exhaustive]
    Unreachable {
        /// The reference.
        reference: String,
        /// The backend that could not be reached.
        backend: Backend,
        /// Connection refused, timeout, sealed, 5xx, ...
        detail: String,
    },
    /// The backend refused the request for another reason.
    #[error("{backend} rejected the request for secret `{}`: {}", redact(.reference), redact(.detail))]
    #[non_exhaustive]
    Rejected {
        /// The reference.
        reference: String,
        /// The backend that refused.
        backend: Backend,
        /// What the backend said.
        detail: String,
    },
    /// The secret is stored where others can read it, and was refused.
    #[error("refusing secret `{}` from {backend}: {}", redact(.reference), redact(.detail))]
    #[non_exhaustive]
    Insecure {
        /// The reference.
        reference: String,
        /// The backend holding it.
        backend: Backend,
        /// What is unsafe and how to fix it.
        detail: String,
    },
    /// The value was loaded but cannot be used as a secret.
    #[error("the value of secret `{}` from {backend} cannot be used: {}", redact(.reference), redact(.detail))]
    #[non_exhaustive]
    InvalidValue {
        /// The reference.
        reference: String,
        /// The backend it came from.
        backend: Backend,
        /// Why (never the value).
        detail: String,
    },
    /// No configured store serves this reference.
    #[error("no secret store serves `{}`: {}", redact(.reference), redact(.detail))]
    #[non_exhaustive]
    Unsupported {
        /// The reference.
        reference: String,
        /// What to configure or enable.
        detail: String,
    },
    /// The secrets configuration is invalid.
    #[error(transparent)]
    #[non_exhaustive]
    Config(ConfigError),
}

/// Builds a variant's free-text field: masked once here so `Debug` never shows a secret.
fn clean(text: impl AsRef<str>) -> String {
    redact(text.as_ref()).into_owned()
}

impl SecretError {
    pub(crate) fn invalid_reference(reference: impl AsRef<str>, reason: impl AsRef<str>) -> Self {
        Self::InvalidReference {
            reference: clean(reference),
            reason: clean(reason),
        }
    }

    pub(crate) fn not_found(
        reference: impl fmt::Display,
        backend: Backend,
        detail: impl AsRef<str>,
    ) -> Self {
        Self::NotFound {
            reference: clean(reference.to_string()),
            backend,
            detail: clean(detail),
        }
    }

    pub(crate) fn permission_denied(
        reference: impl fmt::Display,
        backend: Backend,
        detail: impl AsRef<str>,
    ) -> Self {
        Self::PermissionDenied {
            reference: clean(reference.to_string()),
            backend,
            detail: clean(detail),
        }
    }

    pub(crate) fn unreachable(
        reference: impl fmt::Display,
        backend: Backend,
        detail: impl AsRef<str>,
    ) -> Self {
        Self::Unreachable {
            reference: clean(reference.to_string()),
            backend,
            detail: clean(detail),
        }
    }

    pub(crate) fn rejected(
        reference: impl fmt::Display,
        backend: Backend,
        detail: impl AsRef<str>,
    ) -> Self {
        Self::Rejected {
            reference: clean(reference.to_string()),
            backend,
            detail: clean(detail),
        }
    }

    pub(crate) fn insecure(
        reference: impl fmt::Display,
        backend: Backend,
        detail: impl AsRef<str>,
    ) -> Self {
        Self::Insecure {
            reference: clean(reference.to_string()),
            backend,
            detail: clean(detail),
        }
    }

    pub(crate) fn invalid_value(
        reference: impl fmt::Display,
        backend: Backend,
        detail: impl AsRef<str>,
    ) -> Self {
        Self::InvalidValue {
            reference: clean(reference.to_string()),
            backend,
            detail: clean(detail),
        }
    }

    pub(crate) fn unsupported(reference: impl fmt::Display, detail: impl AsRef<str>) -> Self {
        Self::Unsupported {
            reference: clean(reference.to_string()),
            detail: clean(detail),
        }
    }

    pub(crate) fn config(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Config(ConfigError::new(path, message))
    }

    /// What went wrong, for branching.
    pub fn kind(&self) -> SecretErrorKind {
        match self {
            Self::InvalidReference { .. } => SecretErrorKind::InvalidReference,
            Self::NotFound { .. } => SecretErrorKind::NotFound,
            Self::PermissionDenied { .. } => SecretErrorKind::PermissionDenied,
            Self::Unreachable { .. } => SecretErrorKind::Unreachable,
            Self::Rejected { .. } => SecretErrorKind::Rejected,
            Self::Insecure { .. } => SecretErrorKind::Insecure,
            Self::InvalidValue { .. } => SecretErrorKind::InvalidValue,
            Self::Unsupported { .. } => SecretErrorKind::Unsupported,
            Self::Config(_) => SecretErrorKind::Config,
        }
    }

    /// Whether trying again later may succeed: only when the backend could not be reached.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unreachable { .. })
    }

    /// The reference the error is about (`None` for configuration errors).
    pub fn reference(&self) -> Option<&str> {
        match self {
            Self::InvalidReference { reference, .. }
            | Self::NotFound { reference, .. }
            | Self::PermissionDenied { reference, .. }
            | Self::Unreachable { reference, .. }
            | Self::Rejected { reference, .. }
            | Self::Insecure { reference, .. }
            | Self::InvalidValue { reference, .. }
            | Self::Unsupported { reference, .. } => Some(reference),
            Self::Config(_) => None,
        }
    }

    /// The backend involved, when one was.
    pub fn backend(&self) -> Option<Backend> {
        match self {
            Self::NotFound { backend, .. }
            | Self::PermissionDenied { backend, .. }
            | Self::Unreachable { backend, .. }
            | Self::Rejected { backend, .. }
            | Self::Insecure { backend, .. }
            | Self::InvalidValue { backend, .. } => Some(*backend),
            Self::Unsupported { .. } => Some(Backend::Router),
            Self::InvalidReference { .. } | Self::Config(_) => None,
        }
    }

    /// The same error about another reference: used when a store fails while authenticating
    /// for a secret and the caller wants to know which secret was being loaded.
    #[cfg(feature = "vault")]
    pub(crate) fn while_loading(self, reference: impl fmt::Display) -> Self {
        let prefix = |detail: String, credential: &str| {
            clean(format!(
                "while authenticating with `{credential}`: {detail}"
            ))
        };
        let target = clean(reference.to_string());
        match self {
            Self::PermissionDenied {
                reference,
                backend,
                detail,
            } => Self::PermissionDenied {
                detail: prefix(detail, &reference),
                reference: target,
                backend,
            },
            Self::Unreachable {
                reference,
                backend,
                detail,
            } => Self::Unreachable {
                detail: prefix(detail, &reference),
                reference: target,
                backend,
            },
            Self::Rejected {
                reference,
                backend,
                detail,
            } => Self::Rejected {
                detail: prefix(detail, &reference),
                reference: target,
                backend,
            },
            Self::NotFound {
                reference,
                backend,
                detail,
            } => Self::NotFound {
                detail: prefix(detail, &reference),
                reference: target,
                backend,
            },
            other => other,
        }
    }
}

/// An error and its causes, `a: b: c`, skipping causes the message already contains: foreign
/// errors are flattened into our text this way, never exposed as types.
#[cfg(any(feature = "vault", feature = "aws-kms"))]
pub(crate) fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let said = cause.to_string();
        if !text.contains(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        source = cause.source();
    }
    text
}

impl From<ConfigError> for SecretError {
    fn from(error: ConfigError) -> Self {
        Self::Config(error)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_names_reference_and_backend() {
        let cases = [
            SecretError::not_found("env:A_B", Backend::Env, "not set"),
            SecretError::permission_denied("vault:kv/a#b", Backend::Vault, "denied"),
            SecretError::unreachable("vault:kv/a#b", Backend::Vault, "refused"),
            SecretError::rejected("kms:AAAA", Backend::AwsKms, "bad ciphertext"),
            SecretError::insecure("file:/x", Backend::File, "mode 0644"),
            SecretError::invalid_value("file:/x", Backend::File, "not UTF-8"),
        ];
        for error in &cases {
            let backend = error.backend().unwrap();
            let shown = error.to_string();
            assert!(shown.contains(backend.name()), "{shown}");
            assert!(shown.contains(error.reference().unwrap()), "{shown}");
        }
        let kinds: Vec<_> = cases.iter().map(SecretError::kind).collect();
        assert_eq!(
            kinds,
            [
                SecretErrorKind::NotFound,
                SecretErrorKind::PermissionDenied,
                SecretErrorKind::Unreachable,
                SecretErrorKind::Rejected,
                SecretErrorKind::Insecure,
                SecretErrorKind::InvalidValue,
            ]
        );
        assert!(cases[2].is_retryable());
        assert!(!cases[0].is_retryable() && !cases[1].is_retryable());
    }

    #[test]
    fn reference_unsupported_and_config() {
        let e = SecretError::invalid_reference("`envv:…`", "unknown scheme");
        assert_eq!(e.kind(), SecretErrorKind::InvalidReference);
        assert_eq!(e.backend(), None);
        assert!(e.to_string().contains("unknown scheme"));
        let e = SecretError::unsupported("vault:kv/a#b", "no vault store");
        assert_eq!(e.backend(), Some(Backend::Router));
        assert_eq!(e.kind(), SecretErrorKind::Unsupported);
        let e = SecretError::config("vault.address", "must be a URL");
        assert_eq!(e.kind(), SecretErrorKind::Config);
        assert_eq!(e.reference(), None);
        assert!(e.to_string().contains("vault.address"));
        let e: SecretError = ConfigError::new("cache.ttl_ms", "too small").into();
        assert_eq!(e.kind(), SecretErrorKind::Config);
        for backend in [
            Backend::Env,
            Backend::File,
            Backend::Vault,
            Backend::AwsKms,
            Backend::Memory,
            Backend::Cache,
            Backend::Router,
        ] {
            assert_eq!(backend.to_string(), backend.name());
        }
    }

    #[test]
    fn details_are_masked_in_display_and_debug() {
        agents_core::Redactor::global()
            .register("error-test-secret-value")
            .unwrap();
        let e = SecretError::rejected(
            "vault:kv/a#b",
            Backend::Vault,
            "upstream said error-test-secret-value",
        );
        for shown in [e.to_string(), format!("{e:?}")] {
            assert!(!shown.contains("error-test-secret-value"), "{shown}");
        }
    }

    #[cfg(feature = "vault")]
    #[test]
    fn while_loading_names_both() {
        let e = SecretError::permission_denied("env:VAULT_TOKEN", Backend::Vault, "bad token")
            .while_loading("vault:kv/app#key");
        assert_eq!(e.reference(), Some("vault:kv/app#key"));
        assert!(e.to_string().contains("env:VAULT_TOKEN"), "{e}");
        for e in [
            SecretError::unreachable("env:T", Backend::Vault, "down"),
            SecretError::rejected("env:T", Backend::Vault, "bad"),
            SecretError::not_found("env:T", Backend::Env, "unset"),
        ] {
            let kind = e.kind();
            let e = e.while_loading("vault:kv/app#key");
            assert_eq!(e.kind(), kind);
            assert!(e.to_string().contains("env:T"), "{e}");
        }
        let e =
            SecretError::insecure("file:/x", Backend::File, "mode").while_loading("vault:a/b#c");
        assert_eq!(e.reference(), Some("file:/x"));
    }
}
