//! Checking an audit file: the API behind `agents-server audit verify <file>`.

use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use agents_core::MAX_EVENT_BYTES;

use super::chain::{self, GENESIS};
use crate::Error;

/// Longest line the verifier reads: the largest event plus the chain suffix and some slack.
const MAX_LINE: u64 = (MAX_EVENT_BYTES + chain::SUFFIX_LEN + 4096) as u64;

/// What is wrong with the first broken line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ChainProblem {
    /// The hash does not follow from the previous line and this one: this line was edited, or
    /// a line before it was removed, inserted or reordered.
    HashMismatch,
    /// The line has no `chainhash` suffix: it is not an audit line, or it was cut or split.
    MissingHash,
    /// The file ends in the middle of this line (no newline): a crash mid-write, or a cut.
    TornLine,
    /// The line is longer than any event the log writes.
    TooLong,
}

impl fmt::Display for ChainProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::HashMismatch => {
                "its hash does not match the chain: the line was edited, or a line before it was removed, inserted or reordered"
            }
            Self::MissingHash => "it has no chain hash: the line was cut, split or not written by the audit log",
            Self::TornLine => "the file ends inside it (no newline): a crash mid-write or a cut file",
            Self::TooLong => "it is longer than any event the audit log writes",
        })
    }
}

/// The first line of a file where the chain breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct ChainBreak {
    /// Line number, from 1.
    pub line: u64,
    /// What is wrong with it.
    pub problem: ChainProblem,
}

impl fmt::Display for ChainBreak {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.problem)
    }
}

/// The outcome of [`verify_audit_file`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuditReport {
    /// Lines that verified, from the first; all of them when the file is intact.
    pub verified_lines: u64,
    /// Hex chain value after the last verified line (`None` for an empty file). Keep a copy
    /// elsewhere to detect a rewritten chain or lines cut off the end.
    pub last_hash: Option<String>,
    /// The first broken line, if any.
    pub broken: Option<ChainBreak>,
}

impl AuditReport {
    /// Whether every line verified.
    pub fn is_intact(&self) -> bool {
        self.broken.is_none()
    }
}

/// Verifies the hash chain of one audit file, line by line, and reports the first broken
/// line. Reads the file once, holding one line at a time.
///
/// # Errors
/// [`Error::Io`] when the file cannot be opened or read; a damaged file is not an error but a
/// report with [`AuditReport::broken`] set.
pub fn verify_audit_file(path: impl AsRef<Path>) -> Result<AuditReport, Error> {
    let path = path.as_ref();
    let file = File::open(path).map_err(Error::io("open audit file", path))?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut prev = GENESIS;
    let mut report = AuditReport {
        verified_lines: 0,
        last_hash: None,
        broken: None,
    };
    let mut line = Vec::new();
    loop {
        line.clear();
        let read = (&mut reader)
            .take(MAX_LINE)
            .read_until(b'\n', &mut line)
            .map_err(Error::io("read audit file", path))?;
        if read == 0 {
            return Ok(report);
        }
        let number = report.verified_lines + 1;
        let problem = match line.strip_suffix(b"\n") {
            None if read as u64 == MAX_LINE => Some(ChainProblem::TooLong),
            None => Some(ChainProblem::TornLine),
            Some(content) => match chain::check(&prev, content) {
                Ok(hash) => {
                    prev = hash;
                    None
                }
                Err(true) => Some(ChainProblem::MissingHash),
                Err(false) => Some(ChainProblem::HashMismatch),
            },
        };
        if let Some(problem) = problem {
            report.broken = Some(ChainBreak {
                line: number,
                problem,
            });
            return Ok(report);
        }
        report.verified_lines = number;
        report.last_hash = Some(hex::encode(prev));
    }
}
