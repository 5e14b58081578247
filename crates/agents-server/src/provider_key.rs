//! A provider's API key read through the server's secret cache on every call.
//!
//! The cache (`[secrets.cache]`, `ttl_ms`) answers from memory and reloads a value once it is
//! `ttl_ms` old, so a key rotated in Vault, KMS or a file reaches the provider within the TTL
//! without a restart. A provider that refuses the key (401/403) makes the cache forget it (once
//! per key): the call is tried again with the new one at once. While the store cannot be
//! reached the adapter keeps sending the last key it read. A store that hangs holds the calls
//! that need a fresh key for up to `fetch_timeout_ms`, once: the cache then gives its error to
//! the next `error_ttl_ms` of calls at once (`stale_if_error_ms` avoids even that wait).

use std::sync::Arc;

use agents_core::ProviderError;
use agents_providers::KeySource;
use agents_secrets::secrecy::SecretString;
use agents_secrets::{SecretRef, SecretStore};

/// `reference` in `store`, as the key of provider `provider`.
#[derive(Debug)]
pub(crate) struct StoredKey {
    pub(crate) provider: String,
    pub(crate) reference: SecretRef,
    pub(crate) store: Arc<dyn SecretStore>,
}

#[async_trait::async_trait]
impl KeySource for StoredKey {
    async fn key(&self) -> Result<SecretString, ProviderError> {
        self.store.get(&self.reference).await.map_err(|error| {
            // The secret error names the reference and the backend, never the value.
            ProviderError::Unavailable {
                status: None,
                reason: format!(
                    "cannot load provider `{}`'s API key: {error}",
                    self.provider
                ),
            }
        })
    }

    fn refused(&self) {
        tracing::warn!(
            provider = %self.provider,
            "the provider refused its API key; loading it again from the secret store"
        );
        self.store.invalidate(&self.reference);
    }
}
