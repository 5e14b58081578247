//! # agents-core
//!
//! The contracts of the `agents` runtime, and the pure logic every deployment shares:
//!
//! - [`Provider`]: one model endpoint or a composition of them (fallback chains, breakers and
//!   quotas in `agents-providers` implement it too), with [`GenerateRequest`] and [`Generation`].
//! - [`Agent`]: validates a JSON input against its schema, prompts a provider, extracts and
//!   validates the JSON answer. Three are built in: [`CodeAnalysisAgent`],
//!   [`DocumentationAgent`] and [`TestGenerationAgent`]. Built `with_facts` (or with
//!   [`grounded_agents`]), they ground prompts and counts in [`facts::CodeFacts`] and answer from
//!   the facts alone (marked `degraded`) when no model answers.
//! - Typed errors that tell the resilience layers what to do: [`ProviderError`] and
//!   [`AgentError`], with `kind()`, `is_retryable()` and `retry_after()`.
//! - [`CloudEvent`], the event catalogue as typed payloads, and the [`EventSink`] agents emit to.
//! - [`Redactor`]: masks registered secrets and common secret shapes in any string; every
//!   error's `Display` goes through it.
//! - [`extract_json_object`]: finds the JSON object in what a model said.
//!
//! No I/O happens here: no sockets, no files, no async runtime. `execute` is a plain future
//! that any executor can drive; cancellation uses a `CancellationToken`, deadlines are carried
//! to the provider, which enforces them.
//!
//! ## Features
//!
//! | feature | default | what it adds |
//! |---------|---------|--------------|
//! | (none)  |         | everything above; the crate has no optional parts yet |
//!
//! ## Example
//!
//! ```
//! use std::sync::Arc;
//! use agents_core::{Agent, AgentConfig, AgentContext, CodeAnalysisAgent, GenerateRequest,
//!     Generation, Provider, ProviderError, ProviderHealth};
//!
//! #[derive(Debug)]
//! struct Canned;
//!
//! #[agents_core::async_trait]
//! impl Provider for Canned {
//!     fn id(&self) -> &str { "canned" }
//!     async fn generate(&self, _: GenerateRequest) -> Result<Generation, ProviderError> {
//!         let reply = r#"Sure! ```json
//!         {"suggestions": [], "security": {"vulnerabilities": [], "risk_level": "none"},
//!          "performance": {"bottlenecks": [], "memory_usage": "low"}, "confidence": 0.9}
//!         ```"#;
//!         Ok(Generation::new("canned", "tiny", reply))
//!     }
//!     async fn health(&self) -> ProviderHealth { ProviderHealth::Healthy }
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let agent = CodeAnalysisAgent::new(AgentConfig::default())?;
//! let ctx = AgentContext::new(Arc::new(Canned));
//! let input = serde_json::json!({"source_code": "def f(x): return x", "language": "python"});
//! let done = futures_executor::block_on(agent.execute(&ctx, input))?;
//! assert_eq!(done.output["security"]["risk_level"], "none");
//! assert_eq!(done.metadata.provider.as_deref(), Some("canned"));
//! # Ok(())
//! # }
//! ```
//!
//! MSRV: Rust 1.95.

mod agents;
mod config_error;
mod error;
mod events;
mod extract;
pub mod facts;
mod provider;
mod redact;
mod schema;
mod trace;

pub use agents::*;
pub use config_error::ConfigError;
pub use error::{
    AgentError, AgentErrorKind, HostCondition, MAX_VIOLATIONS, ProviderAttempt, ProviderError,
    ProviderErrorKind, Violation,
};
pub use events::*;
pub use extract::*;
pub use provider::{
    GenerateRequest, Generation, GenerationStream, Message, Provider, ProviderHealth,
    ResponseFormat, Role, StreamDelta, Usage,
};
pub use redact::*;
pub use schema::schema_of;
pub use trace::{TraceContext, TraceContextError};

/// Re-exported so implementors of [`Provider`] and [`Agent`] use the same macro version.
pub use async_trait::async_trait;
/// Re-exported: [`AgentContext::cancel`] is one.
pub use tokio_util::sync::CancellationToken;
