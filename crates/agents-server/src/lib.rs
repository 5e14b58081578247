//! # agents-server
//!
//! The front end of the `agents` runtime: the gRPC service (`proto/agents/v1/agents.proto`), its
//! auth, limits, metrics and tracing, the queue worker, and the `agents-server` command line.
//! It is the one crate that knows every other: it wires providers, the bus and the secret
//! stores into the agents of `agents-core`.
//!
//! Today it serves ListAgents, DescribeAgent, Execute, ExecuteStream and in-process tasks over
//! gRPC with health and reflection, from a TOML config with `AGENTS_` overrides, with API-key
//! auth, limits, Prometheus metrics and tracing ([`telemetry`]: each call a span continuing the
//! client's `traceparent`, exported over OTLP when configured, JSON logs with trace ids).
//!
//! ## Features
//!
//! | feature | default | what it adds |
//! |---------|---------|--------------|
//! | `mimalloc` | yes | the `agents-server` binary allocates with mimalloc (a library user's program keeps its own allocator either way) |
//!
//! MSRV: Rust 1.95.

mod accept;
pub mod auth;
pub mod cli;
pub mod client;
pub mod config;
pub mod facts_offload;
pub mod limits;
pub mod logging;
pub mod metrics;
pub mod no_model;
mod provider_key;
pub mod serve;
pub mod service;
pub mod shed;
pub mod status;
pub mod telemetry;
pub mod tls;
pub mod worker;

/// Types and service stubs generated from `proto/agents/v1/agents.proto`.
#[allow(
    missing_docs,
    unreachable_pub,
    clippy::all,
    clippy::unwrap_used,
    clippy::expect_used
)]
pub mod pb {
    tonic::include_proto!("agents.v1");

    /// The encoded file descriptor set, for gRPC server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        tonic::include_file_descriptor_set!("agents_v1_descriptor");
}
