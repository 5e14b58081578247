//! `agents-server serve`: builds the runtime from the config and serves it until a signal.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use agents_core::{EventSink, NullSink, Provider, builtin_agents};
use agents_providers::{FallbackChain, McpProvider, OpenAiProvider, Stack};
use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;

use crate::config::ServerConfig;
use crate::pb;
use crate::pb::agent_service_server::AgentServiceServer;
use crate::service::AgentsService;

/// The providers of the config, each in its policy stack, and the chain over them.
pub async fn build_provider(
    config: &ServerConfig,
    events: Arc<dyn EventSink>,
) -> anyhow::Result<Arc<dyn Provider>> {
    let mut providers: Vec<Arc<dyn Provider>> = Vec::new();
    for entry in &config.providers {
        let adapter: Arc<dyn Provider> = match (&entry.openai, &entry.mcp) {
            (Some(openai), _) => Arc::new(OpenAiProvider::from_config(openai.clone())?),
            (None, Some(mcp)) => Arc::new(McpProvider::lazy(mcp.clone(), events.clone())?),
            (None, None) => anyhow::bail!("provider `{}` has no adapter", entry.id()),
        };
        providers.push(
            Stack::new(adapter)
                .events(events.clone())
                .build(&entry.policies)?,
        );
    }
    Ok(Arc::new(FallbackChain::new(
        &config.chain(),
        &providers,
        events,
    )?))
}

/// Refuses to serve a non-loopback address without auth, unless told to, loudly.
pub fn check_exposure(config: &ServerConfig) -> anyhow::Result<()> {
    if !config.server.listen.ip().is_loopback() {
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
    stop: tokio::sync::oneshot::Sender<()>,
    done: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Running {
    /// Stops accepting, lets in-flight calls finish within the grace period, and returns.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        self.done.await.context("the server task failed")?
    }
}

/// Starts serving `config` (binding its address; port 0 picks a free one) and returns at once.
pub async fn start(config: ServerConfig) -> anyhow::Result<Running> {
    start_with_events(config, Arc::new(NullSink)).await
}

/// [`start`] with a given event sink.
pub async fn start_with_events(
    config: ServerConfig,
    events: Arc<dyn EventSink>,
) -> anyhow::Result<Running> {
    check_exposure(&config)?;
    let provider = build_provider(&config, events.clone()).await?;
    if !provider.health().await.is_serving() {
        tracing::warn!(
            "no configured provider answers its health check yet; requests will fail with UNAVAILABLE until one does"
        );
    }
    let agents = builtin_agents(&config.agents)?;
    let service = AgentsService::new(agents, provider, events);
    let listener = TcpListener::bind(config.server.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.server.listen))?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let grace = Duration::from_millis(config.server.shutdown_grace_ms);
    let limit = config.server.max_message_bytes;
    let done = tokio::spawn(serve(listener, service, limit, grace, async {
        let _ = stopped.await;
    }));
    tracing::info!(%addr, "agents-server listening");
    Ok(Running { addr, stop, done })
}

async fn serve(
    listener: TcpListener,
    service: AgentsService,
    max_message_bytes: usize,
    grace: Duration,
    signal: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (health_reporter, health) = tonic_health::server::health_reporter();
    health_reporter
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
    let server = tonic::transport::Server::builder()
        .add_service(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(agents)
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async move {
            signal.await;
            let _ = drain_tx.send(());
        });
    tokio::pin!(server);
    tokio::select! {
        result = &mut server => return result.context("the gRPC server failed"),
        _ = drain_rx => {}
    }
    // Stopped accepting; in-flight calls get the grace period to finish.
    match tokio::time::timeout(grace, server).await {
        Ok(result) => result.context("the gRPC server failed"),
        Err(_) => {
            tracing::warn!(
                ?grace,
                "calls still in flight after the grace period were cut off"
            );
            Ok(())
        }
    }
}

/// Serves until SIGINT or SIGTERM.
pub async fn run_until_signal(config: ServerConfig) -> anyhow::Result<()> {
    let running = start(config).await?;
    eprintln!(
        "agents-server listening on {} (gRPC; reflection and health enabled)",
        running.addr
    );
    shutdown_signal().await;
    eprintln!("shutting down: draining in-flight calls");
    running.shutdown().await
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
