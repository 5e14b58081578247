//! The load tool's arithmetic: the schedule, the percentiles, the overhead and the error report.

// A failing test should stop loudly: unwrap and panic are how tests say so.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use agents_bench::schedule::Schedule;
use agents_bench::stats::{
    CLIENT_BACKPRESSURE, ERROR_SAMPLE_CHARS, Micros, Outcome, Recorder, RunInfo, client_overhead,
    gateway_overhead, server_overhead,
};
use agents_bench::target::status_detail;

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

#[test]
fn schedule_spaces_requests_evenly_from_t0() {
    let s = Schedule::new(3000.0, secs(1.0), secs(2.0)).unwrap();
    assert_eq!(s.offset(0), Duration::ZERO);
    // 1/3000 s, to the nanosecond.
    let third = s.offset(1).as_nanos();
    assert!((333_333..=333_334).contains(&third), "{third}");
    assert_eq!(s.offset(3000), secs(1.0));
    assert_eq!(s.offset(9000), secs(3.0));
    // The schedule never depends on answers: offsets are a pure function of i.
    assert_eq!(s.offset(4500), s.offset(4500));
}

#[test]
fn schedule_counts_warmup_and_measured_requests() {
    let s = Schedule::new(100.0, secs(2.0), secs(10.0)).unwrap();
    assert_eq!(s.total(), 1200);
    assert_eq!(s.warmup_count(), 200);
    assert!(!s.is_measured(199));
    assert!(s.is_measured(200));
    assert!(s.is_measured(1199));

    // A window that is not a whole number of intervals includes the partial one.
    let s = Schedule::new(3.0, Duration::ZERO, secs(1.1)).unwrap();
    assert_eq!(s.total(), 4); // due at 0, 1/3, 2/3, 1
    let s = Schedule::new(0.5, Duration::ZERO, secs(3.0)).unwrap();
    assert_eq!(s.total(), 2); // due at 0 and 2

    // No warm-up: everything is measured.
    let s = Schedule::new(10.0, Duration::ZERO, secs(1.0)).unwrap();
    assert_eq!(s.warmup_count(), 0);
    assert!(s.is_measured(0));
}

#[test]
fn schedule_refuses_nonsense() {
    assert!(Schedule::new(0.0, Duration::ZERO, secs(1.0)).is_err());
    assert!(Schedule::new(-5.0, Duration::ZERO, secs(1.0)).is_err());
    assert!(Schedule::new(f64::NAN, Duration::ZERO, secs(1.0)).is_err());
    assert!(Schedule::new(f64::INFINITY, Duration::ZERO, secs(1.0)).is_err());
    assert!(Schedule::new(10.0, secs(1.0), Duration::ZERO).is_err());
}

#[test]
fn percentiles_of_a_known_distribution() {
    let mut h = Micros::new().unwrap();
    // 1..=1000 microseconds, once each.
    for us in 1..=1000 {
        h.record(Duration::from_micros(us));
    }
    let p = h.summary();
    assert_eq!(p.count, 1000);
    assert_eq!(p.p50_us, 500);
    assert_eq!(p.p90_us, 900);
    assert_eq!(p.p99_us, 990);
    assert_eq!(p.p999_us, 999);
    assert_eq!(p.max_us, 1000);
    assert!((p.mean_us - 500.5).abs() < 1.0, "{}", p.mean_us);
}

#[test]
fn percentiles_keep_three_significant_figures_and_the_tail() {
    let mut h = Micros::new().unwrap();
    for _ in 0..999 {
        h.record(Duration::from_micros(250));
    }
    h.record(Duration::from_millis(2_500));
    let p = h.summary();
    assert_eq!(p.p50_us, 250);
    assert_eq!(p.p99_us, 250);
    // The one slow request is the max, within 0.1 %.
    assert!(p.max_us.abs_diff(2_500_000) <= 2_500, "{}", p.max_us);
    assert!(p.p999_us <= 250 || p.p999_us.abs_diff(2_500_000) <= 2_500);
}

#[test]
fn empty_and_out_of_range_values_do_not_fail() {
    let h = Micros::new().unwrap();
    assert_eq!(h.summary().count, 0);
    assert_eq!(h.summary().p99_us, 0);
    let mut h = Micros::new().unwrap();
    h.record(Duration::ZERO);
    h.record(Duration::from_secs(3600));
    let p = h.summary();
    assert_eq!(p.count, 2);
    assert!(p.max_us >= 59_000_000, "clamped to a minute: {}", p.max_us);
}

#[test]
fn server_overhead_is_total_minus_provider_time() {
    assert_eq!(
        server_overhead(1_250, 1_000),
        Some(Duration::from_micros(250))
    );
    // Clocks are read at different places: never negative.
    assert_eq!(server_overhead(900, 1_000), Some(Duration::ZERO));
    // A server that does not report microseconds reports nothing.
    assert_eq!(server_overhead(0, 0), None);
}

#[test]
fn gateway_overhead_is_total_minus_the_upstream_exchange() {
    assert_eq!(
        gateway_overhead(1_250, 900),
        Some(Duration::from_micros(350))
    );
    assert_eq!(gateway_overhead(900, 1_000), Some(Duration::ZERO));
    // No upstream figure (older server, degraded answer): nothing, not the whole total.
    assert_eq!(gateway_overhead(1_250, 0), None);
    assert_eq!(gateway_overhead(0, 0), None);
}

#[test]
fn client_overhead_is_latency_minus_upstream_latency() {
    assert_eq!(
        client_overhead(Duration::from_micros(50_700), Duration::from_millis(50)),
        Duration::from_micros(700)
    );
    assert_eq!(
        client_overhead(Duration::from_millis(49), Duration::from_millis(50)),
        Duration::ZERO
    );
    assert_eq!(
        client_overhead(Duration::from_micros(300), Duration::ZERO),
        Duration::from_micros(300)
    );
}

#[test]
fn recorder_counts_outcomes_and_reports_them() {
    let mut r = Recorder::new().unwrap();
    let upstream = Duration::from_millis(50);
    for _ in 0..98 {
        r.record(
            &Outcome::Ok {
                server_overhead: Some(Duration::from_micros(200)),
                gateway_overhead: Some(Duration::from_micros(300)),
            },
            Duration::from_micros(50_600),
            upstream,
        );
    }
    r.record(
        &Outcome::error("RESOURCE_EXHAUSTED"),
        Duration::from_micros(300),
        upstream,
    );
    r.error(CLIENT_BACKPRESSURE);
    let report = r.report(
        RunInfo {
            target: "grpc".into(),
            label: "agents".into(),
            rate: 10.0,
            duration_s: 10.0,
            ..RunInfo::default()
        },
        100,
    );
    assert_eq!(report.sent, 100);
    assert_eq!(report.ok, 98);
    assert_eq!(report.errors_total, 2);
    assert_eq!(report.errors["RESOURCE_EXHAUSTED"], 1);
    assert_eq!(report.errors[CLIENT_BACKPRESSURE], 1);
    assert!((report.ok_per_second - 9.8).abs() < 1e-9);
    // Failed requests do not pollute the latency of the admitted ones.
    assert_eq!(report.latency.count, 98);
    assert!(report.latency.p50_us.abs_diff(50_600) <= 50);
    assert!(report.client_overhead.p99_us.abs_diff(600) <= 1);
    assert_eq!(report.server_overhead.p99_us, 200);
    assert_eq!(report.gateway_overhead.p99_us, 300);

    let json: serde_json::Value = serde_json::to_value(&report).unwrap();
    assert_eq!(json["errors"]["RESOURCE_EXHAUSTED"], 1);
    assert_eq!(json["server_overhead"]["p99_us"], 200);
    assert_eq!(json["gateway_overhead"]["p50_us"], 300);
    assert_eq!(json["info"]["label"], "agents");

    let table = report.table();
    assert!(table.contains("server overhead"), "{table}");
    assert!(table.contains("gateway overhead"), "{table}");
    assert!(table.contains("error RESOURCE_EXHAUSTED: 1"), "{table}");
    // Nothing was said about the failures, so there are no samples to report.
    assert!(report.error_samples.is_empty());
    assert!(json.get("error_samples").is_none(), "{json}");
    assert!(!table.contains("e.g."), "{table}");
}

#[test]
fn a_few_distinct_messages_are_kept_per_error_code() {
    let mut r = Recorder::new().unwrap();
    let none = Duration::ZERO;
    let said = [
        "transport error: connection reset by peer",
        "transport error: connection reset by peer",
        "stream refused: h2 protocol error: REFUSED_STREAM",
        "  ",
        "transport error: broken pipe",
        "a fourth distinct message",
    ];
    for detail in said {
        r.record(&Outcome::failed("UNAVAILABLE", detail), none, none);
    }
    r.record(&Outcome::failed("http_500", &"é".repeat(400)), none, none);
    r.record(
        &Outcome::failed("http_502", "<html>\n<body>bad gateway</body>\r\n</html>\n"),
        none,
        none,
    );
    r.record(&Outcome::error(CLIENT_BACKPRESSURE), none, none);
    let report = r.report(RunInfo::default(), 9);

    assert_eq!(report.errors["UNAVAILABLE"], 6, "every failure counts");
    assert_eq!(
        report.error_samples["UNAVAILABLE"],
        [
            "transport error: connection reset by peer",
            "stream refused: h2 protocol error: REFUSED_STREAM",
            "transport error: broken pipe",
        ],
        "the first three distinct messages, blank ones left out"
    );
    let long = &report.error_samples["http_500"][0];
    assert_eq!(
        long.chars().count(),
        ERROR_SAMPLE_CHARS + 1,
        "cut, with an ellipsis"
    );
    assert!(long.ends_with('…'), "{long}");
    assert_eq!(
        report.error_samples["http_502"],
        ["<html> <body>bad gateway</body>  </html>"],
        "one line: line breaks become spaces"
    );
    assert!(!report.error_samples.contains_key(CLIENT_BACKPRESSURE));

    let json: serde_json::Value = serde_json::to_value(&report).unwrap();
    assert_eq!(
        json["error_samples"]["UNAVAILABLE"][1],
        "stream refused: h2 protocol error: REFUSED_STREAM"
    );
    let table = report.table();
    assert!(
        table.contains(
            "  error UNAVAILABLE: 6\n    e.g. transport error: connection reset by peer\n"
        ),
        "{table}"
    );
}

#[test]
fn an_error_chain_reads_as_one_line_without_repeats() {
    let reset = std::io::Error::new(
        std::io::ErrorKind::ConnectionReset,
        "connection reset by peer",
    );
    let mut status = tonic::Status::unavailable("transport error");
    status.set_source(std::sync::Arc::new(reset));
    assert_eq!(
        status_detail(&status),
        "transport error: connection reset by peer"
    );

    // tonic's own conversion copies the cause's text into the message: said once.
    let wrapped = tonic::Status::from_error(Box::new(std::io::Error::other("broken pipe")));
    assert_eq!(status_detail(&wrapped), "broken pipe");
    assert_eq!(
        status_detail(&tonic::Status::resource_exhausted("busy")),
        "busy"
    );
}
