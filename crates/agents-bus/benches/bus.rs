//! Throughput of the two hot paths: an in-process publish fanned out to 4 subscribers, and an
//! audit-log append with interval fsync. Criterion reports events per second (`thrpt`).
//!
//! `cargo bench -p agents-bus --bench bus`

// A benchmark that cannot set up should stop loudly.
#![allow(clippy::expect_used)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use agents_bus::{
    AuditConfig, AuditLog, EventBus, FsyncPolicy, InProcessBus, InProcessConfig, TypeFilter,
};
use agents_core::{CloudEvent, ProviderSuccess};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};

/// A typical provider event: a few short strings and numbers, a trace context.
fn event() -> CloudEvent {
    let mut success = ProviderSuccess::default();
    success.provider = "local-mlx".into();
    success.model = "qwen2.5-coder-7b".into();
    success.latency_ms = 1_234;
    CloudEvent::new("/providers/local-mlx", &success)
        .with_subject("req-7f3a")
        .with_trace(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            None,
        )
}

fn in_process(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let bus =
        InProcessBus::new(InProcessConfig::default().with_subscriber_buffer(4096)).expect("bus");
    // Four subscribers, each drained by its own task, as handlers would.
    for _ in 0..4 {
        let mut subscription = bus.subscribe_now(TypeFilter::all()).expect("subscribe");
        runtime.spawn(async move { while subscription.recv().await.is_some() {} });
    }
    let mut group = c.benchmark_group("in_process");
    group.throughput(Throughput::Elements(1));
    let template = event();
    group.bench_function("publish_to_4_subscribers", |b| {
        b.iter_batched(
            || template.clone(),
            |event| black_box(bus.publish_now(event)),
            BatchSize::SmallInput,
        );
    });
    group.bench_function("publish_to_4_subscribers_async", |b| {
        b.to_async(&runtime).iter_batched(
            || template.clone(),
            |event| {
                let bus = bus.clone();
                async move { black_box(bus.publish(event).await) }
            },
            BatchSize::SmallInput,
        );
    });
    // For context: the share of a publish spent redacting the event at the edge.
    group.bench_function("redact_event_only", |b| {
        b.iter_batched(
            || template.clone(),
            |mut event| {
                let redactor = agents_core::Redactor::global();
                redactor.redact_json(&mut event.data);
                black_box(event)
            },
            BatchSize::SmallInput,
        );
    });
    group.finish();
    let m = bus.metrics().snapshot();
    println!(
        "in_process: published {} delivered {} lagged {}",
        m.published, m.delivered, m.lagged
    );
    bus.close();
}

fn audit(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let config =
        AuditConfig::new(dir.path()).with_fsync(FsyncPolicy::Interval { interval_ms: 1000 });
    let log = Arc::new(AuditLog::open(config).expect("audit log"));
    let mut group = c.benchmark_group("audit");
    group.throughput(Throughput::Elements(1));
    let template = event();
    group.bench_function("append_interval_fsync", |b| {
        b.iter_batched(
            || template.clone(),
            |event| black_box(log.append(event)),
            BatchSize::SmallInput,
        );
    });
    group.finish();
    let m = log.metrics().snapshot();
    println!(
        "audit: appended {} fsyncs {} rotations {}",
        m.audit_appended, m.audit_fsyncs, m.audit_rotations
    );
    let _ = log.close();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = in_process, audit
}
criterion_main!(benches);
