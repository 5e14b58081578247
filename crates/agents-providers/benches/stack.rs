//! What the resilience stack costs per call: every policy on (timeout, retry, quota, rate
//! limit, breaker, host guard) around an in-process scripted model that answers at once, so the
//! figure is the stack's own overhead. Target: under 5 µs at the median on the project's
//! 2-core machine.

// A benchmark that cannot set up should stop loudly.
#![allow(clippy::expect_used)]

use std::sync::Arc;

use agents_core::{CloudEvent, EventSink, GenerateRequest, Message, NullSink, Provider};
use agents_providers::testing::ScriptedProvider;
use agents_providers::{
    FallbackChain, GuardConfig, HostSample, PolicyConfig, RateConfig, ScriptedProbe, Stack,
};
use criterion::{Criterion, criterion_group, criterion_main};

fn stack_overhead(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let request = GenerateRequest::new(vec![
        Message::system("You review code."),
        Message::user("fn main() {}"),
    ]);

    let bare: Arc<dyn Provider> = ScriptedProvider::new("bare", []);
    c.bench_function("provider/bare", |b| {
        b.to_async(&runtime).iter(|| bare.generate(request.clone()))
    });

    let mut config = PolicyConfig::default();
    config.rate = RateConfig::default()
        .with_requests_per_minute(u32::MAX)
        .with_tokens_per_minute(u64::MAX / 4);
    config.guard = Some(GuardConfig::default());
    let probe = Arc::new(ScriptedProbe::new(
        HostSample::default().with_memory(32 << 30, 16 << 30),
    ));
    let stacked = runtime.block_on(async {
        Stack::new(ScriptedProvider::new("stacked", []))
            .host_probe(probe)
            .build(&config)
            .expect("valid config")
    });
    c.bench_function("provider/full_stack", |b| {
        b.to_async(&runtime)
            .iter(|| stacked.generate(request.clone()))
    });

    // The same stack with a sink that is on but drops everything: what building the three
    // `provider.*` events per call costs. With `NullSink` (above) `Observe` skips them; before
    // `EventSink::is_enabled` it built them for a `NullSink` too, so this is the old figure.
    let observed = runtime.block_on(async {
        Stack::new(ScriptedProvider::new("observed", []))
            .events(Arc::new(EnabledDiscard))
            .host_probe(Arc::new(ScriptedProbe::new(
                HostSample::default().with_memory(32 << 30, 16 << 30),
            )))
            .build(&config)
            .expect("valid config")
    });
    c.bench_function("provider/full_stack_events_on", |b| {
        b.to_async(&runtime)
            .iter(|| observed.generate(request.clone()))
    });

    let chain = FallbackChain::ordered("chain", vec![stacked.clone()], Arc::new(NullSink));
    c.bench_function("provider/full_stack_in_chain", |b| {
        b.to_async(&runtime)
            .iter(|| chain.generate(request.clone()))
    });
}

/// On, but keeps nothing: events are built and dropped.
#[derive(Debug)]
struct EnabledDiscard;

impl EventSink for EnabledDiscard {
    fn emit(&self, event: CloudEvent) {
        drop(event);
    }
}

criterion_group!(benches, stack_overhead);
criterion_main!(benches);
