//! OpenAI-compatible chat completions over HTTP: one adapter for local gateways (mlx_lm.server,
//! llama.cpp's server, Ollama's `/v1`, vLLM) and hosted APIs.
//!
//! Every HTTP outcome becomes the `ProviderError` the resilience layers act on: 429 with its
//! `Retry-After`, 5xx and connection faults, timeouts, malformed bodies, auth and other 4xx.
//! Streams (SSE) are parsed with a bounded buffer, so a hostile server cannot make us hold an
//! endless line. The API key is a `SecretString`, registered with the redactor, and sent only in
//! the `Authorization` header. It is either fixed when the adapter is built, or read on every
//! request from a [`KeySource`] (`OpenAiProvider::with_key_source`), which is told when the
//! provider refuses it: a key rotated in the secret store is used without a restart.

mod config;
mod encoded;
mod errors;
mod key;
mod provider;
mod sse;
mod wire;

pub use config::{JsonMode, OpenAiConfig};
pub use key::KeySource;
pub use provider::OpenAiProvider;
