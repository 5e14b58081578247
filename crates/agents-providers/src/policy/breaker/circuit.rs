//! failsafe's state machine behind the `Provider` trait.
//!
//! failsafe decides when to trip and when to let a probe through; this file adds what it lacks:
//! a readable state and `until` (failsafe keeps both private), a cap on concurrent half-open
//! probes (failsafe lets every call through while half-open), events, and outcomes recorded when
//! a call or a stream ends rather than when it starts.

use std::pin::Pin;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use agents_core::{
    CircuitClosed, CircuitOpened, CloudEvent, ConfigError, EventSink, GenerateRequest, Generation,
    GenerationStream, Provider, ProviderError, ProviderHealth, StreamDelta,
};
use failsafe::failure_policy::{
    ConsecutiveFailures, FailurePolicy, OrElse, SuccessRateOverTimeWindow, consecutive_failures,
    success_rate_over_time_window,
};
use failsafe::{Instrument, StateMachine};
use futures_util::Stream;

use super::{BreakerConfig, FailureRateConfig};

/// Where a [`CircuitBreaker`] stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BreakerState {
    /// Calls go through; outcomes are counted.
    Closed,
    /// Calls are rejected with [`ProviderError::CircuitOpen`] without reaching the provider.
    Open,
    /// The open time is over: the next calls (up to `half_open_probes` at once) are probes; a
    /// success closes the breaker, a failure opens it again for longer.
    HalfOpen,
}

/// A [`Provider`] that stops calling its inner provider while that provider is failing.
///
/// See the module docs of `src/policy/breaker/mod.rs` for what counts as a failure and how streams are judged.
#[derive(Debug)]
pub struct CircuitBreaker {
    inner: Arc<dyn Provider>,
    shared: Arc<Shared>,
}

impl CircuitBreaker {
    /// Wraps `inner`; state changes are reported to `events`.
    pub fn new(
        inner: Arc<dyn Provider>,
        config: BreakerConfig,
        events: Arc<dyn EventSink>,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        let chosen = Arc::new(AtomicU64::new(0));
        let backoff = OpenBackoff {
            next: config.open(),
            max: config.max_open(),
            chosen: Arc::clone(&chosen),
        };
        // Without a failure-rate policy, one that asks for a success rate of at least 0 over
        // u32::MAX requests: it can never trip, and the policy keeps a single type.
        let never = FailureRateConfig {
            min_requests: u32::MAX,
            ratio: 1.0,
            window_ms: 1_000,
        };
        let rate = config.failure_rate.as_ref().unwrap_or(&never);
        let window = Duration::from_millis(rate.window_ms);
        let policy = consecutive_failures(config.consecutive_failures, backoff.clone()).or_else(
            success_rate_over_time_window(1.0 - rate.ratio, rate.min_requests, window, backoff),
        );
        let transition = Transition::default();
        let machine = StateMachine::new(policy, transition.clone());
        // `StateMachine::new` reports its initial `closed`; that is not a transition.
        transition.take();
        let shared = Shared {
            provider: inner.id().to_owned(),
            machine,
            transition,
            chosen,
            half_open_probes: config.half_open_probes,
            mirror: Mutex::new(Mirror {
                state: BreakerState::Closed,
                until: now(),
                open_for: config.open(),
                epoch: 0,
                probes: 0,
                consecutive_failures: 0,
            }),
            events,
        };
        Ok(Self {
            inner,
            shared: Arc::new(shared),
        })
    }

    /// The breaker's state now. `Open` whose time is over reads as `HalfOpen`: the next call
    /// will be a probe.
    pub fn state(&self) -> BreakerState {
        let mirror = self.shared.lock();
        match mirror.state {
            BreakerState::Open if now() > mirror.until => BreakerState::HalfOpen,
            state => state,
        }
    }
}

#[async_trait::async_trait]
impl Provider for CircuitBreaker {
    fn id(&self) -> &str {
        self.inner.id()
    }

    async fn generate(&self, request: GenerateRequest) -> Result<Generation, ProviderError> {
        let mut permit = self.shared.acquire()?;
        let result = self.inner.generate(request).await;
        permit.outcome = match &result {
            Ok(_) => Outcome::Success,
            Err(error) => classify(error),
        };
        result
    }

    async fn generate_stream(
        &self,
        request: GenerateRequest,
    ) -> Result<GenerationStream, ProviderError> {
        let mut permit = self.shared.acquire()?;
        match self.inner.generate_stream(request).await {
            Ok(stream) => Ok(Box::pin(Judged {
                inner: stream,
                permit: Some(permit),
            })),
            Err(error) => {
                permit.outcome = classify(&error);
                Err(error)
            }
        }
    }

    async fn health(&self) -> ProviderHealth {
        match self.state() {
            BreakerState::Open => ProviderHealth::Unhealthy {
                reason: "circuit breaker open".into(),
            },
            BreakerState::HalfOpen => ProviderHealth::Degraded {
                reason: "circuit breaker half-open: probing".into(),
            },
            BreakerState::Closed => self.inner.health().await,
        }
    }
}

/// Whether an error says the provider is failing.
///
/// Failures: the provider is at fault (timeouts, 429s, 5xx, unreadable answers). Successes: the
/// provider answered, so it is up, even if it refused the request (a caller's bad input or key
/// must not open the breaker). Ignored: nothing was learnt about the provider (the caller
/// cancelled, or a layer below refused before calling it).
fn classify(error: &ProviderError) -> Outcome {
    match error {
        ProviderError::Timeout { .. }
        | ProviderError::Unavailable { .. }
        | ProviderError::RateLimited { .. }
        | ProviderError::InvalidResponse { .. } => Outcome::Failure,
        ProviderError::BadRequest { .. }
        | ProviderError::Unsupported { .. }
        | ProviderError::Unauthorized { .. } => Outcome::Success,
        ProviderError::AllFailed { attempts } => attempts
            .iter()
            .map(|attempt| classify(&attempt.error))
            .find(|outcome| *outcome == Outcome::Failure)
            .unwrap_or(Outcome::Ignored),
        _ => Outcome::Ignored,
    }
}

/// failsafe's clock. It reads `Instant::now()` unless a test froze it with
/// `failsafe::clock::freeze` (hidden API, so only this crate's tests use it); reading the same
/// clock keeps `until` and [`CircuitBreaker::state`] in step with failsafe's own decisions.
fn now() -> Instant {
    #[cfg(test)]
    let now = failsafe::clock::now();
    #[cfg(not(test))]
    let now = Instant::now();
    now
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Success,
    Failure,
    Ignored,
}

/// The state failsafe keeps to itself, mirrored from its instrument callbacks.
#[derive(Debug)]
struct Mirror {
    state: BreakerState,
    /// When an open breaker will let a probe through.
    until: Instant,
    open_for: Duration,
    /// Bumped on every transition, so outcomes of calls from an earlier state are dropped.
    epoch: u64,
    /// Probes in flight while half-open.
    probes: u32,
    consecutive_failures: u32,
}

#[derive(Debug)]
struct Shared {
    provider: String,
    machine: StateMachine<Policy, Transition>,
    transition: Transition,
    /// The longest open duration failsafe took from [`OpenBackoff`] during the last failure.
    chosen: Arc<AtomicU64>,
    half_open_probes: u32,
    /// Held around every call into `machine`, so its callbacks and our mirror cannot interleave
    /// with another call's.
    mirror: Mutex<Mirror>,
    events: Arc<dyn EventSink>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Mirror> {
        // Every critical section leaves the mirror consistent before anything can panic.
        self.mirror.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn acquire(self: &Arc<Self>) -> Result<Permit, ProviderError> {
        let mut mirror = self.lock();
        if mirror.state == BreakerState::HalfOpen && mirror.probes >= self.half_open_probes {
            // Half-open already, waiting for the probes in flight. When they will answer is
            // unknown (up to the request timeout, which the breaker does not see), and `now`
            // would tell clients honouring RetryInfo to retry at once, in a tight loop. The
            // open time last chosen is the wait already judged right for this provider.
            return Err(ProviderError::CircuitOpen {
                until: now() + mirror.open_for,
            });
        }
        let permitted = self.machine.is_call_permitted();
        if self.transition.take() == Transition::HALF_OPEN {
            mirror.state = BreakerState::HalfOpen;
            mirror.epoch += 1;
            mirror.probes = 0;
            tracing::info!(provider = %self.provider, "circuit breaker half-open: probing");
        }
        if !permitted {
            return Err(ProviderError::CircuitOpen {
                until: mirror.until,
            });
        }
        let probe = mirror.state == BreakerState::HalfOpen;
        if probe {
            mirror.probes += 1;
        }
        Ok(Permit {
            shared: Arc::clone(self),
            epoch: mirror.epoch,
            probe,
            outcome: Outcome::Ignored,
        })
    }

    fn finish(&self, epoch: u64, probe: bool, outcome: Outcome) {
        let mut mirror = self.lock();
        if mirror.epoch != epoch {
            // The breaker changed state while this call ran: its outcome describes the
            // provider as it was then, not as it is now.
            return;
        }
        if probe {
            mirror.probes = mirror.probes.saturating_sub(1);
        }
        match outcome {
            Outcome::Ignored => return,
            Outcome::Success => {
                mirror.consecutive_failures = 0;
                self.machine.on_success();
            }
            Outcome::Failure => {
                mirror.consecutive_failures = mirror.consecutive_failures.saturating_add(1);
                self.chosen.store(0, Ordering::Relaxed);
                self.machine.on_error();
            }
        }
        let event = match self.transition.take() {
            Transition::OPEN => {
                // failsafe reuses the last duration when neither policy picked a new one.
                let chosen = self.chosen.load(Ordering::Relaxed);
                if chosen > 0 {
                    mirror.open_for = Duration::from_millis(chosen);
                }
                mirror.state = BreakerState::Open;
                mirror.epoch += 1;
                mirror.probes = 0;
                mirror.until = now() + mirror.open_for;
                let mut opened = CircuitOpened::default();
                opened.provider = self.provider.clone();
                opened.consecutive_failures = mirror.consecutive_failures;
                opened.open_for_ms = millis(mirror.open_for);
                let open_for = mirror.open_for;
                tracing::warn!(provider = %self.provider, ?open_for, "circuit breaker opened");
                CloudEvent::new(self.source(), &opened)
            }
            Transition::CLOSED => {
                mirror.state = BreakerState::Closed;
                mirror.epoch += 1;
                mirror.probes = 0;
                mirror.consecutive_failures = 0;
                let mut closed = CircuitClosed::default();
                closed.provider = self.provider.clone();
                tracing::info!(provider = %self.provider, "circuit breaker closed");
                CloudEvent::new(self.source(), &closed)
            }
            _ => return,
        };
        // Emit outside the lock: a sink is foreign code.
        drop(mirror);
        self.events.emit(event);
    }

    fn source(&self) -> String {
        format!("/providers/{}/breaker", self.provider)
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// Permission to make one call; reports the call's outcome to the breaker when dropped, so a call
/// abandoned half-way (a dropped future or stream) frees its probe slot and records nothing.
#[derive(Debug)]
struct Permit {
    shared: Arc<Shared>,
    epoch: u64,
    probe: bool,
    outcome: Outcome,
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.shared.finish(self.epoch, self.probe, self.outcome);
    }
}

pin_project_lite::pin_project! {
    /// A stream judged when it ends: success at `Finished`, failure at an error or at an end
    /// without `Finished` (a truncated answer).
    struct Judged<S> {
        #[pin]
        inner: S,
        permit: Option<Permit>,
    }
}

impl<S> Stream for Judged<S>
where
    S: Stream<Item = Result<StreamDelta, ProviderError>>,
{
    type Item = S::Item;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.project();
        let item = ready!(this.inner.poll_next(cx));
        let outcome = match &item {
            Some(Ok(StreamDelta::Finished(_))) => Some(Outcome::Success),
            Some(Err(error)) => Some(classify(error)),
            None => Some(Outcome::Failure),
            Some(Ok(_)) => None,
        };
        if let Some(outcome) = outcome
            && let Some(mut permit) = this.permit.take()
        {
            permit.outcome = outcome;
        }
        Poll::Ready(item)
    }
}

/// The open duration: `open_ms`, doubling on every trip without a close in between, capped at
/// `max_open_ms`. failsafe's own backoffs count whole seconds and refuse less than one.
#[derive(Debug, Clone)]
struct OpenBackoff {
    next: Duration,
    max: Duration,
    /// Shared by the clones in both policies: the longest duration handed out since it was
    /// last cleared, which is the one failsafe picks.
    chosen: Arc<AtomicU64>,
}

impl Iterator for OpenBackoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let open = self.next;
        self.next = self.next.saturating_mul(2).min(self.max);
        self.chosen.fetch_max(millis(open), Ordering::Relaxed);
        Some(open)
    }
}

type Policy = OrElse<ConsecutiveFailures<OpenBackoff>, SuccessRateOverTimeWindow<OpenBackoff>>;

/// failsafe's instrument: remembers the last transition until [`Shared`] takes it.
#[derive(Debug, Clone, Default)]
struct Transition(Arc<AtomicU8>);

impl Transition {
    const NONE: u8 = 0;
    const OPEN: u8 = 1;
    const HALF_OPEN: u8 = 2;
    const CLOSED: u8 = 3;

    fn take(&self) -> u8 {
        self.0.swap(Self::NONE, Ordering::Relaxed)
    }
}

impl Instrument for Transition {
    fn on_call_rejected(&self) {}

    fn on_open(&self) {
        self.0.store(Self::OPEN, Ordering::Relaxed);
    }

    fn on_half_open(&self) {
        self.0.store(Self::HALF_OPEN, Ordering::Relaxed);
    }

    fn on_closed(&self) {
        self.0.store(Self::CLOSED, Ordering::Relaxed);
    }
}
