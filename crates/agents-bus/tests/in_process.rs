//! The in-process bus under a slow subscriber, failing handlers and the non-blocking sink.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use agents_bus::{
    BusSink, Delivery, EventBus, HandlerError, InProcessBus, InProcessConfig, Tee, TypeFilter,
};
use agents_core::{CloudEvent, EventSink, ProviderRequest};
use futures_util::FutureExt;

fn request(i: u64) -> CloudEvent {
    let mut request = ProviderRequest::default();
    request.attempt = i as u32;
    CloudEvent::new("/providers/local", &request).with_id(i.to_string())
}

/// A slow subscriber (never reads) next to a fast one: every publish completes without ever
/// waiting, the fast subscriber gets everything in order, and the slow one's losses are
/// counted exactly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_subscriber_neither_blocks_publishers_nor_hides_its_lag() {
    const EVENTS: u64 = 10_000;
    const SLOW_BUFFER: usize = 16;
    let bus = InProcessBus::new(InProcessConfig::default().with_subscriber_buffer(EVENTS as usize))
        .unwrap();
    let fast = bus.subscribe(TypeFilter::all()).await.unwrap();
    let consumer = tokio::spawn(async move {
        let mut fast = fast;
        let mut ids = Vec::new();
        while let Some(event) = fast.recv().await {
            ids.push(event.id.parse::<u64>().unwrap());
        }
        (ids, fast.lagged())
    });
    // The slow subscriber's buffer is small; it is never read while publishing.
    let slow_bus = InProcessBus::with_metrics(
        InProcessConfig::default().with_subscriber_buffer(SLOW_BUFFER),
        bus.metrics(),
    )
    .unwrap();
    let mut slow = slow_bus
        .subscribe(TypeFilter::prefix("provider."))
        .await
        .unwrap();
    let both = Tee::new(Arc::new(bus.clone()), vec![Arc::new(slow_bus.clone())]);

    let publishers: Vec<_> = (0..4)
        .map(|p| {
            let both = both.clone();
            tokio::spawn(async move {
                for i in (p..EVENTS).step_by(4) {
                    // `now_or_never`: the publish completes at its first poll — it never waits
                    // for any subscriber, however full.
                    let outcome = both.publish(request(i)).now_or_never();
                    assert!(
                        matches!(outcome, Some(Ok(Delivery::Accepted))),
                        "{outcome:?}"
                    );
                }
            })
        })
        .collect();
    for publisher in publishers {
        publisher.await.unwrap();
    }
    both.shutdown().await.unwrap();

    let (ids, fast_lagged) = consumer.await.unwrap();
    assert_eq!(fast_lagged, 0);
    assert_eq!(ids.len() as u64, EVENTS);
    // Each publisher's events arrive in the order it published them.
    for p in 0..4 {
        let mine: Vec<_> = ids.iter().filter(|i| *i % 4 == p).collect();
        assert!(
            mine.windows(2).all(|w| w[0] < w[1]),
            "publisher {p} out of order"
        );
    }
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len() as u64, EVENTS);

    let lost = EVENTS - SLOW_BUFFER as u64;
    assert_eq!(slow.lagged(), lost);
    let mut kept = 0;
    while slow.recv().await.is_some() {
        kept += 1;
    }
    assert_eq!(kept, SLOW_BUFFER);

    let m = bus.metrics().snapshot();
    assert_eq!(m.published, 2 * EVENTS);
    assert_eq!(m.lagged, lost);
    assert_eq!(m.delivered, EVENTS + SLOW_BUFFER as u64);
    assert_eq!(m.publish_errors, 0);
}

#[tokio::test(start_paused = true)]
async fn handler_errors_and_panics_are_counted_not_swallowed() {
    let bus = InProcessBus::new(InProcessConfig::default()).unwrap();
    let sub = bus.subscribe(TypeFilter::all()).await.unwrap();
    for i in 0..30 {
        bus.publish(request(i)).await.unwrap();
    }
    bus.shutdown().await.unwrap();
    let handler = |event: Arc<CloudEvent>| async move {
        let i: u64 = event.id.parse()?;
        match i % 10 {
            0 => panic!("handler bug"),
            3 | 6 => Err::<(), HandlerError>("token=abcdef123 rejected".into()),
            _ => Ok(()),
        }
    };
    let report = sub.dispatch(handler).await;
    assert_eq!((report.handled, report.failed, report.lagged), (21, 9, 0));
    let m = bus.metrics().snapshot();
    assert_eq!((m.handled, m.handler_errors), (21, 9));
}

#[tokio::test(start_paused = true)]
async fn the_sink_feeds_the_bus_without_blocking_the_emitter() {
    let bus = InProcessBus::new(InProcessConfig::default()).unwrap();
    let mut sub = bus
        .subscribe(TypeFilter::exact("provider.request"))
        .await
        .unwrap();
    let sink = Arc::new(BusSink::spawn(Arc::new(bus.clone()), 64).unwrap());
    let emitter: Arc<dyn EventSink> = sink.clone();
    for i in 0..10 {
        emitter.emit(request(i));
    }
    for i in 0..10 {
        assert_eq!(sub.recv().await.unwrap().id, i.to_string());
    }
    // The bus is an EventSink too, for callers that emit straight into it.
    bus.emit(request(10));
    assert_eq!(sub.recv().await.unwrap().id, "10");
    assert!(sink.close(std::time::Duration::from_secs(5)).await);
}

/// A tee writes mirrors first, goes on after a mirror fails, and returns the primary's
/// outcome: a failed mirror is counted, not reported as a failed publish (a caller retrying it
/// would write the primary twice).
#[tokio::test(start_paused = true)]
async fn a_tee_counts_a_failing_mirror_and_returns_the_primarys_outcome() {
    let primary = InProcessBus::new(InProcessConfig::default()).unwrap();
    let mirror = InProcessBus::new(InProcessConfig::default()).unwrap();
    let mut mirrored = mirror.subscribe_now(TypeFilter::all()).unwrap();
    let broken = InProcessBus::new(InProcessConfig::default()).unwrap();
    broken.close();
    let tee = Tee::new(
        Arc::new(primary.clone()),
        vec![Arc::new(broken), Arc::new(mirror.clone())],
    );
    let mut sub = tee.subscribe(TypeFilter::all()).await.unwrap();
    let outcome = tee.publish(request(1)).await;
    assert!(matches!(outcome, Ok(Delivery::Accepted)), "{outcome:?}");
    let m = tee.metrics().snapshot();
    assert_eq!((m.published, m.mirror_errors), (1, 1));
    assert_eq!(sub.recv().await.unwrap().id, "1");
    assert_eq!(mirrored.recv().await.unwrap().id, "1");
    tee.shutdown().await.unwrap();
    // The primary's own failure is still the caller's.
    let closed = tee.publish(request(2)).await;
    assert!(
        matches!(closed, Err(agents_bus::Error::Closed)),
        "{closed:?}"
    );
    assert!(sub.recv().await.is_none());
    assert!(mirrored.recv().await.is_none());
}
