//! AWS KMS: secrets kept in the config as ciphertexts, decrypted at start-up.
//!
//! With KMS the config itself can carry the secret, encrypted (`kms:AQICAHh…`), or point at an
//! encrypted file (`kms-file:/etc/agents/openai.enc`): the ciphertext is useless without
//! `kms:Decrypt` on the key, so it may sit in a repository, and access is granted and revoked in
//! IAM. Values up to 4 KiB can be encrypted by KMS directly (`aws kms encrypt`).
//!
//! Larger values, or fewer bytes through KMS, use envelope encryption: `kms-envelope-file:/path`
//! points at a JSON document
//!
//! ```json
//! {"v":1,"key":"<base64 KMS ciphertext of a 256-bit data key>","nonce":"<base64 12 bytes>","data":"<base64 AES-256-GCM ciphertext+tag>"}
//! ```
//!
//! KMS `Decrypt` recovers the data key (with the configured `key_id` pinning and encryption
//! context), the value is decrypted locally with AES-256-GCM, and the plaintext data key is
//! zeroed. Any file mode is accepted (the document is harmless without `kms:Decrypt`);
//! non-regular files are refused. A document that is not in this format is refused naming the
//! field that is wrong; data that fails authentication is refused as not matching its key
//! (tampered with, or encrypted under another key). [`KmsStore::encrypt_envelope`] writes such
//! documents with KMS `GenerateDataKey`.
//!
//! The failures it prevents: a ciphertext decrypted with the wrong key (set `key_id` and KMS
//! checks it), a KMS outage hanging start-up (`request_timeout_ms` bounds each call, and
//! `max_attempts` the retries), and AWS credentials in the config (the default AWS chain is
//! used, or a secret access key that is itself a reference). For tests and VPC endpoints the
//! endpoint can be overridden.

#[cfg(feature = "aws-kms")]
mod client;
mod config;
#[cfg(feature = "aws-kms")]
mod envelope;
#[cfg(feature = "aws-kms")]
mod store;

pub use config::{KmsConfig, KmsCredentials};
#[cfg(feature = "aws-kms")]
pub use store::KmsStore;
