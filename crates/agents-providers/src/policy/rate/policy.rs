use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use agents_core::{
    ConfigError, GenerateRequest, Generation, GenerationStream, Provider, ProviderError,
    ProviderHealth, StreamDelta,
};
use futures_util::Stream;
use tokio::time::Instant;

use super::{RateConfig, TokenBucket};

/// Keeps one provider within its requests-per-minute and tokens-per-minute budgets.
#[derive(Debug)]
pub struct RateLimit {
    inner: Arc<dyn Provider>,
    buckets: Arc<Mutex<Buckets>>,
}

#[derive(Debug)]
struct Buckets {
    requests: Option<TokenBucket>,
    tokens: Option<TokenBucket>,
}

impl Buckets {
    /// Takes one request and the prompt estimate, both or neither.
    fn admit(&mut self, estimate: f64, now: Instant) -> Result<(), ProviderError> {
        let refused = |wait| ProviderError::Overloaded {
            scope: "rate".into(),
            retry_after: Some(wait),
        };
        if let Some(tokens) = &mut self.tokens {
            // Check the token budget first without taking, so a refusal costs no request token.
            let available = tokens.available(now);
            if available < estimate {
                return Err(refused(
                    tokens.try_take(estimate, now).err().unwrap_or_default(),
                ));
            }
        }
        if let Some(requests) = &mut self.requests {
            requests.try_take(1.0, now).map_err(refused)?;
        }
        if let Some(tokens) = &mut self.tokens {
            tokens.adjust(estimate, now);
        }
        Ok(())
    }

    /// Charges the difference between real usage and the estimate.
    fn settle(&mut self, estimate: f64, used: u64, now: Instant) {
        if let Some(tokens) = &mut self.tokens {
            tokens.adjust(used as f64 - estimate, now);
        }
    }
}

impl RateLimit {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn Provider>, config: RateConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let now = Instant::now();
        let burst = config.burst();
        let bucket = |per_minute: f64| {
            let rate = per_minute / 60.0;
            TokenBucket::new((rate * burst).max(1.0), rate, now)
        };
        let buckets = Buckets {
            requests: config.requests_per_minute.map(|rpm| bucket(f64::from(rpm))),
            tokens: config.tokens_per_minute.map(|tpm| bucket(tpm as f64)),
        };
        Ok(Self {
            inner,
            buckets: Arc::new(Mutex::new(buckets)),
        })
    }

    /// The prompt's token count, estimated at four bytes a token (the real count arrives with
    /// the usage and corrects it). Capped at the bucket size so a huge prompt waits for a full
    /// bucket instead of never fitting.
    fn estimate(&self, request: &GenerateRequest) -> f64 {
        let bytes: usize = request.messages.iter().map(|m| m.content.len()).sum();
        let estimate = (bytes / 4 + 1) as f64;
        let buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        buckets
            .tokens
            .as_ref()
            .map_or(estimate, |t| estimate.min(t.capacity()))
    }

    fn admit(&self, estimate: f64) -> Result<(), ProviderError> {
        self.buckets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .admit(estimate, Instant::now())
    }

    fn settle(&self, estimate: f64, used: u64) {
        self.buckets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .settle(estimate, used, Instant::now());
    }
}

#[async_trait::async_trait]
impl Provider for RateLimit {
    fn id(&self) -> &str {
        self.inner.id()
    }

    async fn generate(&self, request: GenerateRequest) -> Result<Generation, ProviderError> {
        let estimate = self.estimate(&request);
        self.admit(estimate)?;
        let result = self.inner.generate(request).await;
        // A failed call used no completion tokens, and most providers do not bill the prompt of
        // a failed call either: refund the estimate. A success that reports no usage (some
        // local servers) keeps the estimate: zero means unknown, not free.
        match &result {
            Ok(generation) if generation.usage.total() > 0 => {
                self.settle(estimate, generation.usage.total())
            }
            Ok(_) => {}
            Err(_) => self.settle(estimate, 0),
        }
        result
    }

    async fn generate_stream(
        &self,
        request: GenerateRequest,
    ) -> Result<GenerationStream, ProviderError> {
        let estimate = self.estimate(&request);
        self.admit(estimate)?;
        match self.inner.generate_stream(request).await {
            Ok(inner) => Ok(Box::pin(SettlingStream {
                inner,
                buckets: self.buckets.clone(),
                estimate,
                settled: false,
            })),
            Err(error) => {
                self.settle(estimate, 0);
                Err(error)
            }
        }
    }

    async fn health(&self) -> ProviderHealth {
        self.inner.health().await
    }
}

/// Settles the token estimate when the stream reports its usage.
struct SettlingStream {
    inner: GenerationStream,
    buckets: Arc<Mutex<Buckets>>,
    estimate: f64,
    settled: bool,
}

impl Stream for SettlingStream {
    type Item = Result<StreamDelta, ProviderError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let item = self.inner.as_mut().poll_next(cx);
        if let Poll::Ready(Some(Ok(StreamDelta::Finished(generation)))) = &item
            && !self.settled
        {
            let used = generation.usage.total();
            self.settled = true;
            let estimate = self.estimate;
            self.buckets
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .settle(estimate, used, Instant::now());
        }
        item
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use agents_core::Message;
    use futures_util::StreamExt;

    use super::*;
    use crate::testing::ScriptedProvider;

    #[tokio::test(start_paused = true)]
    async fn requests_beyond_the_burst_are_refused_with_the_wait() {
        let inner = ScriptedProvider::new("p", []);
        let config = RateConfig::default()
            .with_requests_per_minute(60)
            .with_burst_seconds(2.0);
        let policy = RateLimit::new(inner.clone(), config).unwrap();
        assert!(policy.generate(GenerateRequest::default()).await.is_ok());
        assert!(policy.generate(GenerateRequest::default()).await.is_ok());
        match policy.generate(GenerateRequest::default()).await {
            Err(ProviderError::Overloaded {
                scope,
                retry_after: Some(wait),
            }) => {
                assert_eq!(scope, "rate");
                assert_eq!(wait, Duration::from_secs(1));
            }
            other => panic!("expected Overloaded, got {other:?}"),
        }
        assert_eq!(
            inner.calls(),
            2,
            "a refused call never reaches the provider"
        );
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(policy.generate(GenerateRequest::default()).await.is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn tokens_are_estimated_before_and_settled_after() {
        let inner = ScriptedProvider::new("p", []);
        // 600 tokens a minute, 10 s burst: a bucket of 100 tokens refilling 10 a second.
        let config = RateConfig::default().with_tokens_per_minute(600);
        let policy = RateLimit::new(inner, config).unwrap();
        let prompt = GenerateRequest::new(vec![Message::user("x".repeat(200))]);
        // Estimate 51, real usage 10 + 1: the rest is refunded, so the next call fits too.
        assert!(policy.generate(prompt.clone()).await.is_ok());
        assert!(policy.generate(prompt.clone()).await.is_ok());
        let huge = GenerateRequest::new(vec![Message::user("x".repeat(4000))]);
        assert!(matches!(
            policy.generate(huge).await,
            Err(ProviderError::Overloaded { .. })
        ));
        let mut stream = policy.generate_stream(prompt).await.unwrap();
        while stream.next().await.is_some() {}
        assert_eq!(policy.id(), "p");
        assert!(policy.health().await.is_serving());
    }

    #[test]
    fn config_is_validated() {
        assert_eq!(
            RateConfig::default()
                .with_requests_per_minute(0)
                .validate()
                .unwrap_err()
                .path,
            "requests_per_minute"
        );
        assert_eq!(
            RateConfig::default()
                .with_tokens_per_minute(0)
                .validate()
                .unwrap_err()
                .path,
            "tokens_per_minute"
        );
        assert_eq!(
            RateConfig::default()
                .with_burst_seconds(0.0)
                .validate()
                .unwrap_err()
                .path,
            "burst_seconds"
        );
        assert!(RateConfig::default().validate().is_ok());
    }
}
