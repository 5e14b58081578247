//! Helpers shared by the integration tests: waiting on conditions, peers with custom flags,
//! and admin clients for OpenBao and moto.

#![allow(dead_code, unreachable_pub)]

use std::future::Future;
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Polls `check` until it holds; panics naming `what` after `deadline`. The project's rule:
/// wait on a condition with a deadline, never sleep a guessed time.
pub async fn eventually<F, Fut>(what: &str, deadline: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let end = Instant::now() + deadline;
    loop {
        if check().await {
            return;
        }
        assert!(
            Instant::now() < end,
            "{what} did not happen within {deadline:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A peer started with flags the testkit's launchers do not take (TLS, auth); killed on drop.
pub struct Process {
    child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

impl Process {
    /// Starts `binary` with the arguments `args(port, dir)` and `envs`; `None` (skipped) when
    /// the binary is not installed.
    pub fn start(
        binary: &str,
        args: impl Fn(u16, &Path) -> Vec<String>,
        envs: &[(&str, &str)],
    ) -> Option<Self> {
        let Some(path) = agents_testkit::find_binary(binary) else {
            return agents_testkit::missing(binary);
        };
        let port = agents_testkit::free_port();
        let dir = tempfile::tempdir().unwrap();
        let log = std::fs::File::create(dir.path().join("log")).unwrap();
        let child = Command::new(path)
            .args(args(port, dir.path()))
            .envs(envs.iter().copied())
            .env("HOME", dir.path())
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut process = Self { child, port, dir };
        let end = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                process.child.try_wait().unwrap().is_none(),
                "{binary} exited: {}",
                std::fs::read_to_string(process.dir.path().join("log")).unwrap_or_default()
            );
            assert!(Instant::now() < end, "{binary} did not listen on {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(process)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(feature = "vault")]
pub mod vault {
    use std::collections::HashMap;
    use std::sync::Arc;

    use agents_secrets::{MemoryStore, SecretRef, VaultAuth, VaultConfig, VaultStore};
    use vaultrs::client::{VaultClient, VaultClientSettingsBuilder};

    /// A client with the dev server's root token, for setting things up as an operator would.
    pub fn root(address: &str) -> VaultClient {
        let settings = VaultClientSettingsBuilder::default()
            .address(address)
            .token(agents_testkit::OPENBAO_ROOT_TOKEN)
            .build()
            .unwrap();
        VaultClient::new(settings).unwrap()
    }

    /// Writes a KV v2 secret at `secret/<path>`.
    pub async fn put(address: &str, path: &str, pairs: &[(&str, &str)]) {
        let data: HashMap<&str, &str> = pairs.iter().copied().collect();
        vaultrs::kv2::set(&root(address), "secret", path, &data)
            .await
            .unwrap();
    }

    /// A store using `token` (served from memory as `env:VAULT_TOKEN`).
    pub fn token_config(address: &str, token: &str) -> (VaultConfig, Arc<MemoryStore>) {
        let memory = Arc::new(MemoryStore::new());
        let reference: SecretRef = "env:VAULT_TOKEN".parse().unwrap();
        memory.insert(&reference, token.into()).unwrap();
        let config = VaultConfig::new(address, VaultAuth::token(reference))
            .with_request_timeout_ms(5_000)
            .with_renew_retry_ms(200);
        (config, memory)
    }

    pub fn token_store(address: &str, token: &str) -> VaultStore {
        let (config, memory) = token_config(address, token);
        VaultStore::new(&config, memory).unwrap()
    }
}

#[cfg(feature = "aws-kms")]
pub mod kms {
    use std::sync::Arc;

    use agents_secrets::{KmsConfig, KmsCredentials, MemoryStore, SecretRef};
    use aws_sdk_kms::config::{BehaviorVersion, Credentials, Region};
    use aws_sdk_kms::primitives::Blob;

    /// The dummy credentials moto accepts.
    pub const ACCESS_KEY_ID: &str = "testing";
    pub const SECRET_ACCESS_KEY: &str = "testing-secret-access-key";

    /// An SDK client for setting up keys and ciphertexts as an operator would.
    pub fn admin(port: u16) -> aws_sdk_kms::Client {
        let config = aws_sdk_kms::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(format!("http://127.0.0.1:{port}"))
            .credentials_provider(Credentials::new(
                ACCESS_KEY_ID,
                SECRET_ACCESS_KEY,
                None,
                None,
                "test",
            ))
            .build();
        aws_sdk_kms::Client::from_conf(config)
    }

    /// Creates a symmetric key; returns its id.
    pub async fn create_key(port: u16) -> String {
        let created = admin(port).create_key().send().await.unwrap();
        created.key_metadata.unwrap().key_id
    }

    /// Encrypts `plaintext` under `key_id`, with an optional context pair.
    pub async fn encrypt(
        port: u16,
        key_id: &str,
        plaintext: &str,
        context: Option<(&str, &str)>,
    ) -> Vec<u8> {
        let mut request = admin(port)
            .encrypt()
            .key_id(key_id)
            .plaintext(Blob::new(plaintext.as_bytes()));
        if let Some((k, v)) = context {
            request = request.encryption_context(k, v);
        }
        request
            .send()
            .await
            .unwrap()
            .ciphertext_blob
            .unwrap()
            .into_inner()
    }

    /// Store config for moto on `port`, credentials served from memory.
    pub fn config(port: u16) -> (KmsConfig, Arc<MemoryStore>) {
        let memory = Arc::new(MemoryStore::new());
        let secret: SecretRef = "env:AWS_SECRET_ACCESS_KEY".parse().unwrap();
        memory.insert(&secret, SECRET_ACCESS_KEY.into()).unwrap();
        let config = KmsConfig::default()
            .with_region("us-east-1")
            .with_endpoint_url(format!("http://127.0.0.1:{port}"))
            .with_credentials(KmsCredentials::new(ACCESS_KEY_ID, secret))
            .with_request_timeout_ms(5_000)
            .with_max_attempts(1);
        (config, memory)
    }
}
