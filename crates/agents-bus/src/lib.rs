//! # agents-bus
//!
//! The event bus of the `agents` runtime: CloudEvents ([`agents_core::CloudEvent`]) fanned out
//! in-process, sent to NATS JetStream, and written to a durable, hash-chained audit log; plus the
//! task queue workers pull from.
//!
//! This release holds no code yet: the bus lands with the bus issue. The crate exists so the
//! workspace layout and its dependency rules hold from the start.
//!
//! MSRV: Rust 1.95.
