//! The JetStream transport against a real `nats-server -js` started by each test.
#![cfg(feature = "nats")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::time::{Duration, Instant};

use agents_bus::{Delivery, EventBus, NatsBus, NatsConfig, TypeFilter};
use agents_core::{AgentFailed, AgentStarted, CloudEvent, ProviderRequest};
use agents_testkit::Peer;
use futures_util::StreamExt;

const DEADLINE: Duration = Duration::from_secs(60);
const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

fn config(peer: &Peer, outbox: &Path) -> NatsConfig {
    NatsConfig::new(format!("nats://{}", peer.addr()), outbox)
        .with_publish_timeout_ms(1_000)
        .with_max_retry_delay_ms(100)
}

/// Polls `condition` until it holds, failing the test after [`DEADLINE`].
async fn eventually<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + DEADLINE;
    while !condition().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn sequenced(source: &str, seq: u64) -> CloudEvent {
    let mut request = ProviderRequest::default();
    request.provider = source.into();
    request.attempt = seq as u32;
    CloudEvent::new(format!("/providers/{source}"), &request).with_id(format!("{source}-{seq}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trip_as_cloudevents_with_trace_and_redaction() {
    let Some(peer) = agents_testkit::nats() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let bus = NatsBus::connect(config(&peer, dir.path())).await.unwrap();
    let mut agents = bus.subscribe(TypeFilter::prefix("agent.")).await.unwrap();
    let mut raw = bus.client().subscribe("agents.events.>").await.unwrap();

    let mut started = AgentStarted::default();
    started.agent_id = "code-analysis".into();
    let traced = CloudEvent::new("/agents/code-analysis", &started)
        .with_subject("req-1")
        .with_trace(TRACEPARENT, Some("vendor=1".into()));
    let mut failed = AgentFailed::default();
    failed.message = "provider said password=hunter2".into();
    let secret = CloudEvent::new("/agents/code-analysis", &failed);
    let untraced = CloudEvent::new("/providers/local", &ProviderRequest::default());
    for event in [traced.clone(), untraced.clone(), secret.clone()] {
        assert_eq!(bus.publish(event).await.unwrap(), Delivery::Accepted);
    }

    // The subscriber of `agent.*` gets the two agent events, in order, as published.
    let first = agents.recv().await.unwrap();
    assert_eq!(*first, traced);
    let second = agents.recv().await.unwrap();
    assert_eq!(second.id, secret.id);
    assert!(!second.data.to_string().contains("hunter2"));

    // On the wire: the subject, the de-duplication header and a CloudEvents 1.0 envelope.
    for expected in [&traced, &untraced, &secret] {
        let message = raw.next().await.unwrap();
        assert_eq!(
            message.subject.as_str(),
            format!("agents.events.{}", expected.event_type)
        );
        let headers = message.headers.as_ref().unwrap();
        assert_eq!(headers.get("Nats-Msg-Id").unwrap().as_str(), expected.id);
        let json: serde_json::Value = serde_json::from_slice(&message.payload).unwrap();
        assert_eq!(json["specversion"], "1.0");
        for attribute in ["id", "source", "type", "time"] {
            assert!(
                json[attribute].as_str().is_some_and(|v| !v.is_empty()),
                "{attribute}"
            );
        }
        assert_eq!(json["datacontenttype"], "application/json");
        let decoded = CloudEvent::from_json(&message.payload).unwrap();
        assert_eq!(decoded.id, expected.id);
        assert_eq!(decoded.traceparent, expected.traceparent);
        assert!(!String::from_utf8_lossy(&message.payload).contains("hunter2"));
    }
    let traced_json: serde_json::Value = serde_json::to_value(&traced).unwrap();
    assert_eq!(traced_json["traceparent"], TRACEPARENT);

    let m = bus.metrics().snapshot();
    assert_eq!(
        (m.published, m.publish_errors, m.outbox_enqueued),
        (3, 0, 0)
    );
    bus.shutdown().await.unwrap();
    bus.shutdown().await.unwrap();
    assert!(agents.recv().await.is_none());
    assert!(matches!(
        bus.publish(untraced).await,
        Err(agents_bus::Error::Closed)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_publish_is_stored_once() {
    let Some(peer) = agents_testkit::nats() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let bus = NatsBus::connect(config(&peer, dir.path())).await.unwrap();
    let event = sequenced("local", 1);
    assert_eq!(
        bus.publish(event.clone()).await.unwrap(),
        Delivery::Accepted
    );
    assert_eq!(
        bus.publish(event.clone()).await.unwrap(),
        Delivery::Duplicate
    );
    assert_eq!(bus.publish(event).await.unwrap(), Delivery::Duplicate);
    bus.publish(sequenced("local", 2)).await.unwrap();
    let stats = bus.stream_stats().await.unwrap();
    assert_eq!((stats.messages, stats.last_sequence), (2, 2));

    // A second bus on the same stream (e.g. a restarted server) is de-duplicated too.
    let other_dir = tempfile::tempdir().unwrap();
    let other = NatsBus::connect(config(&peer, other_dir.path()))
        .await
        .unwrap();
    assert_eq!(
        other.publish(sequenced("local", 2)).await.unwrap(),
        Delivery::Duplicate
    );
    assert_eq!(other.stream_stats().await.unwrap().messages, 2);
}

/// Stops nats-server in the middle of 10,000 events and starts it again: every event is
/// stored exactly once and arrives in order per source.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_mid_stream_loses_nothing_and_keeps_order() {
    const EVENTS: u64 = 10_000;
    const SOURCES: [&str; 2] = ["local", "hosted"];
    let Some(mut peer) = agents_testkit::nats() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let bus = NatsBus::connect(config(&peer, dir.path())).await.unwrap();

    // The publisher runs in three phases, stepped by the test: before the outage, during it,
    // and after the server is back (while the outbox drains).
    let (phase_tx, mut phase_rx) = tokio::sync::mpsc::channel::<()>(1);
    let (done_tx, mut done_rx) = tokio::sync::mpsc::channel::<u64>(1);
    let publisher = {
        let bus = bus.clone();
        tokio::spawn(async move {
            let mut outcomes = BTreeMap::<String, u64>::new();
            for i in 0..EVENTS {
                if i == EVENTS * 3 / 10 || i == EVENTS * 6 / 10 {
                    done_tx.send(i).await.unwrap();
                    phase_rx.recv().await.unwrap();
                }
                let source = SOURCES[(i % 2) as usize];
                let delivery = bus.publish(sequenced(source, i / 2)).await.unwrap();
                *outcomes.entry(format!("{delivery:?}")).or_default() += 1;
            }
            outcomes
        })
    };

    assert_eq!(done_rx.recv().await, Some(3_000));
    peer.kill();
    phase_tx.send(()).await.unwrap();
    assert_eq!(done_rx.recv().await, Some(6_000));
    assert!(
        bus.outbox_len() > 0,
        "events published during the outage wait in the outbox"
    );
    peer.start_again().unwrap();
    phase_tx.send(()).await.unwrap();
    let outcomes = publisher.await.unwrap();
    assert!(
        outcomes.get("Outboxed").copied().unwrap_or(0) >= 2_999,
        "{outcomes:?}"
    );

    eventually("the outbox is empty", || async { bus.outbox_len() == 0 }).await;
    eventually("the stream holds every event", || async {
        bus.stream_stats().await.is_ok_and(|s| s.messages >= EVENTS)
    })
    .await;
    assert_eq!(
        bus.stream_stats().await.unwrap().messages,
        EVENTS,
        "none twice"
    );

    let mut follower = bus
        .subscribe_durable("outage-check", TypeFilter::all())
        .await
        .unwrap();
    let mut next = BTreeMap::<String, u64>::new();
    let mut seen = HashSet::new();
    while (seen.len() as u64) < EVENTS {
        let event = tokio::time::timeout(DEADLINE, follower.recv())
            .await
            .unwrap()
            .unwrap();
        assert!(seen.insert(event.id.clone()), "{} arrived twice", event.id);
        let request: ProviderRequest = event.payload().unwrap();
        let expected = next.entry(request.provider.clone()).or_default();
        assert_eq!(
            u64::from(request.attempt),
            *expected,
            "out of order: {}",
            event.id
        );
        *expected += 1;
    }
    assert_eq!(next.values().sum::<u64>(), EVENTS);

    let m = bus.metrics().snapshot();
    assert_eq!(m.published, EVENTS);
    assert_eq!(m.outbox_resent, m.outbox_enqueued);
    assert_eq!(
        (m.outbox_dropped, m.publish_errors, m.outbox_depth),
        (0, 0, 0)
    );
    bus.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_durable_consumer_resumes_where_it_stopped() {
    let Some(peer) = agents_testkit::nats() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let bus = NatsBus::connect(config(&peer, dir.path())).await.unwrap();
    for i in 0..10 {
        bus.publish(sequenced("local", i)).await.unwrap();
    }
    let ids = |range: std::ops::Range<u64>| -> Vec<String> {
        range.map(|i| format!("local-{i}")).collect()
    };

    let mut follower = bus
        .subscribe_durable("follower", TypeFilter::all())
        .await
        .unwrap();
    let mut got = Vec::new();
    for _ in 0..10 {
        got.push(follower.recv().await.unwrap().id.clone());
    }
    assert_eq!(got, ids(0..10));
    follower.close().await;

    for i in 10..15 {
        bus.publish(sequenced("local", i)).await.unwrap();
    }
    let mut follower = bus
        .subscribe_durable("follower", TypeFilter::all())
        .await
        .unwrap();
    let mut got = Vec::new();
    for _ in 0..5 {
        got.push(follower.recv().await.unwrap().id.clone());
    }
    assert_eq!(got, ids(10..15));
    assert!(bus.stream_stats().await.unwrap().consumers >= 1);

    let bad = bus.subscribe_durable("no.dots", TypeFilter::all()).await;
    assert!(matches!(bad, Err(agents_bus::Error::Config(_))));
}

/// A subscriber that leaves its events in the buffer past the ack wait still gets each one
/// once: the buffered events get in-progress acks, and no more are delivered unacknowledged
/// than the buffer holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_subscriber_gets_each_event_once() {
    const EVENTS: u64 = 12;
    const BUFFER: usize = 4;
    let Some(peer) = agents_testkit::nats() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(&peer, dir.path());
    config.subscriber_buffer = BUFFER;
    config.ack_wait_ms = 1_000;
    let bus = NatsBus::connect(config).await.unwrap();
    for i in 0..EVENTS {
        bus.publish(sequenced("slow", i)).await.unwrap();
    }
    let mut slow = bus
        .subscribe_durable("slow", TypeFilter::all())
        .await
        .unwrap();
    eventually("the buffer is full", || async { slow.queued() == BUFFER }).await;
    // Not a timing assertion: three ack waits give JetStream time to deliver again whatever
    // it considers unacknowledged for too long.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let stream = async_nats::jetstream::new(bus.client())
        .get_stream("AGENTS_EVENTS")
        .await
        .unwrap();
    let consumer = stream.consumer_info("slow").await.unwrap();
    assert_eq!(consumer.num_redelivered, 0, "{consumer:?}");

    let mut got = Vec::new();
    for _ in 0..EVENTS {
        let event = tokio::time::timeout(DEADLINE, slow.recv()).await.unwrap();
        got.push(event.unwrap().id.clone());
    }
    let expected: Vec<String> = (0..EVENTS).map(|i| format!("slow-{i}")).collect();
    assert_eq!(got, expected, "each event once, in order");
    // A second delivery of any of them would be on its way within an ack wait.
    let extra = tokio::time::timeout(Duration::from_secs(2), slow.recv()).await;
    assert!(extra.is_err(), "an event was delivered twice: {extra:?}");
    assert_eq!(bus.metrics().snapshot().delivered, EVENTS);
    bus.shutdown().await.unwrap();
}

/// The server is down when the bus starts: publishes go to the outbox (bounded: the overflow
/// is refused and counted), a shutdown leaves them on disk, and the next bus sends them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn started_without_nats_the_outbox_holds_and_later_sends() {
    let Some(mut peer) = agents_testkit::nats() else {
        return;
    };
    peer.kill();
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(&peer, dir.path())
        .with_outbox(agents_bus::OutboxConfig::new(dir.path()).with_max_events(5));
    config.shutdown_timeout_ms = 50;
    let bus = NatsBus::connect(config.clone()).await.unwrap();
    assert!(!bus.is_connected());
    for i in 0..5 {
        assert_eq!(
            bus.publish(sequenced("local", i)).await.unwrap(),
            Delivery::Outboxed
        );
    }
    let full = bus.publish(sequenced("local", 5)).await.unwrap_err();
    assert!(matches!(full, agents_bus::Error::Full { .. }), "{full}");
    assert!(full.is_retryable());
    let m = bus.metrics().snapshot();
    assert_eq!(
        (m.outbox_enqueued, m.outbox_dropped, m.outbox_depth),
        (5, 1, 5)
    );
    bus.shutdown().await.unwrap();
    assert_eq!(bus.outbox_len(), 5, "kept on disk");

    // A bad event type is refused before it reaches the outbox.
    let mut bad = sequenced("local", 9);
    bad.event_type = "provider request".into();
    let restarted = NatsBus::connect(config.clone()).await.unwrap();
    assert!(matches!(
        restarted.publish(bad).await,
        Err(agents_bus::Error::InvalidEvent { .. })
    ));
    assert_eq!(restarted.outbox_len(), 5, "loaded from disk");

    peer.start_again().unwrap();
    eventually("the outbox is sent", || async {
        restarted.outbox_len() == 0
    })
    .await;
    assert_eq!(restarted.stream_stats().await.unwrap().messages, 5);
    // Direct again once the outbox is empty.
    assert_eq!(
        restarted.publish(sequenced("local", 6)).await.unwrap(),
        Delivery::Accepted
    );
    restarted.shutdown().await.unwrap();
}

/// A stream of the same name with another retention is refused at start, not overwritten.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conflicting_stream_is_refused() {
    let Some(peer) = agents_testkit::nats() else {
        return;
    };
    let client = async_nats::connect(peer.addr()).await.unwrap();
    let js = async_nats::jetstream::new(client);
    js.create_stream(async_nats::jetstream::stream::Config {
        name: "AGENTS_EVENTS".into(),
        subjects: vec!["agents.events.>".into()],
        retention: async_nats::jetstream::stream::RetentionPolicy::WorkQueue,
        ..Default::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let refused = NatsBus::connect(config(&peer, dir.path()))
        .await
        .unwrap_err();
    assert!(
        matches!(refused, agents_bus::Error::Transport { .. }),
        "{refused}"
    );
}

/// Several publishers per source publish concurrently while nats-server is killed and started
/// again. Each publisher's events are stored in its order, every event once, and no event is
/// stored before one of its source whose publish had returned before it started (an event
/// that went to the outbox is not overtaken by a later direct send).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_publishers_keep_per_source_order_across_an_outage() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    const SOURCES: [&str; 2] = ["local", "hosted"];
    const PER_SOURCE: usize = 3;
    const EACH: u64 = 600;
    const TOTAL: u64 = SOURCES.len() as u64 * PER_SOURCE as u64 * EACH;
    let Some(mut peer) = agents_testkit::nats() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let bus = NatsBus::connect(config(&peer, dir.path())).await.unwrap();

    // Per source: ids in the order their publish returned, and for each id how many of its
    // source's publishes had returned when it started.
    type Log = std::sync::Mutex<(Vec<String>, BTreeMap<String, usize>)>;
    let logs: Arc<BTreeMap<&str, Log>> =
        Arc::new(SOURCES.iter().map(|s| (*s, Log::default())).collect());
    let returned = Arc::new(AtomicU64::new(0));
    // Publishers stop at a third of their events until the server is down, and at two thirds
    // until it is up again; the test kills and restarts it while they are still publishing.
    let (phase_tx, phase_rx) = tokio::sync::watch::channel(0u8);
    let mut publishers = Vec::new();
    for source in SOURCES {
        for p in 0..PER_SOURCE {
            let (bus, logs, returned) = (bus.clone(), Arc::clone(&logs), Arc::clone(&returned));
            let mut phase_rx = phase_rx.clone();
            publishers.push(tokio::spawn(async move {
                let mut outcomes = BTreeMap::<String, u64>::new();
                for seq in 0..EACH {
                    for (at, phase) in [(EACH / 3, 1), (EACH * 2 / 3, 2)] {
                        if seq == at {
                            phase_rx.wait_for(|p| *p >= phase).await.unwrap();
                        }
                    }
                    let mut event = sequenced(&format!("{source}.{p}"), seq);
                    event.source = format!("/providers/{source}");
                    let log = &logs[source];
                    let before = log.lock().unwrap().0.len();
                    log.lock().unwrap().1.insert(event.id.clone(), before);
                    let id = event.id.clone();
                    let delivery = bus.publish(event).await.unwrap();
                    log.lock().unwrap().0.push(id);
                    returned.fetch_add(1, Ordering::SeqCst);
                    *outcomes.entry(format!("{delivery:?}")).or_default() += 1;
                }
                outcomes
            }));
        }
    }

    let count = || returned.load(Ordering::SeqCst);
    eventually("a sixth is published", || async { count() >= TOTAL / 6 }).await;
    peer.kill();
    phase_tx.send(1).unwrap();
    eventually("half is published", || async { count() >= TOTAL / 2 }).await;
    assert!(
        bus.outbox_len() > 0,
        "events published during the outage wait in the outbox"
    );
    peer.start_again().unwrap();
    phase_tx.send(2).unwrap();
    let mut outcomes = BTreeMap::<String, u64>::new();
    for publisher in publishers {
        for (kind, n) in publisher.await.unwrap() {
            *outcomes.entry(kind).or_default() += n;
        }
    }
    assert!(
        outcomes.get("Outboxed").copied().unwrap_or(0) > 0,
        "{outcomes:?}"
    );

    eventually("the outbox is empty", || async { bus.outbox_len() == 0 }).await;
    eventually("the stream holds every event", || async {
        bus.stream_stats().await.is_ok_and(|s| s.messages >= TOTAL)
    })
    .await;
    assert_eq!(
        bus.stream_stats().await.unwrap().messages,
        TOTAL,
        "none twice"
    );

    let mut follower = bus
        .subscribe_durable("concurrent-outage-check", TypeFilter::all())
        .await
        .unwrap();
    let mut position = BTreeMap::<String, usize>::new();
    let mut next = BTreeMap::<String, u64>::new();
    while (position.len() as u64) < TOTAL {
        let event = tokio::time::timeout(DEADLINE, follower.recv())
            .await
            .unwrap()
            .unwrap();
        let at = position.len();
        assert!(
            position.insert(event.id.clone(), at).is_none(),
            "{} arrived twice",
            event.id
        );
        let request: ProviderRequest = event.payload().unwrap();
        let expected = next.entry(request.provider.clone()).or_default();
        assert_eq!(
            u64::from(request.attempt),
            *expected,
            "out of order within a publisher: {}",
            event.id
        );
        *expected += 1;
    }
    for (source, log) in logs.iter() {
        let (returned_order, started_after) = &*log.lock().unwrap();
        // latest[k]: the furthest stream position among the first k returned publishes.
        let mut latest = vec![None];
        for id in returned_order {
            let last = *latest.last().unwrap();
            latest.push(last.max(Some(position[id])));
        }
        for (id, before) in started_after {
            if let Some(earlier) = latest[*before] {
                assert!(
                    earlier < position[id],
                    "{id} ({source}) overtook an event whose publish returned before it started"
                );
            }
        }
    }

    let m = bus.metrics().snapshot();
    assert_eq!(m.published, TOTAL);
    assert_eq!(m.outbox_resent, m.outbox_enqueued);
    assert_eq!(
        (m.outbox_dropped, m.publish_errors, m.outbox_depth),
        (0, 0, 0)
    );
    bus.shutdown().await.unwrap();
}

/// The bus's `Debug` (and its config's) never shows the credentials in the URL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_output_masks_url_credentials() {
    let Some(peer) = agents_testkit::nats() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let url = format!("nats://alice:hunter2@{}", peer.addr());
    let mut config = config(&peer, dir.path());
    config.url = url;
    let bus = NatsBus::connect(config.clone()).await.unwrap();
    for debug in [
        format!("{bus:?}"),
        format!("{config:?}"),
        format!("{bus:#?}"),
    ] {
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(!debug.contains("alice"), "{debug}");
        assert!(debug.contains("nats://***@"), "{debug}");
    }
    bus.shutdown().await.unwrap();
}
