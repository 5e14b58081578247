use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use secrecy::SecretString;
use tokio::time::Instant;

use super::CacheConfig;
use crate::store::sealed;
use crate::{Backend, SecretError, SecretRef, SecretStore, StoreHealth};

/// Caches another store's values: each is served until `ttl_ms` old, reloaded in the background
/// during the last `refresh_ahead_ms`, loaded once at a time per reference and within
/// `fetch_timeout_ms`; a failed load's error is given to the requests of the next
/// `error_ttl_ms` without asking the store again. See [`CacheConfig`] for every setting.
pub struct CachedStore {
    shared: Arc<Shared>,
}

/// Counters since the cache was built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct CacheStats {
    /// Requests served from memory.
    pub hits: u64,
    /// Loads from the store behind the cache on the request path.
    pub misses: u64,
    /// Background loads started by refresh-ahead.
    pub refreshes: u64,
    /// Expired values served because the store was unreachable.
    pub stale_served: u64,
    /// Requests answered from a remembered failed load (`error_ttl_ms`), without asking the
    /// store again.
    pub errors_remembered: u64,
    /// References held now.
    pub entries: usize,
}

struct Shared {
    inner: Arc<dyn SecretStore>,
    ttl: Duration,
    refresh_ahead: Duration,
    stale_if_error: Duration,
    fetch_timeout: Duration,
    error_ttl: Duration,
    max_entries: usize,
    slots: Mutex<HashMap<SecretRef, Slot>>,
    hits: AtomicU64,
    misses: AtomicU64,
    refreshes: AtomicU64,
    stale_served: AtomicU64,
    errors_remembered: AtomicU64,
}

/// One reference's entry.
struct Slot {
    value: Option<Cached>,
    /// The last load's error, kept for `error_ttl` so that requests behind a hung or refusing
    /// store get it at once instead of each waiting for a load of their own.
    failure: Option<Failure>,
    /// A refresh-ahead load is running.
    refreshing: bool,
    /// Held by whoever loads this reference, so concurrent misses make one load.
    loading: Arc<tokio::sync::Mutex<()>>,
}

struct Cached {
    value: SecretString,
    loaded_at: Instant,
}

struct Failure {
    error: SecretError,
    at: Instant,
}

enum Plan {
    Serve(SecretString),
    ServeAndRefresh(SecretString, Arc<tokio::sync::Mutex<()>>),
    /// A load failed within `error_ttl`: its error, without asking the store again.
    Failed(SecretError),
    Load(Arc<tokio::sync::Mutex<()>>),
}

impl CachedStore {
    /// Caches `inner` with `config`.
    ///
    /// # Errors
    /// [`SecretError::Config`] when `config` does not validate.
    pub fn new(inner: Arc<dyn SecretStore>, config: CacheConfig) -> Result<Self, SecretError> {
        config.validate().map_err(|e| e.within("cache"))?;
        Ok(Self {
            shared: Arc::new(Shared {
                inner,
                ttl: Duration::from_millis(config.ttl_ms),
                refresh_ahead: Duration::from_millis(config.refresh_ahead_window_ms()),
                stale_if_error: Duration::from_millis(config.stale_if_error_ms),
                fetch_timeout: Duration::from_millis(config.fetch_timeout_ms),
                error_ttl: Duration::from_millis(config.error_ttl_ms),
                max_entries: config.max_entries,
                slots: Mutex::new(HashMap::new()),
                hits: AtomicU64::new(0),
                misses: AtomicU64::new(0),
                refreshes: AtomicU64::new(0),
                stale_served: AtomicU64::new(0),
                errors_remembered: AtomicU64::new(0),
            }),
        })
    }

    /// Drops the cached value of `reference`, and any remembered failure, so the next request
    /// loads it: for a caller that learned the value is no longer valid (an upstream answered
    /// 401 with it).
    pub fn invalidate(&self, reference: &SecretRef) {
        if let Some(slot) = self.shared.slots().get_mut(reference) {
            slot.value = None;
            slot.failure = None;
        }
    }

    /// Drops every cached value.
    pub fn clear(&self) {
        self.shared.slots().clear();
    }

    /// Counters since the cache was built.
    pub fn stats(&self) -> CacheStats {
        let s = &self.shared;
        CacheStats {
            hits: s.hits.load(Ordering::Relaxed),
            misses: s.misses.load(Ordering::Relaxed),
            refreshes: s.refreshes.load(Ordering::Relaxed),
            stale_served: s.stale_served.load(Ordering::Relaxed),
            errors_remembered: s.errors_remembered.load(Ordering::Relaxed),
            entries: s.slots().values().filter(|s| s.value.is_some()).count(),
        }
    }

    fn plan(&self, reference: &SecretRef, now: Instant) -> Plan {
        let shared = &self.shared;
        let mut slots = shared.slots();
        if !slots.contains_key(reference) {
            shared.make_room(&mut slots);
        }
        let slot = slots.entry(reference.clone()).or_insert_with(Slot::new);
        let fresh = slot
            .value
            .as_ref()
            .filter(|cached| now.saturating_duration_since(cached.loaded_at) < shared.ttl);
        let Some(cached) = fresh else {
            return match shared.recent_failure(slot, now) {
                Some(error) => Plan::Failed(error),
                None => Plan::Load(Arc::clone(&slot.loading)),
            };
        };
        let age = now.saturating_duration_since(cached.loaded_at);
        let value = cached.value.clone();
        let refresh_from = shared.ttl - shared.refresh_ahead;
        if !shared.refresh_ahead.is_zero() && age >= refresh_from && !slot.refreshing {
            slot.refreshing = true;
            return Plan::ServeAndRefresh(value, Arc::clone(&slot.loading));
        }
        Plan::Serve(value)
    }

    /// Loads on the request path, once for all concurrent callers of one reference.
    async fn load(
        &self,
        reference: &SecretRef,
        loading: Arc<tokio::sync::Mutex<()>>,
    ) -> Result<SecretString, SecretError> {
        let shared = &self.shared;
        let _loading = loading.lock().await;
        // Whoever held the lock before us may have loaded it, or failed to.
        if let Some(value) = shared.cached_within(reference, shared.ttl) {
            shared.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(value);
        }
        if let Some(error) = shared.failed_recently(reference) {
            return shared.answer_remembered(reference, error);
        }
        shared.misses.fetch_add(1, Ordering::Relaxed);
        match shared.load_from_inner(reference).await {
            Ok(value) => {
                shared.store(reference, value.clone());
                Ok(value)
            }
            Err(error) => {
                shared.remember_failure(reference, &error);
                match shared.stale_for(reference, &error) {
                    Some(value) => {
                        tracing::warn!(
                            reference = %reference,
                            error = %error,
                            "secret store unreachable; serving the expired cached value"
                        );
                        Ok(value)
                    }
                    None => Err(error),
                }
            }
        }
    }

    fn spawn_refresh(&self, reference: &SecretRef, loading: Arc<tokio::sync::Mutex<()>>) {
        let shared = Arc::clone(&self.shared);
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            // No runtime to run it on: the value is reloaded on the request path at expiry.
            shared.finish_refresh(reference);
            return;
        };
        shared.refreshes.fetch_add(1, Ordering::Relaxed);
        let reference = reference.clone();
        runtime.spawn(async move {
            let _loading = loading.lock().await;
            let result = shared.load_from_inner(&reference).await;
            match result {
                Ok(value) => {
                    tracing::debug!(reference = %reference, "secret refreshed ahead of expiry");
                    shared.store(&reference, value);
                }
                Err(error) => {
                    tracing::warn!(
                        reference = %reference,
                        error = %error,
                        "refreshing a secret ahead of expiry failed; the cached value is served until its TTL"
                    );
                    shared.remember_failure(&reference, &error);
                }
            }
            shared.finish_refresh(&reference);
        });
    }
}

impl Shared {
    fn slots(&self) -> MutexGuard<'_, HashMap<SecretRef, Slot>> {
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn cached_within(&self, reference: &SecretRef, max_age: Duration) -> Option<SecretString> {
        let slots = self.slots();
        let cached = slots.get(reference)?.value.as_ref()?;
        (cached.loaded_at.elapsed() < max_age).then(|| cached.value.clone())
    }

    async fn load_from_inner(&self, reference: &SecretRef) -> Result<SecretString, SecretError> {
        match tokio::time::timeout(self.fetch_timeout, self.inner.get(reference)).await {
            Ok(result) => result,
            Err(_) => Err(SecretError::unreachable(
                reference,
                Backend::Cache,
                format!(
                    "the store behind the cache did not answer within {} ms",
                    self.fetch_timeout.as_millis()
                ),
            )),
        }
    }

    fn store(&self, reference: &SecretRef, value: SecretString) {
        let mut slots = self.slots();
        if !slots.contains_key(reference) {
            self.make_room(&mut slots);
        }
        let slot = slots.entry(reference.clone()).or_insert_with(Slot::new);
        slot.value = Some(Cached {
            value,
            loaded_at: Instant::now(),
        });
        slot.failure = None;
    }

    /// Keeps a failed load's error for `error_ttl`. A refusal (not found, denied, invalid) also
    /// means the cached value must not be served again; an unreachable backend says nothing
    /// about the value.
    fn remember_failure(&self, reference: &SecretRef, error: &SecretError) {
        let mut slots = self.slots();
        let Some(slot) = slots.get_mut(reference) else {
            return;
        };
        if !error.is_retryable() {
            slot.value = None;
        }
        if !self.error_ttl.is_zero() {
            slot.failure = Some(Failure {
                error: error.clone(),
                at: Instant::now(),
            });
        }
    }

    /// The error of a load that failed less than `error_ttl` ago, if any.
    fn recent_failure(&self, slot: &Slot, now: Instant) -> Option<SecretError> {
        let failure = slot.failure.as_ref()?;
        (now.saturating_duration_since(failure.at) < self.error_ttl).then(|| failure.error.clone())
    }

    fn failed_recently(&self, reference: &SecretRef) -> Option<SecretError> {
        let slots = self.slots();
        self.recent_failure(slots.get(reference)?, Instant::now())
    }

    /// A remembered failure's answer: the expired value when `stale_if_error` allows it, else
    /// the error. Not logged: the load that failed was.
    fn answer_remembered(
        &self,
        reference: &SecretRef,
        error: SecretError,
    ) -> Result<SecretString, SecretError> {
        self.errors_remembered.fetch_add(1, Ordering::Relaxed);
        self.stale_for(reference, &error).ok_or(error)
    }

    /// The expired value, while the backend is unreachable and `stale_if_error` allows it.
    fn stale_for(&self, reference: &SecretRef, error: &SecretError) -> Option<SecretString> {
        if !error.is_retryable() || self.stale_if_error.is_zero() {
            return None;
        }
        let value = self.cached_within(reference, self.ttl + self.stale_if_error)?;
        self.stale_served.fetch_add(1, Ordering::Relaxed);
        Some(value)
    }

    fn finish_refresh(&self, reference: &SecretRef) {
        if let Some(slot) = self.slots().get_mut(reference) {
            slot.refreshing = false;
        }
    }

    /// Keeps the map within `max_entries` before a new reference is added: empty slots go
    /// first, then the value loaded longest ago.
    fn make_room(&self, slots: &mut HashMap<SecretRef, Slot>) {
        while slots.len() >= self.max_entries {
            let victim = slots
                .iter()
                .min_by_key(|(_, slot)| slot.value.as_ref().map(|c| c.loaded_at))
                .map(|(reference, _)| reference.clone());
            match victim {
                Some(reference) => {
                    slots.remove(&reference);
                }
                None => return,
            }
        }
    }
}

impl Slot {
    fn new() -> Self {
        Self {
            value: None,
            failure: None,
            refreshing: false,
            loading: Arc::new(tokio::sync::Mutex::new(())),
        }
    }
}

impl fmt::Debug for CachedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachedStore")
            .field("inner", &self.shared.inner)
            .field("ttl", &self.shared.ttl)
            .field("refresh_ahead", &self.shared.refresh_ahead)
            .field("stats", &self.stats())
            .finish()
    }
}

impl sealed::Sealed for CachedStore {}

#[async_trait::async_trait]
impl SecretStore for CachedStore {
    async fn get(&self, reference: &SecretRef) -> Result<SecretString, SecretError> {
        match self.plan(reference, Instant::now()) {
            Plan::Serve(value) => {
                self.shared.hits.fetch_add(1, Ordering::Relaxed);
                Ok(value)
            }
            Plan::ServeAndRefresh(value, loading) => {
                self.shared.hits.fetch_add(1, Ordering::Relaxed);
                self.spawn_refresh(reference, loading);
                Ok(value)
            }
            Plan::Failed(error) => self.shared.answer_remembered(reference, error),
            Plan::Load(loading) => self.load(reference, loading).await,
        }
    }

    async fn health(&self) -> StoreHealth {
        self.shared.inner.health().await
    }

    /// [`CachedStore::invalidate`], then the store behind the cache's own copy, if it keeps one.
    fn invalidate(&self, reference: &SecretRef) {
        CachedStore::invalidate(self, reference);
        self.shared.inner.invalidate(reference);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::SecretErrorKind;
    use crate::testing::ScriptedStore;
    use secrecy::ExposeSecret;

    fn reference(name: &str) -> SecretRef {
        SecretRef::parse(&format!("vault:kv/{name}#key")).unwrap()
    }

    fn cache(inner: &Arc<ScriptedStore>, config: CacheConfig) -> CachedStore {
        CachedStore::new(Arc::clone(inner) as Arc<dyn SecretStore>, config).unwrap()
    }

    fn config() -> CacheConfig {
        CacheConfig::default()
            .with_ttl_ms(10_000)
            .with_refresh_ahead_ms(2_000)
    }

    async fn value(cache: &CachedStore, r: &SecretRef) -> String {
        cache.get(r).await.unwrap().expose_secret().to_owned()
    }

    /// Lets spawned refresh tasks run to completion (time is paused, nothing sleeps).
    async fn settle() {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn serves_from_memory_until_the_ttl_then_picks_up_rotation() {
        let inner = ScriptedStore::new("rotation-value-1");
        let cache = cache(&inner, config().with_refresh_ahead_ms(0));
        let r = reference("rot");
        assert_eq!(value(&cache, &r).await, "rotation-value-1");
        inner.set_value("rotation-value-2");
        tokio::time::advance(Duration::from_millis(9_999)).await;
        assert_eq!(value(&cache, &r).await, "rotation-value-1");
        assert_eq!(inner.calls(), 1);
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(value(&cache, &r).await, "rotation-value-2");
        assert_eq!(inner.calls(), 2);
        let stats = cache.stats();
        assert_eq!((stats.hits, stats.misses, stats.entries), (1, 2, 1));
    }

    /// What the OpenBao rotation test used to claim with wall-clock time: after a rotation, the
    /// old value is served until the refresh-ahead window, the refresh brings the new one in
    /// before the TTL, and without refresh-ahead the new one comes right at the TTL.
    #[tokio::test(start_paused = true)]
    async fn rotation_old_value_until_the_ttl_new_value_right_after() {
        let inner = ScriptedStore::new("rotated-value-old");
        let cache = cache(
            &inner,
            CacheConfig::default()
                .with_ttl_ms(1_500)
                .with_refresh_ahead_ms(300),
        );
        let r = reference("rotated");
        assert_eq!(value(&cache, &r).await, "rotated-value-old");
        inner.set_value("rotated-value-new");
        // Before the refresh-ahead window: the old value, from memory.
        tokio::time::advance(Duration::from_millis(1_199)).await;
        assert_eq!(value(&cache, &r).await, "rotated-value-old");
        assert_eq!((inner.calls(), cache.stats().hits), (1, 1));
        // Inside it: still the old value, while one background load fetches the new one.
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(value(&cache, &r).await, "rotated-value-old");
        settle().await;
        assert_eq!(cache.stats().refreshes, 1);
        assert_eq!(value(&cache, &r).await, "rotated-value-new");
        assert_eq!(inner.calls(), 2);

        // Without refresh-ahead: the old value up to the last instant of the TTL, the new
        // one at it, loaded on the request path.
        let inner = ScriptedStore::new("rotated-value-old");
        let cache = super::CachedStore::new(
            Arc::clone(&inner) as Arc<dyn SecretStore>,
            CacheConfig::default()
                .with_ttl_ms(1_500)
                .with_refresh_ahead_ms(0),
        )
        .unwrap();
        assert_eq!(value(&cache, &r).await, "rotated-value-old");
        inner.set_value("rotated-value-new");
        tokio::time::advance(Duration::from_millis(1_499)).await;
        assert_eq!(value(&cache, &r).await, "rotated-value-old");
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(value(&cache, &r).await, "rotated-value-new");
        let stats = cache.stats();
        assert_eq!((stats.hits, stats.misses, stats.refreshes), (1, 2, 0));
    }

    #[tokio::test(start_paused = true)]
    async fn outage_within_the_ttl_fails_no_request() {
        let inner = ScriptedStore::new("outage-value-1");
        let cache = cache(&inner, config());
        let r = reference("outage");
        assert_eq!(value(&cache, &r).await, "outage-value-1");
        inner.fail_with(Some(SecretErrorKind::Unreachable));
        // Inside the refresh window: served, and the failed refresh is only logged.
        tokio::time::advance(Duration::from_millis(8_500)).await;
        assert_eq!(value(&cache, &r).await, "outage-value-1");
        settle().await;
        assert_eq!(value(&cache, &r).await, "outage-value-1");
        settle().await;
        assert!(cache.stats().refreshes >= 1);
        // Past the TTL with no stale window: the outage shows.
        tokio::time::advance(Duration::from_millis(1_500)).await;
        let e = cache.get(&r).await.unwrap_err();
        assert_eq!(e.kind(), SecretErrorKind::Unreachable);
        // Once the store answers again, the first request after `error_ttl_ms` loads.
        inner.fail_with(None);
        tokio::time::advance(Duration::from_millis(1_000)).await;
        assert_eq!(value(&cache, &r).await, "outage-value-1");
    }

    #[tokio::test(start_paused = true)]
    async fn refresh_ahead_replaces_the_value_before_expiry() {
        let inner = ScriptedStore::new("ahead-value-1");
        let cache = cache(&inner, config());
        let r = reference("ahead");
        assert_eq!(value(&cache, &r).await, "ahead-value-1");
        inner.set_value("ahead-value-2");
        tokio::time::advance(Duration::from_millis(7_999)).await;
        assert_eq!(value(&cache, &r).await, "ahead-value-1");
        assert_eq!(cache.stats().refreshes, 0);
        tokio::time::advance(Duration::from_millis(1)).await;
        // Served from memory while one background load runs.
        assert_eq!(value(&cache, &r).await, "ahead-value-1");
        assert_eq!(value(&cache, &r).await, "ahead-value-1");
        settle().await;
        assert_eq!(cache.stats().refreshes, 1);
        assert_eq!(value(&cache, &r).await, "ahead-value-2");
        assert_eq!(inner.calls(), 2);
        // The refreshed value starts a new TTL.
        tokio::time::advance(Duration::from_millis(7_000)).await;
        assert_eq!(value(&cache, &r).await, "ahead-value-2");
        assert_eq!(inner.calls(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn refusal_during_refresh_drops_the_value() {
        let inner = ScriptedStore::new("revoked-value-1");
        let cache = cache(&inner, config());
        let r = reference("revoked");
        value(&cache, &r).await;
        inner.fail_with(Some(SecretErrorKind::PermissionDenied));
        tokio::time::advance(Duration::from_millis(9_000)).await;
        assert_eq!(value(&cache, &r).await, "revoked-value-1");
        settle().await;
        let e = cache.get(&r).await.unwrap_err();
        assert_eq!(e.kind(), SecretErrorKind::PermissionDenied);
    }

    #[tokio::test(start_paused = true)]
    async fn stale_if_error_serves_expired_values_only_when_unreachable() {
        let inner = ScriptedStore::new("stale-value-1");
        let cache = cache(
            &inner,
            config()
                .with_refresh_ahead_ms(0)
                .with_stale_if_error_ms(5_000),
        );
        let r = reference("stale");
        value(&cache, &r).await;
        inner.fail_with(Some(SecretErrorKind::Unreachable));
        tokio::time::advance(Duration::from_millis(12_000)).await;
        assert_eq!(value(&cache, &r).await, "stale-value-1");
        assert_eq!(cache.stats().stale_served, 1);
        tokio::time::advance(Duration::from_millis(3_000)).await;
        assert!(cache.get(&r).await.is_err());
        // A refusal is never papered over, and forgets the value.
        inner.fail_with(None);
        tokio::time::advance(Duration::from_millis(1_000)).await;
        value(&cache, &r).await;
        inner.fail_with(Some(SecretErrorKind::NotFound));
        tokio::time::advance(Duration::from_millis(11_000)).await;
        assert_eq!(
            cache.get(&r).await.unwrap_err().kind(),
            SecretErrorKind::NotFound
        );
        inner.fail_with(Some(SecretErrorKind::Unreachable));
        assert!(cache.get(&r).await.is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_misses_make_one_load() {
        let inner = ScriptedStore::new("herd-value-1");
        inner.set_delay(Duration::from_millis(50));
        let cache = Arc::new(cache(&inner, config()));
        let r = reference("herd");
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let cache = Arc::clone(&cache);
                let r = r.clone();
                tokio::spawn(async move { cache.get(&r).await.map(|v| v.expose_secret().len()) })
            })
            .collect();
        for task in tasks {
            assert_eq!(task.await.unwrap().unwrap(), "herd-value-1".len());
        }
        assert_eq!(inner.calls(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_hung_store_meets_the_deadline() {
        let inner = ScriptedStore::new("hung-value-1");
        inner.set_delay(Duration::from_secs(3_600));
        let cache = cache(&inner, config().with_fetch_timeout_ms(500));
        let e = cache.get(&reference("hung")).await.unwrap_err();
        assert_eq!(e.kind(), SecretErrorKind::Unreachable);
        assert_eq!(e.backend(), Some(Backend::Cache));
        assert!(e.to_string().contains("500 ms"), "{e}");
    }

    /// Requests behind a hung store: one load, and every request fails at its deadline (they
    /// used to queue for a load each, the last waiting `fetch_timeout_ms` times their number).
    /// Until `error_ttl_ms` has passed, requests get the error without asking the store.
    #[tokio::test(start_paused = true)]
    async fn a_failed_load_is_remembered_for_error_ttl() {
        let inner = ScriptedStore::new("remembered-value-1");
        inner.set_delay(Duration::from_secs(3_600));
        let cache = Arc::new(cache(
            &inner,
            config().with_fetch_timeout_ms(500).with_error_ttl_ms(1_000),
        ));
        let r = reference("remembered");
        let start = Instant::now();
        let tasks: Vec<_> = (0..5)
            .map(|_| {
                let cache = Arc::clone(&cache);
                let r = r.clone();
                tokio::spawn(async move { cache.get(&r).await.map(|_| ()).unwrap_err().kind() })
            })
            .collect();
        for task in tasks {
            assert_eq!(task.await.unwrap(), SecretErrorKind::Unreachable);
        }
        // Paused clock: all five ended with the one load's deadline.
        assert_eq!(start.elapsed(), Duration::from_millis(500));
        assert_eq!(inner.calls(), 1);
        assert_eq!(cache.stats().errors_remembered, 4);

        // Within `error_ttl_ms`: the error at once, the store not asked.
        tokio::time::advance(Duration::from_millis(999)).await;
        let e = cache.get(&r).await.unwrap_err();
        assert_eq!(e.kind(), SecretErrorKind::Unreachable);
        assert!(e.to_string().contains("500 ms"), "{e}");
        assert_eq!((inner.calls(), start.elapsed().as_millis()), (1, 1_499));

        // After it: the store is asked again, and a value ends the memory of the failure.
        inner.set_delay(Duration::ZERO);
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(value(&cache, &r).await, "remembered-value-1");
        assert_eq!(inner.calls(), 2);

        // A refusal is remembered too; `invalidate` forgets it (a caller that knows better).
        cache.invalidate(&r);
        inner.fail_with(Some(SecretErrorKind::NotFound));
        assert!(cache.get(&r).await.is_err());
        assert!(cache.get(&r).await.is_err());
        assert_eq!(inner.calls(), 3);
        inner.fail_with(None);
        cache.invalidate(&r);
        assert_eq!(value(&cache, &r).await, "remembered-value-1");
        assert_eq!(inner.calls(), 4);
    }

    /// While a remembered failure says the store is unreachable, `stale_if_error_ms` still
    /// serves the expired value; with `error_ttl_ms` 0 every request asks the store.
    #[tokio::test(start_paused = true)]
    async fn remembered_unreachable_serves_stale_and_zero_remembers_nothing() {
        let inner = ScriptedStore::new("stale-remembered-1");
        let cache = cache(
            &inner,
            config()
                .with_refresh_ahead_ms(0)
                .with_stale_if_error_ms(5_000),
        );
        let r = reference("stale-remembered");
        value(&cache, &r).await;
        inner.fail_with(Some(SecretErrorKind::Unreachable));
        tokio::time::advance(Duration::from_millis(10_000)).await;
        assert_eq!(value(&cache, &r).await, "stale-remembered-1");
        assert_eq!(value(&cache, &r).await, "stale-remembered-1");
        assert_eq!(inner.calls(), 2);
        let stats = cache.stats();
        assert_eq!((stats.stale_served, stats.errors_remembered), (2, 1));

        let inner = ScriptedStore::new("unremembered-1");
        inner.fail_with(Some(SecretErrorKind::Unreachable));
        let cache = super::CachedStore::new(
            Arc::clone(&inner) as Arc<dyn SecretStore>,
            config().with_error_ttl_ms(0),
        )
        .unwrap();
        assert!(cache.get(&r).await.is_err());
        assert!(cache.get(&r).await.is_err());
        assert_eq!((inner.calls(), cache.stats().errors_remembered), (2, 0));
    }

    #[tokio::test(start_paused = true)]
    async fn entries_are_bounded_and_can_be_invalidated() {
        let inner = ScriptedStore::new("bounded-value-1");
        let cache = cache(&inner, config().with_max_entries(2));
        for name in ["a", "b", "c"] {
            value(&cache, &reference(name)).await;
            tokio::time::advance(Duration::from_millis(10)).await;
        }
        assert_eq!(cache.stats().entries, 2);
        // `a` was the oldest and was dropped: loading it again calls the store.
        let calls = inner.calls();
        value(&cache, &reference("c")).await;
        assert_eq!(inner.calls(), calls);
        value(&cache, &reference("a")).await;
        assert_eq!(inner.calls(), calls + 1);
        cache.invalidate(&reference("a"));
        value(&cache, &reference("a")).await;
        assert_eq!(inner.calls(), calls + 2);
        cache.clear();
        assert_eq!(cache.stats().entries, 0);
        let shown = format!("{cache:?}");
        assert!(shown.contains("CachedStore") && !shown.contains("bounded-value-1"));
        assert_eq!(cache.health().await, StoreHealth::Healthy);
        let bad = CachedStore::new(
            Arc::clone(&inner) as Arc<dyn SecretStore>,
            CacheConfig::default().with_ttl_ms(0),
        )
        .unwrap_err();
        assert!(bad.to_string().contains("cache.ttl_ms"), "{bad}");
    }

    #[test]
    fn refresh_without_a_runtime_is_skipped() {
        let inner = ScriptedStore::new("no-runtime-value-1");
        let cache = cache(&inner, config());
        let r = reference("no-runtime");
        let loading = Arc::new(tokio::sync::Mutex::new(()));
        cache.spawn_refresh(&r, loading);
        assert_eq!(cache.stats().refreshes, 0);
    }
}
