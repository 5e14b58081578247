//! `agents-fake-model`: a fake OpenAI-compatible model server for load benchmarks.
//!
//! Serves [`Behavior::Answer`] (after `--latency-ms`, when set) until killed, and prints
//! `listening on http://ADDR/v1` on stdout once bound. The request log is off, so a long run
//! costs no memory.

use std::io::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use agents_fake_model::{Behavior, FakeModel};
use anyhow::Context as _;
use clap::Parser;

/// A fake OpenAI-compatible chat-completions server that answers every request with a canned,
/// schema-valid answer for the agent that asked.
#[derive(Debug, Parser)]
#[command(name = "agents-fake-model", version)]
struct Args {
    /// The address to listen on; port 0 picks a free one (printed on stdout).
    #[arg(long, default_value = "127.0.0.1:0")]
    addr: SocketAddr,
    /// How long to wait before answering each request, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let model = FakeModel::start_on(args.addr)
        .await
        .with_context(|| format!("binding {} failed; is the port free?", args.addr))?;
    model.set_recording(false);
    if args.latency_ms > 0 {
        model.set_default(Behavior::Delay {
            delay: Duration::from_millis(args.latency_ms),
            then: Box::new(Behavior::Answer),
        });
    }
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening on {}", model.base_url())?;
    stdout.flush()?;
    drop(stdout);
    std::future::pending::<()>().await;
    Ok(())
}
