//! One MCP session and whether it still answers.
//!
//! A closed transport is not the only way to lose a server: a child that is stopped (SIGSTOP)
//! or deadlocked keeps its pipes open, so the session looks open while every call times out.
//! An MCP ping tells the two apart: the server answers it from its message loop, without any
//! tool work, so a server that is up answers at once even while a slow tool runs.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rmcp::model::{ClientRequest, PingRequest};
use rmcp::service::RunningService;
use rmcp::{RoleClient, ServiceError};

#[derive(Debug)]
pub(super) struct Connection {
    /// Dropping it cancels rmcp's session task, which drops (and so kills) the child.
    pub(super) service: RunningService<RoleClient, ()>,
    pub(super) pid: Option<u32>,
    /// Why the server is taken for gone though its transport is open (it missed a ping).
    unresponsive: OnceLock<String>,
    /// A ping started after a timed-out call is still waiting: one at a time is enough.
    checking: AtomicBool,
}

impl Connection {
    pub(super) fn new(service: RunningService<RoleClient, ()>, pid: Option<u32>) -> Self {
        Self {
            service,
            pid,
            unresponsive: OnceLock::new(),
            checking: AtomicBool::new(false),
        }
    }

    /// Why this session can no longer be used, if it cannot.
    pub(super) fn lost(&self) -> Option<String> {
        if self.service.peer().is_transport_closed() {
            return Some("the MCP server closed the connection".to_owned());
        }
        self.unresponsive.get().cloned()
    }

    /// Pings the server; on no answer within `timeout` (or a broken transport) marks the
    /// session lost and says why. Any answer, even an error, proves the server alive.
    pub(super) async fn check(&self, timeout: Duration) -> Result<(), String> {
        let ping = ClientRequest::PingRequest(PingRequest::default());
        let reason =
            match tokio::time::timeout(timeout, self.service.peer().send_request(ping)).await {
                Ok(Ok(_) | Err(ServiceError::McpError(_))) => return Ok(()),
                Ok(Err(error)) => format!("the connection to the MCP server was lost: {error}"),
                Err(_) => format!(
                    "the MCP server did not answer a ping within {} ms (stopped or deadlocked?)",
                    timeout.as_millis()
                ),
            };
        // A second failed check keeps the first reason: either says the same.
        let _ = self.unresponsive.set(reason.clone());
        Err(reason)
    }

    /// After a call timed out: checks in the background whether the server still answers, so
    /// the next call or health check drops a wedged one. The caller's deadline has passed, so
    /// it does not wait for the answer.
    pub(super) fn check_after_timeout(self: &Arc<Self>, timeout: Duration) {
        if self.checking.swap(true, Ordering::AcqRel) {
            return;
        }
        let connection = Arc::clone(self);
        tokio::spawn(async move {
            if connection.check(timeout).await.is_ok() {
                // Up, only slow: a later timeout is worth another look.
                connection.checking.store(false, Ordering::Release);
            }
        });
    }
}
