//! # agents-secrets
//!
//! Secret stores for the `agents` runtime: one [`SecretStore`] trait over environment
//! variables, files, Vault (KV v2) and AWS KMS, a [`CachedStore`] in front of them, and every
//! loaded value registered with [`agents_core::Redactor::global`] so it is masked wherever it
//! would be printed.
//!
//! Configs hold [`SecretRef`]s, never secrets; values are [`secrecy::SecretString`] from the
//! backend to the moment of use, and no `Debug`, `Display` or error of this crate shows one.
//!
//! | piece | what it prevents |
//! |-------|------------------|
//! | [`SecretRef`] | secrets in config files; typos found at the first request instead of at start-up |
//! | `EnvStore`, `FileStore` | trusting a key file every user of the machine can read |
//! | `VaultStore` | tokens expiring under load; credentials in the config; start-up blocked by an outage |
//! | `KmsStore` | plaintext secrets at rest in configs and images |
//! | [`CachedStore`] | a backend outage failing every request; a request per secret read; stampedes |
//! | [`SecretRouter`] | a reference sent to the wrong backend |
//! | [`SecretError`] | secrets in error messages: errors name the reference and the backend only |
//!
//! ## Secret references
//!
//! | syntax | meaning |
//! |--------|---------|
//! | `env:NAME` | the environment variable `NAME` |
//! | `file:/abs/path` | the file's content, one trailing newline dropped; mode must be `0600`/`0400` |
//! | `vault:mount/path#key` | key `key` of the latest version of KV v2 secret `path` in mount `mount` |
//! | `vault:mount/path?version=N#key` | the same, at version `N` |
//! | `kms:BASE64` | the AWS KMS ciphertext `BASE64` (standard alphabet), decrypted |
//! | `kms-file:/abs/path` | a KMS ciphertext in a file (raw bytes or base64 text), decrypted |
//! | `kms-envelope-file:/abs/path` | a KMS envelope in a file: `{"v":1,"key":…,"nonce":…,"data":…}`, the data key decrypted by KMS, the value by AES-256-GCM |
//!
//! Values shorter than [`agents_core::MIN_SECRET_LEN`] (4) bytes are refused
//! ([`SecretErrorKind::InvalidValue`]): the redactor cannot mask them without masking ordinary
//! text, so they could not be kept out of logs.
//!
//! ## Features
//!
//! | feature | default | what it adds |
//! |---------|---------|--------------|
//! | `env` | yes | `EnvStore` (`env:`) and `FileStore` (`file:`) |
//! | `vault` | | `VaultStore` (`vault:`): KV v2, token and AppRole auth, renewal, namespaces, TLS (vaultrs) |
//! | `aws-kms` | | `KmsStore` (`kms:`, `kms-file:`, `kms-envelope-file:`): KMS decryption and envelopes (aws-sdk-kms, aes-gcm) |
//! | `full` | | all of the above |
//!
//! Without a feature its config section still parses, and [`SecretsConfig::validate`] says
//! which feature to enable.
//!
//! ## Example
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # #[cfg(feature = "env")] { // env: needs the `env` feature
//! use agents_secrets::{SecretRef, SecretStore, SecretsConfig};
//! use secrecy::ExposeSecret;
//!
//! // Usually the `secrets` section of the runtime's config file.
//! let config: SecretsConfig = serde_json::from_value(serde_json::json!({
//!     "cache": {"ttl_ms": 300000, "refresh_ahead_ms": 60000}
//! }))?;
//! let secrets = config.build().await?;
//!
//! let reference: SecretRef = "env:CARGO_MANIFEST_DIR".parse()?;
//! let value = secrets.get(&reference).await?;
//! assert!(value.expose_secret().ends_with("agents-secrets"));
//! // Registered with the redactor: masked in anything that is printed.
//! let line = format!("loaded {}", value.expose_secret());
//! assert_eq!(agents_core::redact(&line), "loaded ***");
//! # }
//! # Ok(())
//! # }
//! ```
//!
//! MSRV: Rust 1.95.

// Helpers the backends share (error constructors, `admit`, file reading) are partly unused in
// builds that leave backends out; the all-features build, which CI lints, still catches real
// dead code.
#![cfg_attr(
    not(all(feature = "env", feature = "vault", feature = "aws-kms")),
    allow(dead_code)
)]

mod cache;
mod error;
#[cfg(any(feature = "env", feature = "vault", feature = "aws-kms"))]
mod fs;
mod kms;
#[cfg(feature = "env")]
mod local;
mod memory;
mod reference;
mod router;
mod store;
#[cfg(test)]
mod testing;
mod vault;

pub use cache::{CacheConfig, CacheStats, CachedStore};
pub use error::{Backend, SecretError, SecretErrorKind};
#[cfg(feature = "aws-kms")]
pub use kms::KmsStore;
pub use kms::{KmsConfig, KmsCredentials};
#[cfg(feature = "env")]
pub use local::{EnvStore, FileStore};
pub use memory::MemoryStore;
pub use reference::{Scheme, SecretRef};
pub use router::{SecretRouter, SecretsConfig};
pub use store::{SecretStore, StoreHealth};
#[cfg(feature = "vault")]
pub use vault::{RenewalHandle, TokenStatus, VaultStore};
pub use vault::{VaultAuth, VaultConfig, VaultTls};

/// Re-exported: every value is one, and callers need `ExposeSecret` to use it.
pub use secrecy;
