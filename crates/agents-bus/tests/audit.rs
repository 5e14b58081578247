//! The audit log on disk: a large file verifies, damage is found at the right line, a crash
//! mid-write is repaired on the next start.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::path::{Path, PathBuf};

use agents_bus::{AuditConfig, AuditLog, ChainProblem, FsyncPolicy, verify_audit_file};
use agents_core::{CloudEvent, ProviderSuccess};

const EVENTS: u64 = 100_000;

fn event(i: u64) -> CloudEvent {
    let mut success = ProviderSuccess::default();
    success.provider = "local".into();
    success.model = "qwen".into();
    success.latency_ms = i;
    CloudEvent::new("/providers/local", &success)
        .with_id(format!("event-{i}"))
        .with_subject(format!("req-{i}"))
}

fn config(dir: &Path) -> AuditConfig {
    AuditConfig::new(dir)
        .with_max_file_bytes(0)
        .with_rotate_daily(false)
        .with_fsync(FsyncPolicy::Interval { interval_ms: 100 })
}

fn write_events(dir: &Path, n: u64) -> PathBuf {
    let log = AuditLog::open(config(dir)).unwrap();
    for i in 0..n {
        log.append(event(i)).unwrap();
    }
    log.close().unwrap();
    log.current_file().unwrap()
}

/// Byte offset of the start of `line` (from 1).
fn line_start(bytes: &[u8], line: u64) -> usize {
    if line == 1 {
        return 0;
    }
    bytes
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .nth(line as usize - 2)
        .map(|(at, _)| at + 1)
        .unwrap()
}

#[test]
fn a_hundred_thousand_events_verify_and_a_flipped_byte_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_events(dir.path(), EVENTS);
    let report = verify_audit_file(&path).unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.verified_lines, EVENTS);
    assert_eq!(report.last_hash.as_ref().map(String::len), Some(64));

    // Every line is a CloudEvent, in order.
    let text = std::fs::read_to_string(&path).unwrap();
    for (i, line) in text.lines().enumerate().step_by(9_973) {
        let parsed = CloudEvent::from_json(line.as_bytes()).unwrap();
        assert_eq!(parsed.id, format!("event-{i}"));
        assert!(parsed.extensions.contains_key("chainhash"));
    }

    // Flip one byte of a line: the report names that line.
    let original = std::fs::read(&path).unwrap();
    // Flipping the opening brace makes the line no audit line at all.
    let cases = [
        (54_321u64, 40usize, ChainProblem::HashMismatch),
        (7, 0, ChainProblem::MissingHash),
        (EVENTS, 9, ChainProblem::HashMismatch),
    ];
    for (line, offset_in_line, problem) in cases {
        let mut bytes = original.clone();
        let at = line_start(&bytes, line) + offset_in_line;
        bytes[at] ^= 0x01;
        std::fs::write(&path, &bytes).unwrap();
        let report = verify_audit_file(&path).unwrap();
        let broken = report.broken.map(|b| (b.line, b.problem));
        assert_eq!(broken, Some((line, problem)), "{report:?}");
        assert_eq!(report.verified_lines, line - 1);
    }
    // A hash digit changed names its own line too.
    let mut bytes = original.clone();
    let end_of_line_3 = line_start(&bytes, 4) - 1;
    bytes[end_of_line_3 - 3] = if bytes[end_of_line_3 - 3] == b'0' {
        b'1'
    } else {
        b'0'
    };
    std::fs::write(&path, &bytes).unwrap();
    let broken = verify_audit_file(&path).unwrap().broken.unwrap();
    assert_eq!(broken.line, 3);
    assert!(broken.to_string().starts_with("line 3: "), "{broken}");

    // Removing a line breaks the chain at the line after it.
    let mut bytes = original.clone();
    bytes.drain(line_start(&original, 100)..line_start(&original, 101));
    std::fs::write(&path, &bytes).unwrap();
    let broken = verify_audit_file(&path).unwrap().broken.unwrap();
    assert_eq!(
        (broken.line, broken.problem),
        (100, ChainProblem::HashMismatch)
    );
}

#[test]
fn a_line_torn_by_a_crash_is_repaired_on_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_events(dir.path(), 1_000);
    let whole = std::fs::read(&path).unwrap();

    // Cut the file in the middle of the last line, as kill -9 during a write would.
    let last_start = line_start(&whole, 1_000);
    let cut = last_start + (whole.len() - last_start) / 2;
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(cut as u64)
        .unwrap();
    let report = verify_audit_file(&path).unwrap();
    let broken = report.broken.map(|b| (b.line, b.problem));
    assert_eq!(broken, Some((1_000, ChainProblem::TornLine)));

    // Restart: the torn line goes, the chain continues, every earlier line is intact.
    let log = AuditLog::open(config(dir.path())).unwrap();
    assert_eq!(log.current_file().unwrap(), path);
    assert_eq!(log.metrics().snapshot().audit_repaired, 1);
    assert_eq!(std::fs::read(&path).unwrap(), whole[..last_start]);
    log.append(event(5_000)).unwrap();
    log.close().unwrap();
    let report = verify_audit_file(&path).unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.verified_lines, 1_000);
}

#[test]
fn garbage_lines_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_events(dir.path(), 3);
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    writeln!(file, "{{\"specversion\":\"1.0\"}}").unwrap();
    let broken = verify_audit_file(&path).unwrap().broken.unwrap();
    assert_eq!(
        (broken.line, broken.problem),
        (4, ChainProblem::MissingHash)
    );

    let long = dir.path().join("long.jsonl");
    std::fs::write(&long, vec![b'x'; 2 * 1024 * 1024]).unwrap();
    let broken = verify_audit_file(&long).unwrap().broken.unwrap();
    assert_eq!((broken.line, broken.problem), (1, ChainProblem::TooLong));
    let empty = dir.path().join("empty.jsonl");
    std::fs::write(&empty, "").unwrap();
    let report = verify_audit_file(&empty).unwrap();
    assert!(report.is_intact() && report.last_hash.is_none());
}
