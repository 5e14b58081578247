//! `[tasks]` (how SubmitTask dispatches, and the JetStream queue) and `[worker]` (the
//! `agents-server worker` process).

use std::collections::BTreeMap;
use std::net::SocketAddr;

use agents_bus::TaskQueueConfig;
use agents_core::ConfigError;
use serde::{Deserialize, Serialize};

/// Where SubmitTask runs a task.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Dispatch {
    /// In the server process (no NATS needed); tasks are lost with the process.
    #[default]
    Inline,
    /// On the JetStream work queue, run by `agents-server worker` processes.
    Queue,
}

/// The shortest queue-depth refresh period accepted.
const MIN_DEPTH_REFRESH_MS: u64 = 100;

/// `[tasks]`: dispatch per agent and the queue's connection and settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct TasksConfig {
    /// Dispatch of every agent not named in `agents`.
    pub dispatch: Dispatch,
    /// Dispatch per agent id, overriding `dispatch`.
    pub agents: BTreeMap<String, Dispatch>,
    /// The NATS server(s), e.g. `nats://127.0.0.1:4222` (comma-separated for a cluster).
    /// Never logged: it may carry credentials.
    pub nats_url: String,
    /// Streams, subjects, ack wait, max deliveries, the state bucket.
    pub queue: TaskQueueConfig,
    /// How often the server and each worker count the queued agents' tasks into
    /// `agents_task_queue_depth{agent}`: one small JetStream request per agent each time.
    pub depth_refresh_ms: u64,
}

impl Default for TasksConfig {
    fn default() -> Self {
        Self {
            dispatch: Dispatch::Inline,
            agents: BTreeMap::new(),
            nats_url: "nats://127.0.0.1:4222".into(),
            queue: TaskQueueConfig::default(),
            depth_refresh_ms: 5_000,
        }
    }
}

impl TasksConfig {
    /// Where `agent`'s tasks run.
    pub fn dispatch_of(&self, agent: &str) -> Dispatch {
        self.agents.get(agent).copied().unwrap_or(self.dispatch)
    }

    /// Whether any agent is dispatched to the queue (the server then connects to NATS).
    pub fn uses_queue(&self) -> bool {
        self.dispatch == Dispatch::Queue || self.agents.values().any(|d| *d == Dispatch::Queue)
    }

    pub(super) fn validate(&self) -> Vec<ConfigError> {
        let mut errors = Vec::new();
        if self.depth_refresh_ms < MIN_DEPTH_REFRESH_MS {
            errors.push(ConfigError::new(
                "tasks.depth_refresh_ms",
                format!(
                    "must be at least {MIN_DEPTH_REFRESH_MS}: each refresh asks JetStream once per agent"
                ),
            ));
        }
        if self.nats_url.trim().is_empty() {
            errors.push(ConfigError::new(
                "tasks.nats_url",
                "must name a NATS server, e.g. nats://127.0.0.1:4222",
            ));
        }
        errors.extend(
            self.queue
                .validate()
                .map_err(|e| e.within("tasks.queue"))
                .err(),
        );
        errors
    }
}

/// `[worker]`: the `agents-server worker` process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct WorkerConfig {
    /// Tasks run at once by this process, over all its agents. The default (8) keeps the
    /// worker far under a 384 MiB container with the built-in agents (see the README's
    /// measurements); raise it with the memory limit. An agent with no work holds one slot
    /// for its poll, so a busy agent gets what the others' polls leave: keep it well above the
    /// number of agents served.
    pub concurrency: usize,
    /// The agents whose tasks this worker pulls; empty means every agent.
    pub agents: Vec<String>,
    /// On SIGTERM: how long running tasks may take to finish before they are stopped and
    /// handed back to the queue for another worker.
    pub shutdown_grace_ms: u64,
    /// Longest wait of one pull for tasks (shorter makes shutdown and reconnection snappier).
    pub pull_wait_ms: u64,
    /// Pause before a failed task is delivered again, multiplied by its attempt number.
    pub retry_backoff_ms: u64,
    /// A memory hint, in MiB: while the process's resident memory is above it, no new task
    /// is pulled (running ones finish). Unset: no check.
    pub memory_limit_mib: Option<u64>,
    /// The worker's name in events and task records; default `<hostname>-<pid>`.
    pub name: Option<String>,
    /// Where the worker serves `/metrics`, `/healthz` and `/readyz`; unset turns them off.
    pub metrics_listen: Option<SocketAddr>,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            concurrency: 8,
            agents: Vec::new(),
            shutdown_grace_ms: 30_000,
            pull_wait_ms: 2_000,
            retry_backoff_ms: 1_000,
            memory_limit_mib: None,
            name: None,
            metrics_listen: None,
        }
    }
}

impl WorkerConfig {
    pub(super) fn validate(&self) -> Vec<ConfigError> {
        let mut errors = Vec::new();
        for (path, value) in [
            ("worker.concurrency", self.concurrency as u64),
            ("worker.shutdown_grace_ms", self.shutdown_grace_ms),
            ("worker.pull_wait_ms", self.pull_wait_ms),
        ] {
            if value == 0 {
                errors.push(ConfigError::new(path, "must be at least 1"));
            }
        }
        if self.memory_limit_mib == Some(0) {
            errors.push(ConfigError::new(
                "worker.memory_limit_mib",
                "must be at least 1, or left out",
            ));
        }
        errors
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dispatch_is_per_agent_with_a_default() {
        let mut tasks = TasksConfig::default();
        assert_eq!(tasks.dispatch_of("code-analysis"), Dispatch::Inline);
        assert!(!tasks.uses_queue());
        tasks.agents.insert("documentation".into(), Dispatch::Queue);
        assert!(tasks.uses_queue());
        assert_eq!(tasks.dispatch_of("documentation"), Dispatch::Queue);
        assert_eq!(tasks.dispatch_of("code-analysis"), Dispatch::Inline);
        assert!(tasks.validate().is_empty());
        tasks.nats_url = " ".into();
        assert_eq!(tasks.validate()[0].path, "tasks.nats_url");
        tasks.depth_refresh_ms = 99;
        assert_eq!(tasks.validate()[0].path, "tasks.depth_refresh_ms");
    }

    #[test]
    fn worker_settings_are_checked() {
        assert!(WorkerConfig::default().validate().is_empty());
        let zero = WorkerConfig {
            concurrency: 0,
            memory_limit_mib: Some(0),
            ..WorkerConfig::default()
        };
        let paths: Vec<String> = zero.validate().into_iter().map(|e| e.path).collect();
        assert_eq!(paths, ["worker.concurrency", "worker.memory_limit_mib"]);
    }
}
