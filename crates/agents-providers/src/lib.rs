//! # agents-providers
//!
//! Model providers for the `agents` runtime and the resilience stack around them. Every piece
//! implements [`agents_core::Provider`] and wraps an `Arc<dyn Provider>`, so they stack, and a
//! downstream team can take any one of them alone.
//!
//! | piece | what it prevents |
//! |-------|------------------|
//! | [`OpenAiProvider`] | — (the adapter: OpenAI-compatible HTTP, streaming, precise error mapping) |
//! | [`Observe`] | attempts nobody can see: emits `provider.request` / `success` / `failure` |
//! | [`Timeout`] | a silent model or a stalled stream holding a request forever |
//! | [`Retry`] | one transient fault failing a request; retry storms (budget) |
//! | [`CircuitBreaker`] | every request paying a timeout to a provider that is down |
//! | [`ConcurrencyLimit`] | overloading a model server; unbounded queues |
//! | [`RateLimit`] | exceeding a provider's RPM/TPM limits |
//! | [`FallbackChain`] | one provider's outage becoming ours |
//! | `McpProvider` (feature `mcp`) | — (the adapter: a tool of an MCP server as the model; reconnects with backoff) |
//! | `HostGuard` (feature `mlx`) | a model on this machine pushing it into swap or thermal throttling |
//!
//! [`Stack`] writes down, in one place, the order the runtime wraps them in.
//!
//! ## Features
//!
//! | feature | default | what it adds |
//! |---------|---------|--------------|
//! | `openai` | yes | [`OpenAiProvider`] (reqwest, rustls) |
//! | `mlx` | | `openai` plus the host memory/thermal guard for models served on this machine |
//! | `mcp` | | a provider over Model Context Protocol servers (rmcp) |
//! | `full` | | all of the above |
//! | `testing` | | `testing::ScriptedProvider`, an in-process scripted model for tests and benchmarks |
//!
//! MSRV: Rust 1.95.

mod fallback;
#[cfg(feature = "mlx")]
mod guard;
mod jitter;
#[cfg(feature = "mcp")]
mod mcp;
#[cfg(feature = "openai")]
mod openai;
mod policy;
mod stack;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
// Only the adapters quote upstream text.
#[cfg(any(feature = "openai", feature = "mcp"))]
mod upstream_text;

pub use fallback::{ChainConfig, ChainEntryConfig, FallbackChain};
#[cfg(feature = "mlx")]
pub use guard::{
    GuardConfig, HostGuard, HostProbe, HostSample, LinuxProbe, MemorySample, ProbeError,
    ScriptedProbe, SystemProbe, ThermalSample,
};
#[cfg(feature = "mcp")]
pub use mcp::{McpArguments, McpConfig, McpProvider, McpTransport, ReconnectConfig};
#[cfg(feature = "openai")]
pub use openai::{JsonMode, KeySource, OpenAiConfig, OpenAiProvider};
pub use policy::breaker::{BreakerConfig, BreakerState, CircuitBreaker, FailureRateConfig};
pub use policy::observe::Observe;
pub use policy::quota::{ConcurrencyConfig, ConcurrencyLimit, QuotaDepth};
pub use policy::rate::{RateConfig, RateLimit, TokenBucket};
pub use policy::retry::{BudgetConfig, Retry, RetryConfig};
pub use policy::timeout::{Timeout, TimeoutConfig};
pub use stack::{PolicyConfig, Stack};
