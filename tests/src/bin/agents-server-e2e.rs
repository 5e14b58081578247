//! The `agents-server` command line, built inside this test package so that its tests can
//! start real worker processes (and kill them with SIGKILL): `CARGO_BIN_EXE_*` only names the
//! binaries of the package under test. It is `agents-server`'s `main`, line for line.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = agents_server::cli::Cli::parse();
    // Unlocked handles: a lock held here for the whole run would block every log line written
    // from another thread (the runtime's workers) for ever.
    agents_server::cli::run(cli, &mut std::io::stdout(), &mut std::io::stderr())
}
