//! The `agents-server` command line, run as a user runs it: the built binary.

// A failing test should stop loudly: unwrap and panic are how tests say so.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn agents_server(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_agents-server"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn lists_the_agents() {
    let output = agents_server(&["agents"], None);
    assert!(output.status.success());
    let text = stdout(&output);
    for id in ["code-analysis", "documentation", "test-generation"] {
        assert!(text.contains(id), "{text}");
    }

    let output = agents_server(&["agents", "--json"], None);
    assert!(output.status.success());
    let listing: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let listing = listing.as_array().unwrap();
    assert_eq!(listing.len(), 3);
    for agent in listing {
        assert_eq!(agent["input_schema"]["type"], "object");
        assert_eq!(agent["output_schema"]["type"], "object");
        assert_eq!(agent["capability"], agent["id"]);
    }
}

#[test]
fn prints_each_schema_kind() {
    for (kind, title) in [
        ("input", "TestGenerationInput"),
        ("output", "TestGenerationOutput"),
        ("reply", "TestGenerationReply"),
    ] {
        let output = agents_server(&["schema", "test-generation", "--kind", kind], None);
        assert!(output.status.success(), "{kind}");
        let schema: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(schema["title"], title);
    }
}

#[test]
fn validates_input_files_and_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let valid = dir.path().join("valid.json");
    std::fs::write(
        &valid,
        r#"{"source_code": "fn f<T>() {}", "language": "rust", "focus": ["security"]}"#,
    )
    .unwrap();
    let output = agents_server(
        &["validate", "code-analysis", valid.to_str().unwrap()],
        None,
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(stdout(&output).trim(), "valid: code-analysis input");

    let invalid =
        r#"{"source_code": "x", "language": "cobol", "detail_level": "huge", "surprise": 1}"#;
    let output = agents_server(&["validate", "documentation", "-"], Some(invalid));
    assert_eq!(output.status.code(), Some(1));
    let text = stdout(&output);
    assert!(
        text.contains("invalid: /language: value must be one of:"),
        "{text}"
    );
    assert!(text.contains("invalid: /detail_level:"), "{text}");
    assert!(text.contains("invalid: /surprise:"), "{text}");

    let output = agents_server(&["validate", "documentation", "-"], Some("{not json"));
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stdout(&output).starts_with("invalid: not JSON (line 1, column 2)"),
        "{}",
        stdout(&output)
    );
}

#[test]
fn errors_say_what_to_do() {
    let output = agents_server(&["validate", "no-such-agent", "-"], Some("{}"));
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no agent `no-such-agent`; the agents are: code-analysis, documentation, test-generation"), "{stderr}");

    let output = agents_server(
        &["validate", "code-analysis", "/nonexistent/input.json"],
        None,
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("cannot read /nonexistent/input.json")
    );

    let output = agents_server(&["frobnicate"], None);
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn writes_and_checks_schema_files() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("schemas");
    let target = target.to_str().unwrap();

    let output = agents_server(&["schemas", target, "--check"], None);
    assert_eq!(
        output.status.code(),
        Some(1),
        "an empty directory has drifted"
    );
    assert!(stdout(&output).contains("drift: agents/code-analysis.input.json"));

    let output = agents_server(&["schemas", target], None);
    assert!(output.status.success());
    assert!(stdout(&output).contains("events/task.dead_lettered.json"));

    let output = agents_server(&["schemas", target, "--check"], None);
    assert!(output.status.success(), "{}", stdout(&output));

    let file = dir.path().join("schemas/events/agent.started.json");
    std::fs::write(&file, "{}").unwrap();
    let output = agents_server(&["schemas", target, "--check"], None);
    assert_eq!(output.status.code(), Some(1));
    assert!(stdout(&output).contains("drift: events/agent.started.json"));
}

#[test]
fn the_committed_schemas_are_current() {
    let committed = concat!(env!("CARGO_MANIFEST_DIR"), "/../../schemas");
    let output = agents_server(&["schemas", committed, "--check"], None);
    assert!(output.status.success(), "{}", stdout(&output));
}

#[test]
fn check_config_accepts_the_defaults_and_lists_every_error() {
    let output = agents_server(&["check-config"], None);
    assert!(output.status.success(), "{}", stdout(&output));
    assert!(stdout(&output).starts_with("ok: listens on 127.0.0.1:50051, providers: local"));

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(
        &file,
        "[server]\nmax_message_bytes = 1\nshutdown_grace_ms = 0\n",
    )
    .unwrap();
    let output = agents_server(&["check-config", file.to_str().unwrap()], None);
    assert_eq!(output.status.code(), Some(1));
    let text = stdout(&output);
    assert!(
        text.contains("error: invalid configuration at `server.max_message_bytes`"),
        "{text}"
    );
    assert!(
        text.contains("error: invalid configuration at `server.shutdown_grace_ms`"),
        "{text}"
    );

    std::fs::write(&file, "[server]\nlisten = \"127.0.0.1:1\"\ntypo = 1\n").unwrap();
    let output = agents_server(&["serve", "--config", file.to_str().unwrap()], None);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("unknown field `typo`"));
}

/// The command the `[auth]` docs and errors point to: it exists, and `echo "$KEY" |` hashes the
/// key without its newline (the digest `sha256sum` would give hashes the newline too).
#[test]
fn auth_hash_key_prints_the_digest_of_the_key_on_stdin() {
    let digest = agents_server::auth::digest_hex("exec-key-a-0123456789");
    for input in [
        "exec-key-a-0123456789",
        "exec-key-a-0123456789\n",
        "exec-key-a-0123456789\r\n",
    ] {
        let output = agents_server(&["auth", "hash-key"], Some(input));
        assert!(output.status.success(), "{output:?}");
        assert_eq!(stdout(&output), format!("{digest}\n"));
    }
    let empty = agents_server(&["auth", "hash-key"], Some("\n"));
    assert_eq!(empty.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&empty.stderr).contains("no key on stdin"));
}

/// `config defaults` prints what `serve` runs with, as a config file that checks.
#[test]
fn config_defaults_prints_a_file_that_checks() {
    let output = agents_server(&["config", "defaults"], None);
    assert!(output.status.success(), "{output:?}");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("agents.toml");
    std::fs::write(&file, &output.stdout).unwrap();
    let checked = agents_server(&["check-config", file.to_str().unwrap()], None);
    assert!(checked.status.success(), "{}", stdout(&checked));
    assert!(stdout(&output).contains("[bus.audit]"));
}

#[test]
fn serve_starts_on_the_embedded_defaults_and_stops_on_sigterm() {
    let audit = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_agents-server"))
        .arg("serve")
        .env("AGENTS_SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .env("AGENTS_BUS__AUDIT__DIR", audit.path())
        .env("AGENTS_SERVER__METRICS_LISTEN", "127.0.0.1:0")
        .env(
            "AGENTS_PROVIDERS__0__OPENAI__BASE_URL",
            "http://127.0.0.1:9/v1",
        )
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "the server did not listen"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the server exited early"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "a SIGTERM is a clean shutdown");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("listening on 127.0.0.1:{port}")),
        "{stderr}"
    );
    assert!(
        stderr.contains("no configured provider answers"),
        "the start-up says no model answers: {stderr}"
    );
    assert!(stderr.contains("shutting down"), "{stderr}");
}

#[test]
fn audit_verify_reports_intact_and_broken_files() {
    let dir = tempfile::tempdir().unwrap();
    let config = agents_bus::AuditConfig::new(dir.path());
    let log = agents_bus::AuditLog::open(config).unwrap();
    for _ in 0..3 {
        let payload = agents_core::AgentStarted::default();
        log.append(agents_core::CloudEvent::new("/test", &payload))
            .unwrap();
    }
    let file = log.current_file().unwrap();
    log.close().unwrap();
    let output = agents_server(&["audit", "verify", file.to_str().unwrap()], None);
    assert!(output.status.success(), "{}", stdout(&output));
    assert!(stdout(&output).starts_with("intact: 3 events, last hash "));

    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text.replacen("agent.started", "agent.stopped", 2)).unwrap();
    let output = agents_server(&["audit", "verify", file.to_str().unwrap()], None);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stdout(&output).starts_with("broken at line 1: its hash does not match"),
        "{}",
        stdout(&output)
    );

    let output = agents_server(&["audit", "verify", "/nonexistent/audit.jsonl"], None);
    assert_eq!(output.status.code(), Some(2));
}
