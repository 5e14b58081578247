//! Deadlines for every call, and for streams the gap between chunks and their total time.
//!
//! Why: a model that never answers, or a stream that stalls after its first token, would hold a
//! request (and its quota slot) forever. Every call gets a deadline — the earlier of the
//! caller's and this policy's — which is written into the request so the layers below see it
//! too; a stream must also produce each next chunk within `stream_idle_timeout_ms`.

mod config;
mod policy;

pub use config::TimeoutConfig;
pub use policy::Timeout;
