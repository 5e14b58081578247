//! Tasks run in this process (`dispatch = "inline"`): submitted, run in the background, read
//! and cancelled by id. The worker issue moves them onto the JetStream queue; the RPCs stay.
//!
//! The table is bounded: when it is full, the oldest finished task is forgotten; when every
//! task in it is still running, SubmitTask is refused with RESOURCE_EXHAUSTED.
//!
//! Runs are tracked, so a shutdown lets them finish within the grace period and cancels the
//! rest (each ends with its `agent.failed` event, kind `cancelled`) before the event pipeline
//! closes; a run that panics shows as failed, kind `internal`.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use agents_core::{Agent, AgentContext, CancellationToken};
use futures_util::FutureExt as _;
use tokio_util::task::TaskTracker;
use tonic::Status;
use tracing::Instrument as _;

use super::convert;
use crate::pb;

/// Tasks kept at most by default.
pub(super) const DEFAULT_MAX_TASKS: usize = 10_000;

/// The in-process task table.
#[derive(Debug)]
pub struct TaskTable {
    tasks: Mutex<HashMap<String, Entry>>,
    max: usize,
    /// The runs still going, for shutdown.
    runs: TaskTracker,
}

/// How long cancelled runs get to record their end once the grace period is over: they stop
/// at their next await, so this is only a bound.
const CANCELLED_RUNS_WAIT: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
struct Entry {
    task: pb::Task,
    cancel: CancellationToken,
    /// The tenant that submitted it: only it may read or cancel the task.
    tenant: Option<String>,
    /// The call's admission, held while the task runs.
    slots: Held,
}

/// What a running task holds (its admission), shared by its table entry and its run, and given
/// back by whichever is first: the run when it ends, CancelTask when it cancels the task. So a
/// client that sees the task finished or cancelled finds its slot free.
#[derive(Clone)]
struct Held(Arc<Mutex<Option<Box<dyn Send>>>>);

impl Held {
    fn new(slots: impl Send + 'static) -> Self {
        Self(Arc::new(Mutex::new(Some(Box::new(slots)))))
    }

    fn release(&self) {
        drop(self.0.lock().unwrap_or_else(PoisonError::into_inner).take());
    }
}

/// Releases a [`Held`] when dropped.
struct Releasing(Held);

impl Drop for Releasing {
    fn drop(&mut self) {
        self.0.release();
    }
}

impl std::fmt::Debug for Held {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Held(..)")
    }
}

fn timestamp(time: SystemTime) -> prost_types::Timestamp {
    prost_types::Timestamp::from(time)
}

fn finished(state: i32) -> bool {
    [
        pb::TaskState::Completed,
        pb::TaskState::Failed,
        pb::TaskState::Canceled,
        pb::TaskState::DeadLettered,
    ]
    .iter()
    .any(|s| *s as i32 == state)
}

impl TaskTable {
    /// A table holding at most `max` tasks.
    pub fn new(max: usize) -> Self {
        Self {
            tasks: Mutex::new(HashMap::new()),
            max,
            runs: TaskTracker::new(),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut HashMap<String, Entry>) -> T) -> T {
        f(&mut self.tasks.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Records the task and starts it. Submitting an id that exists returns it unchanged.
    /// `slots` (the call's admission) is held by the run until it ends, so inline tasks count
    /// against the same global and tenant limits as calls; a resubmission drops it at once.
    pub(super) fn submit<S: Send + 'static>(
        self: &Arc<Self>,
        agent: Arc<dyn Agent>,
        ctx: AgentContext,
        input: serde_json::Value,
        slots: S,
    ) -> Result<String, Status> {
        let id = ctx.request_id.clone();
        let tenant = ctx.tenant.clone();
        let cancel = CancellationToken::new();
        let held = Held::new(slots);
        let admitted = self.with(|tasks| {
            if let Some(existing) = tasks.get(&id) {
                // Another tenant's id is not revealed: it is refused like any clash.
                return if existing.tenant == tenant {
                    Ok(false)
                } else {
                    Err(Status::already_exists(format!(
                        "task id `{id}` is taken; submit with another id"
                    )))
                };
            }
            if tasks.len() >= self.max {
                let oldest_finished = tasks
                    .iter()
                    .filter(|(_, e)| finished(e.task.state))
                    .min_by_key(|(_, e)| e.task.updated_at.map(|t| (t.seconds, t.nanos)))
                    .map(|(k, _)| k.clone());
                match oldest_finished {
                    Some(key) => {
                        tasks.remove(&key);
                    }
                    None => {
                        return Err(Status::resource_exhausted(format!(
                            "{} tasks are running, the most this server holds; retry later",
                            self.max
                        )));
                    }
                }
            }
            let now = Some(timestamp(SystemTime::now()));
            let task = pb::Task {
                task_id: id.clone(),
                agent_id: agent.id().to_owned(),
                state: pb::TaskState::Submitted as i32,
                submitted_at: now,
                updated_at: now,
                ..Default::default()
            };
            tasks.insert(
                id.clone(),
                Entry {
                    task,
                    cancel: cancel.clone(),
                    tenant: tenant.clone(),
                    slots: held.clone(),
                },
            );
            Ok(true)
        })?;
        if admitted {
            // The task outlives the SubmitTask call: the call's deadline does not bound it
            // (each provider call is still bounded by its policies).
            let ctx = ctx.with_deadline(None).with_cancel(cancel);
            let table = Arc::clone(self);
            let task_id = id.clone();
            self.runs.spawn(
                async move {
                    // Gives the slots back however the run ends, a panic included.
                    let releasing = Releasing(held.clone());
                    table.update(&task_id, |task| {
                        task.state = pb::TaskState::Working as i32;
                        task.attempts += 1;
                    });
                    let result = AssertUnwindSafe(agent.execute(&ctx, input))
                        .catch_unwind()
                        .await;
                    // Freed before the result shows: a client that sees the task finished may
                    // submit the next one at once.
                    drop(releasing);
                    table.update(&task_id, |task| match result {
                        Err(_) => {
                            // The panic's message went to the log through the panic hook; the
                            // client learns the task will not finish.
                            tracing::error!(task_id = %task.task_id, "an inline task's run panicked");
                            task.state = pb::TaskState::Failed as i32;
                            task.error_kind = "internal".to_owned();
                            task.error_message =
                                "the task's run failed unexpectedly; see the server log".to_owned();
                        }
                        Ok(Ok(done)) => {
                            task.state = pb::TaskState::Completed as i32;
                            task.result = Some(convert::response(&done));
                        }
                        Ok(Err(error)) => {
                            task.state = if matches!(error, agents_core::AgentError::Cancelled) {
                                pb::TaskState::Canceled as i32
                            } else {
                                pb::TaskState::Failed as i32
                            };
                            task.error_kind = error.kind().as_str().to_owned();
                            task.error_message = error.to_string();
                        }
                    });
                }
                // The task keeps the SubmitTask call's span: its provider calls join that trace.
                .in_current_span(),
            );
        }
        Ok(id)
    }

    fn update(&self, id: &str, change: impl FnOnce(&mut pb::Task)) {
        self.with(|tasks| {
            if let Some(entry) = tasks.get_mut(id) {
                // A cancelled task stays cancelled whatever its run reports afterwards.
                if entry.task.state != pb::TaskState::Canceled as i32 {
                    change(&mut entry.task);
                }
                entry.task.updated_at = Some(timestamp(SystemTime::now()));
            }
        });
    }

    /// The task `id`, if `tenant` submitted it.
    pub(super) fn existing(&self, id: &str, tenant: &str) -> Option<pb::Task> {
        if id.is_empty() {
            return None;
        }
        self.get(id, tenant).ok()
    }

    /// The task's current state.
    pub(super) fn get(&self, id: &str, tenant: &str) -> Result<pb::Task, Status> {
        self.with(|tasks| {
            tasks
                .get(id)
                .filter(|e| e.tenant.as_deref() == Some(tenant))
                .map(|e| e.task.clone())
        })
        .ok_or_else(|| not_found(id))
    }

    /// A token shutdown waits for (with the inline tasks' runs), held by a call while it runs.
    pub(super) fn running_call(&self) -> tokio_util::task::task_tracker::TaskTrackerToken {
        self.runs.token()
    }

    /// For shutdown, once the port is closed: waits for the running tasks (and the calls cut
    /// off at the end of the grace period, which hold [`running_call`](Self::running_call)
    /// tokens until their end is recorded) until `deadline`, then cancels the tasks still
    /// running and waits (briefly) for all of them to record it, so their last events are
    /// queued before the event pipeline closes. Returns how many tasks were cancelled.
    pub(crate) async fn finish_runs(&self, deadline: tokio::time::Instant) -> usize {
        self.runs.close();
        if tokio::time::timeout_at(deadline, self.runs.wait())
            .await
            .is_ok()
        {
            return 0;
        }
        let cancelled = self.with(|tasks| {
            let mut cancelled = 0;
            for entry in tasks.values_mut() {
                if !finished(entry.task.state) {
                    entry.cancel.cancel();
                    entry.task.state = pb::TaskState::Canceled as i32;
                    entry.task.error_kind = "cancelled".into();
                    entry.task.error_message =
                        "cancelled: the server shut down before the task finished".into();
                    entry.task.updated_at = Some(timestamp(SystemTime::now()));
                    cancelled += 1;
                }
            }
            cancelled
        });
        if tokio::time::timeout(CANCELLED_RUNS_WAIT, self.runs.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                still_running = self.runs.len(),
                "cancelled inline tasks or cut-off calls did not stop within {CANCELLED_RUNS_WAIT:?}; their last events are lost"
            );
        }
        cancelled
    }

    /// Cancels a task that has not finished; a finished one is returned unchanged.
    pub(super) fn cancel(&self, id: &str, tenant: &str) -> Result<pb::Task, Status> {
        self.with(|tasks| {
            let entry = tasks
                .get_mut(id)
                .filter(|e| e.tenant.as_deref() == Some(tenant))
                .ok_or_else(|| not_found(id))?;
            if !finished(entry.task.state) {
                entry.cancel.cancel();
                // Freed as the task shows cancelled; its run stops at its next await.
                entry.slots.release();
                entry.task.state = pb::TaskState::Canceled as i32;
                entry.task.error_kind = "cancelled".into();
                entry.task.error_message = "cancelled by CancelTask".into();
                entry.task.updated_at = Some(timestamp(SystemTime::now()));
            }
            Ok(entry.task.clone())
        })
    }
}

fn not_found(id: &str) -> Status {
    Status::not_found(format!(
        "no task `{id}`; it may have finished long ago and been forgotten"
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;
    use crate::service::test_agents::Broken;

    /// A slot that says when it was given back.
    struct Slot(Arc<AtomicBool>);

    impl Drop for Slot {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    fn held() -> (Held, Arc<AtomicBool>) {
        let freed = Arc::new(AtomicBool::new(false));
        (Held::new(Slot(Arc::clone(&freed))), freed)
    }

    #[test]
    fn the_first_of_the_run_and_a_cancellation_gives_the_slot_back_once() {
        let (entry, freed) = held();
        let run = entry.clone();
        entry.release();
        assert!(freed.load(Ordering::SeqCst), "cancelling frees it");
        // The run's own release finds nothing left: no double free, no panic.
        drop(Releasing(run));

        let (entry, freed) = held();
        drop(Releasing(entry.clone()));
        assert!(freed.load(Ordering::SeqCst), "the run's end frees it");
        entry.release();
    }

    #[tokio::test]
    async fn a_run_that_panics_still_gives_its_slot_back() {
        let (entry, freed) = held();
        let run = entry.clone();
        let outcome = tokio::spawn(async move {
            let _releasing = Releasing(run);
            panic!("an agent bug");
        })
        .await;
        assert!(outcome.unwrap_err().is_panic());
        assert!(
            freed.load(Ordering::SeqCst),
            "the entry must not keep the slot"
        );
    }

    fn context(id: &str) -> AgentContext {
        AgentContext::new(Arc::new(crate::no_model::NoModel))
            .with_request_id(id)
            .with_tenant("t")
    }

    /// Polls the table (the run is a spawned task) until `id` has finished, within a bound.
    async fn finished_task(table: &TaskTable, id: &str) -> pb::Task {
        for _ in 0..1_000 {
            let task = table.get(id, "t").unwrap();
            if finished(task.state) {
                return task;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("task {id} never finished");
    }

    /// A run that panics used to leave its task `working` for ever, holding a table entry that
    /// only finished tasks give up.
    #[tokio::test]
    async fn a_run_that_panics_shows_its_task_failed() {
        let table = Arc::new(TaskTable::new(10));
        let (slot, freed) = held();
        table
            .submit(
                Arc::new(Broken { panics: true }),
                context("panics"),
                serde_json::json!({}),
                slot,
            )
            .unwrap();
        let task = finished_task(&table, "panics").await;
        assert_eq!(task.state, pb::TaskState::Failed as i32);
        assert_eq!(task.error_kind, "internal");
        assert!(freed.load(Ordering::SeqCst));
    }

    /// Shutdown: what is still running at the deadline is cancelled, shows so, and its run
    /// has ended when `finish_runs` returns.
    #[tokio::test]
    async fn finish_runs_cancels_what_still_runs_at_the_deadline() {
        let table = Arc::new(TaskTable::new(10));
        let (slot, freed) = held();
        table
            .submit(
                Arc::new(Broken { panics: false }),
                context("hangs"),
                serde_json::json!({}),
                slot,
            )
            .unwrap();
        let cancelled = table
            .finish_runs(tokio::time::Instant::now() + Duration::from_millis(50))
            .await;
        assert_eq!(cancelled, 1);
        assert!(table.runs.is_empty(), "the run ended");
        let task = table.get("hangs", "t").unwrap();
        assert_eq!(task.state, pb::TaskState::Canceled as i32);
        assert!(task.error_message.contains("shut down"), "{task:?}");
        assert!(freed.load(Ordering::SeqCst));
        // Nothing left to wait for: at once.
        assert_eq!(table.finish_runs(tokio::time::Instant::now()).await, 0);
    }
}
