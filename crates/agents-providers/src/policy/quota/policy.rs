use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use agents_core::{
    ConfigError, GenerateRequest, Generation, GenerationStream, Provider, ProviderError,
    ProviderHealth, StreamDelta,
};
use futures_util::Stream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use super::ConcurrencyConfig;
use crate::policy::ms;

/// Limits calls in flight to one provider, with a bounded wait queue.
#[derive(Debug)]
pub struct ConcurrencyLimit {
    inner: Arc<dyn Provider>,
    config: ConcurrencyConfig,
    slots: Arc<Semaphore>,
    waiting: Arc<AtomicUsize>,
}

/// A read-only view of one [`ConcurrencyLimit`]'s slots and wait queue, for metrics: cheap to
/// clone and to read (two atomic loads), and it keeps nothing but the counters alive.
#[derive(Debug, Clone)]
pub struct QuotaDepth {
    slots: Arc<Semaphore>,
    waiting: Arc<AtomicUsize>,
    max_concurrent: usize,
}

impl QuotaDepth {
    /// Calls in flight now.
    pub fn in_flight(&self) -> usize {
        self.max_concurrent
            .saturating_sub(self.slots.available_permits())
    }

    /// Callers waiting for a slot now (the queue depth).
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::SeqCst)
    }
}

/// Counts a caller in the wait queue for as long as it lives.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl ConcurrencyLimit {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn Provider>, config: ConcurrencyConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Self {
            inner,
            slots: Arc::new(Semaphore::new(config.max_concurrent)),
            config,
            waiting: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// A handle that reads this quota's in-flight calls and queue depth from elsewhere.
    pub fn depth(&self) -> QuotaDepth {
        QuotaDepth {
            slots: Arc::clone(&self.slots),
            waiting: Arc::clone(&self.waiting),
            max_concurrent: self.config.max_concurrent,
        }
    }

    /// Calls in flight now.
    pub fn in_flight(&self) -> usize {
        self.config.max_concurrent - self.slots.available_permits()
    }

    /// Callers waiting for a slot now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::SeqCst)
    }

    fn overloaded(&self) -> ProviderError {
        ProviderError::Overloaded {
            scope: "concurrency".into(),
            retry_after: None,
        }
    }

    /// A slot, at once if one is free, else after a bounded wait in a bounded queue.
    async fn acquire(
        &self,
        request: &GenerateRequest,
    ) -> Result<OwnedSemaphorePermit, ProviderError> {
        if let Ok(permit) = self.slots.clone().try_acquire_owned() {
            return Ok(permit);
        }
        // Join the queue only if there is room: the check and the increment are one atomic
        // step, so the queue can never grow past max_waiting.
        let joined = self
            .waiting
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < self.config.max_waiting).then_some(n + 1)
            });
        if joined.is_err() {
            return Err(self.overloaded());
        }
        let _queued = Waiting(self.waiting.as_ref());
        let started = Instant::now();
        let own = started
            .checked_add(ms(self.config.max_wait_ms))
            .unwrap_or(started);
        let until = request
            .deadline
            .map(Instant::from_std)
            .map_or(own, |d| d.min(own));
        match tokio::time::timeout_at(until, self.slots.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            // The semaphore is never closed; treat it like a full queue all the same.
            Ok(Err(_)) => Err(self.overloaded()),
            // Whether `max_wait_ms` or the caller's deadline ended the wait, the provider was
            // never called: `Overloaded`, a refusal by this layer, which the circuit breaker
            // does not hold against the provider (a `Timeout` here let callers with short
            // deadlines queued behind a busy model open the breaker for everyone). A caller
            // whose deadline passed learns it from its own clock; the agents answer
            // `DeadlineExceeded` whatever the provider error.
            Err(_) => Err(self.overloaded()),
        }
    }
}

#[async_trait::async_trait]
impl Provider for ConcurrencyLimit {
    fn id(&self) -> &str {
        self.inner.id()
    }

    async fn generate(&self, request: GenerateRequest) -> Result<Generation, ProviderError> {
        let _permit = self.acquire(&request).await?;
        self.inner.generate(request).await
    }

    async fn generate_stream(
        &self,
        request: GenerateRequest,
    ) -> Result<GenerationStream, ProviderError> {
        let permit = self.acquire(&request).await?;
        let inner = self.inner.generate_stream(request).await?;
        // The slot is held until the stream ends or its consumer drops it.
        Ok(Box::pin(PermitStream {
            inner,
            permit: Some(permit),
        }))
    }

    async fn health(&self) -> ProviderHealth {
        let health = self.inner.health().await;
        if health == ProviderHealth::Healthy && self.slots.available_permits() == 0 {
            return ProviderHealth::Degraded {
                reason: "every concurrency slot is in use".into(),
            };
        }
        health
    }
}

/// A stream that owns a concurrency slot and gives it back when it ends.
struct PermitStream {
    inner: GenerationStream,
    permit: Option<OwnedSemaphorePermit>,
}

impl Stream for PermitStream {
    type Item = Result<StreamDelta, ProviderError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let item = self.inner.as_mut().poll_next(cx);
        if matches!(
            item,
            Poll::Ready(None | Some(Err(_)) | Some(Ok(StreamDelta::Finished(_))))
        ) {
            self.permit = None;
        }
        item
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use futures_util::StreamExt;

    use super::*;
    use crate::testing::{Script, ScriptedProvider};

    fn limit(inner: Arc<dyn Provider>, concurrent: usize, waiting: usize) -> Arc<ConcurrencyLimit> {
        let config = ConcurrencyConfig::default()
            .with_max_concurrent(concurrent)
            .with_max_waiting(waiting)
            .with_max_wait_ms(60_000);
        Arc::new(ConcurrencyLimit::new(inner, config).unwrap())
    }

    #[tokio::test(start_paused = true)]
    async fn n_plus_queue_callers_are_admitted_and_the_next_is_refused_at_once() {
        let inner = ScriptedProvider::new("busy", []);
        inner.set_default(Script::delay(Duration::from_secs(1)));
        let policy = limit(inner.clone(), 2, 3);
        let mut admitted = Vec::new();
        for _ in 0..5 {
            let policy = policy.clone();
            admitted.push(tokio::spawn(async move {
                policy.generate(GenerateRequest::default()).await
            }));
        }
        // Let the five reach the semaphore.
        while policy.waiting() < 3 {
            tokio::task::yield_now().await;
        }
        assert_eq!(policy.in_flight(), 2);
        let depth = policy.depth();
        assert_eq!((depth.in_flight(), depth.waiting()), (2, 3));
        let started = Instant::now();
        let refused = policy.generate(GenerateRequest::default()).await;
        assert!(
            matches!(refused, Err(ProviderError::Overloaded { ref scope, .. }) if scope == "concurrency")
        );
        assert_eq!(started.elapsed(), Duration::ZERO, "refused without waiting");
        for call in admitted {
            assert_eq!(call.await.unwrap().unwrap().text, "late");
        }
        assert_eq!(inner.calls(), 5);
        assert_eq!((policy.in_flight(), policy.waiting()), (0, 0));
        assert_eq!((depth.in_flight(), depth.waiting()), (0, 0));
    }

    #[tokio::test(start_paused = true)]
    async fn ten_thousand_extra_callers_are_refused_and_the_queue_stays_bounded() {
        let inner = ScriptedProvider::new("busy", []);
        inner.set_default(Script::delay(Duration::from_secs(3600)));
        let policy = limit(inner, 4, 16);
        let mut held = Vec::new();
        for _ in 0..20 {
            let policy = policy.clone();
            held.push(tokio::spawn(async move {
                policy.generate(GenerateRequest::default()).await
            }));
        }
        while policy.waiting() < 16 {
            tokio::task::yield_now().await;
        }
        let mut refused = 0;
        for _ in 0..10_000 {
            match policy.generate(GenerateRequest::default()).await {
                Err(ProviderError::Overloaded { .. }) => refused += 1,
                other => panic!("expected Overloaded, got {other:?}"),
            }
            assert!(policy.waiting() <= 16);
        }
        assert_eq!(refused, 10_000);
        assert_eq!(policy.in_flight(), 4);
        for call in held {
            call.abort();
        }
    }

    #[tokio::test(start_paused = true)]
    async fn waiting_is_bounded_by_the_deadline_and_max_wait() {
        let inner = ScriptedProvider::new("busy", []);
        inner.set_default(Script::delay(Duration::from_secs(3600)));
        let config = ConcurrencyConfig::default()
            .with_max_concurrent(1)
            .with_max_waiting(4)
            .with_max_wait_ms(500);
        let policy = Arc::new(ConcurrencyLimit::new(inner, config).unwrap());
        let holder = {
            let policy = policy.clone();
            tokio::spawn(async move { policy.generate(GenerateRequest::default()).await })
        };
        while policy.in_flight() < 1 {
            tokio::task::yield_now().await;
        }
        assert!(matches!(
            policy.generate(GenerateRequest::default()).await,
            Err(ProviderError::Overloaded { .. })
        ));
        let deadline = Instant::now() + Duration::from_millis(100);
        let request = GenerateRequest::default().with_deadline(Some(deadline.into_std()));
        assert!(matches!(
            policy.generate(request).await,
            Err(ProviderError::Overloaded { .. })
        ));
        assert!(matches!(
            policy.health().await,
            ProviderHealth::Degraded { .. }
        ));
        holder.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn a_stream_holds_its_slot_until_it_ends() {
        let inner = ScriptedProvider::new(
            "stream",
            [Script::stream(["a", "b"], Duration::from_millis(10))],
        );
        let policy = limit(inner, 1, 0);
        let mut stream = policy
            .generate_stream(GenerateRequest::default())
            .await
            .unwrap();
        assert_eq!(policy.in_flight(), 1);
        assert!(matches!(
            policy.generate(GenerateRequest::default()).await,
            Err(ProviderError::Overloaded { .. })
        ));
        while stream.next().await.is_some() {}
        assert_eq!(policy.in_flight(), 0);
        assert_eq!(
            policy
                .generate(GenerateRequest::default())
                .await
                .unwrap()
                .text,
            "ok"
        );

        let dropped = policy
            .generate_stream(GenerateRequest::default())
            .await
            .unwrap();
        assert_eq!(policy.in_flight(), 1);
        drop(dropped);
        assert_eq!(
            policy.in_flight(),
            0,
            "a dropped stream gives its slot back"
        );
        assert_eq!(policy.id(), "stream");
        assert!(policy.health().await.is_serving());
    }

    #[test]
    fn config_is_validated() {
        assert_eq!(
            ConcurrencyConfig::default()
                .with_max_concurrent(0)
                .validate()
                .unwrap_err()
                .path,
            "max_concurrent"
        );
        assert!(
            ConcurrencyConfig::default()
                .with_max_waiting(0)
                .validate()
                .is_ok()
        );
    }
}
