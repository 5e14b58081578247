//! `agents-server serve`: builds the runtime from the config and serves it until a signal.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use agents_bus::{AuditLog, BusMetrics, BusSink, EventBus, InProcessBus, InProcessConfig, Tee};
use agents_core::facts::FactsAnalyzer;
use agents_core::{CloudEvent, DeferredEvent, EventSink, NullSink, Provider, grounded_agents};
use agents_facts::{CachedAnalyzer, TreeSitterAnalyzer};
use agents_providers::{FallbackChain, McpProvider, OpenAiProvider, QuotaDepth, Stack};
use agents_secrets::{SecretRef, SecretStore};
use anyhow::Context as _;
use tokio::net::TcpListener;

use crate::auth::Authenticator;
use crate::config::{BusConfig, FactsConfig, ListenConfig, ServerConfig};
use crate::facts_offload::OffloadedAnalyzer;
use crate::limits::Limiter;
use crate::metrics::{FactsCacheSample, Metrics, QuotaSample, merge_bus_numbers};
use crate::pb;
use crate::pb::agent_service_server::AgentServiceServer;
use crate::provider_key::StoredKey;
use crate::service::AgentsService;
use crate::shed::ShedLayer;

/// The providers of the config, each in its policy stack, and the chain over them. API key
/// references resolve through `secrets`: once here (a key that cannot be read stops the
/// start), then on every call, so that a key rotated in the store is used without a restart
/// (put a [`CachedStore`](agents_secrets::CachedStore) in front of a remote store).
pub async fn build_provider(
    config: &ServerConfig,
    secrets: Arc<dyn SecretStore>,
    events: Arc<dyn EventSink>,
) -> anyhow::Result<Arc<dyn Provider>> {
    Ok(build_provider_with_quotas(config, secrets, events).await?.0)
}

/// [`build_provider`], also returning each provider's concurrency quota view (for metrics).
pub async fn build_provider_with_quotas(
    config: &ServerConfig,
    secrets: Arc<dyn SecretStore>,
    events: Arc<dyn EventSink>,
) -> anyhow::Result<(Arc<dyn Provider>, Vec<(String, QuotaDepth)>)> {
    if config.providers.is_empty() {
        return Ok((Arc::new(crate::no_model::NoModel), Vec::new()));
    }
    let mut providers: Vec<Arc<dyn Provider>> = Vec::new();
    let mut quotas = Vec::new();
    for entry in &config.providers {
        let adapter: Arc<dyn Provider> = match (&entry.openai, &entry.mcp) {
            (Some(openai), _) => {
                match &openai.api_key {
                    Some(reference) => {
                        let reference: SecretRef = reference
                            .parse()
                            .with_context(|| format!("provider `{}`: api_key", openai.id))?;
                        // Read now so that a missing or unusable key stops the start, not the
                        // first call.
                        let first = secrets.get(&reference).await.with_context(|| {
                            format!("provider `{}`: cannot load its API key", openai.id)
                        })?;
                        let key = StoredKey {
                            provider: openai.id.clone(),
                            reference,
                            store: secrets.clone(),
                        };
                        Arc::new(OpenAiProvider::with_key_source(
                            openai.clone(),
                            first,
                            Arc::new(key),
                        )?)
                    }
                    None => Arc::new(OpenAiProvider::new(openai.clone(), None)?),
                }
            }
            (None, Some(mcp)) => Arc::new(McpProvider::lazy(mcp.clone(), events.clone())?),
            (None, None) => anyhow::bail!("provider `{}` has no adapter", entry.id()),
        };
        let model = entry
            .openai
            .as_ref()
            .map(|o| o.model.clone())
            .unwrap_or_default();
        let (provider, quota) = Stack::new(adapter)
            .events(events.clone())
            .model(model)
            .build_with_depth(&entry.policies)?;
        quotas.push((entry.id().to_owned(), quota));
        providers.push(provider);
    }
    let chain = FallbackChain::new(&config.chain(), &providers, events)?;
    Ok((Arc::new(chain), quotas))
}

/// Refuses to serve a non-loopback address without auth, unless told to, loudly.
pub fn check_exposure(config: &ServerConfig) -> anyhow::Result<()> {
    if !config.server.listen.ip().is_loopback() && !config.auth.is_enabled() {
        if !config.server.insecure_no_auth {
            anyhow::bail!(
                "refusing to listen on {} without authentication: configure API keys, or listen on 127.0.0.1, or set server.insecure_no_auth = true if you really mean it",
                config.server.listen
            );
        }
        tracing::warn!(listen = %config.server.listen, "serving WITHOUT AUTHENTICATION on a non-loopback address (server.insecure_no_auth = true)");
    }
    Ok(())
}

/// A running server: its address, and a handle to stop it.
#[derive(Debug)]
pub struct Running {
    /// The address it listens on.
    pub addr: SocketAddr,
    /// Where `/metrics`, `/healthz` and `/readyz` answer, when enabled.
    pub metrics_addr: Option<SocketAddr>,
    /// Whether the gRPC port speaks TLS (`server.tls`).
    pub tls: bool,
    ready: Arc<AtomicBool>,
    metrics_stop: Option<tokio::sync::oneshot::Sender<()>>,
    stop: tokio::sync::oneshot::Sender<()>,
    done: tokio::task::JoinHandle<anyhow::Result<()>>,
    /// Inline tasks, which outlive their SubmitTask call.
    tasks: Arc<crate::service::TaskTable>,
    events: EventPipeline,
    grace: Duration,
}

impl Running {
    /// Stops accepting, lets in-flight calls and running inline tasks finish within the grace
    /// period (tasks still running then are cancelled), then flushes every queued event to the
    /// bus and the audit log, and returns.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        // Probes see "not ready" first, so load balancers stop sending new calls.
        self.ready.store(false, Ordering::SeqCst);
        let deadline = tokio::time::Instant::now() + self.grace;
        let _ = self.stop.send(());
        let served = self.done.await.context("the server task failed")?;
        let cancelled = self.tasks.finish_runs(deadline).await;
        if cancelled > 0 {
            tracing::warn!(
                cancelled,
                grace = ?self.grace,
                "inline tasks still running at the end of the grace period were cancelled"
            );
        }
        self.events.close(self.grace).await;
        if let Some(stop) = self.metrics_stop.take() {
            let _ = stop.send(());
        }
        served
    }

    /// The in-process bus every event of the server goes through (subscribe to follow them).
    pub fn bus(&self) -> &Arc<InProcessBus> {
        &self.events.in_process
    }
}

/// Where the server's events go: a bounded, non-blocking sink in front of the audit log and
/// the in-process bus.
#[derive(Debug)]
pub(crate) struct EventPipeline {
    sink: Arc<BusSink>,
    pub(crate) bus: Arc<dyn EventBus>,
    in_process: Arc<InProcessBus>,
    /// The audit log's own counters, when there is one.
    audit: Option<Arc<BusMetrics>>,
}

impl EventPipeline {
    /// Points the `agents_bus_*` and `agents_audit_write_errors_total` metrics at this
    /// pipeline's counters.
    fn export_metrics(&self, metrics: &Metrics) {
        let primary = self.bus.metrics();
        let in_process = self.in_process.metrics();
        let mirrored = !Arc::ptr_eq(&primary, &in_process);
        metrics.set_bus_source(move || {
            let numbers = primary.snapshot().pairs();
            if mirrored {
                merge_bus_numbers(&numbers, &in_process.snapshot().pairs())
            } else {
                numbers
            }
        });
        if let Some(audit) = self.audit.clone() {
            metrics.set_audit_write_errors_source(move || audit.snapshot().publish_errors);
        }
    }

    /// Built inside the runtime: the sink's publisher is a task.
    pub(crate) fn open(config: &BusConfig) -> anyhow::Result<Self> {
        let in_process = Arc::new(InProcessBus::new(InProcessConfig::default())?);
        let mut audit_metrics = None;
        let bus: Arc<dyn EventBus> = match &config.audit {
            // The audit log is the primary: an event counts as delivered once it is written.
            Some(audit) => {
                let log = AuditLog::open(audit.clone()).with_context(|| {
                    format!("cannot open the audit log in {}", audit.dir.display())
                })?;
                audit_metrics = Some(log.metrics());
                Arc::new(Tee::new(Arc::new(log), vec![in_process.clone()]))
            }
            None => in_process.clone(),
        };
        let sink = Arc::new(BusSink::spawn(bus.clone(), config.queue_capacity)?);
        Ok(Self {
            sink,
            bus,
            in_process,
            audit: audit_metrics,
        })
    }

    pub(crate) async fn close(&self, timeout: Duration) {
        if !self.sink.close(timeout).await {
            tracing::warn!(
                ?timeout,
                "some events were still queued when the grace period ended"
            );
        }
        if let Err(error) = self.bus.shutdown().await {
            tracing::warn!(%error, "the event bus did not shut down cleanly");
        }
    }
}

/// Sends every event to each sink in turn: borrowed to all but the last, which gets it
/// owned. Put the sinks that only read events (metrics) first and the one that keeps them
/// (the bus queue) last, and no event is copied. A deferred event is shown
/// (`emit_deferred_ref`) to each sink before the last that `wants` its type, and reaches the
/// last one unbuilt.
#[derive(Debug)]
struct FanOut(Vec<Arc<dyn EventSink>>);

impl EventSink for FanOut {
    fn emit(&self, event: CloudEvent) {
        if let Some((last, rest)) = self.0.split_last() {
            for sink in rest {
                sink.emit_ref(&event);
            }
            last.emit(event);
        }
    }

    fn is_enabled(&self) -> bool {
        self.0.iter().any(|sink| sink.is_enabled())
    }

    fn emit_ref(&self, event: &CloudEvent) {
        for sink in &self.0 {
            sink.emit_ref(event);
        }
    }

    /// Shows the event to each sink before the last that reads its type (metrics reads
    /// provider, breaker and pressure events, from the typed payload), then passes it on
    /// unbuilt to the last one (the bus queue), which builds it off the request path.
    fn emit_deferred(&self, event: DeferredEvent) {
        let Some((last, rest)) = self.0.split_last() else {
            return;
        };
        show(rest, &event);
        last.emit_deferred(event);
    }

    fn emit_deferred_ref(&self, event: &DeferredEvent) {
        show(&self.0, event);
    }

    fn wants(&self, event_type: &str) -> bool {
        self.0.iter().any(|sink| sink.wants(event_type))
    }
}

/// Shows a deferred event to each of `sinks` that reads its type.
fn show(sinks: &[Arc<dyn EventSink>], event: &DeferredEvent) {
    for sink in sinks {
        if sink.wants(event.event_type()) {
            sink.emit_deferred_ref(event);
        }
    }
}

/// What `serve` and `worker` both build from the config: the event pipeline (audit log and
/// in-process bus), metrics fed by events and bus counters, secrets, the provider chain and
/// the agents.
pub(crate) struct Runtime {
    pub(crate) pipeline: EventPipeline,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) events: Arc<dyn EventSink>,
    pub(crate) secrets: Arc<agents_secrets::CachedStore>,
    pub(crate) provider: Arc<dyn Provider>,
    pub(crate) agents: Vec<Arc<dyn agents_core::Agent>>,
}

impl Runtime {
    /// Built inside the runtime (the event pipeline's publisher is a task).
    pub(crate) async fn build(
        config: &ServerConfig,
        extra: Arc<dyn EventSink>,
    ) -> anyhow::Result<Self> {
        let pipeline = EventPipeline::open(&config.bus)?;
        let metrics = Arc::new(Metrics::new());
        pipeline.export_metrics(&metrics);
        let events: Arc<dyn EventSink> =
            Arc::new(FanOut(vec![metrics.sink(), extra, pipeline.sink.clone()]));
        let secrets = Arc::new(
            config
                .secrets
                .build()
                .await
                .context("cannot set up the secret stores")?,
        );
        let (provider, quotas) =
            build_provider_with_quotas(config, secrets.clone(), events.clone()).await?;
        metrics.set_quota_source(move || {
            quotas
                .iter()
                .map(|(provider, quota)| QuotaSample {
                    provider: provider.clone(),
                    in_flight: quota.in_flight() as u64,
                    waiting: quota.waiting() as u64,
                })
                .collect()
        });
        if config.providers.is_empty() {
            tracing::warn!("{}", crate::no_model::NO_MODEL_REASON);
        } else if !provider.health().await.is_serving() {
            tracing::warn!(
                "no configured provider answers its health check yet; until one does, answers are built from code facts alone (degraded: true), or fail with UNAVAILABLE for inputs with allow_degraded = false"
            );
        }
        // Every agent computes code facts first (tree-sitter, agents-facts): they ground the
        // prompt and are the whole answer when no model answers.
        let agents = grounded_agents(&config.agents, facts_analyzer(&config.facts, &metrics))?;
        Ok(Self {
            pipeline,
            metrics,
            events,
            secrets,
            provider,
            agents,
        })
    }
}

/// The code-facts analyzer: tree-sitter, large files on the blocking threads
/// ([`OffloadedAnalyzer`]), behind a cache of `facts.cache_bytes` (whose numbers `metrics`
/// exports) unless that is 0. The cache is outermost, so a hit never waits for a slot.
fn facts_analyzer(config: &FactsConfig, metrics: &Metrics) -> Arc<dyn FactsAnalyzer> {
    let offloaded = OffloadedAnalyzer::new(Arc::new(TreeSitterAnalyzer::new()));
    if config.cache_bytes == 0 {
        return Arc::new(offloaded);
    }
    let cached = Arc::new(CachedAnalyzer::new(offloaded, config.cache_bytes));
    let stats = Arc::clone(&cached);
    metrics.set_facts_cache_source(move || {
        let now = stats.stats();
        FactsCacheSample {
            hits: now.hits,
            misses: now.misses,
            bytes: now.weight_bytes,
        }
    });
    cached
}

/// Starts serving `config` (binding its address; port 0 picks a free one) and returns at once.
pub async fn start(config: ServerConfig) -> anyhow::Result<Running> {
    start_with_events(config, Arc::new(NullSink)).await
}

/// [`start`], also sending every event to `extra` (tests, embedding programs).
pub async fn start_with_events(
    config: ServerConfig,
    extra: Arc<dyn EventSink>,
) -> anyhow::Result<Running> {
    check_exposure(&config)?;
    let Runtime {
        pipeline,
        metrics,
        events,
        secrets,
        provider,
        agents,
    } = Runtime::build(&config, extra).await?;
    // Before anything binds: rustls refuses a key that does not belong to its certificate here.
    let grpc = match &config.server.tls {
        Some(tls) => tls.load(secrets.as_ref()).await?,
        None => tonic::transport::Server::builder(),
    };
    let auth = Authenticator::load(&config.auth, secrets.as_ref())
        .await
        .map_err(|e| anyhow::anyhow!("cannot load the API keys: {e}"))?;
    let agent_ids: Vec<String> = agents.iter().map(|a| a.id().to_owned()).collect();
    // The front door sheds by the same cap before anything is decoded (see `shed`); the
    // limiter in the handler keeps the per-tenant limits, which need the authenticated tenant.
    let shed = ShedLayer::new(config.limits.shed(), metrics.clone());
    let mut service = AgentsService::new(agents, provider, events)
        .with_auth(auth)
        .with_limits(Limiter::new(config.limits.clone()))
        .with_metrics(metrics.clone());
    if config.tasks.uses_queue() {
        let queue =
            crate::worker::QueueDispatch::connect(&config.tasks, &agent_ids, metrics.clone())
                .await?;
        service = service.with_queue(queue);
    }
    let ready = Arc::new(AtomicBool::new(false));
    let (metrics_addr, metrics_stop) = match config.server.metrics_listen {
        Some(listen) => {
            let listener = TcpListener::bind(listen)
                .await
                .with_context(|| format!("cannot serve metrics on {listen}"))?;
            let addr = listener.local_addr()?;
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            let http = crate::metrics::serve_http(listener, metrics, ready.clone(), async {
                let _ = stopped.await;
            });
            tokio::spawn(async move {
                if let Err(error) = http.await {
                    tracing::warn!(%error, "the metrics endpoint stopped");
                }
            });
            (Some(addr), Some(stop))
        }
        None => (None, None),
    };
    let listener = TcpListener::bind(config.server.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.server.listen))?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let grace = Duration::from_millis(config.server.shutdown_grace_ms);
    let tasks = service.task_table();
    let transport = Transport {
        listen: config.server.clone(),
        grpc,
        shed,
        grace,
    };
    let done = tokio::spawn(serve(listener, service, transport, async {
        let _ = stopped.await;
    }));
    tracing::info!(%addr, ?metrics_addr, "agents-server listening");
    ready.store(true, Ordering::SeqCst);
    Ok(Running {
        metrics_addr,
        tls: config.server.tls.is_some(),
        ready,
        metrics_stop,
        addr,
        stop,
        done,
        tasks,
        events: pipeline,
        grace,
    })
}

/// How the gRPC port is served: the `[server]` settings, tonic's server (with TLS when set),
/// the front door.
struct Transport {
    listen: ListenConfig,
    grpc: tonic::transport::Server,
    shed: ShedLayer,
    grace: Duration,
}

async fn serve(
    listener: TcpListener,
    service: AgentsService,
    transport: Transport,
    signal: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let Transport {
        listen,
        grpc,
        shed,
        grace,
    } = transport;
    let max_message_bytes = listen.max_message_bytes;
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_serving::<AgentServiceServer<AgentsService>>()
        .await;
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;
    let agents = AgentServiceServer::new(service)
        .max_decoding_message_size(max_message_bytes)
        .max_encoding_message_size(max_message_bytes);
    let (drain_tx, drain_rx) = tokio::sync::oneshot::channel::<()>();
    // Fired at the end of the grace period: closes the connections still open (see `accept`).
    let cut_off = tokio_util::sync::CancellationToken::new();
    // Bounded per connection: streams, flow-control windows (request data buffered ahead of
    // the handlers) and header blocks.
    let server = grpc
        .max_concurrent_streams(listen.http2_max_concurrent_streams)
        .initial_stream_window_size(listen.http2_stream_window_bytes)
        .initial_connection_window_size(listen.http2_connection_window_bytes)
        .http2_max_header_list_size(listen.http2_max_header_list_bytes)
        .http2_keepalive_interval(listen.http2_keepalive().map(|(interval, _)| interval))
        .http2_keepalive_timeout(listen.http2_keepalive().map(|(_, timeout)| timeout))
        // Every call runs in a span continuing the client's trace (see `telemetry`).
        .trace_fn(crate::telemetry::grpc_server_span)
        // Outermost: records each call's gRPC status on its span, refusals included.
        .layer(crate::telemetry::CallStatusLayer)
        // Around the whole router: runs as hyper hands each stream over, before decoding.
        .layer(shed)
        .add_service(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(agents)
        .serve_with_incoming_shutdown(
            crate::accept::incoming(listener, cut_off.clone()),
            async move {
                signal.await;
                // Clients that watch health (gRPC client-side health checking, load balancers)
                // hear NOT_SERVING as the drain starts and stop sending calls here, as `/readyz`
                // tells HTTP probes. A watch stream is a call in flight: the drain waits for its
                // client to hang up, for at most the grace period.
                drain_health(&reporter).await;
                let _ = drain_tx.send(());
            },
        );
    tokio::pin!(server);
    tokio::select! {
        result = &mut server => return result.context("the gRPC server failed"),
        _ = drain_rx => {}
    }
    // Stopped accepting; in-flight calls get the grace period to finish.
    match tokio::time::timeout(grace, server).await {
        Ok(result) => result.context("the gRPC server failed"),
        Err(_) => {
            cut_off.cancel();
            tracing::warn!(
                ?grace,
                "calls still in flight after the grace period were cut off"
            );
            Ok(())
        }
    }
}

/// Marks the server (`""`) and the agent service NOT_SERVING.
async fn drain_health(reporter: &tonic_health::server::HealthReporter) {
    reporter
        .set_service_status("", tonic_health::ServingStatus::NotServing)
        .await;
    reporter
        .set_not_serving::<AgentServiceServer<AgentsService>>()
        .await;
}

/// Installs the telemetry of `config.telemetry` (logs, spans), serves until SIGINT or
/// SIGTERM, then drains calls and events and exports the last spans.
pub async fn run_until_signal(config: ServerConfig) -> anyhow::Result<()> {
    let telemetry = crate::telemetry::init(&config.telemetry)?;
    // Listen for SIGTERM before the port opens: a supervisor that stops the server as soon as
    // it accepts connections must get a clean shutdown, not the default action of the signal.
    let signal = shutdown_signal()?;
    let served = async {
        let running = start(config).await?;
        eprintln!(
            "agents-server listening on {} (gRPC{}; reflection and health enabled)",
            running.addr,
            if running.tls { " over TLS" } else { "" }
        );
        signal.await;
        eprintln!("shutting down: draining in-flight calls");
        running.shutdown().await
    }
    .await;
    // Last: the spans of the drained calls are queued by now.
    if let Err(error) = telemetry.shutdown().await {
        tracing::warn!("{error:#}");
    }
    served
}

/// Resolves on SIGINT or SIGTERM; the SIGTERM handler is installed when this returns.
pub(crate) fn shutdown_signal() -> anyhow::Result<impl Future<Output = ()>> {
    #[cfg(unix)]
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot listen for SIGTERM")?;
    Ok(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
    })
}

#[cfg(test)]
mod tests {
    use agents_core::{MemorySink, TaskQueued};

    use super::*;

    #[test]
    fn fan_out_gives_every_sink_the_event_and_is_off_only_when_all_are() {
        let first = MemorySink::new();
        let last = MemorySink::new();
        let fan = FanOut(vec![
            Arc::new(first.clone()),
            Arc::new(NullSink),
            Arc::new(last.clone()),
        ]);
        assert!(fan.is_enabled());
        fan.emit(CloudEvent::new("/a", &TaskQueued::default()));
        fan.emit_ref(&CloudEvent::new("/b", &TaskQueued::default()));
        for sink in [&first, &last] {
            let sources: Vec<String> = sink.events().into_iter().map(|e| e.source).collect();
            assert_eq!(sources, ["/a", "/b"]);
        }
        assert!(!FanOut(vec![Arc::new(NullSink), Arc::new(NullSink)]).is_enabled());
        assert!(!FanOut(Vec::new()).is_enabled());
    }

    /// Keeps the types of the deferred events it is handed, unbuilt, and reads only
    /// `task.queued` on the spot.
    #[derive(Debug, Default)]
    struct Recording {
        deferred: std::sync::Mutex<Vec<&'static str>>,
        built: MemorySink,
    }

    impl EventSink for Recording {
        fn emit(&self, event: CloudEvent) {
            self.built.emit(event);
        }

        fn emit_deferred(&self, event: DeferredEvent) {
            self.deferred.lock().unwrap().push(event.event_type());
        }

        fn wants(&self, event_type: &str) -> bool {
            event_type == "task.queued"
        }
    }

    #[test]
    fn fan_out_shows_a_deferred_event_to_the_sinks_that_read_it_and_passes_it_on_unbuilt() {
        use agents_core::AgentStarted;
        let reader = Arc::new(Recording::default());
        let last = Arc::new(Recording::default());
        let fan = FanOut(vec![
            Arc::clone(&reader) as Arc<dyn EventSink>,
            Arc::new(NullSink),
            Arc::clone(&last) as Arc<dyn EventSink>,
        ]);
        // Nobody before the last reads agent.started: only the last sees it.
        fan.emit_deferred(DeferredEvent::new("/a", AgentStarted::default()));
        // The reader wants task.queued: it sees it (here, through the default, a built copy)
        // and the last still gets it unbuilt.
        fan.emit_deferred(DeferredEvent::new("/b", TaskQueued::default()));
        assert_eq!(
            *last.deferred.lock().unwrap(),
            ["agent.started", "task.queued"]
        );
        assert!(last.built.types().is_empty());
        assert!(reader.deferred.lock().unwrap().is_empty());
        assert_eq!(reader.built.types(), ["task.queued"]);
        assert!(fan.wants("task.queued") && !fan.wants("agent.started"));
        // A fan-out inside a fan-out shows the event to the inner sinks that read it.
        fan.emit_deferred_ref(&DeferredEvent::new("/c", TaskQueued::default()));
        assert_eq!(reader.built.types(), ["task.queued", "task.queued"]);
        assert_eq!(last.built.types(), ["task.queued"]);
        // No sinks: nothing to do, and nothing panics.
        FanOut(Vec::new()).emit_deferred(DeferredEvent::new("/c", AgentStarted::default()));
    }

    #[test]
    fn behind_the_metrics_sink_provider_events_are_counted_and_every_event_passes_unbuilt() {
        use agents_core::{AgentStarted, ProviderRequest};
        let metrics = Arc::new(Metrics::new());
        let last = Arc::new(Recording::default());
        let fan = FanOut(vec![
            metrics.sink(),
            Arc::new(NullSink),
            Arc::clone(&last) as Arc<dyn EventSink>,
        ]);
        let mut request = ProviderRequest::default();
        request.provider = "fake".into();
        fan.emit_deferred(DeferredEvent::new("/providers/fake", request));
        fan.emit_deferred(DeferredEvent::new("/agents/a", AgentStarted::default()));
        let text = metrics.encode();
        assert!(
            text.contains("agents_provider_requests_total{provider=\"fake\"} 1"),
            "{text}"
        );
        assert_eq!(
            *last.deferred.lock().unwrap(),
            ["provider.request", "agent.started"]
        );
        assert!(last.built.types().is_empty());
    }
}
