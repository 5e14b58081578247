use secrecy::SecretString;

use crate::reference::Target;
use crate::store::{admit, sealed};
use crate::{Backend, SecretError, SecretRef, SecretStore, StoreHealth};

/// Serves `env:NAME` references from the process environment, read at each call (the cache in
/// front decides how often that is).
#[derive(Debug, Default, Clone)]
#[non_exhaustive]
pub struct EnvStore;

impl EnvStore {
    /// The store.
    pub fn new() -> Self {
        Self
    }
}

impl sealed::Sealed for EnvStore {}

#[async_trait::async_trait]
impl SecretStore for EnvStore {
    async fn get(&self, reference: &SecretRef) -> Result<SecretString, SecretError> {
        let Target::Env(name) = reference.target() else {
            return Err(SecretError::unsupported(
                reference,
                "the env store serves only `env:` references",
            ));
        };
        match std::env::var_os(name) {
            None => Err(SecretError::not_found(
                reference,
                Backend::Env,
                format!("the environment variable {name} is not set"),
            )),
            Some(value) => match value.into_string() {
                Ok(value) => admit(reference, Backend::Env, value),
                Err(_) => Err(SecretError::invalid_value(
                    reference,
                    Backend::Env,
                    format!("the environment variable {name} is not UTF-8"),
                )),
            },
        }
    }

    async fn health(&self) -> StoreHealth {
        StoreHealth::Healthy
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::SecretErrorKind;
    use secrecy::ExposeSecret;

    #[tokio::test]
    async fn reads_set_and_reports_unset() {
        // Set by cargo for every test run; setting our own would need `unsafe`.
        let r: SecretRef = "env:CARGO_MANIFEST_DIR".parse().unwrap();
        let value = EnvStore::new().get(&r).await.unwrap();
        assert_eq!(value.expose_secret(), env!("CARGO_MANIFEST_DIR"));
        let r: SecretRef = "env:AGENTS_SECRETS_SURELY_UNSET_1".parse().unwrap();
        let e = EnvStore::new().get(&r).await.unwrap_err();
        assert_eq!(e.kind(), SecretErrorKind::NotFound);
        assert!(
            e.to_string()
                .contains("AGENTS_SECRETS_SURELY_UNSET_1 is not set"),
            "{e}"
        );
        let r: SecretRef = "file:/etc/hostname".parse().unwrap();
        assert_eq!(
            EnvStore::new().get(&r).await.unwrap_err().kind(),
            SecretErrorKind::Unsupported
        );
        assert_eq!(EnvStore::new().health().await, StoreHealth::Healthy);
    }
}
