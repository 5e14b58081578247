//! The `agents-server` binary: see `agents-server --help`.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = agents_server::cli::Cli::parse();
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    agents_server::cli::run(cli, &mut stdout.lock(), &mut stderr.lock())
}
