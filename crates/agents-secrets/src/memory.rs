//! A store held in memory, for tests and for programs that load secrets their own way.
//!
//! Since [`SecretStore`] is sealed, this is how a test or an embedding program hands secrets to
//! code that takes a store, with the same guarantees: every value is registered with the
//! redactor when inserted, and too-short values are refused.

use std::collections::HashMap;
use std::fmt;
use std::sync::{PoisonError, RwLock};

use secrecy::SecretString;

use crate::store::{register, sealed};
use crate::{Backend, SecretError, SecretRef, SecretStore, StoreHealth};

/// Serves whatever was [inserted](MemoryStore::insert), for any scheme.
#[derive(Default)]
pub struct MemoryStore {
    values: RwLock<HashMap<SecretRef, SecretString>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the value `reference` resolves to, replacing any previous one.
    ///
    /// # Errors
    /// [`SecretError::InvalidValue`] when the value is shorter than
    /// [`agents_core::MIN_SECRET_LEN`] bytes (it could not be masked).
    pub fn insert(&self, reference: &SecretRef, value: SecretString) -> Result<(), SecretError> {
        register(reference, Backend::Memory, &value)?;
        self.values
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(reference.clone(), value);
        Ok(())
    }

    /// Forgets `reference`; later reads fail with `NotFound`.
    pub fn remove(&self, reference: &SecretRef) {
        self.values
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(reference);
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self
            .values
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len();
        f.debug_struct("MemoryStore")
            .field("secrets", &count)
            .finish()
    }
}

impl sealed::Sealed for MemoryStore {}

#[async_trait::async_trait]
impl SecretStore for MemoryStore {
    async fn get(&self, reference: &SecretRef) -> Result<SecretString, SecretError> {
        self.values
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(reference)
            .cloned()
            .ok_or_else(|| SecretError::not_found(reference, Backend::Memory, "nothing inserted"))
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
    async fn insert_get_remove() {
        let store = MemoryStore::new();
        let r: SecretRef = "vault:kv/app#key".parse().unwrap();
        assert_eq!(
            store.get(&r).await.unwrap_err().kind(),
            SecretErrorKind::NotFound
        );
        store.insert(&r, "memory-value-1".into()).unwrap();
        assert_eq!(
            store.get(&r).await.unwrap().expose_secret(),
            "memory-value-1"
        );
        assert_eq!(agents_core::redact("memory-value-1"), "***");
        let shown = format!("{store:?}");
        assert!(shown.contains("secrets: 1") && !shown.contains("memory-value-1"));
        assert_eq!(
            store.insert(&r, "abc".into()).unwrap_err().kind(),
            SecretErrorKind::InvalidValue
        );
        store.remove(&r);
        assert!(store.get(&r).await.is_err());
        assert_eq!(store.health().await, StoreHealth::Healthy);
    }
}
