//! Connecting to the server: spawning or reaching it, the MCP handshake and the tool check.
//!
//! A server can need longer to start than a caller is willing to wait (a cold `npx` download,
//! a slow handshake). Were the connect made inside the call, the caller's deadline would drop it
//! halfway, killing the child, and the next caller would spawn another: the server would never
//! come up, and every call would spend its whole deadline on it. So a connect runs in a task of
//! its own, bounded only by `connect_timeout_ms`; every caller waits for the same attempt up to
//! its own deadline, and one that gives up leaves the attempt running for the others.

use std::sync::Arc;

use agents_core::{CloudEvent, EventSink, McpServerConnected, ProviderError};
use rmcp::ServiceExt;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use tokio::sync::watch;
use tokio::task::AbortHandle;

use super::config::{McpConfig, McpTransport};
use super::connection::Connection;
use super::provider::{bad_request, unavailable};

/// How a connect attempt ended.
pub(super) type Outcome = Result<Arc<Connection>, ProviderError>;

/// A connect running in its own task.
#[derive(Debug)]
pub(super) struct Attempt {
    outcome: watch::Receiver<Option<Outcome>>,
    task: AbortHandle,
}

/// One caller's wait for an [`Attempt`]; dropping it does not stop the attempt.
#[derive(Debug)]
pub(super) struct Waiter(watch::Receiver<Option<Outcome>>);

impl Attempt {
    /// Spawns the connect. `settle` runs in the task with the outcome before any waiter sees
    /// it, so that whoever looks at the provider's state afterwards finds it settled.
    pub(super) fn start(
        config: Arc<McpConfig>,
        events: Arc<dyn EventSink>,
        settle: impl FnOnce(&Outcome) + Send + 'static,
    ) -> Self {
        let (sender, outcome) = watch::channel(None);
        let task = tokio::spawn(async move {
            let outcome = open_in_time(&config, &*events).await.map(Arc::new);
            if let Err(error) = &outcome {
                tracing::warn!(provider = %config.id, %error, "MCP server did not connect");
            }
            settle(&outcome);
            sender.send_replace(Some(outcome));
        });
        Self {
            outcome,
            task: task.abort_handle(),
        }
    }

    pub(super) fn waiter(&self) -> Waiter {
        Waiter(self.outcome.clone())
    }

    /// Whether the task ended without an outcome (it panicked), so nobody will settle it.
    pub(super) fn abandoned(&self) -> bool {
        self.outcome.has_changed().is_err() && self.outcome.borrow().is_none()
    }

    /// Stops the attempt; a child it spawned is killed with it.
    pub(super) fn abort(&self) {
        self.task.abort();
    }
}

impl Waiter {
    /// The attempt's outcome, once it has one.
    pub(super) async fn outcome(mut self) -> Outcome {
        self.0
            .wait_for(Option::is_some)
            .await
            .ok()
            .and_then(|outcome| (*outcome).clone())
            .unwrap_or_else(|| {
                Err(unavailable(
                    "the connect to the MCP server ended without an outcome; the next call \
                     tries again",
                ))
            })
    }
}

/// [`open`] within `connect_timeout_ms`; past it the attempt is dropped, which kills a child.
pub(super) async fn open_in_time(
    config: &McpConfig,
    events: &dyn EventSink,
) -> Result<Connection, ProviderError> {
    let connect_timeout = config.connect_timeout();
    tokio::time::timeout(connect_timeout, open(config, events))
        .await
        .unwrap_or_else(|_| {
            Err(unavailable(&format!(
                "the MCP server did not connect within {} ms (start, handshake and \
                 tools/list); raise `connect_timeout_ms` if it needs longer to start",
                connect_timeout.as_millis()
            )))
        })
}

/// Starts a session, checks the tool and emits `mcp.server_connected`.
async fn open(config: &McpConfig, events: &dyn EventSink) -> Result<Connection, ProviderError> {
    let (service, pid) = match &config.transport {
        McpTransport::Stdio { command, args, env } => {
            let mut cmd = tokio::process::Command::new(command);
            // Belt and braces with rmcp's own kill: covers a runtime that shuts down before
            // rmcp's cleanup task runs, and an attempt aborted before the handshake.
            cmd.args(args).envs(env).kill_on_drop(true);
            let child = TokioChildProcess::new(cmd).map_err(|e| {
                unavailable(&format!("could not start the MCP server `{command}`: {e}"))
            })?;
            let pid = child.id();
            let service = ().serve(child).await.map_err(|e| {
                unavailable(&format!("the MCP handshake with `{command}` failed: {e}"))
            })?;
            (service, pid)
        }
        McpTransport::Http { url } => {
            let transport = StreamableHttpClientTransport::from_uri(url.as_str());
            let service = ()
                .serve(transport)
                .await
                .map_err(|e| unavailable(&format!("the MCP handshake with {url} failed: {e}")))?;
            (service, None)
        }
    };
    let tools: Vec<String> = service
        .peer()
        .list_all_tools()
        .await
        .map_err(|e| unavailable(&format!("the MCP server failed tools/list: {e}")))?
        .into_iter()
        .map(|tool| tool.name.into_owned())
        .collect();
    if !tools.contains(&config.tool) {
        return Err(bad_request(format!(
            "MCP server `{}` has no tool `{}`; it offers: {}. Set `tool` to one of them",
            config.id,
            config.tool,
            tools.join(", ")
        )));
    }
    tracing::info!(provider = %config.id, ?pid, tools = tools.len(), "MCP server connected");
    let mut payload = McpServerConnected::default();
    payload.server = config.id.clone();
    payload.transport = config.transport.kind().to_owned();
    payload.tools = tools;
    events.emit(CloudEvent::new(config.source(), &payload));
    Ok(Connection::new(service, pid))
}
