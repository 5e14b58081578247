use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_kms::config::Region;
use aws_sdk_kms::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_kms::primitives::Blob;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use secrecy::{ExposeSecret, SecretString};

use zeroize::Zeroizing;

use super::KmsConfig;
use super::client::{CredentialSource, KmsClient};
use super::envelope::{DATA_KEY_BYTES, Envelope, OpenError};
use crate::error::chain;
use crate::fs::{Privacy, read_file_async};
use crate::reference::{MAX_CIPHERTEXT_BYTES, Target};
use crate::store::{admit, sealed};
use crate::{Backend, SecretError, SecretRef, SecretStore, StoreHealth};

/// Decrypts `kms:`, `kms-file:` and `kms-envelope-file:` references with AWS KMS.
pub struct KmsStore {
    client: KmsClient,
    /// Where KMS is, for messages: the endpoint override or the region.
    at: String,
    key_id: Option<String>,
    encryption_context: BTreeMap<String, String>,
}

impl KmsStore {
    /// Builds the KMS client. `credentials` serves the secret access key and session token
    /// references of `config.credentials`, when set: they are read now, and again before every
    /// KMS call, so that credentials rotated in their files or variables (temporary ones
    /// renewed by a sidecar) are used without a restart. No call to KMS is made yet.
    ///
    /// # Errors
    /// [`SecretError::Config`] when `config` does not validate or no region can be found; the
    /// errors of loading the credential references.
    pub async fn connect(
        config: &KmsConfig,
        credentials: Arc<dyn SecretStore>,
    ) -> Result<Self, SecretError> {
        config.validate().map_err(|e| e.within("kms"))?;
        let timeout = Duration::from_millis(config.request_timeout_ms);
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .timeout_config(
                TimeoutConfig::builder()
                    .operation_timeout(timeout)
                    .connect_timeout(timeout)
                    .build(),
            )
            .retry_config(RetryConfig::standard().with_max_attempts(config.max_attempts));
        if let Some(region) = &config.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some(url) = &config.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        if let Some(profile) = &config.profile {
            loader = loader.profile_name(profile);
        }
        let static_credentials = match &config.credentials {
            Some(references) => {
                // Read now, so that a missing reference fails the start; read again before
                // every call, so that rotated credentials are used (see `client`).
                let source = CredentialSource::new(references.clone(), credentials);
                let first = source.load().await?;
                loader = loader.credentials_provider(first.clone());
                Some((source, first))
            }
            None => None,
        };
        let sdk = loader.load().await;
        let Some(region) = sdk.region() else {
            return Err(SecretError::config(
                "kms.region",
                "no region is configured and none was found in AWS_REGION or the AWS profile",
            ));
        };
        let at = match &config.endpoint_url {
            Some(url) => format!("KMS at {url}"),
            None => format!("KMS in {region}"),
        };
        Ok(Self {
            client: KmsClient::new(sdk, static_credentials),
            at,
            key_id: config.key_id.clone(),
            encryption_context: config.encryption_context.clone(),
        })
    }

    async fn decrypt(
        &self,
        reference: &SecretRef,
        ciphertext: Vec<u8>,
    ) -> Result<SecretString, SecretError> {
        let plaintext = self.decrypt_bytes(reference, ciphertext).await?;
        let text = String::from_utf8(plaintext).map_err(|_| {
            SecretError::invalid_value(reference, Backend::AwsKms, "the plaintext is not UTF-8")
        })?;
        admit(reference, Backend::AwsKms, text)
    }

    /// KMS `Decrypt` with the pinned key and the encryption context.
    async fn decrypt_bytes(
        &self,
        reference: &SecretRef,
        ciphertext: Vec<u8>,
    ) -> Result<Vec<u8>, SecretError> {
        let mut request = self
            .client
            .get()
            .await
            .decrypt()
            .ciphertext_blob(Blob::new(ciphertext))
            .set_key_id(self.key_id.clone());
        for (key, value) in &self.encryption_context {
            request = request.encryption_context(key, value);
        }
        let output = request.send().await.map_err(|e| self.error(e, reference))?;
        let Some(plaintext) = output.plaintext else {
            return Err(SecretError::rejected(
                reference,
                Backend::AwsKms,
                format!("{} returned no plaintext", self.at),
            ));
        };
        Ok(plaintext.into_inner())
    }

    /// Reads the envelope at `path`, has KMS decrypt its data key, and decrypts the value.
    async fn open_envelope(
        &self,
        reference: &SecretRef,
        path: &std::path::Path,
    ) -> Result<SecretString, SecretError> {
        // Like `kms-file:`, an envelope is harmless without kms:Decrypt: any mode will do.
        let content = read_file_async(reference, Backend::AwsKms, path, Privacy::Any).await?;
        let envelope = Envelope::parse(&content).map_err(|e| {
            SecretError::rejected(
                reference,
                Backend::AwsKms,
                format!("{} is not a KMS envelope: {}", path.display(), e.0),
            )
        })?;
        let data_key = Zeroizing::new(self.decrypt_bytes(reference, envelope.key.clone()).await?);
        let plaintext = envelope.open(&data_key).map_err(|e| match e {
            OpenError::KeyLength => SecretError::rejected(
                reference,
                Backend::AwsKms,
                format!(
                    "the data key of {} is not a {}-bit AES key",
                    path.display(),
                    DATA_KEY_BYTES * 8
                ),
            ),
            OpenError::Mismatch => SecretError::rejected(
                reference,
                Backend::AwsKms,
                format!(
                    "the data of {} does not match its key (tampered with, or encrypted with another key)",
                    path.display()
                ),
            ),
        })?;
        drop(data_key);
        let text = std::str::from_utf8(&plaintext).map_err(|_| {
            SecretError::invalid_value(reference, Backend::AwsKms, "the plaintext is not UTF-8")
        })?;
        // The only copy left is the SecretString; `plaintext` is zeroed when dropped.
        admit(reference, Backend::AwsKms, text.to_owned())
    }

    /// Encrypts `plaintext` as a `kms-envelope-file:` document: a fresh 256-bit data key from
    /// KMS `GenerateDataKey` under `key_id`, with this store's encryption context, encrypts it
    /// with AES-256-GCM and a random nonce. The result is
    /// `{"v":1,"key":"<base64 encrypted data key>","nonce":"<base64 12 bytes>","data":"<base64 ciphertext+tag>"}`;
    /// write it to a file and reference it as `kms-envelope-file:/path`.
    ///
    /// # Errors
    /// The errors of KMS `GenerateDataKey` (key missing, access denied, KMS unreachable), named
    /// by `key_id`.
    pub async fn encrypt_envelope(
        &self,
        key_id: &str,
        plaintext: &SecretString,
    ) -> Result<String, SecretError> {
        let what = format!("(envelope for key {key_id})");
        let mut request = self
            .client
            .get()
            .await
            .generate_data_key()
            .key_id(key_id)
            .key_spec(aws_sdk_kms::types::DataKeySpec::Aes256);
        for (key, value) in &self.encryption_context {
            request = request.encryption_context(key, value);
        }
        let output = request.send().await.map_err(|e| self.error(e, &what))?;
        let (Some(data_key), Some(encrypted)) = (output.plaintext, output.ciphertext_blob) else {
            return Err(SecretError::rejected(
                &what,
                Backend::AwsKms,
                format!("{} returned no data key", self.at),
            ));
        };
        let data_key = Zeroizing::new(data_key.into_inner());
        let envelope = Envelope::seal(
            encrypted.into_inner(),
            &data_key,
            plaintext.expose_secret().as_bytes(),
        )
        .map_err(|_| {
            SecretError::rejected(
                &what,
                Backend::AwsKms,
                format!("{} returned a data key that is not 256 bits", self.at),
            )
        })?;
        Ok(envelope.to_json())
    }

    /// Maps an SDK error to ours by the AWS error code, then by HTTP status.
    fn error<E>(&self, error: SdkError<E>, reference: &dyn fmt::Display) -> SecretError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let at = &self.at;
        match &error {
            SdkError::TimeoutError(_) => SecretError::unreachable(
                reference,
                Backend::AwsKms,
                format!("{at} did not answer in time"),
            ),
            SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => SecretError::unreachable(
                reference,
                Backend::AwsKms,
                format!("{at}: {}", chain(&error)),
            ),
            SdkError::ServiceError(service) => {
                let code = service.err().code().unwrap_or("");
                let message = service.err().message().unwrap_or("no message");
                let status = service.raw().status().as_u16();
                let detail = if code.is_empty() {
                    format!("{at}: HTTP {status}: {message}")
                } else {
                    format!("{at}: {code}: {message}")
                };
                match (code, status) {
                    ("NotFoundException", _) | ("", 404) => {
                        SecretError::not_found(reference, Backend::AwsKms, detail)
                    }
                    (
                        "AccessDeniedException"
                        | "UnrecognizedClientException"
                        | "InvalidClientTokenId"
                        | "InvalidSignatureException"
                        | "SignatureDoesNotMatch"
                        | "IncompleteSignature"
                        | "MissingAuthenticationToken"
                        | "ExpiredTokenException",
                        _,
                    )
                    | ("", 401 | 403) => {
                        SecretError::permission_denied(reference, Backend::AwsKms, detail)
                    }
                    (
                        "KMSInternalException"
                        | "KmsInternalException"
                        | "DependencyTimeoutException"
                        | "KeyUnavailableException"
                        | "ThrottlingException"
                        | "ServiceUnavailableException",
                        _,
                    )
                    | (_, 429 | 500..=599) => {
                        SecretError::unreachable(reference, Backend::AwsKms, detail)
                    }
                    _ => SecretError::rejected(reference, Backend::AwsKms, detail),
                }
            }
            _ => SecretError::rejected(
                reference,
                Backend::AwsKms,
                format!("{at}: {}", chain(&error)),
            ),
        }
    }
}

/// A `kms-file:` holds the ciphertext as raw bytes or as base64 text (what the AWS CLI
/// prints); base64 is tried first.
fn ciphertext_from_file(content: Vec<u8>) -> Vec<u8> {
    std::str::from_utf8(&content)
        .ok()
        .map(str::trim)
        .filter(|text| !text.is_empty())
        .and_then(|text| STANDARD.decode(text).ok())
        .unwrap_or(content)
}

impl fmt::Debug for KmsStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KmsStore")
            .field("at", &self.at)
            .field("key_id", &self.key_id)
            .field("encryption_context", &self.encryption_context)
            .finish_non_exhaustive()
    }
}

impl sealed::Sealed for KmsStore {}

#[async_trait::async_trait]
impl SecretStore for KmsStore {
    async fn get(&self, reference: &SecretRef) -> Result<SecretString, SecretError> {
        let ciphertext = match reference.target() {
            Target::Kms(blob) => blob.clone(),
            Target::KmsFile(path) => {
                // A ciphertext is safe to leave readable: without kms:Decrypt it is noise.
                let content =
                    read_file_async(reference, Backend::AwsKms, path, Privacy::Any).await?;
                let blob = ciphertext_from_file(content);
                if blob.is_empty() || blob.len() > MAX_CIPHERTEXT_BYTES {
                    return Err(SecretError::rejected(
                        reference,
                        Backend::AwsKms,
                        format!(
                            "{} does not hold a KMS ciphertext (1 to {MAX_CIPHERTEXT_BYTES} bytes)",
                            path.display()
                        ),
                    ));
                }
                blob
            }
            Target::KmsEnvelopeFile(path) => return self.open_envelope(reference, path).await,
            _ => {
                return Err(SecretError::unsupported(
                    reference,
                    "the KMS store serves only `kms:`, `kms-file:` and `kms-envelope-file:` references",
                ));
            }
        };
        self.decrypt(reference, ciphertext).await
    }

    async fn health(&self) -> StoreHealth {
        let probe = &"(health check)";
        let client = self.client.get().await;
        let result = match &self.key_id {
            Some(key_id) => client
                .describe_key()
                .key_id(key_id)
                .send()
                .await
                .map(drop)
                .map_err(|e| self.error(e, probe)),
            None => client
                .list_keys()
                .limit(1)
                .send()
                .await
                .map(drop)
                .map_err(|e| self.error(e, probe)),
        };
        match result {
            Ok(()) => StoreHealth::Healthy,
            Err(error) => StoreHealth::unhealthy(error.to_string()),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::{KmsCredentials, MemoryStore, SecretErrorKind};

    #[test]
    fn file_content_is_base64_or_raw() {
        assert_eq!(ciphertext_from_file(b"AQID\n".to_vec()), vec![1, 2, 3]);
        assert_eq!(
            ciphertext_from_file(vec![0xff, 0x00, 0x01]),
            vec![0xff, 0x00, 0x01]
        );
        assert_eq!(ciphertext_from_file(b"  \n".to_vec()), b"  \n".to_vec());
    }

    #[tokio::test]
    async fn connect_needs_region_and_credentials() {
        let memory = Arc::new(MemoryStore::new());
        let e = KmsStore::connect(&KmsConfig::default().with_max_attempts(0), memory.clone())
            .await
            .unwrap_err();
        assert!(e.to_string().contains("kms.max_attempts"), "{e}");
        let secret: SecretRef = "env:KMS_UNIT_SECRET".parse().unwrap();
        let config = KmsConfig::default()
            .with_region("us-east-1")
            .with_credentials(KmsCredentials::new("AKIDUNIT", secret.clone()));
        let e = KmsStore::connect(&config, memory.clone())
            .await
            .unwrap_err();
        assert_eq!(e.kind(), SecretErrorKind::NotFound);
        memory
            .insert(&secret, "kms-unit-secret-key".into())
            .unwrap();
        let store = KmsStore::connect(&config.with_key_id("alias/x"), memory)
            .await
            .unwrap();
        let shown = format!("{store:?}");
        assert!(shown.contains("us-east-1") && !shown.contains("kms-unit-secret-key"));
        let r: SecretRef = "env:X".parse().unwrap();
        assert_eq!(
            store.get(&r).await.unwrap_err().kind(),
            SecretErrorKind::Unsupported
        );
    }
}
