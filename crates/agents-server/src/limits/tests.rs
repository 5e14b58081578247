#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use tonic::{Code, Status};
use tonic_types::StatusExt;

use super::*;

fn limits(max_in_flight: usize, tenant_max_concurrent: usize) -> LimitsConfig {
    LimitsConfig {
        max_in_flight,
        tenant_max_concurrent,
        ..LimitsConfig::default()
    }
}

fn rated(per_minute: u32, burst_seconds: f64) -> LimitsConfig {
    LimitsConfig {
        tenant_requests_per_minute: Some(per_minute),
        tenant_burst_seconds: burst_seconds,
        ..LimitsConfig::default()
    }
}

#[test]
fn n_calls_are_admitted_then_the_next_is_refused_at_once() {
    let limiter = Limiter::new(limits(3, 10));
    let held: Vec<Admission> = ["a", "b", "a"]
        .iter()
        .map(|t| limiter.admit(t).unwrap())
        .collect();
    assert_eq!(limiter.in_flight(), 3);
    let refusal = limiter.admit("c").unwrap_err();
    assert_eq!(refusal, Refusal::Global { limit: 3 });
    assert_eq!(refusal.limit_name(), "global_in_flight");
    assert_eq!(refusal.retry_after(), None);
    let status = refusal.to_status();
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert!(
        status.message().contains("limits.max_in_flight"),
        "{}",
        status.message()
    );
    assert!(status.message().contains("retry with backoff"));
    assert!(status.get_details_retry_info().is_none());
    // A refusal at the global cap takes no tenant slot and tracks no new tenant.
    assert_eq!(limiter.tenant_in_flight("c"), 0);
    assert_eq!(limiter.tracked_tenants(), 2);
    assert_eq!(held.len(), 3);
}

#[test]
fn dropping_an_admission_frees_its_slots() {
    let limiter = Limiter::new(limits(2, 2));
    let first = limiter.admit("a").unwrap();
    let second = limiter.admit("a").unwrap();
    assert!(limiter.admit("a").is_err());
    assert_eq!(first.tenant(), "a");
    drop(first);
    assert_eq!(limiter.in_flight(), 1);
    assert_eq!(limiter.tenant_in_flight("a"), 1);
    let third = limiter.admit("a").unwrap();
    assert_eq!(limiter.in_flight(), 2);
    drop((second, third));
    assert_eq!(limiter.in_flight(), 0);
    assert_eq!(limiter.tenant_in_flight("a"), 0);
    // Clones share the counters.
    let clone = limiter.clone();
    let held = clone.admit("b").unwrap();
    assert_eq!(limiter.in_flight(), 1);
    assert!(format!("{limiter:?}").contains("in_flight: 1"));
    assert!(format!("{held:?}").contains("\"b\""));
}

#[tokio::test]
async fn an_admission_lives_as_long_as_the_task_that_owns_it() {
    fn assert_send_sync_static<T: Send + Sync + 'static>() {}
    assert_send_sync_static::<Admission>();
    assert_send_sync_static::<Limiter>();
    let limiter = Limiter::new(limits(1, 1));
    let admission = limiter.admit("a").unwrap();
    let (release, released) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let _admission = admission;
        released.await.ok();
    });
    assert!(limiter.admit("a").is_err());
    release.send(()).unwrap();
    task.await.unwrap();
    assert_eq!(limiter.in_flight(), 0);
    drop(limiter.admit("a").unwrap());
}

#[test]
fn tenant_concurrency_is_independent_between_tenants() {
    let limiter = Limiter::new(limits(100, 2));
    let a1 = limiter.admit("acme").unwrap();
    let _a2 = limiter.admit("acme").unwrap();
    let refusal = limiter.admit("acme").unwrap_err();
    assert_eq!(
        refusal,
        Refusal::TenantConcurrency {
            limit: 2,
            tenants_full: false
        }
    );
    assert_eq!(refusal.limit_name(), "tenant_concurrency");
    let status = Status::from(refusal);
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert!(status.message().contains("limits.tenant_max_concurrent"));
    // The refused call gave its global slot back.
    assert_eq!(limiter.in_flight(), 2);
    // Another tenant is not affected.
    let _g1 = limiter.admit("globex").unwrap();
    let _g2 = limiter.admit("globex").unwrap();
    assert!(limiter.admit("globex").is_err());
    assert_eq!(limiter.tenant_in_flight("acme"), 2);
    assert_eq!(limiter.tenant_in_flight("globex"), 2);
    drop(a1);
    let _a3 = limiter.admit("acme").unwrap();
}

#[tokio::test(start_paused = true)]
async fn tenant_rate_refuses_with_retry_info_and_refills() {
    // 60 a minute is one a second; a two-second burst holds two.
    let limiter = Limiter::new(rated(60, 2.0));
    drop(limiter.admit("acme").unwrap());
    drop(limiter.admit("acme").unwrap());
    let refusal = limiter.admit("acme").unwrap_err();
    assert_eq!(
        refusal,
        Refusal::TenantRate {
            retry_after: Duration::from_secs(1)
        }
    );
    assert_eq!(refusal.limit_name(), "tenant_rate");
    let status = refusal.to_status();
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert!(
        status
            .message()
            .contains("limits.tenant_requests_per_minute")
    );
    let retry = status.get_details_retry_info().unwrap();
    assert_eq!(retry.retry_delay, Some(Duration::from_secs(1)));
    // A refused call holds nothing.
    assert_eq!(limiter.in_flight(), 0);
    assert_eq!(limiter.tenant_in_flight("acme"), 0);
    // Another tenant has its own bucket.
    drop(limiter.admit("globex").unwrap());

    tokio::time::advance(Duration::from_millis(500)).await;
    let refusal = limiter.admit("acme").unwrap_err();
    assert_eq!(refusal.retry_after(), Some(Duration::from_millis(500)));
    tokio::time::advance(Duration::from_millis(500)).await;
    drop(limiter.admit("acme").unwrap());
    assert!(limiter.admit("acme").is_err());
}

#[tokio::test(start_paused = true)]
async fn a_slow_rate_still_admits_one_call() {
    // One a minute with a ten-second burst would be a sixth of a call: the bucket holds one.
    let limiter = Limiter::new(rated(1, 10.0));
    drop(limiter.admit("acme").unwrap());
    let refusal = limiter.admit("acme").unwrap_err();
    assert_eq!(refusal.retry_after(), Some(Duration::from_secs(60)));
    tokio::time::advance(Duration::from_secs(60)).await;
    drop(limiter.admit("acme").unwrap());
}

#[test]
fn rate_refusals_do_not_spend_concurrency_and_concurrency_refusals_do_not_spend_tokens() {
    let config = LimitsConfig {
        tenant_max_concurrent: 1,
        ..rated(60, 2.0)
    };
    let limiter = Limiter::new(config);
    let held = limiter.admit("acme").unwrap();
    for _ in 0..5 {
        assert!(matches!(
            limiter.admit("acme"),
            Err(Refusal::TenantConcurrency { .. })
        ));
    }
    drop(held);
    // The bucket held two: one spent, the refusals spent none.
    drop(limiter.admit("acme").unwrap());
}

#[test]
fn the_tenant_table_is_bounded() {
    let config = LimitsConfig {
        max_tenants: 2,
        ..limits(100, 10)
    };
    let limiter = Limiter::new(config);
    let a = limiter.admit("a").unwrap();
    let _b = limiter.admit("b").unwrap();
    let refusal = limiter.admit("c").unwrap_err();
    assert_eq!(
        refusal,
        Refusal::TenantConcurrency {
            limit: 2,
            tenants_full: true
        }
    );
    assert_eq!(refusal.limit_name(), "tenant_table_full");
    assert!(refusal.to_status().message().contains("limits.max_tenants"));
    assert_eq!(limiter.tracked_tenants(), 2);
    assert_eq!(limiter.in_flight(), 2);
    // Tracked tenants still get in.
    drop(limiter.admit("a").unwrap());
    // Once `a` is idle it can be forgotten to make room.
    drop(a);
    let _c = limiter.admit("c").unwrap();
    assert_eq!(limiter.tracked_tenants(), 2);
    assert_eq!(limiter.tenant_in_flight("a"), 0);
}

#[tokio::test(start_paused = true)]
async fn a_tenant_whose_bucket_is_refilling_is_not_forgotten() {
    let config = LimitsConfig {
        max_tenants: 1,
        ..rated(60, 1.0)
    };
    let limiter = Limiter::new(config);
    drop(limiter.admit("a").unwrap());
    // `a` has no call in flight but has spent its token: forgetting it would reset its rate.
    assert!(matches!(
        limiter.admit("b"),
        Err(Refusal::TenantConcurrency {
            tenants_full: true,
            ..
        })
    ));
    assert!(matches!(
        limiter.admit("a"),
        Err(Refusal::TenantRate { .. })
    ));
    tokio::time::advance(Duration::from_secs(1)).await;
    drop(limiter.admit("b").unwrap());
    assert_eq!(limiter.tracked_tenants(), 1);
}

#[test]
fn ten_thousand_refusals_keep_no_state() {
    let limiter = Limiter::new(LimitsConfig {
        max_tenants: 8,
        ..limits(4, 2)
    });
    let held: Vec<Admission> = ["a", "a", "b", "b"]
        .iter()
        .map(|t| limiter.admit(t).unwrap())
        .collect();
    let mut refused = 0;
    for i in 0..10_000 {
        // Known and unknown tenants alike are refused at the global cap first.
        let tenant = ["a", "b", "new"][i % 3];
        if limiter.admit(tenant).is_err() {
            refused += 1;
        }
        assert_eq!(limiter.in_flight(), 4);
    }
    assert_eq!(refused, 10_000);
    assert_eq!(limiter.tracked_tenants(), 2);
    drop(held);
    assert_eq!(limiter.in_flight(), 0);
    // And at a tenant's cap.
    let limiter = Limiter::new(limits(100, 2));
    let _held = [limiter.admit("a").unwrap(), limiter.admit("a").unwrap()];
    for _ in 0..10_000 {
        assert!(limiter.admit("a").is_err());
    }
    assert_eq!(limiter.in_flight(), 2);
    assert_eq!(limiter.tracked_tenants(), 1);
}

#[test]
fn concurrent_callers_never_exceed_the_caps() {
    const CAP: usize = 8;
    const THREADS: usize = 8;
    const CALLS: usize = 2_000;
    let limiter = Limiter::new(limits(CAP, 3));
    let admitted = Arc::new(AtomicUsize::new(0));
    let refused = Arc::new(AtomicUsize::new(0));
    let barrier = Arc::new(Barrier::new(THREADS));
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let (limiter, admitted, refused, barrier) = (
                limiter.clone(),
                Arc::clone(&admitted),
                Arc::clone(&refused),
                Arc::clone(&barrier),
            );
            std::thread::spawn(move || {
                barrier.wait();
                let tenant = ["a", "b", "c", "d"][t % 4];
                for _ in 0..CALLS {
                    match limiter.admit(tenant) {
                        Ok(admission) => {
                            admitted.fetch_add(1, Ordering::Relaxed);
                            assert!(limiter.in_flight() <= CAP);
                            assert!(limiter.tenant_in_flight(tenant) <= 3);
                            drop(admission);
                        }
                        Err(_) => {
                            refused.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let (admitted, refused) = (
        admitted.load(Ordering::Relaxed),
        refused.load(Ordering::Relaxed),
    );
    assert_eq!(admitted + refused, THREADS * CALLS);
    assert!(admitted > 0);
    assert_eq!(limiter.in_flight(), 0);
    assert!(limiter.tracked_tenants() <= 4);
}

#[test]
fn validation_names_every_bad_setting() {
    assert!(LimitsConfig::default().validate().is_empty());
    let config = LimitsConfig {
        max_in_flight: 0,
        max_queue_delay_ms: 60_001,
        shed_retry_after_ms: 0,
        tenant_max_concurrent: 0,
        tenant_requests_per_minute: Some(0),
        tenant_burst_seconds: f64::NAN,
        max_tenants: 0,
    };
    let paths: Vec<String> = config.validate().into_iter().map(|e| e.path).collect();
    assert_eq!(
        paths,
        [
            "limits.max_in_flight",
            "limits.max_queue_delay_ms",
            "limits.shed_retry_after_ms",
            "limits.tenant_max_concurrent",
            "limits.tenant_requests_per_minute",
            "limits.tenant_burst_seconds",
            "limits.max_tenants",
        ]
    );
    for burst in [0.0, -1.0, f64::INFINITY, 1e9] {
        let config = LimitsConfig {
            tenant_burst_seconds: burst,
            ..LimitsConfig::default()
        };
        assert_eq!(config.validate().len(), 1, "{burst}");
    }
}

#[test]
fn the_section_parses_from_toml_with_defaults_and_refuses_unknown_keys() {
    let config: LimitsConfig =
        toml::from_str("max_in_flight = 64\ntenant_requests_per_minute = 600").unwrap();
    assert_eq!(config.max_in_flight, 64);
    assert_eq!(config.tenant_requests_per_minute, Some(600));
    assert_eq!(config.tenant_max_concurrent, 32);
    assert_eq!(config.tenant_burst_seconds, 10.0);
    assert_eq!(config.max_tenants, 10_000);
    assert_eq!(
        toml::from_str::<LimitsConfig>("").unwrap(),
        LimitsConfig::default()
    );
    assert!(toml::from_str::<LimitsConfig>("max_inflight = 3").is_err());
}
