//! Drives a target at a constant arrival rate.
//!
//! A dedicated OS thread keeps the schedule: it sleeps until each request is due (to the tens
//! of microseconds, where tokio's timer rounds up to whole milliseconds, which would add up to a
//! millisecond to a sub-millisecond measurement) and hands the request to the tokio runtime. It
//! never waits for an answer. When `max_in_flight` requests are already waiting, the request is
//! counted as [`CLIENT_BACKPRESSURE`] and skipped, so the schedule of the others does not slip.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::schedule::Schedule;
use crate::stats::{CLIENT_BACKPRESSURE, Recorder, UNFINISHED};
use crate::target::Target;

/// How a run goes.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// When requests are due.
    pub schedule: Schedule,
    /// Requests waiting for an answer at most; beyond, requests are refused in the tool.
    pub max_in_flight: usize,
    /// The upstream's fixed latency, subtracted for the client-side overhead.
    pub upstream_latency: Duration,
    /// How long to wait, after the last request is sent, for the ones still in flight.
    pub drain_timeout: Duration,
}

/// What a run measured.
#[derive(Debug)]
pub struct RunResult {
    /// Everything recorded in the measured window.
    pub recorder: Recorder,
    /// Measured requests that fell due.
    pub sent: u64,
}

struct Shared {
    recorder: Mutex<Recorder>,
    in_flight: AtomicUsize,
    closed: AtomicBool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Recorder> {
        // A panic while holding the lock leaves counts that are still counts.
        self.recorder
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Runs `target` on the current tokio runtime as `config` says.
pub async fn run(target: Arc<Target>, config: RunConfig) -> anyhow::Result<RunResult> {
    let shared = Arc::new(Shared {
        recorder: Mutex::new(Recorder::new()?),
        in_flight: AtomicUsize::new(0),
        closed: AtomicBool::new(false),
    });
    let runtime = tokio::runtime::Handle::current();
    let (finished, scheduled) = tokio::sync::oneshot::channel::<()>();
    let schedule = config.schedule;
    let thread_shared = shared.clone();
    let cap = config.max_in_flight.max(1);
    let upstream = config.upstream_latency;
    let scheduler = std::thread::Builder::new()
        .name("agents-load-scheduler".into())
        .spawn(move || {
            let shared = thread_shared;
            // A short lead so that the first requests are not already late.
            let t0 = Instant::now() + Duration::from_millis(20);
            for i in 0..schedule.total() {
                let due = t0 + schedule.offset(i);
                let now = Instant::now();
                if due > now {
                    std::thread::sleep(due - now);
                }
                let measured = schedule.is_measured(i);
                if shared.in_flight.load(Ordering::Acquire) >= cap {
                    if measured {
                        shared.lock().error(CLIENT_BACKPRESSURE);
                    }
                    continue;
                }
                shared.in_flight.fetch_add(1, Ordering::AcqRel);
                let sent = Instant::now();
                let target = target.clone();
                let shared = shared.clone();
                runtime.spawn(async move {
                    let outcome = target.call(i).await;
                    let latency = due.elapsed();
                    if measured && !shared.closed.load(Ordering::Acquire) {
                        let mut recorder = shared.lock();
                        if !shared.closed.load(Ordering::Acquire) {
                            recorder
                                .send_lag
                                .record(sent.saturating_duration_since(due));
                            recorder.record(&outcome, latency, upstream);
                        }
                    }
                    shared.in_flight.fetch_sub(1, Ordering::AcqRel);
                });
            }
            let _ = finished.send(());
        })?;
    // The sender is dropped without sending only if the thread died, which `join` reports.
    let _ = scheduled.await;
    if scheduler.join().is_err() {
        anyhow::bail!("the scheduler thread failed");
    }
    let deadline = Instant::now() + config.drain_timeout;
    while shared.in_flight.load(Ordering::Acquire) > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut recorder = {
        let recorder = shared.lock();
        shared.closed.store(true, Ordering::Release);
        recorder.clone()
    };
    let unfinished = shared.in_flight.load(Ordering::Acquire);
    if unfinished > 0 {
        *recorder.errors.entry(UNFINISHED.into()).or_default() += unfinished as u64;
    }
    let sent = schedule.total() - schedule.warmup_count();
    Ok(RunResult { recorder, sent })
}
