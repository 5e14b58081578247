#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use agents_core::{AgentCompleted, CloudEvent, TaskQueued};
use chrono::{DateTime, TimeZone, Utc};

use super::writer::Clock;
use super::*;
use crate::{BusMetrics, EventBus, TypeFilter};

fn event(i: u64) -> CloudEvent {
    let mut done = AgentCompleted::default();
    done.latency_ms = i;
    CloudEvent::new("/agents/test", &done).with_id(format!("e{i}"))
}

/// A clock the test moves by hand.
fn manual_clock(start: DateTime<Utc>) -> (Clock, Arc<AtomicI64>) {
    let now = Arc::new(AtomicI64::new(start.timestamp()));
    let read = Arc::clone(&now);
    let clock: Clock = Arc::new(move || {
        Utc.timestamp_opt(read.load(Ordering::SeqCst), 0)
            .single()
            .unwrap_or_default()
    });
    (clock, now)
}

/// The audit files in `dir`: everything but the writer's lock file.
fn files(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name != lock::LOCK_FILE)
        .collect();
    names.sort();
    names
}

#[test]
fn rotates_at_midnight_utc_and_each_file_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let start = Utc.with_ymd_and_hms(2026, 5, 1, 23, 59, 0).unwrap();
    let (clock, now) = manual_clock(start);
    let metrics = Arc::new(BusMetrics::new());
    let config = AuditConfig::new(dir.path()).with_fsync(FsyncPolicy::Never);
    let log = AuditLog::open_with_clock(config, Arc::clone(&metrics), clock).unwrap();
    log.append(event(1)).unwrap();
    log.append(event(2)).unwrap();
    now.fetch_add(120, Ordering::SeqCst);
    log.append(event(3)).unwrap();
    assert_eq!(
        files(dir.path()),
        ["audit-2026-05-01.jsonl", "audit-2026-05-02.jsonl"]
    );
    for (name, lines) in [("audit-2026-05-01.jsonl", 2), ("audit-2026-05-02.jsonl", 1)] {
        let report = verify_audit_file(dir.path().join(name)).unwrap();
        assert!(report.is_intact(), "{name}: {report:?}");
        assert_eq!(report.verified_lines, lines);
    }
    let m = metrics.snapshot();
    assert_eq!(
        (m.audit_appended, m.audit_rotations, m.published),
        (3, 1, 3)
    );
}

#[test]
fn rotates_by_size_and_a_reopen_continues_the_newest_file() {
    let dir = tempfile::tempdir().unwrap();
    let (clock, _) = manual_clock(Utc.with_ymd_and_hms(2026, 5, 1, 12, 0, 0).unwrap());
    let config = AuditConfig::new(dir.path())
        .with_max_file_bytes(1500)
        .with_fsync(FsyncPolicy::EveryEvent);
    let metrics = Arc::new(BusMetrics::new());
    let log = AuditLog::open_with_clock(config.clone(), Arc::clone(&metrics), Arc::clone(&clock))
        .unwrap();
    for i in 0..10 {
        log.append(event(i)).unwrap();
    }
    let names = files(dir.path());
    assert!(names.len() >= 3, "{names:?}");
    assert_eq!(names[0], "audit-2026-05-01.1.jsonl");
    assert!(names.contains(&"audit-2026-05-01.jsonl".to_owned()));
    for name in &names {
        let path = dir.path().join(name);
        assert!(std::fs::metadata(&path).unwrap().len() <= 1500, "{name}");
        assert!(verify_audit_file(&path).unwrap().is_intact(), "{name}");
    }
    let last = log.current_file().unwrap();
    let before = verify_audit_file(&last).unwrap().verified_lines;
    log.close().unwrap();
    assert!(matches!(log.append(event(99)), Err(crate::Error::Closed)));
    drop(log);

    // Reopening continues the newest file's chain.
    let log = AuditLog::open_with_clock(config, metrics, clock).unwrap();
    assert_eq!(log.current_file().unwrap(), last);
    log.append(event(10)).unwrap();
    let report = verify_audit_file(&last).unwrap();
    assert!(report.is_intact());
    assert_eq!(report.verified_lines, before + 1);
    assert!(log.config().max_file_bytes == 1500);
}

#[test]
fn a_newest_file_with_a_foreign_last_line_is_not_continued() {
    let dir = tempfile::tempdir().unwrap();
    let (clock, _) = manual_clock(Utc.with_ymd_and_hms(2026, 5, 1, 12, 0, 0).unwrap());
    std::fs::write(
        dir.path().join("audit-2026-05-01.jsonl"),
        "{\"not\": \"ours\"}\n",
    )
    .unwrap();
    let config = AuditConfig::new(dir.path()).with_fsync(FsyncPolicy::Never);
    let log = AuditLog::open_with_clock(config, Arc::new(BusMetrics::new()), clock).unwrap();
    log.append(event(1)).unwrap();
    let current = log.current_file().unwrap();
    assert!(current.ends_with("audit-2026-05-01.1.jsonl"), "{current:?}");
    assert!(verify_audit_file(&current).unwrap().is_intact());
}

#[test]
fn yesterdays_file_is_left_alone_and_an_empty_file_is_continued() {
    let dir = tempfile::tempdir().unwrap();
    let (clock, _) = manual_clock(Utc.with_ymd_and_hms(2026, 5, 2, 0, 0, 1).unwrap());
    std::fs::write(dir.path().join("audit-2026-05-01.jsonl"), "").unwrap();
    let config = AuditConfig::new(dir.path()).with_fsync(FsyncPolicy::Never);
    let log = AuditLog::open_with_clock(
        config.clone(),
        Arc::new(BusMetrics::new()),
        Arc::clone(&clock),
    )
    .unwrap();
    assert!(
        log.current_file()
            .unwrap()
            .ends_with("audit-2026-05-02.jsonl")
    );
    drop(log);
    // Without daily rotation the newest file goes on, whatever its date.
    let log = AuditLog::open_with_clock(
        config.with_rotate_daily(false),
        Arc::new(BusMetrics::new()),
        clock,
    )
    .unwrap();
    log.append(event(1)).unwrap();
    assert!(
        log.current_file()
            .unwrap()
            .ends_with("audit-2026-05-02.jsonl")
    );
}

#[test]
fn forwarded_audit_lines_are_rechained() {
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(AuditConfig::new(dir.path()).with_fsync(FsyncPolicy::Never)).unwrap();
    let mut forwarded = event(1);
    forwarded
        .extensions
        .insert("chainhash".into(), serde_json::json!("00"));
    log.append(forwarded).unwrap();
    let path = log.current_file().unwrap();
    assert!(verify_audit_file(&path).unwrap().is_intact());
    let line = std::fs::read_to_string(&path).unwrap();
    assert_eq!(line.matches("chainhash").count(), 1);
    let parsed = CloudEvent::from_json(line.trim_end().as_bytes()).unwrap();
    assert_eq!(parsed.id, "e1");
}

#[test]
fn bad_config_and_unwritable_dir_are_errors() {
    let bad = AuditLog::open(AuditConfig::new(""));
    assert!(matches!(bad, Err(crate::Error::Config(_))));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let not_a_dir = AuditLog::open(AuditConfig::new(&file));
    assert!(
        matches!(not_a_dir, Err(crate::Error::Io { .. })),
        "{not_a_dir:?}"
    );
    let missing = verify_audit_file(dir.path().join("missing.jsonl"));
    assert!(matches!(missing, Err(crate::Error::Io { .. })));
}

#[test]
fn a_second_writer_on_one_directory_is_refused_until_the_first_lets_go() {
    let dir = tempfile::tempdir().unwrap();
    let config = AuditConfig::new(dir.path()).with_fsync(FsyncPolicy::Never);
    let first = AuditLog::open(config.clone()).unwrap();
    first.append(event(1)).unwrap();

    let second = AuditLog::open(config.clone());
    let Err(crate::Error::AuditDirInUse { dir: held }) = &second else {
        panic!("a second writer on one directory must be refused: {second:?}");
    };
    assert_eq!(held, dir.path());
    let message = second.unwrap_err().to_string();
    assert!(
        message.contains(&dir.path().display().to_string()) && message.contains("[bus.audit] dir"),
        "{message}"
    );
    // The refused open touched nothing: the first writer's chain goes on.
    first.append(event(2)).unwrap();
    let report = verify_audit_file(first.current_file().unwrap()).unwrap();
    assert!(
        report.is_intact() && report.verified_lines == 2,
        "{report:?}"
    );

    // Closing lets go of the directory, and so does dropping.
    first.close().unwrap();
    let reopened = AuditLog::open(config.clone()).unwrap();
    assert!(matches!(
        AuditLog::open(config.clone()),
        Err(crate::Error::AuditDirInUse { .. })
    ));
    drop(reopened);
    let last = AuditLog::open(config).unwrap();
    last.append(event(3)).unwrap();

    // The lock file is no audit file: the newest file was continued, not rotated past it.
    assert_eq!(files(dir.path()).len(), 1, "{:?}", files(dir.path()));
    assert!(dir.path().join(lock::LOCK_FILE).exists());
    let report = verify_audit_file(last.current_file().unwrap()).unwrap();
    assert!(
        report.is_intact() && report.verified_lines == 3,
        "{report:?}"
    );
}

#[test]
fn interval_fsync_thread_syncs_dirty_files() {
    let dir = tempfile::tempdir().unwrap();
    let config = AuditConfig::new(dir.path()).with_fsync(FsyncPolicy::Interval { interval_ms: 1 });
    let log = AuditLog::open(config).unwrap();
    log.append(event(1)).unwrap();
    // Poll the counter the thread bumps, with a deadline.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while log.metrics().snapshot().audit_fsyncs == 0 && std::time::Instant::now() < deadline {
        std::thread::yield_now();
    }
    assert!(log.metrics().snapshot().audit_fsyncs >= 1);
    log.sync().unwrap();
    log.close().unwrap();
    log.close().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn as_an_event_bus() {
    let dir = tempfile::tempdir().unwrap();
    for fsync in [FsyncPolicy::EveryEvent, FsyncPolicy::Never] {
        let config = AuditConfig::new(dir.path().join(format!("{fsync:?}"))).with_fsync(fsync);
        let log = AuditLog::open(config).unwrap();
        let bus: Arc<dyn EventBus> = Arc::new(log.clone());
        let mut queued = TaskQueued::default();
        queued.task_id = "password=hunter2".into();
        bus.publish(CloudEvent::new("/t", &queued)).await.unwrap();
        assert!(matches!(
            bus.subscribe(TypeFilter::all()).await,
            Err(crate::Error::Unsupported { .. })
        ));
        bus.shutdown().await.unwrap();
        let refused = bus.publish(CloudEvent::new("/t", &queued)).await;
        assert!(matches!(refused, Err(crate::Error::Closed)));
        let m = bus.metrics().snapshot();
        assert_eq!((m.published, m.publish_errors), (1, 1));
        let text = std::fs::read_to_string(log.current_file().unwrap()).unwrap();
        assert!(!text.contains("hunter2") && text.contains("task.queued"));
    }
}
