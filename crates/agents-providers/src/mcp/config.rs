//! Configuration of one MCP server used as a provider.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use agents_core::ConfigError;
use serde::{Deserialize, Serialize};

/// One MCP server whose tool answers prompts.
///
/// ```toml
/// id = "local-tools"
/// tool = "echo"
/// transport = { type = "stdio", command = "node", args = ["server.js", "stdio"] }
/// arguments = { prompt_argument = "message", pass_generation_options = false }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpConfig {
    /// Provider id for logs, metrics, events and fallback reports.
    pub id: String,
    /// How to reach the server.
    pub transport: McpTransport,
    /// The tool that generates text. Default `text-generation`.
    #[serde(default = "default_tool")]
    pub tool: String,
    /// How a request is mapped onto the tool's arguments.
    #[serde(default)]
    pub arguments: McpArguments,
    /// Upper bound of one tool call in milliseconds; a request's deadline can shorten it.
    /// Default 60000.
    #[serde(default = "default_call_timeout_ms")]
    pub call_timeout_ms: u64,
    /// Upper bound of one connect in milliseconds: starting the server (or reaching it), the
    /// MCP handshake and listing its tools. A connect runs on its own, not within a call's
    /// deadline: calls wait for it up to their deadline, and one that gives up leaves it running,
    /// so raise this, not the call deadlines, for a server that starts slowly (a cold `npx`).
    /// A connect that takes longer is stopped (a stdio child is killed) and counts as a failed
    /// reconnect attempt. Default 30000.
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// How long the server has to answer an MCP ping, in milliseconds, when a tool call timed
    /// out and at each health check. A server that does not (stopped, deadlocked with its pipes
    /// open) is dropped and started again; raise it for servers that block their message loop
    /// while a tool runs. Default 5000.
    #[serde(default = "default_ping_timeout_ms")]
    pub ping_timeout_ms: u64,
    /// Backoff between reconnect attempts after the server went away.
    #[serde(default)]
    pub reconnect: ReconnectConfig,
}

/// The transport to an MCP server.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum McpTransport {
    /// A child process speaking MCP on its stdin/stdout; it is killed with the provider.
    Stdio {
        /// The program, looked up on `PATH`.
        command: String,
        /// Its arguments.
        #[serde(default)]
        args: Vec<String>,
        /// Variables added to the inherited environment (may hold secrets: never logged).
        #[serde(default)]
        env: BTreeMap<String, String>,
    },
    /// A streamable HTTP endpoint, e.g. `http://127.0.0.1:3001/mcp`.
    Http {
        /// The endpoint URL.
        url: String,
    },
}

impl McpTransport {
    /// The transport's name in `mcp.server_connected` events: `stdio` or `streamable_http`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Stdio { .. } => "stdio",
            Self::Http { .. } => "streamable_http",
        }
    }
}

// By hand: `env` values are often API keys for the server, so only their names are shown.
impl fmt::Debug for McpTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Stdio { command, args, env } => f
                .debug_struct("Stdio")
                .field("command", command)
                .field("args", args)
                .field("env", &env.keys().collect::<Vec<_>>())
                .finish(),
            Self::Http { url } => f
                .debug_struct("Http")
                .field("url", &agents_core::redact(url))
                .finish(),
        }
    }
}

/// Which tool arguments receive the request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpArguments {
    /// The argument that receives the prompt. Default `prompt`.
    #[serde(default = "default_prompt_argument")]
    pub prompt_argument: String,
    /// Whether to also pass the request's `model`, `max_tokens` and `temperature` (each only
    /// when set). Default true; turn it off for tools whose schema has no such arguments.
    #[serde(default = "default_true")]
    pub pass_generation_options: bool,
}

impl Default for McpArguments {
    fn default() -> Self {
        Self {
            prompt_argument: default_prompt_argument(),
            pass_generation_options: true,
        }
    }
}

/// Exponential backoff with full jitter between reconnect attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReconnectConfig {
    /// Upper bound of the first wait, in milliseconds. Default 200.
    #[serde(default = "default_initial_backoff_ms")]
    pub initial_backoff_ms: u64,
    /// Cap of every wait, in milliseconds. Default 10000.
    #[serde(default = "default_max_backoff_ms")]
    pub max_backoff_ms: u64,
}

impl Default for ReconnectConfig {
    fn default() -> Self {
        Self {
            initial_backoff_ms: default_initial_backoff_ms(),
            max_backoff_ms: default_max_backoff_ms(),
        }
    }
}

impl ReconnectConfig {
    /// The wait before reconnect attempt `failures` (1 after the first failure): uniformly drawn
    /// from `[0, min(max, initial * 2^(failures-1)))`, so that many clients of one restarted
    /// server do not reconnect in lockstep.
    pub fn backoff(&self, failures: u32, rng: &mut impl rand::Rng) -> Duration {
        crate::jitter::full_jitter(
            self.initial_backoff_ms,
            failures.saturating_sub(1),
            self.max_backoff_ms,
            rng,
        )
    }
}

impl McpConfig {
    /// A config for `id` over `transport` with every other setting at its default.
    pub fn new(id: impl Into<String>, transport: McpTransport) -> Self {
        Self {
            id: id.into(),
            transport,
            tool: default_tool(),
            arguments: McpArguments::default(),
            call_timeout_ms: default_call_timeout_ms(),
            connect_timeout_ms: default_connect_timeout_ms(),
            ping_timeout_ms: default_ping_timeout_ms(),
            reconnect: ReconnectConfig::default(),
        }
    }

    /// The tool-call timeout.
    pub fn call_timeout(&self) -> Duration {
        Duration::from_millis(self.call_timeout_ms)
    }

    /// The time a connect may take, from start to a checked tool list.
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }

    /// The source of this provider's CloudEvents.
    pub(super) fn source(&self) -> String {
        format!("/providers/{}/mcp", self.id)
    }

    /// The time the server has to answer a liveness ping.
    pub fn ping_timeout(&self) -> Duration {
        Duration::from_millis(self.ping_timeout_ms)
    }

    /// Refuses settings that deserialize but cannot work; the path names the setting.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let blank = |s: &str| s.trim().is_empty();
        if blank(&self.id) {
            return Err(ConfigError::new("id", "must not be empty"));
        }
        match &self.transport {
            McpTransport::Stdio { command, .. } if blank(command) => {
                return Err(ConfigError::new(
                    "transport.command",
                    "must name the server program",
                ));
            }
            McpTransport::Http { url }
                if !(url.starts_with("http://") || url.starts_with("https://")) =>
            {
                return Err(ConfigError::new(
                    "transport.url",
                    "must be an http:// or https:// URL",
                ));
            }
            _ => {}
        }
        if blank(&self.tool) {
            return Err(ConfigError::new("tool", "must name a tool of the server"));
        }
        if blank(&self.arguments.prompt_argument) {
            return Err(ConfigError::new(
                "arguments.prompt_argument",
                "must name the tool argument that receives the prompt",
            ));
        }
        if self.call_timeout_ms == 0 || self.call_timeout_ms > 86_400_000 {
            return Err(ConfigError::new(
                "call_timeout_ms",
                "must be between 1 and 86400000 (a day)",
            ));
        }
        if self.connect_timeout_ms == 0 || self.connect_timeout_ms > 86_400_000 {
            return Err(ConfigError::new(
                "connect_timeout_ms",
                "must be between 1 and 86400000 (a day)",
            ));
        }
        if self.ping_timeout_ms == 0 || self.ping_timeout_ms > 86_400_000 {
            return Err(ConfigError::new(
                "ping_timeout_ms",
                "must be between 1 and 86400000 (a day)",
            ));
        }
        let reconnect = &self.reconnect;
        if reconnect.initial_backoff_ms == 0 {
            return Err(ConfigError::new(
                "reconnect.initial_backoff_ms",
                "must be at least 1",
            ));
        }
        if reconnect.max_backoff_ms > 3_600_000 {
            return Err(ConfigError::new(
                "reconnect.max_backoff_ms",
                "must be at most 3600000 (an hour)",
            ));
        }
        if reconnect.max_backoff_ms < reconnect.initial_backoff_ms {
            return Err(ConfigError::new(
                "reconnect.max_backoff_ms",
                "must not be below reconnect.initial_backoff_ms",
            ));
        }
        Ok(())
    }
}

fn default_tool() -> String {
    "text-generation".to_owned()
}
fn default_prompt_argument() -> String {
    "prompt".to_owned()
}
fn default_true() -> bool {
    true
}
fn default_call_timeout_ms() -> u64 {
    60_000
}
fn default_connect_timeout_ms() -> u64 {
    30_000
}
fn default_ping_timeout_ms() -> u64 {
    5_000
}
fn default_initial_backoff_ms() -> u64 {
    200
}
fn default_max_backoff_ms() -> u64 {
    10_000
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fill_in_and_unknown_fields_are_refused() {
        let config: McpConfig = serde_json::from_value(serde_json::json!({
            "id": "tools",
            "transport": {"type": "stdio", "command": "node", "env": {"TOKEN": "s3cret"}},
        }))
        .unwrap();
        assert_eq!(config.tool, "text-generation");
        assert_eq!(config.arguments, McpArguments::default());
        assert_eq!(config.call_timeout(), Duration::from_secs(60));
        assert_eq!(config.connect_timeout(), Duration::from_secs(30));
        assert_eq!(config.ping_timeout(), Duration::from_secs(5));
        assert_eq!(config.reconnect, ReconnectConfig::default());
        assert_eq!(config.transport.kind(), "stdio");
        assert!(config.validate().is_ok());
        let debug = format!("{config:?}");
        assert!(
            debug.contains("TOKEN") && !debug.contains("s3cret"),
            "{debug}"
        );

        for bad in [
            serde_json::json!({"id": "t", "transport": {"type": "http", "url": "http://x"}, "tools": "x"}),
            serde_json::json!({"id": "t", "transport": {"type": "http", "url": "http://x", "port": 1}}),
            serde_json::json!({"id": "t", "transport": {"type": "pigeon"}}),
        ] {
            assert!(serde_json::from_value::<McpConfig>(bad).is_err());
        }
    }

    #[test]
    fn validation_names_the_setting() {
        type Breaker = fn(&mut McpConfig);
        let http = McpTransport::Http {
            url: "http://127.0.0.1:1/mcp".into(),
        };
        let ok = McpConfig::new("tools", http);
        assert!(ok.validate().is_ok());
        let cases: [(&str, Breaker); 9] = [
            ("id", |c| c.id = " ".into()),
            ("transport.url", |c| {
                c.transport = McpTransport::Http {
                    url: "ftp://x".into(),
                }
            }),
            ("transport.command", |c| {
                c.transport = McpTransport::Stdio {
                    command: String::new(),
                    args: vec![],
                    env: BTreeMap::new(),
                }
            }),
            ("tool", |c| c.tool = String::new()),
            ("arguments.prompt_argument", |c| {
                c.arguments.prompt_argument = String::new()
            }),
            ("call_timeout_ms", |c| c.call_timeout_ms = 0),
            ("connect_timeout_ms", |c| c.connect_timeout_ms = 0),
            ("ping_timeout_ms", |c| c.ping_timeout_ms = 0),
            ("reconnect.max_backoff_ms", |c| {
                c.reconnect.max_backoff_ms = c.reconnect.initial_backoff_ms - 1
            }),
        ];
        for (path, break_it) in cases {
            let mut config = ok.clone();
            break_it(&mut config);
            assert_eq!(config.validate().unwrap_err().path, path);
        }
    }

    #[test]
    fn backoff_is_jittered_below_a_capped_exponential() {
        let reconnect = ReconnectConfig {
            initial_backoff_ms: 100,
            max_backoff_ms: 1_000,
        };
        let mut rng = rand::rng();
        for failures in 0..100u32 {
            let ceiling = 100u64
                .saturating_mul(1 << failures.saturating_sub(1).min(32))
                .min(1_000);
            for _ in 0..20 {
                let wait = reconnect.backoff(failures, &mut rng);
                assert!(
                    wait <= Duration::from_millis(ceiling),
                    "{failures}: {wait:?}"
                );
            }
        }
        // Full jitter spreads the waits over the whole range, not just near the cap.
        let waits: Vec<_> = (0..200).map(|_| reconnect.backoff(10, &mut rng)).collect();
        assert!(waits.iter().any(|w| *w < Duration::from_millis(500)));
        assert!(waits.iter().any(|w| *w >= Duration::from_millis(500)));
    }
}
