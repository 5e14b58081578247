//! The `agents-server` binary: see `agents-server --help`.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = agents_server::cli::Cli::parse();
    let stdout = std::io::stdout();
    let mut stderr = std::io::stderr();
    // stderr is not locked for the whole run: the spinner of `call --stream` draws on it from
    // its own thread.
    agents_server::cli::run(cli, &mut stdout.lock(), &mut stderr)
}
