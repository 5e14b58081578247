//! `agents-server call`: the client side of the gRPC service, for people at a terminal and for
//! scripts.
//!
//! It reads a source file, infers its language from the extension, calls Execute (or
//! ExecuteStream with `--stream`, showing progress), and prints the result as text or, with
//! `--json`, as the raw output document with its metadata. A failed call prints the gRPC code
//! and message (and each JSON path the server refused) and exits with
//! [`exit_code`]`(code)`, so a script can tell a bad input from an outage.
//!
//! | module | what it does |
//! |--------|--------------|
//! | `input` | the input document: the file, the language, extra fields |
//! | `connect` | the channel (plaintext, TLS, mTLS), the API key and the deadline |
//! | `progress` | the spinner on a terminal, plain progress lines elsewhere |
//! | `render` | the human-readable text of each agent's output, and `--json` |
//! | `failure` | errors and statuses as messages and exit codes |

mod connect;
mod failure;
mod input;
mod progress;
mod render;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use tokio_stream::StreamExt;
use tonic::Status;

use crate::pb;
use crate::pb::execute_stream_event::Event;
pub use connect::ApiKey;
use failure::Failure;
pub use failure::exit_code;
pub use input::infer_language;

/// Arguments of `agents-server call`.
#[derive(Debug, clap::Args)]
#[command(after_help = failure::EXIT_CODES_HELP)]
pub struct CallArgs {
    /// The agent: code-analysis, documentation or test-generation.
    pub agent: String,
    /// The source file to send (UTF-8 text).
    #[arg(long)]
    pub file: PathBuf,
    /// The source language (rust, python, typescript, ...); inferred from the file extension
    /// when left out.
    #[arg(long)]
    pub language: Option<String>,
    /// Call ExecuteStream: show progress on stderr while the agent runs.
    #[arg(long)]
    pub stream: bool,
    /// Print the output document and its metadata as JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// The server [default: http://127.0.0.1:50051, the embedded default listen address;
    /// https://… with any --tls-* option].
    #[arg(long)]
    pub addr: Option<String>,
    /// The API key (sent as `authorization: Bearer …`); default: the AGENTS_API_KEY
    /// environment variable. Never printed.
    #[arg(long, value_name = "KEY")]
    pub api_key: Option<ApiKey>,
    /// An extra input field, e.g. `--input analysis_type=security` or `--input
    /// include_metrics=false` (the value is read as JSON, else as a string). Repeatable.
    #[arg(long = "input", value_name = "KEY=VALUE")]
    pub inputs: Vec<String>,
    /// Extra input fields as one JSON object, e.g. `--options '{"focus": ["security"]}'`.
    #[arg(long, value_name = "JSON")]
    pub options: Option<String>,
    /// The deadline of the whole call (sent as `grpc-timeout`): `90s`, `500ms`, `2m`, or
    /// seconds.
    #[arg(long, value_parser = parse_duration, default_value = "120s")]
    pub timeout: Duration,
    /// A CA certificate (PEM) to trust for the server's certificate; without it, the system's
    /// roots.
    #[arg(long, value_name = "PEM")]
    pub tls_ca: Option<PathBuf>,
    /// A client certificate (PEM) for mutual TLS; needs --tls-key.
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The client certificate's private key (PEM); needs --tls-cert.
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// The name to check the server's certificate against, when it differs from the host of
    /// --addr.
    #[arg(long, value_name = "NAME")]
    pub tls_domain: Option<String>,
}

/// `90s`, `500ms`, `2m`, `1h` or a number of seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let amount: u64 = digits
        .parse()
        .map_err(|_| format!("`{text}` is not a duration; write e.g. 90s, 500ms or 2m"))?;
    let duration = match unit {
        "" | "s" => Duration::from_secs(amount),
        "ms" => Duration::from_millis(amount),
        "m" => Duration::from_secs(amount.saturating_mul(60)),
        "h" => Duration::from_secs(amount.saturating_mul(3600)),
        _ => {
            return Err(format!(
                "unknown unit `{unit}` in `{text}`; use ms, s, m or h"
            ));
        }
    };
    if duration.is_zero() {
        return Err("the timeout must be more than zero".into());
    }
    Ok(duration)
}

/// Runs `call`: results on `out`, progress and errors on `err`.
pub fn call(args: CallArgs, out: &mut dyn Write, err: &mut dyn Write) -> ExitCode {
    let result = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::local(format!("cannot start the async runtime: {e}")))
        .and_then(|runtime| runtime.block_on(run(&args, out, err)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => ExitCode::from(failure.report(err)),
    }
}

async fn run(args: &CallArgs, out: &mut dyn Write, err: &mut dyn Write) -> Result<(), Failure> {
    let document = input::document(args)?;
    // The whole call, stream included, within --timeout: tonic's own timer covers only the
    // wait for the response headers, so a server that stalls mid-stream held the CLI for ever.
    let response = tokio::time::timeout(args.timeout, exchange(args, document, err))
        .await
        .map_err(|_| {
            Failure::from(Status::deadline_exceeded(format!(
                "no answer within --timeout {:?}",
                args.timeout
            )))
        })??;
    let written = if args.json {
        render::json(&response, out)
    } else {
        render::text(&args.agent, &response, out, err)
    };
    written.map_err(|e| Failure::local(format!("cannot write the result: {e}")))
}

/// Sends the request and waits for the response (in `--stream` mode, reporting progress on
/// `err` as events arrive).
async fn exchange(
    args: &CallArgs,
    document: serde_json::Value,
    err: &mut dyn Write,
) -> Result<pb::ExecuteResponse, Failure> {
    let request = pb::ExecuteRequest {
        agent_id: args.agent.clone(),
        input_json: document.to_string(),
        request_id: String::new(),
    };
    let mut client = connect::client(args).await?;
    let request = connect::request(args, request)?;
    let response = if args.stream {
        let mut progress = progress::Progress::new(err);
        let mut stream = client.execute_stream(request).await?.into_inner();
        let mut result = None;
        while let Some(message) = stream.next().await {
            match message {
                Ok(pb::ExecuteStreamEvent {
                    event: Some(Event::CloudEventJson(json)),
                }) => progress.event(&json),
                Ok(pb::ExecuteStreamEvent {
                    event: Some(Event::Result(response)),
                }) => result = Some(response),
                Ok(pb::ExecuteStreamEvent { event: None }) => {}
                Err(status) => {
                    progress.finish();
                    return Err(status.into());
                }
            }
        }
        progress.finish();
        result.ok_or_else(|| {
            Failure::local(
                "the stream ended without a result; the server may have shut down, try again",
            )
        })?
    } else {
        client.execute(request).await?.into_inner()
    };
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        for bad in ["", "s", "1.5s", "3d", "0s", "-1s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
