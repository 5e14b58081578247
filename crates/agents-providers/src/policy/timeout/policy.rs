use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use agents_core::{
    ConfigError, GenerateRequest, Generation, GenerationStream, Provider, ProviderError,
    ProviderHealth, StreamDelta,
};
use futures_util::Stream;
use tokio::time::{Instant, Sleep, sleep_until};

use super::TimeoutConfig;
use crate::policy::ms;

/// Bounds every call by the earlier of the caller's deadline and the configured timeouts.
#[derive(Debug)]
pub struct Timeout {
    inner: Arc<dyn Provider>,
    config: TimeoutConfig,
}

impl Timeout {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn Provider>, config: TimeoutConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Self { inner, config })
    }

    /// The earlier of the caller's deadline and `now + timeout`.
    fn bound(request: &GenerateRequest, timeout: Duration) -> Instant {
        let own = Instant::now()
            .checked_add(timeout)
            .unwrap_or_else(far_future);
        match request.deadline.map(Instant::from_std) {
            Some(caller) if caller < own => caller,
            _ => own,
        }
    }
}

/// A deadline no call reaches, for timeouts too large to add to `now`.
fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400 * 365)
}

#[async_trait::async_trait]
impl Provider for Timeout {
    fn id(&self) -> &str {
        self.inner.id()
    }

    async fn generate(&self, mut request: GenerateRequest) -> Result<Generation, ProviderError> {
        let started = Instant::now();
        let deadline = Self::bound(&request, ms(self.config.request_timeout_ms));
        // Written into the request so inner layers (the adapter's HTTP timeout) see it too.
        request.deadline = Some(deadline.into_std());
        match tokio::time::timeout_at(deadline, self.inner.generate(request)).await {
            Ok(result) => result,
            Err(_) => Err(ProviderError::Timeout {
                elapsed: started.elapsed(),
            }),
        }
    }

    async fn generate_stream(
        &self,
        mut request: GenerateRequest,
    ) -> Result<GenerationStream, ProviderError> {
        let started = Instant::now();
        // The first chunk may take as long as a whole answer would; the stream as a whole is
        // bounded by its total timeout. Both give way to the caller's earlier deadline, read
        // before anything below is told about it.
        let first_deadline = Self::bound(&request, ms(self.config.request_timeout_ms));
        let total = Self::bound(&request, ms(self.config.stream_total_timeout_ms));
        // Inner layers get the stream's whole budget, not the first-chunk one: an adapter that
        // bounds its HTTP call by the request deadline must not cut a long stream short.
        request.deadline = Some(total.into_std());
        let stream = match tokio::time::timeout_at(
            first_deadline,
            self.inner.generate_stream(request),
        )
        .await
        {
            Ok(stream) => stream?,
            Err(_) => {
                return Err(ProviderError::Timeout {
                    elapsed: started.elapsed(),
                });
            }
        };
        Ok(Box::pin(DeadlineStream {
            inner: stream,
            started,
            idle: ms(self.config.stream_idle_timeout_ms),
            // The first chunk may take as long as a whole non-streaming answer would.
            next: Box::pin(sleep_until(first_deadline.min(total))),
            total,
            done: false,
        }))
    }

    async fn health(&self) -> ProviderHealth {
        self.inner.health().await
    }
}

/// A stream whose next item must come before `next` fires: the idle gap after each chunk, never
/// later than the stream's total deadline.
struct DeadlineStream {
    inner: GenerationStream,
    started: Instant,
    idle: Duration,
    next: Pin<Box<Sleep>>,
    total: Instant,
    done: bool,
}

impl Stream for DeadlineStream {
    type Item = Result<StreamDelta, ProviderError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        if let Poll::Ready(item) = self.inner.as_mut().poll_next(cx) {
            match &item {
                Some(Ok(StreamDelta::Text(_))) => {
                    let next = (Instant::now() + self.idle).min(self.total);
                    self.next.as_mut().reset(next);
                }
                _ => self.done = true,
            }
            return Poll::Ready(item);
        }
        ready!(self.next.as_mut().poll(cx));
        // Stalled: end the stream with a timeout. Dropping the inner stream afterwards closes
        // the upstream connection.
        self.done = true;
        Poll::Ready(Some(Err(ProviderError::Timeout {
            elapsed: self.started.elapsed(),
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Script, ScriptedProvider};
    use futures_util::StreamExt;

    fn config() -> TimeoutConfig {
        TimeoutConfig::default()
            .with_request_timeout_ms(1_000)
            .with_stream_idle_timeout_ms(200)
            .with_stream_total_timeout_ms(5_000)
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_call_times_out_and_the_deadline_reaches_the_inner_layer() {
        let inner = ScriptedProvider::new("slow", [Script::delay(Duration::from_secs(5))]);
        let policy = Timeout::new(inner.clone(), config()).unwrap();
        let error = policy
            .generate(GenerateRequest::default())
            .await
            .unwrap_err();
        assert!(
            matches!(error, ProviderError::Timeout { elapsed } if elapsed >= Duration::from_secs(1))
        );
        assert!(inner.last_request().deadline.is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn the_callers_earlier_deadline_wins() {
        let inner = ScriptedProvider::new("slow", [Script::delay(Duration::from_secs(5))]);
        let policy = Timeout::new(inner.clone(), config()).unwrap();
        let caller = Instant::now() + Duration::from_millis(300);
        let request = GenerateRequest::default().with_deadline(Some(caller.into_std()));
        let started = Instant::now();
        assert!(matches!(
            policy.generate(request).await,
            Err(ProviderError::Timeout { .. })
        ));
        assert_eq!(started.elapsed(), Duration::from_millis(300));
        assert_eq!(inner.last_request().deadline, Some(caller.into_std()));
    }

    #[tokio::test(start_paused = true)]
    async fn fast_calls_pass_through() {
        let inner = ScriptedProvider::new("fast", [Script::text("hello")]);
        let policy = Timeout::new(inner, config()).unwrap();
        assert_eq!(
            policy
                .generate(GenerateRequest::default())
                .await
                .unwrap()
                .text,
            "hello"
        );
        assert_eq!(policy.id(), "fast");
        assert!(policy.health().await.is_serving());
    }

    #[tokio::test(start_paused = true)]
    async fn a_stream_that_stalls_after_the_first_chunk_times_out() {
        let inner = ScriptedProvider::new(
            "stall",
            [Script::stream_stalling(
                ["one", "two"],
                Duration::from_millis(50),
            )],
        );
        let policy = Timeout::new(inner, config()).unwrap();
        let items: Vec<_> = policy
            .generate_stream(GenerateRequest::default())
            .await
            .unwrap()
            .collect()
            .await;
        assert!(matches!(&items[0], Ok(StreamDelta::Text(t)) if t == "one"));
        assert!(matches!(&items[1], Ok(StreamDelta::Text(t)) if t == "two"));
        assert!(matches!(&items[2], Err(ProviderError::Timeout { .. })));
        assert_eq!(items.len(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_steady_stream_completes_and_a_long_one_hits_the_total() {
        let inner = ScriptedProvider::new(
            "steady",
            [Script::stream(["a", "b", "c"], Duration::from_millis(100))],
        );
        let policy = Timeout::new(inner, config()).unwrap();
        let items: Vec<_> = policy
            .generate_stream(GenerateRequest::default())
            .await
            .unwrap()
            .collect()
            .await;
        assert!(matches!(items.last(), Some(Ok(StreamDelta::Finished(g))) if g.text == "abc"));

        let pieces: Vec<String> = (0..100).map(|i| i.to_string()).collect();
        let inner =
            ScriptedProvider::new("long", [Script::stream(pieces, Duration::from_millis(150))]);
        let policy = Timeout::new(inner, config()).unwrap();
        let items: Vec<_> = policy
            .generate_stream(GenerateRequest::default())
            .await
            .unwrap()
            .collect()
            .await;
        assert!(
            matches!(items.last(), Some(Err(ProviderError::Timeout { .. }))),
            "5 s total < 100 x 150 ms"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_stream_may_outlast_the_request_timeout_but_not_the_callers_deadline() {
        // 20 pieces 100 ms apart: 2 s in all, twice the 1 s request timeout.
        let pieces: Vec<String> = (0..20).map(|i| i.to_string()).collect();
        let inner = ScriptedProvider::new(
            "long",
            [Script::stream(pieces.clone(), Duration::from_millis(100))],
        );
        let policy = Timeout::new(inner.clone(), config()).unwrap();
        let items: Vec<_> = policy
            .generate_stream(GenerateRequest::default())
            .await
            .unwrap()
            .collect()
            .await;
        assert!(
            matches!(items.last(), Some(Ok(StreamDelta::Finished(_)))),
            "{items:?}"
        );
        let passed_down = Instant::from_std(inner.last_request().deadline.unwrap());
        assert!(
            passed_down >= Instant::now(),
            "the inner layer got the stream's whole budget"
        );

        let inner =
            ScriptedProvider::new("long", [Script::stream(pieces, Duration::from_millis(100))]);
        let policy = Timeout::new(inner, config()).unwrap();
        let caller = Instant::now() + Duration::from_millis(550);
        let request = GenerateRequest::default().with_deadline(Some(caller.into_std()));
        let items: Vec<_> = policy
            .generate_stream(request)
            .await
            .unwrap()
            .collect()
            .await;
        assert!(
            matches!(items.last(), Some(Err(ProviderError::Timeout { .. }))),
            "{items:?}"
        );
        assert_eq!(
            items.len(),
            6,
            "five pieces before the caller's deadline, then the timeout"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn opening_a_stream_is_bounded_too() {
        let inner = ScriptedProvider::new("slow", [Script::delay(Duration::from_secs(5))]);
        let policy = Timeout::new(inner, config()).unwrap();
        assert!(matches!(
            policy.generate_stream(GenerateRequest::default()).await,
            Err(ProviderError::Timeout { .. })
        ));
    }

    #[test]
    fn config_is_validated() {
        assert_eq!(
            TimeoutConfig::default()
                .with_request_timeout_ms(0)
                .validate()
                .unwrap_err()
                .path,
            "request_timeout_ms"
        );
        let error = TimeoutConfig::default()
            .with_stream_total_timeout_ms(10)
            .validate()
            .unwrap_err();
        assert_eq!(error.path, "stream_total_timeout_ms");
        let parsed: TimeoutConfig = serde_json::from_str(r#"{"request_timeout_ms": 5}"#).unwrap();
        assert_eq!(parsed.request_timeout_ms, 5);
        assert!(serde_json::from_str::<TimeoutConfig>(r#"{"request_timeout": 5}"#).is_err());
    }
}
