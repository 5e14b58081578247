//! The server's side of queued tasks: SubmitTask, GetTask and CancelTask over JetStream.

use std::sync::Arc;
use std::time::Duration;

use agents_bus::{
    BusMetrics, Created, JetStreamTaskStore, TaskQueue, TaskRecord, TaskStore, is_valid_task_id,
};
use agents_core::{CancellationToken, CloudEvent, EventSink, TaskQueued, TraceContext};
use anyhow::Context as _;
use tonic::Status;

use super::{TENANT_HEADER, depth, record};
use crate::config::{Dispatch, TasksConfig};
use crate::metrics::Metrics;
use crate::pb;
use crate::status;

/// Submits tasks of the agents dispatched to the queue, and reads and cancels them; keeps
/// their queue depth in the metrics while it lives.
#[derive(Debug)]
pub struct QueueDispatch {
    queue: TaskQueue,
    store: Arc<dyn TaskStore>,
    config: TasksConfig,
    /// Stops the depth refresher when the dispatch goes away.
    stop: CancellationToken,
    metrics: Arc<Metrics>,
}

impl Drop for QueueDispatch {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Connects to NATS (reconnecting for ever after the first connection) and sets up the
/// queue's streams and state bucket.
pub(super) async fn connect(
    config: &TasksConfig,
    name: &str,
    metrics: Arc<BusMetrics>,
) -> anyhow::Result<(TaskQueue, Arc<JetStreamTaskStore>)> {
    let client = async_nats::ConnectOptions::new()
        .name(name)
        .max_reconnects(None)
        .connect(config.nats_url.as_str())
        .await
        .with_context(|| {
            "cannot connect to NATS at tasks.nats_url; start nats-server with JetStream (-js) there, or set AGENTS_TASKS__NATS_URL"
        })?;
    let queue = TaskQueue::new(client, config.queue.clone(), metrics)
        .await
        .context("cannot set up the task streams; is JetStream enabled (nats-server -js)?")?;
    let store = Arc::new(
        queue
            .state_store()
            .await
            .context("cannot set up the task state bucket")?,
    );
    Ok((queue, store))
}

impl QueueDispatch {
    /// Connects to the queue of `config` and starts counting the queued tasks of those of
    /// `agents` dispatched to it into `metrics` (every `tasks.depth_refresh_ms`).
    pub async fn connect(
        config: &TasksConfig,
        agents: &[String],
        metrics: Arc<Metrics>,
    ) -> anyhow::Result<Arc<Self>> {
        let (queue, store) = connect(config, "agents-server", Arc::new(BusMetrics::new())).await?;
        let stop = CancellationToken::new();
        let queued = agents
            .iter()
            .filter(|agent| config.dispatch_of(agent) == Dispatch::Queue)
            .cloned()
            .collect();
        tokio::spawn(depth::refresh(
            queue.clone(),
            queued,
            Arc::clone(&metrics),
            Duration::from_millis(config.depth_refresh_ms),
            stop.clone(),
        ));
        Ok(Arc::new(Self {
            queue,
            store,
            config: config.clone(),
            stop,
            metrics,
        }))
    }

    /// Whether `agent`'s tasks go to the queue.
    pub fn handles(&self, agent: &str) -> bool {
        self.config.dispatch_of(agent) == Dispatch::Queue
    }

    /// Records and queues a task; a retried submit (same id, same tenant) returns the task
    /// as it is and queues it at most once.
    pub(crate) async fn submit(
        &self,
        agent: &str,
        task_id: &str,
        input: &serde_json::Value,
        tenant: &str,
        trace: &TraceContext,
        events: &dyn EventSink,
    ) -> Result<pb::SubmitTaskResponse, Status> {
        if !is_valid_task_id(task_id) {
            return Err(crate::status::invalid_id("task_id"));
        }
        let record = TaskRecord::submitted(task_id, agent, Some(tenant.to_owned()));
        let (record, created) = match self
            .store
            .create(&record)
            .await
            .map_err(|e| status::from_bus_error(&e))?
        {
            Created::New(record) => (record, true),
            Created::Existing(existing) if existing.tenant.as_deref() == Some(tenant) => {
                (existing, false)
            }
            // Another tenant's id is not revealed: it is refused like any clash.
            Created::Existing(_) => {
                return Err(Status::already_exists(format!(
                    "task id `{task_id}` is taken; submit with another id"
                )));
            }
            _ => return Err(Status::internal("unexpected task store answer")),
        };
        // Published again on a retry of a task no worker has started (the first publish may not
        // have reached the stream): the stream's de-duplication keeps one copy. A task that
        // failed an attempt and waits for redelivery is in the stream already.
        if record.state == agents_bus::TaskState::Submitted && record.attempts == 0 {
            let mut headers = vec![
                (TENANT_HEADER, tenant),
                ("traceparent", trace.traceparent()),
            ];
            if let Some(state) = trace.tracestate() {
                headers.push(("tracestate", state));
            }
            let payload = input.to_string().into_bytes();
            if let Err(error) = self
                .queue
                .submit_with_headers(agent, task_id, payload, &headers)
                .await
            {
                // Only the record this call made: a retry's failed publish says nothing about
                // the copy an earlier submit queued, which a worker may be running.
                if created {
                    let _ = self.store.remove(task_id).await;
                }
                if error.kind() == agents_bus::ErrorKind::Full {
                    // Back-pressure, not an outage: RESOURCE_EXHAUSTED, and counted.
                    self.metrics.task_queue_refused_full();
                }
                return Err(status::from_bus_error(&error));
            }
            let mut queued = TaskQueued::default();
            queued.task_id = task_id.to_owned();
            queued.agent_id = agent.to_owned();
            queued.tenant = Some(tenant.to_owned());
            events.emit(
                CloudEvent::new(format!("/agents/{agent}"), &queued).with_trace_context(trace),
            );
        }
        Ok(pb::SubmitTaskResponse {
            task_id: task_id.to_owned(),
            state: record::state(record.state) as i32,
        })
    }

    /// The task, if it exists and belongs to `tenant`.
    pub(crate) async fn get(
        &self,
        task_id: &str,
        tenant: &str,
    ) -> Result<Option<pb::Task>, Status> {
        let record = self
            .store
            .get(task_id)
            .await
            .map_err(|e| status::from_bus_error(&e))?;
        Ok(record
            .filter(|r| r.tenant.as_deref() == Some(tenant))
            .map(|r| record::task(&r)))
    }

    /// Cancels the task if it has not finished, and tells the worker holding it to stop.
    pub(crate) async fn cancel(
        &self,
        task_id: &str,
        tenant: &str,
    ) -> Result<Option<pb::Task>, Status> {
        let Some(existing) = self.get(task_id, tenant).await? else {
            return Ok(None);
        };
        if existing.state != pb::TaskState::Submitted as i32
            && existing.state != pb::TaskState::Working as i32
        {
            return Ok(Some(existing));
        }
        let change = |r: &mut TaskRecord| r.cancel("cancelled by CancelTask");
        let updated = self
            .store
            .update(task_id, &change)
            .await
            .map_err(|e| status::from_bus_error(&e))?;
        let Some((record, changed)) = updated else {
            return Ok(None);
        };
        if changed {
            self.store
                .request_cancel(task_id)
                .await
                .map_err(|e| status::from_bus_error(&e))?;
        }
        Ok(Some(record::task(&record)))
    }
}
