//! Where a queued task's state and result live: one record per task, changed only by
//! compare-and-set.
//!
//! Why compare-and-set: JetStream delivers a task at least once, so two workers can hold the
//! same task (a redelivery after a lost heartbeat, a worker killed after its provider call).
//! The effect that counts is the record turning `completed`; it is written with the revision
//! that was read, so of two racing writers one wins and the other sees the finished record and
//! stops. Finished states (`completed`, `failed`, `canceled`, `dead_lettered`) are never left:
//! a cancel that lands first keeps the task canceled whatever its run reports afterwards.

use std::fmt;
use std::pin::Pin;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_nats::jetstream::Context;
use async_nats::jetstream::kv::{self, CreateErrorKind, Operation, UpdateErrorKind};
use async_nats::jetstream::stream::StorageType;
use futures_util::{Stream, StreamExt};
use serde::{Deserialize, Serialize};

use super::TaskQueueConfig;
use crate::Error;

/// Where a task is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TaskState {
    /// Queued, waiting for a worker (also between a failed attempt and its redelivery).
    Submitted,
    /// A worker is running it.
    Working,
    /// Finished with a result.
    Completed,
    /// Finished without a result, and retrying cannot help (e.g. invalid input).
    Failed,
    /// Cancelled before it finished.
    Canceled,
    /// Every delivery failed; the task is in the dead-letter stream.
    DeadLettered,
}

impl TaskState {
    /// Whether the task is over: such a record is never changed again.
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            Self::Completed | Self::Failed | Self::Canceled | Self::DeadLettered
        )
    }

    /// The snake_case name, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Submitted => "submitted",
            Self::Working => "working",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Canceled => "canceled",
            Self::DeadLettered => "dead_lettered",
        }
    }
}

/// The stored state of one task (JSON in the state bucket under `task.<id>`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct TaskRecord {
    /// The task id.
    pub task_id: String,
    /// The agent that runs it.
    pub agent_id: String,
    /// Where it is.
    pub state: TaskState,
    /// Who submitted it; only they may read or cancel it.
    pub tenant: Option<String>,
    /// When it was submitted, in milliseconds since the Unix epoch.
    pub submitted_at_ms: u64,
    /// When the record last changed, in milliseconds since the Unix epoch.
    pub updated_at_ms: u64,
    /// Deliveries a worker has started.
    pub attempts: u32,
    /// The worker that last ran it.
    pub worker: Option<String>,
    /// The result document, once `completed` (the server's JSON, stored as given).
    pub result: Option<serde_json::Value>,
    /// Why it failed, was cancelled or dead-lettered: a stable kind, e.g. `all_providers_failed`.
    pub error_kind: Option<String>,
    /// A redacted description of the same.
    pub error_message: Option<String>,
}

impl Default for TaskRecord {
    fn default() -> Self {
        Self {
            task_id: String::new(),
            agent_id: String::new(),
            state: TaskState::Submitted,
            tenant: None,
            submitted_at_ms: 0,
            updated_at_ms: 0,
            attempts: 0,
            worker: None,
            result: None,
            error_kind: None,
            error_message: None,
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl TaskRecord {
    /// A task just submitted.
    pub fn submitted(
        task_id: impl Into<String>,
        agent_id: impl Into<String>,
        tenant: Option<String>,
    ) -> Self {
        let now = now_ms();
        Self {
            task_id: task_id.into(),
            agent_id: agent_id.into(),
            tenant,
            submitted_at_ms: now,
            updated_at_ms: now,
            ..Self::default()
        }
    }

    fn touch(&mut self) -> bool {
        self.updated_at_ms = now_ms();
        true
    }

    /// A worker starts delivery `attempt`; false (nothing changed) when the task is over.
    pub fn start(&mut self, attempt: u32, worker: &str) -> bool {
        if self.state.is_finished() {
            return false;
        }
        self.state = TaskState::Working;
        self.attempts = self.attempts.max(attempt);
        self.worker = Some(worker.to_owned());
        self.touch()
    }

    /// The run produced `result`; false when the task was already over (nothing changed).
    pub fn complete(&mut self, result: serde_json::Value) -> bool {
        if self.state.is_finished() {
            return false;
        }
        self.state = TaskState::Completed;
        self.result = Some(result);
        self.error_kind = None;
        self.error_message = None;
        self.touch()
    }

    /// An attempt failed: the task waits for its redelivery (`retry`) or is over (`Failed`).
    pub fn fail(&mut self, kind: &str, message: &str, retry: bool) -> bool {
        if self.state.is_finished() {
            return false;
        }
        self.state = if retry {
            TaskState::Submitted
        } else {
            TaskState::Failed
        };
        self.error_kind = Some(kind.to_owned());
        self.error_message = Some(message.to_owned());
        self.touch()
    }

    /// The last delivery failed: the task goes to the dead letters with `reason`.
    pub fn dead_letter(&mut self, kind: &str, reason: &str) -> bool {
        if self.state.is_finished() {
            return false;
        }
        self.state = TaskState::DeadLettered;
        self.error_kind = Some(kind.to_owned());
        self.error_message = Some(reason.to_owned());
        self.touch()
    }

    /// Cancels the task; false when it was already over.
    pub fn cancel(&mut self, message: &str) -> bool {
        if self.state.is_finished() {
            return false;
        }
        self.state = TaskState::Canceled;
        self.error_kind = Some("cancelled".to_owned());
        self.error_message = Some(message.to_owned());
        self.touch()
    }
}

/// What [`TaskStore::create`] found.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Created {
    /// The record was written.
    New(TaskRecord),
    /// A record with that id was there already; it is returned unchanged.
    Existing(TaskRecord),
}

/// Task ids cancelled (from [`TaskStore::cancellations`]).
pub type Cancellations = Pin<Box<dyn Stream<Item = String> + Send>>;

/// A change to a record: returns whether it changed anything.
pub type Change<'a> = &'a (dyn Fn(&mut TaskRecord) -> bool + Send + Sync);

/// Where task records live. [`JetStreamTaskStore`] is the one the runtime uses.
#[async_trait::async_trait]
pub trait TaskStore: fmt::Debug + Send + Sync {
    /// Writes `record` unless its id exists; never overwrites.
    async fn create(&self, record: &TaskRecord) -> Result<Created, Error>;

    /// The record of `task_id`, if there is one.
    async fn get(&self, task_id: &str) -> Result<Option<TaskRecord>, Error>;

    /// Applies `change` by compare-and-set, re-reading and re-applying on a conflict. Returns
    /// the record afterwards and whether this call changed it; `None` when there is no record.
    async fn update(
        &self,
        task_id: &str,
        change: Change<'_>,
    ) -> Result<Option<(TaskRecord, bool)>, Error>;

    /// Removes a record (a submit whose publish failed).
    async fn remove(&self, task_id: &str) -> Result<(), Error>;

    /// Tells the worker holding `task_id` to stop it.
    async fn request_cancel(&self, task_id: &str) -> Result<(), Error>;

    /// Task ids whose cancellation is requested from now on.
    async fn cancellations(&self) -> Result<Cancellations, Error>;
}

/// Task records in a JetStream key-value bucket: `task.<id>` holds the record (JSON), and
/// `cancel.<id>` is written to stop a running task (workers watch `cancel.>`).
#[derive(Clone)]
pub struct JetStreamTaskStore {
    kv: kv::Store,
    /// `max_state_bytes`: a record that does not fit is refused before it is sent.
    max_record_bytes: usize,
}

impl fmt::Debug for JetStreamTaskStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JetStreamTaskStore").finish_non_exhaustive()
    }
}

/// Conflicting writers retried before giving up (each retry re-reads the record).
const MAX_CAS_ATTEMPTS: usize = 64;

/// Whether `id` can be a task id: letters, digits, `-` and `_`, at most 128 of them (a key-value
/// key and a header value as given).
pub fn is_valid_task_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn check_id(task_id: &str) -> Result<(), Error> {
    if is_valid_task_id(task_id) {
        Ok(())
    } else {
        Err(Error::InvalidEvent {
            reason: "a task id must be 1 to 128 letters, digits, `-` and `_`",
        })
    }
}

fn decode(bytes: &[u8]) -> Result<TaskRecord, Error> {
    serde_json::from_slice(bytes).map_err(|_| Error::InvalidEvent {
        reason: "a stored task record is not valid JSON; inspect the state bucket",
    })
}

fn encode(record: &TaskRecord) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(record).map_err(|_| Error::InvalidEvent {
        reason: "a task record cannot be encoded as JSON",
    })
}

impl JetStreamTaskStore {
    /// Creates or updates the bucket named in `config`.
    pub async fn open(js: &Context, config: &TaskQueueConfig) -> Result<Self, Error> {
        config.validate()?;
        let kv = js
            .create_or_update_key_value(kv::Config {
                bucket: config.state_bucket.clone(),
                description: "agents task state".into(),
                history: 1,
                max_age: Duration::from_secs(config.max_age_secs),
                max_value_size: i32::try_from(config.max_state_bytes).unwrap_or(i32::MAX),
                storage: StorageType::File,
                ..Default::default()
            })
            .await
            .map_err(|e| Error::transport("create or update the task state bucket", &e))?;
        Ok(Self {
            kv,
            max_record_bytes: usize::try_from(config.max_state_bytes).unwrap_or(usize::MAX),
        })
    }

    /// The record as stored, or [`Error::TooLarge`]: sent anyway, the bucket would refuse it
    /// with a transport error, which reads as an outage and gets the task run again.
    fn encode_within_limit(&self, record: &TaskRecord) -> Result<Vec<u8>, Error> {
        let bytes = encode(record)?;
        if bytes.len() > self.max_record_bytes {
            return Err(Error::TooLarge {
                what: "the task record with its result",
                bytes: bytes.len() as u64,
                limit: self.max_record_bytes as u64,
                setting: "[tasks.queue] max_state_bytes (and the NATS server's max_payload)",
            });
        }
        Ok(bytes)
    }

    async fn entry(&self, task_id: &str) -> Result<Option<(TaskRecord, u64)>, Error> {
        let entry = self
            .kv
            .entry(format!("task.{task_id}"))
            .await
            .map_err(|e| Error::transport("read a task record", &e))?;
        match entry {
            Some(entry) if entry.operation == Operation::Put => {
                Ok(Some((decode(&entry.value)?, entry.revision)))
            }
            _ => Ok(None),
        }
    }
}

#[async_trait::async_trait]
impl TaskStore for JetStreamTaskStore {
    async fn create(&self, record: &TaskRecord) -> Result<Created, Error> {
        check_id(&record.task_id)?;
        let key = format!("task.{}", record.task_id);
        for _ in 0..MAX_CAS_ATTEMPTS {
            match self.kv.create(&key, encode(record)?.into()).await {
                Ok(_) => return Ok(Created::New(record.clone())),
                Err(e) if e.kind() == CreateErrorKind::AlreadyExists => {
                    // Gone again between the create and this read (removed): try once more.
                    if let Some((existing, _)) = self.entry(&record.task_id).await? {
                        return Ok(Created::Existing(existing));
                    }
                }
                Err(e) => return Err(Error::transport("create a task record", &e)),
            }
        }
        Err(Error::Timeout {
            operation: "create a task record",
            after_ms: 0,
        })
    }

    async fn get(&self, task_id: &str) -> Result<Option<TaskRecord>, Error> {
        if !is_valid_task_id(task_id) {
            return Ok(None);
        }
        Ok(self.entry(task_id).await?.map(|(record, _)| record))
    }

    async fn update(
        &self,
        task_id: &str,
        change: Change<'_>,
    ) -> Result<Option<(TaskRecord, bool)>, Error> {
        check_id(task_id)?;
        let key = format!("task.{task_id}");
        for _ in 0..MAX_CAS_ATTEMPTS {
            let Some((mut record, revision)) = self.entry(task_id).await? else {
                return Ok(None);
            };
            if !change(&mut record) {
                return Ok(Some((record, false)));
            }
            match self
                .kv
                .update(&key, self.encode_within_limit(&record)?.into(), revision)
                .await
            {
                Ok(_) => return Ok(Some((record, true))),
                // Someone wrote in between: read their version and decide again.
                Err(e) if e.kind() == UpdateErrorKind::WrongLastRevision => {}
                Err(e) => return Err(Error::transport("update a task record", &e)),
            }
        }
        Err(Error::Timeout {
            operation: "update a task record (too many conflicting writers)",
            after_ms: 0,
        })
    }

    async fn remove(&self, task_id: &str) -> Result<(), Error> {
        check_id(task_id)?;
        self.kv
            .purge(format!("task.{task_id}"))
            .await
            .map_err(|e| Error::transport("remove a task record", &e))
    }

    async fn request_cancel(&self, task_id: &str) -> Result<(), Error> {
        check_id(task_id)?;
        self.kv
            .put(format!("cancel.{task_id}"), Vec::from(&b"1"[..]).into())
            .await
            .map(|_| ())
            .map_err(|e| Error::transport("request a task's cancellation", &e))
    }

    async fn cancellations(&self) -> Result<Cancellations, Error> {
        // New requests only: a worker that starts later reads `canceled` from the record.
        let watch = self
            .kv
            .watch("cancel.>")
            .await
            .map_err(|e| Error::transport("watch task cancellations", &e))?;
        Ok(Box::pin(watch.filter_map(|entry| async move {
            let entry = entry.ok()?;
            (entry.operation == Operation::Put)
                .then(|| entry.key.strip_prefix("cancel.").map(str::to_owned))
                .flatten()
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finished_records_never_change() {
        let mut record = TaskRecord::submitted("t1", "code-analysis", Some("acme".into()));
        assert_eq!(record.state, TaskState::Submitted);
        assert!(record.start(1, "w1"));
        assert_eq!((record.state, record.attempts), (TaskState::Working, 1));
        assert!(record.fail("all_providers_failed", "down", true));
        assert_eq!(record.state, TaskState::Submitted);
        assert!(record.start(2, "w2"));
        assert!(record.complete(serde_json::json!({"ok": true})));
        assert!(record.state.is_finished());
        for changed in [
            record.clone().start(3, "w3"),
            record.clone().complete(serde_json::json!(1)),
            record.clone().fail("x", "y", false),
            record.clone().dead_letter("x", "y"),
            record.clone().cancel("stop"),
        ] {
            assert!(!changed);
        }
        let mut other = TaskRecord::submitted("t2", "a", None);
        assert!(other.cancel("by request"));
        assert!(!other.complete(serde_json::json!(1)));
        assert_eq!(other.state.as_str(), "canceled");
        let mut dead = TaskRecord::submitted("t3", "a", None);
        assert!(dead.dead_letter("all_providers_failed", "5 deliveries failed"));
        assert_eq!(dead.state, TaskState::DeadLettered);
        let mut failed = TaskRecord::submitted("t4", "a", None);
        assert!(failed.fail("validation", "bad", false));
        assert_eq!(failed.state, TaskState::Failed);
    }

    #[test]
    fn records_round_trip_as_json_with_snake_case_states() {
        let record = TaskRecord::submitted("t1", "documentation", None);
        let json = serde_json::to_value(&record).unwrap_or_default();
        assert_eq!(json["state"], "submitted");
        let back: TaskRecord = serde_json::from_value(json).unwrap_or_default();
        assert_eq!(back, record);
        let sparse: TaskRecord =
            serde_json::from_str(r#"{"task_id":"x","state":"dead_lettered"}"#).unwrap_or_default();
        assert_eq!(sparse.state, TaskState::DeadLettered);
    }

    #[test]
    fn task_ids_are_plain_tokens() {
        for good in ["t1", "0b7c-AA_z", &"a".repeat(128)] {
            assert!(is_valid_task_id(good), "{good}");
        }
        for bad in ["", "a.b", "a b", "a>", "é", &"a".repeat(129)] {
            assert!(!is_valid_task_id(bad), "{bad}");
        }
    }
}
