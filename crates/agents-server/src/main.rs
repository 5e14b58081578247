//! The `agents-server` binary: see `agents-server --help`.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = agents_server::cli::Cli::parse();
    // Unlocked handles: a lock held here for the whole run would block every log line written
    // from another thread (the runtime's workers) for ever.
    agents_server::cli::run(cli, &mut std::io::stdout(), &mut std::io::stderr())
}
