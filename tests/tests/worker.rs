//! Queued tasks end to end: a real `nats-server -js`, the gRPC server with `dispatch = "queue"`,
//! and `agents-server worker` processes (the real command line, so SIGKILL is real), all
//! calling the fake model. Every wait is a bounded poll of a condition; nothing asserts on
//! timings.

// A failing test should stop loudly: unwrap and panic are how tests say so.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use agents_fake_model::{Behavior, FakeModel};
use agents_server::pb::agent_service_client::AgentServiceClient;
use agents_server::pb::{self, TaskState};
use agents_server::serve::Running;
use agents_testkit::Peer;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use support::otlp::{Receiver, attribute, hex, in_trace, named, parent_hops, span_names};
use tonic::transport::Channel;
use tonic::{Code, Request};

const AGENT: &str = "documentation";

fn input() -> serde_json::Value {
    serde_json::json!({"source_code": "pub fn id<T>(x: T) -> T { x }", "language": "rust"})
}

/// Waits for `check` to hold, polling; fails with `what` after `within`.
async fn wait_until<F, Fut>(within: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    loop {
        if check().await {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// NATS, the fake model, a directory, and the settings every process shares.
struct Cluster {
    nats: Peer,
    fake: FakeModel,
    dir: tempfile::TempDir,
    queue: String,
    workers: Vec<Worker>,
}

struct Worker {
    child: Child,
    name: String,
    audit: PathBuf,
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Cluster {
    /// `queue` is the `[tasks.queue]` table's body (ack wait, max deliveries).
    async fn start(queue: &str) -> Option<Self> {
        let nats = agents_testkit::nats()?;
        let fake = FakeModel::start().await.unwrap();
        Some(Self {
            nats,
            fake,
            dir: tempfile::tempdir().unwrap(),
            queue: queue.to_owned(),
            workers: Vec::new(),
        })
    }

    fn config(&self, name: &str, extra: &str) -> String {
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nmetrics_listen = \"127.0.0.1:0\"\nshutdown_grace_ms = 2000\n\
             [bus.audit]\ndir = \"{audit}\"\n\
             [[providers]]\nopenai = {{ id = \"fake\", base_url = \"{base}\", model = \"fake-model\" }}\n\
             policies = {{ retry = {{ max_retries = 0 }}, timeout = {{ request_timeout_ms = 60000 }} }}\n\
             [tasks]\ndispatch = \"queue\"\nnats_url = \"nats://{nats}\"\ndepth_refresh_ms = 200\n\
             [tasks.queue]\n{queue}\n{extra}",
            audit = self.dir.path().join(format!("audit-{name}")).display(),
            base = self.fake.base_url(),
            nats = self.nats.addr(),
            queue = self.queue,
        )
    }

    /// The gRPC server, in this process, dispatching every agent to the queue. Its CPU-delay
    /// shedding is off: it shares two cores with the test's own calls and three worker processes
    /// (under coverage instrumentation in CI), so a burst of submits can see more than
    /// `max_queue_delay_ms` of scheduling delay and be refused, which these tests are not about
    /// (shedding has its own tests in `shedding.rs`).
    async fn server(&self) -> (Running, AgentServiceClient<Channel>) {
        let text = self.config("server", "[limits]\nmax_queue_delay_ms = 0\n");
        support::serve_config(&text).await
    }

    /// Starts an `agents-server worker` process.
    fn worker(&mut self, name: &str, worker: &str) -> usize {
        // A short long-poll unless the test sets its own.
        let pull_wait = if worker.contains("pull_wait_ms") {
            ""
        } else {
            "pull_wait_ms = 300\n"
        };
        let text = self.config(
            name,
            &format!("[worker]\nname = \"{name}\"\n{pull_wait}retry_backoff_ms = 20\n{worker}"),
        );
        let file = self.dir.path().join(format!("{name}.toml"));
        std::fs::write(&file, text).unwrap();
        let log = std::fs::File::create(self.dir.path().join(format!("{name}.log"))).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_agents-server-e2e"))
            .args(["worker", "--config"])
            .arg(&file)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.workers.push(Worker {
            child,
            name: name.to_owned(),
            audit: self.dir.path().join(format!("audit-{name}")),
        });
        self.workers.len() - 1
    }

    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("{name}.log"))).unwrap_or_default()
    }

    /// SIGTERM, then waits for the process to exit (graceful shutdown flushes its events).
    fn stop_worker(&mut self, index: usize) {
        let worker = &mut self.workers[index];
        let status = Command::new("kill")
            .args(["-TERM", &worker.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(60);
        while worker.child.try_wait().unwrap().is_none() {
            if Instant::now() >= deadline {
                let name = worker.name.clone();
                panic!("worker {name} did not stop: {}", self.log(&name));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn completions_in(&self, audit: &Path) -> usize {
        let mut counts = HashMap::new();
        count_completions(audit, &mut counts);
        counts.values().sum()
    }

    /// `task.completed` events per task id, over every worker's audit log.
    fn completions(&self) -> HashMap<String, usize> {
        let mut counts = HashMap::new();
        for worker in &self.workers {
            count_completions(&worker.audit, &mut counts);
        }
        counts
    }
}

fn count_completions(audit: &Path, counts: &mut HashMap<String, usize>) {
    {
        {
            for file in std::fs::read_dir(audit).into_iter().flatten().flatten() {
                let text = std::fs::read_to_string(file.path()).unwrap_or_default();
                for line in text.lines() {
                    let Ok(event) = serde_json::from_str::<serde_json::Value>(line) else {
                        continue;
                    };
                    if event["type"] == "task.completed" {
                        let id = event["data"]["task_id"].as_str().unwrap_or_default();
                        *counts.entry(id.to_owned()).or_default() += 1;
                    }
                }
            }
        }
    }
}

/// A `/metrics` scrape, or `None` while the endpoint does not answer yet.
async fn scrape(addr: &str) -> Option<prometheus_parse::Scrape> {
    let text = support::try_metrics_text(addr).await.ok()?;
    prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).ok()
}

/// The value of the first sample of `name` carrying `labels` (a histogram's `_count` and
/// `_sum` are samples of their own).
fn sample(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    scrape
        .samples
        .iter()
        .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .and_then(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => Some(v),
            _ => None,
        })
}

/// [`sample`] of a fresh scrape of `addr`.
async fn metric(
    addr: String,
    name: &'static str,
    labels: Vec<(&'static str, &'static str)>,
) -> Option<f64> {
    sample(&scrape(&addr).await?, name, &labels)
}

/// Chat calls the model received (health checks left out).
fn chat_calls(fake: &FakeModel) -> usize {
    fake.requests()
        .iter()
        .filter(|r| r.path.ends_with("/chat/completions"))
        .count()
}

async fn submit(client: &mut AgentServiceClient<Channel>, id: &str) -> pb::SubmitTaskResponse {
    submit_input(client, id, input()).await
}

async fn submit_input(
    client: &mut AgentServiceClient<Channel>,
    id: &str,
    input: serde_json::Value,
) -> pb::SubmitTaskResponse {
    submit_to(client, AGENT, id, input).await
}

async fn submit_to(
    client: &mut AgentServiceClient<Channel>,
    agent: &str,
    id: &str,
    input: serde_json::Value,
) -> pb::SubmitTaskResponse {
    client
        .submit_task(pb::SubmitTaskRequest {
            agent_id: agent.into(),
            input_json: input.to_string(),
            task_id: id.into(),
        })
        .await
        .unwrap()
        .into_inner()
}

async fn get(client: &mut AgentServiceClient<Channel>, id: &str) -> pb::Task {
    client
        .get_task(pb::GetTaskRequest { task_id: id.into() })
        .await
        .unwrap()
        .into_inner()
}

/// Waits until every task in `ids` is finished; returns them.
async fn wait_all_finished(
    client: &mut AgentServiceClient<Channel>,
    ids: &[String],
    within: Duration,
) -> HashMap<String, pb::Task> {
    let mut done = HashMap::new();
    let deadline = Instant::now() + within;
    loop {
        for id in ids {
            if done.contains_key(id) {
                continue;
            }
            let Ok(task) = client
                .get_task(pb::GetTaskRequest {
                    task_id: id.clone(),
                })
                .await
            else {
                continue;
            };
            let task = task.into_inner();
            if ![TaskState::Submitted as i32, TaskState::Working as i32].contains(&task.state) {
                done.insert(id.clone(), task);
            }
        }
        if done.len() == ids.len() {
            return done;
        }
        assert!(
            Instant::now() < deadline,
            "only {} of {} tasks finished",
            done.len(),
            ids.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn assert_completed_once(tasks: &HashMap<String, pb::Task>, completions: &HashMap<String, usize>) {
    for (id, task) in tasks {
        assert_eq!(task.state, TaskState::Completed as i32, "{id}: {task:?}");
        let result = task.result.as_ref().unwrap();
        assert!(result.output_json.contains("sections"), "{id}");
        assert!(
            completions.get(id).copied().unwrap_or(0) <= 1,
            "{id} was completed twice"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_tasks_over_three_workers_complete_exactly_once() {
    let Some(mut cluster) = Cluster::start("ack_wait_ms = 10000").await else {
        return;
    };
    cluster.fake.set_recording(false);
    let (running, mut client) = cluster.server().await;
    for name in ["w1", "w2", "w3"] {
        cluster.worker(name, "concurrency = 8");
    }
    let ids: Vec<String> = (0..1000).map(|i| format!("bulk-{i}")).collect();
    for id in &ids {
        let response = submit(&mut client, id).await;
        assert_eq!(response.task_id, *id);
    }
    // A retried submit queues nothing new.
    submit(&mut client, &ids[0]).await;
    let tasks = wait_all_finished(&mut client, &ids, Duration::from_secs(300)).await;
    for index in 0..3 {
        cluster.stop_worker(index);
    }
    let completions = cluster.completions();
    assert_completed_once(&tasks, &completions);
    // Every completion's event reached an audit log: exactly one each.
    assert_eq!(completions.len(), 1000);
    assert!(completions.values().all(|n| *n == 1));
    // How the work was shared (printed; which worker takes what is up to JetStream).
    let shares: Vec<(String, usize)> = cluster
        .workers
        .iter()
        .map(|w| (w.name.clone(), cluster.completions_in(&w.audit)))
        .collect();
    println!("completions per worker: {shares:?}");
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_while_holding_tasks_loses_none_and_completes_none_twice() {
    let Some(mut cluster) = Cluster::start("ack_wait_ms = 1500").await else {
        return;
    };
    cluster.fake.set_default(Behavior::Delay {
        delay: Duration::from_millis(400),
        then: Box::new(Behavior::Answer),
    });
    let (running, mut client) = cluster.server().await;
    let victim = cluster.worker("victim", "concurrency = 8");
    let ids: Vec<String> = (0..40).map(|i| format!("kill-{i}")).collect();
    for id in &ids {
        submit(&mut client, id).await;
    }
    // Wait until the victim holds tasks with their model calls under way (a task is marked
    // working a moment before its call reaches the model), then kill it without warning.
    let first = ids[0].clone();
    let fake = &cluster.fake;
    wait_until(Duration::from_secs(60), "the victim to hold tasks", || {
        let mut client = client.clone();
        let first = first.clone();
        let calling = fake.answering() > 0;
        async move { calling && get(&mut client, &first).await.state == TaskState::Working as i32 }
    })
    .await;
    let held = cluster.fake.answering();
    cluster.workers[victim].child.kill().unwrap();
    cluster.workers[victim].child.wait().unwrap();
    cluster.worker("survivor", "concurrency = 8");
    let tasks = wait_all_finished(&mut client, &ids, Duration::from_secs(120)).await;
    cluster.stop_worker(1);
    assert_completed_once(&tasks, &cluster.completions());
    // Some tasks were held by the victim when it died and ran again on the survivor.
    assert!(held > 0);
    assert!(
        tasks.values().any(|t| t.attempts >= 2),
        "no task was redelivered"
    );
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nats_restart_mid_run_loses_no_task() {
    let Some(mut cluster) = Cluster::start("ack_wait_ms = 3000").await else {
        return;
    };
    cluster.fake.set_default(Behavior::Delay {
        delay: Duration::from_millis(20),
        then: Box::new(Behavior::Answer),
    });
    let (running, mut client) = cluster.server().await;
    cluster.worker("r1", "concurrency = 4");
    cluster.worker("r2", "concurrency = 4");
    let ids: Vec<String> = (0..150).map(|i| format!("restart-{i}")).collect();
    for id in &ids[..100] {
        submit(&mut client, id).await;
    }
    let probe = ids[5].clone();
    wait_until(
        Duration::from_secs(60),
        "the first tasks to complete",
        || {
            let mut client = client.clone();
            let probe = probe.clone();
            async move { get(&mut client, &probe).await.state == TaskState::Completed as i32 }
        },
    )
    .await;
    cluster.nats.kill();
    cluster.nats.start_again().unwrap();
    // The server reconnects: submits succeed again (retried while it does).
    for id in &ids[100..] {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let request = pb::SubmitTaskRequest {
                agent_id: AGENT.into(),
                input_json: input().to_string(),
                task_id: id.clone(),
            };
            match client.submit_task(request).await {
                Ok(_) => break,
                Err(status) => {
                    assert!(Instant::now() < deadline, "submit kept failing: {status}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
    let tasks = wait_all_finished(&mut client, &ids, Duration::from_secs(180)).await;
    cluster.stop_worker(0);
    cluster.stop_worker(1);
    assert_completed_once(&tasks, &cluster.completions());
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_that_always_fails_is_dead_lettered_with_its_reason() {
    let Some(mut cluster) = Cluster::start("ack_wait_ms = 5000\nmax_deliver = 3").await else {
        return;
    };
    cluster.fake.set_default(Behavior::Status {
        code: 503,
        retry_after: None,
        message: "model overloaded".into(),
    });
    let (running, mut client) = cluster.server().await;
    cluster.worker("f1", "concurrency = 2");
    // A degraded answer from code facts would complete it: this task wants a model or nothing.
    let mut strict = input();
    strict["allow_degraded"] = false.into();
    submit_input(&mut client, "doomed", strict.clone()).await;
    let tasks =
        wait_all_finished(&mut client, &["doomed".to_owned()], Duration::from_secs(60)).await;
    let task = &tasks["doomed"];
    assert_eq!(task.state, TaskState::DeadLettered as i32, "{task:?}");
    assert_eq!(task.attempts, 3);
    assert_eq!(task.error_kind, "all_providers_failed");
    assert!(
        task.error_message.contains("failed on all 3 deliveries"),
        "{}",
        task.error_message
    );
    assert!(task.result.is_none());
    // The dead letter keeps the input and says why.
    let js = async_nats::jetstream::new(async_nats::connect(cluster.nats.addr()).await.unwrap());
    let dead = js.get_stream("AGENTS_TASKS_DEAD").await.unwrap();
    let letter = dead.get_raw_message(1).await.unwrap();
    assert_eq!(
        letter.headers.get("Agents-Task-Id").unwrap().as_str(),
        "doomed"
    );
    assert_eq!(
        letter.headers.get("Agents-Deliveries").unwrap().as_str(),
        "3"
    );
    assert!(
        letter
            .headers
            .get("Agents-Dead-Reason")
            .unwrap()
            .as_str()
            .contains("failed on all 3 deliveries")
    );
    let payload: serde_json::Value = serde_json::from_slice(&letter.payload).unwrap();
    assert_eq!(payload, strict);
    assert_eq!(chat_calls(&cluster.fake), 3);
    cluster.stop_worker(0);
    running.shutdown().await.unwrap();
}

/// A model that answers 429 with `Retry-After: 60` gets no call from this task for a minute:
/// redelivery used to wait only `retry_backoff_ms` (20 ms here), so every delivery was another
/// refused call. The pause below only gives the old behaviour time to show.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limited_task_is_redelivered_no_sooner_than_the_model_asked() {
    let Some(mut cluster) = Cluster::start("ack_wait_ms = 5000\nmax_deliver = 5").await else {
        return;
    };
    cluster.fake.set_default(Behavior::Status {
        code: 429,
        retry_after: Some("60".into()),
        message: "rate limited".into(),
    });
    let (running, mut client) = cluster.server().await;
    cluster.worker("r1", "concurrency = 1");
    let mut strict = input();
    strict["allow_degraded"] = false.into();
    submit_input(&mut client, "limited", strict).await;
    wait_until(Duration::from_secs(60), "the first attempt to fail", || {
        let mut client = client.clone();
        async move { get(&mut client, "limited").await.error_kind == "all_providers_failed" }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let task = get(&mut client, "limited").await;
    assert_eq!(task.attempts, 1, "{task:?}");
    assert_eq!(chat_calls(&cluster.fake), 1);
    cluster.stop_worker(0);
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_running_task_stops_its_provider_call() {
    let Some(mut cluster) = Cluster::start("ack_wait_ms = 3000").await else {
        return;
    };
    cluster.fake.set_default(Behavior::Hang);
    let (running, mut client) = cluster.server().await;
    cluster.worker("c1", "concurrency = 2");
    submit(&mut client, "endless").await;
    wait_until(Duration::from_secs(60), "the model call to start", || {
        let answering = cluster.fake.answering();
        async move { answering == 1 }
    })
    .await;
    assert_eq!(
        get(&mut client, "endless").await.state,
        TaskState::Working as i32
    );
    let cancelled = client
        .cancel_task(pb::CancelTaskRequest {
            task_id: "endless".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(cancelled.state, TaskState::Canceled as i32);
    // The worker stops the run: the model sees the call go away.
    wait_until(Duration::from_secs(30), "the model call to stop", || {
        let answering = cluster.fake.answering();
        async move { answering == 0 }
    })
    .await;
    // It acknowledges a cancelled task once its run has returned, so the queue empties; and
    // the task is not run again.
    let js = async_nats::jetstream::new(async_nats::connect(cluster.nats.addr()).await.unwrap());
    wait_until(
        Duration::from_secs(30),
        "the task to leave the queue",
        || {
            let js = js.clone();
            async move {
                let mut stream = js.get_stream("AGENTS_TASKS").await.unwrap();
                stream.info().await.unwrap().state.messages == 0
            }
        },
    )
    .await;
    let task = get(&mut client, "endless").await;
    assert_eq!(task.state, TaskState::Canceled as i32);
    assert_eq!(task.error_kind, "cancelled");
    assert_eq!(chat_calls(&cluster.fake), 1);
    cluster.stop_worker(0);
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_external_service_submits_over_nats_and_the_trace_continues() {
    let Some(mut cluster) = Cluster::start("ack_wait_ms = 5000").await else {
        return;
    };
    let (running, mut client) = cluster.server().await;
    cluster.worker("a2a", "concurrency = 2\nagents = [\"documentation\"]");
    // The A2A contract (see the agents-server README): subject, headers, payload.
    let nats = async_nats::connect(cluster.nats.addr()).await.unwrap();
    let js = async_nats::jetstream::new(nats);
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", "external-1");
    headers.insert(
        "traceparent",
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    );
    for _ in 0..2 {
        // Published twice: stored once.
        js.publish_with_headers(
            "agents.tasks.documentation",
            headers.clone(),
            input().to_string().into(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    }
    // The state, read from the key-value bucket as an external service would.
    let kv = js.get_key_value("AGENTS_TASK_STATE").await.unwrap();
    let mut record = serde_json::Value::Null;
    for _ in 0..600 {
        if let Some(bytes) = kv.get("task.external-1").await.unwrap() {
            record = serde_json::from_slice(&bytes).unwrap();
            if record["state"] == "completed" {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(record["state"], "completed", "{record}");
    assert_eq!(record["tenant"], "anonymous");
    assert_eq!(
        record["result"]["metadata"]["trace_id"],
        "0af7651916cd43dd8448eb211c80319c"
    );
    // ... and through GetTask (the anonymous tenant, auth being off).
    let task = get(&mut client, "external-1").await;
    assert_eq!(task.state, TaskState::Completed as i32);
    // The trace went on to the model call.
    let calls: Vec<_> = cluster
        .fake
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/chat/completions"))
        .collect();
    assert_eq!(calls.len(), 1, "run once");
    assert!(
        calls[0]
            .header("traceparent")
            .unwrap()
            .starts_with("00-0af7651916cd43dd8448eb211c80319c-")
    );

    // A gRPC client's trace goes through the queue the same way.
    let mut request = Request::new(pb::SubmitTaskRequest {
        agent_id: AGENT.into(),
        input_json: input().to_string(),
        task_id: "traced".into(),
    });
    request.metadata_mut().insert(
        "traceparent",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
            .parse()
            .unwrap(),
    );
    client.submit_task(request).await.unwrap();
    let tasks =
        wait_all_finished(&mut client, &["traced".to_owned()], Duration::from_secs(60)).await;
    let metadata = tasks["traced"].result.clone().unwrap().metadata.unwrap();
    assert_eq!(metadata.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
    let seen: HashSet<String> = cluster
        .fake
        .requests()
        .iter()
        .filter_map(|r| r.header("traceparent").map(str::to_owned))
        .collect();
    assert!(
        seen.iter()
            .any(|t| t.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"))
    );

    // An invalid payload fails at once, with the reason, and is not retried.
    let mut bad = async_nats::HeaderMap::new();
    bad.insert("Nats-Msg-Id", "external-bad");
    js.publish_with_headers("agents.tasks.documentation", bad, "not json".into())
        .await
        .unwrap()
        .await
        .unwrap();
    let tasks = wait_all_finished(
        &mut client,
        &["external-bad".to_owned()],
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(tasks["external-bad"].state, TaskState::Failed as i32);
    assert_eq!(tasks["external-bad"].error_kind, "invalid_input");
    cluster.stop_worker(0);
    assert!(
        cluster.log("a2a").contains("pulling tasks"),
        "{}",
        cluster.log("a2a")
    );
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_shutting_down_hands_back_what_it_cannot_finish() {
    let Some(mut cluster) = Cluster::start("ack_wait_ms = 30000").await else {
        return;
    };
    cluster.fake.set_default(Behavior::Hang);
    let (running, mut client) = cluster.server().await;
    let leaving = cluster.worker("leaving", "concurrency = 2\nshutdown_grace_ms = 200");
    submit(&mut client, "handed-back").await;
    wait_until(Duration::from_secs(60), "the model call to start", || {
        let answering = cluster.fake.answering();
        async move { answering == 1 }
    })
    .await;
    cluster.stop_worker(leaving);
    // Handed back at once (not after the 30 s ack wait): the next worker finishes it.
    cluster.fake.set_default(Behavior::Answer);
    cluster.worker("staying", "concurrency = 2");
    let tasks = wait_all_finished(
        &mut client,
        &["handed-back".to_owned()],
        Duration::from_secs(25),
    )
    .await;
    assert_eq!(tasks["handed-back"].state, TaskState::Completed as i32);
    assert_eq!(tasks["handed-back"].attempts, 2);
    cluster.stop_worker(1);
    running.shutdown().await.unwrap();
}

/// A worker shutting down during a task's last delivery dead-letters it as `shutdown`: handing
/// it back would use up that delivery, and JetStream's max-deliveries advisory made the sweeper
/// dead-letter it as `worker_lost` (or, with no sweeper listening, left it queued forever).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_shutting_down_on_the_last_delivery_dead_letters_the_task_as_shutdown() {
    let Some(mut cluster) = Cluster::start("ack_wait_ms = 30000\nmax_deliver = 1").await else {
        return;
    };
    cluster.fake.set_default(Behavior::Hang);
    let (running, mut client) = cluster.server().await;
    let leaving = cluster.worker("leaving", "concurrency = 1\nshutdown_grace_ms = 200");
    submit(&mut client, "last-try").await;
    wait_until(Duration::from_secs(60), "the model call to start", || {
        let answering = cluster.fake.answering();
        async move { answering == 1 }
    })
    .await;
    cluster.stop_worker(leaving);
    let tasks = wait_all_finished(
        &mut client,
        &["last-try".to_owned()],
        Duration::from_secs(25),
    )
    .await;
    let task = &tasks["last-try"];
    assert_eq!(task.state, TaskState::DeadLettered as i32, "{task:?}");
    assert_eq!(task.error_kind, "shutdown", "{task:?}");
    let js = async_nats::jetstream::new(async_nats::connect(cluster.nats.addr()).await.unwrap());
    let dead = js.get_stream("AGENTS_TASKS_DEAD").await.unwrap();
    let letter = dead.get_raw_message(1).await.unwrap();
    assert_eq!(
        letter.headers.get("Agents-Dead-Kind").unwrap().as_str(),
        "shutdown"
    );
    running.shutdown().await.unwrap();
}

/// `VmHWM` (peak resident memory) of a process, in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kib| kib.parse().ok())
        .unwrap_or(0)
}

/// Tasks per second through the queue with the fake model at zero latency, with 1 and 3
/// workers at the default concurrency, and the workers' peak memory. Not a pass/fail test:
/// `cargo test --release -p agents-tests --test worker -- --ignored --nocapture throughput`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: run it on purpose, in release mode"]
async fn throughput() {
    const TASKS: usize = 2000;
    for workers in [1, 3] {
        let Some(mut cluster) = Cluster::start("ack_wait_ms = 30000").await else {
            return;
        };
        cluster.fake.set_recording(false);
        let (running, mut client) = cluster.server().await;
        for i in 0..TASKS {
            submit(&mut client, &format!("bench-{i}")).await;
        }
        let js =
            async_nats::jetstream::new(async_nats::connect(cluster.nats.addr()).await.unwrap());
        let waiting = || {
            let js = js.clone();
            async move {
                let mut stream = js.get_stream("AGENTS_TASKS").await.unwrap();
                stream.info().await.unwrap().state.messages as usize
            }
        };
        assert_eq!(waiting().await, TASKS);
        for w in 0..workers {
            cluster.worker(&format!("bench{w}"), "");
        }
        // Steady state: from 10 % done to all done (process start-up left out).
        let mut from = None;
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            let left = waiting().await;
            if from.is_none() && left <= TASKS * 9 / 10 {
                from = Some((Instant::now(), left));
            }
            if left == 0 {
                break;
            }
            assert!(Instant::now() < deadline, "{left} tasks left");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let (start, left) = from.unwrap();
        let rate = left as f64 / start.elapsed().as_secs_f64();
        let rss: Vec<u64> = cluster
            .workers
            .iter()
            .map(|w| peak_rss_kib(w.child.id()) / 1024)
            .collect();
        println!(
            "BENCH workers={workers} concurrency=8 tasks={TASKS}: {rate:.0} tasks/s; worker peak RSS (VmHWM) MiB: {rss:?}"
        );
        for w in 0..workers {
            cluster.stop_worker(w);
        }
        running.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_refuses_submits_with_resource_exhausted_and_keeps_what_it_took() {
    // 8 KiB of tasks, and no worker to take any.
    let Some(cluster) = Cluster::start("max_bytes = 8192").await else {
        return;
    };
    let (running, mut client) = cluster.server().await;
    let server = running.metrics_addr.unwrap().to_string();
    let mut accepted = Vec::new();
    let refused = loop {
        assert!(
            accepted.len() < 64,
            "an 8 KiB queue took {} tasks",
            accepted.len()
        );
        let id = format!("full-{}", accepted.len());
        let submitted = client
            .submit_task(pb::SubmitTaskRequest {
                agent_id: AGENT.into(),
                input_json: input().to_string(),
                task_id: id.clone(),
            })
            .await;
        match submitted {
            Ok(_) => accepted.push(id),
            Err(status) => break (id, status),
        }
    };
    let (refused_id, status) = refused;
    assert!(!accepted.is_empty(), "the first task fits");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(
        status.message().contains("task queue is full"),
        "{status:?}"
    );
    assert_eq!(
        metric(server, "agents_task_queue_refused_full_total", vec![]).await,
        Some(1.0)
    );
    for id in &accepted {
        assert_eq!(get(&mut client, id).await.state(), pb::TaskState::Submitted);
    }
    let gone = client
        .get_task(pb::GetTaskRequest {
            task_id: refused_id,
        })
        .await
        .unwrap_err();
    assert_eq!(
        gone.code(),
        Code::NotFound,
        "a refused task leaves no record"
    );
    running.shutdown().await.unwrap();
}

/// A result too big for its record (`max_state_bytes`) fails the task at once, saying so: it
/// used to be left unacknowledged, run again on every delivery (a model call each), and
/// dead-lettered as `worker_lost`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_too_big_to_store_fails_the_task_once() {
    let Some(mut cluster) =
        Cluster::start("ack_wait_ms = 2000\nmax_deliver = 3\nmax_state_bytes = 4096").await
    else {
        return;
    };
    let mut answer = agents_fake_model::canned_answer(AGENT);
    answer["sections"][0]["content"] = "A long explanation. ".repeat(400).into();
    cluster.fake.set_default(Behavior::Reply {
        text: answer.to_string(),
    });
    let (running, mut client) = cluster.server().await;
    cluster.worker("big", "concurrency = 1");
    submit(&mut client, "too-big").await;
    let tasks = wait_all_finished(
        &mut client,
        &["too-big".to_owned()],
        Duration::from_secs(60),
    )
    .await;
    let task = &tasks["too-big"];
    assert_eq!(task.state, TaskState::Failed as i32, "{task:?}");
    assert_eq!(task.error_kind, "result_too_large");
    assert!(task.error_message.contains("max_state_bytes"), "{task:?}");
    assert_eq!((task.attempts, chat_calls(&cluster.fake)), (1, 1));
    cluster.stop_worker(0);
    running.shutdown().await.unwrap();
}

/// A retried SubmitTask whose publish fails keeps the task an earlier submit queued: it used to
/// delete the record, so GetTask and CancelTask said NOT_FOUND while the task sat in the
/// stream. Here the stream stops taking the subject between the two submits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_submit_that_cannot_publish_keeps_the_queued_task() {
    let Some(cluster) = Cluster::start("ack_wait_ms = 5000").await else {
        return;
    };
    let (running, mut client) = cluster.server().await;
    submit(&mut client, "queued-once").await;
    let js = async_nats::jetstream::new(async_nats::connect(cluster.nats.addr()).await.unwrap());
    let mut stream = js.get_stream("AGENTS_TASKS").await.unwrap();
    let mut config = stream.info().await.unwrap().config.clone();
    config.subjects = vec!["elsewhere.>".into()];
    js.update_stream(config).await.unwrap();
    let retried = client
        .submit_task(pb::SubmitTaskRequest {
            agent_id: AGENT.into(),
            input_json: input().to_string(),
            task_id: "queued-once".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(retried.code(), Code::Unavailable, "{retried:?}");
    assert_eq!(
        get(&mut client, "queued-once").await.state(),
        pb::TaskState::Submitted
    );
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_shows_the_queue_depth_and_the_worker_times_each_task() {
    let Some(mut cluster) = Cluster::start("ack_wait_ms = 10000").await else {
        return;
    };
    let (running, mut client) = cluster.server().await;
    let server = running.metrics_addr.unwrap().to_string();
    let ids: Vec<String> = (0..5).map(|i| format!("timed-{i}")).collect();
    for id in &ids {
        submit(&mut client, id).await;
    }
    // No worker runs yet (so no consumer exists): the server counts what waits, per agent.
    wait_until(
        Duration::from_secs(60),
        "the server's depth gauge to show 5",
        || async {
            metric(
                server.clone(),
                "agents_task_queue_depth",
                vec![("agent", AGENT)],
            )
            .await
                == Some(5.0)
        },
    )
    .await;
    let scraped = scrape(&server).await.unwrap();
    assert_eq!(
        sample(&scraped, "agents_task_queue_depth", &[("agent", AGENT)]),
        Some(5.0)
    );
    assert_eq!(
        sample(
            &scraped,
            "agents_task_queue_depth",
            &[("agent", "code-analysis")]
        ),
        Some(0.0)
    );
    assert_eq!(
        sample(
            &scraped,
            "agents_task_queue_depth_refresh_errors_total",
            &[]
        ),
        Some(0.0)
    );

    let worker = format!("127.0.0.1:{}", agents_testkit::free_port());
    cluster.worker(
        "timer",
        &format!("concurrency = 2\nmetrics_listen = \"{worker}\""),
    );
    let tasks = wait_all_finished(&mut client, &ids, Duration::from_secs(120)).await;
    assert_completed_once(&tasks, &cluster.completions());
    // A run is timed once its outcome is recorded and acknowledged, just after GetTask sees it.
    let completed = vec![("agent", AGENT), ("outcome", "completed")];
    wait_until(
        Duration::from_secs(30),
        "the worker to time its 5 runs",
        || {
            let (worker, completed) = (worker.clone(), completed.clone());
            async move {
                metric(worker, "agents_task_duration_seconds_count", completed).await == Some(5.0)
            }
        },
    )
    .await;
    let scraped = scrape(&worker).await.unwrap();
    let agent = [("agent", AGENT)];
    // Each task waited once, from its submission until this worker (started after it) took it.
    assert_eq!(
        sample(&scraped, "agents_task_queue_wait_seconds_count", &agent),
        Some(5.0)
    );
    assert!(sample(&scraped, "agents_task_queue_wait_seconds_sum", &agent).unwrap() > 0.0);
    // Each run's answer came from the fake model over HTTP: the worker says what it added.
    assert_eq!(
        sample(&scraped, "agents_gateway_overhead_seconds_count", &agent),
        Some(5.0)
    );
    let buckets = scraped
        .samples
        .iter()
        .find(|s| {
            s.metric == "agents_task_duration_seconds"
                && s.labels.get("outcome") == Some("completed")
        })
        .map(|s| match &s.value {
            prometheus_parse::Value::Histogram(buckets) => buckets.len(),
            _ => 0,
        });
    assert_eq!(
        buckets,
        Some(22),
        "21 bounds from 0.5 ms to an hour, and +Inf"
    );
    // The server sees the queue empty again.
    wait_until(
        Duration::from_secs(60),
        "the server's depth gauge to show 0",
        || async {
            metric(
                server.clone(),
                "agents_task_queue_depth",
                vec![("agent", AGENT)],
            )
            .await
                == Some(0.0)
        },
    )
    .await;
    cluster.stop_worker(0);
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_over_its_memory_limit_takes_no_task_and_another_worker_runs_it() {
    let Some(mut cluster) = Cluster::start("ack_wait_ms = 10000").await else {
        return;
    };
    let (running, mut client) = cluster.server().await;
    // Any process is over 1 MiB resident.
    let heavy = format!("127.0.0.1:{}", agents_testkit::free_port());
    cluster.worker(
        "heavy",
        &format!("concurrency = 2\nmemory_limit_mib = 1\nmetrics_listen = \"{heavy}\""),
    );
    let paused = vec![("worker", "heavy")];
    wait_until(Duration::from_secs(60), "the heavy worker to pause", || {
        let (heavy, paused) = (heavy.clone(), paused.clone());
        async move { metric(heavy, "agents_worker_paused", paused).await == Some(1.0) }
    })
    .await;
    submit(&mut client, "held").await;
    // The task is in the queue now; let the paused worker look at its memory again a few
    // times, where it would otherwise have pulled.
    let skipped = metric(
        heavy.clone(),
        "agents_worker_pulls_skipped_total",
        paused.clone(),
    )
    .await
    .unwrap();
    wait_until(Duration::from_secs(60), "more skipped pull rounds", || {
        let (heavy, paused) = (heavy.clone(), paused.clone());
        async move {
            metric(heavy, "agents_worker_pulls_skipped_total", paused)
                .await
                .is_some_and(|n| n >= skipped + 10.0)
        }
    })
    .await;
    let task = get(&mut client, "held").await;
    assert_eq!(task.state, TaskState::Submitted as i32, "{task:?}");
    assert_eq!(task.attempts, 0);
    assert_eq!(chat_calls(&cluster.fake), 0);
    let log = cluster.log("heavy");
    assert!(
        log.contains("over worker.memory_limit_mib"),
        "no warning in the log: {log}"
    );

    // A worker without the limit takes it.
    let light = cluster.worker("light", "concurrency = 2");
    let tasks = wait_all_finished(&mut client, &["held".to_owned()], Duration::from_secs(60)).await;
    assert_eq!(tasks["held"].state, TaskState::Completed as i32);
    assert_eq!(tasks["held"].attempts, 1);
    cluster.stop_worker(light);
    cluster.stop_worker(0);
    assert_eq!(cluster.completions_in(&cluster.workers[light].audit), 1);
    assert_eq!(cluster.completions_in(&cluster.workers[0].audit), 0);
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_exports_a_task_span_under_the_client_trace_with_the_provider_call_inside() {
    const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    const CLIENT_SPAN_ID: &str = "00f067aa0ba902b7";
    let Some(mut cluster) = Cluster::start("ack_wait_ms = 10000").await else {
        return;
    };
    let receiver = Receiver::default();
    let (stop_receiver, receiver_stopped) = tokio::sync::oneshot::channel();
    let collector = receiver.start(receiver_stopped).await;
    let (running, mut client) = cluster.server().await;
    let traced = cluster.worker(
        "traced",
        &format!(
            "concurrency = 2\n[telemetry]\notlp_endpoint = \"http://{collector}\"\n\
             sampling_ratio = 1.0\nservice_name = \"agents-worker-test\"\n"
        ),
    );
    let mut request = Request::new(pb::SubmitTaskRequest {
        agent_id: AGENT.into(),
        input_json: input().to_string(),
        task_id: "traced-task".into(),
    });
    request.metadata_mut().insert(
        "traceparent",
        format!("00-{TRACE_ID}-{CLIENT_SPAN_ID}-01")
            .parse()
            .unwrap(),
    );
    client.submit_task(request).await.unwrap();
    let tasks = wait_all_finished(
        &mut client,
        &["traced-task".to_owned()],
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(tasks["traced-task"].state, TaskState::Completed as i32);
    // A graceful stop exports every queued span before the process exits.
    cluster.stop_worker(traced);
    let _ = stop_receiver.send(());

    // The model saw the client's trace.
    let sent: Vec<String> = cluster
        .fake
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/chat/completions"))
        .filter_map(|r| r.header("traceparent").map(str::to_owned))
        .collect();
    assert_eq!(sent.len(), 1, "{sent:?}");
    let fields: Vec<&str> = sent[0].split('-').collect();
    assert_eq!(fields[1], TRACE_ID, "{sent:?}");

    let spans = receiver.spans();
    assert!(
        spans
            .iter()
            .all(|(service, _)| service == "agents-worker-test"),
        "{spans:?}"
    );
    let ours = in_trace(&spans, TRACE_ID);
    let names = span_names(&ours);
    let run = named(&ours, "task.run");
    assert_eq!(hex(&run.parent_span_id), CLIENT_SPAN_ID);
    assert_eq!(run.kind, SpanKind::Consumer as i32);
    assert_eq!(attribute(run, "agent.id").as_deref(), Some(AGENT));
    assert_eq!(attribute(run, "task.id").as_deref(), Some("traced-task"));
    assert_eq!(attribute(run, "task.delivery_count").as_deref(), Some("1"));
    assert_eq!(attribute(run, "outcome").as_deref(), Some("completed"));
    // The provider call is exported under the span id the model was sent, inside the run.
    let provider = named(&ours, "provider.call");
    assert_eq!(hex(&provider.span_id), fields[2]);
    let run_id = hex(&run.span_id);
    assert!(
        parent_hops(&ours, provider, &run_id).is_some(),
        "the provider span is not inside task.run: {names:?}"
    );
    assert!(parent_hops(&ours, provider, CLIENT_SPAN_ID).is_some());
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_without_tasks_does_not_hold_the_slots_another_agents_tasks_need() {
    let Some(mut cluster) = Cluster::start("ack_wait_ms = 10000").await else {
        return;
    };
    let (running, mut client) = cluster.server().await;
    // Each agent's long poll lasts a minute: a poll that held every free slot would keep the
    // other agent's task waiting past the test's bound.
    let worker = cluster.worker(
        "two-agents",
        "concurrency = 4\npull_wait_ms = 60000\nagents = [\"documentation\", \"code-analysis\"]",
    );
    wait_until(
        Duration::from_secs(60),
        "the worker to start polling",
        || {
            let log = cluster.log("two-agents");
            async move { log.contains("agents worker pulling tasks") }
        },
    )
    .await;
    // One agent's task at a time, so that no task of the polling agent ends its poll early
    // and frees the slots it held. The later-listed agent's first: its puller starts second,
    // so it is the one a first poll holding every slot would starve (likely, not certain,
    // with the old code; it failed twice in two runs there).
    for (agent, id) in [
        ("code-analysis", "for-analysis"),
        ("documentation", "for-docs"),
    ] {
        submit_to(&mut client, agent, id, input()).await;
        let ids = [id.to_owned()];
        let tasks = wait_all_finished(&mut client, &ids, Duration::from_secs(30)).await;
        assert_eq!(
            tasks[id].state,
            TaskState::Completed as i32,
            "{:?}",
            tasks[id]
        );
    }
    cluster.stop_worker(worker);
    running.shutdown().await.unwrap();
}
