//! Why the authenticator could not be built.

use std::error::Error as StdError;
use std::fmt;

use agents_core::ConfigError;
use agents_secrets::SecretError;

/// Why [`Authenticator::load`](crate::auth::Authenticator::load) failed. Never contains a key:
/// keys are named by their `id`, secrets by their reference.
#[derive(Debug)]
#[non_exhaustive]
pub enum AuthLoadError {
    /// The `auth` section is invalid; every problem, each with its path.
    #[non_exhaustive]
    Config {
        /// The problems found by [`AuthConfig::validate`](crate::auth::AuthConfig::validate).
        errors: Vec<ConfigError>,
    },
    /// A key's secret reference could not be resolved.
    #[non_exhaustive]
    Secret {
        /// The key's `id`.
        key_id: String,
        /// What the secret store said (names the reference and backend, never the value).
        source: SecretError,
    },
    /// Two configured keys are the same key (found once references are resolved).
    #[non_exhaustive]
    DuplicateKey {
        /// The first key's `id`.
        first: String,
        /// The `id` of the key that repeats it.
        second: String,
    },
}

impl AuthLoadError {
    /// Whether trying again later may succeed (a secret backend was unreachable).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Secret { source, .. }
            if source.kind() == agents_secrets::SecretErrorKind::Unreachable)
    }
}

impl fmt::Display for AuthLoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Config { errors } => {
                f.write_str("invalid `auth` configuration")?;
                for (i, error) in errors.iter().enumerate() {
                    let separator = if i == 0 { ": " } else { "; " };
                    write!(f, "{separator}{error}")?;
                }
                Ok(())
            }
            Self::Secret { key_id, source } => write!(
                f,
                "cannot load API key `{key_id}`: {source}; fix the reference or the secret store"
            ),
            Self::DuplicateKey { first, second } => write!(
                f,
                "API keys `{first}` and `{second}` are the same key; give each caller its own key"
            ),
        }
    }
}

impl StdError for AuthLoadError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            Self::Secret { source, .. } => Some(source),
            _ => None,
        }
    }
}
