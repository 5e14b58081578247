//! Answers from code facts alone, for when no model answers.
//!
//! Each is honest about what it is: `degraded: true` with the reason, a lower confidence, and
//! nothing the facts do not support. Each is valid against its agent's output schema (a test runs
//! every framework and every format through the schema).

pub(crate) mod analysis;
pub(crate) mod docs;
mod secrets;
pub(crate) mod skeletons;
