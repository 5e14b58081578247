//! The provider: one MCP session, re-established with backoff when it is lost.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use agents_core::{
    CloudEvent, ConfigError, EventSink, GenerateRequest, Generation, McpServerDisconnected,
    Provider, ProviderError, ProviderHealth, Role, Usage, redact,
};
use rmcp::ServiceError;
use rmcp::model::{CallToolRequestParams, CallToolResult, JsonObject};
use serde_json::Value;

use super::config::{McpConfig, ReconnectConfig};
use super::connect::{self, Attempt, Outcome, Waiter};
use super::connection::Connection;

/// Server text quoted in an error is cut to this many characters: it may echo the prompt.
const MAX_QUOTED_CHARS: usize = 300;

/// A [`Provider`] whose generations are calls of one tool of an MCP server.
///
/// The prompt is the request's messages joined by blank lines, each headed by its role
/// (`System:`, `User:`, `Assistant:`); it goes into the configured prompt argument, with `model`,
/// `max_tokens` and `temperature` beside it when
/// [`pass_generation_options`](super::McpArguments::pass_generation_options) is on. The answer
/// is the text items of the result, joined by newlines. Stop sequences, seed and response format
/// are not sent: tools have no common way to take them. Usage is an **estimate** of four
/// characters per token, since MCP results carry no token counts.
///
/// A lost session (the child exited, the HTTP endpoint went away, or the server stopped
/// answering: a ping after a timed-out call, or at a health check, got no answer within
/// `ping_timeout_ms`) is noticed by the next call or health check, which fails with
/// [`ProviderError::Unavailable`] and emits `mcp.server_disconnected` once. Later calls fail
/// fast, saying when the next attempt is, until a backoff with full jitter has elapsed; the call
/// after that starts a reconnect (spawning the child again), which emits `mcp.server_connected`.
///
/// A connect (the first, of a lazy provider, or a reconnect) runs in a task of its own, bounded
/// by [`connect_timeout_ms`](McpConfig::connect_timeout_ms), not by the deadline of the call that
/// started it: every call waits for that one attempt up to its own deadline, and a call that
/// gives up does not stop it, so a server that takes longer to start than a call may wait is
/// still started once and connects. A connect that fails or times out enters the backoff, as a
/// lost session does. Nothing else runs in the background but the ping after a timed-out call,
/// whose caller has stopped waiting.
///
/// A stdio child is killed when the provider is dropped, also while it is still starting.
#[derive(Debug)]
pub struct McpProvider {
    config: Arc<McpConfig>,
    events: Arc<dyn EventSink>,
    /// Short critical sections only, never across an await; shared with the connect task,
    /// which settles it.
    state: Arc<Mutex<State>>,
}

#[derive(Debug)]
enum State {
    /// Lazy provider before its first call.
    NotConnected,
    /// A connect task is running; calls wait for it. `failures` counts the failed attempts
    /// before this one.
    Connecting {
        attempt: Attempt,
        failures: u32,
    },
    Connected(Arc<Connection>),
    /// Disconnected; no attempt before `until`.
    Backoff {
        until: Instant,
        failures: u32,
        reason: String,
    },
}

/// What a call should do, decided under the state lock.
enum Next {
    Use(Arc<Connection>),
    /// A connect is running: wait for it.
    Wait(Waiter),
    /// A connect is due but was not started (health checks start none).
    Connect,
    Fail(ProviderError),
}

/// Whether [`McpProvider::next`] starts a connect that is due.
enum Due {
    /// A call: start it, and wait for it.
    Start,
    /// A health check: only say so.
    Report,
}

impl McpProvider {
    /// Connects now: spawns or reaches the server, lists its tools and checks the configured
    /// tool is one of them, all within `connect_timeout_ms`. Emits `mcp.server_connected`.
    ///
    /// An invalid config is a [`ProviderError::BadRequest`] naming the setting; use
    /// [`McpConfig::validate`] first for a [`ConfigError`].
    pub async fn connect(
        config: McpConfig,
        events: Arc<dyn EventSink>,
    ) -> Result<Self, ProviderError> {
        let provider = Self::lazy(config, events).map_err(|e| bad_request(e.to_string()))?;
        let connection = connect::open_in_time(&provider.config, &*provider.events).await?;
        *provider.lock() = State::Connected(Arc::new(connection));
        Ok(provider)
    }

    /// Validates the config but connects on the first [`generate`](Provider::generate), so a
    /// server that is down at start-up does not stop the process; its failure then counts as a
    /// failed reconnect attempt.
    pub fn lazy(config: McpConfig, events: Arc<dyn EventSink>) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Self {
            config: Arc::new(config),
            events,
            state: Arc::new(Mutex::new(State::NotConnected)),
        })
    }

    /// The pid of the current stdio child, if connected over stdio.
    pub fn server_pid(&self) -> Option<u32> {
        match &*self.lock() {
            State::Connected(connection) => connection.pid,
            _ => None,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Decides from the state alone; notices a session lost since the last call. A connect
    /// that is due is started if `due` says so.
    fn next(&self, due: Due) -> Next {
        let mut state = self.lock();
        let failures = match &*state {
            State::NotConnected => 0,
            State::Connecting { attempt, failures } => {
                if !attempt.abandoned() {
                    return Next::Wait(attempt.waiter());
                }
                failures.saturating_add(1)
            }
            State::Connected(c) => match c.lost() {
                None => return Next::Use(Arc::clone(c)),
                Some(reason) => {
                    state.back_off(&self.config.reconnect, 1, &reason);
                    drop(state);
                    self.emit_disconnected(&reason);
                    return Next::Fail(unavailable(&reason));
                }
            },
            State::Backoff {
                until,
                failures,
                reason,
            } => match until.checked_duration_since(Instant::now()) {
                Some(wait) if !wait.is_zero() => {
                    return Next::Fail(unavailable(&format!(
                        "not connected ({reason}); next reconnect attempt in {:.3}s",
                        wait.as_secs_f64()
                    )));
                }
                _ => *failures,
            },
        };
        match due {
            Due::Start => Next::Wait(self.start_connect(&mut state, failures)),
            Due::Report => Next::Connect,
        }
    }

    /// Starts a connect task, which settles the state: connected, or backing off after one
    /// more failure. Called under the state lock, so the task cannot settle before it is
    /// recorded.
    fn start_connect(&self, state: &mut State, failures: u32) -> Waiter {
        let shared = Arc::clone(&self.state);
        let reconnect = self.config.reconnect;
        let attempt = Attempt::start(
            Arc::clone(&self.config),
            Arc::clone(&self.events),
            move |outcome: &Outcome| {
                let mut state = lock(&shared);
                match outcome {
                    Ok(connection) => *state = State::Connected(Arc::clone(connection)),
                    Err(error) => {
                        let reason = match error {
                            ProviderError::Unavailable { reason, .. } => reason.clone(),
                            other => other.to_string(),
                        };
                        state.back_off(&reconnect, failures.saturating_add(1), &reason);
                    }
                }
            },
        );
        let waiter = attempt.waiter();
        *state = State::Connecting { attempt, failures };
        waiter
    }

    /// Marks `lost` as gone if it is still the current session; the event goes out once.
    fn lose(&self, lost: &Arc<Connection>, reason: &str) {
        let mut state = self.lock();
        if matches!(&*state, State::Connected(c) if Arc::ptr_eq(c, lost)) {
            state.back_off(&self.config.reconnect, 1, reason);
            drop(state);
            self.emit_disconnected(reason);
        }
    }

    fn emit_disconnected(&self, reason: &str) {
        tracing::warn!(provider = %self.config.id, reason = %redact(reason), "MCP server disconnected");
        let mut payload = McpServerDisconnected::default();
        payload.server = self.config.id.clone();
        payload.reason = redact(reason).into_owned();
        self.events
            .emit(CloudEvent::new(self.config.source(), &payload));
    }

    /// A connection for this call, reconnecting when the backoff allows. Dropping the future
    /// (the caller's deadline) stops only the wait, not a connect in progress.
    async fn connection(&self) -> Result<Arc<Connection>, ProviderError> {
        match self.next(Due::Start) {
            Next::Use(connection) => Ok(connection),
            Next::Wait(waiter) => waiter.outcome().await,
            Next::Fail(error) => Err(error),
            // `Due::Start` starts the connect instead of reporting it.
            Next::Connect => Err(unavailable("not connected; the next call connects")),
        }
    }

    fn arguments(&self, request: &GenerateRequest, prompt: String) -> JsonObject {
        let mut arguments = JsonObject::new();
        arguments.insert(
            self.config.arguments.prompt_argument.clone(),
            Value::String(prompt),
        );
        if self.config.arguments.pass_generation_options {
            if let Some(model) = &request.model {
                arguments.insert("model".into(), Value::String(model.clone()));
            }
            if let Some(max_tokens) = request.max_tokens {
                arguments.insert("max_tokens".into(), max_tokens.into());
            }
            if let Some(temperature) = request.temperature {
                // Through the shortest decimal, so 0.7f32 is sent as 0.7, not 0.699999988.
                let wide = temperature
                    .to_string()
                    .parse()
                    .unwrap_or(f64::from(temperature));
                arguments.insert("temperature".into(), wide.into());
            }
        }
        arguments
    }

    fn read_result(&self, result: CallToolResult) -> Result<String, ProviderError> {
        let texts: Vec<&str> = result
            .content
            .iter()
            .filter_map(|item| item.as_text().map(|t| t.text.as_str()))
            .collect();
        let text = texts.join("\n");
        if result.is_error == Some(true) {
            // The tool failed this call (its own upstream, its input checks, a bug): another
            // provider of the chain may well answer, and this one would likely fail again.
            let message = if text.is_empty() { "no details" } else { &text };
            return Err(unsupported(format!(
                "tool `{}` reported an error: {}",
                self.config.tool,
                quote(message)
            )));
        }
        if texts.is_empty() {
            return Err(ProviderError::InvalidResponse {
                message: format!(
                    "tool `{}` returned no text content ({} other items)",
                    self.config.tool,
                    result.content.len()
                ),
            });
        }
        Ok(text)
    }

    /// Maps a failed call; a transport fault also marks the session lost.
    fn call_failed(&self, connection: &Arc<Connection>, error: ServiceError) -> ProviderError {
        match error {
            ServiceError::McpError(data) => {
                let message = format!("tools/call failed: {}", quote(&data.message));
                if data.code == rmcp::model::ErrorCode::INTERNAL_ERROR {
                    unavailable(&message)
                } else {
                    // This server refused the call (unknown tool, arguments its schema does
                    // not take): a refusal of this provider, not of the request everywhere.
                    unsupported(message)
                }
            }
            ServiceError::UnexpectedResponse => ProviderError::InvalidResponse {
                message: "the server answered tools/call with an unexpected result type".into(),
            },
            ServiceError::Timeout { timeout } => ProviderError::Timeout { elapsed: timeout },
            other => {
                let reason = format!("the connection to the MCP server was lost: {other}");
                self.lose(connection, &reason);
                unavailable(&reason)
            }
        }
    }
}

impl State {
    /// Disconnected after `failures` failures in a row: no attempt before a jittered wait.
    fn back_off(&mut self, reconnect: &ReconnectConfig, failures: u32, reason: &str) {
        let wait = reconnect.backoff(failures, &mut rand::rng());
        *self = State::Backoff {
            until: Instant::now() + wait,
            failures,
            reason: redact(reason).into_owned(),
        };
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    // Every critical section is a plain assignment, so a poisoned state is still whole.
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Drop for McpProvider {
    /// A connect in progress holds the state and a child being started: both go now.
    fn drop(&mut self) {
        if let State::Connecting { attempt, .. } = &*self.lock() {
            attempt.abort();
        }
    }
}

#[async_trait::async_trait]
impl Provider for McpProvider {
    fn id(&self) -> &str {
        &self.config.id
    }

    async fn generate(&self, request: GenerateRequest) -> Result<Generation, ProviderError> {
        let started = Instant::now();
        let budget = request
            .remaining()
            .map_or(self.config.call_timeout(), |left| {
                left.min(self.config.call_timeout())
            });
        let timeout = || ProviderError::Timeout {
            elapsed: started.elapsed(),
        };
        if budget.is_zero() {
            return Err(timeout());
        }
        let deadline = tokio::time::Instant::from_std(started + budget);
        let connection = tokio::time::timeout_at(deadline, self.connection())
            .await
            .map_err(|_| timeout())??;

        let prompt = prompt(&request);
        let prompt_chars = prompt.chars().count();
        let params = CallToolRequestParams::new(self.config.tool.clone())
            .with_arguments(self.arguments(&request, prompt));
        // The peer handle is used without any lock held; dropping the call on timeout makes
        // rmcp send `notifications/cancelled` for it.
        let sent = Instant::now();
        let result = tokio::time::timeout_at(deadline, connection.service.peer().call_tool(params))
            .await
            .map_err(|_| {
                // A slow tool, or a server that answers nothing any more: a ping tells which.
                connection.check_after_timeout(self.config.ping_timeout());
                timeout()
            })?
            .map_err(|e| self.call_failed(&connection, e))?;
        // The tool call's round trip; connecting (first use) and reading the result are ours.
        let upstream = sent.elapsed();
        let text = self.read_result(result)?;

        let usage = Usage {
            prompt_tokens: estimate_tokens(prompt_chars),
            completion_tokens: estimate_tokens(text.chars().count()),
        };
        let model = request.model.unwrap_or_else(|| self.config.tool.clone());
        Ok(Generation::new(&self.config.id, model, text)
            .with_usage(usage)
            .with_latency(started.elapsed())
            .with_upstream_latency(upstream))
    }

    async fn health(&self) -> ProviderHealth {
        // An open session is not enough: a stopped or deadlocked server keeps its pipes open.
        // One that misses the ping is marked lost, and `next` reports it.
        if let Next::Use(connection) = self.next(Due::Report)
            && connection.check(self.config.ping_timeout()).await.is_ok()
        {
            return ProviderHealth::Healthy;
        }
        match self.next(Due::Report) {
            Next::Use(_) => ProviderHealth::Healthy,
            Next::Fail(error) => ProviderHealth::Unhealthy {
                reason: error.to_string(),
            },
            Next::Wait(_) => ProviderHealth::Degraded {
                reason: "connecting to the MCP server".into(),
            },
            Next::Connect => ProviderHealth::Degraded {
                reason: "not connected; the next call connects".into(),
            },
        }
    }
}

/// The messages as one text, each headed by its role, separated by blank lines.
pub(super) fn prompt(request: &GenerateRequest) -> String {
    let parts: Vec<String> = request
        .messages
        .iter()
        .map(|message| {
            let role = match message.role {
                Role::System => "System",
                Role::User => "User",
                Role::Assistant => "Assistant",
                _ => "Message",
            };
            format!("{role}:\n{}", message.content)
        })
        .collect();
    parts.join("\n\n")
}

/// An estimate: four characters per token, rounded up.
fn estimate_tokens(chars: usize) -> u64 {
    u64::try_from(chars.div_ceil(4)).unwrap_or(u64::MAX)
}

/// The reason names no provider: chains and logs put the id in front of it.
pub(super) fn unavailable(reason: &str) -> ProviderError {
    ProviderError::Unavailable {
        status: None,
        reason: redact(reason).into_owned(),
    }
}

fn unsupported(message: String) -> ProviderError {
    ProviderError::Unsupported {
        status: None,
        message: redact(&message).into_owned(),
    }
}

pub(super) fn bad_request(message: String) -> ProviderError {
    ProviderError::BadRequest {
        status: None,
        message: redact(&message).into_owned(),
    }
}

/// Server text, redacted and shortened.
fn quote(text: &str) -> String {
    crate::upstream_text::quote_upstream(text, MAX_QUOTED_CHARS)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::McpTransport;
    use super::*;
    use agents_core::Message;

    #[test]
    fn the_prompt_heads_each_message_with_its_role() {
        let request = GenerateRequest::new(vec![Message::system("Be brief."), Message::user("Hi")]);
        assert_eq!(prompt(&request), "System:\nBe brief.\n\nUser:\nHi");
        let provider = McpProvider::lazy(
            McpConfig::new(
                "p",
                McpTransport::Http {
                    url: "http://127.0.0.1:1/mcp".into(),
                },
            ),
            Arc::new(agents_core::NullSink),
        )
        .unwrap();
        let request = request
            .with_model("m")
            .with_temperature(0.7)
            .with_max_tokens(9);
        let arguments = serde_json::to_string(&provider.arguments(&request, "p".into())).unwrap();
        assert_eq!(
            arguments,
            r#"{"max_tokens":9,"model":"m","prompt":"p","temperature":0.7}"#
        );
        assert_eq!(estimate_tokens(0), 0);
        assert_eq!(estimate_tokens(5), 2);
        let long = "x".repeat(1000);
        assert_eq!(quote(&long).chars().count(), MAX_QUOTED_CHARS + 1);
        let key = "sk-proj-abcdefghijklmnopqrstuvwxyz012345";
        assert!(!quote(&format!("bad key {key}")).contains(key));
    }
}
