//! Why a call was not admitted.

use std::fmt;
use std::time::Duration;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// Which limit refused a call. Becomes `RESOURCE_EXHAUSTED`; see [`Refusal::to_status`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Refusal {
    /// Every global in-flight slot is taken (`limits.max_in_flight`).
    #[non_exhaustive]
    Global {
        /// The cap.
        limit: usize,
    },
    /// The tenant already has its maximum of calls in flight (`limits.tenant_max_concurrent`),
    /// or the tenant table is full of busy tenants (`limits.max_tenants`).
    #[non_exhaustive]
    TenantConcurrency {
        /// The cap that was hit: `tenant_max_concurrent`, or `max_tenants` when
        /// `tenants_full`.
        limit: usize,
        /// The tenant is not tracked and the table has no room for it.
        tenants_full: bool,
    },
    /// The tenant's request rate is used up (`limits.tenant_requests_per_minute`).
    #[non_exhaustive]
    TenantRate {
        /// When the next request would be admitted.
        retry_after: Duration,
    },
}

impl Refusal {
    /// A short name of the limit, for metric labels and logs: `global_in_flight`,
    /// `tenant_concurrency`, `tenant_table_full` or `tenant_rate`.
    pub fn limit_name(&self) -> &'static str {
        match self {
            Self::Global { .. } => "global_in_flight",
            Self::TenantConcurrency {
                tenants_full: false,
                ..
            } => "tenant_concurrency",
            Self::TenantConcurrency {
                tenants_full: true, ..
            } => "tenant_table_full",
            Self::TenantRate { .. } => "tenant_rate",
        }
    }

    /// How long to wait before retrying, when the limiter knows (rate refusals).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::TenantRate { retry_after } => Some(*retry_after),
            _ => None,
        }
    }

    /// The gRPC status: `RESOURCE_EXHAUSTED` with a message naming the limit and what to do,
    /// and `google.rpc.RetryInfo` details for rate refusals.
    pub fn to_status(&self) -> Status {
        let message = self.to_string();
        match self.retry_after() {
            Some(wait) => {
                let mut details = ErrorDetails::new();
                details.set_retry_info(Some(wait));
                Status::with_error_details(Code::ResourceExhausted, message, details)
            }
            None => Status::resource_exhausted(message),
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Global { limit } => write!(
                f,
                "server overloaded: all {limit} in-flight call slots are busy \
                 (limits.max_in_flight); retry with backoff"
            ),
            Self::TenantConcurrency {
                limit,
                tenants_full: false,
            } => write!(
                f,
                "too many concurrent calls for this tenant: at most {limit} may be in flight \
                 (limits.tenant_max_concurrent); wait for a call to finish before starting another"
            ),
            Self::TenantConcurrency {
                limit,
                tenants_full: true,
            } => write!(
                f,
                "server busy: it tracks at most {limit} tenants (limits.max_tenants) and all \
                 have calls in flight; retry with backoff"
            ),
            Self::TenantRate { retry_after } => write!(
                f,
                "request rate limit for this tenant reached (limits.tenant_requests_per_minute); \
                 retry in {:.3}s",
                retry_after.as_secs_f64()
            ),
        }
    }
}

impl std::error::Error for Refusal {}

impl From<Refusal> for Status {
    fn from(refusal: Refusal) -> Self {
        refusal.to_status()
    }
}
