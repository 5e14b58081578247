//! One store for every scheme, and the one place the whole stack is assembled.
//!
//! Callers hold one `Arc<dyn SecretStore>` and pass it any reference; the router picks the
//! store by scheme. A reference whose store is not configured (or not compiled in) fails with
//! `Unsupported`, naming the config section or crate feature that is missing, rather than being
//! sent to the wrong backend. [`SecretsConfig::build`] writes down the assembly order once:
//! local stores first, KMS with credentials from them, Vault with credentials from both, the
//! cache in front of all.

mod config;
mod dispatch;

pub use config::SecretsConfig;
pub use dispatch::SecretRouter;
