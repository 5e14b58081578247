//! Vault and OpenBao: KV v2 secrets, with the token kept alive.
//!
//! Vault is where most teams keep provider keys, and its tokens expire. The failures this module
//! exists to prevent:
//!
//! - **a token that expires under load**: the store renews its token when `renew_at_percent` of
//!   the lease has passed — in the background ([`VaultStore::spawn_token_renewal`]), or without
//!   that task by one read at a time — and an AppRole login is repeated when renewal is no longer
//!   possible;
//! - **reads queued behind a Vault that is down**: a read waits for authentication only when the
//!   token has expired; renewing a still-valid token never holds reads up;
//! - **a secret id or token in the config file**: both are themselves [`SecretRef`]s
//!   (`env:VAULT_TOKEN`, `file:/run/secrets/secret-id`, `kms:…`), resolved through the other
//!   stores, never through Vault itself;
//! - **a revoked or rotated token**: a `permission denied` read looks the token up; if Vault no
//!   longer accepts it, the store logs in again (re-reading the token reference) and retries
//!   once;
//! - **a login storm on a denied path**: if Vault still accepts the token, the denial is the
//!   policy's and is returned as it is; and logins caused by denied reads are at most one every
//!   few seconds (each would mint a token and spend one of the secret id's uses);
//! - **an outage at start-up blocking the process**: the store is built without a network call;
//!   login happens on first use, and [`SecretsConfig::build`] tells a refusal (fail the start)
//!   from an outage (start, and let reads fail until Vault is back);
//! - **hangs**: every HTTP call carries `request_timeout_ms`.
//!
//! [`SecretRef`]: crate::SecretRef
//! [`SecretsConfig::build`]: crate::SecretsConfig::build

mod config;
#[cfg(feature = "vault")]
mod lease;
#[cfg(feature = "vault")]
mod store;

pub use config::{VaultAuth, VaultConfig, VaultTls};
#[cfg(feature = "vault")]
pub use store::{RenewalHandle, TokenStatus, VaultStore};
