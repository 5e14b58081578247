//! `agents-server call` end to end: the real command line (this package's
//! `agents-server-e2e`, built from the same `cli` module) against a server on the fake model, in
//! text, `--json` and `--stream` modes, and the exit codes of its failures.

// A failing test should stop loudly: unwrap and panic are how tests say so.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::{Command, Output};

use agents_fake_model::{Behavior, FakeModel};
use agents_server::config;
use agents_server::serve::{self, Running};

const SOURCE: &str = "pub fn clamp(values: &[i32]) -> Vec<i32> {\n    let mut out = Vec::new();\n    for v in values {\n        out.push((*v).clamp(0, 10));\n    }\n    out\n}\n";

async fn server(fake: &FakeModel, audit: &Path) -> Running {
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nmetrics_listen = \"127.0.0.1:0\"\n\
         [bus.audit]\ndir = \"{}\"\n\
         [[providers]]\nopenai = {{ id = \"fake\", base_url = \"{}\", model = \"fake-model\" }}\n\
         policies = {{ retry = {{ max_retries = 0 }} }}\n",
        audit.display(),
        fake.base_url()
    );
    serve::start(config::parse(&text, Vec::new()).unwrap())
        .await
        .unwrap()
}

/// Runs `agents-server call <args>` off the runtime's threads (the server runs on them). The
/// binary is this package's copy of the command line, which cargo builds before the tests.
async fn call(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_agents-server-e2e"))
            .arg("call")
            .args(args)
            .env_remove("AGENTS_API_KEY")
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

fn args(running: &Running, rest: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = rest.iter().map(|a| (*a).to_owned()).collect();
    args.extend(["--addr".into(), format!("http://{}", running.addr)]);
    args
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_an_agent_in_text_json_and_stream_modes() {
    let fake = FakeModel::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let running = server(&fake, &dir.path().join("audit")).await;
    let file = dir.path().join("clamp.rs");
    std::fs::write(&file, SOURCE).unwrap();
    let file = file.display().to_string();

    let output = call(args(&running, &["code-analysis", "--file", &file])).await;
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(stdout.contains("Suggestions (2):"), "{stdout}");
    assert!(
        stdout.contains("line    3  medium   maintainability/improvement: Extract"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Complexity: cyclomatic 2, cognitive 1"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Security: risk none, 0 vulnerabilities"),
        "{stdout}"
    );
    assert!(stdout.contains("algorithmic complexity O(n)"), "{stdout}");
    assert!(stderr.contains("fake (fake-model)"), "{stderr}");
    // The language came from the extension.
    let sent = fake.requests().last().unwrap().body.to_string();
    assert!(sent.contains("rust") || sent.contains("Rust"), "{sent}");

    let output = call(args(
        &running,
        &["code-analysis", "--file", &file, "--json"],
    ))
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let document: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        document["output"]["suggestions"].as_array().unwrap().len(),
        2
    );
    assert_eq!(document["metadata"]["provider"], "fake");
    assert_eq!(document["metadata"]["agent_id"], "code-analysis");
    assert_eq!(document["metadata"]["trace_id"].as_str().unwrap().len(), 32);

    let output = call(args(
        &running,
        &["code-analysis", "--file", &file, "--stream"],
    ))
    .await;
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("progress: agent.started"), "{stderr}");
    assert!(stderr.contains("progress: agent.completed"), "{stderr}");
    assert!(
        !stderr.contains('\u{1b}') && !stdout.contains('\u{1b}'),
        "no escape codes in a pipe"
    );
    assert!(stdout.contains("Suggestions (2):"), "{stdout}");

    let output = call(args(
        &running,
        &[
            "test-generation",
            "--file",
            &file,
            "--input",
            "framework=\"cargo-test\"",
        ],
    ))
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert!(text(&output.stdout).contains("def test_add_returns_the_sum():"));
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_print_the_code_and_exit_with_its_own_status() {
    let fake = FakeModel::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let running = server(&fake, &dir.path().join("audit")).await;
    let file = dir.path().join("clamp.rs");
    std::fs::write(&file, SOURCE).unwrap();
    let file = file.display().to_string();

    // The server refuses the language: INVALID_ARGUMENT, with the JSON path.
    let output = call(args(
        &running,
        &["code-analysis", "--file", &file, "--language", "cobol"],
    ))
    .await;
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(13), "{stderr}");
    assert!(stderr.contains("error: INVALID_ARGUMENT:"), "{stderr}");
    assert!(stderr.contains("at /language:"), "{stderr}");
    assert!(output.stdout.is_empty());

    // The same through the stream.
    let output = call(args(
        &running,
        &[
            "code-analysis",
            "--file",
            &file,
            "--language",
            "cobol",
            "--stream",
        ],
    ))
    .await;
    assert_eq!(output.status.code(), Some(13), "{}", text(&output.stderr));

    // A model that never answers: --timeout passes, DEADLINE_EXCEEDED (14), in both modes. The
    // client's own timer used to report it as CANCELLED (11); a stream was not bounded at all.
    fake.set_default(Behavior::Hang);
    for stream in [false, true] {
        let mut rest = vec!["code-analysis", "--file", &file, "--timeout", "500ms"];
        if stream {
            rest.push("--stream");
        }
        let output = call(args(&running, &rest)).await;
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(14), "stream {stream}: {stderr}");
        assert!(stderr.contains("raise --timeout"), "{stderr}");
    }
    fake.set_default(Behavior::Answer);

    // No such agent.
    let output = call(args(&running, &["summarize", "--file", &file])).await;
    assert_eq!(output.status.code(), Some(15), "{}", text(&output.stderr));

    // A language the extension does not tell: a local error, nothing sent.
    let notes = dir.path().join("notes.txt");
    std::fs::write(&notes, "hello").unwrap();
    let before = fake.request_count();
    let output = call(args(
        &running,
        &["code-analysis", "--file", &notes.display().to_string()],
    ))
    .await;
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("pass --language"), "{stderr}");
    assert_eq!(fake.request_count(), before);

    // Nobody at the address: UNAVAILABLE.
    let addr = running.addr;
    running.shutdown().await.unwrap();
    let output = call(vec![
        "code-analysis".into(),
        "--file".into(),
        file.clone(),
        "--addr".into(),
        format!("http://{addr}"),
    ])
    .await;
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(24), "{stderr}");
    assert!(
        stderr.contains("error: UNAVAILABLE: cannot connect to"),
        "{stderr}"
    );
}
