//! The canary: unique values loaded through every backend (env, file, Vault with token and
//! AppRole, KMS inline, from a file and as an envelope), then every error path we can reach
//! (wrong keys, bad references, refused credentials, insecure files, backends down), and the
//! values must appear in no error message, no `Debug` output and no log line — the logs
//! captured at TRACE level for every crate, vaultrs and the AWS SDK included.

#![cfg(all(feature = "env", feature = "vault", feature = "aws-kms"))]
// A failing test should stop loudly: unwrap and panic are how tests say so.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use agents_secrets::secrecy::ExposeSecret;
use agents_secrets::{
    CacheConfig, FileStore, KmsConfig, KmsCredentials, KmsStore, SecretError, SecretRef,
    SecretStore, SecretsConfig, VaultAuth, VaultConfig, VaultStore,
};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use tracing_subscriber::fmt::format::FmtSpan;

/// Everything every subscriber layer writes, kept for inspection.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Capture {
    /// Installs a process-wide subscriber at TRACE for every target, spans included.
    fn install() -> Self {
        let capture = Self::default();
        let writer = capture.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_span_events(FmtSpan::FULL)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::set_global_default(subscriber).unwrap();
        capture
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

fn unique(label: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("canary-{label}-{}-{nanos:x}", std::process::id())
}

fn private_file(dir: &Path, name: &str, content: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

fn reference(text: &str) -> SecretRef {
    text.parse().unwrap()
}

/// Asserts no canary (nor its base64) is in `text`, saying where it was found.
fn assert_clean(canaries: &[String], text: &str, place: &str) {
    for canary in canaries {
        assert!(
            !text.contains(canary.as_str()),
            "{canary} leaked into {place}:\n{text}"
        );
        let encoded = STANDARD.encode(canary);
        assert!(
            !text.contains(&encoded),
            "base64 of {canary} leaked into {place}"
        );
    }
}

/// The error of a result that must have failed.
fn failure<T>(result: Result<T, SecretError>) -> SecretError {
    match result {
        Ok(_) => panic!("expected an error"),
        Err(error) => error,
    }
}

/// Every way an error is shown.
fn shown(error: &SecretError) -> String {
    format!("{error}\n{error:?}\n{error:#?}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canary_values_appear_in_no_error_debug_output_or_log_line() {
    let (Some(mut bao), Some(mut moto)) = (agents_testkit::openbao(), agents_testkit::moto())
    else {
        return;
    };
    let vault_addr = format!("http://{}", bao.addr());
    let canaries = [
        unique("file"),
        unique("vault"),
        unique("kms"),
        unique("secret-id"),
    ];
    let [file_canary, vault_canary, kms_canary, secret_id_canary] = canaries.clone();

    // Set up as an operator would, before logs are captured (the setup's own requests carry
    // the plaintexts on purpose).
    let dir = tempfile::tempdir().unwrap();
    let secret_file = private_file(dir.path(), "api-key", &format!("{file_canary}\n"));
    let token_file = private_file(
        dir.path(),
        "vault-token",
        agents_testkit::OPENBAO_ROOT_TOKEN,
    );
    let wrong_token_file = private_file(dir.path(), "wrong-token", "definitely-not-a-token");
    let aws_key_file = private_file(dir.path(), "aws-secret", common::kms::SECRET_ACCESS_KEY);
    common::vault::put(&vault_addr, "app/canary", &[("key", &vault_canary)]).await;
    let admin = common::vault::root(&vault_addr);
    vaultrs::sys::auth::enable(&admin, "approle", "approle", None)
        .await
        .unwrap();
    vaultrs::sys::policy::set(
        &admin,
        "canary-reader",
        r#"path "secret/data/app/*" { capabilities = ["read"] }"#,
    )
    .await
    .unwrap();
    vaultrs::auth::approle::role::set(
        &admin,
        "approle",
        "canary",
        Some(
            &mut vaultrs::api::auth::approle::requests::SetAppRoleRequest::builder()
                .token_policies(vec!["canary-reader".to_owned()]),
        ),
    )
    .await
    .unwrap();
    let role_id = vaultrs::auth::approle::role::read_id(&admin, "approle", "canary")
        .await
        .unwrap()
        .role_id;
    vaultrs::auth::approle::role::secret::custom(
        &admin,
        "approle",
        "canary",
        &secret_id_canary,
        None,
    )
    .await
    .unwrap();
    let secret_id_file = private_file(dir.path(), "secret-id", &secret_id_canary);
    let key_id = common::kms::create_key(moto.port()).await;
    let ciphertext = common::kms::encrypt(moto.port(), &key_id, &kms_canary, None).await;
    let kms_file = dir.path().join("api-key.enc");
    std::fs::write(&kms_file, STANDARD.encode(&ciphertext)).unwrap();

    let logs = Capture::install();
    tracing::info!("capture started");

    let file_ref = reference(&format!("file:{}", secret_file.display()));
    let vault_ref = reference("vault:secret/app/canary#key");
    let kms_ref = reference(&format!("kms:{}", STANDARD.encode(&ciphertext)));
    let kms_file_ref = reference(&format!("kms-file:{}", kms_file.display()));
    let aws_secret = reference(&format!("file:{}", aws_key_file.display()));
    let kms_config = KmsConfig::default()
        .with_region("us-east-1")
        .with_endpoint_url(format!("http://127.0.0.1:{}", moto.port()))
        .with_credentials(KmsCredentials::new(common::kms::ACCESS_KEY_ID, aws_secret))
        .with_request_timeout_ms(5_000)
        .with_max_attempts(1);
    let envelope = KmsStore::connect(&kms_config, Arc::new(FileStore::new()))
        .await
        .unwrap()
        .encrypt_envelope(&key_id, &kms_canary.clone().into())
        .await
        .unwrap();
    let envelope_file = private_file(dir.path(), "api-key.json", &envelope);
    let kms_envelope_ref = reference(&format!("kms-envelope-file:{}", envelope_file.display()));
    let vault_config = VaultConfig::new(
        &vault_addr,
        VaultAuth::token(reference(&format!("file:{}", token_file.display()))),
    )
    .with_request_timeout_ms(5_000);
    let secrets = SecretsConfig::default()
        .with_cache(
            CacheConfig::default()
                .with_ttl_ms(60_000)
                .with_stale_if_error_ms(0),
        )
        .with_vault(vault_config.clone())
        .with_kms(kms_config.clone())
        .build()
        .await
        .unwrap();

    // Each backend serves its canary.
    let mut debug_output = Vec::new();
    for (r, expected) in [
        (&file_ref, &file_canary),
        (&vault_ref, &vault_canary),
        (&kms_ref, &kms_canary),
        (&kms_file_ref, &kms_canary),
        (&kms_envelope_ref, &kms_canary),
    ] {
        let value = secrets.get(r).await.unwrap();
        assert_eq!(value.expose_secret(), expected.as_str());
        debug_output.push(format!("{value:?} {r:?} {r}"));
    }
    let approle = VaultStore::new(
        &VaultConfig::new(
            &vault_addr,
            VaultAuth::app_role(
                &role_id,
                reference(&format!("file:{}", secret_id_file.display())),
            ),
        ),
        Arc::new(FileStore::new()),
    )
    .unwrap();
    assert_eq!(
        approle.get(&vault_ref).await.unwrap().expose_secret(),
        vault_canary.as_str()
    );

    // Now every error path within reach.
    let mut errors: Vec<SecretError> = Vec::new();
    errors.push(failure(
        secrets
            .get(&reference("vault:secret/app/canary#wrong-key"))
            .await,
    ));
    errors.push(failure(
        secrets
            .get(&reference("vault:secret/app/canary?version=99#key"))
            .await,
    ));
    errors.push(failure(
        secrets.get(&reference("vault:secret/app/absent#key")).await,
    ));
    // Bad references, the worst being a secret pasted where a reference belongs.
    for text in [
        vault_canary.clone(),
        format!("env:{kms_canary}"),
        format!("vault:secret/{file_canary}"),
        format!("file:{secret_id_canary}"),
        format!("kms:{file_canary}"),
    ] {
        errors.push(failure(SecretRef::parse(&text)));
        let serde_error = serde_json::from_str::<SecretRef>(&format!("\"{text}\"")).unwrap_err();
        debug_output.push(format!("{serde_error} {serde_error:?}"));
    }
    // Refused credentials.
    let wrong_token = VaultStore::new(
        &VaultConfig::new(
            &vault_addr,
            VaultAuth::token(reference(&format!("file:{}", wrong_token_file.display()))),
        ),
        Arc::new(FileStore::new()),
    )
    .unwrap();
    errors.push(failure(wrong_token.get(&vault_ref).await));
    let wrong_secret_id = private_file(
        dir.path(),
        "wrong-secret-id",
        &format!("x{secret_id_canary}"),
    );
    let wrong_approle = VaultStore::new(
        &VaultConfig::new(
            &vault_addr,
            VaultAuth::app_role(
                &role_id,
                reference(&format!("file:{}", wrong_secret_id.display())),
            ),
        ),
        Arc::new(FileStore::new()),
    )
    .unwrap();
    errors.push(failure(wrong_approle.get(&vault_ref).await));
    // KMS refusals: a tampered ciphertext, a missing key.
    let mut tampered = ciphertext.clone();
    if let Some(last) = tampered.last_mut() {
        *last ^= 0xff;
    }
    errors.push(failure(
        secrets
            .get(&reference(&format!("kms:{}", STANDARD.encode(&tampered))))
            .await,
    ));
    let credentials = agents_secrets::SecretRouter::new()
        .route(agents_secrets::Scheme::File, Arc::new(FileStore::new()));
    let pinned = KmsStore::connect(
        &kms_config.clone().with_key_id("alias/missing"),
        Arc::new(credentials),
    )
    .await
    .unwrap();
    errors.push(failure(pinned.get(&kms_ref).await));
    // The file made readable by others, then gone.
    std::fs::set_permissions(&secret_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    secrets.invalidate(&file_ref);
    errors.push(failure(secrets.get(&file_ref).await));
    std::fs::remove_file(&secret_file).unwrap();
    errors.push(failure(secrets.get(&file_ref).await));
    // Backends down.
    bao.kill();
    moto.kill();
    for r in [&vault_ref, &kms_ref, &kms_file_ref] {
        secrets.invalidate(r);
        errors.push(failure(secrets.get(r).await));
    }
    errors.push(failure(
        approle.get(&reference("vault:secret/app/canary#key")).await,
    ));
    let health = format!("{:?}", secrets.health().await);
    debug_output.push(health);
    debug_output.push(format!(
        "{secrets:?} {approle:?} {wrong_token:?} {pinned:?}"
    ));
    debug_output.push(format!("{:?}", secrets.stats()));

    assert!(errors.len() >= 18, "{} errors", errors.len());
    for error in &errors {
        assert_clean(&canaries, &shown(error), "an error");
    }
    for output in &debug_output {
        assert_clean(&canaries, output, "Debug output");
    }
    let captured = logs.text();
    assert_clean(&canaries, &captured, "the logs");
    // The capture saw the stack at work, so its silence about the values means something.
    for expected in [
        "capture started",
        "authenticated to vault",
        "secret not loaded",
        "vaultrs",
    ] {
        assert!(
            captured.contains(expected),
            "no `{expected}` in the logs:\n{captured}"
        );
    }

    // The env backend: the variable is set for a child process running `env_canary_child`.
    let env_canary = unique("env");
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "env_canary_child",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("AGENTS_SECRETS_CANARY_CHILD", "1")
        .env("AGENTS_SECRETS_ENV_CANARY", &env_canary)
        .output()
        .unwrap();
    let child = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{child}");
    assert!(child.contains("env canary checked"), "{child}");
    assert_clean(
        std::slice::from_ref(&env_canary),
        &child,
        "the child's output",
    );
}

/// Runs only when spawned by the canary test with the variable set.
#[tokio::test]
async fn env_canary_child() {
    if std::env::var_os("AGENTS_SECRETS_CANARY_CHILD").is_none() {
        return;
    }
    let canary = std::env::var("AGENTS_SECRETS_ENV_CANARY").unwrap();
    let logs = Capture::install();
    let secrets = SecretsConfig::default().build().await.unwrap();
    let r = reference("env:AGENTS_SECRETS_ENV_CANARY");
    let value = secrets.get(&r).await.unwrap();
    assert_eq!(value.expose_secret(), canary.as_str());
    let mut errors = Vec::new();
    errors.push(
        secrets
            .get(&reference("env:AGENTS_SECRETS_UNSET_CANARY"))
            .await
            .unwrap_err(),
    );
    errors.push(SecretRef::parse(&canary).unwrap_err());
    errors.push(SecretRef::parse(&format!("env:{canary}")).unwrap_err());
    errors.push(
        secrets
            .get(&reference("vault:secret/x#y"))
            .await
            .unwrap_err(),
    );
    let canaries = [canary];
    for error in &errors {
        assert_clean(&canaries, &shown(error), "an error");
    }
    assert_clean(&canaries, &format!("{value:?} {secrets:?}"), "Debug output");
    assert_clean(&canaries, &logs.text(), "the logs");
    assert!(logs.text().contains("secret loaded"), "{}", logs.text());
    println!("env canary checked");
}
