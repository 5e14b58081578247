//! # agents-server
//!
//! The front end of the `agents` runtime: the gRPC service (`proto/agents/v1/agents.proto`), its
//! auth, limits, metrics and tracing, the queue worker, and the `agents-server` command line.
//! It is the one crate that knows every other: it wires providers, the bus and the secret
//! stores into the agents of `agents-core`.
//!
//! Today it holds the generated protocol types and the command line's offline subcommands
//! (`agents`, `schema`, `validate`, `schemas`); the service itself lands with the server issue.
//!
//! ## Features
//!
//! | feature | default | what it adds |
//! |---------|---------|--------------|
//! | (none)  |         | no optional parts yet |
//!
//! MSRV: Rust 1.95.

pub mod cli;

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
