//! `agents-load`: an open-loop load tool for the agents runtime and its peers.
//!
//! It sends requests at a constant arrival rate (request `i` is due at `t0 + i / rate`),
//! measures each latency from the request's due time (so a slow server cannot hide its
//! queueing: no coordinated omission), and reports throughput, errors by code, and HDR
//! latency percentiles. Against our gRPC `Execute` it also reports the runtime's own overhead
//! from the response metadata (`latency_us - provider_latency_us`); against any target, the
//! client-side overhead (latency minus the upstream's fixed latency).
//!
//! Targets: `grpc` (our server) and `openai` (any OpenAI-compatible `chat/completions`, such
//! as the LiteLLM proxy). `bench/compare.sh` runs both side by side; `bench/README.md` explains
//! the method.

pub mod payload;
pub mod run;
pub mod schedule;
pub mod stats;
pub mod target;

/// The client side of `proto/agents/v1/agents.proto`.
#[allow(missing_docs, unreachable_pub, clippy::all)]
pub mod pb {
    tonic::include_proto!("agents.v1");
}
