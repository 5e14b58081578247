use std::sync::Arc;
use std::time::Instant;

use agents_core::{
    CloudEvent, ConfigError, EventSink, GenerateRequest, Generation, GenerationStream, Provider,
    ProviderAttempt, ProviderError, ProviderFallback, ProviderHealth, StreamDelta, redact,
};
use futures_util::{StreamExt, stream};
use rand::Rng;

use super::ChainConfig;

/// Tries providers in order (or weighted) until one answers. A `Provider` itself.
#[derive(Debug)]
pub struct FallbackChain {
    id: String,
    entries: Vec<(Arc<dyn Provider>, Option<u32>)>,
    events: Arc<dyn EventSink>,
}

impl FallbackChain {
    /// A chain over providers that `config` names, looked up in `providers`.
    pub fn new(
        config: &ChainConfig,
        providers: &[Arc<dyn Provider>],
        events: Arc<dyn EventSink>,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        let mut entries = Vec::with_capacity(config.providers.len());
        for (i, entry) in config.providers.iter().enumerate() {
            let provider = providers
                .iter()
                .find(|p| p.id() == entry.provider)
                .ok_or_else(|| {
                    let known: Vec<&str> = providers.iter().map(|p| p.id()).collect();
                    ConfigError::new(
                        format!("providers[{i}].provider"),
                        format!(
                            "no provider `{}` is configured; known: {}",
                            entry.provider,
                            known.join(", ")
                        ),
                    )
                })?;
            entries.push((provider.clone(), entry.weight));
        }
        Ok(Self {
            id: config.id.clone(),
            entries,
            events,
        })
    }

    /// A chain over `providers` in order, with no config file involved.
    pub fn ordered(
        id: impl Into<String>,
        providers: Vec<Arc<dyn Provider>>,
        events: Arc<dyn EventSink>,
    ) -> Self {
        Self {
            id: id.into(),
            entries: providers.into_iter().map(|p| (p, None)).collect(),
            events,
        }
    }

    /// The order to try for one request: weighted entries first, in a random order drawn by
    /// weight (each draw picks the next with probability weight / remaining weight), then the
    /// unweighted ones as configured.
    fn order(&self) -> Vec<&Arc<dyn Provider>> {
        let mut weighted: Vec<(&Arc<dyn Provider>, u32)> = self
            .entries
            .iter()
            .filter_map(|(p, w)| w.map(|w| (p, w)))
            .collect();
        let mut order = Vec::with_capacity(self.entries.len());
        let mut rng = rand::rng();
        while !weighted.is_empty() {
            let total: u64 = weighted.iter().map(|(_, w)| u64::from(*w)).sum();
            let mut pick = rng.random_range(0..total);
            let index = weighted
                .iter()
                .position(|(_, w)| {
                    let w = u64::from(*w);
                    if pick < w {
                        true
                    } else {
                        pick -= w;
                        false
                    }
                })
                .unwrap_or(0);
            order.push(weighted.remove(index).0);
        }
        order.extend(
            self.entries
                .iter()
                .filter(|(_, w)| w.is_none())
                .map(|(p, _)| p),
        );
        order
    }

    /// Records the failure of `order[i]`; says whether the next provider should be tried (and
    /// if so, reports the fallback).
    fn failed(
        &self,
        order: &[&Arc<dyn Provider>],
        i: usize,
        error: ProviderError,
        request: &GenerateRequest,
        attempts: &mut Vec<ProviderAttempt>,
    ) -> bool {
        let id = order.get(i).map_or("", |p| p.id());
        let go_on = error.should_fall_back() && !deadline_passed(request);
        if go_on {
            self.fell_back(id, order.get(i + 1), &error);
        }
        attempts.push(ProviderAttempt::new(id, error));
        go_on
    }

    fn fell_back(&self, from: &str, to: Option<&&Arc<dyn Provider>>, error: &ProviderError) {
        let Some(to) = to else { return };
        let mut payload = ProviderFallback::default();
        payload.from_provider = from.to_owned();
        payload.to_provider = to.id().to_owned();
        payload.reason_kind = error.kind().as_str().to_owned();
        payload.message = redact(&error.to_string()).into_owned();
        self.events.emit(CloudEvent::new(
            format!("/providers/{}/chain", self.id),
            &payload,
        ));
    }
}

/// Whether the chain should stop trying: the caller's deadline has passed.
fn deadline_passed(request: &GenerateRequest) -> bool {
    request.deadline.is_some_and(|d| Instant::now() >= d)
}

#[async_trait::async_trait]
impl Provider for FallbackChain {
    fn id(&self) -> &str {
        &self.id
    }

    async fn generate(&self, request: GenerateRequest) -> Result<Generation, ProviderError> {
        let started = Instant::now();
        let order = self.order();
        let mut attempts = Vec::new();
        for (i, provider) in order.iter().enumerate() {
            match provider.generate(request.clone()).await {
                Ok(mut generation) => {
                    attempts.append(&mut generation.failed_attempts);
                    return Ok(generation
                        .with_failed_attempts(attempts)
                        .with_latency(started.elapsed()));
                }
                Err(error) => {
                    if !self.failed(&order, i, error, &request, &mut attempts) {
                        break;
                    }
                }
            }
        }
        Err(all_failed(attempts))
    }

    async fn generate_stream(
        &self,
        request: GenerateRequest,
    ) -> Result<GenerationStream, ProviderError> {
        let order = self.order();
        let mut attempts = Vec::new();
        for (i, provider) in order.iter().enumerate() {
            // A stream has answered once its first item is a piece of text: until then nothing
            // has reached the caller and the next provider can still take over.
            let opened = match provider.generate_stream(request.clone()).await {
                Ok(mut stream) => match stream.next().await {
                    Some(Ok(first)) => Ok((first, stream)),
                    Some(Err(error)) => Err(error),
                    None => Err(ProviderError::InvalidResponse {
                        message: "the stream ended before any output".into(),
                    }),
                },
                Err(error) => Err(error),
            };
            match opened {
                Ok((first, rest)) => {
                    let earlier = attempts;
                    let first = add_attempts(first, &earlier);
                    let rest =
                        rest.map(move |item| item.map(|delta| add_attempts(delta, &earlier)));
                    return Ok(Box::pin(stream::iter([Ok(first)]).chain(rest)));
                }
                Err(error) => {
                    if !self.failed(&order, i, error, &request, &mut attempts) {
                        break;
                    }
                }
            }
        }
        Err(all_failed(attempts))
    }

    /// Serving when any provider is.
    async fn health(&self) -> ProviderHealth {
        let mut reasons = Vec::new();
        for (provider, _) in &self.entries {
            match provider.health().await {
                ProviderHealth::Unhealthy { reason } => {
                    reasons.push(format!("{}: {reason}", provider.id()))
                }
                health => return health,
            }
        }
        ProviderHealth::Unhealthy {
            reason: reasons.join("; "),
        }
    }
}

/// The chain's error: every attempt, in order. A chain inside a chain nests its attempts.
fn all_failed(attempts: Vec<ProviderAttempt>) -> ProviderError {
    ProviderError::AllFailed { attempts }
}

/// Puts the attempts that failed before this stream into its `Finished` item.
fn add_attempts(delta: StreamDelta, earlier: &[ProviderAttempt]) -> StreamDelta {
    match delta {
        StreamDelta::Finished(mut generation) if !earlier.is_empty() => {
            let mut attempts = earlier.to_vec();
            attempts.append(&mut generation.failed_attempts);
            StreamDelta::Finished(generation.with_failed_attempts(attempts))
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use agents_core::{MemorySink, NullSink};

    use super::*;
    use crate::fallback::ChainEntryConfig;
    use crate::testing::{Script, ScriptedProvider};

    fn providers(a: Arc<ScriptedProvider>, b: Arc<ScriptedProvider>) -> Vec<Arc<dyn Provider>> {
        vec![a, b]
    }

    #[tokio::test]
    async fn weights_spread_first_attempts() {
        let (a, b) = (
            ScriptedProvider::new("a", []),
            ScriptedProvider::new("b", []),
        );
        let mut config = ChainConfig::new("chain", ["a", "b"]);
        config.providers[0].weight = Some(3);
        config.providers[1].weight = Some(1);
        let chain = FallbackChain::new(
            &config,
            &providers(a.clone(), b.clone()),
            Arc::new(NullSink),
        )
        .unwrap();
        for _ in 0..2000 {
            chain.generate(GenerateRequest::default()).await.unwrap();
        }
        // Expect 1500 / 500; the bounds are ten standard deviations wide.
        assert!(
            (1300..=1700).contains(&a.calls()),
            "a answered {}",
            a.calls()
        );
        assert_eq!(a.calls() + b.calls(), 2000);
    }

    #[tokio::test]
    async fn unweighted_entries_keep_their_order_after_weighted_ones() {
        let (a, b) = (
            ScriptedProvider::new("a", []),
            ScriptedProvider::new("b", []),
        );
        let config = ChainConfig {
            id: "chain".into(),
            providers: vec![
                ChainEntryConfig {
                    provider: "a".into(),
                    weight: None,
                },
                ChainEntryConfig {
                    provider: "b".into(),
                    weight: Some(5),
                },
            ],
        };
        let chain = FallbackChain::new(
            &config,
            &providers(a.clone(), b.clone()),
            Arc::new(NullSink),
        )
        .unwrap();
        for _ in 0..10 {
            chain.generate(GenerateRequest::default()).await.unwrap();
        }
        assert_eq!((a.calls(), b.calls()), (0, 10));
    }

    #[tokio::test]
    async fn cancellation_and_a_passed_deadline_stop_the_chain() {
        let a = ScriptedProvider::new("a", [Script::fail(ProviderError::Cancelled)]);
        let b = ScriptedProvider::new("b", []);
        let events = MemorySink::new();
        let chain = FallbackChain::ordered(
            "chain",
            providers(a.clone(), b.clone()),
            Arc::new(events.clone()),
        );
        assert!(matches!(
            chain.generate(GenerateRequest::default()).await,
            Err(ProviderError::AllFailed { .. })
        ));
        assert_eq!(b.calls(), 0);
        assert!(events.events().is_empty());

        a.push(Script::fail(ProviderError::Timeout {
            elapsed: Duration::from_secs(1),
        }));
        let passed = GenerateRequest::default().with_deadline(Some(Instant::now()));
        assert!(chain.generate(passed).await.is_err());
        assert_eq!(b.calls(), 0, "no time is left for the next provider");
        assert_eq!(chain.id(), "chain");
    }

    #[tokio::test]
    async fn a_stream_counts_as_answered_at_its_first_item_and_health_needs_one_serving_provider() {
        let a = ScriptedProvider::new("a", [Script::stream(Vec::<String>::new(), Duration::ZERO)]);
        let b = ScriptedProvider::new("b", [Script::stream(["b"], Duration::ZERO)]);
        let chain = FallbackChain::ordered("chain", providers(a, b), Arc::new(NullSink));
        let mut stream = chain
            .generate_stream(GenerateRequest::default())
            .await
            .unwrap();
        // The scripted empty stream yields only `Finished`, which counts as output.
        assert!(stream.next().await.is_some());
        assert!(chain.health().await.is_serving());
    }

    #[test]
    fn config_is_validated() {
        let (a, b) = (
            ScriptedProvider::new("a", []),
            ScriptedProvider::new("b", []),
        );
        let known = providers(a, b);
        let error = |config: ChainConfig| {
            FallbackChain::new(&config, &known, Arc::new(NullSink)).unwrap_err()
        };
        assert_eq!(error(ChainConfig::new("", ["a"])).path, "id");
        assert_eq!(
            error(ChainConfig::new("c", Vec::<String>::new())).path,
            "providers"
        );
        assert_eq!(
            error(ChainConfig::new("c", ["a", "a"])).path,
            "providers[1].provider"
        );
        let unknown = error(ChainConfig::new("c", ["a", "z"]));
        assert_eq!(unknown.path, "providers[1].provider");
        assert!(unknown.message.contains("known: a, b"));
        let mut zero = ChainConfig::new("c", ["a"]);
        zero.providers[0].weight = Some(0);
        assert_eq!(error(zero).path, "providers[0].weight");
    }
}
