//! The KMS client, and the static credentials it signs with.
//!
//! Static credentials are references (`env:`, `file:`), and temporary ones (a session token
//! from STS) expire within hours: whatever renews them (a sidecar, an agent) rewrites the files.
//! Read once, they kept being sent after they expired, and every KMS call failed with
//! `ExpiredTokenException` until a restart. So they are read again before every call, and the
//! client is rebuilt when they changed. A call is one HTTPS round trip to KMS, which the cache in
//! front makes rare; one or two reads of a small file or variable cost nothing beside it.
//!
//! A custom `ProvideCredentials` would need aws-credential-types as a direct dependency (its
//! future and error types are not re-exported by aws-sdk-kms); rebuilding the client needs none,
//! and the rebuilt client shares the HTTP client, so connections are kept.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use aws_config::SdkConfig;
use aws_sdk_kms::Client;
use aws_sdk_kms::config::Credentials;
use secrecy::ExposeSecret;

use super::KmsCredentials;
use crate::{SecretError, SecretStore};

/// Where the static credentials are read from, and the store that reads them.
pub(super) struct CredentialSource {
    references: KmsCredentials,
    store: Arc<dyn SecretStore>,
}

impl CredentialSource {
    pub(super) fn new(references: KmsCredentials, store: Arc<dyn SecretStore>) -> Self {
        Self { references, store }
    }

    /// The credentials the references hold now.
    pub(super) async fn load(&self) -> Result<Credentials, SecretError> {
        let references = &self.references;
        let secret = self.store.get(&references.secret_access_key).await?;
        let session = match &references.session_token {
            Some(reference) => Some(self.store.get(reference).await?),
            None => None,
        };
        Ok(Credentials::new(
            references.access_key_id.clone(),
            secret.expose_secret(),
            session.map(|s| s.expose_secret().to_owned()),
            None,
            "agents-secrets",
        ))
    }
}

/// The client in use and, with static credentials, the credentials it was built with.
struct Current {
    credentials: Option<Credentials>,
    client: Client,
}

/// Hands out a KMS client signing with the credentials the references hold now.
pub(super) struct KmsClient {
    sdk: SdkConfig,
    source: Option<CredentialSource>,
    current: Mutex<Current>,
}

impl KmsClient {
    /// A client for `sdk`. With `static_credentials`, the source to read them again from and
    /// what it held when `sdk` was built with them; without, the credentials of `sdk` (the
    /// default AWS chain, which refreshes itself).
    pub(super) fn new(
        sdk: SdkConfig,
        static_credentials: Option<(CredentialSource, Credentials)>,
    ) -> Self {
        let (source, credentials) = static_credentials.unzip();
        let client = Client::new(&sdk);
        Self {
            sdk,
            source,
            current: Mutex::new(Current {
                credentials,
                client,
            }),
        }
    }

    /// The client to make the next call with. With static credentials the references are read
    /// again; when that fails (a file being replaced, briefly absent) the credentials read last
    /// are kept, as before credentials were re-read, and a warning names the reference.
    pub(super) async fn get(&self) -> Client {
        let Some(source) = &self.source else {
            return self.lock().client.clone();
        };
        match source.load().await {
            Ok(credentials) => self.signing_with(credentials),
            Err(error) => {
                tracing::warn!(
                    error = %error,
                    "could not read the KMS credentials again; using those read last"
                );
                self.lock().client.clone()
            }
        }
    }

    /// The client for `credentials`, rebuilt only when they differ from the current ones.
    fn signing_with(&self, credentials: Credentials) -> Client {
        let mut current = self.lock();
        if current.credentials.as_ref() != Some(&credentials) {
            tracing::info!("the KMS credentials changed; signing with the new ones");
            let config = aws_sdk_kms::config::Builder::from(&self.sdk)
                .credentials_provider(credentials.clone())
                .build();
            *current = Current {
                credentials: Some(credentials),
                client: Client::from_conf(config),
            };
        }
        current.client.clone()
    }

    fn lock(&self) -> MutexGuard<'_, Current> {
        // The guarded state is replaced whole, so a panic elsewhere cannot leave it torn.
        self.current.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use aws_config::BehaviorVersion;
    use aws_sdk_kms::config::Region;
    use secrecy::SecretString;

    use super::*;
    use crate::{MemoryStore, SecretRef};

    fn reference(text: &str) -> SecretRef {
        text.parse().unwrap()
    }

    fn session_token(client: &KmsClient) -> Option<String> {
        client
            .lock()
            .credentials
            .as_ref()
            .and_then(|c| c.session_token().map(str::to_owned))
    }

    /// Temporary credentials expire within hours, and whatever renews them rewrites the files:
    /// read once, the expired ones kept being sent until a restart. The client now signs with
    /// what the references hold at each call, and keeps the last ones when a read fails.
    #[tokio::test]
    async fn each_call_signs_with_what_the_references_hold_now() {
        let memory = Arc::new(MemoryStore::new());
        let secret = reference("env:AWS_SECRET_ROTATING");
        let token = reference("env:AWS_SESSION_ROTATING");
        let hold = |reference: &SecretRef, value: &str| {
            memory
                .insert(reference, SecretString::from(value.to_owned()))
                .unwrap();
        };
        hold(&secret, "rotating-secret-access-key-1");
        hold(&token, "rotating-session-token-1");
        let source = CredentialSource::new(
            KmsCredentials::new("ASIAROTATING", secret.clone()).with_session_token(token.clone()),
            Arc::clone(&memory) as Arc<dyn SecretStore>,
        );
        let first = source.load().await.unwrap();
        let sdk = SdkConfig::builder()
            .region(Region::new("us-east-1"))
            .behavior_version(BehaviorVersion::latest())
            .build();
        let client = KmsClient::new(sdk, Some((source, first)));
        client.get().await;
        assert_eq!(
            session_token(&client).as_deref(),
            Some("rotating-session-token-1")
        );

        hold(&secret, "rotating-secret-access-key-2");
        hold(&token, "rotating-session-token-2");
        client.get().await;
        assert_eq!(
            session_token(&client).as_deref(),
            Some("rotating-session-token-2")
        );
        let secret_now = client.lock().credentials.clone().unwrap();
        assert_eq!(
            secret_now.secret_access_key(),
            "rotating-secret-access-key-2"
        );

        memory.remove(&token);
        client.get().await;
        assert_eq!(
            session_token(&client).as_deref(),
            Some("rotating-session-token-2")
        );
    }
}
