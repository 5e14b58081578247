//! The background task that empties the outbox into JetStream, oldest first.
//!
//! One event is in flight at a time. Sending a window would be faster, but a connection lost
//! mid-window can store a later event and lose an earlier one, and re-sending the earlier one
//! would then break per-source order.

use std::sync::{Arc, Weak};
use std::time::Duration;

use super::bus::{SendError, Shared, retry_delay};
use super::stream::NotReady;
use crate::BusMetrics;

/// Runs until the bus shuts down with an empty outbox, or every handle to the bus is gone
/// (it holds the bus only weakly, so a bus dropped without `shutdown` does not leak it).
pub(crate) async fn run(weak: Weak<Shared>) {
    let Some(max) = weak.upgrade().map(|s| s.config.max_retry_delay()) else {
        return;
    };
    let mut failures = 0usize;
    let backoff = |failures: &mut usize| {
        *failures += 1;
        // At least 10 ms between attempts, at most the configured maximum.
        retry_delay(*failures + 1, max).max(Duration::from_millis(10).min(max))
    };
    loop {
        let Some(shared) = weak.upgrade() else {
            return;
        };
        let Some(entry) = shared.outbox_front() else {
            if shared.is_closed() {
                return;
            }
            let wake = Arc::clone(&shared.wake);
            drop(shared);
            wake.notified().await;
            continue;
        };
        if !shared.stream_ready()
            && let Err(NotReady::Unreachable(error) | NotReady::Refused(error)) =
                shared.ensure_stream().await
        {
            tracing::debug!(%error, "outbox: the event stream is not ready");
            tokio::time::sleep(backoff(&mut failures)).await;
            continue;
        }
        if !shared.connected() {
            tokio::time::sleep(backoff(&mut failures)).await;
            continue;
        }
        match shared.send(&entry).await {
            Ok(_) => {
                shared.outbox_pop();
                BusMetrics::inc(&shared.metrics.outbox_resent);
                if failures > 0 {
                    tracing::info!(
                        waiting = shared.outbox_len(),
                        "NATS is reachable again; sending the outbox"
                    );
                }
                failures = 0;
            }
            Err(SendError::Never(error)) => {
                shared.outbox_pop();
                BusMetrics::inc(&shared.metrics.publish_errors);
                tracing::error!(event_id = %entry.id, event_type = %entry.event_type, %error, "outbox: NATS refuses this event for good; dropped");
            }
            Err(SendError::Retry(error)) => {
                tracing::debug!(%error, "outbox: send failed; will retry");
                tokio::time::sleep(backoff(&mut failures)).await;
            }
        }
    }
}
