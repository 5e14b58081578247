//! When a token must be renewed: pure arithmetic over the lease, tested with a paused clock.

use std::time::Duration;

use tokio::time::Instant;

/// What the store knows about its current token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Lease {
    /// When the lease was granted (login, lookup or renewal).
    pub(super) granted: Instant,
    /// Its length; `None` for tokens that never expire (root tokens).
    pub(super) ttl: Option<Duration>,
    /// Whether Vault accepts renewals of it.
    pub(super) renewable: bool,
}

/// What to do about the token before using it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Upkeep {
    /// Nothing: it is valid and not yet due.
    None,
    /// Renew (or log in again) now; it is still valid.
    Renew,
    /// Get a new token: there is none, or it has expired.
    Authenticate,
}

impl Lease {
    pub(super) fn new(granted: Instant, ttl_seconds: u64, renewable: bool) -> Self {
        Self {
            granted,
            ttl: (ttl_seconds > 0).then(|| Duration::from_secs(ttl_seconds)),
            renewable,
        }
    }

    pub(super) fn expires_at(&self) -> Option<Instant> {
        self.ttl.map(|ttl| self.granted + ttl)
    }

    /// When the lease is due for renewal: `percent` of it passed. `None` if it never expires.
    pub(super) fn due_at(&self, percent: u8) -> Option<Instant> {
        self.ttl
            .map(|ttl| self.granted + ttl.mul_f64(f64::from(percent) / 100.0))
    }

    /// `relogin` says whether a new token can be had without a human (AppRole): then a
    /// non-renewable lease is replaced when due rather than left to expire.
    pub(super) fn upkeep(&self, now: Instant, percent: u8, relogin: bool) -> Upkeep {
        match (self.expires_at(), self.due_at(percent)) {
            (Some(expiry), _) if now >= expiry => Upkeep::Authenticate,
            (_, Some(due)) if now >= due && (self.renewable || relogin) => Upkeep::Renew,
            _ => Upkeep::None,
        }
    }

    /// When the renewal task should look again.
    pub(super) fn next_check(&self, now: Instant, percent: u8, relogin: bool) -> Instant {
        let at = if self.renewable || relogin {
            self.due_at(percent)
        } else {
            self.expires_at()
        };
        at.map_or(now + IDLE_CHECK, |at| at.max(now))
    }
}

/// How often a token without expiry is looked at (it may be revoked and replaced by a new one
/// from the same reference).
pub(super) const IDLE_CHECK: Duration = Duration::from_secs(300);

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn renewal_is_due_before_expiry() {
        let start = Instant::now();
        let lease = Lease::new(start, 60, true);
        assert_eq!(lease.upkeep(start, 67, false), Upkeep::None);
        tokio::time::advance(Duration::from_millis(40_100)).await;
        assert_eq!(lease.upkeep(Instant::now(), 67, false), Upkeep::None);
        tokio::time::advance(Duration::from_millis(100)).await;
        assert_eq!(lease.upkeep(Instant::now(), 67, false), Upkeep::Renew);
        assert_eq!(lease.next_check(Instant::now(), 67, false), Instant::now());
        tokio::time::advance(Duration::from_secs(20)).await;
        assert_eq!(
            lease.upkeep(Instant::now(), 67, false),
            Upkeep::Authenticate
        );
    }

    #[tokio::test(start_paused = true)]
    async fn non_renewable_and_eternal_tokens() {
        let start = Instant::now();
        let fixed = Lease::new(start, 100, false);
        // Nothing to renew: left until expiry, unless a new login is possible.
        tokio::time::advance(Duration::from_secs(80)).await;
        let now = Instant::now();
        assert_eq!(fixed.upkeep(now, 50, false), Upkeep::None);
        assert_eq!(fixed.upkeep(now, 50, true), Upkeep::Renew);
        assert_eq!(
            fixed.next_check(start, 50, false),
            start + Duration::from_secs(100)
        );
        assert_eq!(
            fixed.next_check(start, 50, true),
            start + Duration::from_secs(50)
        );
        let root = Lease::new(start, 0, false);
        assert_eq!(root.expires_at(), None);
        assert_eq!(root.upkeep(now, 50, true), Upkeep::None);
        assert_eq!(root.next_check(now, 50, true), now + IDLE_CHECK);
    }
}
