//! AWS KMS: secrets kept in the config as ciphertexts, decrypted at start-up.
//!
//! With KMS the config itself can carry the secret, encrypted (`kms:AQICAHh…`), or point at an
//! encrypted file (`kms-file:/etc/agents/openai.enc`): the ciphertext is useless without
//! `kms:Decrypt` on the key, so it may sit in a repository, and access is granted and revoked in
//! IAM. This is envelope encryption with KMS holding the key-encryption key; values up to 4 KiB
//! are encrypted by KMS directly (`aws kms encrypt`).
//!
//! The failures it prevents: a ciphertext decrypted with the wrong key (set `key_id` and KMS
//! checks it), a KMS outage hanging start-up (`request_timeout_ms` bounds each call, and
//! `max_attempts` the retries), and AWS credentials in the config (the default AWS chain is
//! used, or a secret access key that is itself a reference). For tests and VPC endpoints the
//! endpoint can be overridden.

mod config;
#[cfg(feature = "aws-kms")]
mod store;

pub use config::{KmsConfig, KmsCredentials};
#[cfg(feature = "aws-kms")]
pub use store::KmsStore;
