use std::collections::BTreeMap;

use agents_core::ConfigError;
use serde::{Deserialize, Serialize};

use crate::{Scheme, SecretRef};

/// How the KMS store reaches AWS KMS: region, endpoint override, key pinning, encryption
/// context and credentials (the default AWS chain unless set).
///
/// ```
/// use agents_secrets::KmsConfig;
/// let config = KmsConfig::default()
///     .with_region("eu-west-1")
///     .with_key_id("alias/agents-secrets");
/// config.validate()?;
/// # Ok::<(), agents_core::ConfigError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct KmsConfig {
    /// AWS region; unset, the default chain (`AWS_REGION`, profile, instance metadata) decides.
    pub region: Option<String>,
    /// Endpoint override (`http://127.0.0.1:PORT` for moto, a VPC endpoint in production).
    pub endpoint_url: Option<String>,
    /// Named profile of the shared AWS config files.
    pub profile: Option<String>,
    /// When set, KMS refuses ciphertexts that were not made with this key (id, ARN or alias).
    pub key_id: Option<String>,
    /// Encryption context the ciphertexts were made with (must match exactly).
    pub encryption_context: BTreeMap<String, String>,
    /// Static credentials; unset, the default AWS credential chain is used.
    pub credentials: Option<KmsCredentials>,
    /// Deadline of one KMS call, retries included.
    pub request_timeout_ms: u64,
    /// Attempts per call (1 = no retries).
    pub max_attempts: u32,
}

/// Static AWS credentials whose secret parts are references, never values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct KmsCredentials {
    /// The access key id (not secret by itself).
    pub access_key_id: String,
    /// Where the secret access key is (`env:`, `file:`).
    pub secret_access_key: SecretRef,
    /// Where the session token is, for temporary credentials.
    #[serde(default)]
    pub session_token: Option<SecretRef>,
}

impl Default for KmsConfig {
    fn default() -> Self {
        Self {
            region: None,
            endpoint_url: None,
            profile: None,
            key_id: None,
            encryption_context: BTreeMap::new(),
            credentials: None,
            request_timeout_ms: 10_000,
            max_attempts: 3,
        }
    }
}

impl KmsCredentials {
    /// Credentials with `access_key_id` and the secret access key at `secret_access_key`.
    pub fn new(access_key_id: impl Into<String>, secret_access_key: SecretRef) -> Self {
        Self {
            access_key_id: access_key_id.into(),
            secret_access_key,
            session_token: None,
        }
    }

    /// Adds a session token reference.
    pub fn with_session_token(mut self, session_token: SecretRef) -> Self {
        self.session_token = Some(session_token);
        self
    }
}

impl KmsConfig {
    /// Sets the region.
    pub fn with_region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// Sets the endpoint override.
    pub fn with_endpoint_url(mut self, url: impl Into<String>) -> Self {
        self.endpoint_url = Some(url.into());
        self
    }

    /// Sets the profile.
    pub fn with_profile(mut self, profile: impl Into<String>) -> Self {
        self.profile = Some(profile.into());
        self
    }

    /// Requires ciphertexts made with this key.
    pub fn with_key_id(mut self, key_id: impl Into<String>) -> Self {
        self.key_id = Some(key_id.into());
        self
    }

    /// Adds an encryption context pair.
    pub fn with_context(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.encryption_context.insert(key.into(), value.into());
        self
    }

    /// Sets static credentials.
    pub fn with_credentials(mut self, credentials: KmsCredentials) -> Self {
        self.credentials = Some(credentials);
        self
    }

    /// Sets the per-call deadline.
    pub fn with_request_timeout_ms(mut self, ms: u64) -> Self {
        self.request_timeout_ms = ms;
        self
    }

    /// Sets the attempts per call.
    pub fn with_max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts;
        self
    }

    /// Refuses settings that cannot work; paths are relative to the `kms` section.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(url) = &self.endpoint_url {
            let host = url
                .strip_prefix("https://")
                .or_else(|| url.strip_prefix("http://"));
            if host.is_none_or(|h| h.is_empty() || h.starts_with('/')) {
                return Err(ConfigError::new(
                    "endpoint_url",
                    "must be an http:// or https:// URL with a host",
                ));
            }
        }
        for (path, value) in [
            ("region", &self.region),
            ("profile", &self.profile),
            ("key_id", &self.key_id),
        ] {
            if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
                return Err(ConfigError::new(path, "must not be empty when set"));
            }
        }
        if let Some(credentials) = &self.credentials {
            if credentials.access_key_id.trim().is_empty() {
                return Err(ConfigError::new(
                    "credentials.access_key_id",
                    "must not be empty",
                ));
            }
            let refs = std::iter::once(&credentials.secret_access_key)
                .chain(credentials.session_token.as_ref());
            for reference in refs {
                if matches!(
                    reference.scheme(),
                    Scheme::Kms | Scheme::KmsFile | Scheme::KmsEnvelopeFile
                ) {
                    return Err(ConfigError::new(
                        "credentials",
                        "the credentials for KMS cannot themselves need KMS; use env: or file:",
                    ));
                }
            }
        }
        if self.request_timeout_ms == 0 {
            return Err(ConfigError::new("request_timeout_ms", "must be at least 1"));
        }
        if !(1..=10).contains(&self.max_attempts) {
            return Err(ConfigError::new("max_attempts", "must be between 1 and 10"));
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_validates() {
        let config: KmsConfig = serde_json::from_value(serde_json::json!({
            "region": "us-east-1",
            "endpoint_url": "http://127.0.0.1:5000",
            "encryption_context": {"app": "agents"},
            "credentials": {"access_key_id": "AKIDEXAMPLE", "secret_access_key": "env:AWS_SECRET"}
        }))
        .unwrap();
        assert!(config.validate().is_ok());
        assert_eq!(config.max_attempts, 3);
        assert_eq!(
            config,
            KmsConfig::default()
                .with_region("us-east-1")
                .with_endpoint_url("http://127.0.0.1:5000")
                .with_context("app", "agents")
                .with_credentials(KmsCredentials::new(
                    "AKIDEXAMPLE",
                    "env:AWS_SECRET".parse().unwrap()
                ))
        );
    }

    #[test]
    fn refuses_what_cannot_work() {
        let secret = || -> SecretRef { "env:AWS_SECRET".parse().unwrap() };
        let cases = [
            (
                KmsConfig::default().with_endpoint_url("localhost:5000"),
                "endpoint_url",
            ),
            (KmsConfig::default().with_region(" "), "region"),
            (KmsConfig::default().with_profile(""), "profile"),
            (KmsConfig::default().with_key_id(""), "key_id"),
            (
                KmsConfig::default().with_credentials(KmsCredentials::new(" ", secret())),
                "credentials.access_key_id",
            ),
            (
                KmsConfig::default().with_credentials(
                    KmsCredentials::new("AKID", secret())
                        .with_session_token("kms-file:/x".parse().unwrap()),
                ),
                "credentials",
            ),
            (
                KmsConfig::default().with_credentials(KmsCredentials::new(
                    "AKID",
                    "kms-envelope-file:/x".parse().unwrap(),
                )),
                "credentials",
            ),
            (
                KmsConfig::default().with_request_timeout_ms(0),
                "request_timeout_ms",
            ),
            (KmsConfig::default().with_max_attempts(0), "max_attempts"),
            (KmsConfig::default().with_max_attempts(11), "max_attempts"),
        ];
        for (config, path) in cases {
            assert_eq!(config.validate().unwrap_err().path, path, "{config:?}");
        }
        assert!(
            KmsConfig::default()
                .with_profile("prod")
                .with_key_id("alias/x")
                .validate()
                .is_ok()
        );
    }
}
