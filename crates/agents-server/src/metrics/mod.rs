//! Prometheus metrics: what an operator watches to know the server is healthy, and to find out
//! why when it is not.
//!
//! One [`Metrics`] per process, shared with `Arc`. The gRPC layer calls its methods
//! ([`Metrics::record_request`], [`Metrics::in_flight_guard`], [`Metrics::load_shed`],
//! [`Metrics::tenant_throttled`]); providers, breakers and the host guard are counted from the
//! events they already emit, through the [`MetricsSink`] of [`Metrics::sink`]; the bus's own
//! counters are read on each scrape ([`Metrics::set_bus_source`]). [`serve_http`] exposes the
//! result on `/metrics`, next to `/healthz` and `/readyz`.
//!
//! | metric | type | what it is watched for |
//! |--------|------|------------------------|
//! | `agents_requests_total{agent, code}` | counter | traffic and error rate per agent; `code` is the gRPC code name (`OK`, `INVALID_ARGUMENT`, `UNAVAILABLE`, …), so a rise of `UNAVAILABLE` means providers are down and `INVALID_ARGUMENT` means clients send bad input |
//! | `agents_request_duration_seconds{agent}` | histogram | latency SLOs as the client sees them |
//! | `agents_runtime_overhead_seconds{agent}` | histogram | the runtime's own cost (total minus time spent waiting on providers): a rise here is our regression, not the model's |
//! | `agents_gateway_overhead_seconds{agent}` | histogram | everything this server adds to the model's answer, its provider policies, request encoding and answer parsing included: total minus the answering attempt's exchange with the model's server. The figure a gateway is compared by (LiteLLM's `x-litellm-overhead-duration-ms` is the same subtraction). Failed attempts before the answer, retry waits and fallbacks count too, so a rise is either our regression or providers failing (see `agents_fallbacks_total`). Only successful calls whose exchange was measured: unary model calls to OpenAI-compatible and MCP providers (`ExecuteStream` included), not streamed generations or answers made without a model. In a worker, the agent's run, without the task-store round trips around it |
//! | `agents_in_flight` | gauge | concurrency against the global in-flight cap |
//! | `agents_load_shed_total{reason}` | counter | requests refused at once with `RESOURCE_EXHAUSTED` by the server's front door or its global cap: `in_flight` (`limits.max_in_flight` reached) or `queue_delay` (a request waited longer than `limits.max_queue_delay_ms` to start: the CPU is saturated). Either way capacity is short |
//! | `agents_tenant_throttled_total{tenant, reason}` | counter | a tenant hitting its `rate` or `concurrency` limit: raise its limit or talk to it |
//! | `agents_provider_requests_total{provider}` | counter | attempts per provider, retries included; compare with requests to see retry amplification |
//! | `agents_provider_duration_seconds{provider, outcome}` | histogram | model latency per provider, `success` and `failure` apart (timeouts are slow failures) |
//! | `agents_provider_errors_total{provider, kind}` | counter | why a provider fails: `timeout`, `rate_limited`, `unavailable`, `unauthorized` (a revoked key), … |
//! | `agents_provider_tokens_total{provider, direction}` | counter | spend: `prompt` and `completion` tokens billed |
//! | `agents_fallbacks_total{from, to, reason}` | counter | the chain moving past a provider, and why: answers still come, but from the second choice |
//! | `agents_breaker_open{provider}` | gauge | 1 while a provider's circuit breaker is open and the provider is skipped |
//! | `agents_host_pressure_level{resource}` | gauge | `memory` / `thermal` pressure on a host serving a local model: 0 normal, 1 warning (requests are cut down), 2 critical (refused) |
//! | `agents_quota_rejections_total{provider, scope}` | counter | local `rate` / `concurrency` quotas of a provider refusing calls: the quota is too small for the traffic |
//! | `agents_bus_<counter>_total`, `agents_bus_outbox_depth` | counter, gauge | the event bus ([`merge_bus_numbers`] says which bus each number is read from): `lagged` subscribers (`agents_bus_lagged_total`, the bus lag), `sink_dropped` and `outbox_dropped` events are lost events; a growing `outbox_depth` means the transport is unreachable |
//! | `agents_quota_waiting{provider}` | gauge | callers queued for a provider's concurrency quota: a standing queue means the quota (or the model behind it) is too small for the traffic, and calls wait before they are refused |
//! | `agents_quota_in_flight{provider}` | gauge | calls holding a quota slot; at `max_concurrent` the next caller queues |
//! | `agents_audit_write_errors_total` | counter | audit lines that could not be written: the audit trail has a gap |
//! | `agents_task_duration_seconds{agent, outcome}` | histogram | queued tasks (worker): one delivery's run, from the worker starting it to its outcome (`completed`, `failed`, `retried`, `dead_lettered`, `canceled`, `handed_back`) |
//! | `agents_task_queue_wait_seconds{agent}` | histogram | queued tasks (worker): from submission to a worker picking the task up (first deliveries): a growing wait means too few workers |
//! | `agents_task_queue_depth{agent}` | gauge | queued tasks (server and worker): tasks of the agent waiting in, or held from, the queue at the last refresh |
//! | `agents_task_queue_depth_refresh_errors_total` | counter | queue-depth refreshes that failed (NATS unreachable): the depth gauge is stale |
//! | `agents_task_queue_refused_full_total` | counter | SubmitTask calls the task queue refused because it was full (its `max_bytes`): answered `RESOURCE_EXHAUSTED`; workers are behind |
//! | `agents_worker_paused{worker}` | gauge | 1 while a worker takes no new task because its resident memory is over `worker.memory_limit_mib` |
//! | `agents_worker_pulls_skipped_total{worker}` | counter | pull rounds a worker skipped for the same reason |
//!
//! Label values come from configuration and events. Each passes through
//! [`agents_core::redact`], is cut to 128 bytes, and each family holds at most
//! [`MAX_SERIES_PER_FAMILY`] label sets: later ones are recorded under one series whose labels
//! are all `other`, so a flood of distinct names cannot exhaust memory here or in Prometheus.

mod bounded;
mod http;
mod sink;
mod sources;

#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use agents_core::EventSink;
use prometheus_client::encoding::{prometheus_text, text as openmetrics_text};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use crate::shed::ShedReason;
use bounded::Bounded;
use sources::{SourceCollector, Sources};

pub use http::serve_http;
pub use sink::MetricsSink;
pub use sources::{FactsCacheSample, QuotaSample, merge_bus_numbers};

/// Most label sets a family records on their own; later ones share one `other` series.
pub const MAX_SERIES_PER_FAMILY: usize = 1_000;

/// `Content-Type` of [`Metrics::encode`]: the Prometheus text format 0.0.4.
pub const PROMETHEUS_CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// `Content-Type` of [`Metrics::encode_openmetrics`].
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Why a tenant's request was throttled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ThrottleReason {
    /// The tenant's request rate (token bucket) was exhausted.
    Rate,
    /// The tenant already had its maximum of requests in flight.
    Concurrency,
}

impl ThrottleReason {
    /// The label value: `rate` or `concurrency`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rate => "rate",
            Self::Concurrency => "concurrency",
        }
    }
}

/// The server's metrics registry and every family in it. See the [module docs](self).
pub struct Metrics {
    registry: Registry,
    requests: Bounded<2, Counter>,
    request_duration: Bounded<1, Histogram>,
    runtime_overhead: Bounded<1, Histogram>,
    gateway_overhead: Bounded<1, Histogram>,
    in_flight: Gauge,
    load_shed: Family<[(&'static str, &'static str); 1], Counter>,
    /// The series of `load_shed`, fetched once: shedding must stay cheap.
    shed_in_flight: Counter,
    shed_queue_delay: Counter,
    tenant_throttled: Bounded<2, Counter>,
    provider_requests: Bounded<1, Counter>,
    provider_duration: Bounded<2, Histogram>,
    provider_errors: Bounded<2, Counter>,
    provider_tokens: Bounded<2, Counter>,
    fallbacks: Bounded<3, Counter>,
    breaker_open: Bounded<1, Gauge>,
    host_pressure: Bounded<1, Gauge>,
    quota_rejections: Bounded<2, Counter>,
    task_duration: Bounded<2, Histogram>,
    task_queue_wait: Bounded<1, Histogram>,
    task_queue_depth: Bounded<1, Gauge>,
    task_queue_depth_errors: Counter,
    task_queue_full: Counter,
    worker_paused: Bounded<1, Gauge>,
    worker_pulls_skipped: Bounded<1, Counter>,
    sources: Arc<Sources>,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Not the registry: its debug output is every series, label values included.
        f.debug_struct("Metrics")
            .field("in_flight", &self.in_flight.get())
            .field("sources", &self.sources)
            .finish_non_exhaustive()
    }
}

/// Buckets for whole requests and provider calls: model answers take from milliseconds (a
/// cached or local model) to minutes (long generations).
fn call_histogram() -> Histogram {
    Histogram::new([
        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
    ])
}

/// Buckets for queued tasks: a run or a wait in an idle queue takes well under a millisecond
/// of our own work, a model answer seconds to minutes, and a backed-up queue holds tasks for
/// an hour.
fn task_histogram() -> Histogram {
    Histogram::new([
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
        60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
    ])
}

/// Buckets for the runtime's own overhead, which should stay well under the model's latency.
/// They start at 100 µs: a healthy call costs a few hundred microseconds here, so coarser
/// buckets would put every call in the first one.
fn overhead_histogram() -> Histogram {
    Histogram::new([
        0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    ])
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Every family registered, all empty.
    pub fn new() -> Self {
        let cap = MAX_SERIES_PER_FAMILY;
        let load_shed = Family::<[(&'static str, &'static str); 1], Counter>::default();
        let shed_in_flight = load_shed
            .get_or_create(&[("reason", ShedReason::InFlight.as_str())])
            .clone();
        let shed_queue_delay = load_shed
            .get_or_create(&[("reason", ShedReason::QueueDelay.as_str())])
            .clone();
        let this = Self {
            registry: Registry::with_prefix("agents"),
            requests: Bounded::new(["agent", "code"], Counter::default, cap),
            request_duration: Bounded::new(["agent"], call_histogram, cap),
            runtime_overhead: Bounded::new(["agent"], overhead_histogram, cap),
            gateway_overhead: Bounded::new(["agent"], overhead_histogram, cap),
            in_flight: Gauge::default(),
            load_shed,
            shed_in_flight,
            shed_queue_delay,
            tenant_throttled: Bounded::new(["tenant", "reason"], Counter::default, cap),
            provider_requests: Bounded::new(["provider"], Counter::default, cap),
            provider_duration: Bounded::new(["provider", "outcome"], call_histogram, cap),
            provider_errors: Bounded::new(["provider", "kind"], Counter::default, cap),
            provider_tokens: Bounded::new(["provider", "direction"], Counter::default, cap),
            fallbacks: Bounded::new(["from", "to", "reason"], Counter::default, cap),
            breaker_open: Bounded::new(["provider"], Gauge::default, cap),
            host_pressure: Bounded::new(["resource"], Gauge::default, cap),
            quota_rejections: Bounded::new(["provider", "scope"], Counter::default, cap),
            task_duration: Bounded::new(["agent", "outcome"], task_histogram, cap),
            task_queue_wait: Bounded::new(["agent"], task_histogram, cap),
            task_queue_depth: Bounded::new(["agent"], Gauge::default, cap),
            task_queue_depth_errors: Counter::default(),
            task_queue_full: Counter::default(),
            worker_paused: Bounded::new(["worker"], Gauge::default, cap),
            worker_pulls_skipped: Bounded::new(["worker"], Counter::default, cap),
            sources: Arc::default(),
        };
        this.registered()
    }

    /// Registers every family; help texts say what a series counts (the module docs say why).
    fn registered(mut self) -> Self {
        let r = &mut self.registry;
        r.register(
            "requests",
            "Requests handled, by agent and gRPC status code",
            self.requests.family(),
        );
        r.register_with_unit(
            "request_duration",
            "Time from receiving a request to sending its response",
            Unit::Seconds,
            self.request_duration.family(),
        );
        r.register_with_unit(
            "runtime_overhead",
            "Request time not spent waiting on providers",
            Unit::Seconds,
            self.runtime_overhead.family(),
        );
        r.register_with_unit(
            "gateway_overhead",
            "Request time not spent in the model server's answer: this server's whole cost, its provider policies included",
            Unit::Seconds,
            self.gateway_overhead.family(),
        );
        r.register(
            "in_flight",
            "Requests being handled now",
            self.in_flight.clone(),
        );
        r.register(
            "load_shed",
            "Requests refused at once because the server was overloaded, by reason",
            self.load_shed.clone(),
        );
        r.register(
            "tenant_throttled",
            "Requests refused by a tenant's rate or concurrency limit",
            self.tenant_throttled.family(),
        );
        r.register(
            "provider_requests",
            "Calls sent to a provider, retries included",
            self.provider_requests.family(),
        );
        r.register_with_unit(
            "provider_duration",
            "Time a provider call took, by outcome",
            Unit::Seconds,
            self.provider_duration.family(),
        );
        r.register(
            "provider_errors",
            "Failed provider calls, by error kind",
            self.provider_errors.family(),
        );
        r.register(
            "provider_tokens",
            "Tokens billed by providers, prompt and completion",
            self.provider_tokens.family(),
        );
        r.register(
            "fallbacks",
            "Times the provider chain moved on to the next provider, and why",
            self.fallbacks.family(),
        );
        r.register(
            "breaker_open",
            "1 while the provider's circuit breaker is open, else 0",
            self.breaker_open.family(),
        );
        r.register(
            "host_pressure_level",
            "Host pressure: 0 normal, 1 warning, 2 critical",
            self.host_pressure.family(),
        );
        r.register(
            "quota_rejections",
            "Provider calls refused by a local quota",
            self.quota_rejections.family(),
        );
        r.register_with_unit(
            "task_duration",
            "Time from a worker starting a task delivery to its outcome",
            Unit::Seconds,
            self.task_duration.family(),
        );
        r.register_with_unit(
            "task_queue_wait",
            "Time from a task's submission to a worker picking it up (first delivery)",
            Unit::Seconds,
            self.task_queue_wait.family(),
        );
        r.register(
            "task_queue_depth",
            "Tasks of the agent waiting in or held from the queue, at the last refresh",
            self.task_queue_depth.family(),
        );
        r.register(
            "task_queue_depth_refresh_errors",
            "Queue depth refreshes that failed; the depth gauge keeps its last value",
            self.task_queue_depth_errors.clone(),
        );
        r.register(
            "task_queue_refused_full",
            "SubmitTask calls the task queue refused because it was full",
            self.task_queue_full.clone(),
        );
        r.register(
            "worker_paused",
            "1 while the worker pulls no task because its resident memory is over worker.memory_limit_mib",
            self.worker_paused.family(),
        );
        r.register(
            "worker_pulls_skipped",
            "Pull rounds the worker skipped because its resident memory was over worker.memory_limit_mib",
            self.worker_pulls_skipped.family(),
        );
        r.register_collector(Box::new(SourceCollector(Arc::clone(&self.sources))));
        self
    }

    /// An event sink that feeds the provider, breaker and host-pressure families.
    pub fn sink(self: &Arc<Self>) -> Arc<dyn EventSink> {
        Arc::new(MetricsSink::new(Arc::clone(self)))
    }

    /// Records one finished request: its gRPC code, its total time and the part of it spent
    /// waiting on providers (zero when no provider was called).
    pub fn record_request(
        &self,
        agent: &str,
        code: tonic::Code,
        total: Duration,
        provider: Duration,
    ) {
        self.requests.get([agent, code_name(code)]).inc();
        self.request_duration
            .get([agent])
            .observe(total.as_secs_f64());
        self.runtime_overhead
            .get([agent])
            .observe(total.saturating_sub(provider).as_secs_f64());
    }

    /// Records what a successful call added to the model's answer: its `total` time minus
    /// `upstream`, the answering attempt's exchange with the model's server. Call it only when
    /// that exchange was measured (`ExecutionMetadata::upstream_latency` is `Some`).
    pub fn record_gateway_overhead(&self, agent: &str, total: Duration, upstream: Duration) {
        self.gateway_overhead
            .get([agent])
            .observe(total.saturating_sub(upstream).as_secs_f64());
    }

    /// Records one delivery of a queued task run by a worker: how it ended (a
    /// [`TaskOutcome`]) and how long it took from the start.
    pub fn record_task(&self, agent: &str, outcome: TaskOutcome, run: Duration) {
        self.task_duration
            .get([agent, outcome.as_str()])
            .observe(run.as_secs_f64());
    }

    /// Records how long a task waited in the queue before a worker picked it up.
    pub fn record_queue_wait(&self, agent: &str, wait: Duration) {
        self.task_queue_wait
            .get([agent])
            .observe(wait.as_secs_f64());
    }

    /// Sets the queue depth of `agent`'s tasks, as just counted.
    pub fn set_task_queue_depth(&self, agent: &str, depth: u64) {
        self.task_queue_depth
            .get([agent])
            .set(i64::try_from(depth).unwrap_or(i64::MAX));
    }

    /// Counts a queue-depth refresh that failed.
    pub fn task_queue_depth_refresh_failed(&self) {
        self.task_queue_depth_errors.inc();
    }

    /// Counts a task the queue refused because it was full.
    pub fn task_queue_refused_full(&self) {
        self.task_queue_full.inc();
    }

    /// Whether `worker` is paused by its memory limit now; a paused worker also counts each
    /// pull round it skips ([`worker_pull_skipped`](Self::worker_pull_skipped)).
    pub fn set_worker_paused(&self, worker: &str, paused: bool) {
        self.worker_paused.get([worker]).set(i64::from(paused));
    }

    /// Counts a pull round `worker` skipped because it was over its memory limit.
    pub fn worker_pull_skipped(&self, worker: &str) {
        self.worker_pulls_skipped.get([worker]).inc();
    }

    /// Counts a request as in flight until the guard is dropped.
    pub fn in_flight_guard(&self) -> InFlightGuard {
        self.in_flight.inc();
        InFlightGuard {
            gauge: self.in_flight.clone(),
        }
    }

    /// Counts a request refused because the server was overloaded.
    pub fn load_shed(&self, reason: ShedReason) {
        match reason {
            ShedReason::InFlight => self.shed_in_flight.inc(),
            ShedReason::QueueDelay => self.shed_queue_delay.inc(),
        };
    }

    /// Counts a request refused by `tenant`'s own limits.
    pub fn tenant_throttled(&self, tenant: &str, reason: ThrottleReason) {
        self.tenant_throttled.get([tenant, reason.as_str()]).inc();
    }

    /// Sets where the `agents_bus_*` numbers come from, read on every scrape: usually
    /// `move || bus.metrics().snapshot().pairs()`. Names ending in `_depth` are exported as
    /// gauges, the rest as counters. Replaces an earlier source.
    pub fn set_bus_source<F>(&self, source: F)
    where
        F: Fn() -> Vec<(&'static str, u64)> + Send + Sync + 'static,
    {
        self.sources.set_bus(Arc::new(source));
    }

    /// Sets where `agents_quota_waiting` and `agents_quota_in_flight` come from, read on every
    /// scrape: one [`QuotaSample`] per provider. Replaces an earlier source.
    pub fn set_quota_source<F>(&self, source: F)
    where
        F: Fn() -> Vec<QuotaSample> + Send + Sync + 'static,
    {
        self.sources.set_quota(Arc::new(source));
    }

    /// Sets where `agents_facts_cache_hits_total`, `agents_facts_cache_misses_total` and
    /// `agents_facts_cache_bytes` come from, read on every scrape. Until set (no cache
    /// configured), the metrics are absent. Replaces an earlier source.
    pub fn set_facts_cache_source<F>(&self, source: F)
    where
        F: Fn() -> FactsCacheSample + Send + Sync + 'static,
    {
        self.sources.set_facts_cache(Arc::new(source));
    }

    /// Sets where `agents_audit_write_errors_total` comes from, read on every scrape. When the
    /// audit log counts into its own `BusMetrics`, that is its `publish_errors`:
    /// `move || audit_metrics.snapshot().publish_errors`. Until set, the metric is absent.
    pub fn set_audit_write_errors_source<F>(&self, source: F)
    where
        F: Fn() -> u64 + Send + Sync + 'static,
    {
        self.sources.set_audit_write_errors(Arc::new(source));
    }

    /// Every metric in the Prometheus text format ([`PROMETHEUS_CONTENT_TYPE`]).
    pub fn encode(&self) -> String {
        let mut text = String::new();
        if prometheus_text::encode(&mut text, &self.registry).is_err() {
            // Writing to a String cannot fail, and no family here has a failing encoder.
            tracing::error!("encoding the metrics failed; the exposition is incomplete");
        }
        text
    }

    /// Every metric in the OpenMetrics text format ([`OPENMETRICS_CONTENT_TYPE`]), `# EOF`
    /// included.
    pub fn encode_openmetrics(&self) -> String {
        let mut text = String::new();
        if openmetrics_text::encode(&mut text, &self.registry).is_err() {
            tracing::error!("encoding the metrics failed; the exposition is incomplete");
        }
        text
    }
}

/// How one delivery of a queued task ended, for `agents_task_duration_seconds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TaskOutcome {
    /// The result is recorded.
    Completed,
    /// Retrying cannot help (invalid input, an unknown agent): the task is over.
    Failed,
    /// The attempt failed and the task will be delivered again.
    Retried,
    /// The last delivery failed: the task went to the dead letters.
    DeadLettered,
    /// CancelTask stopped the run.
    Canceled,
    /// The worker shut down and gave the task back to the queue.
    HandedBack,
}

impl TaskOutcome {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Retried => "retried",
            Self::DeadLettered => "dead_lettered",
            Self::Canceled => "canceled",
            Self::HandedBack => "handed_back",
        }
    }
}

/// Keeps a request counted in `agents_in_flight`; dropping it stops counting.
#[derive(Debug)]
#[must_use = "the request stops counting as in flight when the guard is dropped"]
pub struct InFlightGuard {
    gauge: Gauge,
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.gauge.dec();
    }
}

/// The canonical name of a gRPC status code, as in the gRPC specification.
pub fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code;
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}
