use std::path::PathBuf;

use agents_core::ConfigError;
use serde::{Deserialize, Serialize};

use crate::{Scheme, SecretRef};

/// Where Vault is and how the Vault store authenticates to it (token or AppRole, the credential
/// itself a reference), with namespace, TLS, timeout and token renewal settings.
///
/// ```
/// use agents_secrets::{VaultAuth, VaultConfig};
/// let config = VaultConfig::new(
///     "https://vault.internal:8200",
///     VaultAuth::app_role("agents-runtime", "file:/run/secrets/vault-secret-id".parse()?),
/// )
/// .with_namespace("team-a");
/// config.validate()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct VaultConfig {
    /// `https://host:8200` (or `http://` for a local dev server).
    pub address: String,
    /// Vault Enterprise / OpenBao namespace, sent as `X-Vault-Namespace`.
    #[serde(default)]
    pub namespace: Option<String>,
    /// How to get a token.
    pub auth: VaultAuth,
    /// TLS settings for an `https` address.
    #[serde(default)]
    pub tls: VaultTls,
    /// Deadline of one HTTP call to Vault.
    #[serde(default = "default_request_timeout_ms")]
    pub request_timeout_ms: u64,
    /// How much of the token's lease passes before it is renewed, in percent (10 to 90).
    #[serde(default = "default_renew_at_percent")]
    pub renew_at_percent: u8,
    /// How long the renewal task waits after a failed renewal or login before trying again.
    #[serde(default = "default_renew_retry_ms")]
    pub renew_retry_ms: u64,
}

/// How the store authenticates to Vault.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "method", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum VaultAuth {
    /// A token, read from another store (`env:VAULT_TOKEN`, `file:/run/secrets/vault-token`).
    Token {
        /// Where the token is.
        token: SecretRef,
    },
    /// AppRole login: a role id (not secret) and a secret id read from another store.
    #[serde(rename = "approle")]
    AppRole {
        /// Where the AppRole auth method is mounted.
        #[serde(default = "default_approle_mount")]
        mount: String,
        /// The role id.
        role_id: String,
        /// Where the secret id is.
        secret_id: SecretRef,
    },
}

/// TLS settings; the defaults verify the server against the system roots.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct VaultTls {
    /// PEM files of CA certificates to trust, in addition to the system roots.
    pub ca_cert_paths: Vec<PathBuf>,
    /// Accept any server certificate. For local experiments only: anyone on the path can then
    /// read every secret.
    pub skip_verify: bool,
    /// PEM client certificate for mutual TLS (with `client_key_path`).
    pub client_cert_path: Option<PathBuf>,
    /// PEM private key of the client certificate; must be mode 0600 or 0400.
    pub client_key_path: Option<PathBuf>,
}

fn default_request_timeout_ms() -> u64 {
    10_000
}

fn default_renew_at_percent() -> u8 {
    67
}

fn default_renew_retry_ms() -> u64 {
    5_000
}

fn default_approle_mount() -> String {
    "approle".to_owned()
}

impl VaultAuth {
    /// Token auth, the token read from `token`.
    pub fn token(token: SecretRef) -> Self {
        Self::Token { token }
    }

    /// AppRole auth at the default mount `approle`.
    pub fn app_role(role_id: impl Into<String>, secret_id: SecretRef) -> Self {
        Self::AppRole {
            mount: default_approle_mount(),
            role_id: role_id.into(),
            secret_id,
        }
    }

    /// AppRole auth at `mount`.
    pub fn app_role_at(
        mount: impl Into<String>,
        role_id: impl Into<String>,
        secret_id: SecretRef,
    ) -> Self {
        Self::AppRole {
            mount: mount.into(),
            role_id: role_id.into(),
            secret_id,
        }
    }

    /// The reference of the credential this method reads.
    pub fn credential(&self) -> &SecretRef {
        match self {
            Self::Token { token } => token,
            Self::AppRole { secret_id, .. } => secret_id,
        }
    }

    /// `token` or `approle`.
    pub fn method(&self) -> &'static str {
        match self {
            Self::Token { .. } => "token",
            Self::AppRole { .. } => "approle",
        }
    }
}

impl VaultTls {
    /// Trusts the CA certificates in `path` (PEM).
    pub fn with_ca_cert(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_cert_paths.push(path.into());
        self
    }

    /// Accepts any server certificate (local experiments only).
    pub fn with_skip_verify(mut self, skip: bool) -> Self {
        self.skip_verify = skip;
        self
    }

    /// Presents a client certificate.
    pub fn with_client_cert(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.client_cert_path = Some(cert.into());
        self.client_key_path = Some(key.into());
        self
    }

    fn is_set(&self) -> bool {
        *self != Self::default()
    }
}

impl VaultConfig {
    /// Vault at `address`, authenticating with `auth`; other settings at their defaults.
    pub fn new(address: impl Into<String>, auth: VaultAuth) -> Self {
        Self {
            address: address.into(),
            namespace: None,
            auth,
            tls: VaultTls::default(),
            request_timeout_ms: default_request_timeout_ms(),
            renew_at_percent: default_renew_at_percent(),
            renew_retry_ms: default_renew_retry_ms(),
        }
    }

    /// Sets the namespace.
    pub fn with_namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = Some(namespace.into());
        self
    }

    /// Sets the TLS settings.
    pub fn with_tls(mut self, tls: VaultTls) -> Self {
        self.tls = tls;
        self
    }

    /// Sets the HTTP deadline.
    pub fn with_request_timeout_ms(mut self, ms: u64) -> Self {
        self.request_timeout_ms = ms;
        self
    }

    /// Sets when the token is renewed, in percent of its lease.
    pub fn with_renew_at_percent(mut self, percent: u8) -> Self {
        self.renew_at_percent = percent;
        self
    }

    /// Sets the wait after a failed renewal.
    pub fn with_renew_retry_ms(mut self, ms: u64) -> Self {
        self.renew_retry_ms = ms;
        self
    }

    /// Refuses settings that cannot work; paths are relative to the `vault` section.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let https = self.address.starts_with("https://");
        let host = self
            .address
            .strip_prefix("https://")
            .or_else(|| self.address.strip_prefix("http://"));
        if host.is_none_or(|h| h.is_empty() || h.starts_with('/')) {
            return Err(ConfigError::new(
                "address",
                "must be an http:// or https:// URL with a host, e.g. https://vault.internal:8200",
            ));
        }
        if self
            .namespace
            .as_deref()
            .is_some_and(|n| n.trim().is_empty())
        {
            return Err(ConfigError::new("namespace", "must not be empty when set"));
        }
        if self.auth.credential().scheme() == Scheme::Vault {
            return Err(ConfigError::new(
                "auth",
                "the Vault credential cannot itself come from Vault; use env:, file: or kms:",
            ));
        }
        if let VaultAuth::AppRole { mount, role_id, .. } = &self.auth {
            if mount.is_empty() || mount.contains(['/', '?', '#']) {
                return Err(ConfigError::new("auth.mount", "must be one path segment"));
            }
            if role_id.trim().is_empty() {
                return Err(ConfigError::new("auth.role_id", "must not be empty"));
            }
        }
        if self.tls.is_set() && !https {
            return Err(ConfigError::new(
                "tls",
                "TLS settings need an https:// address",
            ));
        }
        if self.tls.client_cert_path.is_some() != self.tls.client_key_path.is_some() {
            return Err(ConfigError::new(
                "tls",
                "client_cert_path and client_key_path go together",
            ));
        }
        if self.request_timeout_ms == 0 {
            return Err(ConfigError::new("request_timeout_ms", "must be at least 1"));
        }
        if !(10..=90).contains(&self.renew_at_percent) {
            return Err(ConfigError::new(
                "renew_at_percent",
                "must be between 10 and 90: later risks expiry, earlier renews needlessly",
            ));
        }
        if self.renew_retry_ms == 0 {
            return Err(ConfigError::new("renew_retry_ms", "must be at least 1"));
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn token() -> VaultAuth {
        VaultAuth::token("env:VAULT_TOKEN".parse().unwrap())
    }

    #[test]
    fn parses_from_json_with_defaults() {
        let config: VaultConfig = serde_json::from_value(serde_json::json!({
            "address": "https://vault:8200",
            "namespace": "team-a",
            "auth": {"method": "approle", "role_id": "r-1", "secret_id": "file:/run/secret-id"},
            "tls": {"ca_cert_paths": ["/etc/ca.pem"]}
        }))
        .unwrap();
        assert!(config.validate().is_ok());
        assert_eq!(config.renew_at_percent, 67);
        assert_eq!(config.request_timeout_ms, 10_000);
        assert!(matches!(&config.auth, VaultAuth::AppRole { mount, .. } if mount == "approle"));
        assert_eq!(config.auth.method(), "approle");
        let config: VaultConfig = serde_json::from_value(serde_json::json!({
            "address": "http://127.0.0.1:8200",
            "auth": {"method": "token", "token": "env:VAULT_TOKEN"}
        }))
        .unwrap();
        assert_eq!(config, VaultConfig::new("http://127.0.0.1:8200", token()));
        assert_eq!(config.auth.method(), "token");
        let bad = serde_json::from_value::<VaultConfig>(serde_json::json!({
            "address": "http://x", "auth": {"method": "token", "token": "s.abcdefgh"}
        }))
        .unwrap_err();
        assert!(!bad.to_string().contains("abcdefgh"), "{bad}");
    }

    #[test]
    fn refuses_what_cannot_work() {
        let base = || VaultConfig::new("https://vault:8200", token());
        let cases = [
            (VaultConfig::new("vault:8200", token()), "address"),
            (VaultConfig::new("https://", token()), "address"),
            (base().with_namespace(" "), "namespace"),
            (
                VaultConfig::new(
                    "https://v",
                    VaultAuth::token("vault:secret/x#token".parse().unwrap()),
                ),
                "auth",
            ),
            (
                VaultConfig::new(
                    "https://v",
                    VaultAuth::app_role_at("a/b", "r", "env:S".parse().unwrap()),
                ),
                "auth.mount",
            ),
            (
                VaultConfig::new(
                    "https://v",
                    VaultAuth::app_role(" ", "env:S".parse().unwrap()),
                ),
                "auth.role_id",
            ),
            (
                VaultConfig::new("http://v", token())
                    .with_tls(VaultTls::default().with_skip_verify(true)),
                "tls",
            ),
            (
                base().with_tls(VaultTls {
                    client_cert_path: Some("/c.pem".into()),
                    ..VaultTls::default()
                }),
                "tls",
            ),
            (base().with_request_timeout_ms(0), "request_timeout_ms"),
            (base().with_renew_at_percent(95), "renew_at_percent"),
            (base().with_renew_at_percent(5), "renew_at_percent"),
            (base().with_renew_retry_ms(0), "renew_retry_ms"),
        ];
        for (config, path) in cases {
            assert_eq!(config.validate().unwrap_err().path, path, "{config:?}");
        }
        let ok = base().with_tls(
            VaultTls::default()
                .with_ca_cert("/ca.pem")
                .with_client_cert("/c.pem", "/k.pem"),
        );
        assert!(ok.validate().is_ok());
    }
}
