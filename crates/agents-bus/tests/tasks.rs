//! The JetStream work queue against a real `nats-server -js`.
#![cfg(feature = "nats")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use agents_bus::{BusMetrics, Delivery, TaskOutcome, TaskQueue, TaskQueueConfig};

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
