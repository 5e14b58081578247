//! Why a call failed, as a message and an exit code.
//!
//! Exit codes: 0 success; 2 a local problem (arguments, the file, TLS files); 10 + the gRPC
//! code for a call the server (or the transport) refused: 13 INVALID_ARGUMENT, 14
//! DEADLINE_EXCEEDED, 15 NOT_FOUND, 17 PERMISSION_DENIED, 18 RESOURCE_EXHAUSTED, 19
//! FAILED_PRECONDITION (every model refused the request or the key: retrying will not help),
//! 24 UNAVAILABLE (also: no server at the address), 26 UNAUTHENTICATED, and so on. Each gRPC code
//! has its own exit code, so a script can retry an outage and give up on a bad input.

use std::io::Write;

use tonic::{Code, Status};
use tonic_types::StatusExt;

use crate::metrics::code_name;

/// The exit code table, for `call --help`.
pub(super) const EXIT_CODES_HELP: &str = "Exit codes: 0 success; 2 a local problem (arguments, file, TLS files); 10 + the gRPC status code when the call fails: 13 INVALID_ARGUMENT (bad input; each JSON path is printed), 14 DEADLINE_EXCEEDED, 15 NOT_FOUND (no such agent), 16 ALREADY_EXISTS, 17 PERMISSION_DENIED, 18 RESOURCE_EXHAUSTED (overloaded; retry later), 19 FAILED_PRECONDITION (every model refused the request or the server's key; retrying will not help), 23 INTERNAL, 24 UNAVAILABLE (no model answered, or no server at --addr), 26 UNAUTHENTICATED (missing or wrong API key).";

/// Exit code for local problems.
const LOCAL: u8 = 2;

/// The exit code of a call that failed with `code`: 10 plus the gRPC code number (13 for
/// INVALID_ARGUMENT, 24 for UNAVAILABLE, ...).
pub fn exit_code(code: Code) -> u8 {
    // gRPC codes run from 0 to 16, so this is always 10..=26.
    10 + u8::try_from(code as i32).unwrap_or(2)
}

/// A failed call.
#[derive(Debug)]
pub(super) enum Failure {
    /// Nothing was sent, or the answer could not be used.
    Local(String),
    /// The server or the transport refused the call.
    Status(Box<Status>),
}

impl Failure {
    pub(super) fn local(message: impl Into<String>) -> Self {
        Self::Local(message.into())
    }

    /// Prints the failure on `err` and returns its exit code.
    pub(super) fn report(self, err: &mut dyn Write) -> u8 {
        match self {
            Self::Local(message) => {
                let _ = writeln!(err, "error: {message}");
                LOCAL
            }
            Self::Status(status) => {
                let _ = writeln!(
                    err,
                    "error: {}: {}",
                    code_name(status.code()),
                    status.message()
                );
                let details = status.get_error_details();
                if let Some(bad_request) = details.bad_request() {
                    for violation in &bad_request.field_violations {
                        let _ =
                            writeln!(err, "  at {}: {}", violation.field, violation.description);
                    }
                }
                if let Some(wait) = details.retry_info().and_then(|r| r.retry_delay) {
                    let _ = writeln!(err, "  retry after {:.1}s", wait.as_secs_f64());
                }
                let _ = writeln!(err, "{}", hint(status.code()));
                exit_code(status.code())
            }
        }
    }
}

/// What to do about a code.
fn hint(code: Code) -> &'static str {
    match code {
        Code::InvalidArgument => {
            "hint: fix the input at the paths above (`agents-server schema <agent>` prints what is accepted)"
        }
        Code::Unauthenticated => "hint: pass --api-key or set AGENTS_API_KEY",
        Code::PermissionDenied => {
            "hint: this key lacks the role for the call; ask for the `execute` role"
        }
        Code::NotFound => "hint: `agents-server agents` lists the agents",
        Code::Unavailable => {
            "hint: check that the server runs at --addr and that a model answers behind it; retrying later may work"
        }
        Code::ResourceExhausted => "hint: the server or a tenant limit is full; retry later",
        Code::FailedPrecondition => {
            "hint: every model refused the request or the server's key; retrying will not help: check the provider config in the server's log, or send a smaller input"
        }
        Code::DeadlineExceeded => "hint: raise --timeout, or send less code",
        _ => "hint: see the server's log for the request",
    }
}

impl From<Status> for Failure {
    fn from(status: Status) -> Self {
        // tonic's client timer (the `grpc-timeout` it sends) fires before the server's and
        // reports CANCELLED "Timeout expired": it is our --timeout passing, DEADLINE_EXCEEDED.
        if status.code() == Code::Cancelled && status.message() == TONIC_TIMEOUT_EXPIRED {
            return Self::Status(Box::new(Status::deadline_exceeded(
                "no answer within --timeout",
            )));
        }
        Self::Status(Box::new(status))
    }
}

/// The message of tonic's `TimeoutExpired`, which it reports as CANCELLED.
const TONIC_TIMEOUT_EXPIRED: &str = "Timeout expired";

#[cfg(test)]
mod tests {
    use tonic_types::ErrorDetails;

    use super::*;

    #[test]
    fn each_code_has_its_own_exit_code() {
        assert_eq!(exit_code(Code::InvalidArgument), 13);
        assert_eq!(exit_code(Code::Unavailable), 24);
        assert_eq!(exit_code(Code::Unauthenticated), 26);
        let mut all: Vec<u8> = (0..=16).map(|n| exit_code(Code::from_i32(n))).collect();
        all.dedup();
        assert_eq!(all.len(), 17);
        assert!(!all.contains(&LOCAL));
    }

    #[test]
    fn invalid_argument_prints_each_json_path() {
        let mut details = ErrorDetails::new();
        details.add_bad_request_violation("/language", "must be one of rust, python");
        let status = Status::with_error_details(Code::InvalidArgument, "invalid input", details);
        let mut err = Vec::new();
        let code = Failure::from(status).report(&mut err);
        let text = String::from_utf8(err).unwrap();
        assert_eq!(code, 13);
        assert!(
            text.contains("error: INVALID_ARGUMENT: invalid input"),
            "{text}"
        );
        assert!(text.contains("  at /language: must be one of"), "{text}");
    }
}
