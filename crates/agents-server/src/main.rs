//! The `agents-server` binary: see `agents-server --help`.

use std::process::ExitCode;

use clap::Parser;

/// mimalloc instead of glibc's malloc: the request path allocates many small, short-lived
/// objects from every worker thread, where glibc spent ~31 % of the server's CPU under load
/// (BENCHMARKS.md) and let its per-thread arenas grow. Only the binary sets it; turn it off
/// with `--no-default-features`.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = agents_server::cli::Cli::parse();
    // Unlocked handles: a lock held here for the whole run would block every log line written
    // from another thread (the runtime's workers) for ever.
    agents_server::cli::run(cli, &mut std::io::stdout(), &mut std::io::stderr())
}
