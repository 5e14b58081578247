//! The KMS store against moto's server mode, with a key each test creates and dummy
//! credentials: decryption of `kms:`, `kms-file:` and `kms-envelope-file:` (envelopes made with
//! `encrypt_envelope`), missing keys, bad ciphertexts, wrong credentials (moto with IAM checks
//! on), and the server going down and coming back.

#![cfg(all(feature = "aws-kms", feature = "env"))]
// A failing test should stop loudly: unwrap and panic are how tests say so.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use agents_secrets::secrecy::ExposeSecret;
use std::os::unix::fs::PermissionsExt;

use agents_secrets::{
    Backend, KmsCredentials, KmsStore, SecretErrorKind, SecretRef, SecretStore, SecretsConfig,
    StoreHealth,
};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::Process;
use common::kms::{config, create_key, encrypt};

fn kms_ref(ciphertext: &[u8]) -> SecretRef {
    format!("kms:{}", STANDARD.encode(ciphertext))
        .parse()
        .unwrap()
}

#[tokio::test]
async fn decrypts_inline_and_file_ciphertexts() {
    let Some(moto) = agents_testkit::moto() else {
        return;
    };
    let port = moto.port();
    let key = create_key(port).await;
    let ciphertext = encrypt(port, &key, "kms-inline-value-1", None).await;
    let (config, memory) = config(port);
    let store = KmsStore::connect(&config, memory.clone()).await.unwrap();

    let r = kms_ref(&ciphertext);
    assert_eq!(
        store.get(&r).await.unwrap().expose_secret(),
        "kms-inline-value-1"
    );
    assert_eq!(agents_core::redact("v=kms-inline-value-1"), "v=***");

    // A file may hold the raw blob or the base64 the CLI prints; either is fine to leave
    // world-readable: it is a ciphertext.
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("raw.enc");
    std::fs::write(&raw, &ciphertext).unwrap();
    let text = dir.path().join("text.enc");
    std::fs::write(&text, format!("{}\n", STANDARD.encode(&ciphertext))).unwrap();
    for path in [&raw, &text] {
        let r: SecretRef = format!("kms-file:{}", path.display()).parse().unwrap();
        assert_eq!(
            store.get(&r).await.unwrap().expose_secret(),
            "kms-inline-value-1"
        );
    }
    let empty = dir.path().join("empty.enc");
    std::fs::write(&empty, "").unwrap();
    let r: SecretRef = format!("kms-file:{}", empty.display()).parse().unwrap();
    assert_eq!(
        store.get(&r).await.unwrap_err().kind(),
        SecretErrorKind::Rejected
    );
    let r: SecretRef = format!("kms-file:{}", dir.path().join("absent").display())
        .parse()
        .unwrap();
    assert_eq!(
        store.get(&r).await.unwrap_err().kind(),
        SecretErrorKind::NotFound
    );

    // Pinning the key and the encryption context.
    let pinned = KmsStore::connect(&config.clone().with_key_id(&key), memory.clone())
        .await
        .unwrap();
    assert!(pinned.get(&kms_ref(&ciphertext)).await.is_ok());
    let with_context = encrypt(port, &key, "kms-context-value-1", Some(("app", "agents"))).await;
    let contextual = KmsStore::connect(
        &config.clone().with_context("app", "agents"),
        memory.clone(),
    )
    .await
    .unwrap();
    assert_eq!(
        contextual
            .get(&kms_ref(&with_context))
            .await
            .unwrap()
            .expose_secret(),
        "kms-context-value-1"
    );
    let e = store.get(&kms_ref(&with_context)).await.unwrap_err();
    assert_eq!(e.kind(), SecretErrorKind::Rejected);
    assert!(e.to_string().contains("InvalidCiphertextException"), "{e}");

    // Through the whole stack, as the server would build it: the secret access key in a file.
    let key_file = dir.path().join("aws-secret");
    std::fs::write(&key_file, common::kms::SECRET_ACCESS_KEY).unwrap();
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let secret: SecretRef = format!("file:{}", key_file.display()).parse().unwrap();
    let stack_config = config
        .clone()
        .with_credentials(KmsCredentials::new(common::kms::ACCESS_KEY_ID, secret));
    let secrets = SecretsConfig::default()
        .with_kms(stack_config)
        .build()
        .await
        .unwrap();
    assert_eq!(
        secrets
            .get(&kms_ref(&ciphertext))
            .await
            .unwrap()
            .expose_secret(),
        "kms-inline-value-1"
    );
    assert_eq!(secrets.health().await, StoreHealth::Healthy);
    assert_eq!(store.health().await, StoreHealth::Healthy);
    assert_eq!(pinned.health().await, StoreHealth::Healthy);
}

#[tokio::test]
async fn missing_keys_bad_ciphertexts_and_bad_plaintexts() {
    let Some(moto) = agents_testkit::moto() else {
        return;
    };
    let port = moto.port();
    let key = create_key(port).await;
    let ciphertext = encrypt(port, &key, "kms-missing-key-value", None).await;
    let (config, memory) = config(port);

    let missing = config
        .clone()
        .with_key_id("11111111-2222-3333-4444-555555555555");
    let store = KmsStore::connect(&missing, memory.clone()).await.unwrap();
    let e = store.get(&kms_ref(&ciphertext)).await.unwrap_err();
    assert_eq!(e.kind(), SecretErrorKind::NotFound);
    assert_eq!(e.backend(), Some(Backend::AwsKms));
    assert!(e.to_string().contains("kms:"), "{e}");
    assert!(!store.health().await.is_serving());

    let store = KmsStore::connect(&config, memory.clone()).await.unwrap();
    // A tampered ciphertext fails authentication inside KMS.
    let mut tampered = ciphertext.clone();
    if let Some(last) = tampered.last_mut() {
        *last ^= 0xff;
    }
    let e = store.get(&kms_ref(&tampered)).await.unwrap_err();
    assert_eq!(e.kind(), SecretErrorKind::Rejected, "{e}");
    assert!(e.to_string().contains("InvalidCiphertextException"), "{e}");

    // Another key's id: moto answers AccessDenied where AWS says IncorrectKey; both refuse.
    let other = create_key(port).await;
    let store = KmsStore::connect(&config.clone().with_key_id(&other), memory.clone())
        .await
        .unwrap();
    let e = store.get(&kms_ref(&ciphertext)).await.unwrap_err();
    assert!(
        matches!(
            e.kind(),
            SecretErrorKind::PermissionDenied | SecretErrorKind::Rejected
        ),
        "{e}"
    );

    // Plaintexts that are not UTF-8, or too short to mask, are refused.
    let store = KmsStore::connect(&config, memory.clone()).await.unwrap();
    let short = encrypt(port, &key, "abc", None).await;
    assert_eq!(
        store.get(&kms_ref(&short)).await.unwrap_err().kind(),
        SecretErrorKind::InvalidValue
    );
    let binary = common::kms::admin(port)
        .encrypt()
        .key_id(&key)
        .plaintext(aws_sdk_kms::primitives::Blob::new(vec![
            0xff, 0xfe, 0xfd, 0xfc, 0xfb,
        ]))
        .send()
        .await
        .unwrap()
        .ciphertext_blob
        .unwrap()
        .into_inner();
    let e = store.get(&kms_ref(&binary)).await.unwrap_err();
    assert_eq!(e.kind(), SecretErrorKind::InvalidValue);
    assert!(e.to_string().contains("not UTF-8"), "{e}");
}

#[tokio::test]
async fn wrong_credentials_are_permission_denied() {
    // moto checks signatures against its IAM users when told to from the first request on.
    let Some(moto) = Process::start(
        "moto_server",
        |port, _| {
            vec![
                "-H".into(),
                "127.0.0.1".into(),
                "-p".into(),
                port.to_string(),
            ]
        },
        &[("INITIAL_NO_AUTH_ACTION_COUNT", "0")],
    ) else {
        return;
    };
    let (config, memory) = config(moto.port);
    let store = KmsStore::connect(&config, memory.clone()).await.unwrap();
    let e = store.get(&kms_ref(&[1u8; 64])).await.unwrap_err();
    assert_eq!(e.kind(), SecretErrorKind::PermissionDenied, "{e}");
    assert!(
        !e.to_string().contains(common::kms::SECRET_ACCESS_KEY),
        "{e}"
    );
    assert!(!store.health().await.is_serving());
}

#[tokio::test]
async fn server_down_then_up() {
    let Some(mut moto) = agents_testkit::moto() else {
        return;
    };
    let port = moto.port();
    let key = create_key(port).await;
    let ciphertext = encrypt(port, &key, "kms-down-up-value-1", None).await;
    let (config, memory) = config(port);
    let store = KmsStore::connect(&config, memory.clone()).await.unwrap();
    assert!(store.get(&kms_ref(&ciphertext)).await.is_ok());

    moto.kill();
    let e = store.get(&kms_ref(&ciphertext)).await.unwrap_err();
    assert_eq!(e.kind(), SecretErrorKind::Unreachable, "{e}");
    assert!(e.is_retryable());
    assert!(e.to_string().contains(&format!("127.0.0.1:{port}")), "{e}");
    assert!(!store.health().await.is_serving());

    // moto keeps nothing across restarts: a new key, a new ciphertext, the same store.
    moto.start_again().unwrap();
    let key = create_key(port).await;
    let ciphertext = encrypt(port, &key, "kms-down-up-value-2", None).await;
    assert_eq!(
        store
            .get(&kms_ref(&ciphertext))
            .await
            .unwrap()
            .expose_secret(),
        "kms-down-up-value-2"
    );
    assert_eq!(store.health().await, StoreHealth::Healthy);
    let r: SecretRef = "env:HOME".parse().unwrap();
    assert_eq!(
        store.get(&r).await.unwrap_err().kind(),
        SecretErrorKind::Unsupported
    );
}

/// Writes `content` to `name` in `dir` with mode 600; returns its `kms-envelope-file:` reference.
fn envelope_file(dir: &std::path::Path, name: &str, content: &str) -> SecretRef {
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    format!("kms-envelope-file:{}", path.display())
        .parse()
        .unwrap()
}

#[tokio::test]
async fn envelopes_round_trip_and_refuse_tampering_garbage_and_other_keys() {
    let Some(moto) = agents_testkit::moto() else {
        return;
    };
    let port = moto.port();
    let key = create_key(port).await;
    let (config, memory) = config(port);
    let store = KmsStore::connect(&config, memory.clone()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();

    // Larger than what KMS encrypts directly.
    let value = format!("envelope-value-{}", "x".repeat(8 * 1024));
    let document = store
        .encrypt_envelope(&key, &value.clone().into())
        .await
        .unwrap();
    assert!(!document.contains("envelope-value-"), "{document}");
    let r = envelope_file(dir.path(), "ok.json", &document);
    assert_eq!(store.get(&r).await.unwrap().expose_secret(), value);
    assert_eq!(agents_core::redact(&format!("v={value}")), "v=***");
    // Pinned to the right key (the canary test goes through the whole stack).
    let pinned = KmsStore::connect(&config.clone().with_key_id(&key), memory.clone())
        .await
        .unwrap();
    assert_eq!(pinned.get(&r).await.unwrap().expose_secret(), value);
    // One flipped byte of `data`: the tag no longer matches.
    let mut parsed: serde_json::Value = serde_json::from_str(&document).unwrap();
    let mut data = STANDARD.decode(parsed["data"].as_str().unwrap()).unwrap();
    data[3] ^= 0x01;
    parsed["data"] = STANDARD.encode(&data).into();
    let tampered = envelope_file(dir.path(), "tampered.json", &parsed.to_string());
    let e = store.get(&tampered).await.unwrap_err();
    assert_eq!(e.kind(), SecretErrorKind::Rejected, "{e}");
    assert!(e.to_string().contains("does not match its key"), "{e}");
    assert!(e.to_string().contains("tampered.json"), "{e}");

    // Truncated JSON, and a field that is wrong: named, never shown.
    let truncated = envelope_file(
        dir.path(),
        "truncated.json",
        &document[..document.len() / 2],
    );
    let e = store.get(&truncated).await.unwrap_err();
    assert_eq!(e.kind(), SecretErrorKind::Rejected, "{e}");
    assert!(e.to_string().contains("not a KMS envelope"), "{e}");
    assert!(e.to_string().contains("truncated.json"), "{e}");
    let mut parsed: serde_json::Value = serde_json::from_str(&document).unwrap();
    parsed["nonce"] = "c2VjcmV0LW5vbmNl!".into();
    let garbage = envelope_file(dir.path(), "garbage.json", &parsed.to_string());
    let e = store.get(&garbage).await.unwrap_err();
    assert!(e.to_string().contains("field `nonce`"), "{e}");
    assert!(!e.to_string().contains("c2VjcmV0LW5vbmNl"), "{e}");

    // A store pinned to another key refuses the data key.
    let other = create_key(port).await;
    let wrong = KmsStore::connect(&config.clone().with_key_id(&other), memory.clone())
        .await
        .unwrap();
    let e = wrong.get(&r).await.unwrap_err();
    assert!(
        matches!(
            e.kind(),
            SecretErrorKind::PermissionDenied | SecretErrorKind::Rejected
        ),
        "{e}"
    );
    // An envelope made under an encryption context needs it to open.
    let contextual = KmsStore::connect(
        &config.clone().with_context("app", "agents"),
        memory.clone(),
    )
    .await
    .unwrap();
    let document = contextual
        .encrypt_envelope(&key, &"envelope-context-value".to_owned().into())
        .await
        .unwrap();
    let r = envelope_file(dir.path(), "context.json", &document);
    assert_eq!(
        contextual.get(&r).await.unwrap().expose_secret(),
        "envelope-context-value"
    );
    assert_eq!(
        store.get(&r).await.unwrap_err().kind(),
        SecretErrorKind::Rejected
    );

    // Not a regular file; a key that does not exist.
    let r: SecretRef = format!("kms-envelope-file:{}", dir.path().display())
        .parse()
        .unwrap();
    assert!(store.get(&r).await.is_err());
    let e = store
        .encrypt_envelope(
            "11111111-2222-3333-4444-555555555555",
            &"envelope-missing-key".to_owned().into(),
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), SecretErrorKind::NotFound, "{e}");
}

/// Writes `content` to `path` with mode 600, replacing the file as a credential sidecar would.
fn write_private(path: &std::path::Path, content: &str) {
    let next = path.with_extension("next");
    std::fs::write(&next, content).unwrap();
    std::fs::set_permissions(&next, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::rename(&next, path).unwrap();
}

/// Against real KMS (moto): a store whose credential files are rewritten between calls keeps
/// working, and one whose file went missing keeps the credentials read last. Which credentials
/// sign each call is `kms::client`'s unit test: moto accepts any.
#[tokio::test]
async fn rotated_credential_files_keep_decrypting_without_a_restart() {
    let Some(moto) = agents_testkit::moto() else {
        return;
    };
    let port = moto.port();
    let key = create_key(port).await;
    let first = encrypt(port, &key, "kms-rotation-value-1", None).await;
    let second = encrypt(port, &key, "kms-rotation-value-2", None).await;
    let third = encrypt(port, &key, "kms-rotation-value-3", None).await;
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("aws-secret");
    let token_file = dir.path().join("aws-session-token");
    write_private(&secret_file, "rotating-secret-access-key-1");
    write_private(&token_file, "rotating-session-token-1");
    let credentials = KmsCredentials::new(
        "ASIAROTATING",
        format!("file:{}", secret_file.display()).parse().unwrap(),
    )
    .with_session_token(format!("file:{}", token_file.display()).parse().unwrap());
    let (config, _) = config(port);
    let secrets = SecretsConfig::default()
        .with_kms(config.with_credentials(credentials))
        .build()
        .await
        .unwrap();
    // Three ciphertexts, so the cache in front answers none of them from memory.
    let read = |ciphertext: Vec<u8>| {
        let secrets = &secrets;
        async move {
            secrets
                .get(&kms_ref(&ciphertext))
                .await
                .unwrap()
                .expose_secret()
                .to_owned()
        }
    };
    assert_eq!(read(first).await, "kms-rotation-value-1");
    write_private(&secret_file, "rotating-secret-access-key-2");
    write_private(&token_file, "rotating-session-token-2");
    assert_eq!(read(second).await, "kms-rotation-value-2");
    std::fs::remove_file(&token_file).unwrap();
    assert_eq!(read(third).await, "kms-rotation-value-3");
}
