//! Support for the cross-crate tests in `tests/tests/`.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// The workspace root (the folder of the root `Cargo.toml`).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default()
}

/// The `agents-server` binary, built (or found up to date) with the cargo running the tests.
///
/// Cargo gives `CARGO_BIN_EXE_<name>` only to the tests of the binary's own package, so a test
/// here asks cargo to build it and reads the executable's path from cargo's JSON messages.
/// The first call may take a while when the binary is not built yet; later calls reuse the
/// answer. The error says what failed, with cargo's output.
pub fn agents_server_binary() -> Result<PathBuf, String> {
    static BINARY: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BINARY.get_or_init(build_agents_server).clone()
}

fn build_agents_server() -> Result<PathBuf, String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .current_dir(workspace_root())
        .args([
            "build",
            "--package",
            "agents-server",
            "--bin",
            "agents-server",
            "--message-format=json-render-diagnostics",
        ])
        .output()
        .map_err(|e| format!("cannot run cargo to build agents-server: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "`cargo build -p agents-server` failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|message| message["reason"] == "compiler-artifact")
        .filter(|message| message["target"]["name"] == "agents-server")
        .find_map(|message| message["executable"].as_str().map(PathBuf::from))
        .ok_or_else(|| "cargo built agents-server but named no executable".to_owned())
}
