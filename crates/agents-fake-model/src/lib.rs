//! A fake OpenAI-compatible chat-completions server for tests and load benchmarks.
//!
//! The model is the one thing the `agents` workspace fakes. [`FakeModel`] serves
//! `POST /v1/chat/completions`, `GET /v1/models` and `GET /health` over real HTTP/1.1 on a
//! loopback port, so the HTTP provider adapter, the resilience policies and the agents are
//! tested against real sockets: real timeouts, real status codes, real connection resets.
//!
//! Each chat request takes the next one-shot [`Behavior`] pushed with [`FakeModel::push`]
//! (first in, first out), or the default one ([`FakeModel::set_default`], initially
//! [`Behavior::Answer`]) once the queue is empty. Every request is recorded before its behaviour
//! runs, so a test can check what the client sent ([`FakeModel::requests`]).
//!
//! | behaviour | what the client sees |
//! |-----------|----------------------|
//! | [`Behavior::Answer`] | a schema-valid answer for the agent that asked (JSON or SSE) |
//! | [`Behavior::Reply`] | a fixed text answer (JSON or SSE) |
//! | [`Behavior::Delay`] | another behaviour, later |
//! | [`Behavior::Status`] | an HTTP error with an OpenAI-style body and optional `Retry-After` |
//! | [`Behavior::Drop`] | the connection closed without a response |
//! | [`Behavior::Hang`] | no response at all, until it gives up |
//! | [`Behavior::Malformed`] | `200 OK` with a body of your choice |
//! | [`Behavior::Stream`] | an SSE stream of given pieces, optionally stalling |
//! | [`Behavior::MalformedStream`] | an SSE stream with one broken chunk |
//!
//! The crate is `publish = false` and never a dependency of production code. It has no
//! features. The binary `agents-fake-model` serves [`Behavior::Answer`] for benchmarks.
//!
//! # Example
//!
//! ```
//! use agents_fake_model::{Behavior, FakeModel};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! let model = FakeModel::start().await?;
//! model.push(Behavior::Status {
//!     code: 429,
//!     retry_after: Some("2".into()),
//!     message: "slow down".into(),
//! });
//! // Point the client under test at `model.base_url()`: its first chat request gets a 429,
//! // the next ones a canned answer.
//! assert!(model.base_url().starts_with("http://127.0.0.1:"));
//! assert_eq!(model.request_count(), 0);
//! model.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! # MSRV
//!
//! Rust 1.95, like the rest of the workspace.

mod behavior;
mod canned;
mod handler;
mod server;
mod sse;

pub use behavior::Behavior;
pub use canned::canned_answer;
pub use server::{FakeModel, RecordedRequest};
