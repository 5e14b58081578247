//! API-key authentication and role checks for the gRPC service.
//!
//! Why it exists: the server runs agents that spend money (model tokens) and read source code,
//! so every call must be tied to a tenant and allowed by that tenant's roles. The failures it
//! prevents:
//!
//! - **Keys leaking from the config.** Keys are configured as SHA-256 digests (`sha256`) or as
//!   secret references (`key = "env:..."`, `vault:...`) resolved through `agents-secrets` at
//!   start-up; either way only the 32-byte digest is kept in memory. [`digest_hex`] computes the
//!   digest an operator writes into the config.
//! - **Timing oracles.** A presented key is hashed and compared against *every* configured
//!   digest with [`subtle::ConstantTimeEq`], without an early exit on a match, so response time
//!   says neither whether a key matched nor which one, nor how many keys there are.
//! - **Keys in logs and errors.** The presented key never appears in a status message, a log
//!   line or a `Debug` output; errors name the key's `id`, which is a label, never the key.
//!
//! Keys are read from `authorization: Bearer <key>` or `x-api-key: <key>`. With no keys
//! configured, auth is off and every call is the anonymous principal (tenant `anonymous`,
//! every role); the server refuses to serve a non-loopback address that way unless
//! `insecure_no_auth` is set.
//!
//! ```toml
//! [[auth.keys]]
//! id = "ci"
//! tenant = "acme"
//! roles = ["execute"]
//! key = "env:AGENTS_KEY_CI"          # a secret reference, hashed at start-up
//!
//! [[auth.keys]]
//! id = "dashboard"
//! tenant = "acme"
//! roles = ["read"]
//! sha256 = "<64 lowercase hex digits from `agents-server auth hash-key`>"
//! ```

mod authenticator;
mod config;
mod error;
mod principal;
#[cfg(test)]
mod tests;

pub use authenticator::{Authenticator, digest_hex};
pub use config::{ApiKeyConfig, AuthConfig};
pub use error::AuthLoadError;
pub use principal::{ANONYMOUS_TENANT, Principal, Role};
