//! The durable audit log: every event as one CloudEvents JSON line, hash-chained.
//!
//! Why: operators and auditors need a record of every agent run, provider call, fallback and
//! breaker change that survives restarts and shows tampering. The bus this crate replaces kept
//! its audit trail in memory buffers, lost it on every crash and could not tell an edited
//! record from a real one.
//!
//! What it guarantees, and against which failure:
//! - **Crash (kill -9) mid-write** loses at most the event being written: each line goes to the
//!   operating system in one `write` before the publish returns, lines are only ever appended,
//!   and on start a torn last line (no trailing newline) is cut off and counted
//!   (`audit_repaired`). Earlier lines are never rewritten.
//! - **Power loss** loses at most what the [`FsyncPolicy`] allows: nothing with `every_event`,
//!   the last interval with `interval`.
//! - **Tampering or damage** is detected by [`verify_audit_file`]: each line carries a
//!   `chainhash` extension attribute, the SHA-256 of the previous line's hash and this line,
//!   so an edited, removed, inserted or reordered line breaks the chain at that line. The chain
//!   is unkeyed: someone who rewrites the file *and* recomputes every hash after the edit is
//!   caught only by comparing the last hash with a copy kept elsewhere (the
//!   [`AuditReport::last_hash`] is meant for that). Cutting whole lines off the end of a file
//!   is likewise visible only against such a copy.
//! - **Unbounded files**: a new file starts each UTC day and when a file would pass
//!   `max_file_bytes` (`audit-2026-05-01.jsonl`, `audit-2026-05-01.1.jsonl`, ...). Each file has
//!   its own chain, starting from 32 zero bytes, so every file verifies on its own.
//! - **Two writers on one directory** (say the server's `serve` and `worker` with one config)
//!   would continue the same file from the same hash and break each other's chains: a writer
//!   holds an exclusive lock on `<dir>/.lock` from open to close, and a second open of the
//!   directory is [`Error::AuditDirInUse`](crate::Error::AuditDirInUse).

mod chain;
mod config;
mod files;
mod lock;
mod log;
mod verify;
mod writer;

pub use config::{AuditConfig, FsyncPolicy};
pub use log::AuditLog;
pub use verify::{AuditReport, ChainBreak, ChainProblem, verify_audit_file};

#[cfg(test)]
mod tests;
