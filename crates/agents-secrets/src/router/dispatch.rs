use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use secrecy::SecretString;

use crate::store::sealed;
use crate::{Scheme, SecretError, SecretRef, SecretStore, StoreHealth};

/// Sends each reference to the store configured for its scheme.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), agents_secrets::SecretError> {
/// use std::sync::Arc;
/// use agents_secrets::{MemoryStore, Scheme, SecretErrorKind, SecretRouter, SecretStore};
///
/// let router = SecretRouter::new().route(Scheme::Env, Arc::new(MemoryStore::new()));
/// let error = router.get(&"vault:secret/app#key".parse()?).await.unwrap_err();
/// assert_eq!(error.kind(), SecretErrorKind::Unsupported);
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Default)]
pub struct SecretRouter {
    routes: BTreeMap<Scheme, Arc<dyn SecretStore>>,
}

impl SecretRouter {
    /// A router with no routes.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sends `scheme` references to `store`, replacing any earlier route.
    pub fn route(mut self, scheme: Scheme, store: Arc<dyn SecretStore>) -> Self {
        self.routes.insert(scheme, store);
        self
    }

    /// The schemes with a route.
    pub fn schemes(&self) -> Vec<Scheme> {
        self.routes.keys().copied().collect()
    }
}

/// What to do about a scheme without a route.
fn missing_route_hint(scheme: Scheme) -> String {
    let compiled = match scheme {
        Scheme::Env | Scheme::File => cfg!(feature = "env"),
        Scheme::Vault => cfg!(feature = "vault"),
        Scheme::Kms | Scheme::KmsFile | Scheme::KmsEnvelopeFile => cfg!(feature = "aws-kms"),
    };
    if compiled {
        let section = match scheme {
            Scheme::Vault => "add a `vault` section to the secrets config",
            Scheme::Kms | Scheme::KmsFile | Scheme::KmsEnvelopeFile => {
                "add a `kms` section to the secrets config"
            }
            Scheme::Env | Scheme::File => "route it to a store",
        };
        format!("no store is configured for `{scheme}:` references; {section}")
    } else {
        format!(
            "this build of agents-secrets has no `{scheme}:` store; enable its `{}` feature",
            scheme.feature()
        )
    }
}

impl fmt::Debug for SecretRouter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.routes.iter().map(|(s, store)| (s.as_str(), store)))
            .finish()
    }
}

impl sealed::Sealed for SecretRouter {}

#[async_trait::async_trait]
impl SecretStore for SecretRouter {
    async fn get(&self, reference: &SecretRef) -> Result<SecretString, SecretError> {
        let scheme = reference.scheme();
        let Some(store) = self.routes.get(&scheme) else {
            return Err(SecretError::unsupported(
                reference,
                missing_route_hint(scheme),
            ));
        };
        let result = store.get(reference).await;
        match &result {
            Ok(_) => tracing::debug!(reference = %reference, "secret loaded"),
            Err(error) => {
                tracing::debug!(reference = %reference, error = %error, "secret not loaded")
            }
        }
        result
    }

    /// Healthy when every distinct store is; degraded when some are not; unhealthy when none is.
    async fn health(&self) -> StoreHealth {
        // Pointers as addresses: one store behind several schemes is asked once.
        let mut seen: Vec<usize> = Vec::new();
        let (mut healthy, mut problems) = (0usize, Vec::new());
        for (scheme, store) in &self.routes {
            let identity = Arc::as_ptr(store).cast::<()>() as usize;
            if seen.contains(&identity) {
                continue;
            }
            seen.push(identity);
            match store.health().await {
                StoreHealth::Healthy => healthy += 1,
                StoreHealth::Degraded { reason } | StoreHealth::Unhealthy { reason } => {
                    problems.push(format!("{scheme}: {reason}"));
                }
            }
        }
        match (healthy, problems.is_empty()) {
            (_, true) => StoreHealth::Healthy,
            (0, false) => StoreHealth::Unhealthy {
                reason: problems.join("; "),
            },
            _ => StoreHealth::Degraded {
                reason: problems.join("; "),
            },
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::testing::ScriptedStore;
    use crate::{MemoryStore, SecretErrorKind};
    use secrecy::ExposeSecret;

    #[tokio::test]
    async fn dispatches_by_scheme_and_names_what_is_missing() {
        let env = MemoryStore::new();
        let r: SecretRef = "env:ROUTED".parse().unwrap();
        env.insert(&r, "routed-value-1".into()).unwrap();
        let router = SecretRouter::new().route(Scheme::Env, Arc::new(env));
        assert_eq!(
            router.get(&r).await.unwrap().expose_secret(),
            "routed-value-1"
        );
        assert_eq!(router.schemes(), [Scheme::Env]);
        for text in ["vault:kv/a#b", "kms:AQID", "file:/x"] {
            let e = router.get(&text.parse().unwrap()).await.unwrap_err();
            assert_eq!(e.kind(), SecretErrorKind::Unsupported);
            assert!(e.to_string().contains(text), "{e}");
        }
        assert!(format!("{router:?}").contains("env"));
    }

    #[test]
    fn hints_name_the_section_or_the_feature() {
        for scheme in Scheme::ALL {
            let hint = missing_route_hint(scheme);
            assert!(hint.contains(scheme.as_str()), "{hint}");
        }
    }

    #[tokio::test]
    async fn health_aggregates_distinct_stores() {
        let up = ScriptedStore::new("health-value-1");
        let down = ScriptedStore::new("health-value-2");
        down.fail_with(Some(SecretErrorKind::Unreachable));
        assert_eq!(SecretRouter::new().health().await, StoreHealth::Healthy);
        let shared: Arc<dyn SecretStore> = down.clone();
        let router = SecretRouter::new()
            .route(Scheme::Kms, Arc::clone(&shared))
            .route(Scheme::KmsFile, shared);
        let StoreHealth::Unhealthy { reason } = router.health().await else {
            panic!()
        };
        // One store behind two schemes is reported once.
        assert_eq!(reason.matches("scripted failure").count(), 1, "{reason}");
        let router = router.route(Scheme::Env, up);
        assert!(matches!(
            router.health().await,
            StoreHealth::Degraded { .. }
        ));
    }
}
