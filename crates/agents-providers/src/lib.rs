//! # agents-providers
//!
//! Model providers for the `agents` runtime and the resilience stack around them: the
//! OpenAI-compatible HTTP adapter, the MCP adapter, timeouts, retries, circuit breakers,
//! concurrency quotas, token buckets, fallback chains and host guards. Every piece implements
//! [`agents_core::Provider`], so they stack.
//!
//! This release holds no code yet: the adapters and policies land with the providers issue. The
//! crate exists so the workspace layout and its dependency rules hold from the start.
//!
//! MSRV: Rust 1.95.
