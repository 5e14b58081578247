//! Calls that end before their run does.
//!
//! A client that hangs up, or tonic's own `grpc-timeout` timer (it starts when the request
//! arrives, a little before the run's deadline), drops the call's future: the run stops at its
//! next await and nothing after it runs. Without this, such a call left no trace: no request
//! counted in the metrics (so error rates and latency read best exactly when the model is
//! slowest), and an `agent.started` with no end in the audit log.

use std::time::Instant;

use agents_core::{AgentContext, AgentFailed, DeferredEvent};
use tokio_util::task::task_tracker::TaskTrackerToken;
use tonic::Code;

use crate::metrics::Metrics;

/// What a client is told when the run panicked: the panic's text stays in the server log.
pub(super) const RUN_PANICKED: &str = "the run failed unexpectedly; see the server log";

/// Counts the call, and ends its run in the event log, unless [`finished`](Self::finished) is
/// called first: DEADLINE_EXCEEDED once the run's deadline has passed, else CANCELLED.
/// Borrows what it needs from the call, so the common case (the run ends) costs nothing but
/// `running`: a token of the server's run tracker, which shutdown waits on after cutting
/// connections off, so that the `agent.failed` of a call dropped then is queued before the
/// event pipeline closes. (It is a field, so it drops after the `Drop` body has emitted.)
pub(super) struct UnfinishedCall<'a> {
    metrics: &'a Metrics,
    agent: &'a str,
    started: Instant,
    ctx: &'a AgentContext,
    finished: bool,
    _running: TaskTrackerToken,
}

impl<'a> UnfinishedCall<'a> {
    pub(super) fn new(
        metrics: &'a Metrics,
        agent: &'a str,
        started: Instant,
        ctx: &'a AgentContext,
        running: TaskTrackerToken,
    ) -> Self {
        Self {
            metrics,
            agent,
            started,
            ctx,
            finished: false,
            _running: running,
        }
    }

    /// The run ended and was counted: nothing to do on drop.
    pub(super) fn finished(mut self) {
        self.finished = true;
    }
}

impl Drop for UnfinishedCall<'_> {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let (code, kind, message) = if std::thread::panicking() {
            // Unwinding from a bug in the run: not the client's doing.
            (Code::Internal, "internal", RUN_PANICKED)
        } else if self.ctx.deadline_passed() {
            (
                Code::DeadlineExceeded,
                "deadline_exceeded",
                "the call's deadline passed before the run ended",
            )
        } else {
            (
                Code::Cancelled,
                "cancelled",
                "the client went away before the run ended",
            )
        };
        let elapsed = self.started.elapsed();
        self.metrics
            .record_request(self.agent, code, elapsed, std::time::Duration::ZERO);
        let mut failed = AgentFailed::default();
        self.agent.clone_into(&mut failed.agent_id);
        failed.request_id.clone_from(&self.ctx.request_id);
        failed.error_kind = kind.to_owned();
        failed.message = message.to_owned();
        failed.latency_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
        let event = DeferredEvent::new(format!("/agents/{}", self.agent), failed)
            .with_subject(self.ctx.request_id.clone())
            .with_trace_context(&self.ctx.trace);
        self.ctx.events.emit_deferred(event);
    }
}
