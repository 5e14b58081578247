//! Errors become gRPC statuses here, and only here.
//!
//! Validation errors carry `google.rpc.BadRequest` details with one field violation per JSON
//! path; provider outages carry `google.rpc.RetryInfo` when a provider said when to come back.
//! Every message has already passed the redactor (the error types' `Display` does it).

use agents_core::AgentError;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// The status for a failed agent run.
pub fn from_agent_error(error: &AgentError) -> Status {
    let message = error.to_string();
    match error {
        AgentError::Validation { violations, .. } => {
            let mut details = ErrorDetails::new();
            for violation in violations {
                let field = if violation.path.is_empty() {
                    "/"
                } else {
                    violation.path.as_str()
                };
                details.add_bad_request_violation(field, agents_core::redact(&violation.message));
            }
            Status::with_error_details(Code::InvalidArgument, message, details)
        }
        AgentError::AllProvidersFailed { attempts } => {
            let everyone_overloaded = !attempts.is_empty()
                && attempts
                    .iter()
                    .all(|a| a.error.kind() == agents_core::ProviderErrorKind::Overloaded);
            let everyone_refused =
                !attempts.is_empty() && attempts.iter().all(|a| refused_for_good(&a.error));
            let code = if everyone_overloaded {
                Code::ResourceExhausted
            } else if everyone_refused {
                // Retrying cannot help until an operator or the input changes: not UNAVAILABLE,
                // which clients and gRPC retry policies retry at once, each retry a model call.
                Code::FailedPrecondition
            } else {
                Code::Unavailable
            };
            match error.retry_after() {
                Some(wait) => {
                    let mut details = ErrorDetails::new();
                    details.set_retry_info(Some(wait));
                    Status::with_error_details(code, message, details)
                }
                None => Status::new(code, message),
            }
        }
        // The model answered with something unusable: transient, like an outage.
        AgentError::OutputInvalid { .. } => Status::unavailable(message),
        AgentError::DeadlineExceeded => Status::deadline_exceeded(message),
        AgentError::Cancelled => Status::cancelled(message),
        _ => Status::internal(message),
    }
}

/// Whether a provider's answer will be the same on every try: it rejected the request (400),
/// our credentials (401/403), or cannot serve it (unknown model, context window).
fn refused_for_good(error: &agents_core::ProviderError) -> bool {
    use agents_core::ProviderError;
    match error {
        ProviderError::BadRequest { .. }
        | ProviderError::Unauthorized { .. }
        | ProviderError::Unsupported { .. } => true,
        ProviderError::AllFailed { attempts } => {
            !attempts.is_empty() && attempts.iter().all(|a| refused_for_good(&a.error))
        }
        _ => false,
    }
}

/// The status for a failure of the task queue or its state bucket.
pub fn from_bus_error(error: &agents_bus::Error) -> Status {
    use agents_bus::ErrorKind;
    let message = format!("the task queue failed: {error}");
    match error.kind() {
        ErrorKind::Full => Status::resource_exhausted(message),
        ErrorKind::InvalidEvent | ErrorKind::TooLarge => Status::invalid_argument(message),
        ErrorKind::Timeout | ErrorKind::Transport | ErrorKind::Closed | ErrorKind::Io => {
            Status::unavailable(format!("{message}; retry later"))
        }
        _ => Status::internal(message),
    }
}

/// The status for a client-chosen id (`request_id`, `task_id`) that cannot name a run: the id
/// goes into every event subject, audit line and task key of the run, so it is held to a short,
/// plain shape.
pub fn invalid_id(field: &str) -> Status {
    let message =
        format!("{field} must be 1 to 128 letters, digits, `-` and `_`; leave it empty to get one");
    let mut details = ErrorDetails::new();
    details.add_bad_request_violation(field, message.clone());
    Status::with_error_details(Code::InvalidArgument, message, details)
}

/// The status for a request whose body is not valid JSON.
pub fn invalid_json(field: &str, error: &serde_json::Error) -> Status {
    let message = format!(
        "{field} is not valid JSON ({:?} error at line {}, column {}); send one JSON object",
        error.classify(),
        error.line(),
        error.column()
    );
    let mut details = ErrorDetails::new();
    details.add_bad_request_violation(field, message.clone());
    Status::with_error_details(Code::InvalidArgument, message, details)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use agents_core::{ProviderAttempt, ProviderError};

    use super::*;

    #[test]
    fn each_error_has_its_code_and_details() {
        let violation = agents_core::Violation {
            path: "/language".into(),
            message: "must be one of ...".into(),
        };
        let validation = AgentError::Validation {
            path: violation.path.clone(),
            message: violation.message.clone(),
            violations: vec![violation],
        };
        let status = from_agent_error(&validation);
        assert_eq!(status.code(), Code::InvalidArgument);
        let details = status.get_error_details();
        let violations = details.bad_request().unwrap().field_violations.clone();
        assert_eq!(violations[0].field, "/language");

        let outage = AgentError::AllProvidersFailed {
            attempts: vec![ProviderAttempt::new(
                "a",
                ProviderError::RateLimited {
                    retry_after: Some(Duration::from_secs(3)),
                },
            )],
        };
        let status = from_agent_error(&outage);
        assert_eq!(status.code(), Code::Unavailable);
        assert_eq!(
            status.get_error_details().retry_info().unwrap().retry_delay,
            Some(Duration::from_secs(3))
        );

        let full = AgentError::AllProvidersFailed {
            attempts: vec![ProviderAttempt::new(
                "a",
                ProviderError::Overloaded {
                    scope: "concurrency".into(),
                    retry_after: None,
                },
            )],
        };
        assert_eq!(from_agent_error(&full).code(), Code::ResourceExhausted);

        let refused = |errors: Vec<ProviderError>| AgentError::AllProvidersFailed {
            attempts: errors
                .into_iter()
                .map(|error| ProviderAttempt::new("a", error))
                .collect(),
        };
        let bad_request = || ProviderError::BadRequest {
            status: Some(400),
            message: "unknown field".into(),
        };
        let key = || ProviderError::Unauthorized {
            status: Some(401),
            message: "bad key".into(),
        };
        let down = || ProviderError::Unavailable {
            status: Some(503),
            reason: "down".into(),
        };
        for (errors, code) in [
            (vec![bad_request()], Code::FailedPrecondition),
            (vec![key(), bad_request()], Code::FailedPrecondition),
            (
                vec![ProviderError::AllFailed {
                    attempts: vec![ProviderAttempt::new("b", key())],
                }],
                Code::FailedPrecondition,
            ),
            // One provider may be back on the next try.
            (vec![down(), bad_request()], Code::Unavailable),
            (vec![], Code::Unavailable),
        ] {
            let status = from_agent_error(&refused(errors.clone()));
            assert_eq!(status.code(), code, "{errors:?}");
        }
        assert_eq!(
            from_agent_error(&AgentError::DeadlineExceeded).code(),
            Code::DeadlineExceeded
        );
        assert_eq!(
            from_agent_error(&AgentError::Cancelled).code(),
            Code::Cancelled
        );
        let invalid = AgentError::OutputInvalid {
            path: String::new(),
            message: "prose".into(),
        };
        assert_eq!(from_agent_error(&invalid).code(), Code::Unavailable);
        assert_eq!(
            from_agent_error(&AgentError::Internal {
                message: "bug".into()
            })
            .code(),
            Code::Internal
        );

        let error = serde_json::from_str::<serde_json::Value>("{oops").unwrap_err();
        let status = invalid_json("input_json", &error);
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(status.message().contains("line 1, column 2"));
    }
}
