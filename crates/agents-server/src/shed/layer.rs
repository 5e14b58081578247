//! [`ShedLayer`], its service and its future.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use bytes::Buf as _;
use http::header::HeaderValue;
use http::{HeaderName, Request, Response};
use http_body::Body;
use pin_project_lite::pin_project;
use tokio::sync::Notify;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};
use tower_layer::Layer;
use tower_service::Service;

use super::ShedBody;
use crate::metrics::Metrics;

/// The header of gRPC's retry policy that tells a client when to retry (A6, "pushback").
const PUSHBACK: HeaderName = HeaderName::from_static("grpc-retry-pushback-ms");

/// How much of a refused request's body is read before the answer goes out. A gRPC call's
/// body follows its headers at once and is small; reading it to its end lets HTTP/2 close the
/// stream with the answer and free its slot then (see [`drain`]). A larger body is left unread.
pub(crate) const DRAIN_LIMIT_BYTES: usize = 64 * 1024;

/// What the front door admits; built from the `limits` section
/// ([`LimitsConfig::shed`](crate::limits::LimitsConfig::shed)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShedConfig {
    /// Requests in flight, from arrival to the end of the response, beyond which new ones are
    /// refused.
    pub max_in_flight: usize,
    /// The longest a request may wait between its arrival and the start of its handling;
    /// `None` turns the check off.
    pub max_queue_delay: Option<Duration>,
    /// The retry hint sent with each refusal (`grpc-retry-pushback-ms` and
    /// `google.rpc.RetryInfo`).
    pub retry_after: Duration,
}

impl ShedConfig {
    /// `max_in_flight` requests at once, no queue-delay check, a 100 ms retry hint.
    pub fn new(max_in_flight: usize) -> Self {
        Self {
            max_in_flight,
            max_queue_delay: None,
            retry_after: Duration::from_millis(100),
        }
    }

    /// Sets the queue-delay check (`None` turns it off).
    #[must_use]
    pub fn with_max_queue_delay(mut self, max: Option<Duration>) -> Self {
        self.max_queue_delay = max;
        self
    }

    /// Sets the retry hint of refusals.
    #[must_use]
    pub fn with_retry_after(mut self, retry_after: Duration) -> Self {
        self.retry_after = retry_after;
        self
    }
}

/// Why the front door refused a request: the label of `agents_load_shed_total{reason}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ShedReason {
    /// `limits.max_in_flight` requests were already in flight.
    InFlight,
    /// The request waited longer than `limits.max_queue_delay_ms` to start.
    QueueDelay,
}

impl ShedReason {
    /// The label value: `in_flight` or `queue_delay`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InFlight => "in_flight",
            Self::QueueDelay => "queue_delay",
        }
    }
}

/// How often the probe measures the runtime's scheduling delay.
const PROBE_PERIOD: Duration = Duration::from_millis(5);

/// Measurements in a row that found nothing in flight (and no lag) after which the probe parks
/// (a second's worth): a quiet server then does not wake every [`PROBE_PERIOD`], and the next
/// admitted request wakes the probe again. Requests that start and end between two
/// measurements are not seen by them; the one that finds the probe parked wakes it.
pub(super) const QUIET_TICKS_BEFORE_PARKING: u32 = 200;

struct Shared {
    config: ShedConfig,
    in_flight: AtomicUsize,
    /// How late the probe task last woke, in microseconds: how long a runnable task waits for
    /// a worker thread right now.
    lag_us: AtomicU64,
    /// Set when the probe parks on a quiet server; cleared by the admitted request that wakes
    /// it through `wake_probe`, or by the probe itself when it resumes.
    probe_parked: AtomicBool,
    /// Wakes the parked probe. An `Arc` of its own, so that a parked probe does not keep the
    /// layer alive; dropping the last holder of this state (the layer, its services and the
    /// in-flight slots) wakes it too, and it ends.
    wake_probe: Arc<Notify>,
    /// Measurements taken, for the tests.
    #[cfg(test)]
    probe_ticks: AtomicU64,
    metrics: Arc<Metrics>,
    /// Built once: a refusal must cost next to nothing.
    in_flight_refusal: Status,
    queue_delay_refusal: Status,
    pushback: HeaderValue,
}

impl Shared {
    /// Whether the runtime is too far behind to start new work (`max_queue_delay`).
    fn lagging(&self) -> bool {
        self.config
            .max_queue_delay
            .is_some_and(|max| Duration::from_micros(self.lag_us.load(Ordering::Relaxed)) > max)
    }

    fn try_acquire(self: &Arc<Self>) -> Option<Slot> {
        // One read-modify-write; a refused request overshoots the count for an instant and
        // gives its increment back, which is harmless.
        let before = self.in_flight.fetch_add(1, Ordering::SeqCst);
        if before >= self.config.max_in_flight {
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        // Paired with the probe's parking (all four accesses sequentially consistent): either
        // the probe sees this request in flight and keeps measuring, or this request sees the
        // probe parked and wakes it. The swap makes one request do it, once per quiet spell.
        if self.probe_parked.load(Ordering::SeqCst)
            && self.probe_parked.swap(false, Ordering::SeqCst)
        {
            self.wake_probe.notify_one();
        }
        Some(Slot {
            shared: Arc::clone(self),
        })
    }

    /// Parks the probe if nothing came in meanwhile; `false` when something did.
    fn park_probe(&self) -> bool {
        self.probe_parked.store(true, Ordering::SeqCst);
        if self.in_flight.load(Ordering::SeqCst) == 0 {
            return true;
        }
        // A request arrived. If it saw the flag it also left a wake-up, which only makes the
        // probe's next parking end at once.
        self.probe_parked.store(false, Ordering::SeqCst);
        false
    }

    /// Refuses `request`: counted now, when it is decided, so that a refusal whose client
    /// goes away while its body is read still counts; answered once its body is read.
    fn refuse<B>(&self, reason: ShedReason, request: Request<B>) -> Refused<B> {
        self.metrics.load_shed(reason);
        Refused {
            reason,
            body: request.into_body(),
            read: 0,
        }
    }

    fn refusal<B: Default>(&self, reason: ShedReason) -> Response<ShedBody<B>> {
        let status = match reason {
            ShedReason::InFlight => &self.in_flight_refusal,
            ShedReason::QueueDelay => &self.queue_delay_refusal,
        };
        let mut response = status.clone().into_http::<B>();
        response
            .headers_mut()
            .insert(PUSHBACK, self.pushback.clone());
        response.map(|body| ShedBody::new(body, None))
    }
}

/// Measures the runtime's scheduling delay until the layer is dropped: sleeps
/// [`PROBE_PERIOD`] and records how much later than asked it ran again. Under CPU saturation
/// the requests that wait do so where the layer cannot time them one by one (hyper's connection
/// tasks reading frames, handlers waiting to be polled again, and tokio runs a freshly spawned
/// stream task next, so its own wait looks short); this probe waits in the same queue.
///
/// After [`QUIET_TICKS_BEFORE_PARKING`] measurements in a row with nothing in flight (and no
/// lag), it parks until the next admitted request: an idle server would otherwise wake 200
/// times a second for nothing. The lag it last measured, small on a quiet server, stands
/// meanwhile; the first request back restarts the measuring at once.
async fn probe(weak: Weak<Shared>, wake: Arc<Notify>) {
    let mut quiet: u32 = 0;
    loop {
        // Tokio's clock, which is the machine's except in tests on paused time, where the
        // lateness it reads is the runtime's own and a descheduled test thread cannot fake a
        // lag.
        let asked = tokio::time::Instant::now();
        tokio::time::sleep(PROBE_PERIOD).await;
        let late = asked.elapsed().saturating_sub(PROBE_PERIOD);
        let Some(shared) = weak.upgrade() else {
            return;
        };
        let late_us = u64::try_from(late.as_micros()).unwrap_or(u64::MAX);
        shared.lag_us.store(late_us, Ordering::Relaxed);
        #[cfg(test)]
        shared.probe_ticks.fetch_add(1, Ordering::Relaxed);
        quiet = if shared.in_flight.load(Ordering::SeqCst) == 0 {
            quiet.saturating_add(1)
        } else {
            0
        };
        if quiet < QUIET_TICKS_BEFORE_PARKING || shared.lagging() {
            continue;
        }
        quiet = 0;
        if shared.park_probe() {
            // Not holding the layer while parked: dropping it wakes this, and the next
            // measurement finds it gone.
            drop(shared);
            wake.notified().await;
            // Woken by a request (which cleared the flag) or by a wake-up left from before
            // (which did not): either way no longer parked.
            if let Some(shared) = weak.upgrade() {
                shared.probe_parked.store(false, Ordering::SeqCst);
            }
        }
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // A parked probe waits for a request that will never come: wake it to end.
        self.wake_probe.notify_one();
    }
}

/// A request's place in the in-flight count; dropping it gives the place back.
pub(crate) struct Slot {
    shared: Arc<Shared>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.shared.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Sheds load in front of the gRPC router; see the [module docs](super). Cheap to clone:
/// clones share one count.
#[derive(Clone)]
pub struct ShedLayer {
    shared: Arc<Shared>,
}

impl ShedLayer {
    /// A layer admitting what `config` allows and counting refusals in `metrics`.
    pub fn new(config: ShedConfig, metrics: Arc<Metrics>) -> Self {
        let retry_ms = u64::try_from(config.retry_after.as_millis()).unwrap_or(u64::MAX);
        let refusal = |message: String| {
            let mut details = ErrorDetails::new();
            details.set_retry_info(Some(config.retry_after));
            Status::with_error_details(Code::ResourceExhausted, message, details)
        };
        let in_flight_refusal = refusal(format!(
            "server overloaded: {} requests are in flight, the most it takes \
             (limits.max_in_flight); retry in {retry_ms} ms with backoff, or send fewer \
             concurrent calls",
            config.max_in_flight
        ));
        let queue_delay_refusal = refusal(format!(
            "server overloaded: its CPU is saturated, work waits more than {} ms to run \
             (limits.max_queue_delay_ms); retry in {retry_ms} ms with backoff, or send fewer \
             calls per second",
            config.max_queue_delay.map_or(0, |d| d.as_millis())
        ));
        let shared = Arc::new(Shared {
            in_flight: AtomicUsize::new(0),
            lag_us: AtomicU64::new(0),
            probe_parked: AtomicBool::new(false),
            wake_probe: Arc::new(Notify::new()),
            #[cfg(test)]
            probe_ticks: AtomicU64::new(0),
            metrics,
            in_flight_refusal,
            queue_delay_refusal,
            pushback: HeaderValue::from(retry_ms),
            config,
        });
        // Outside a runtime (some tests) there is no probe and the lag reads 0.
        if shared.config.max_queue_delay.is_some()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(probe(
                Arc::downgrade(&shared),
                Arc::clone(&shared.wake_probe),
            ));
        }
        Self { shared }
    }

    /// Requests counted now (health and reflection are never counted).
    pub fn in_flight(&self) -> usize {
        self.shared.in_flight.load(Ordering::Acquire)
    }

    /// The runtime's scheduling delay as last measured (zero without a queue-delay check).
    pub fn scheduling_delay(&self) -> Duration {
        Duration::from_micros(self.shared.lag_us.load(Ordering::Relaxed))
    }

    /// How many times the probe has measured.
    #[cfg(test)]
    pub(super) fn probe_ticks(&self) -> u64 {
        self.shared.probe_ticks.load(Ordering::Relaxed)
    }

    /// What the probe does when it decides to park; `false` when a request is in flight.
    #[cfg(test)]
    pub(super) fn park_probe(&self) -> bool {
        self.shared.park_probe()
    }

    /// Whether the probe is marked parked.
    #[cfg(test)]
    pub(super) fn probe_parked(&self) -> bool {
        self.shared.probe_parked.load(Ordering::SeqCst)
    }

    #[cfg(test)]
    pub(super) fn set_scheduling_delay(&self, delay: Duration) {
        let micros = u64::try_from(delay.as_micros()).unwrap_or(u64::MAX);
        self.shared.lag_us.store(micros, Ordering::Relaxed);
    }
}

impl fmt::Debug for ShedLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShedLayer")
            .field("config", &self.shared.config)
            .field("in_flight", &self.in_flight())
            .finish()
    }
}

impl<S> Layer<S> for ShedLayer {
    type Service = ShedService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ShedService {
            inner,
            shared: Arc::clone(&self.shared),
        }
    }
}

/// The service of [`ShedLayer`].
#[derive(Clone)]
pub struct ShedService<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> fmt::Debug for ShedService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShedService")
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

/// Health checks and reflection: never counted, never refused (see the module docs).
fn is_exempt(path: &str) -> bool {
    path.starts_with("/grpc.health.v1.Health/") || path.starts_with("/grpc.reflection.")
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for ShedService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
    ReqBody: Body + Unpin,
    ResBody: Default,
{
    type Response = Response<ShedBody<ResBody>>;
    type Error = S::Error;
    type Future = ShedFuture<S, ReqBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let shared = Arc::clone(&self.shared);
        if is_exempt(request.uri().path()) {
            return ShedFuture::new(shared, State::Running, Some(self.inner.call(request)), None);
        }
        let arrived = Instant::now();
        request.extensions_mut().insert(Arrived(arrived));
        if shared.lagging() {
            let refused = shared.refuse(ShedReason::QueueDelay, request);
            return ShedFuture::new(shared, State::Refused(refused), None, None);
        }
        let Some(slot) = shared.try_acquire() else {
            let refused = shared.refuse(ShedReason::InFlight, request);
            return ShedFuture::new(shared, State::Refused(refused), None, None);
        };
        if shared.config.max_queue_delay.is_none() {
            let future = self.inner.call(request);
            return ShedFuture::new(shared, State::Running, Some(future), Some(slot));
        }
        // The handler starts at the first poll, when the wait is known. The service made
        // ready by `poll_ready` goes with the request; a clone takes its place here.
        let clone = self.inner.clone();
        let service = std::mem::replace(&mut self.inner, clone);
        let waiting = Waiting {
            service,
            request,
            arrived,
        };
        ShedFuture::new(shared, State::Waiting(waiting), None, Some(slot))
    }
}

/// When the front door saw a request, in its extensions: a run's deadline counts from it, as
/// the client's `grpc-timeout` and tonic's own timer for it do, not from the handler's start
/// (which can be a queue delay later).
#[derive(Debug, Clone, Copy)]
pub struct Arrived(pub Instant);

struct Waiting<S, B> {
    service: S,
    request: Request<B>,
    arrived: Instant,
}

/// A refused request (see [`Shared::refuse`]): why, and what is left of its body to read
/// before answering.
struct Refused<B> {
    reason: ShedReason,
    body: B,
    read: usize,
}

/// Reads a refused request's body until it ends, fails (the client reset the stream), or
/// [`DRAIN_LIMIT_BYTES`] were read (checked before each frame, so up to one frame more). A
/// client that never ends its body is answered by its deadline (`grpc-timeout`), as an
/// admitted call that never ends its body would be; the refusal meanwhile holds an HTTP/2
/// stream but no slot.
///
/// Why: measured at twice the knee with `http2_max_concurrent_streams` at the client's
/// concurrency per connection, answering at once gave 6-112 calls per run refused by HTTP/2
/// itself (`REFUSED_STREAM`, an `UNAVAILABLE` without our message or retry hint), in each of
/// three runs; reading the body first gave none in three runs, as did runs where nothing was
/// shed (handlers read their whole body). Our reading of `h2`'s stream accounting: answered
/// while its body is on the way, the stream is reset after the answer and keeps its slot
/// until that reset is written, while the client frees its own slot on reading the answer's
/// end and may open its next stream first.
fn drain<B: Body + Unpin>(refused: &mut Refused<B>, cx: &mut Context<'_>) -> Poll<()> {
    while refused.read < DRAIN_LIMIT_BYTES && !refused.body.is_end_stream() {
        match Pin::new(&mut refused.body).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    refused.read = refused.read.saturating_add(data.remaining());
                }
            }
            // The end, or a stream the client reset: nothing more will come.
            Poll::Ready(None | Some(Err(_))) => break,
            Poll::Pending => return Poll::Pending,
        }
    }
    Poll::Ready(())
}

// The future lives inside hyper's task for the stream either way; boxing the waiting request
// to shrink the other variants would cost an allocation per request.
#[allow(clippy::large_enum_variant)]
enum State<S, B> {
    /// Admitted by count; not started (the queue-delay check runs at the first poll).
    Waiting(Waiting<S, B>),
    /// Started (or exempt): the inner future is running.
    Running,
    /// To be answered with `RESOURCE_EXHAUSTED` once its body is read ([`drain`]).
    Refused(Refused<B>),
    /// The response was returned.
    Done,
}

pin_project! {
    /// The future of [`ShedService`]: a refusal, or the inner response with the request's slot
    /// moved into its body.
    pub struct ShedFuture<S, B>
    where
        S: Service<Request<B>>,
    {
        #[pin]
        running: Option<S::Future>,
        state: State<S, B>,
        slot: Option<Slot>,
        shared: Arc<Shared>,
    }
}

impl<S, B> ShedFuture<S, B>
where
    S: Service<Request<B>>,
{
    fn new(
        shared: Arc<Shared>,
        state: State<S, B>,
        running: Option<S::Future>,
        slot: Option<Slot>,
    ) -> Self {
        Self {
            running,
            state,
            slot,
            shared,
        }
    }
}

impl<S, B> fmt::Debug for ShedFuture<S, B>
where
    S: Service<Request<B>>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Waiting(_) => "waiting",
            State::Running => "running",
            State::Refused(_) => "refused",
            State::Done => "done",
        };
        f.debug_struct("ShedFuture")
            .field("state", &state)
            .finish_non_exhaustive()
    }
}

impl<S, B, ResBody> Future for ShedFuture<S, B>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
    B: Body + Unpin,
    ResBody: Default,
{
    type Output = Result<Response<ShedBody<ResBody>>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if let State::Waiting(_) = this.state {
            let State::Waiting(Waiting {
                mut service,
                request,
                arrived,
            }) = std::mem::replace(this.state, State::Done)
            else {
                return Poll::Pending;
            };
            let waited_too_long = this
                .shared
                .config
                .max_queue_delay
                .is_some_and(|max| arrived.elapsed() > max);
            if waited_too_long {
                // Give the place back before answering: the refusal holds no slot.
                this.slot.take();
                *this.state = State::Refused(this.shared.refuse(ShedReason::QueueDelay, request));
            } else {
                this.running.set(Some(service.call(request)));
                *this.state = State::Running;
            }
        }
        match std::mem::replace(this.state, State::Done) {
            State::Refused(mut refused) => {
                if drain(&mut refused, cx).is_pending() {
                    *this.state = State::Refused(refused);
                    return Poll::Pending;
                }
                Poll::Ready(Ok(this.shared.refusal(refused.reason)))
            }
            State::Running => {
                *this.state = State::Running;
                let Some(future) = this.running.as_mut().as_pin_mut() else {
                    return Poll::Pending;
                };
                let response = ready!(future.poll(cx))?;
                *this.state = State::Done;
                this.running.set(None);
                let slot = this.slot.take();
                Poll::Ready(Ok(response.map(|body| ShedBody::new(body, slot))))
            }
            // Polled after completion: stay pending rather than answer twice.
            State::Waiting(_) | State::Done => Poll::Pending,
        }
    }
}
