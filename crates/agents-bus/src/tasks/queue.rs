use std::sync::Arc;
use std::time::Duration;

use agents_core::Redactor;
use async_nats::Client;
use async_nats::jetstream::consumer::{self, pull};
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::stream::{self, DiscardPolicy, RetentionPolicy, StorageType};
use async_nats::jetstream::{self, AckKind, Context};
use futures_util::StreamExt;

use super::TaskQueueConfig;
use crate::{BusMetrics, Delivery, Error};

/// Header of a dead letter: why the task was given up.
const REASON_HEADER: &str = "Agents-Dead-Reason";
/// Header of a dead letter: how many deliveries were made.
const DELIVERIES_HEADER: &str = "Agents-Deliveries";
/// Header of a dead letter: the task id (also its `Nats-Msg-Id`).
const TASK_HEADER: &str = "Agents-Task-Id";

/// Submits tasks to the JetStream work queue and hands out workers (see the
/// [crate docs](crate#features)). Clones share the connection.
#[derive(Debug, Clone)]
pub struct TaskQueue {
    js: Context,
    config: Arc<TaskQueueConfig>,
    metrics: Arc<BusMetrics>,
}

/// What [`Task::fail`] did with the task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TaskOutcome {
    /// It will be delivered again (after the delay, if one was given).
    Retried,
    /// It used its last delivery and was moved to the dead-letter stream.
    DeadLettered,
}

fn plain(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

impl TaskQueue {
    /// Creates or updates the work-queue stream and the dead-letter stream.
    pub async fn new(
        client: Client,
        config: TaskQueueConfig,
        metrics: Arc<BusMetrics>,
    ) -> Result<Self, Error> {
        config.validate()?;
        let js = jetstream::ContextBuilder::new()
            .timeout(Duration::from_millis(config.publish_timeout_ms))
            .build(client);
        let max_bytes = i64::try_from(config.max_bytes).unwrap_or(i64::MAX);
        let work = stream::Config {
            name: config.stream.clone(),
            subjects: vec![format!("{}.>", config.subject_prefix)],
            retention: RetentionPolicy::WorkQueue,
            // A full queue refuses new tasks rather than dropping accepted ones.
            discard: DiscardPolicy::New,
            max_bytes,
            max_age: Duration::from_secs(config.max_age_secs),
            duplicate_window: Duration::from_secs(config.duplicate_window_secs),
            storage: StorageType::File,
            ..Default::default()
        };
        let dead = stream::Config {
            name: config.dead_letter_stream.clone(),
            subjects: vec![format!("{}.>", config.dead_letter_prefix)],
            retention: RetentionPolicy::Limits,
            discard: DiscardPolicy::Old,
            max_bytes,
            max_age: Duration::from_secs(config.max_age_secs),
            duplicate_window: Duration::from_secs(config.duplicate_window_secs),
            storage: StorageType::File,
            ..Default::default()
        };
        for stream in [work, dead] {
            js.create_or_update_stream(stream)
                .await
                .map_err(|e| Error::transport("create or update a task stream", &e))?;
        }
        Ok(Self {
            js,
            config: Arc::new(config),
            metrics,
        })
    }

    fn check_agent(agent: &str) -> Result<(), Error> {
        if plain(agent) {
            Ok(())
        } else {
            Err(Error::InvalidEvent {
                reason: "an agent name must be letters, digits, `_` and `-`",
            })
        }
    }

    /// Queues `payload` for a worker of `agent`. Submitting the same `task_id` again within
    /// the duplicate window returns [`Delivery::Duplicate`] and queues nothing.
    pub async fn submit(
        &self,
        agent: &str,
        task_id: &str,
        payload: Vec<u8>,
    ) -> Result<Delivery, Error> {
        Self::check_agent(agent)?;
        if task_id.is_empty() {
            return Err(Error::InvalidEvent {
                reason: "a task needs a non-empty id",
            });
        }
        let publish = PublishMessage::build()
            .payload(payload.into())
            .message_id(task_id);
        let subject = format!("{}.{agent}", self.config.subject_prefix);
        let ack = self
            .js
            .send_publish(subject, publish)
            .await
            .map_err(|e| Error::transport("submit a task", &e))?
            .await
            .map_err(|e| Error::transport("submit a task", &e))?;
        if ack.duplicate {
            return Ok(Delivery::Duplicate);
        }
        BusMetrics::inc(&self.metrics.tasks_submitted);
        Ok(Delivery::Accepted)
    }

    /// A worker for `agent`'s tasks. Every worker of an agent, in any process, shares one
    /// durable consumer, so each task goes to one of them.
    pub async fn worker(&self, agent: &str) -> Result<TaskWorker, Error> {
        Self::check_agent(agent)?;
        let name = format!("worker-{agent}");
        let config = pull::Config {
            durable_name: Some(name),
            filter_subject: format!("{}.{agent}", self.config.subject_prefix),
            ack_policy: consumer::AckPolicy::Explicit,
            ack_wait: self.config.ack_wait(),
            max_deliver: i64::from(self.config.max_deliver),
            ..Default::default()
        };
        let consumer: pull::Stream = self
            .js
            .create_consumer_on_stream(config, self.config.stream.as_str())
            .await
            .map_err(|e| Error::transport("create a task consumer", &e))?
            .messages()
            .await
            .map_err(|e| Error::transport("pull tasks", &e))?;
        Ok(TaskWorker {
            messages: consumer,
            queue: self.clone(),
            agent: agent.to_owned(),
        })
    }

    /// Tasks waiting or in progress, over all agents.
    pub async fn waiting(&self) -> Result<u64, Error> {
        self.count(&self.config.stream).await
    }

    /// Tasks in the dead-letter stream.
    pub async fn dead_letters(&self) -> Result<u64, Error> {
        self.count(&self.config.dead_letter_stream).await
    }

    async fn count(&self, stream: &str) -> Result<u64, Error> {
        let mut stream = self
            .js
            .get_stream(stream)
            .await
            .map_err(|e| Error::transport("get a task stream", &e))?;
        let info = stream
            .info()
            .await
            .map_err(|e| Error::transport("read a task stream", &e))?;
        Ok(info.state.messages)
    }
}

/// Pulls one agent's tasks.
pub struct TaskWorker {
    messages: pull::Stream,
    queue: TaskQueue,
    agent: String,
}

impl std::fmt::Debug for TaskWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskWorker")
            .field("agent", &self.agent)
            .finish_non_exhaustive()
    }
}

impl TaskWorker {
    /// The next task, waiting as long as it takes; `Some(Err(_))` for a transient pull error
    /// (the worker can go on calling `next`).
    pub async fn next(&mut self) -> Option<Result<Task, Error>> {
        let message = match self.messages.next().await? {
            Ok(message) => message,
            Err(error) => return Some(Err(Error::transport("pull a task", &error))),
        };
        let (attempt, sequence) = match message.info() {
            Ok(info) => (
                u32::try_from(info.delivered).unwrap_or(u32::MAX),
                info.stream_sequence,
            ),
            Err(_) => (1, 0),
        };
        let id = message
            .headers
            .as_ref()
            .and_then(|h| h.get("Nats-Msg-Id"))
            .map_or_else(|| format!("seq-{sequence}"), |v| v.as_str().to_owned());
        Some(Ok(Task {
            id,
            agent: self.agent.clone(),
            attempt,
            message,
            queue: self.queue.clone(),
        }))
    }
}

/// One delivery of a task. Finish it with [`complete`](Self::complete) or
/// [`fail`](Self::fail); send [`heartbeat`](Self::heartbeat)s while it runs longer than the
/// ack wait. A task dropped unfinished is redelivered after the ack wait.
#[derive(Debug)]
pub struct Task {
    id: String,
    agent: String,
    attempt: u32,
    message: jetstream::Message,
    queue: TaskQueue,
}

impl Task {
    /// The task id given at submit.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The agent it is for.
    pub fn agent(&self) -> &str {
        &self.agent
    }

    /// The payload given at submit.
    pub fn payload(&self) -> &[u8] {
        &self.message.payload
    }

    /// Which delivery this is, from 1.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// Whether failing now dead-letters the task.
    pub fn is_last_attempt(&self) -> bool {
        self.attempt >= self.queue.config.max_deliver
    }

    /// Tells the server the task is still being worked on, restarting its ack wait.
    pub async fn heartbeat(&self) -> Result<(), Error> {
        self.message
            .ack_with(AckKind::Progress)
            .await
            .map_err(|e| Error::transport("send a task heartbeat", &e))
    }

    /// Removes the task from the queue, waiting for the server to confirm so that a lost ack
    /// cannot make another worker run it again.
    pub async fn complete(self) -> Result<(), Error> {
        self.message
            .double_ack()
            .await
            .map_err(|e| Error::transport("complete a task", &e))
    }

    /// Gives this attempt up: the task is delivered again after `retry_after` (or at once),
    /// or, on its last delivery, moved to the dead-letter subject `<prefix>.<agent>` with the
    /// (redacted) `reason` and the delivery count in headers.
    pub async fn fail(
        self,
        reason: &str,
        retry_after: Option<Duration>,
    ) -> Result<TaskOutcome, Error> {
        if !self.is_last_attempt() {
            self.message
                .ack_with(AckKind::Nak(retry_after))
                .await
                .map_err(|e| Error::transport("retry a task", &e))?;
            return Ok(TaskOutcome::Retried);
        }
        let queue = &self.queue;
        let reason = Redactor::global().redact(reason).replace(['\r', '\n'], " ");
        let publish = PublishMessage::build()
            .payload(self.message.payload.clone())
            .message_id(&self.id)
            .header(TASK_HEADER, self.id.as_str())
            .header(REASON_HEADER, reason.as_str())
            .header(DELIVERIES_HEADER, self.attempt.to_string().as_str());
        let subject = format!("{}.{}", queue.config.dead_letter_prefix, self.agent);
        queue
            .js
            .send_publish(subject, publish)
            .await
            .map_err(|e| Error::transport("dead-letter a task", &e))?
            .await
            .map_err(|e| Error::transport("dead-letter a task", &e))?;
        self.message
            .ack_with(AckKind::Term)
            .await
            .map_err(|e| Error::transport("terminate a task", &e))?;
        BusMetrics::inc(&queue.metrics.tasks_dead_lettered);
        tracing::warn!(task_id = %self.id, agent = %self.agent, deliveries = self.attempt, "task dead-lettered");
        Ok(TaskOutcome::DeadLettered)
    }
}
