//! The retry loop behind the `Provider` trait.

use std::sync::Arc;
use std::time::Duration;

use agents_core::{
    ConfigError, GenerateRequest, Generation, GenerationStream, Provider, ProviderAttempt,
    ProviderError, ProviderHealth, StreamDelta,
};
use futures_util::{StreamExt, future, stream};
use tokio::time::Instant;

use super::RetryConfig;
use super::budget::Budget;

/// A [`Provider`] that calls its inner provider again after a transient failure.
///
/// See the module docs of `src/policy/retry/mod.rs` for when it retries and when it gives up.
#[derive(Debug)]
pub struct Retry {
    inner: Arc<dyn Provider>,
    config: RetryConfig,
    budget: Budget,
}

impl Retry {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn Provider>, config: RetryConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let budget = Budget::new(&config.budget);
        Ok(Self {
            inner,
            config,
            budget,
        })
    }

    /// Makes `attempt` until it succeeds or retrying stops; returns its value and the errors
    /// retried away, or the last error.
    async fn run<T, F, Fut>(
        &self,
        request: GenerateRequest,
        attempt: F,
    ) -> Result<(T, Vec<ProviderAttempt>), ProviderError>
    where
        F: Fn(GenerateRequest) -> Fut,
        Fut: Future<Output = Result<T, ProviderError>>,
    {
        let deadline = request.deadline.map(Instant::from_std);
        self.budget.deposit();
        let mut failed = Vec::new();
        loop {
            let mut this_attempt = request.clone();
            // 1 for the first call, 2 for the first retry, ...: what `provider.request` reports.
            this_attempt.attempt = u32::try_from(failed.len())
                .unwrap_or(u32::MAX)
                .saturating_add(1);
            let error = match attempt(this_attempt).await {
                Ok(value) => return Ok((value, failed)),
                Err(error) => error,
            };
            let Some(wait) = self.wait(&error, retries(&failed), deadline) else {
                return Err(error);
            };
            failed.push(ProviderAttempt::new(self.inner.id(), error));
            tokio::time::sleep(wait).await;
        }
    }

    /// How long to wait before retrying after `error`, or `None` to give up and return it.
    ///
    /// `retries` is how many retries were made already. Withdraws from the budget, so it is
    /// called only when the retry will happen if it says so.
    fn wait(
        &self,
        error: &ProviderError,
        retries: u32,
        deadline: Option<Instant>,
    ) -> Option<Duration> {
        if !error.is_retryable() || retries >= self.config.max_retries {
            return None;
        }
        let wait = match error.retry_after() {
            Some(asked) if self.config.respect_retry_after => {
                if asked > Duration::from_millis(self.config.max_retry_after_ms) {
                    return None;
                }
                asked
            }
            _ => self.config.backoff(retries),
        };
        // A retry that could only start at (or after) the deadline would be wasted.
        if deadline.is_some_and(|deadline| Instant::now() + wait >= deadline) {
            return None;
        }
        if !self.budget.withdraw() {
            tracing::debug!(provider = self.inner.id(), "retry budget exhausted");
            return None;
        }
        tracing::debug!(provider = self.inner.id(), retry = retries + 1, ?wait, %error, "retrying");
        Some(wait)
    }
}

#[async_trait::async_trait]
impl Provider for Retry {
    fn id(&self) -> &str {
        self.inner.id()
    }

    async fn generate(&self, request: GenerateRequest) -> Result<Generation, ProviderError> {
        let started = Instant::now();
        let (generation, failed) = self.run(request, |r| self.inner.generate(r)).await?;
        Ok(annotate(generation, &failed, started))
    }

    /// Retries opening the stream and a failure of its first item; once an item has been
    /// handed over, the caller has seen part of an answer and errors pass through.
    async fn generate_stream(
        &self,
        request: GenerateRequest,
    ) -> Result<GenerationStream, ProviderError> {
        let started = Instant::now();
        let open = |request| async move {
            let mut rest = self.inner.generate_stream(request).await?;
            match rest.next().await {
                Some(Ok(first)) => Ok(Some((first, rest))),
                Some(Err(error)) => Err(error),
                // An empty stream breaks the contract; hand it on, already ended.
                None => Ok(None),
            }
        };
        let (opened, failed) = self.run(request, open).await?;
        let Some((first, rest)) = opened else {
            return Ok(Box::pin(stream::empty()));
        };
        let whole = stream::once(future::ready(Ok(first))).chain(rest);
        Ok(Box::pin(whole.map(move |item| match item {
            Ok(StreamDelta::Finished(generation)) => Ok(StreamDelta::Finished(annotate(
                generation, &failed, started,
            ))),
            other => other,
        })))
    }

    async fn health(&self) -> ProviderHealth {
        self.inner.health().await
    }
}

fn retries(failed: &[ProviderAttempt]) -> u32 {
    u32::try_from(failed.len()).unwrap_or(u32::MAX)
}

/// Adds the attempts retried away to a generation, and the time they took to its latency.
fn annotate(
    mut generation: Generation,
    failed: &[ProviderAttempt],
    started: Instant,
) -> Generation {
    if !failed.is_empty() {
        let mut attempts = failed.to_vec();
        attempts.append(&mut generation.failed_attempts);
        generation.failed_attempts = attempts;
        generation.latency = generation.latency.max(started.elapsed());
    }
    generation
}
