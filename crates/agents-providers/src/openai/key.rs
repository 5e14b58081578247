//! Where the adapter's API key comes from when it is read on every request.
//!
//! Why: keys rotate. A key read once at start-up keeps being sent after the secret store has a
//! new one, until the process restarts, and every call fails with 401 in between. A
//! [`KeySource`] is asked on each request (behind a cache, in the server's case), and told when
//! the provider refused the key, so that the next request reads it afresh.

use std::fmt;

use agents_core::ProviderError;
use secrecy::SecretString;

/// The current API key of one provider.
///
/// Implementations are asked once per request, so they should answer from memory (a cache in
/// front of the secret store) and load only when their copy is old or was refused.
#[async_trait::async_trait]
pub trait KeySource: Send + Sync + fmt::Debug {
    /// The key to send now.
    ///
    /// # Errors
    /// Why the key could not be read, never the key: the adapter returns the error as the call's
    /// own, so the breaker and the fallback chain act on it (`Unavailable` for a secret store
    /// that cannot be reached).
    async fn key(&self) -> Result<SecretString, ProviderError>;

    /// The provider refused the key just sent (401 or 403): forget any cached copy, so the next
    /// [`key`](Self::key) loads it from the store. Does nothing by default.
    fn refused(&self) {}
}
