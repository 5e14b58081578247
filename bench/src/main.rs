//! `agents-load`: drives our gRPC `Execute` or an OpenAI-compatible endpoint at a constant
//! arrival rate and prints latency percentiles, errors by code and the runtime's overhead.
//!
//! ```text
//! agents-load grpc --addr http://127.0.0.1:50051 --agent code-analysis \
//!     --payload bench/payloads/code-analysis.json --rate 1000 --duration 10s --json
//! agents-load openai --url http://127.0.0.1:4000/v1/chat/completions \
//!     --payload bench/payloads/chat.json --header 'Authorization: Bearer sk-bench' --rate 50
//! ```

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use agents_bench::payload::GrpcInput;
use agents_bench::run::{RunConfig, run};
use agents_bench::schedule::Schedule;
use agents_bench::stats::RunInfo;
use agents_bench::target::{GrpcTarget, OpenAiTarget, Target};
use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};

/// Open-loop load tool: constant arrival rate, latency from each request's due time.
#[derive(Debug, Parser)]
#[command(name = "agents-load", version)]
struct Cli {
    #[command(subcommand)]
    target: TargetArgs,
}

#[derive(Debug, Subcommand)]
enum TargetArgs {
    /// Our server's `agents.v1.AgentService/Execute`.
    Grpc {
        /// The server, e.g. `http://127.0.0.1:50051`.
        #[arg(long)]
        addr: String,
        /// The agent to run.
        #[arg(long, default_value = "code-analysis")]
        agent: String,
        /// A JSON file: the agent's input document, sent as `input_json`.
        #[arg(long)]
        payload: PathBuf,
        /// Sent as `authorization: Bearer <key>` when the server has auth on.
        #[arg(long)]
        api_key: Option<String>,
        /// Make every request's `source_code` unique (a comment naming the request is
        /// appended), so the server parses each one: its facts cache never answers.
        #[arg(long)]
        unique_sources: bool,
        #[command(flatten)]
        common: Common,
    },
    /// An OpenAI-compatible `POST /v1/chat/completions` (LiteLLM and other peers).
    Openai {
        /// The full URL, e.g. `http://127.0.0.1:4000/v1/chat/completions`.
        #[arg(long)]
        url: String,
        /// A JSON file: the request body, sent as is.
        #[arg(long)]
        payload: PathBuf,
        /// A header, `Name: value`; repeat for more (e.g. `Authorization: Bearer sk-...`).
        #[arg(long = "header", short = 'H')]
        headers: Vec<String>,
        /// A response header in which the server reports its own overhead in milliseconds
        /// (its total minus the upstream call), recorded as its gateway overhead:
        /// LiteLLM's is `x-litellm-overhead-duration-ms`.
        #[arg(long)]
        overhead_header: Option<String>,
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Debug, Args)]
struct Common {
    /// Requests a second (constant arrival rate).
    #[arg(long)]
    rate: f64,
    /// The measured window: `10`, `10s`, `500ms`, `2m`.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    duration: Duration,
    /// Sent first, at the same rate, and not measured.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    warmup: Duration,
    /// Requests waiting for an answer at most; beyond, a due request is counted as the error
    /// `client_backpressure` instead of being delayed.
    #[arg(long, default_value_t = 2000)]
    max_in_flight: usize,
    /// gRPC channels (HTTP/2 connections) or HTTP clients to spread requests over.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Per-request timeout (also the gRPC deadline sent to the server).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    timeout: Duration,
    /// The upstream model's fixed latency in milliseconds, subtracted for the client-side
    /// overhead.
    #[arg(long, default_value_t = 0.0)]
    upstream_latency_ms: f64,
    /// Worker threads of the tool's runtime (the scheduler has its own thread).
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// A name for the tables, e.g. `agents` or `litellm`.
    #[arg(long, default_value = "")]
    label: String,
    /// Print the report as one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

/// `10`, `10s`, `1.5s`, `500ms`, `2m`.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, scale) = if let Some(n) = text.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('m') {
        (n, 60.0)
    } else {
        (text, 1.0)
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a duration such as 10s, 500ms or 2m"))?;
    Duration::try_from_secs_f64(value * scale).map_err(|e| format!("`{text}`: {e}"))
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let common = match &cli.target {
        TargetArgs::Grpc { common, .. } | TargetArgs::Openai { common, .. } => common,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(common.threads.max(1))
        .enable_all()
        .build()?;
    runtime.block_on(main_async(cli))
}

async fn main_async(cli: Cli) -> anyhow::Result<()> {
    let (target, common, kind) = match cli.target {
        TargetArgs::Grpc {
            addr,
            agent,
            payload,
            api_key,
            unique_sources,
            common,
        } => {
            let text = std::fs::read_to_string(&payload)
                .with_context(|| format!("cannot read {}", payload.display()))?;
            serde_json::from_str::<serde_json::Value>(&text)
                .with_context(|| format!("{} is not JSON", payload.display()))?;
            let input = if unique_sources {
                // The process id and start time tell this run's sources from an earlier run's.
                let started = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_micros());
                GrpcInput::unique(&text, format!("{}-{started}", std::process::id()))
                    .with_context(|| format!("payload {}", payload.display()))?
            } else {
                GrpcInput::same(text)
            };
            let target = GrpcTarget::connect(
                &addr,
                common.connections,
                agent,
                input,
                api_key.as_deref(),
                common.timeout,
            )
            .await?;
            (Target::Grpc(target), common, "grpc")
        }
        TargetArgs::Openai {
            url,
            payload,
            headers,
            overhead_header,
            common,
        } => {
            let body = std::fs::read(&payload)
                .with_context(|| format!("cannot read {}", payload.display()))?;
            serde_json::from_slice::<serde_json::Value>(&body)
                .with_context(|| format!("{} is not JSON", payload.display()))?;
            let mut target =
                OpenAiTarget::new(&url, common.connections, body, &headers, common.timeout)?;
            if let Some(name) = overhead_header.as_deref() {
                target = target.with_overhead_header(name)?;
            }
            (Target::OpenAi(target), common, "openai")
        }
    };
    let schedule = Schedule::new(common.rate, common.warmup, common.duration)?;
    let upstream = Duration::try_from_secs_f64(common.upstream_latency_ms / 1000.0)
        .context("--upstream-latency-ms must be a non-negative number")?;
    let config = RunConfig {
        schedule,
        max_in_flight: common.max_in_flight,
        upstream_latency: upstream,
        drain_timeout: common.timeout + Duration::from_secs(1),
    };
    let result = run(Arc::new(target), config).await?;
    let info = RunInfo {
        target: kind.into(),
        label: if common.label.is_empty() {
            kind.into()
        } else {
            common.label.clone()
        },
        rate: common.rate,
        duration_s: common.duration.as_secs_f64(),
        warmup_s: common.warmup.as_secs_f64(),
        upstream_latency_ms: common.upstream_latency_ms,
        max_in_flight: common.max_in_flight,
        connections: common.connections,
    };
    let report = result.recorder.report(info, result.sent);
    if common.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{}", report.table());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("10").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("-1s").is_err());
    }
}
