use std::sync::Arc;

use agents_core::ConfigError;
use serde::{Deserialize, Serialize};

use super::SecretRouter;
use crate::{CacheConfig, CachedStore, KmsConfig, SecretError, VaultConfig};
#[allow(unused_imports)]
use crate::{Scheme, SecretErrorKind, SecretStore};

/// The `secrets` section of the runtime's config: which backends to use, and the cache.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # #[cfg(feature = "env")] { // env: needs the `env` feature
/// use agents_secrets::{SecretStore, SecretsConfig};
/// use secrecy::ExposeSecret;
///
/// let config: SecretsConfig = serde_json::from_str(r#"{"cache": {"ttl_ms": 60000}}"#)?;
/// let secrets = config.build().await?; // env: and file: always; vault:/kms: when configured
/// let dir = secrets.get(&"env:CARGO_MANIFEST_DIR".parse()?).await?;
/// assert!(!dir.expose_secret().is_empty());
/// # }
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct SecretsConfig {
    /// The cache in front of every backend.
    pub cache: CacheConfig,
    /// Vault or OpenBao, for `vault:` references (feature `vault`).
    pub vault: Option<VaultConfig>,
    /// AWS KMS, for `kms:`, `kms-file:` and `kms-envelope-file:` references (feature `aws-kms`).
    pub kms: Option<KmsConfig>,
}

impl SecretsConfig {
    /// Sets the cache.
    pub fn with_cache(mut self, cache: CacheConfig) -> Self {
        self.cache = cache;
        self
    }

    /// Configures Vault.
    pub fn with_vault(mut self, vault: VaultConfig) -> Self {
        self.vault = Some(vault);
        self
    }

    /// Configures KMS.
    pub fn with_kms(mut self, kms: KmsConfig) -> Self {
        self.kms = Some(kms);
        self
    }

    /// Checks every section; the error's path starts at this section (`vault.address`).
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.cache.validate().map_err(|e| e.within("cache"))?;
        if let Some(vault) = &self.vault {
            if !cfg!(feature = "vault") {
                return Err(ConfigError::new(
                    "vault",
                    "Vault is configured but agents-secrets was built without its `vault` feature",
                ));
            }
            vault.validate().map_err(|e| e.within("vault"))?;
        }
        if let Some(kms) = &self.kms {
            if !cfg!(feature = "aws-kms") {
                return Err(ConfigError::new(
                    "kms",
                    "KMS is configured but agents-secrets was built without its `aws-kms` feature",
                ));
            }
            kms.validate().map_err(|e| e.within("kms"))?;
        }
        Ok(())
    }

    /// Builds the stack: the cache, over a router, over the configured backends. Needs a tokio
    /// runtime (the cache refreshes and Vault renews its token in the background).
    ///
    /// Vault is logged in to at once, so a refused credential fails the start; an unreachable
    /// Vault does not (reads fail until it is back, and the renewal task keeps trying).
    ///
    /// # Errors
    /// [`SecretError::Config`] for an invalid config; the errors of loading the backends'
    /// credentials; a Vault refusal.
    pub async fn build(&self) -> Result<CachedStore, SecretError> {
        self.validate()?;
        #[allow(unused_mut)]
        let mut router = SecretRouter::new();
        #[cfg(feature = "env")]
        {
            router = router
                .route(Scheme::Env, Arc::new(crate::EnvStore::new()))
                .route(Scheme::File, Arc::new(crate::FileStore::new()));
        }
        #[cfg(feature = "aws-kms")]
        if let Some(kms) = &self.kms {
            // KMS credentials come from the local stores only.
            let local: Arc<dyn SecretStore> = Arc::new(router.clone());
            let store: Arc<dyn SecretStore> = Arc::new(crate::KmsStore::connect(kms, local).await?);
            router = router
                .route(Scheme::Kms, Arc::clone(&store))
                .route(Scheme::KmsFile, Arc::clone(&store))
                .route(Scheme::KmsEnvelopeFile, store);
        }
        #[cfg(feature = "vault")]
        if let Some(vault) = &self.vault {
            // Vault credentials come from the local stores and KMS, never from Vault.
            let credentials: Arc<dyn SecretStore> = Arc::new(router.clone());
            let store = Arc::new(crate::VaultStore::new(vault, credentials)?);
            match store.login().await {
                Ok(()) => {}
                Err(error) if error.kind() == SecretErrorKind::Unreachable => {
                    tracing::warn!(
                        address = %vault.address,
                        error = %error,
                        "vault is unreachable at start-up; vault: secrets will fail until it is back"
                    );
                }
                Err(error) => return Err(error),
            }
            // Ends by itself when the store is dropped.
            store.spawn_token_renewal();
            router = router.route(Scheme::Vault, store);
        }
        CachedStore::new(Arc::new(router), self.cache.clone())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::{KmsConfig, VaultAuth};

    #[test]
    fn validate_names_the_section() {
        assert!(SecretsConfig::default().validate().is_ok());
        let bad_cache = SecretsConfig::default().with_cache(CacheConfig::default().with_ttl_ms(0));
        assert_eq!(bad_cache.validate().unwrap_err().path, "cache.ttl_ms");
        let vault = SecretsConfig::default().with_vault(VaultConfig::new(
            "nope",
            VaultAuth::token("env:T".parse().unwrap()),
        ));
        let path = vault.validate().unwrap_err().path;
        assert!(path.starts_with("vault"), "{path}");
        let kms = SecretsConfig::default().with_kms(KmsConfig::default().with_max_attempts(0));
        let path = kms.validate().unwrap_err().path;
        assert!(path.starts_with("kms"), "{path}");
        assert!(
            serde_json::from_str::<SecretsConfig>(r#"{"valt": {}}"#).is_err(),
            "unknown sections are refused"
        );
    }

    #[cfg(not(all(feature = "vault", feature = "aws-kms")))]
    #[test]
    fn sections_without_their_feature_name_the_feature() {
        let config = SecretsConfig::default()
            .with_vault(VaultConfig::new(
                "https://vault:8200",
                VaultAuth::token("env:T".parse().unwrap()),
            ))
            .with_kms(KmsConfig::default());
        let error = config.validate().unwrap_err();
        assert!(error.message.contains("feature"), "{error}");
    }

    #[tokio::test]
    async fn build_refuses_invalid_config() {
        let e = SecretsConfig::default()
            .with_cache(CacheConfig::default().with_max_entries(0))
            .build()
            .await
            .unwrap_err();
        assert_eq!(e.kind(), SecretErrorKind::Config);
    }

    #[cfg(feature = "env")]
    #[tokio::test]
    async fn build_serves_env_and_file() {
        use secrecy::ExposeSecret;
        let secrets = SecretsConfig::default().build().await.unwrap();
        let r = "env:CARGO_MANIFEST_DIR".parse().unwrap();
        assert!(!secrets.get(&r).await.unwrap().expose_secret().is_empty());
        assert_eq!(secrets.health().await, crate::StoreHealth::Healthy);
        let e = secrets
            .get(&"vault:kv/a#b".parse().unwrap())
            .await
            .unwrap_err();
        assert_eq!(e.kind(), SecretErrorKind::Unsupported);
    }
}
