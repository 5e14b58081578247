//! Model Context Protocol servers as providers (feature `mcp`).
//!
//! Some models are only reachable as a tool of an MCP server (a local wrapper around a model,
//! a gateway that speaks MCP). [`McpProvider`] turns one such tool into a
//! [`Provider`](agents_core::Provider), so it stacks with the resilience layers like any HTTP
//! adapter. A stdio server is a child process that can die under us; the provider notices,
//! reports it (`mcp.server_disconnected`), fails fast while backing off, and spawns it again
//! instead of failing every later request. Starting a server runs on its own, bounded by
//! `connect_timeout_ms`, so a server slower to start than a request's deadline still comes up
//! (once) for the requests after it. A server that is alive but no longer answers (stopped,
//! deadlocked with its pipes open) is found by an MCP ping after a timed-out call or at a health
//! check, and treated as lost.
//!
//! ```no_run
//! # async fn run() -> Result<(), agents_core::ProviderError> {
//! use std::sync::Arc;
//! use agents_core::{GenerateRequest, Message, NullSink, Provider};
//! use agents_providers::{McpConfig, McpProvider, McpTransport};
//!
//! let mut config = McpConfig::new("tools", McpTransport::Stdio {
//!     command: "node".into(),
//!     args: vec!["server-everything/dist/index.js".into(), "stdio".into()],
//!     env: Default::default(),
//! });
//! config.tool = "echo".into();
//! config.arguments.prompt_argument = "message".into();
//! config.arguments.pass_generation_options = false;
//! let provider = McpProvider::connect(config, Arc::new(NullSink)).await?;
//! let reply = provider.generate(GenerateRequest::new(vec![Message::user("hi")])).await?;
//! assert!(reply.text.contains("hi"));
//! # Ok(())
//! # }
//! ```

mod config;
mod connect;
mod connection;
mod provider;
#[cfg(test)]
mod tests;

pub use config::{McpArguments, McpConfig, McpTransport, ReconnectConfig};
pub use provider::McpProvider;
