//! OpenAI-compatible chat completions over HTTP: one adapter for local gateways (mlx_lm.server,
//! llama.cpp's server, Ollama's `/v1`, vLLM) and hosted APIs.
//!
//! Every HTTP outcome becomes the `ProviderError` the resilience layers act on: 429 with its
//! `Retry-After`, 5xx and connection faults, timeouts, malformed bodies, auth and other 4xx.
//! Streams (SSE) are parsed with a bounded buffer, so a hostile server cannot make us hold an
//! endless line. The API key is a `SecretString`, registered with the redactor, and sent only in
//! the `Authorization` header.

mod config;
mod encoded;
mod errors;
mod provider;
mod sse;
mod wire;

pub use config::{JsonMode, OpenAiConfig};
pub use provider::OpenAiProvider;
