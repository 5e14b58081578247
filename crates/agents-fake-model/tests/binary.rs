//! The `agents-fake-model` binary serves canned answers on the address it prints.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{Value, json};

/// Far above what starting the binary needs: reaching it means it is stuck.
const DEADLINE: Duration = Duration::from_secs(30);

/// Kills the child however the test ends.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(args: &[&str]) -> (Killed, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_agents-fake-model"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let child = Killed(child);
    let (lines, line) = mpsc::channel();
    std::thread::spawn(move || {
        let mut first = String::new();
        let _ = BufReader::new(stdout).read_line(&mut first);
        let _ = lines.send(first);
    });
    let first = line
        .recv_timeout(DEADLINE)
        .expect("the binary prints its address");
    let url = first
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .to_owned();
    (child, url)
}

#[tokio::test]
async fn the_binary_prints_its_url_and_answers() {
    let (mut child, url) = start(&["--addr", "127.0.0.1:0", "--latency-ms", "1"]);
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    assert!(url.ends_with("/v1"), "{url}");
    assert!(!url.ends_with(":0/v1"), "the real port is printed: {url}");

    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(DEADLINE)
        .build()
        .unwrap();
    let request = json!({
        "model": "bench",
        "messages": [{"role": "user", "content": "hi"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "documentation", "schema": {}}}
    });
    let response = client
        .post(format!("{url}/chat/completions"))
        .json(&request)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let json: Value = response.json().await.unwrap();
    let content: Value =
        serde_json::from_str(json["choices"][0]["message"]["content"].as_str().unwrap()).unwrap();
    assert_eq!(content, agents_fake_model::canned_answer("documentation"));

    child.0.kill().unwrap();
    child.0.wait().unwrap();
}
