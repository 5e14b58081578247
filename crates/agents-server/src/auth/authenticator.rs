//! Recognising a presented API key.

use std::fmt;

use agents_secrets::secrecy::ExposeSecret;
use agents_secrets::{SecretRef, SecretStore};
use sha2::{Digest, Sha256};
use subtle::{Choice, ConditionallySelectable, ConstantTimeEq};
use tonic::Status;
use tonic::metadata::MetadataMap;

use super::config::is_sha256_hex;
use super::{AuthConfig, AuthLoadError, Principal};

/// The message for a call that sent no key.
const MISSING: &str = "missing API key: send `authorization: Bearer <key>` or `x-api-key`";
/// The message for a key that matches none configured.
const INVALID: &str = "invalid API key";

/// The SHA-256 digest of `key` as 64 lowercase hex digits: what goes into
/// `auth.keys[].sha256` (exposed as `agents-server auth hash-key`).
pub fn digest_hex(key: &str) -> String {
    hex::encode(sha256(key.as_bytes()))
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Checks presented API keys against the configured ones.
///
/// Holds only the keys' SHA-256 digests and who they belong to; the keys themselves (and the
/// secret values behind references) are dropped once hashed at [`load`](Self::load). Keys
/// loaded by reference are read once: rotating one means restarting the server.
pub struct Authenticator {
    keys: Vec<StoredKey>,
}

struct StoredKey {
    digest: [u8; 32],
    principal: Principal,
}

impl Authenticator {
    /// Builds the authenticator for `config`: validates it, resolves every `key` reference
    /// through `secrets` and hashes it. With no keys configured, auth is off.
    ///
    /// # Errors
    /// [`AuthLoadError::Config`] when the section is invalid, [`AuthLoadError::Secret`] when a
    /// reference cannot be resolved, [`AuthLoadError::DuplicateKey`] when two entries are the
    /// same key.
    pub async fn load(
        config: &AuthConfig,
        secrets: &dyn SecretStore,
    ) -> Result<Self, AuthLoadError> {
        let errors = config.validate();
        if !errors.is_empty() {
            return Err(AuthLoadError::Config { errors });
        }
        let mut keys: Vec<StoredKey> = Vec::with_capacity(config.keys.len());
        for entry in &config.keys {
            let digest = match (&entry.sha256, &entry.key) {
                (Some(digest), None) => decode_digest(digest),
                (None, Some(reference)) => {
                    let secret_error = |source| AuthLoadError::Secret {
                        key_id: entry.id.clone(),
                        source,
                    };
                    let reference = SecretRef::parse(reference).map_err(secret_error)?;
                    let value = secrets.get(&reference).await.map_err(secret_error)?;
                    Some(sha256(value.expose_secret().as_bytes()))
                }
                _ => None,
            };
            // `validate` has refused anything else; keep the invariant without a panic.
            let Some(digest) = digest else {
                return Err(AuthLoadError::Config {
                    errors: vec![agents_core::ConfigError::new(
                        format!("auth.keys[{}]", keys.len()),
                        "needs exactly one of `sha256` or `key`",
                    )],
                });
            };
            if let Some(first) = keys.iter().find(|k| k.digest == digest) {
                return Err(AuthLoadError::DuplicateKey {
                    first: first.principal.key_id().to_owned(),
                    second: entry.id.clone(),
                });
            }
            keys.push(StoredKey {
                digest,
                principal: Principal::new(&entry.id, &entry.tenant, entry.roles.clone()),
            });
        }
        if !keys.is_empty() {
            tracing::info!(keys = keys.len(), "API key authentication is on");
        }
        Ok(Self { keys })
    }

    /// An authenticator with auth off: every call is [`Principal::anonymous`].
    pub fn disabled() -> Self {
        Self { keys: Vec::new() }
    }

    /// Whether keys are required (at least one is configured).
    pub fn is_enabled(&self) -> bool {
        !self.keys.is_empty()
    }

    /// How many keys are accepted.
    pub fn key_count(&self) -> usize {
        self.keys.len()
    }

    /// Who sent the call, from `authorization: Bearer <key>` (preferred) or `x-api-key: <key>`.
    ///
    /// The presented key is hashed and compared with every configured digest in constant time,
    /// without stopping at a match. With auth off, the caller is [`Principal::anonymous`].
    ///
    /// # Errors
    /// `UNAUTHENTICATED` when no key was sent or it matches no configured key. The message
    /// never contains the presented key.
    pub fn authenticate(&self, metadata: &MetadataMap) -> Result<Principal, Status> {
        if !self.is_enabled() {
            return Ok(Principal::anonymous());
        }
        let presented = presented_key(metadata).ok_or_else(|| Status::unauthenticated(MISSING))?;
        let presented = sha256(presented);
        let mut found = Choice::from(0);
        let mut index = 0u64;
        for (i, stored) in self.keys.iter().enumerate() {
            let matched = stored.digest[..].ct_eq(&presented[..]);
            index.conditional_assign(&(i as u64), matched);
            found |= matched;
        }
        if bool::from(found) {
            let principal = usize::try_from(index)
                .ok()
                .and_then(|i| self.keys.get(i))
                .map(|stored| stored.principal.clone());
            principal.ok_or_else(|| Status::unauthenticated(INVALID))
        } else {
            Err(Status::unauthenticated(INVALID))
        }
    }
}

/// The key a call presents: the `Bearer` credential of `authorization`, else `x-api-key`.
/// Empty values count as none.
fn presented_key(metadata: &MetadataMap) -> Option<&[u8]> {
    const BEARER: &[u8] = b"bearer ";
    let bearer = metadata.get("authorization").and_then(|value| {
        let bytes = value.as_bytes();
        let (scheme, rest) = bytes.split_at_checked(BEARER.len())?;
        scheme
            .eq_ignore_ascii_case(BEARER)
            .then(|| rest.trim_ascii())
    });
    bearer
        .filter(|key| !key.is_empty())
        .or_else(|| {
            metadata
                .get("x-api-key")
                .map(|value| value.as_bytes().trim_ascii())
        })
        .filter(|key| !key.is_empty())
}

fn decode_digest(text: &str) -> Option<[u8; 32]> {
    if !is_sha256_hex(text) {
        return None;
    }
    let mut digest = [0u8; 32];
    hex::decode_to_slice(text, &mut digest).ok()?;
    Some(digest)
}

/// Shows the keys' ids and tenants, never their digests.
impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys: Vec<(&str, &str)> = self
            .keys
            .iter()
            .map(|k| (k.principal.key_id(), k.principal.tenant()))
            .collect();
        f.debug_struct("Authenticator")
            .field("enabled", &self.is_enabled())
            .field("keys", &keys)
            .finish()
    }
}
