use std::sync::Arc;
use std::time::{Duration, SystemTime};

use agents_core::Redactor;
use async_nats::Client;
use async_nats::jetstream::consumer::{self, pull};
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::stream::{self, DiscardPolicy, RetentionPolicy, StorageType};
use async_nats::jetstream::{self, AckKind, Context, ErrorCode};
use futures_util::StreamExt;

use super::{JetStreamTaskStore, TaskQueueConfig};
use crate::{BusMetrics, Delivery, Error};

/// Header of a dead letter: why the task was given up.
pub(super) const REASON_HEADER: &str = "Agents-Dead-Reason";
/// Header of a dead letter: how many deliveries were made.
pub(super) const DELIVERIES_HEADER: &str = "Agents-Deliveries";
/// Header of a dead letter: the task id (also its `Nats-Msg-Id`).
pub(super) const TASK_HEADER: &str = "Agents-Task-Id";
/// Header of a dead letter: the stable kind of the last error.
pub(super) const KIND_HEADER: &str = "Agents-Dead-Kind";

/// The dead letter of task `id`, with the headers above; the caller adds the task's payload as
/// queued. The reason is ours, so it passes the redactor and is kept to one line.
pub(super) fn dead_letter(id: &str, kind: &str, reason: &str, deliveries: u32) -> PublishMessage {
    let reason = Redactor::global().redact(reason).replace(['\r', '\n'], " ");
    PublishMessage::build()
        .message_id(id)
        .header(TASK_HEADER, id)
        .header(REASON_HEADER, reason.as_str())
        .header(KIND_HEADER, kind)
        .header(DELIVERIES_HEADER, deliveries.to_string().as_str())
}

/// Submits tasks to the JetStream work queue and hands out workers (see the
/// [crate docs](crate#features)). Clones share the connection.
#[derive(Debug, Clone)]
pub struct TaskQueue {
    pub(super) js: Context,
    pub(super) config: Arc<TaskQueueConfig>,
    pub(super) metrics: Arc<BusMetrics>,
    /// Whether `<stream>_LOST` keeps the max-deliveries advisories (see `sweeper.rs`).
    pub(super) advisories_kept: bool,
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
        let lost = super::sweeper::lost_stream(&config);
        let advisories_kept = match js.create_or_update_stream(lost).await {
            Ok(_) => true,
            // Another stream already holds these advisories (an operator's monitoring stream
            // of `$JS.EVENT.ADVISORY.>`), and subjects may not overlap: the sweepers fall back
            // to a plain subscription. Any other failure is the same outage as the streams'
            // above.
            Err(error) if overlaps_another_stream(&error) => {
                tracing::warn!(
                    %error,
                    stream = %super::sweeper::lost_stream_name(&config),
                    "another stream holds the max-deliveries advisories, so the queue cannot keep them: a task given up while no worker is connected stays in the work queue (counted in the queue depth) until an operator removes it"
                );
                false
            }
            Err(error) => {
                return Err(Error::transport(
                    "create the stream of lost-task advisories",
                    &error,
                ));
            }
        };
        Ok(Self {
            js,
            config: Arc::new(config),
            metrics,
            advisories_kept,
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
        self.submit_with_headers(agent, task_id, payload, &[]).await
    }

    /// [`submit`](Self::submit) with extra message headers (e.g. `traceparent`, `Agents-Tenant`),
    /// which the worker reads back with [`Task::header`].
    pub async fn submit_with_headers(
        &self,
        agent: &str,
        task_id: &str,
        payload: Vec<u8>,
        headers: &[(&str, &str)],
    ) -> Result<Delivery, Error> {
        Self::check_agent(agent)?;
        if task_id.is_empty() {
            return Err(Error::InvalidEvent {
                reason: "a task needs a non-empty id",
            });
        }
        let mut publish = PublishMessage::build()
            .payload(payload.into())
            .message_id(task_id);
        for (name, value) in headers {
            publish = publish.header(*name, *value);
        }
        let subject = format!("{}.{agent}", self.config.subject_prefix);
        let ack = self
            .js
            .send_publish(subject, publish)
            .await
            .map_err(|e| Error::transport("submit a task", &e))?
            .await
            .map_err(|e| {
                if refused_as_full(&e) {
                    BusMetrics::inc(&self.metrics.tasks_refused_full);
                    Error::Full {
                        queue: "task queue",
                        limit: self.config.max_bytes,
                        unit: "bytes",
                    }
                } else {
                    Error::transport("submit a task", &e)
                }
            })?;
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
        let consumer = self
            .js
            .create_consumer_on_stream(config, self.config.stream.as_str())
            .await
            .map_err(|e| Error::transport("create a task consumer", &e))?;
        Ok(TaskWorker {
            consumer,
            messages: None,
            queue: self.clone(),
            agent: agent.to_owned(),
        })
    }

    /// The task state store in this queue's bucket (`state_bucket`), created if missing.
    pub async fn state_store(&self) -> Result<JetStreamTaskStore, Error> {
        JetStreamTaskStore::open(&self.js, &self.config).await
    }

    /// The settings in force.
    pub fn config(&self) -> &TaskQueueConfig {
        &self.config
    }

    /// Counts the tasks waiting for `agents`' workers (not yet delivered, due again, or held
    /// by a worker) into the `tasks_queue_depth` gauge, and returns the total.
    pub async fn refresh_depth(&self, agents: &[String]) -> Result<u64, Error> {
        Ok(self.depths(agents).await?.iter().map(|(_, n)| n).sum())
    }

    /// The tasks of each of `agents` in the work queue: waiting, due again after a failed
    /// attempt, or held by a worker (a work queue keeps a task until it is acknowledged).
    /// Their sum also goes to the `tasks_queue_depth` gauge.
    ///
    /// It reads the stream's per-subject counts, not the agents' consumers, so it works before
    /// any worker has created them (a server counting what it queued). One request per agent,
    /// each answered from the stream's subject index.
    pub async fn depths(&self, agents: &[String]) -> Result<Vec<(String, u64)>, Error> {
        let stream = self
            .js
            .get_stream_no_info(self.config.stream.as_str())
            .await
            .map_err(|e| Error::transport("find the task stream", &e))?;
        let mut depths = Vec::with_capacity(agents.len());
        for agent in agents {
            Self::check_agent(agent)?;
            let subject = format!("{}.{agent}", self.config.subject_prefix);
            let mut counts = stream
                .info_with_subjects(&subject)
                .await
                .map_err(|e| Error::transport("read the task stream", &e))?;
            let mut depth = 0u64;
            while let Some(count) = counts.next().await {
                let (name, count) =
                    count.map_err(|e| Error::transport("read the task stream", &e))?;
                if name == subject {
                    depth = depth.saturating_add(count as u64);
                }
            }
            depths.push((agent.clone(), depth));
        }
        let total = depths.iter().map(|(_, n)| n).sum();
        BusMetrics::set(&self.metrics.tasks_queue_depth, total);
        Ok(depths)
    }

    /// Tasks waiting or in progress, over all agents.
    pub async fn waiting(&self) -> Result<u64, Error> {
        self.count(&self.config.stream).await
    }

    /// Tasks in the dead-letter stream.
    pub async fn dead_letters(&self) -> Result<u64, Error> {
        self.count(&self.config.dead_letter_stream).await
    }

    pub(super) async fn count(&self, stream: &str) -> Result<u64, Error> {
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
    consumer: consumer::PullConsumer,
    messages: Option<pull::Stream>,
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
    /// The agent whose tasks it pulls.
    pub fn agent(&self) -> &str {
        &self.agent
    }

    /// The next task, waiting as long as it takes; `Some(Err(_))` for a transient pull error
    /// (the worker can go on calling `next`).
    ///
    /// This keeps a batch of tasks buffered in the process (their ack wait running); a worker
    /// that runs a fixed number at a time should [`fetch`](Self::fetch) instead.
    pub async fn next(&mut self) -> Option<Result<Task, Error>> {
        let messages = match &mut self.messages {
            Some(messages) => messages,
            None => match self.consumer.messages().await {
                Ok(messages) => self.messages.insert(messages),
                Err(error) => return Some(Err(Error::transport("pull tasks", &error))),
            },
        };
        let message = match messages.next().await? {
            Ok(message) => message,
            Err(error) => return Some(Err(Error::transport("pull a task", &error))),
        };
        Some(Ok(self.task(message)))
    }

    /// Up to `max` tasks, waiting at most `wait` for the first: a worker asks for as many as
    /// it has free slots, so no task waits in its buffer while its ack wait runs out. An empty
    /// vector means none came in time.
    pub async fn fetch(&mut self, max: usize, wait: Duration) -> Result<Vec<Task>, Error> {
        let wait = wait.max(Duration::from_millis(10));
        let batch = self
            .consumer
            .fetch()
            .max_messages(max.max(1))
            .expires(wait)
            .messages()
            .await
            .map_err(|e| Error::transport("pull tasks", &e))?;
        // The server ends the batch after `wait`; the client bound covers a server that went
        // away mid-request.
        let bound = wait + Duration::from_secs(5);
        let collected = tokio::time::timeout(bound, batch.collect::<Vec<_>>())
            .await
            .map_err(|_| Error::Timeout {
                operation: "pull tasks",
                after_ms: u64::try_from(bound.as_millis()).unwrap_or(u64::MAX),
            })?;
        let mut tasks = Vec::with_capacity(collected.len());
        for message in collected {
            match message {
                Ok(message) => tasks.push(self.task(message)),
                // Tasks already received are handed out; the rest are redelivered later.
                Err(error) if tasks.is_empty() => {
                    return Err(Error::transport("pull a task", &error));
                }
                Err(_) => break,
            }
        }
        Ok(tasks)
    }

    fn task(&self, message: jetstream::Message) -> Task {
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
        if attempt > 1 {
            BusMetrics::inc(&self.queue.metrics.tasks_redelivered);
        }
        Task {
            id,
            agent: self.agent.clone(),
            attempt,
            message,
            queue: self.queue.clone(),
        }
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

    /// When the queue stored the task (the NATS server's clock): the submission time of a task
    /// published without a state record, e.g. straight over NATS.
    pub fn submitted_at(&self) -> Option<SystemTime> {
        self.message
            .info()
            .ok()
            .map(|info| SystemTime::from(info.published))
    }

    /// A header given at submit (e.g. `traceparent`).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.message
            .headers
            .as_ref()
            .and_then(|h| h.get(name))
            .map(|v| v.as_str())
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

    /// Acknowledges a delivery whose effect is already recorded (a redelivery of a finished or
    /// cancelled task) without running it again.
    pub async fn skip(self) -> Result<(), Error> {
        BusMetrics::inc(&self.queue.metrics.tasks_skipped);
        self.complete().await
    }

    /// Hands the task back unfinished (a worker shutting down): it is delivered again at once,
    /// to another worker. This counts as a delivery, so on the last one the task is
    /// dead-lettered instead, kind `shutdown`: handed back, it would go to nobody, and
    /// JetStream's max-deliveries advisory would have it dead-lettered as `worker_lost`.
    pub async fn release(self) -> Result<TaskOutcome, Error> {
        self.fail_with_kind(
            "shutdown",
            "the worker shut down during the task's last delivery",
            None,
        )
        .await
    }

    /// Removes a task that must not run again (e.g. its input is invalid) without
    /// dead-lettering it; the state record says why.
    pub async fn terminate(self) -> Result<(), Error> {
        self.message
            .ack_with(AckKind::Term)
            .await
            .map_err(|e| Error::transport("terminate a task", &e))
    }

    /// Gives this attempt up: the task is delivered again after `retry_after` (or at once),
    /// or, on its last delivery, moved to the dead-letter subject `<prefix>.<agent>` with the
    /// (redacted) `reason` and the delivery count in headers.
    pub async fn fail(
        self,
        reason: &str,
        retry_after: Option<Duration>,
    ) -> Result<TaskOutcome, Error> {
        self.fail_with_kind("error", reason, retry_after).await
    }

    /// [`fail`](Self::fail), also naming the error's stable `kind` in the dead letter's
    /// `Agents-Dead-Kind` header.
    pub async fn fail_with_kind(
        self,
        kind: &str,
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
        let publish =
            dead_letter(&self.id, kind, reason, self.attempt).payload(self.message.payload.clone());
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

/// Whether JetStream refused a stream because its subjects overlap another stream's.
fn overlaps_another_stream(error: &jetstream::context::CreateStreamError) -> bool {
    matches!(
        error.kind(),
        jetstream::context::CreateStreamErrorKind::JetStream(api)
            if api.error_code() == ErrorCode::STREAM_SUBJECT_OVERLAP
    )
}

/// Whether JetStream refused a publish because the work-queue stream is at its `max_bytes`
/// (`DiscardPolicy::New`: a store failure, "maximum bytes exceeded"). That is back-pressure, to
/// be answered with "the queue is full, retry later", not a transport failure. A server out of
/// its own storage is not this queue's limit and stays a transport error.
fn refused_as_full(error: &jetstream::context::PublishError) -> bool {
    std::error::Error::source(error)
        .and_then(|source| source.downcast_ref::<jetstream::Error>())
        .is_some_and(|api| {
            api.error_code() == ErrorCode::STREAM_STORE_FAILED
                && api.to_string().contains("maximum bytes")
        })
}
