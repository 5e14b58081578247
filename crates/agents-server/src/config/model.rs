//! The configuration's shape.

use std::net::SocketAddr;
use std::time::Duration;

use agents_bus::AuditConfig;
use agents_secrets::SecretsConfig;

use super::facts::FactsConfig;
use super::queue::{TasksConfig, WorkerConfig};
use crate::auth::AuthConfig;
use crate::limits::LimitsConfig;
use crate::telemetry::TelemetryConfig;
use crate::tls::TlsConfig;
use agents_core::{AgentConfig, ConfigError};
use agents_providers::{ChainConfig, McpConfig, OpenAiConfig, PolicyConfig};
use serde::{Deserialize, Serialize};

/// The whole configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ServerConfig {
    /// Listening and the request envelope.
    #[serde(default)]
    pub server: ListenConfig,
    /// Limits and defaults every agent shares.
    #[serde(default)]
    pub agents: AgentConfig,
    /// The code facts every agent computes first: their cache.
    #[serde(default)]
    pub facts: FactsConfig,
    /// The model providers, each with its policies.
    #[serde(default)]
    pub providers: Vec<ProviderEntry>,
    /// The fallback chain; by default every provider, in the order listed.
    #[serde(default)]
    pub chain: Option<ChainConfig>,
    /// Where events go.
    #[serde(default)]
    pub bus: BusConfig,
    /// API keys; none configured means no authentication (allowed on loopback only).
    #[serde(default)]
    pub auth: AuthConfig,
    /// Load shedding and per-tenant limits.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// Secret stores that API key references (`env:`, `file:`, `vault:`, `kms:`) resolve in.
    #[serde(default)]
    pub secrets: SecretsConfig,
    /// Spans (OTLP export, sampling) and the log format.
    #[serde(default)]
    pub telemetry: TelemetryConfig,
    /// How SubmitTask dispatches (inline or the JetStream queue), per agent.
    #[serde(default)]
    pub tasks: TasksConfig,
    /// The `agents-server worker` process.
    #[serde(default)]
    pub worker: WorkerConfig,
}

/// Where the runtime's CloudEvents go: an in-process bus, and the durable audit log.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct BusConfig {
    /// The hash-chained JSONL audit log; no section, no audit log. (The embedded defaults,
    /// what `serve` runs without `--config`, have one in `./data/audit`; a config file that
    /// wants one says where.)
    pub audit: Option<AuditConfig>,
    /// Events that may wait to be published; beyond this, events are dropped and counted
    /// (`sink_dropped`), never blocking a request.
    pub queue_capacity: usize,
}

impl Default for BusConfig {
    fn default() -> Self {
        Self {
            audit: None,
            queue_capacity: 10_000,
        }
    }
}

/// Where and how the gRPC server listens.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct ListenConfig {
    /// The gRPC address. Loopback by default.
    pub listen: SocketAddr,
    /// Largest request or response message.
    pub max_message_bytes: usize,
    /// How long in-flight calls may take to finish on shutdown.
    pub shutdown_grace_ms: u64,
    /// Serve a non-loopback address without authentication. Logged loudly; never the default.
    pub insecure_no_auth: bool,
    /// Where `/metrics`, `/healthz` and `/readyz` are served (HTTP); unset turns them off. (The
    /// embedded defaults serve them on 127.0.0.1:9464; a config file that wants them says
    /// where.)
    pub metrics_listen: Option<SocketAddr>,
    /// TLS (and mutual TLS with `client_ca`) on the gRPC port; unset serves plaintext.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsConfig>,
    /// HTTP/2 streams (calls) one connection may have open at once; the client queues the
    /// others. Bounds what one connection can make the server hold. Calls queued in the client
    /// are out of the front door's sight: keep it above what one client connection sends.
    pub http2_max_concurrent_streams: u32,
    /// HTTP/2 flow-control window of one stream, in bytes: request data a call may send ahead
    /// of the server reading it.
    pub http2_stream_window_bytes: u32,
    /// HTTP/2 flow-control window of one connection, in bytes: request data all its calls
    /// together may send ahead of the server reading it.
    pub http2_connection_window_bytes: u32,
    /// Largest header block (metadata) of one call, in bytes, decompressed.
    pub http2_max_header_list_bytes: u32,
    /// Sends an HTTP/2 PING on each connection this often and closes the connection when no
    /// answer comes within `http2_keepalive_timeout_ms`: a client that vanished (its node
    /// lost, a NAT that dropped the flow) otherwise keeps its connections, health `Watch`
    /// streams and stalled calls (and their front-door slots) until TCP gives up, about 15
    /// minutes. 0 turns the pings off.
    pub http2_keepalive_interval_ms: u64,
    /// How long a keepalive PING may go unanswered before the connection is closed.
    pub http2_keepalive_timeout_ms: u64,
}

/// Smallest HTTP/2 flow-control window (the protocol's initial value).
const MIN_HTTP2_WINDOW: u32 = 65_535;
/// Largest HTTP/2 flow-control window the protocol allows (2^31 - 1).
const MAX_HTTP2_WINDOW: u32 = 2_147_483_647;

impl Default for ListenConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
            max_message_bytes: 4 * 1024 * 1024,
            shutdown_grace_ms: 10_000,
            insecure_no_auth: false,
            metrics_listen: None,
            tls: None,
            http2_max_concurrent_streams: 1024,
            http2_stream_window_bytes: 1024 * 1024,
            http2_connection_window_bytes: 2 * 1024 * 1024,
            http2_max_header_list_bytes: 16 * 1024,
            http2_keepalive_interval_ms: 60_000,
            http2_keepalive_timeout_ms: 20_000,
        }
    }
}

impl ListenConfig {
    /// The `server.http2_*` keys: each within what HTTP/2 allows and large enough to work.
    fn validate_http2(&self) -> Vec<ConfigError> {
        let mut errors = Vec::new();
        if self.http2_max_concurrent_streams == 0 {
            errors.push(ConfigError::new(
                "server.http2_max_concurrent_streams",
                "must be at least 1",
            ));
        }
        for (key, value) in [
            (
                "server.http2_stream_window_bytes",
                self.http2_stream_window_bytes,
            ),
            (
                "server.http2_connection_window_bytes",
                self.http2_connection_window_bytes,
            ),
        ] {
            if !(MIN_HTTP2_WINDOW..=MAX_HTTP2_WINDOW).contains(&value) {
                errors.push(ConfigError::new(
                    key,
                    format!("must be between {MIN_HTTP2_WINDOW} and {MAX_HTTP2_WINDOW} bytes"),
                ));
            }
        }
        if self.http2_connection_window_bytes < self.http2_stream_window_bytes {
            errors.push(ConfigError::new(
                "server.http2_connection_window_bytes",
                "must be at least server.http2_stream_window_bytes",
            ));
        }
        if self.http2_max_header_list_bytes < 1024 {
            errors.push(ConfigError::new(
                "server.http2_max_header_list_bytes",
                "must be at least 1024 (API keys and trace headers travel there)",
            ));
        }
        if self.http2_keepalive_interval_ms != 0
            && !(1_000..=3_600_000).contains(&self.http2_keepalive_interval_ms)
        {
            errors.push(ConfigError::new(
                "server.http2_keepalive_interval_ms",
                "must be 0 (off) or between 1000 and 3600000 (pings more often than once a second are abuse to many clients)",
            ));
        }
        if !(1..=600_000).contains(&self.http2_keepalive_timeout_ms) {
            errors.push(ConfigError::new(
                "server.http2_keepalive_timeout_ms",
                "must be between 1 and 600000",
            ));
        }
        errors
    }

    /// The keepalive interval and timeout tonic is given; `None` when pings are off.
    pub(crate) fn http2_keepalive(&self) -> Option<(Duration, Duration)> {
        (self.http2_keepalive_interval_ms != 0).then(|| {
            (
                Duration::from_millis(self.http2_keepalive_interval_ms),
                Duration::from_millis(self.http2_keepalive_timeout_ms),
            )
        })
    }
}

/// One provider: exactly one adapter, and its policies.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ProviderEntry {
    /// An OpenAI-compatible endpoint.
    #[serde(default)]
    pub openai: Option<OpenAiConfig>,
    /// An MCP server's tool.
    #[serde(default)]
    pub mcp: Option<McpConfig>,
    /// Timeouts, retries, breaker, quotas (defaults when left out).
    #[serde(default)]
    pub policies: PolicyConfig,
}

impl ProviderEntry {
    /// The provider's id.
    pub fn id(&self) -> &str {
        match (&self.openai, &self.mcp) {
            (Some(openai), _) => &openai.id,
            (None, Some(mcp)) => &mcp.id,
            (None, None) => "",
        }
    }
}

impl ServerConfig {
    /// Every problem, each with its key (not only the first).
    pub fn validate(&self) -> Vec<ConfigError> {
        let mut errors = Vec::new();
        if self.server.max_message_bytes < 1024 {
            errors.push(ConfigError::new(
                "server.max_message_bytes",
                "must be at least 1024",
            ));
        }
        if self.server.shutdown_grace_ms == 0 {
            errors.push(ConfigError::new(
                "server.shutdown_grace_ms",
                "must be at least 1",
            ));
        }
        errors.extend(self.server.validate_http2());
        if let Some(tls) = &self.server.tls {
            errors.extend(tls.validate());
        }
        if self.agents.max_source_bytes == 0
            || self.agents.max_source_bytes > self.server.max_message_bytes
        {
            errors.push(ConfigError::new(
                "agents.max_source_bytes",
                "must be between 1 and server.max_message_bytes",
            ));
        }
        if self.agents.max_tokens_cap == 0 {
            errors.push(ConfigError::new(
                "agents.max_tokens_cap",
                "must be at least 1",
            ));
        }
        if let Some(audit) = &self.bus.audit {
            errors.extend(audit.validate().map_err(|e| e.within("bus.audit")).err());
        }
        errors.extend(self.auth.validate());
        errors.extend(self.limits.validate());
        errors.extend(self.telemetry.validate());
        errors.extend(
            self.secrets
                .validate()
                .map_err(|e| e.within("secrets"))
                .err(),
        );
        errors.extend(self.facts.validate());
        errors.extend(self.tasks.validate());
        errors.extend(self.worker.validate());
        if self.bus.queue_capacity == 0 {
            errors.push(ConfigError::new("bus.queue_capacity", "must be at least 1"));
        }
        let mut ids: Vec<&str> = Vec::new();
        for (i, entry) in self.providers.iter().enumerate() {
            let at = format!("providers[{i}]");
            let adapter = match (&entry.openai, &entry.mcp) {
                (Some(openai), None) => openai
                    .validate()
                    .map_err(|e| e.within(&format!("{at}.openai"))),
                (None, Some(mcp)) => mcp.validate().map_err(|e| e.within(&format!("{at}.mcp"))),
                _ => Err(ConfigError::new(
                    at.clone(),
                    "needs exactly one of `openai` or `mcp`",
                )),
            };
            errors.extend(adapter.err());
            errors.extend(
                entry
                    .policies
                    .validate()
                    .map_err(|e| e.within(&format!("{at}.policies")))
                    .err(),
            );
            if ids.contains(&entry.id()) {
                errors.push(ConfigError::new(
                    format!("{at}.id"),
                    format!("`{}` is used twice", entry.id()),
                ));
            }
            ids.push(entry.id());
        }
        if let Some(chain) = &self.chain {
            errors.extend(chain.validate().map_err(|e| e.within("chain")).err());
            for (i, entry) in chain.providers.iter().enumerate() {
                if !ids.contains(&entry.provider.as_str()) {
                    errors.push(ConfigError::new(
                        format!("chain.providers[{i}].provider"),
                        format!("no provider `{}` is configured", entry.provider),
                    ));
                }
            }
        }
        errors
    }

    /// The chain to build: the configured one, or every provider in order.
    pub fn chain(&self) -> ChainConfig {
        self.chain.clone().unwrap_or_else(|| {
            ChainConfig::new("default", self.providers.iter().map(|p| p.id().to_owned()))
        })
    }
}
