//! Load shedding at the server's front door (`agents_server::shed`), end to end: with
//! `limits.max_in_flight` calls held at a slow model, further calls are refused with
//! RESOURCE_EXHAUSTED and a retry hint (their small bodies read, nothing decoded), without
//! reaching the model; the admitted calls succeed; health checks still answer; nothing panics;
//! and once the held calls end, the server serves again and the refusals are counted in
//! `agents_load_shed_total{reason="in_flight"}`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use agents_fake_model::{Behavior, FakeModel};
use agents_server::pb::{self, agent_service_client::AgentServiceClient};
use tonic::Code;
use tonic_types::StatusExt as _;

static PANICS: AtomicUsize = AtomicUsize::new(0);

const CAP: usize = 4;
const EXTRA: usize = 12;

fn execute() -> pb::ExecuteRequest {
    pb::ExecuteRequest {
        agent_id: "code-analysis".into(),
        input_json: serde_json::json!({
            "source_code": "pub fn id<T>(x: T) -> T { x }",
            "language": "rust",
            "allow_degraded": false,
        })
        .to_string(),
        request_id: String::new(),
    }
}

/// Waits until `condition` holds, failing after 30 s (a condition, not a sleep).
async fn until(what: &str, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_past_the_cap_are_refused_at_once_and_the_admitted_ones_succeed() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICS.fetch_add(1, Ordering::SeqCst);
        previous(info);
    }));

    let fake = FakeModel::start().await.unwrap();
    // The first CAP calls are held at the model; whatever comes later is answered at once.
    for _ in 0..CAP {
        fake.push(Behavior::Delay {
            delay: Duration::from_secs(3),
            then: Box::new(Behavior::Answer),
        });
    }
    let audit = tempfile::tempdir().unwrap();
    // The queue-delay check is off: it depends on how busy the machine is (unit-tested).
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nmetrics_listen = \"127.0.0.1:0\"\n\
         [limits]\nmax_in_flight = {CAP}\nmax_queue_delay_ms = 0\nshed_retry_after_ms = 250\n\
         [bus.audit]\ndir = \"{}\"\n\
         [[providers]]\nopenai = {{ id = \"fake\", base_url = \"{}\", model = \"fake-model\" }}\n\
         policies = {{ retry = {{ max_retries = 0 }}, timeout = {{ request_timeout_ms = 60000 }} }}\n",
        audit.path().display(),
        fake.base_url()
    );
    let (running, client) = support::serve_config(&text).await;

    let held: Vec<_> = (0..CAP)
        .map(|_| {
            let mut client = client.clone();
            tokio::spawn(async move { client.execute(execute()).await })
        })
        .collect();
    until("the held calls to reach the model", || {
        fake.answering() == CAP
    })
    .await;

    // Over the cap, on the same connection and on a new one.
    let other = AgentServiceClient::connect(format!("http://{}", running.addr))
        .await
        .unwrap();
    let extra: Vec<_> = (0..EXTRA)
        .map(|i| {
            let mut client = if i % 2 == 0 {
                client.clone()
            } else {
                other.clone()
            };
            tokio::spawn(async move { client.execute(execute()).await })
        })
        .collect();
    let mut refused = 0;
    for call in extra {
        match call.await.unwrap() {
            Err(status) => {
                assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
                assert!(
                    status.message().contains("limits.max_in_flight"),
                    "{status:?}"
                );
                assert_eq!(
                    status.get_details_retry_info().unwrap().retry_delay,
                    Some(Duration::from_millis(250))
                );
                assert_eq!(
                    status
                        .metadata()
                        .get("grpc-retry-pushback-ms")
                        .map(|v| v.to_str().unwrap()),
                    Some("250")
                );
                refused += 1;
            }
            // Only possible if a held call already ended (a very slow machine): then it was
            // admitted and must have succeeded.
            Ok(response) => assert!(response.into_inner().output_json.contains("suggestions")),
        }
    }
    assert!(refused > 0, "nothing was refused past the cap");
    let chats = fake
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/chat/completions"))
        .count();
    assert_eq!(
        chats,
        CAP + (EXTRA - refused),
        "a refused call reached the model"
    );

    // Health checks are not starved by the cap.
    let channel = support::channel(running.addr).await;
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let check = tonic_health::pb::HealthCheckRequest {
        service: "agents.v1.AgentService".into(),
    };
    assert_eq!(
        health.check(check).await.unwrap().into_inner().status(),
        tonic_health::pb::health_check_response::ServingStatus::Serving
    );

    for call in held {
        let response = call.await.unwrap().unwrap().into_inner();
        assert!(response.output_json.contains("suggestions"));
        assert!(!response.metadata.unwrap().degraded);
    }

    // The server keeps serving once the held calls are done.
    let mut client = client;
    let again = client.execute(execute()).await.unwrap().into_inner();
    assert!(again.output_json.contains("suggestions"));

    let metrics = support::metrics_text(running.metrics_addr.unwrap()).await;
    let shed = metrics
        .lines()
        .find_map(|l| l.strip_prefix("agents_load_shed_total{reason=\"in_flight\"} "))
        .map(|v| v.trim().parse::<f64>().unwrap());
    assert_eq!(shed, Some(refused as f64), "{metrics}");

    running.shutdown().await.unwrap();
    assert_eq!(PANICS.load(Ordering::SeqCst), 0, "something panicked");
}
