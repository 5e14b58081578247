//! The JetStream work queue against a real `nats-server -js`.
#![cfg(feature = "nats")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use agents_bus::{
    BusMetrics, Created, Delivery, TaskOutcome, TaskQueue, TaskQueueConfig, TaskRecord, TaskState,
    TaskStore,
};
use futures_util::StreamExt;

async fn queue(
    peer: &agents_testkit::Peer,
    config: TaskQueueConfig,
) -> (TaskQueue, Arc<BusMetrics>) {
    let client = async_nats::connect(peer.addr()).await.unwrap();
    let metrics = Arc::new(BusMetrics::new());
    (
        TaskQueue::new(client, config, Arc::clone(&metrics))
            .await
            .unwrap(),
        metrics,
    )
}

async fn next(worker: &mut agents_bus::TaskWorker) -> agents_bus::Task {
    tokio::time::timeout(Duration::from_secs(30), worker.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_run_once_and_are_removed_when_complete() {
    let Some(peer) = agents_testkit::nats() else {
        return;
    };
    let (queue, metrics) = queue(&peer, TaskQueueConfig::default()).await;
    for (id, body) in [("t1", "one"), ("t2", "two")] {
        let delivery = queue
            .submit("code-analysis", id, body.into())
            .await
            .unwrap();
        assert_eq!(delivery, Delivery::Accepted);
    }
    let again = queue
        .submit("code-analysis", "t1", b"one".to_vec())
        .await
        .unwrap();
    assert_eq!(again, Delivery::Duplicate);
    queue
        .submit("documentation", "d1", b"doc".to_vec())
        .await
        .unwrap();
    assert_eq!(queue.waiting().await.unwrap(), 3);

    let mut worker = queue.worker("code-analysis").await.unwrap();
    for (id, body) in [("t1", "one"), ("t2", "two")] {
        let task = next(&mut worker).await;
        assert_eq!(
            (task.id(), task.payload(), task.attempt()),
            (id, body.as_bytes(), 1)
        );
        assert_eq!(task.agent(), "code-analysis");
        task.heartbeat().await.unwrap();
        task.complete().await.unwrap();
    }
    assert_eq!(
        queue.waiting().await.unwrap(),
        1,
        "only the documentation task is left"
    );
    assert_eq!(metrics.snapshot().tasks_submitted, 3);

    let bad = queue.submit("no.dots", "x", Vec::new()).await;
    assert!(matches!(bad, Err(agents_bus::Error::InvalidEvent { .. })));
    let empty = queue.submit("code-analysis", "", Vec::new()).await;
    assert!(matches!(empty, Err(agents_bus::Error::InvalidEvent { .. })));
    assert!(queue.worker("a b").await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_refuses_new_tasks_as_full_and_keeps_the_accepted_ones() {
    let Some(peer) = agents_testkit::nats() else {
        return;
    };
    let mut config = TaskQueueConfig::default();
    config.max_bytes = 8 * 1024;
    let (queue, metrics) = queue(&peer, config).await;
    let mut accepted: u64 = 0;
    let refused = loop {
        assert!(
            accepted < 64,
            "an 8 KiB queue took {accepted} tasks of 1 KiB"
        );
        match queue
            .submit("code-analysis", &format!("t{accepted}"), vec![b'x'; 1024])
            .await
        {
            Ok(delivery) => {
                assert_eq!(delivery, Delivery::Accepted);
                accepted += 1;
            }
            Err(error) => break error,
        }
    };
    assert!(accepted > 0, "the first task fits");
    assert_eq!(refused.kind(), agents_bus::ErrorKind::Full, "{refused}");
    assert!(
        matches!(
            refused,
            agents_bus::Error::Full {
                queue: "task queue",
                limit: 8192,
                unit: "bytes"
            }
        ),
        "{refused:?}"
    );
    let counted = metrics.snapshot();
    assert_eq!(counted.tasks_refused_full, 1);
    assert_eq!(counted.tasks_submitted, accepted);
    assert_eq!(
        queue.waiting().await.unwrap(),
        accepted,
        "a refusal loses none of the tasks already accepted"
    );

    // Room again once a worker has taken and finished one.
    let mut worker = queue.worker("code-analysis").await.unwrap();
    next(&mut worker).await.complete().await.unwrap();
    queue
        .submit("code-analysis", "after", vec![b'x'; 1024])
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_task_is_retried_then_dead_lettered() {
    let Some(peer) = agents_testkit::nats() else {
        return;
    };
    let config = TaskQueueConfig::default().with_max_deliver(2);
    let (queue, metrics) = queue(&peer, config).await;
    queue
        .submit("tests", "flaky", b"input".to_vec())
        .await
        .unwrap();
    let mut worker = queue.worker("tests").await.unwrap();

    let first = next(&mut worker).await;
    assert!(!first.is_last_attempt());
    assert_eq!(
        first.fail("boom", None).await.unwrap(),
        TaskOutcome::Retried
    );
    let second = next(&mut worker).await;
    assert_eq!((second.id(), second.attempt()), ("flaky", 2));
    assert!(second.is_last_attempt());
    let outcome = second
        .fail("token=abcdef123456 rejected", None)
        .await
        .unwrap();
    assert_eq!(outcome, TaskOutcome::DeadLettered);

    assert_eq!(queue.dead_letters().await.unwrap(), 1);
    assert_eq!(metrics.snapshot().tasks_dead_lettered, 1);
    // The dead letter keeps the payload and a redacted reason.
    let js = async_nats::jetstream::new(async_nats::connect(peer.addr()).await.unwrap());
    let dead = js.get_stream("AGENTS_TASKS_DEAD").await.unwrap();
    let letter = dead.get_raw_message(1).await.unwrap();
    assert_eq!(&letter.payload[..], b"input");
    let reason = letter
        .headers
        .get("Agents-Dead-Reason")
        .unwrap()
        .as_str()
        .to_owned();
    assert!(
        reason.contains("rejected") && !reason.contains("abcdef123456"),
        "{reason}"
    );
    assert_eq!(
        letter.headers.get("Agents-Deliveries").unwrap().as_str(),
        "2"
    );
    // Gone from the work queue (terminated), eventually.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while queue.waiting().await.unwrap() != 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the task was not removed"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_hands_out_at_most_what_was_asked_with_headers() {
    let Some(peer) = agents_testkit::nats() else {
        return;
    };
    let (queue, metrics) = queue(&peer, TaskQueueConfig::default()).await;
    for i in 0..5 {
        queue
            .submit_with_headers(
                "tests",
                &format!("h{i}"),
                b"{}".to_vec(),
                &[(
                    "traceparent",
                    "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
                )],
            )
            .await
            .unwrap();
    }
    // Counted from the stream before any worker (and its consumer) exists, per agent.
    let agents = ["tests".to_owned(), "idle".to_owned()];
    assert_eq!(
        queue.depths(&agents).await.unwrap(),
        [("tests".to_owned(), 5), ("idle".to_owned(), 0)]
    );
    let mut worker = queue.worker("tests").await.unwrap();
    let batch = worker.fetch(2, Duration::from_secs(5)).await.unwrap();
    assert_eq!(batch.len(), 2);
    // The queue's own record of when the task was stored.
    let stored = batch[0].submitted_at().unwrap();
    assert!(stored <= std::time::SystemTime::now() + Duration::from_secs(60));
    assert!(stored > std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_600_000_000));
    assert_eq!(
        batch[0].header("traceparent"),
        Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
    );
    assert_eq!(batch[0].header("missing"), None);
    // Two held by this worker, three waiting: the depth counts both.
    assert_eq!(queue.refresh_depth(&["tests".into()]).await.unwrap(), 5);
    assert_eq!(metrics.snapshot().tasks_queue_depth, 5);
    let mut batch = batch.into_iter();
    batch.next().unwrap().skip().await.unwrap();
    // A released task comes back at once, as a redelivery.
    let released = batch.next().unwrap();
    let released_id = released.id().to_owned();
    released.release().await.unwrap();
    let mut seen = Vec::new();
    while seen.len() < 4 {
        for task in worker.fetch(4, Duration::from_secs(5)).await.unwrap() {
            seen.push((task.id().to_owned(), task.attempt()));
            task.complete().await.unwrap();
        }
    }
    assert!(seen.contains(&(released_id, 2)), "{seen:?}");
    let snapshot = metrics.snapshot();
    assert_eq!((snapshot.tasks_skipped, snapshot.tasks_redelivered), (1, 1));
    assert_eq!(queue.refresh_depth(&["tests".into()]).await.unwrap(), 0);
    // Nothing left: an empty batch after the wait.
    assert!(
        worker
            .fetch(3, Duration::from_millis(200))
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_state_store_records_completion_once_under_racing_writers() {
    let Some(peer) = agents_testkit::nats() else {
        return;
    };
    let (queue, _) = queue(&peer, TaskQueueConfig::default()).await;
    let store = Arc::new(queue.state_store().await.unwrap());
    let record = TaskRecord::submitted("race", "tests", Some("acme".into()));
    assert!(matches!(
        store.create(&record).await.unwrap(),
        Created::New(_)
    ));
    // A second submit finds the first record.
    let again = TaskRecord::submitted("race", "tests", Some("other".into()));
    match store.create(&again).await.unwrap() {
        Created::Existing(existing) => assert_eq!(existing.tenant.as_deref(), Some("acme")),
        other => panic!("{other:?}"),
    }
    // Eight workers finish the same task at once: exactly one records its result.
    let mut racers = Vec::new();
    for i in 0..8 {
        let store = store.clone();
        racers.push(tokio::spawn(async move {
            let start = |r: &mut TaskRecord| r.start(1, "w");
            store.update("race", &start).await.unwrap();
            let result = serde_json::json!({"by": i});
            let complete = move |r: &mut TaskRecord| r.complete(result.clone());
            store.update("race", &complete).await.unwrap().unwrap().1
        }));
    }
    let mut winners = 0;
    for racer in racers {
        if racer.await.unwrap() {
            winners += 1;
        }
    }
    assert_eq!(winners, 1);
    let stored = store.get("race").await.unwrap().unwrap();
    assert_eq!(stored.state, TaskState::Completed);
    // Finished is final: a late cancel changes nothing.
    let cancel = |r: &mut TaskRecord| r.cancel("late");
    let (after, changed) = store.update("race", &cancel).await.unwrap().unwrap();
    assert!(!changed);
    assert_eq!(after.result, stored.result);
    assert!(store.update("missing", &cancel).await.unwrap().is_none());
    assert!(store.get("no.such.key").await.unwrap().is_none());
    assert!(
        store
            .create(&TaskRecord::submitted("a b", "t", None))
            .await
            .is_err()
    );
    store.remove("race").await.unwrap();
    assert!(store.get("race").await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancellations_reach_every_watcher() {
    let Some(peer) = agents_testkit::nats() else {
        return;
    };
    let (queue, _) = queue(&peer, TaskQueueConfig::default()).await;
    let store = queue.state_store().await.unwrap();
    let mut first = store.cancellations().await.unwrap();
    let mut second = store.cancellations().await.unwrap();
    store.request_cancel("stop-me").await.unwrap();
    for watch in [&mut first, &mut second] {
        let id = tokio::time::timeout(Duration::from_secs(30), watch.next())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(id, "stop-me");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_whose_worker_is_lost_on_its_last_delivery_is_dead_lettered() {
    let Some(peer) = agents_testkit::nats() else {
        return;
    };
    let config = one_short_delivery();
    let (queue, metrics) = queue(&peer, config).await;
    let store: Arc<dyn TaskStore> = Arc::new(queue.state_store().await.unwrap());
    let sweeper = queue.sweep_lost_tasks(store.clone()).await.unwrap();
    lose_on_last_delivery(&queue, &store, "lost").await;
    wait_dead_lettered(&queue, &store, "lost", "worker_lost").await;
    assert_eq!(queue.dead_letters().await.unwrap(), 1);
    assert_eq!(metrics.snapshot().tasks_dead_lettered, 1);
    sweeper.abort();
}

/// One delivery of 300 ms per task: a task not answered in time is given up at once.
fn one_short_delivery() -> TaskQueueConfig {
    TaskQueueConfig::default()
        .with_max_deliver(1)
        .with_ack_wait_ms(300)
}

/// Queues the task `id` of `tests`, takes it and never answers it, as a worker killed with
/// SIGKILL on the task's last delivery. JetStream gives it up once the ack wait has passed.
async fn lose_on_last_delivery(queue: &TaskQueue, store: &Arc<dyn TaskStore>, id: &str) {
    store
        .create(&TaskRecord::submitted(id, "tests", None))
        .await
        .unwrap();
    queue.submit("tests", id, b"input".to_vec()).await.unwrap();
    let mut worker = queue.worker("tests").await.unwrap();
    let held = next(&mut worker).await;
    std::mem::forget(held);
}

/// Waits until `id` is dead-lettered as `kind` and gone from the work queue.
async fn wait_dead_lettered(queue: &TaskQueue, store: &Arc<dyn TaskStore>, id: &str, kind: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let record = store.get(id).await.unwrap().unwrap();
        if record.state == TaskState::DeadLettered && queue.waiting().await.unwrap() == 0 {
            assert_eq!(record.error_kind.as_deref(), Some(kind));
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not dead-lettered: {record:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the advisories kept for `queue`'s sweepers are `some` (at least one) or none.
async fn wait_for_lost_tasks(queue: &TaskQueue, some: bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while (queue.lost_tasks_pending().await.unwrap() > 0) != some {
        assert!(
            std::time::Instant::now() < deadline,
            "lost tasks pending never became {}",
            if some { "some" } else { "none" }
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_lost_while_no_sweeper_runs_is_dead_lettered_when_one_starts() {
    let Some(peer) = agents_testkit::nats() else {
        return;
    };
    let config = one_short_delivery();
    let (queue, metrics) = queue(&peer, config).await;
    let store: Arc<dyn TaskStore> = Arc::new(queue.state_store().await.unwrap());
    lose_on_last_delivery(&queue, &store, "lost-unwatched").await;
    // No sweeper runs (every worker is down) when JetStream gives the task up.
    wait_for_lost_tasks(&queue, true).await;
    let sweeper = queue.sweep_lost_tasks(store.clone()).await.unwrap();
    wait_dead_lettered(&queue, &store, "lost-unwatched", "worker_lost").await;
    assert_eq!(queue.dead_letters().await.unwrap(), 1);
    assert_eq!(metrics.snapshot().tasks_dead_lettered, 1);
    // The handled advisory goes once acknowledged.
    wait_for_lost_tasks(&queue, false).await;
    sweeper.abort();
}

/// The JetStream store, refusing its first `update`s as a store that is briefly unreachable.
#[derive(Debug)]
struct BrieflyUnreachable {
    inner: agents_bus::JetStreamTaskStore,
    refusals_left: std::sync::atomic::AtomicU32,
}

#[async_trait::async_trait]
impl TaskStore for BrieflyUnreachable {
    async fn create(&self, record: &TaskRecord) -> Result<Created, agents_bus::Error> {
        self.inner.create(record).await
    }
    async fn get(&self, task_id: &str) -> Result<Option<TaskRecord>, agents_bus::Error> {
        self.inner.get(task_id).await
    }
    async fn update(
        &self,
        task_id: &str,
        change: agents_bus::Change<'_>,
    ) -> Result<Option<(TaskRecord, bool)>, agents_bus::Error> {
        use std::sync::atomic::Ordering;
        let refused = self
            .refusals_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if refused {
            return Err(agents_bus::Error::Timeout {
                operation: "update a task record",
                after_ms: 1,
            });
        }
        self.inner.update(task_id, change).await
    }
    async fn remove(&self, task_id: &str) -> Result<(), agents_bus::Error> {
        self.inner.remove(task_id).await
    }
    async fn request_cancel(&self, task_id: &str) -> Result<(), agents_bus::Error> {
        self.inner.request_cancel(task_id).await
    }
    async fn cancellations(&self) -> Result<agents_bus::Cancellations, agents_bus::Error> {
        self.inner.cancellations().await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_task_the_sweeper_cannot_record_at_first_is_dead_lettered_on_a_later_try() {
    let Some(peer) = agents_testkit::nats() else {
        return;
    };
    let config = one_short_delivery();
    let (queue, _) = queue(&peer, config).await;
    // More refusals than a plain subscription would try (3): only a kept advisory, tried
    // again later each time, outlasts them.
    let store: Arc<dyn TaskStore> = Arc::new(BrieflyUnreachable {
        inner: queue.state_store().await.unwrap(),
        refusals_left: std::sync::atomic::AtomicU32::new(4),
    });
    let sweeper = queue.sweep_lost_tasks(store.clone()).await.unwrap();
    lose_on_last_delivery(&queue, &store, "lost-retried").await;
    wait_dead_lettered(&queue, &store, "lost-retried", "worker_lost").await;
    assert_eq!(queue.dead_letters().await.unwrap(), 1);
    sweeper.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beside_a_stream_of_every_advisory_lost_tasks_are_still_swept() {
    let Some(peer) = agents_testkit::nats() else {
        return;
    };
    // An operator's monitoring stream already holds every advisory, so the queue's own
    // stream of them cannot be made (subjects may not overlap).
    let client = async_nats::connect(peer.addr()).await.unwrap();
    async_nats::jetstream::new(client)
        .create_stream(async_nats::jetstream::stream::Config {
            name: "ADVISORIES".into(),
            subjects: vec!["$JS.EVENT.ADVISORY.>".into()],
            ..Default::default()
        })
        .await
        .unwrap();
    let config = one_short_delivery();
    let (queue, _) = queue(&peer, config).await;
    assert_eq!(queue.lost_tasks_pending().await.unwrap(), 0);
    let store: Arc<dyn TaskStore> = Arc::new(queue.state_store().await.unwrap());
    let sweeper = queue.sweep_lost_tasks(store.clone()).await.unwrap();
    lose_on_last_delivery(&queue, &store, "lost-beside").await;
    wait_dead_lettered(&queue, &store, "lost-beside", "worker_lost").await;
    assert_eq!(queue.dead_letters().await.unwrap(), 1);
    sweeper.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_advisory_from_before_the_task_stream_was_made_again_names_no_new_task() {
    let Some(peer) = agents_testkit::nats() else {
        return;
    };
    let config = one_short_delivery();
    let (first, _) = queue(&peer, config.clone()).await;
    let store: Arc<dyn TaskStore> = Arc::new(first.state_store().await.unwrap());
    // Given up while no sweeper runs: its advisory names stream sequence 1.
    lose_on_last_delivery(&first, &store, "old").await;
    wait_for_lost_tasks(&first, true).await;
    // The operator deletes the task stream; the next start makes it again, and a new task
    // takes sequence 1 (later than the clock margin).
    let client = async_nats::connect(peer.addr()).await.unwrap();
    async_nats::jetstream::new(client)
        .delete_stream(&config.stream)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (queue, _) = queue(&peer, config).await;
    store
        .create(&TaskRecord::submitted("new", "tests", None))
        .await
        .unwrap();
    queue
        .submit("tests", "new", b"input".to_vec())
        .await
        .unwrap();
    let sweeper = queue.sweep_lost_tasks(store.clone()).await.unwrap();
    wait_for_lost_tasks(&queue, false).await;
    // The new task is untouched: still queued, still submitted.
    assert_eq!(queue.waiting().await.unwrap(), 1);
    assert_eq!(queue.dead_letters().await.unwrap(), 0);
    let record = store.get("new").await.unwrap().unwrap();
    assert_eq!(record.state, TaskState::Submitted, "{record:?}");
    sweeper.abort();
}
