//! What a run measured: HDR histograms in microseconds, error counts by code, and the report
//! built from them.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// The largest value a histogram holds, in microseconds (a minute); larger values are clamped.
const MAX_US: u64 = 60_000_000;

/// Error code of a request the tool did not send because `--max-in-flight` requests were
/// already waiting: counted, never delayed, so the schedule stays open-loop.
pub const CLIENT_BACKPRESSURE: &str = "client_backpressure";

/// Error code of a request still unanswered when the run gave up waiting.
pub const UNFINISHED: &str = "unfinished";

/// Distinct error messages kept per code: enough to tell a refused stream from a reset
/// connection, few enough that a run with a million failures stays small.
pub const ERROR_SAMPLES_PER_CODE: usize = 3;

/// Characters kept of one error message (an HTTP error body can be a whole page); a message
/// that was cut ends with `…` after them.
pub const ERROR_SAMPLE_CHARS: usize = 300;

/// How one request ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Answered successfully, with the server's own figures when it reports them.
    Ok {
        /// Our server's metadata: its total minus the provider chain's time (the resilience
        /// policies count as provider time here).
        server_overhead: Option<Duration>,
        /// The server's total minus its exchange with the model's server: for ours from the
        /// metadata (`latency_us - upstream_latency_us`), for a peer from its own overhead
        /// header. Policies, encoding and parsing all count: the like-for-like figure.
        gateway_overhead: Option<Duration>,
    },
    /// Failed.
    Error {
        /// What the report counts by: `RESOURCE_EXHAUSTED`, `http_429`, `transport`, ...
        code: String,
        /// What the server or the transport said, when anything: a gRPC status message with
        /// its causes, an HTTP client error with its causes, the start of an HTTP error body.
        detail: Option<String>,
    },
}

impl Outcome {
    /// Failed with `code` and nothing more to say.
    pub fn error(code: impl Into<String>) -> Self {
        Self::Error {
            code: code.into(),
            detail: None,
        }
    }

    /// Failed with `code`, and `detail` to keep as a sample when it is not blank. The detail
    /// is cut to a sample's length here, in the request's task, so that a large error body is
    /// never copied whole and the shared recorder's lock is not held to cut it.
    pub fn failed(code: impl Into<String>, detail: &str) -> Self {
        let detail = detail.trim();
        Self::Error {
            code: code.into(),
            detail: (!detail.is_empty()).then(|| sample_text(detail)),
        }
    }
}

/// An error and its causes on one line (`status: transport error: connection reset`), each
/// cause left out when the text before already says it (tonic repeats its source's message).
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let said = cause.to_string();
        if !said.is_empty() && !text.contains(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        source = cause.source();
    }
    text
}

/// The runtime's overhead as the server reports it: its total time minus the provider's,
/// never negative.
pub fn server_overhead(latency_us: u64, provider_latency_us: u64) -> Option<Duration> {
    if latency_us == 0 {
        // An older server that does not fill the microsecond fields.
        return None;
    }
    Some(Duration::from_micros(
        latency_us.saturating_sub(provider_latency_us),
    ))
}

/// Everything the server added outside its exchange with the model: its total minus the
/// upstream time; `None` when the response does not say (an older server, a degraded answer).
pub fn gateway_overhead(latency_us: u64, upstream_latency_us: u64) -> Option<Duration> {
    if latency_us == 0 || upstream_latency_us == 0 {
        return None;
    }
    Some(Duration::from_micros(
        latency_us.saturating_sub(upstream_latency_us),
    ))
}

/// The overhead as the client sees it: its latency minus the upstream's fixed latency, never
/// negative. It includes the network, both gRPC/HTTP stacks and the load tool itself.
pub fn client_overhead(latency: Duration, upstream: Duration) -> Duration {
    latency.saturating_sub(upstream)
}

/// A histogram of microseconds, 3 significant figures, values clamped into range.
#[derive(Debug, Clone)]
pub struct Micros(Histogram<u64>);

/// A histogram could not be created (hdrhistogram refused its bounds).
pub type HistogramError = hdrhistogram::CreationError;

impl Micros {
    /// An empty histogram.
    pub fn new() -> Result<Self, HistogramError> {
        Ok(Self(Histogram::new_with_bounds(1, MAX_US, 3)?))
    }

    /// Records one value.
    pub fn record(&mut self, value: Duration) {
        let us = u64::try_from(value.as_micros()).unwrap_or(MAX_US);
        self.0.saturating_record(us.clamp(1, MAX_US));
    }

    /// Percentiles of what was recorded.
    pub fn summary(&self) -> Percentiles {
        let h = &self.0;
        if h.is_empty() {
            return Percentiles::default();
        }
        Percentiles {
            count: h.len(),
            p50_us: h.value_at_quantile(0.50),
            p90_us: h.value_at_quantile(0.90),
            p99_us: h.value_at_quantile(0.99),
            p999_us: h.value_at_quantile(0.999),
            max_us: h.max(),
            mean_us: h.mean(),
        }
    }
}

/// Percentiles of one histogram, in microseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Percentiles {
    /// Values recorded.
    pub count: u64,
    /// Median.
    pub p50_us: u64,
    /// 90th percentile.
    pub p90_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// 99.9th percentile.
    pub p999_us: u64,
    /// Largest value.
    pub max_us: u64,
    /// Mean.
    pub mean_us: f64,
}

/// Everything measured in the measured window of a run.
#[derive(Debug, Clone)]
pub struct Recorder {
    /// Client latency of successful requests, from each request's due time.
    pub latency: Micros,
    /// Client latency minus the upstream's fixed latency, successful requests only.
    pub client_overhead: Micros,
    /// Server-reported overhead, successful requests whose response carries it.
    pub server_overhead: Micros,
    /// Server-reported total minus the upstream exchange (ours or a peer's header).
    pub gateway_overhead: Micros,
    /// How late the tool sent each request after its due time (its own contribution).
    pub send_lag: Micros,
    /// Successful requests.
    pub ok: u64,
    /// Failed requests by code.
    pub errors: BTreeMap<String, u64>,
    /// Up to [`ERROR_SAMPLES_PER_CODE`] distinct messages per code, the first ones seen.
    pub error_samples: BTreeMap<String, Vec<String>>,
}

impl Recorder {
    /// Nothing recorded yet.
    pub fn new() -> Result<Self, HistogramError> {
        Ok(Self {
            latency: Micros::new()?,
            client_overhead: Micros::new()?,
            server_overhead: Micros::new()?,
            gateway_overhead: Micros::new()?,
            send_lag: Micros::new()?,
            ok: 0,
            errors: BTreeMap::new(),
            error_samples: BTreeMap::new(),
        })
    }

    /// Records a finished request.
    pub fn record(&mut self, outcome: &Outcome, latency: Duration, upstream: Duration) {
        match outcome {
            Outcome::Ok {
                server_overhead,
                gateway_overhead,
            } => {
                self.ok += 1;
                self.latency.record(latency);
                self.client_overhead
                    .record(client_overhead(latency, upstream));
                if let Some(overhead) = server_overhead {
                    self.server_overhead.record(*overhead);
                }
                if let Some(overhead) = gateway_overhead {
                    self.gateway_overhead.record(*overhead);
                }
            }
            Outcome::Error { code, detail } => {
                self.error(code);
                if let Some(detail) = detail {
                    self.sample(code, detail);
                }
            }
        }
    }

    /// Counts a failed request.
    pub fn error(&mut self, code: &str) {
        *self.errors.entry(code.to_owned()).or_default() += 1;
    }

    /// Keeps `detail` as a sample of `code`'s messages, unless the code has its samples
    /// already or this one was seen. Checked before anything is allocated: at saturation
    /// this runs for every failure, under the lock the request tasks share.
    fn sample(&mut self, code: &str, detail: &str) {
        if let Some(kept) = self.error_samples.get(code)
            && (kept.len() >= ERROR_SAMPLES_PER_CODE || kept.iter().any(|k| k == detail))
        {
            return;
        }
        self.error_samples
            .entry(code.to_owned())
            .or_default()
            .push(detail.to_owned());
    }

    /// The report of a run that sent `sent` measured requests.
    pub fn report(&self, meta: RunInfo, sent: u64) -> Report {
        let errors_total = self.errors.values().sum();
        let secs = meta.duration_s.max(f64::MIN_POSITIVE);
        Report {
            sent,
            ok: self.ok,
            errors_total,
            errors: self.errors.clone(),
            error_samples: self.error_samples.clone(),
            ok_per_second: self.ok as f64 / secs,
            latency: self.latency.summary(),
            client_overhead: self.client_overhead.summary(),
            server_overhead: self.server_overhead.summary(),
            gateway_overhead: self.gateway_overhead.summary(),
            send_lag: self.send_lag.summary(),
            info: meta,
        }
    }
}

/// What a run was asked to do.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RunInfo {
    /// `grpc` or `openai`.
    pub target: String,
    /// A free-form name for tables (`agents`, `litellm`).
    pub label: String,
    /// Requests a second asked for.
    pub rate: f64,
    /// Measured window, seconds.
    pub duration_s: f64,
    /// Unmeasured warm-up, seconds.
    pub warmup_s: f64,
    /// The upstream's fixed latency subtracted for the client-side overhead, milliseconds.
    pub upstream_latency_ms: f64,
    /// Cap on requests in flight in the tool.
    pub max_in_flight: usize,
    /// Connections (gRPC channels or HTTP clients) the requests are spread over.
    pub connections: usize,
}

/// The result of a run, as printed and as `--json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// What was asked.
    pub info: RunInfo,
    /// Measured requests due (sent or refused by the tool's in-flight cap).
    pub sent: u64,
    /// Successful requests.
    pub ok: u64,
    /// Failed requests.
    pub errors_total: u64,
    /// Failed requests by code.
    pub errors: BTreeMap<String, u64>,
    /// A few distinct messages per failing code (absent when no failure said anything).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub error_samples: BTreeMap<String, Vec<String>>,
    /// Successful requests a second over the measured window.
    pub ok_per_second: f64,
    /// Client latency of successful requests, from their due time.
    pub latency: Percentiles,
    /// Client latency minus the upstream's fixed latency.
    pub client_overhead: Percentiles,
    /// Our server's overhead outside the provider chain (empty for peers).
    pub server_overhead: Percentiles,
    /// The server's total minus its upstream exchange, as it reports it: ours from metadata,
    /// a peer's from its overhead header (empty when it sends none).
    pub gateway_overhead: Percentiles,
    /// How late the tool itself sent requests.
    pub send_lag: Percentiles,
}

/// `text` as one line of at most [`ERROR_SAMPLE_CHARS`] characters, then `…` if it was cut:
/// line breaks and other control characters (an HTML or pretty-printed error body) become
/// spaces, so that a sample stays one line of the table and of `summarize.py`'s list.
pub fn sample_text(text: &str) -> String {
    let mut line: String = text
        .chars()
        .take(ERROR_SAMPLE_CHARS)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if text.chars().nth(ERROR_SAMPLE_CHARS).is_some() {
        line.push('…');
    }
    line
}

fn ms(us: u64) -> String {
    format!("{:.3}", us as f64 / 1000.0)
}

impl Report {
    /// A human-readable table.
    pub fn table(&self) -> String {
        let i = &self.info;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{} ({}) at {} req/s for {:.1}s (warm-up {:.1}s), {} connections, in-flight cap {}, upstream {} ms",
            i.label,
            i.target,
            i.rate,
            i.duration_s,
            i.warmup_s,
            i.connections,
            i.max_in_flight,
            i.upstream_latency_ms
        );
        let _ = writeln!(
            out,
            "sent {}  ok {}  errors {}  throughput {:.1} ok/s",
            self.sent, self.ok, self.errors_total, self.ok_per_second
        );
        for (code, count) in &self.errors {
            let _ = writeln!(out, "  error {code}: {count}");
            for sample in self.error_samples.get(code).into_iter().flatten() {
                let _ = writeln!(out, "    e.g. {sample}");
            }
        }
        let _ = writeln!(
            out,
            "{:<18} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "ms", "p50", "p90", "p99", "p99.9", "max", "count"
        );
        let rows = [
            ("latency", &self.latency),
            ("client overhead", &self.client_overhead),
            ("server overhead", &self.server_overhead),
            ("gateway overhead", &self.gateway_overhead),
            ("tool send lag", &self.send_lag),
        ];
        for (name, p) in rows {
            if p.count == 0 {
                continue;
            }
            let _ = writeln!(
                out,
                "{:<18} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
                name,
                ms(p.p50_us),
                ms(p.p90_us),
                ms(p.p99_us),
                ms(p.p999_us),
                ms(p.max_us),
                p.count
            );
        }
        out
    }
}
