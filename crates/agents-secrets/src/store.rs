//! The one interface every backend sits behind, and the one door every loaded value goes through.
//!
//! Callers (provider adapters, the server) ask for a [`SecretRef`] and get a [`SecretString`];
//! they never learn which backend answered, so moving a key from an environment variable to Vault
//! is a config change. The trait is sealed: its promises — every value registered with the
//! [`Redactor`](agents_core::Redactor), no value in any error — are kept by the stores of this
//! crate, and an outside implementation could silently break them. [`MemoryStore`] covers
//! tests and embedding.
//!
//! [`MemoryStore`]: crate::MemoryStore

use std::fmt;

use agents_core::{MIN_SECRET_LEN, RedactError, Redactor};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::{Backend, SecretError, SecretRef};

pub(crate) mod sealed {
    /// Keeps [`super::SecretStore`] implemented only by this crate's stores.
    pub trait Sealed {}
}

/// Loads secrets by reference. Object safe: stores are used as `Arc<dyn SecretStore>`.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), agents_secrets::SecretError> {
/// use std::sync::Arc;
/// use agents_secrets::{MemoryStore, SecretRef, SecretStore};
/// use secrecy::ExposeSecret;
///
/// let memory = MemoryStore::new();
/// let reference: SecretRef = "env:OPENAI_API_KEY".parse()?;
/// memory.insert(&reference, "sk-test-0123456789abcdef".into())?;
/// let store: Arc<dyn SecretStore> = Arc::new(memory);
/// let key = store.get(&reference).await?;
/// assert_eq!(key.expose_secret(), "sk-test-0123456789abcdef");
/// assert!(!format!("{key:?}").contains("0123456789")); // Debug never shows it
/// # Ok(())
/// # }
/// ```
#[async_trait::async_trait]
pub trait SecretStore: sealed::Sealed + Send + Sync + fmt::Debug {
    /// Loads the secret `reference` names.
    ///
    /// The value has been registered with [`Redactor::global`] before it is returned.
    ///
    /// # Errors
    /// A [`SecretError`] naming the reference and the backend, never the value.
    async fn get(&self, reference: &SecretRef) -> Result<SecretString, SecretError>;

    /// Whether the store can serve now (reachable, authenticated).
    async fn health(&self) -> StoreHealth;

    /// Forgets any copy of `reference` the store keeps, so the next [`get`](Self::get) loads it
    /// from its backend: for a caller that learned the value is no longer valid (an upstream
    /// refused it with 401). Stores that keep no copy do nothing, which is the default.
    fn invalidate(&self, reference: &SecretRef) {
        let _ = reference;
    }
}

/// Whether a store can serve.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case", tag = "status")]
#[non_exhaustive]
pub enum StoreHealth {
    /// Ready.
    Healthy,
    /// Some of what it routes to is down.
    Degraded {
        /// Why.
        reason: String,
    },
    /// Cannot serve now.
    Unhealthy {
        /// Why.
        reason: String,
    },
}

impl StoreHealth {
    /// Whether requests may be sent (healthy or degraded).
    pub fn is_serving(&self) -> bool {
        !matches!(self, Self::Unhealthy { .. })
    }

    pub(crate) fn unhealthy(reason: impl AsRef<str>) -> Self {
        Self::Unhealthy {
            reason: agents_core::redact(reason.as_ref()).into_owned(),
        }
    }
}

/// The door every loaded value passes: refuses what cannot be masked, registers the rest with
/// the global redactor, and wraps it.
///
/// Values shorter than [`MIN_SECRET_LEN`] bytes (the empty string included) are refused: the
/// redactor cannot mask them without masking ordinary text, so they could appear in any log,
/// and a credential that short is a configuration mistake anyway.
pub(crate) fn admit(
    reference: &SecretRef,
    backend: Backend,
    value: String,
) -> Result<SecretString, SecretError> {
    let value = SecretString::from(value);
    register(reference, backend, &value)?;
    Ok(value)
}

/// Registers an already wrapped value (see [`admit`]).
pub(crate) fn register(
    reference: &SecretRef,
    backend: Backend,
    value: &SecretString,
) -> Result<(), SecretError> {
    use secrecy::ExposeSecret;
    match Redactor::global().register(value.expose_secret()) {
        Ok(()) => Ok(()),
        Err(RedactError::SecretTooShort { .. }) => Err(SecretError::invalid_value(
            reference,
            backend,
            format!(
                "secrets shorter than {MIN_SECRET_LEN} bytes are refused because they cannot be masked in logs; store the whole credential"
            ),
        )),
        // Fail closed: a value the redactor cannot mask is not handed out.
        Err(_) => Err(SecretError::invalid_value(
            reference,
            backend,
            "the redactor could not register it, so it is refused",
        )),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::SecretErrorKind;
    use secrecy::ExposeSecret;

    #[test]
    fn admit_registers_and_refuses_short_values() {
        let r: SecretRef = "env:ADMIT_TEST".parse().unwrap();
        let value = admit(&r, Backend::Env, "admit-test-value-1".into()).unwrap();
        assert_eq!(value.expose_secret(), "admit-test-value-1");
        assert_eq!(agents_core::redact("x admit-test-value-1 y"), "x *** y");
        for short in ["", "abc"] {
            let e = admit(&r, Backend::Env, short.into()).unwrap_err();
            assert_eq!(e.kind(), SecretErrorKind::InvalidValue);
            assert!(e.to_string().contains("shorter than 4 bytes"), "{e}");
        }
    }

    #[test]
    fn health_serving() {
        assert!(StoreHealth::Healthy.is_serving());
        assert!(StoreHealth::Degraded { reason: "x".into() }.is_serving());
        assert!(!StoreHealth::unhealthy("down").is_serving());
        let json = serde_json::to_value(StoreHealth::unhealthy("down")).unwrap();
        assert_eq!(json["status"], "unhealthy");
    }
}
