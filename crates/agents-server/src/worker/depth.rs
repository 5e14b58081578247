//! The queue depth gauge, refreshed by the server and by every worker.
//!
//! Why both: the server knows which agents it queues even when no worker runs (the moment a
//! backlog matters most), and a worker's `/metrics` is where its operator looks. Each refresh
//! costs one small JetStream request per agent, at `tasks.depth_refresh_ms`. A refresh that
//! fails (NATS down) changes nothing about the tasks: the gauge keeps its last value, the
//! failure is counted in `agents_task_queue_depth_refresh_errors_total`, and logged once per
//! run of failures.

use std::sync::Arc;
use std::time::Duration;

use agents_bus::TaskQueue;
use agents_core::CancellationToken;

use crate::metrics::Metrics;

/// Counts `agents`' queued tasks into `agents_task_queue_depth{agent}` every `every`, until
/// `stop` is cancelled.
pub(super) async fn refresh(
    queue: TaskQueue,
    agents: Vec<String>,
    metrics: Arc<Metrics>,
    every: Duration,
    stop: CancellationToken,
) {
    if agents.is_empty() {
        return;
    }
    // A request bound of its own: a refresh must not outlive its period by much.
    let bound = every.max(Duration::from_secs(2));
    let mut failing = false;
    loop {
        match tokio::time::timeout(bound, queue.depths(&agents)).await {
            Ok(Ok(depths)) => {
                for (agent, depth) in depths {
                    metrics.set_task_queue_depth(&agent, depth);
                }
                if failing {
                    tracing::info!("reading the task queue depth works again");
                    failing = false;
                }
            }
            outcome => {
                metrics.task_queue_depth_refresh_failed();
                if !failing {
                    let error = match outcome {
                        Ok(Err(error)) => error.to_string(),
                        _ => format!("no answer within {bound:?}"),
                    };
                    tracing::warn!(%error, "cannot read the task queue depth; agents_task_queue_depth keeps its last value until NATS answers again");
                    failing = true;
                }
            }
        }
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = stop.cancelled() => return,
        }
    }
}
