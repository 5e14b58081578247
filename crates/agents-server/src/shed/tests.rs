#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use http::{Request, Response};
use http_body_util::BodyExt as _;
use tonic::Code;
use tonic_types::StatusExt as _;
use tower::{ServiceExt as _, service_fn};
use tower_layer::Layer as _;

use super::layer::QUIET_TICKS_BEFORE_PARKING;
use super::*;
use crate::metrics::Metrics;

/// An inner service that counts its calls and answers `ok`.
fn counting() -> (
    Arc<AtomicUsize>,
    impl tower_service::Service<
        Request<String>,
        Response = Response<String>,
        Error = Infallible,
        Future = impl Send,
    > + Clone,
) {
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&calls);
    let service = service_fn(move |_request: Request<String>| {
        seen.fetch_add(1, Ordering::SeqCst);
        async { Ok::<_, Infallible>(Response::new("ok".to_owned())) }
    });
    (calls, service)
}

fn request(path: &str) -> Request<String> {
    Request::builder()
        .uri(format!("http://localhost{path}"))
        .body(String::new())
        .unwrap()
}

const EXECUTE: &str = "/agents.v1.AgentService/Execute";

/// A layer with room for 10 requests and the queue-delay check on at 10 ms, so its probe runs.
fn probing(metrics: Arc<Metrics>) -> ShedLayer {
    let config = ShedConfig::new(10).with_max_queue_delay(Some(Duration::from_millis(10)));
    ShedLayer::new(config, metrics)
}

fn shed_count(metrics: &Metrics, reason: &str) -> Option<f64> {
    let text = metrics.encode();
    let line = format!("agents_load_shed_total{{reason=\"{reason}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(line.as_str()))
        .map(|v| v.trim().parse().unwrap())
}

fn grpc_code(response: &Response<ShedBody<String>>) -> Option<Code> {
    response
        .headers()
        .get("grpc-status")
        .map(|v| Code::from_bytes(v.as_bytes()))
}

#[tokio::test]
async fn past_the_cap_requests_are_refused_without_reaching_the_handler() {
    let metrics = Arc::new(Metrics::new());
    let layer = ShedLayer::new(ShedConfig::new(2), metrics.clone());
    let (calls, inner) = counting();
    let service = layer.layer(inner);

    // Two responses held (their bodies not finished): two requests in flight.
    let first = service.clone().oneshot(request(EXECUTE)).await.unwrap();
    let second = service.clone().oneshot(request(EXECUTE)).await.unwrap();
    assert_eq!(layer.in_flight(), 2);
    assert_eq!(
        grpc_code(&first),
        None,
        "an admitted call is the handler's answer"
    );

    let refused = service.clone().oneshot(request(EXECUTE)).await.unwrap();
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "the refused call never ran"
    );
    assert_eq!(grpc_code(&refused), Some(Code::ResourceExhausted));
    assert_eq!(
        refused.headers().get("content-type").unwrap(),
        "application/grpc"
    );
    assert_eq!(
        refused.headers().get("grpc-retry-pushback-ms").unwrap(),
        "100"
    );
    let status = tonic::Status::from_header_map(refused.headers()).unwrap();
    assert!(
        status.message().contains("limits.max_in_flight"),
        "{}",
        status.message()
    );
    assert!(status.message().contains("retry"), "{}", status.message());
    assert_eq!(
        status.get_details_retry_info().unwrap().retry_delay,
        Some(Duration::from_millis(100))
    );
    assert_eq!(shed_count(&metrics, "in_flight"), Some(1.0));
    assert_eq!(shed_count(&metrics, "queue_delay"), Some(0.0));
    // The refusal held nothing.
    assert_eq!(layer.in_flight(), 2);

    // A response read to its end gives its place back; a dropped one too.
    let body = first.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"ok");
    assert_eq!(layer.in_flight(), 1);
    drop(second);
    assert_eq!(layer.in_flight(), 0);

    let admitted = service.clone().oneshot(request(EXECUTE)).await.unwrap();
    assert_eq!(grpc_code(&admitted), None);
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn health_and_reflection_pass_when_full_and_are_not_counted() {
    let metrics = Arc::new(Metrics::new());
    let layer = ShedLayer::new(ShedConfig::new(1), metrics.clone());
    let (calls, inner) = counting();
    let service = layer.layer(inner);
    let _held = service.clone().oneshot(request(EXECUTE)).await.unwrap();
    assert_eq!(layer.in_flight(), 1);
    for path in [
        "/grpc.health.v1.Health/Check",
        "/grpc.health.v1.Health/Watch",
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
    ] {
        let response = service.clone().oneshot(request(path)).await.unwrap();
        assert_eq!(grpc_code(&response), None, "{path} was refused");
        assert_eq!(layer.in_flight(), 1, "{path} was counted");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 5);
    // Anything else is counted, whatever the service.
    let other = service
        .clone()
        .oneshot(request("/grpc.healthz/Check"))
        .await
        .unwrap();
    assert_eq!(grpc_code(&other), Some(Code::ResourceExhausted));
    assert_eq!(shed_count(&metrics, "in_flight"), Some(1.0));
}

#[tokio::test]
async fn a_request_that_waited_too_long_to_start_is_refused_and_frees_its_place() {
    let metrics = Arc::new(Metrics::new());
    let config = ShedConfig::new(10)
        .with_max_queue_delay(Some(Duration::from_millis(1)))
        .with_retry_after(Duration::from_millis(250));
    let layer = ShedLayer::new(config, metrics.clone());
    let (calls, inner) = counting();
    let mut service = layer.layer(inner);

    // Arrived (counted), then not polled for longer than the allowed delay: what a stream
    // task waiting behind a saturated CPU looks like.
    futures_util::future::poll_fn(|cx| tower_service::Service::poll_ready(&mut service, cx))
        .await
        .unwrap();
    let waiting = tower_service::Service::call(&mut service, request(EXECUTE));
    assert_eq!(layer.in_flight(), 1);
    std::thread::sleep(Duration::from_millis(5));
    let refused = waiting.await.unwrap();
    assert_eq!(grpc_code(&refused), Some(Code::ResourceExhausted));
    assert_eq!(
        refused.headers().get("grpc-retry-pushback-ms").unwrap(),
        "250"
    );
    let status = tonic::Status::from_header_map(refused.headers()).unwrap();
    assert!(
        status.message().contains("limits.max_queue_delay_ms"),
        "{}",
        status.message()
    );
    assert_eq!(calls.load(Ordering::SeqCst), 0, "the handler never started");
    assert_eq!(layer.in_flight(), 0);
    assert_eq!(shed_count(&metrics, "queue_delay"), Some(1.0));

    // Polled at once, the same request is handled (and the probe, which saw the blocked
    // thread too, is told the runtime caught up).
    layer.set_scheduling_delay(Duration::ZERO);
    let admitted = service.clone().oneshot(request(EXECUTE)).await.unwrap();
    assert_eq!(grpc_code(&admitted), None);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_dropped_call_gives_its_place_back() {
    let metrics = Arc::new(Metrics::new());
    let config = ShedConfig::new(1).with_max_queue_delay(Some(Duration::from_secs(60)));
    let layer = ShedLayer::new(config, metrics);
    let (calls, inner) = counting();
    let mut service = layer.layer(inner);
    futures_util::future::poll_fn(|cx| tower_service::Service::poll_ready(&mut service, cx))
        .await
        .unwrap();
    let pending = tower_service::Service::call(&mut service, request(EXECUTE));
    assert_eq!(layer.in_flight(), 1);
    // The client went away before the handler started.
    drop(pending);
    assert_eq!(layer.in_flight(), 0);
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn while_the_runtime_lags_new_requests_are_refused_before_counting() {
    let metrics = Arc::new(Metrics::new());
    let layer = probing(metrics.clone());
    let (calls, inner) = counting();
    let service = layer.layer(inner);

    layer.set_scheduling_delay(Duration::from_millis(50));
    let refused = service.clone().oneshot(request(EXECUTE)).await.unwrap();
    assert_eq!(grpc_code(&refused), Some(Code::ResourceExhausted));
    assert_eq!(shed_count(&metrics, "queue_delay"), Some(1.0));
    assert_eq!(layer.in_flight(), 0);
    // Health checks still pass.
    let health = service
        .clone()
        .oneshot(request("/grpc.health.v1.Health/Check"))
        .await
        .unwrap();
    assert_eq!(grpc_code(&health), None);

    layer.set_scheduling_delay(Duration::from_millis(1));
    let admitted = service.clone().oneshot(request(EXECUTE)).await.unwrap();
    assert_eq!(grpc_code(&admitted), None);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "current_thread")]
async fn the_probe_measures_how_late_the_runtime_runs_it() {
    let layer = probing(Arc::new(Metrics::new()));
    // Let the probe start its first sleep, then hold the only worker thread for 40 ms: the
    // probe wakes at least 30 ms late.
    tokio::task::yield_now().await;
    std::thread::sleep(Duration::from_millis(40));
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while layer.scheduling_delay() < Duration::from_millis(30) {
        assert!(
            std::time::Instant::now() < deadline,
            "the probe never reported"
        );
        tokio::task::yield_now().await;
    }
    // Once the runtime keeps up again, the delay falls back.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while layer.scheduling_delay() >= Duration::from_millis(30) {
        assert!(std::time::Instant::now() < deadline, "the delay never fell");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

#[tokio::test(start_paused = true)]
async fn a_quiet_probe_parks_until_the_next_request_and_ends_with_the_layer() {
    let layer = probing(Arc::new(Metrics::new()));
    let (calls, inner) = counting();
    let service = layer.layer(inner);
    let tasks = || {
        tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks()
    };
    assert_eq!(tasks(), 1, "the probe runs");

    // Nothing in flight: the probe measures a second's worth of times, then parks. The clock
    // is paused, so these are the runtime's own times, not the machine's.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let parked_at = layer.probe_ticks();
    assert_eq!(parked_at, u64::from(QUIET_TICKS_BEFORE_PARKING));
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(layer.probe_ticks(), parked_at, "a parked probe never wakes");

    // A request wakes it, and it measures every 5 ms again, while the request is in flight
    // and for a second after it.
    // (Counts are within one: a measurement due at the very instant the test looks may come
    // just before or just after.)
    let response = service.clone().oneshot(request(EXECUTE)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let while_in_flight = layer.probe_ticks() - parked_at;
    assert!((19..=20).contains(&while_in_flight), "{while_in_flight}");
    drop(response);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    tokio::time::sleep(Duration::from_secs(60)).await;
    let parked_again = layer.probe_ticks();
    let quiet = u64::from(QUIET_TICKS_BEFORE_PARKING);
    assert!(
        (parked_at + while_in_flight + quiet..=parked_at + while_in_flight + quiet + 1)
            .contains(&parked_again),
        "parked again after a quiet second: {parked_again}"
    );
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(layer.probe_ticks(), parked_again);

    // Dropping the layer (and the service holding it) ends the parked probe.
    drop((service, layer));
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(tasks(), 0, "the probe ended with the layer");
}

#[tokio::test(start_paused = true)]
async fn while_requests_are_in_flight_the_probe_never_parks() {
    let layer = probing(Arc::new(Metrics::new()));
    let (_calls, inner) = counting();
    let service = layer.layer(inner);
    // The response body holds the request's place until it is dropped.
    let held = service.clone().oneshot(request(EXECUTE)).await.unwrap();
    assert_eq!(layer.in_flight(), 1);
    tokio::time::sleep(Duration::from_secs(10)).await;
    let ticks = layer.probe_ticks();
    assert!(
        (1_999..=2_000).contains(&ticks),
        "one measurement every 5 ms for 10 s: {ticks}"
    );
    drop(held);
}

#[tokio::test]
async fn the_probe_does_not_park_over_a_request_in_flight_and_a_request_unparks_it() {
    // No queue-delay check, so no probe task: its parking steps are driven by hand here.
    let layer = ShedLayer::new(ShedConfig::new(10), Arc::new(Metrics::new()));
    let (_calls, inner) = counting();
    let service = layer.layer(inner);
    let held = service.clone().oneshot(request(EXECUTE)).await.unwrap();
    assert!(
        !layer.park_probe(),
        "a request in flight keeps the probe measuring"
    );
    assert!(!layer.probe_parked());
    drop(held);
    assert!(layer.park_probe());
    assert!(layer.probe_parked());
    // The next admitted request takes the mark down (and wakes the probe).
    let _next = service.clone().oneshot(request(EXECUTE)).await.unwrap();
    assert!(!layer.probe_parked());
}

/// A request body the test sends frame by frame, as a client's body arrives after its headers.
type Streamed = http_body_util::channel::Channel<bytes::Bytes, std::io::Error>;

fn streamed(
    path: &str,
) -> (
    http_body_util::channel::Sender<bytes::Bytes, std::io::Error>,
    Request<Streamed>,
) {
    let (sender, body) = Streamed::new(4);
    let request = Request::builder()
        .uri(format!("http://localhost{path}"))
        .body(body)
        .unwrap();
    (sender, request)
}

/// An inner service over streamed bodies that answers `ok` without reading them.
fn answering() -> impl tower_service::Service<
    Request<Streamed>,
    Response = Response<String>,
    Error = Infallible,
    Future = impl Send,
> + Clone {
    service_fn(|_request: Request<Streamed>| async {
        Ok::<_, Infallible>(Response::new("ok".to_owned()))
    })
}

/// Lets other tasks run a while: enough for a woken task to finish.
async fn let_tasks_run() {
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
}

/// Awaits a spawned refusal: it ends only if the body's progress woke it (a guard against a
/// hang, not a timing assertion).
async fn answered<T>(refused: tokio::task::JoinHandle<T>) -> T {
    tokio::time::timeout(Duration::from_secs(30), refused)
        .await
        .expect("the refusal was never woken to answer")
        .unwrap()
}

#[tokio::test(flavor = "current_thread")]
async fn a_refusal_is_counted_at_once_and_answered_once_the_request_body_has_ended() {
    let metrics = Arc::new(Metrics::new());
    let layer = ShedLayer::new(ShedConfig::new(1), metrics.clone());
    let service = layer.layer(answering());
    let (_held_sender, held) = streamed(EXECUTE);
    let _held = service.clone().oneshot(held).await.unwrap();

    let (mut sender, request) = streamed(EXECUTE);
    let refused = tokio::spawn(service.clone().oneshot(request));
    let_tasks_run().await;
    assert!(
        !refused.is_finished(),
        "answered while the body was still on the way"
    );
    assert_eq!(
        shed_count(&metrics, "in_flight"),
        Some(1.0),
        "counted when decided"
    );
    assert_eq!(
        layer.in_flight(),
        1,
        "the refusal holds no slot while it reads"
    );

    sender
        .send_data(bytes::Bytes::from_static(b"{}"))
        .await
        .unwrap();
    let_tasks_run().await;
    assert!(!refused.is_finished(), "answered before the body ended");

    drop(sender); // the end of the body
    let response = answered(refused).await.unwrap();
    assert_eq!(grpc_code(&response), Some(Code::ResourceExhausted));
    assert_eq!(shed_count(&metrics, "in_flight"), Some(1.0), "counted once");
}

#[tokio::test(flavor = "current_thread")]
async fn a_refusal_reads_no_more_than_the_limit_and_stops_at_a_reset() {
    let metrics = Arc::new(Metrics::new());
    let layer = probing(metrics.clone());
    let service = layer.layer(answering());
    layer.set_scheduling_delay(Duration::from_millis(50));

    // A body larger than the limit, still open: answered once the limit was read.
    let (mut sender, request) = streamed(EXECUTE);
    let refused = tokio::spawn(service.clone().oneshot(request));
    let half = bytes::Bytes::from(vec![b' '; super::layer::DRAIN_LIMIT_BYTES / 2]);
    sender.send_data(half.clone()).await.unwrap();
    let_tasks_run().await;
    assert!(!refused.is_finished(), "answered before the limit was read");
    sender.send_data(half).await.unwrap();
    let response = answered(refused).await.unwrap();
    assert_eq!(grpc_code(&response), Some(Code::ResourceExhausted));
    drop(sender);

    // A client that resets its stream: nothing more will come, so the answer goes out.
    let (sender, request) = streamed(EXECUTE);
    let refused = tokio::spawn(service.clone().oneshot(request));
    let_tasks_run().await;
    assert!(!refused.is_finished());
    sender.abort(std::io::Error::other("stream reset by the client"));
    let response = answered(refused).await.unwrap();
    assert_eq!(grpc_code(&response), Some(Code::ResourceExhausted));
    assert_eq!(shed_count(&metrics, "queue_delay"), Some(2.0));
}

#[tokio::test(flavor = "current_thread")]
async fn a_request_refused_at_its_first_poll_reads_its_body_too() {
    let metrics = Arc::new(Metrics::new());
    let config = ShedConfig::new(10).with_max_queue_delay(Some(Duration::from_millis(1)));
    let layer = ShedLayer::new(config, metrics.clone());
    let mut service = layer.layer(answering());
    futures_util::future::poll_fn(|cx| tower_service::Service::poll_ready(&mut service, cx))
        .await
        .unwrap();
    let (sender, request) = streamed(EXECUTE);
    // Admitted by count, then not polled for longer than the allowed delay.
    let waiting = tower_service::Service::call(&mut service, request);
    std::thread::sleep(Duration::from_millis(5));
    let refused = tokio::spawn(waiting);
    let_tasks_run().await;
    assert!(
        !refused.is_finished(),
        "answered while the body was still on the way"
    );
    assert_eq!(shed_count(&metrics, "queue_delay"), Some(1.0));
    assert_eq!(
        layer.in_flight(),
        0,
        "its place was given back when it was refused"
    );

    drop(sender);
    let response = answered(refused).await.unwrap();
    assert_eq!(grpc_code(&response), Some(Code::ResourceExhausted));
}
