//! The lost-task sweeper: dead-letters the tasks JetStream gave up on without an answer.
//!
//! A task whose last delivery ends with no acknowledgement (its worker was killed, or lost its
//! connection, on the last attempt) stays in the work queue, delivered to nobody. JetStream says
//! so once, in a `$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES` advisory. An advisory is a plain
//! NATS message: one published while no sweeper listens, or whose handling fails for a moment,
//! would be gone, and its task with it. So the queue captures these advisories in a stream of
//! their own (`<stream>_LOST`), and the sweepers of every worker process share one durable
//! consumer of it: an advisory stays until a sweeper has dead-lettered its task, and one whose
//! handling failed is tried again, later each time.
//!
//! NATS refuses a stream whose subjects overlap another's: where an operator already keeps
//! every advisory in a monitoring stream (`$JS.EVENT.ADVISORY.>`), `<stream>_LOST` cannot be
//! made. The queue then warns and sweeps as before it existed: a plain subscription, each
//! advisory tried a few times.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::PullConsumer;
use async_nats::jetstream::consumer::{self, pull};
use async_nats::jetstream::stream::{
    self, DiscardPolicy, RawMessageErrorKind, RetentionPolicy, StorageType,
};
use async_nats::jetstream::{AckKind, ErrorCode, Message};
use futures_util::StreamExt;

use super::queue::dead_letter;
use super::{TaskQueue, TaskQueueConfig, TaskRecord, TaskState, TaskStore};
use crate::{BusMetrics, Error};

/// The durable consumer every sweeper shares, so each advisory is handled once.
const SWEEPERS: &str = "agents-task-sweepers";
/// Advisories kept at most; past that the oldest go (a bound, never reached in practice: one
/// advisory is one task given up, and each is removed once handled).
const MAX_ADVISORIES: i64 = 100_000;
/// How long a sweeper may take over one advisory before another may have it.
const HANDLE_WAIT: Duration = Duration::from_secs(60);
/// The first pause before a failed advisory is tried again; doubled each time, up to
/// [`MAX_RETRY_PAUSE`].
const FIRST_RETRY_PAUSE: Duration = Duration::from_millis(500);
const MAX_RETRY_PAUSE: Duration = Duration::from_secs(60);
/// Advisories asked for in one pull: one, so none waits in the buffer while its handling
/// time runs out and another sweeper is handed it too.
const ADVISORY_BATCH: usize = 1;
/// Pause before setting the consumer up and pulling again after a failure, doubled each time
/// up to [`MAX_PULL_RETRY`] (the server is away, or the stream or consumer was deleted).
const PULL_RETRY: Duration = Duration::from_secs(1);
const MAX_PULL_RETRY: Duration = Duration::from_secs(30);
/// How much later than its advisory a task may be stored and still be the one it names:
/// room for the clocks of a cluster's servers to differ.
const CLOCK_MARGIN: Duration = Duration::from_secs(2);
/// Attempts at one advisory when they are not kept in a stream.
const UNKEPT_ATTEMPTS: i64 = 3;

/// The stream holding `config`'s max-deliveries advisories: `<stream>_LOST`.
pub(super) fn lost_stream_name(config: &TaskQueueConfig) -> String {
    format!("{}_LOST", config.stream)
}

/// The advisory stream's settings: only the advisories of this queue's stream, kept until a
/// sweeper handles them (work-queue retention) or for `max_age_secs`, like the tasks.
pub(super) fn lost_stream(config: &TaskQueueConfig) -> stream::Config {
    stream::Config {
        name: lost_stream_name(config),
        subjects: vec![format!(
            "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{}.*",
            config.stream
        )],
        retention: RetentionPolicy::WorkQueue,
        discard: DiscardPolicy::Old,
        max_messages: MAX_ADVISORIES,
        max_age: Duration::from_secs(config.max_age_secs),
        storage: StorageType::File,
        ..Default::default()
    }
}

/// The body of a `$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES` advisory (the fields we read).
#[derive(Debug, serde::Deserialize)]
struct MaxDeliveries {
    stream_seq: u64,
    #[serde(default)]
    deliveries: u64,
    /// When JetStream gave the task up (RFC 3339).
    #[serde(default)]
    timestamp: Option<String>,
}

/// How long to wait before an advisory that failed `delivered` times is tried again.
fn retry_pause(delivered: i64) -> Duration {
    let doublings = u32::try_from(delivered.saturating_sub(1).clamp(0, 16)).unwrap_or(16);
    FIRST_RETRY_PAUSE
        .saturating_mul(1 << doublings)
        .min(MAX_RETRY_PAUSE)
}

impl TaskQueue {
    /// Dead-letters the tasks JetStream gave up on: those whose last delivery ended without an
    /// answer (the worker holding it was killed, or lost its connection, on the last attempt).
    /// Each moves to the dead-letter stream with its state record (`dead_lettered`, kind
    /// `worker_lost`, unless the record already says why) and leaves the work queue.
    ///
    /// The advisories naming them are kept in `<stream>_LOST` until handled, so a task given
    /// up while no sweeper ran is swept when one starts, and a failed attempt (NATS or the
    /// state store briefly away) is retried. Every worker process may run one: they share a
    /// durable consumer, so each advisory is handled once. A sweeper whose stream or consumer
    /// is deleted under it makes them again. Runs until aborted; returns once it is set up.
    pub async fn sweep_lost_tasks(
        &self,
        store: Arc<dyn TaskStore>,
    ) -> Result<tokio::task::JoinHandle<()>, Error> {
        if !self.advisories_kept {
            return self.sweep_unkept(store).await;
        }
        let first = self.sweeper_consumer().await?;
        let queue = self.clone();
        Ok(tokio::spawn(async move {
            let mut consumer = Some(first);
            let mut pause = PULL_RETRY;
            loop {
                let current = match consumer.take() {
                    Some(current) => current,
                    None => match queue.sweeper_consumer().await {
                        Ok(current) => current,
                        Err(error) => {
                            tracing::warn!(%error, "the lost-task sweeper cannot set up its consumer; trying again");
                            tokio::time::sleep(pause).await;
                            pause = pause.saturating_mul(2).min(MAX_PULL_RETRY);
                            continue;
                        }
                    },
                };
                let pull = current.stream().max_messages_per_batch(ADVISORY_BATCH);
                match pull.messages().await {
                    Ok(mut advisories) => {
                        // Set up again: the next failure starts from the shortest pause.
                        pause = PULL_RETRY;
                        while let Some(advisory) = advisories.next().await {
                            match advisory {
                                Ok(advisory) => {
                                    queue.handle(store.as_ref(), advisory).await;
                                }
                                Err(error) => {
                                    tracing::warn!(%error, "the lost-task sweeper's pull failed; setting it up again");
                                    break;
                                }
                            }
                        }
                    }
                    Err(error) => {
                        tracing::warn!(%error, "the lost-task sweeper cannot pull; setting it up again");
                    }
                }
                // Set the stream and consumer up again: either may have been deleted.
                tokio::time::sleep(pause).await;
                pause = pause.saturating_mul(2).min(MAX_PULL_RETRY);
            }
        }))
    }

    /// Advisories waiting for a sweeper: tasks given up and not yet dead-lettered (0 when the
    /// advisories cannot be kept, see the module docs).
    pub async fn lost_tasks_pending(&self) -> Result<u64, Error> {
        if !self.advisories_kept {
            return Ok(0);
        }
        self.count(&lost_stream_name(&self.config)).await
    }

    /// The advisory stream (made again if it was deleted) and the sweepers' consumer of it.
    async fn sweeper_consumer(&self) -> Result<PullConsumer, Error> {
        self.js
            .create_or_update_stream(lost_stream(&self.config))
            .await
            .map_err(|e| Error::transport("create the stream of lost-task advisories", &e))?;
        let config = pull::Config {
            durable_name: Some(SWEEPERS.to_owned()),
            ack_policy: consumer::AckPolicy::Explicit,
            ack_wait: HANDLE_WAIT,
            ..Default::default()
        };
        self.js
            .create_consumer_on_stream(config, lost_stream_name(&self.config).as_str())
            .await
            .map_err(|e| Error::transport("create the lost-task sweeper's consumer", &e))
    }

    /// The sweeper where the advisories cannot be kept: a plain subscription (one queue group,
    /// so each advisory is handled once), each advisory tried [`UNKEPT_ATTEMPTS`] times.
    async fn sweep_unkept(
        &self,
        store: Arc<dyn TaskStore>,
    ) -> Result<tokio::task::JoinHandle<()>, Error> {
        let subject = format!(
            "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{}.*",
            self.config.stream
        );
        let mut advisories = self
            .js
            .client()
            .queue_subscribe(subject, SWEEPERS.to_owned())
            .await
            .map_err(|e| Error::transport("watch max-deliveries advisories", &e))?;
        let queue = self.clone();
        Ok(tokio::spawn(async move {
            while let Some(message) = advisories.next().await {
                let Ok(advisory) = serde_json::from_slice::<MaxDeliveries>(&message.payload) else {
                    continue;
                };
                for attempt in 1..=UNKEPT_ATTEMPTS {
                    let Err(error) = queue.bury(store.as_ref(), &advisory).await else {
                        break;
                    };
                    if attempt == UNKEPT_ATTEMPTS {
                        tracing::warn!(%error, sequence = advisory.stream_seq, "a task past its deliveries was not dead-lettered; it stays in the work queue");
                    } else {
                        tokio::time::sleep(retry_pause(attempt)).await;
                    }
                }
            }
        }))
    }

    async fn handle(&self, store: &dyn TaskStore, message: Message) {
        let Ok(advisory) = serde_json::from_slice::<MaxDeliveries>(&message.payload) else {
            tracing::warn!(
                subject = %message.subject,
                "a max-deliveries advisory could not be read; dropped"
            );
            let _ = message.ack_with(AckKind::Term).await;
            return;
        };
        match self.bury(store, &advisory).await {
            Ok(()) => {
                if let Err(error) = message.ack().await {
                    // Handled again on redelivery: each step of `bury` is idempotent.
                    tracing::debug!(%error, "a swept advisory's ack was lost");
                }
            }
            Err(error) => {
                let delivered = message.info().map_or(1, |info| info.delivered);
                let pause = retry_pause(delivered);
                tracing::warn!(
                    %error,
                    sequence = advisory.stream_seq,
                    attempt = delivered,
                    retry_in_ms = u64::try_from(pause.as_millis()).unwrap_or(u64::MAX),
                    "a task past its deliveries is not dead-lettered yet; trying again"
                );
                let _ = message.ack_with(AckKind::Nak(Some(pause))).await;
            }
        }
    }

    /// Dead-letters the task `advisory` names and removes it from the work queue. Every step
    /// can be repeated: the record is only changed if unfinished, the dead letter carries the
    /// task id as `Nats-Msg-Id` (a repeat within the duplicate window is dropped), and a task
    /// already gone from the work queue ends it.
    async fn bury(&self, store: &dyn TaskStore, advisory: &MaxDeliveries) -> Result<(), Error> {
        let stream = self
            .js
            .get_stream_no_info(self.config.stream.as_str())
            .await
            .map_err(|e| Error::transport("get the task stream", &e))?;
        let message = match stream.get_raw_message(advisory.stream_seq).await {
            Ok(message) => message,
            // Completed, terminated or dead-lettered in the meantime, or the stream was
            // deleted with it.
            Err(error) if is_gone(error.kind()) => return Ok(()),
            Err(error) => return Err(Error::transport("read a task past its deliveries", &error)),
        };
        // A task stored after the advisory is not the one it names: the stream was deleted
        // and made again, and its sequence numbers started over. (In a cluster the two times
        // come from different servers' clocks, hence the margin; the advisory's own task was
        // stored at least an ack wait before it.)
        let given_up = advisory
            .timestamp
            .as_deref()
            .and_then(|t| async_nats::datetime::parse_rfc3339(t).ok());
        if given_up.is_some_and(|given_up| message.time > given_up + CLOCK_MARGIN) {
            tracing::warn!(
                sequence = advisory.stream_seq,
                "a max-deliveries advisory names a task stored after it (the task stream was made again); dropped"
            );
            return Ok(());
        }
        let id = message.headers.get("Nats-Msg-Id").map_or_else(
            || format!("seq-{}", advisory.stream_seq),
            |v| v.as_str().to_owned(),
        );
        let agent = message
            .subject
            .as_str()
            .strip_prefix(&format!("{}.", self.config.subject_prefix))
            .unwrap_or("unknown")
            .to_owned();
        let deliveries = u32::try_from(advisory.deliveries).unwrap_or(u32::MAX);
        let lost = format!(
            "delivered {deliveries} times without an answer: the worker holding it was lost"
        );
        // The record decides: a finished task whose ack was lost is only removed.
        let record = if super::is_valid_task_id(&id) {
            let change = |r: &mut TaskRecord| r.dead_letter("worker_lost", &lost);
            store.update(&id, &change).await?.map(|(record, _)| record)
        } else {
            None
        };
        let bury = record
            .as_ref()
            .is_none_or(|r| r.state == TaskState::DeadLettered);
        if bury {
            let (kind, reason) = record
                .as_ref()
                .map(|r| {
                    (
                        r.error_kind.clone().unwrap_or_else(|| "worker_lost".into()),
                        r.error_message.clone().unwrap_or_else(|| lost.clone()),
                    )
                })
                .unwrap_or_else(|| ("worker_lost".into(), lost.clone()));
            let publish =
                dead_letter(&id, &kind, &reason, deliveries).payload(message.payload.clone());
            let stored = self
                .js
                .send_publish(
                    format!("{}.{agent}", self.config.dead_letter_prefix),
                    publish,
                )
                .await
                .map_err(|e| Error::transport("dead-letter a task", &e))?
                .await
                .map_err(|e| Error::transport("dead-letter a task", &e))?;
            // A repeat (an earlier attempt published, then failed later) is counted once.
            if !stored.duplicate {
                BusMetrics::inc(&self.metrics.tasks_dead_lettered);
                tracing::warn!(task_id = %id, %agent, deliveries, "task dead-lettered after its worker was lost");
            }
        }
        stream
            .delete_message(advisory.stream_seq)
            .await
            .map_err(|e| Error::transport("remove a dead task from the work queue", &e))?;
        Ok(())
    }
}

/// Whether reading a task failed because it is not there: removed, or its stream deleted.
fn is_gone(kind: RawMessageErrorKind) -> bool {
    match kind {
        RawMessageErrorKind::NoMessageFound => true,
        RawMessageErrorKind::JetStream(error) => error.error_code() == ErrorCode::STREAM_NOT_FOUND,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_advisory_waits_longer_each_time_up_to_a_minute() {
        assert_eq!(retry_pause(1), Duration::from_millis(500));
        assert_eq!(retry_pause(2), Duration::from_secs(1));
        assert_eq!(retry_pause(4), Duration::from_secs(4));
        assert_eq!(retry_pause(9), MAX_RETRY_PAUSE);
        assert_eq!(retry_pause(i64::MAX), MAX_RETRY_PAUSE);
        assert_eq!(retry_pause(0), Duration::from_millis(500));
    }

    #[test]
    fn the_advisory_stream_holds_only_this_queues_advisories() {
        let config = TaskQueueConfig::default();
        let stream = lost_stream(&config);
        assert_eq!(stream.name, "AGENTS_TASKS_LOST");
        assert_eq!(
            stream.subjects,
            ["$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.AGENTS_TASKS.*"]
        );
        assert_eq!(stream.retention, RetentionPolicy::WorkQueue);
    }
}
