//! A scripted store for the unit tests of the layers above the backends.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use secrecy::SecretString;

use crate::store::{admit, sealed};
use crate::{Backend, SecretError, SecretErrorKind, SecretRef, SecretStore, StoreHealth};

/// Answers every reference with one settable value, or fails as told; counts calls.
pub(crate) struct ScriptedStore {
    value: Mutex<String>,
    failure: Mutex<Option<SecretErrorKind>>,
    delay: Mutex<Duration>,
    calls: AtomicUsize,
}

impl ScriptedStore {
    pub(crate) fn new(value: &str) -> Arc<Self> {
        Arc::new(Self {
            value: Mutex::new(value.to_owned()),
            failure: Mutex::new(None),
            delay: Mutex::new(Duration::ZERO),
            calls: AtomicUsize::new(0),
        })
    }

    pub(crate) fn set_value(&self, value: &str) {
        *self.value.lock().unwrap_or_else(PoisonError::into_inner) = value.to_owned();
    }

    pub(crate) fn fail_with(&self, kind: Option<SecretErrorKind>) {
        *self.failure.lock().unwrap_or_else(PoisonError::into_inner) = kind;
    }

    pub(crate) fn set_delay(&self, delay: Duration) {
        *self.delay.lock().unwrap_or_else(PoisonError::into_inner) = delay;
    }

    pub(crate) fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

impl std::fmt::Debug for ScriptedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScriptedStore")
            .field("calls", &self.calls())
            .finish_non_exhaustive()
    }
}

impl sealed::Sealed for ScriptedStore {}

#[async_trait::async_trait]
impl SecretStore for ScriptedStore {
    async fn get(&self, reference: &SecretRef) -> Result<SecretString, SecretError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let delay = *self.delay.lock().unwrap_or_else(PoisonError::into_inner);
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let failure = *self.failure.lock().unwrap_or_else(PoisonError::into_inner);
        let backend = Backend::Memory;
        match failure {
            None => {
                let value = self
                    .value
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone();
                admit(reference, backend, value)
            }
            Some(SecretErrorKind::Unreachable) => Err(SecretError::unreachable(
                reference,
                backend,
                "scripted outage",
            )),
            Some(SecretErrorKind::PermissionDenied) => Err(SecretError::permission_denied(
                reference,
                backend,
                "scripted refusal",
            )),
            Some(_) => Err(SecretError::not_found(reference, backend, "scripted miss")),
        }
    }

    async fn health(&self) -> StoreHealth {
        match *self.failure.lock().unwrap_or_else(PoisonError::into_inner) {
            None => StoreHealth::Healthy,
            Some(_) => StoreHealth::unhealthy("scripted failure"),
        }
    }
}
