//! The `auth` section of the config.

use std::fmt;

use agents_core::ConfigError;
use agents_secrets::SecretRef;
use serde::{Deserialize, Serialize};

use super::Role;

/// The `auth` section: the API keys the server accepts. No keys (the default) means auth is
/// off.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct AuthConfig {
    /// The accepted keys; empty turns auth off.
    pub keys: Vec<ApiKeyConfig>,
}

/// One accepted API key: who it belongs to, what it may do, and how to recognise it (exactly
/// one of `sha256` or `key`).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ApiKeyConfig {
    /// A name for the key in logs and errors. Never the key itself.
    pub id: String,
    /// The tenant the key's calls belong to (limits and audit are per tenant).
    pub tenant: String,
    /// What the key may do.
    pub roles: Vec<Role>,
    /// The SHA-256 digest of the key, 64 lowercase hex digits (`agents-server auth hash-key`).
    /// The way keys should be stored in a config file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// A secret reference (`env:AGENTS_KEY_CI`, `vault:secret/agents#ci`, ...) resolved
    /// through the secret stores at start-up and then hashed. Never a literal key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

impl AuthConfig {
    /// A section with these keys.
    pub fn new(keys: Vec<ApiKeyConfig>) -> Self {
        Self { keys }
    }

    /// Whether any key is configured (auth is on).
    pub fn is_enabled(&self) -> bool {
        !self.keys.is_empty()
    }

    /// Every problem, each with its full path (`auth.keys[2].sha256`), not only the first.
    pub fn validate(&self) -> Vec<ConfigError> {
        let mut errors = Vec::new();
        let mut ids: Vec<&str> = Vec::new();
        let mut digests: Vec<(usize, &str)> = Vec::new();
        for (i, key) in self.keys.iter().enumerate() {
            let at = format!("auth.keys[{i}]");
            if key.id.trim().is_empty() {
                errors.push(ConfigError::new(
                    format!("{at}.id"),
                    "must not be empty: it names the key in logs and errors",
                ));
            } else if ids.contains(&key.id.as_str()) {
                errors.push(ConfigError::new(
                    format!("{at}.id"),
                    format!("`{}` is used twice; give each key its own id", key.id),
                ));
            }
            ids.push(&key.id);
            if key.tenant.trim().is_empty() {
                errors.push(ConfigError::new(
                    format!("{at}.tenant"),
                    "must not be empty",
                ));
            }
            if key.roles.is_empty() {
                errors.push(ConfigError::new(
                    format!("{at}.roles"),
                    "must list at least one of `read`, `execute`, `admin`",
                ));
            }
            match (&key.sha256, &key.key) {
                (Some(digest), None) => {
                    // The value is never echoed: a raw key pasted here by mistake must not be
                    // printed by `check-config`.
                    if !is_sha256_hex(digest) {
                        errors.push(ConfigError::new(
                            format!("{at}.sha256"),
                            "must be 64 lowercase hex digits, the SHA-256 of the key \
                             (`agents-server auth hash-key` prints it)",
                        ));
                    } else if let Some((j, _)) = digests.iter().find(|(_, d)| *d == digest) {
                        errors.push(ConfigError::new(
                            format!("{at}.sha256"),
                            format!("is the same key as `auth.keys[{j}]`; each key must differ"),
                        ));
                    } else {
                        digests.push((i, digest));
                    }
                }
                (None, Some(reference)) => {
                    if SecretRef::parse(reference).is_err() {
                        // Not echoed either: a literal key here is exactly the mistake.
                        errors.push(ConfigError::new(
                            format!("{at}.key"),
                            "must be a secret reference such as `env:AGENTS_KEY_CI` or \
                             `vault:secret/agents#ci`, never the key itself; to put the key in \
                             the file, store its digest in `sha256` instead",
                        ));
                    }
                }
                _ => errors.push(ConfigError::new(
                    at,
                    "needs exactly one of `sha256` (the key's digest) or `key` (a secret reference)",
                )),
            }
        }
        errors
    }
}

impl ApiKeyConfig {
    /// A key recognised by its SHA-256 digest (64 lowercase hex digits, see [`digest_hex`]).
    ///
    /// [`digest_hex`]: crate::auth::digest_hex
    pub fn with_sha256(
        id: impl Into<String>,
        tenant: impl Into<String>,
        roles: Vec<Role>,
        sha256: impl Into<String>,
    ) -> Self {
        Self {
            id: id.into(),
            tenant: tenant.into(),
            roles,
            sha256: Some(sha256.into()),
            key: None,
        }
    }

    /// A key loaded through the secret stores from `reference` (`env:NAME`, `vault:...`).
    pub fn with_reference(
        id: impl Into<String>,
        tenant: impl Into<String>,
        roles: Vec<Role>,
        reference: impl Into<String>,
    ) -> Self {
        Self {
            id: id.into(),
            tenant: tenant.into(),
            roles,
            sha256: None,
            key: Some(reference.into()),
        }
    }
}

/// Shows the reference only when it is one: a literal key put in `key` by mistake stays hidden.
impl fmt::Debug for ApiKeyConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = self.key.as_deref().map(|reference| {
            if SecretRef::parse(reference).is_ok() {
                reference
            } else {
                "<not a secret reference, hidden>"
            }
        });
        let sha256 = self.sha256.as_deref().map(|digest| {
            if is_sha256_hex(digest) {
                digest
            } else {
                "<not a digest, hidden>"
            }
        });
        f.debug_struct("ApiKeyConfig")
            .field("id", &self.id)
            .field("tenant", &self.tenant)
            .field("roles", &self.roles)
            .field("sha256", &sha256)
            .field("key", &key)
            .finish()
    }
}

/// 64 lowercase hex digits.
pub(super) fn is_sha256_hex(text: &str) -> bool {
    text.len() == 64
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}
