//! Integration tests against the real `@modelcontextprotocol/server-everything` over stdio.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use agents_core::{
    GenerateRequest, McpServerConnected, MemorySink, Message, Provider, ProviderError,
    ProviderHealth,
};

use super::{McpConfig, McpProvider, McpTransport};

const INSTALLED_AT: &str =
    "/work/main/.peers/node/node_modules/@modelcontextprotocol/server-everything/dist/index.js";

/// The server's `dist/index.js`, or `None` (with a loud SKIPPED line) when it is not installed.
/// With `AGENTS_REQUIRE_PEERS=1` a missing server fails the test instead.
fn everything_server() -> Option<String> {
    let path = std::env::var("AGENTS_MCP_EVERYTHING").unwrap_or_else(|_| INSTALLED_AT.into());
    if Path::new(&path).is_file() {
        return Some(path);
    }
    let hint = format!(
        "server-everything not found at {path}: run `bash scripts/peers.sh` (or \
         `npm install @modelcontextprotocol/server-everything`) and set AGENTS_MCP_EVERYTHING"
    );
    assert!(
        std::env::var("AGENTS_REQUIRE_PEERS").as_deref() != Ok("1"),
        "{hint}"
    );
    // Straight to stderr: libtest captures `eprintln!` of passing tests, and a skip must show.
    let _ = writeln!(std::io::stderr(), "SKIPPED: {hint}");
    None
}

/// `echo` configured as the generation tool, with short backoffs.
fn echo_config(server: &str) -> McpConfig {
    let mut config = McpConfig::new(
        "everything",
        McpTransport::Stdio {
            command: "node".into(),
            args: vec![server.into(), "stdio".into()],
            env: Default::default(),
        },
    );
    config.tool = "echo".into();
    config.arguments.prompt_argument = "message".into();
    config.arguments.pass_generation_options = false;
    config.call_timeout_ms = 20_000;
    config.reconnect.initial_backoff_ms = 50;
    config.reconnect.max_backoff_ms = 200;
    config
}

fn ask(text: &str) -> GenerateRequest {
    GenerateRequest::new(vec![Message::system("Be brief."), Message::user(text)])
}

fn connected_events(sink: &MemorySink) -> Vec<McpServerConnected> {
    sink.events()
        .iter()
        .filter_map(|e| e.payload::<McpServerConnected>().ok())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connects_lists_tools_and_generates_through_echo() {
    let Some(server) = everything_server() else {
        return;
    };
    let sink = MemorySink::new();
    let provider = McpProvider::connect(echo_config(&server), Arc::new(sink.clone()))
        .await
        .unwrap();
    let connected = connected_events(&sink);
    assert_eq!(connected.len(), 1);
    assert_eq!(connected[0].server, "everything");
    assert_eq!(connected[0].transport, "stdio");
    for tool in ["echo", "get-sum", "trigger-long-running-operation"] {
        assert!(
            connected[0].tools.iter().any(|t| t == tool),
            "{connected:?}"
        );
    }
    assert_eq!(sink.events()[0].source, "/providers/everything/mcp");
    assert_eq!(provider.health().await, ProviderHealth::Healthy);

    let reply = provider.generate(ask("hello there")).await.unwrap();
    assert!(
        reply.text.starts_with("Echo: System:\nBe brief."),
        "{}",
        reply.text
    );
    assert!(reply.text.contains("User:\nhello there"), "{}", reply.text);
    assert_eq!(reply.provider_id, "everything");
    assert_eq!(reply.model, "echo");
    // The tool call's round trip is measured, inside the provider's whole time.
    let upstream = reply.upstream_latency.unwrap();
    assert!(
        upstream <= reply.latency,
        "{upstream:?} > {:?}",
        reply.latency
    );
    assert!(reply.usage.prompt_tokens > 0 && reply.usage.completion_tokens > 0);

    let pid = provider.server_pid().expect("a stdio child has a pid");
    drop(provider);
    let give_up = Instant::now() + Duration::from_secs(10);
    while is_running(pid) {
        assert!(
            Instant::now() < give_up,
            "server {pid} outlived its provider"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Whether `pid` is a live process (a zombie waiting to be reaped counts as gone).
fn is_running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit(") ")
            .next()
            .is_some_and(|s| !s.starts_with('Z'))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_tool_is_named_with_the_ones_on_offer() {
    let Some(server) = everything_server() else {
        return;
    };
    let mut config = echo_config(&server);
    config.tool = "text-generation".into();
    let sink = MemorySink::new();
    let error = McpProvider::connect(config, Arc::new(sink.clone()))
        .await
        .unwrap_err();
    let text = error.to_string();
    assert!(matches!(error, ProviderError::BadRequest { .. }), "{text}");
    assert!(text.contains("no tool `text-generation`"), "{text}");
    assert!(text.contains("echo") && text.contains("get-sum"), "{text}");
    assert!(sink.events().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tool_error_is_unsupported_so_the_chain_moves_on() {
    let Some(server) = everything_server() else {
        return;
    };
    // get-sum wants numbers `a` and `b`, not a prompt.
    let mut config = echo_config(&server);
    config.tool = "get-sum".into();
    let provider = McpProvider::connect(config, Arc::new(MemorySink::new()))
        .await
        .unwrap();
    let error = provider.generate(ask("1 + 2")).await.unwrap_err();
    assert!(
        matches!(error, ProviderError::Unsupported { .. }),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .contains("tool `get-sum` reported an error"),
        "{error}"
    );
    // A rejected call is not a lost connection.
    assert_eq!(provider.health().await, ProviderHealth::Healthy);

    // Ahead of a provider that can answer, the chain moves on to it.
    let mut echo = echo_config(&server);
    echo.id = "echo".into();
    let echo = McpProvider::connect(echo, Arc::new(MemorySink::new()))
        .await
        .unwrap();
    let providers: Vec<Arc<dyn Provider>> = vec![Arc::new(provider), Arc::new(echo)];
    let chain = crate::FallbackChain::new(
        &crate::ChainConfig::new("chain", ["everything", "echo"]),
        &providers,
        Arc::new(MemorySink::new()),
    )
    .unwrap();
    let answer = chain.generate(ask("1 + 2")).await.unwrap();
    assert_eq!(answer.provider_id, "echo");
    assert_eq!(answer.failed_attempts.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_is_reported_then_spawned_again_after_the_backoff() {
    let Some(server) = everything_server() else {
        return;
    };
    let sink = MemorySink::new();
    let provider = McpProvider::connect(echo_config(&server), Arc::new(sink.clone()))
        .await
        .unwrap();
    provider.generate(ask("before")).await.unwrap();
    let pid = provider.server_pid().expect("a stdio child has a pid");
    let killed = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());

    let error = provider.generate(ask("during")).await.unwrap_err();
    assert!(
        matches!(error, ProviderError::Unavailable { .. }),
        "{error:?}"
    );
    assert_eq!(
        sink.types(),
        ["mcp.server_connected", "mcp.server_disconnected"]
    );

    // Waiting out the backoff: calls fail fast with Unavailable until one reconnects.
    let give_up = Instant::now() + Duration::from_secs(30);
    let reply = loop {
        match provider.generate(ask("after")).await {
            Ok(reply) => break reply,
            Err(ProviderError::Unavailable { reason, .. }) if Instant::now() < give_up => {
                assert!(reason.contains("reconnect attempt in"), "{reason}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(other) => panic!("expected a reconnect, got {other:?}"),
        }
    };
    assert!(reply.text.contains("after"), "{}", reply.text);
    assert_eq!(
        sink.types(),
        [
            "mcp.server_connected",
            "mcp.server_disconnected",
            "mcp.server_connected"
        ]
    );
    assert_ne!(provider.server_pid(), Some(pid));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadline_shorter_than_the_tool_is_a_timeout() {
    let Some(server) = everything_server() else {
        return;
    };
    // The operation runs 10 s by default; the prompt argument is ignored by its schema.
    let mut config = echo_config(&server);
    config.tool = "trigger-long-running-operation".into();
    let provider = McpProvider::connect(config, Arc::new(MemorySink::new()))
        .await
        .unwrap();
    let request = ask("wait").with_deadline(Some(Instant::now() + Duration::from_millis(300)));
    let error = provider.generate(request).await.unwrap_err();
    assert!(matches!(error, ProviderError::Timeout { .. }), "{error:?}");
    assert_eq!(provider.health().await, ProviderHealth::Healthy);
    let passed = ask("late").with_deadline(Some(Instant::now()));
    assert!(matches!(
        provider.generate(passed).await,
        Err(ProviderError::Timeout { .. })
    ));
}

#[tokio::test]
async fn a_lazy_provider_backs_off_after_a_failed_start() {
    let mut config = McpConfig::new(
        "absent",
        McpTransport::Stdio {
            command: "/nonexistent/mcp-server".into(),
            args: vec![],
            env: Default::default(),
        },
    );
    config.reconnect.initial_backoff_ms = 60_000;
    config.reconnect.max_backoff_ms = 60_000;
    let sink = MemorySink::new();
    let provider = McpProvider::lazy(config, Arc::new(sink.clone())).unwrap();
    assert!(matches!(
        provider.health().await,
        ProviderHealth::Degraded { .. }
    ));

    let error = provider.generate(ask("hi")).await.unwrap_err();
    assert!(error.to_string().contains("could not start"), "{error}");
    // A full-jitter wait can be drawn as zero; otherwise the next call fails fast.
    if let ProviderHealth::Unhealthy { reason } = provider.health().await {
        assert!(reason.contains("next reconnect attempt in"), "{reason}");
        let error = provider.generate(ask("hi")).await.unwrap_err();
        assert!(error.to_string().contains("next reconnect attempt in"));
    }
    assert!(sink.events().is_empty());
}

/// Sends `signal` to `pid` with `kill(1)`.
fn signal(pid: u32, signal: &str) -> bool {
    std::process::Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .is_ok_and(|status| status.success())
}

/// A server stopped with SIGSTOP: alive, pipes open, answering nothing. Dropping it lets the
/// process go and kills it, whatever the test did.
struct Stopped(u32);

impl Stopped {
    fn stop(pid: u32) -> Self {
        assert!(signal(pid, "-STOP"), "could not stop {pid}");
        Self(pid)
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        signal(self.0, "-CONT");
        signal(self.0, "-KILL");
    }
}

/// `echo_config` with a short ping timeout, so a stopped server is found quickly.
fn watched_config(server: &str) -> McpConfig {
    let mut config = echo_config(server);
    config.ping_timeout_ms = 500;
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_server_is_found_by_a_ping_after_a_timeout_and_spawned_again() {
    let Some(server) = everything_server() else {
        return;
    };
    let sink = MemorySink::new();
    let provider = McpProvider::connect(watched_config(&server), Arc::new(sink.clone()))
        .await
        .unwrap();
    provider.generate(ask("before")).await.unwrap();
    let pid = provider.server_pid().expect("a stdio child has a pid");
    let _stopped = Stopped::stop(pid);
    let soon = || ask("after").with_deadline(Some(Instant::now() + Duration::from_millis(300)));

    let error = provider.generate(soon()).await.unwrap_err();
    assert!(matches!(error, ProviderError::Timeout { .. }), "{error:?}");

    // Timeouts until the ping has gone unanswered, then Unavailable: the server is dropped.
    let give_up = Instant::now() + Duration::from_secs(30);
    loop {
        match provider.generate(soon()).await {
            Err(ProviderError::Unavailable { .. }) => break,
            Err(ProviderError::Timeout { .. }) if Instant::now() < give_up => {}
            other => panic!("expected the stopped server to be dropped, got {other:?}"),
        }
    }
    // After the backoff, a new server. Without a short deadline: starting node takes longer.
    let reply = loop {
        match provider.generate(ask("after")).await {
            Ok(reply) => break reply,
            Err(ProviderError::Unavailable { reason, .. }) if Instant::now() < give_up => {
                assert!(reason.contains("reconnect attempt in"), "{reason}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(other) => panic!("expected a reconnect, got {other:?}"),
        }
    };
    assert!(reply.text.contains("after"), "{}", reply.text);
    assert_ne!(provider.server_pid(), Some(pid));
    assert_eq!(
        sink.types(),
        [
            "mcp.server_connected",
            "mcp.server_disconnected",
            "mcp.server_connected"
        ]
    );
    let disconnected: agents_core::McpServerDisconnected = sink.events()[1].payload().unwrap();
    assert!(
        disconnected.reason.contains("did not answer a ping"),
        "{}",
        disconnected.reason
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_server_is_not_reported_healthy() {
    let Some(server) = everything_server() else {
        return;
    };
    let sink = MemorySink::new();
    let provider = McpProvider::connect(watched_config(&server), Arc::new(sink.clone()))
        .await
        .unwrap();
    assert_eq!(provider.health().await, ProviderHealth::Healthy);
    let pid = provider.server_pid().expect("a stdio child has a pid");
    let _stopped = Stopped::stop(pid);

    let health = provider.health().await;
    assert!(
        matches!(&health, ProviderHealth::Unhealthy { reason } if reason.contains("did not answer a ping")),
        "{health:?}"
    );
    assert_eq!(
        sink.types(),
        ["mcp.server_connected", "mcp.server_disconnected"]
    );
    let give_up = Instant::now() + Duration::from_secs(30);
    while provider.generate(ask("again")).await.is_err() {
        assert!(Instant::now() < give_up, "no new server");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_ne!(provider.server_pid(), Some(pid));
    assert_eq!(provider.health().await, ProviderHealth::Healthy);
}

/// Servers that take `delay` to start, the way a cold `npx` does: a script preloaded into node
/// blocks before the server reads anything, and first appends the process's pid to a file, so a
/// test can count the starts. Dropping it kills every server it started and removes its files.
struct SlowStart {
    dir: std::path::PathBuf,
}

impl SlowStart {
    fn new(test: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("agents-mcp-{test}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("slow-start.cjs"),
            "require('fs').appendFileSync(process.env.MCP_TEST_PIDFILE, process.pid + '\\n');\n\
             Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, \
             Number(process.env.MCP_TEST_START_DELAY_MS));\n",
        )
        .unwrap();
        Self { dir }
    }

    /// `echo_config` for a server that takes `delay` to start.
    fn config(&self, server: &str, delay: Duration) -> McpConfig {
        let mut config = echo_config(server);
        let env = [
            (
                "MCP_TEST_PIDFILE".to_owned(),
                self.dir.join("pids").display().to_string(),
            ),
            (
                "MCP_TEST_START_DELAY_MS".to_owned(),
                delay.as_millis().to_string(),
            ),
        ];
        config.transport = McpTransport::Stdio {
            command: "node".into(),
            args: vec![
                "--require".into(),
                self.dir.join("slow-start.cjs").display().to_string(),
                server.into(),
                "stdio".into(),
            ],
            env: env.into_iter().collect(),
        };
        config
    }

    /// The pids of the servers started so far.
    fn pids(&self) -> Vec<u32> {
        std::fs::read_to_string(self.dir.join("pids"))
            .unwrap_or_default()
            .lines()
            .filter_map(|line| line.trim().parse().ok())
            .collect()
    }
}

impl Drop for SlowStart {
    fn drop(&mut self) {
        for pid in self.pids() {
            if is_running(pid) {
                signal(pid, "-KILL");
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_slower_to_start_than_each_deadline_is_started_once_and_connects() {
    let Some(server) = everything_server() else {
        return;
    };
    let slow = SlowStart::new("slow-start");
    let sink = MemorySink::new();
    let provider = McpProvider::lazy(
        slow.config(&server, Duration::from_secs(2)),
        Arc::new(sink.clone()),
    )
    .unwrap();

    // Each caller gives up long before the server is up; the start must outlive them.
    let give_up = Instant::now() + Duration::from_secs(20);
    let mut calls = 0;
    let reply = loop {
        calls += 1;
        let request = ask("slow").with_deadline(Some(Instant::now() + Duration::from_millis(500)));
        match provider.generate(request).await {
            Ok(reply) => break reply,
            Err(ProviderError::Timeout { .. } | ProviderError::Unavailable { .. })
                if Instant::now() < give_up => {}
            Err(error) => panic!(
                "no call succeeded in {calls} calls ({} servers started): {error:?}",
                slow.pids().len()
            ),
        }
    };
    assert!(reply.text.contains("slow"), "{}", reply.text);
    assert!(
        calls > 1,
        "the first 500 ms call cannot have waited out a 2 s start"
    );
    assert_eq!(slow.pids().len(), 1, "servers started: {:?}", slow.pids());
    assert_eq!(provider.server_pid(), slow.pids().first().copied());
    assert_eq!(sink.types(), ["mcp.server_connected"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_slower_than_the_connect_timeout_is_killed_and_backed_off() {
    let Some(server) = everything_server() else {
        return;
    };
    let slow = SlowStart::new("connect-timeout");
    let mut config = slow.config(&server, Duration::from_secs(10));
    config.connect_timeout_ms = 300;
    config.reconnect.initial_backoff_ms = 60_000;
    config.reconnect.max_backoff_ms = 60_000;
    let sink = MemorySink::new();
    let provider = McpProvider::lazy(config, Arc::new(sink.clone())).unwrap();

    // The connect's own timeout ends the wait, not the caller's longer deadline.
    let started = Instant::now();
    let request = ask("hi").with_deadline(Some(started + Duration::from_secs(5)));
    let error = provider.generate(request).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(4), "{error:?}");
    let text = error.to_string();
    assert!(
        matches!(error, ProviderError::Unavailable { .. }) && text.contains("connect_timeout_ms"),
        "{text}"
    );
    let pids = slow.pids();
    assert_eq!(pids.len(), 1, "servers started: {pids:?}");
    let give_up = Instant::now() + Duration::from_secs(10);
    while is_running(pids[0]) {
        assert!(
            Instant::now() < give_up,
            "server {} outlived its connect",
            pids[0]
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A full-jitter wait can be drawn as zero; otherwise the next call fails fast.
    if let ProviderHealth::Unhealthy { reason } = provider.health().await {
        assert!(reason.contains("next reconnect attempt in"), "{reason}");
        assert!(reason.contains("did not connect within 300 ms"), "{reason}");
    }
    assert!(sink.events().is_empty());
}
