//! `agents-server worker`: pulls tasks, runs them with the server's agents and providers,
//! records the outcome and publishes the `task.*` events.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use agents_bus::{Task, TaskOutcome as QueueOutcome, TaskRecord, TaskState, TaskStore, TaskWorker};
use agents_core::{
    Agent, AgentContext, AgentError, CancellationToken, CloudEvent, EventPayload, EventSink,
    NullSink, Provider, TaskCompleted, TaskDeadLettered, TaskFailed, TaskStarted, TraceContext,
};
use anyhow::Context as _;
use tokio::sync::Semaphore;
use tracing::Instrument as _;

use super::{TENANT_HEADER, depth, dispatch, record};
use crate::auth::ANONYMOUS_TENANT;
use crate::config::{ServerConfig, WorkerConfig};
use crate::metrics::{Metrics, TaskOutcome};
use crate::serve::{EventPipeline, Runtime};
use crate::status;

/// Pause after a failed pull or consumer setup before trying again (NATS down).
const PULL_RETRY: Duration = Duration::from_millis(500);
/// How often a worker over its memory limit looks at its resident memory again.
const MEMORY_RECHECK: Duration = Duration::from_millis(100);
/// How long a pull that follows one with tasks waits for more: long enough for the server to
/// send what is queued, short enough that the slots it holds soon go back to the other agents.
const BUSY_PULL_WAIT: Duration = Duration::from_millis(20);

/// A running worker; [`shutdown`](Self::shutdown) stops it gracefully.
#[derive(Debug)]
pub struct Worker {
    shared: Arc<Shared>,
    pullers: Vec<tokio::task::JoinHandle<()>>,
    background: Vec<tokio::task::JoinHandle<()>>,
    pipeline: EventPipeline,
    metrics_stop: Option<tokio::sync::oneshot::Sender<()>>,
    /// Where `/metrics`, `/healthz` and `/readyz` answer, when enabled.
    pub metrics_addr: Option<std::net::SocketAddr>,
    ready: Arc<AtomicBool>,
}

/// What every task handler shares.
struct Shared {
    name: String,
    config: WorkerConfig,
    agents: HashMap<String, Arc<dyn Agent>>,
    provider: Arc<dyn Provider>,
    events: Arc<dyn EventSink>,
    metrics: Arc<Metrics>,
    store: Arc<dyn TaskStore>,
    slots: Arc<Semaphore>,
    /// How often a running task's ack wait is restarted.
    heartbeat: Duration,
    /// Cancelled when the worker stops pulling.
    stop: CancellationToken,
    /// Cancelled when the grace period is over: running tasks stop and are handed back.
    abandon: CancellationToken,
    /// The cancel token of each running task, by task id.
    running: Mutex<HashMap<String, CancellationToken>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("name", &self.name)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn default_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "worker".to_owned());
    format!("{host}-{}", std::process::id())
}

/// Resident memory of this process in MiB (Linux), for the memory hint.
fn resident_mib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}

impl Worker {
    /// Connects, sets up the queue, and starts pulling the configured agents' tasks.
    pub async fn start(config: ServerConfig) -> anyhow::Result<Self> {
        let Runtime {
            pipeline,
            metrics,
            events,
            provider,
            agents,
            ..
        } = Runtime::build(&config, Arc::new(NullSink)).await?;
        let worker_config = config.worker.clone();
        let name = worker_config.name.clone().unwrap_or_else(default_name);
        let all: Vec<String> = agents.iter().map(|a| a.id().to_owned()).collect();
        let served = if worker_config.agents.is_empty() {
            all.clone()
        } else {
            for agent in &worker_config.agents {
                if !all.contains(agent) {
                    anyhow::bail!(
                        "worker.agents names `{agent}`, which is not an agent; the agents are: {}",
                        all.join(", ")
                    );
                }
            }
            worker_config.agents.clone()
        };
        let (queue, store) =
            dispatch::connect(&config.tasks, &name, pipeline.bus.metrics()).await?;
        let store: Arc<dyn TaskStore> = store;
        let shared = Arc::new(Shared {
            name,
            slots: Arc::new(Semaphore::new(worker_config.concurrency)),
            heartbeat: config.tasks.queue.heartbeat_interval(),
            config: worker_config,
            agents: agents.into_iter().map(|a| (a.id().to_owned(), a)).collect(),
            provider,
            events,
            metrics: metrics.clone(),
            store: store.clone(),
            stop: CancellationToken::new(),
            abandon: CancellationToken::new(),
            running: Mutex::new(HashMap::new()),
        });
        if shared.config.memory_limit_mib.is_some() {
            // The series exists from the start, so "not paused" is visible as 0.
            metrics.set_worker_paused(&shared.name, false);
        }
        let mut background = vec![
            queue
                .sweep_lost_tasks(store)
                .await
                .context("cannot watch the max-deliveries advisories")?,
            tokio::spawn(watch_cancellations(shared.clone())),
            tokio::spawn(depth::refresh(
                queue.clone(),
                served.clone(),
                metrics.clone(),
                Duration::from_millis(config.tasks.depth_refresh_ms),
                shared.stop.clone(),
            )),
        ];
        let mut pullers = Vec::new();
        for agent in &served {
            let worker = queue
                .worker(agent)
                .await
                .with_context(|| format!("cannot create the task consumer of `{agent}`"))?;
            pullers.push(tokio::spawn(pull(shared.clone(), worker)));
        }
        let ready = Arc::new(AtomicBool::new(true));
        let (metrics_addr, metrics_stop) = match shared.config.metrics_listen {
            Some(listen) => {
                let listener = tokio::net::TcpListener::bind(listen)
                    .await
                    .with_context(|| format!("cannot serve worker metrics on {listen}"))?;
                let addr = listener.local_addr()?;
                let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
                let http = crate::metrics::serve_http(listener, metrics, ready.clone(), async {
                    let _ = stopped.await;
                });
                background.push(tokio::spawn(async move {
                    if let Err(error) = http.await {
                        tracing::warn!(%error, "the worker metrics endpoint stopped");
                    }
                }));
                (Some(addr), Some(stop))
            }
            None => (None, None),
        };
        tracing::info!(worker = %shared.name, agents = ?served, concurrency = shared.config.concurrency, "agents worker pulling tasks");
        if shared.config.concurrency <= served.len() {
            tracing::warn!(
                concurrency = shared.config.concurrency,
                agents = served.len(),
                "worker.concurrency is not above the number of agents served: each waiting agent's poll holds a slot, so a busy agent runs about one task at a time, and below that number agents take turns (a task can wait worker.pull_wait_ms per turn); raise concurrency or split the agents over workers"
            );
        }
        Ok(Self {
            shared,
            pullers,
            background,
            pipeline,
            metrics_stop,
            metrics_addr,
            ready,
        })
    }

    /// Stops pulling, lets running tasks finish within `worker.shutdown_grace_ms`, stops and
    /// hands back the rest, then flushes the events.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        self.ready.store(false, Ordering::SeqCst);
        self.shared.stop.cancel();
        for puller in self.pullers.drain(..) {
            let _ = puller.await;
        }
        let all = u32::try_from(self.shared.config.concurrency).unwrap_or(u32::MAX);
        let grace = Duration::from_millis(self.shared.config.shutdown_grace_ms);
        let finished = tokio::time::timeout(grace, self.shared.slots.acquire_many(all)).await;
        if finished.is_err() {
            tracing::warn!(
                ?grace,
                "tasks still running after the grace period are stopped and handed back to the queue"
            );
            self.shared.abandon.cancel();
            // Handing back takes one round trip per task.
            let _ =
                tokio::time::timeout(Duration::from_secs(10), self.shared.slots.acquire_many(all))
                    .await;
        }
        for task in self.background.drain(..) {
            task.abort();
        }
        self.pipeline.close(grace).await;
        if let Some(stop) = self.metrics_stop.take() {
            let _ = stop.send(());
        }
        Ok(())
    }
}

/// Runs a worker until SIGINT or SIGTERM, then shuts it down gracefully.
pub async fn run_until_signal(config: ServerConfig) -> anyhow::Result<()> {
    let telemetry = crate::telemetry::init(&config.telemetry)?;
    // Before the first pull: a supervisor's SIGTERM must find the handler in place.
    let signal = crate::serve::shutdown_signal()?;
    let served = async {
        let worker = Worker::start(config).await?;
        eprintln!("agents-server worker {} pulling tasks", worker.shared.name);
        signal.await;
        eprintln!("shutting down: finishing running tasks");
        worker.shutdown().await
    }
    .await;
    if let Err(error) = telemetry.shutdown().await {
        tracing::warn!("{error:#}");
    }
    served
}

async fn sleep_or_stop(shared: &Shared, pause: Duration) -> bool {
    tokio::select! {
        () = tokio::time::sleep(pause) => true,
        () = shared.stop.cancelled() => false,
    }
}

/// Pulls one agent's tasks while there are free slots, until told to stop.
async fn pull(shared: Arc<Shared>, mut worker: TaskWorker) {
    let wait = Duration::from_millis(shared.config.pull_wait_ms);
    let mut paused = false;
    // Whether the last pull brought tasks: then more are likely waiting.
    let mut busy = false;
    while !shared.stop.is_cancelled() {
        if let Some(limit) = shared.config.memory_limit_mib {
            // Over the memory hint: let running tasks finish before taking more.
            let rss = resident_mib();
            let over = rss.is_some_and(|rss| rss >= limit);
            if over != paused {
                paused = over;
                shared.metrics.set_worker_paused(&shared.name, over);
                if over {
                    tracing::warn!(
                        agent = worker.agent(),
                        rss_mib = rss,
                        limit_mib = limit,
                        "resident memory is over worker.memory_limit_mib: taking no new task until it falls below (running tasks go on)"
                    );
                } else {
                    tracing::info!(
                        agent = worker.agent(),
                        rss_mib = rss,
                        limit_mib = limit,
                        "resident memory is under worker.memory_limit_mib again: pulling tasks"
                    );
                }
            }
            if over {
                shared.metrics.worker_pull_skipped(&shared.name);
                if !sleep_or_stop(&shared, MEMORY_RECHECK).await {
                    break;
                }
                continue;
            }
        }
        let first = tokio::select! {
            permit = shared.slots.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = shared.stop.cancelled() => break,
        };
        // A pull holds a slot for each task it asks for until it ends. While this agent has no
        // work, its long poll asks for one task, so the other agents' polls find slots free.
        // Once tasks come, it asks for as many as there are free slots, and waits only briefly
        // for them, so a drained queue soon lets the slots go again.
        let mut permits = vec![first];
        if busy {
            while let Ok(permit) = shared.slots.clone().try_acquire_owned() {
                permits.push(permit);
            }
        }
        let wait_now = if busy { BUSY_PULL_WAIT } else { wait };
        let tasks = tokio::select! {
            tasks = worker.fetch(permits.len(), wait_now) => tasks,
            () = shared.stop.cancelled() => break,
        };
        busy = matches!(&tasks, Ok(tasks) if !tasks.is_empty());
        match tasks {
            Ok(tasks) => {
                for task in tasks {
                    let Some(permit) = permits.pop() else { break };
                    let shared = shared.clone();
                    tokio::spawn(async move {
                        handle(&shared, task).await;
                        drop(permit);
                    });
                }
            }
            Err(error) => {
                tracing::debug!(%error, agent = worker.agent(), "pulling tasks failed; retrying");
                drop(permits);
                if !sleep_or_stop(&shared, PULL_RETRY).await {
                    break;
                }
            }
        }
    }
}

/// Stops the runs whose cancellation is requested, for as long as the worker runs.
async fn watch_cancellations(shared: Arc<Shared>) {
    use futures_util::StreamExt;
    loop {
        match shared.store.cancellations().await {
            Ok(mut ids) => {
                while let Some(id) = ids.next().await {
                    let token = shared
                        .running
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .get(&id)
                        .cloned();
                    if let Some(token) = token {
                        tracing::info!(task_id = %id, "task cancelled while running; stopping it");
                        token.cancel();
                    }
                }
            }
            Err(error) => tracing::debug!(%error, "watching cancellations failed; retrying"),
        }
        if !sleep_or_stop(&shared, PULL_RETRY).await {
            return;
        }
    }
}

impl Shared {
    fn emit<P: EventPayload>(&self, agent: &str, trace: &TraceContext, payload: &P) {
        self.events
            .emit(CloudEvent::new(format!("/agents/{agent}"), payload).with_trace_context(trace));
    }

    async fn update(&self, id: &str, change: agents_bus::Change<'_>) -> Option<(TaskRecord, bool)> {
        match self.store.update(id, change).await {
            Ok(updated) => updated,
            Err(error) => {
                tracing::warn!(task_id = %id, error = %status::from_bus_error(&error).message(), "updating a task record failed");
                None
            }
        }
    }
}

/// Why a run ended.
enum Ended {
    Done(Box<Result<agents_core::AgentOutput, AgentError>>),
    /// The worker is shutting down and gave the task back.
    HandedBack,
}

/// Runs one delivery of a task in its `task.run` span, which continues the trace of the
/// message's headers, and records how long it took and how it ended.
async fn handle(shared: &Shared, task: Task) {
    let began = Instant::now();
    let agent_id = task.agent().to_owned();
    let span = crate::telemetry::task_span(
        &agent_id,
        task.id(),
        task.attempt(),
        task.header("traceparent"),
        task.header("tracestate"),
    );
    let outcome = deliver(shared, task, began).instrument(span.clone()).await;
    if let Some(outcome) = outcome {
        span.record("outcome", outcome.as_str());
        if matches!(
            outcome,
            TaskOutcome::Failed | TaskOutcome::Retried | TaskOutcome::DeadLettered
        ) {
            span.record("otel.status_code", "ERROR");
        }
        shared
            .metrics
            .record_task(&agent_id, outcome, began.elapsed());
    }
}

/// How long a task waited in the queue: from its submission (the state record's, which
/// GetTask reports; else the queue's own timestamp) to `picked_up`. Clocks of different
/// machines may disagree: a pick-up "before" the submission counts as no wait.
fn queue_wait(record: Option<&TaskRecord>, task: &Task, picked_up: SystemTime) -> Option<Duration> {
    let submitted = match record {
        Some(record) => UNIX_EPOCH + Duration::from_millis(record.submitted_at_ms),
        None => task.submitted_at()?,
    };
    Some(picked_up.duration_since(submitted).unwrap_or_default())
}

/// Runs one delivery of a task, from its record to its acknowledgement. `None` when nothing
/// ran: the task was finished already, or its record could not be read or written (it will be
/// delivered again).
async fn deliver(shared: &Shared, task: Task, began: Instant) -> Option<TaskOutcome> {
    let picked_up = SystemTime::now();
    let id = task.id().to_owned();
    let agent_id = task.agent().to_owned();
    let attempt = task.attempt();
    // The task span's context: its provider calls and events join the submitter's trace.
    let trace = crate::telemetry::current_trace_context().unwrap_or_else(|| {
        TraceContext::parse_or_new(task.header("traceparent"), task.header("tracestate"))
    });
    let tenant = task
        .header(TENANT_HEADER)
        .unwrap_or(ANONYMOUS_TENANT)
        .to_owned();

    // 1. The record: created here for a task published straight to NATS (A2A).
    let existing = match shared.store.get(&id).await {
        Ok(existing) => existing,
        Err(error) => {
            // The store is unreachable: leave the task to be redelivered after the ack wait.
            tracing::warn!(task_id = %id, %error, "cannot read the task record; the task will be redelivered");
            return None;
        }
    };
    if attempt == 1
        && let Some(wait) = queue_wait(existing.as_ref(), &task, picked_up)
    {
        shared.metrics.record_queue_wait(&agent_id, wait);
    }
    if existing.is_none() {
        let mut record = TaskRecord::submitted(&id, &agent_id, Some(tenant.clone()));
        // Submitted when the queue stored it, not when a worker got to it.
        if let Some(ms) = task
            .submitted_at()
            .and_then(|at| at.duration_since(UNIX_EPOCH).ok())
            .and_then(|d| u64::try_from(d.as_millis()).ok())
        {
            record.submitted_at_ms = ms;
        }
        if let Err(error) = shared.store.create(&record).await {
            tracing::warn!(task_id = %id, %error, "cannot create the task record; the task will be redelivered");
            return None;
        }
    }
    if existing.as_ref().is_some_and(|r| r.state.is_finished()) {
        // Its effect is recorded (a redelivery after a lost ack, or a cancelled task).
        let _ = task.skip().await;
        return None;
    }
    // 2. Working, unless it finished in the meantime.
    let worker = shared.name.clone();
    let start = move |r: &mut TaskRecord| r.start(attempt, &worker);
    match shared.update(&id, &start).await {
        Some((_, true)) => {}
        Some((_, false)) => {
            let _ = task.skip().await;
            return None;
        }
        None => return None,
    }
    let Some(agent) = shared.agents.get(&agent_id).cloned() else {
        let message = format!("this worker has no agent `{agent_id}`");
        finish_failed(shared, task, &trace, "unknown_agent", &message).await;
        return Some(TaskOutcome::Failed);
    };
    let input: serde_json::Value = match serde_json::from_slice(task.payload()) {
        Ok(input) => input,
        Err(error) => {
            let message = format!("the task payload is not a JSON document: {error}");
            finish_failed(shared, task, &trace, "invalid_input", &message).await;
            return Some(TaskOutcome::Failed);
        }
    };
    let mut started = TaskStarted::default();
    started.task_id = id.clone();
    started.agent_id = agent_id.clone();
    started.worker = shared.name.clone();
    started.attempt = attempt;
    shared.emit(&agent_id, &trace, &started);

    // 3. Run, with heartbeats, stoppable by CancelTask and by the end of the grace period.
    let cancel = CancellationToken::new();
    shared
        .running
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(id.clone(), cancel.clone());
    // A cancel that landed between the start and the registration above.
    if let Ok(Some(record)) = shared.store.get(&id).await
        && record.state == TaskState::Canceled
    {
        cancel.cancel();
    }
    let ctx = AgentContext::new(shared.provider.clone())
        .with_request_id(id.clone())
        .with_trace(trace.clone())
        .with_tenant(tenant)
        .with_events(shared.events.clone())
        .with_cancel(cancel.clone());
    let ended = {
        let run = agent.execute(&ctx, input);
        tokio::pin!(run);
        let mut beat = tokio::time::interval(shared.heartbeat);
        beat.tick().await;
        loop {
            tokio::select! {
                result = &mut run => break Ended::Done(Box::new(result)),
                // Dropping the run drops the provider call, whatever the agent does with
                // the token.
                () = cancel.cancelled() => break Ended::Done(Box::new(Err(AgentError::Cancelled))),
                _ = beat.tick() => {
                    if let Err(error) = task.heartbeat().await {
                        tracing::debug!(task_id = %id, %error, "a heartbeat failed");
                    }
                    // The durable path for a cancel whose signal this worker missed.
                    if let Ok(Some(record)) = shared.store.get(&id).await
                        && record.state == TaskState::Canceled
                    {
                        cancel.cancel();
                    }
                }
                () = shared.abandon.cancelled() => {
                    cancel.cancel();
                    break Ended::HandedBack;
                }
            }
        }
    };
    shared
        .running
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .remove(&id);

    // 4. Record the outcome, then acknowledge.
    let result = match ended {
        Ended::HandedBack => return Some(hand_back(shared, task, &trace).await),
        Ended::Done(result) => *result,
    };
    let code = match &result {
        Ok(_) => tonic::Code::Ok,
        Err(error) => status::from_agent_error(error).code(),
    };
    let provider_time = result
        .as_ref()
        .map(|d| Duration::from_micros(d.metadata.provider_latency_us))
        .unwrap_or_default();
    let total = began.elapsed();
    shared
        .metrics
        .record_request(&agent_id, code, total, provider_time);
    // The agent's own run, not `total`: the task-store round trips before it (reading the
    // record, marking it working) are the queue's cost, not what the runtime added to the
    // model's answer.
    if let Ok(done) = &result
        && let Some(upstream) = done.metadata.upstream_latency()
    {
        let run = Duration::from_micros(done.metadata.latency_us);
        shared
            .metrics
            .record_gateway_overhead(&agent_id, run, upstream);
    }
    match result {
        Ok(done) => {
            let stored = record::result_json(&done);
            let complete = move |r: &mut TaskRecord| r.complete(stored.clone());
            let updated = match shared.store.update(&id, &complete).await {
                Ok(updated) => updated,
                // Running the task again would make the same result: it fails now, once,
                // instead of being redelivered until it is dead-lettered as `worker_lost`.
                Err(error) if error.kind() == agents_bus::ErrorKind::TooLarge => {
                    let message = format!("the result cannot be stored: {error}");
                    finish_failed(shared, task, &trace, "result_too_large", &message).await;
                    return Some(TaskOutcome::Failed);
                }
                Err(error) => {
                    tracing::warn!(task_id = %id, error = %status::from_bus_error(&error).message(), "recording a completed task failed");
                    None
                }
            };
            let outcome = match updated {
                Some((_, true)) => {
                    let mut completed = TaskCompleted::default();
                    completed.task_id = id.clone();
                    completed.agent_id = agent_id.clone();
                    completed.worker = shared.name.clone();
                    completed.latency_ms =
                        u64::try_from(began.elapsed().as_millis()).unwrap_or(u64::MAX);
                    shared.emit(&agent_id, &trace, &completed);
                    TaskOutcome::Completed
                }
                // Finished meanwhile: cancelled, or completed by a duplicate delivery.
                Some((record, false)) if record.state == TaskState::Completed => {
                    TaskOutcome::Completed
                }
                Some((record, false)) if record.state.is_finished() => TaskOutcome::Canceled,
                // Not recorded (store unreachable): leave it to be redelivered.
                _ => return Some(TaskOutcome::Retried),
            };
            if let Err(error) = task.complete().await {
                tracing::debug!(task_id = %id, %error, "acknowledging a completed task failed; its redelivery will be skipped");
            }
            Some(outcome)
        }
        Err(AgentError::Cancelled) if cancel.is_cancelled() => {
            // The record says `canceled` already (CancelTask wrote it first).
            let _ = task.skip().await;
            Some(TaskOutcome::Canceled)
        }
        Err(error) if error.is_retryable() => {
            let kind = error.kind().as_str().to_owned();
            let message = error.to_string();
            let mut failed = TaskFailed::default();
            failed.task_id = id.clone();
            failed.agent_id = agent_id.clone();
            failed.error_kind = kind.clone();
            failed.message = message.clone();
            failed.attempt = attempt;
            shared.emit(&agent_id, &trace, &failed);
            if task.is_last_attempt() {
                let reason =
                    format!("failed on all {attempt} deliveries; the last error: {message}");
                let dead = |r: &mut TaskRecord| r.dead_letter(&kind, &reason);
                shared.update(&id, &dead).await;
                if let Ok(QueueOutcome::DeadLettered) =
                    task.fail_with_kind(&kind, &reason, None).await
                {
                    let mut dead = TaskDeadLettered::default();
                    dead.task_id = id.clone();
                    dead.agent_id = agent_id.clone();
                    dead.deliveries = attempt;
                    dead.reason = reason;
                    shared.emit(&agent_id, &trace, &dead);
                }
                Some(TaskOutcome::DeadLettered)
            } else {
                let retry = |r: &mut TaskRecord| r.fail(&kind, &message, true);
                shared.update(&id, &retry).await;
                let backoff =
                    redelivery_delay(shared.config.retry_backoff_ms, attempt, error.retry_after());
                let _ = task.fail_with_kind(&kind, &message, Some(backoff)).await;
                Some(TaskOutcome::Retried)
            }
        }
        Err(error) => {
            let kind = error.kind().as_str().to_owned();
            finish_failed(shared, task, &trace, &kind, &error.to_string()).await;
            Some(TaskOutcome::Failed)
        }
    }
}

/// The longest a model's `Retry-After` holds a task back: past it the task is tried anyway (a
/// rate limit lifted early costs one more refused call; a task parked for hours looks lost).
const MAX_REDELIVERY_DELAY: Duration = Duration::from_secs(300);

/// When a task that failed for a passing reason is delivered again: `retry_backoff_ms` times
/// its attempt number, or later when the model said when to come back (`Retry-After` on a 429
/// or 503, a breaker's open time). The provider stack's own retries give up on a `Retry-After`
/// longer than they may wait; redelivering sooner than asked would make every delivery another
/// refused call against a model that asked for time.
fn redelivery_delay(backoff_ms: u64, attempt: u32, retry_after: Option<Duration>) -> Duration {
    let backoff = Duration::from_millis(backoff_ms.saturating_mul(u64::from(attempt)));
    let asked = retry_after.unwrap_or_default().min(MAX_REDELIVERY_DELAY);
    backoff.max(asked)
}

/// Gives a task the worker is stopping back to the queue for another worker. On its last
/// delivery there is no other: handing it back would use that delivery up and JetStream's
/// max-deliveries advisory would have it dead-lettered as `worker_lost`, so it is
/// dead-lettered here, kind `shutdown`, which says what happened.
async fn hand_back(shared: &Shared, task: Task, trace: &TraceContext) -> TaskOutcome {
    let id = task.id().to_owned();
    if !task.is_last_attempt() {
        let back = |r: &mut TaskRecord| {
            r.fail(
                "shutdown",
                "the worker shut down; the task was handed back",
                true,
            )
        };
        shared.update(&id, &back).await;
        let _ = task.release().await;
        return TaskOutcome::HandedBack;
    }
    let agent_id = task.agent().to_owned();
    let deliveries = task.attempt();
    let reason = format!(
        "the worker shut down during the last of {deliveries} deliveries; submit the task again to retry it"
    );
    let dead = |r: &mut TaskRecord| r.dead_letter("shutdown", &reason);
    shared.update(&id, &dead).await;
    if let Ok(QueueOutcome::DeadLettered) = task.release().await {
        let mut dead = TaskDeadLettered::default();
        dead.task_id = id;
        dead.agent_id = agent_id.clone();
        dead.deliveries = deliveries;
        dead.reason = reason;
        shared.emit(&agent_id, trace, &dead);
    }
    TaskOutcome::DeadLettered
}

/// A failure retrying cannot help: recorded as `failed`, and the task removed.
async fn finish_failed(
    shared: &Shared,
    task: Task,
    trace: &TraceContext,
    kind: &str,
    message: &str,
) {
    let id = task.id().to_owned();
    let agent_id = task.agent().to_owned();
    let fail = |r: &mut TaskRecord| r.fail(kind, message, false);
    shared.update(&id, &fail).await;
    let mut failed = TaskFailed::default();
    failed.task_id = id;
    failed.agent_id = agent_id.clone();
    failed.error_kind = kind.to_owned();
    failed.message = message.to_owned();
    failed.attempt = task.attempt();
    shared.emit(&agent_id, trace, &failed);
    let _ = task.terminate().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redelivery_waits_for_the_backoff_or_what_the_model_asked_whichever_is_later() {
        let secs = Duration::from_secs;
        assert_eq!(redelivery_delay(1_000, 3, None), secs(3));
        assert_eq!(redelivery_delay(1_000, 1, Some(secs(60))), secs(60));
        assert_eq!(redelivery_delay(1_000, 5, Some(secs(2))), secs(5));
        // An absurd Retry-After is capped: the task is not parked for a day.
        assert_eq!(
            redelivery_delay(1_000, 1, Some(secs(86_400))),
            MAX_REDELIVERY_DELAY
        );
        assert_eq!(
            redelivery_delay(u64::MAX, u32::MAX, None),
            Duration::from_millis(u64::MAX)
        );
    }
}
