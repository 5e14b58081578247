//! The Vault store against a real Vault-compatible server, OpenBao's `bao server -dev`: reads
//! and versions, missing keys, wrong tokens, AppRole, token renewal, namespaces, TLS, the server
//! going down and coming back, and rotation through the cache.

#![cfg(all(feature = "vault", feature = "env"))]
// A failing test should stop loudly: unwrap and panic are how tests say so.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use agents_secrets::secrecy::ExposeSecret;
use agents_secrets::{
    CacheConfig, CachedStore, FileStore, SecretErrorKind, SecretRef, SecretStore, SecretsConfig,
    StoreHealth, VaultAuth, VaultConfig, VaultStore, VaultTls,
};
use common::vault::{put, root, token_config, token_store};
use common::{Process, eventually};
use vaultrs::api::auth::approle::requests::{SetAppRoleRequest, SetAppRoleRequestBuilder};

fn reference(text: &str) -> SecretRef {
    text.parse().unwrap()
}

fn private_file(dir: &std::path::Path, name: &str, content: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

fn file_ref(path: &std::path::Path) -> SecretRef {
    reference(&format!("file:{}", path.display()))
}

fn address(peer: &agents_testkit::Peer) -> String {
    format!("http://{}", peer.addr())
}

async fn read(store: &dyn SecretStore, text: &str) -> String {
    store
        .get(&reference(text))
        .await
        .unwrap()
        .expose_secret()
        .to_owned()
}

async fn kind(store: &dyn SecretStore, text: &str) -> SecretErrorKind {
    store.get(&reference(text)).await.unwrap_err().kind()
}

#[tokio::test]
async fn reads_keys_and_versions_and_names_what_is_missing() {
    let Some(bao) = agents_testkit::openbao() else {
        return;
    };
    let addr = address(&bao);
    put(
        &addr,
        "app/db",
        &[("password", "db-password-v1"), ("user", "agents")],
    )
    .await;
    put(
        &addr,
        "app/db",
        &[("password", "db-password-v2"), ("user", "agents")],
    )
    .await;
    put(&addr, "app/odd", &[("short", "abc")]).await;
    let json = serde_json::json!({"number": 12345});
    vaultrs::kv2::set(&root(&addr), "secret", "app/typed", &json)
        .await
        .unwrap();
    let store = token_store(&addr, agents_testkit::OPENBAO_ROOT_TOKEN);

    assert_eq!(
        read(&store, "vault:secret/app/db#password").await,
        "db-password-v2"
    );
    assert_eq!(
        read(&store, "vault:secret/app/db?version=1#password").await,
        "db-password-v1"
    );
    assert_eq!(agents_core::redact("was db-password-v1"), "was ***");

    let e = store
        .get(&reference("vault:secret/app/db#pasword"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), SecretErrorKind::NotFound);
    let shown = e.to_string();
    assert!(
        shown.contains("vault:secret/app/db#pasword")
            && shown.contains("vault")
            && shown.contains("password, user"),
        "{shown}"
    );
    assert!(!shown.contains("db-password"), "{shown}");
    assert_eq!(
        kind(&store, "vault:secret/app/nothing#key").await,
        SecretErrorKind::NotFound
    );
    assert_eq!(
        kind(&store, "vault:secret/app/db?version=9#password").await,
        SecretErrorKind::NotFound
    );
    assert_eq!(
        kind(&store, "vault:nomount/app#key").await,
        SecretErrorKind::NotFound
    );
    assert_eq!(
        kind(&store, "vault:secret/app/odd#short").await,
        SecretErrorKind::InvalidValue
    );
    let e = store
        .get(&reference("vault:secret/app/typed#number"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), SecretErrorKind::InvalidValue);
    assert!(
        e.to_string().contains("number") && !e.to_string().contains("12345"),
        "{e}"
    );
    assert_eq!(kind(&store, "env:HOME").await, SecretErrorKind::Unsupported);

    assert_eq!(store.health().await, StoreHealth::Healthy);
    let status = store.token_status();
    assert!(
        status.authenticated && status.expires_in.is_none(),
        "{status:?}"
    );
    assert_eq!(status.logins, 1);
}

#[tokio::test]
async fn a_wrong_token_is_permission_denied_naming_both_references() {
    let Some(bao) = agents_testkit::openbao() else {
        return;
    };
    let addr = address(&bao);
    put(&addr, "app/api", &[("key", "api-key-for-wrong-token")]).await;
    let store = token_store(&addr, "not-a-valid-token");
    let e = store
        .get(&reference("vault:secret/app/api#key"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), SecretErrorKind::PermissionDenied);
    assert!(!e.is_retryable());
    let shown = e.to_string();
    assert!(
        shown.contains("vault:secret/app/api#key") && shown.contains("env:VAULT_TOKEN"),
        "{shown}"
    );
    assert!(!shown.contains("not-a-valid-token"), "{shown}");
    assert_eq!(
        store.login().await.unwrap_err().kind(),
        SecretErrorKind::PermissionDenied
    );

    // A token without the policy for this path: denied too.
    let limited = vaultrs::token::new(
        &root(&addr),
        Some(
            vaultrs::api::token::requests::CreateTokenRequest::builder()
                .policies(vec!["default".to_owned()])
                .no_default_policy(false),
        ),
    )
    .await
    .unwrap();
    let store = token_store(&addr, &limited.client_token);
    assert_eq!(
        kind(&store, "vault:secret/app/api#key").await,
        SecretErrorKind::PermissionDenied
    );

    // And start-up refuses to go on with a refused credential.
    let dir = tempfile::tempdir().unwrap();
    let token_file = private_file(dir.path(), "token", "not-a-valid-token-either");
    let config = VaultConfig::new(&addr, VaultAuth::token(file_ref(&token_file)));
    let e = SecretsConfig::default()
        .with_vault(config)
        .build()
        .await
        .unwrap_err();
    assert_eq!(e.kind(), SecretErrorKind::PermissionDenied, "{e}");
}

#[tokio::test]
async fn server_down_then_up() {
    let Some(mut bao) = agents_testkit::openbao() else {
        return;
    };
    let addr = address(&bao);
    put(&addr, "app/api", &[("key", "down-up-value-1")]).await;
    let store = token_store(&addr, agents_testkit::OPENBAO_ROOT_TOKEN);
    assert_eq!(
        read(&store, "vault:secret/app/api#key").await,
        "down-up-value-1"
    );

    bao.kill();
    let e = store
        .get(&reference("vault:secret/app/api#key"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), SecretErrorKind::Unreachable);
    assert!(e.is_retryable());
    assert!(e.to_string().contains(&addr), "{e}");
    assert!(!store.health().await.is_serving());

    // The dev server keeps nothing: write the secret again, as an operator restoring it would.
    bao.start_again().unwrap();
    put(&addr, "app/api", &[("key", "down-up-value-2")]).await;
    assert_eq!(
        read(&store, "vault:secret/app/api#key").await,
        "down-up-value-2"
    );
    assert_eq!(store.health().await, StoreHealth::Healthy);
}

#[tokio::test]
async fn an_outage_within_the_ttl_fails_no_request_and_build_survives_one() {
    let Some(mut bao) = agents_testkit::openbao() else {
        return;
    };
    let addr = address(&bao);
    put(&addr, "app/api", &[("key", "outage-cached-value")]).await;
    let (config, memory) = token_config(&addr, agents_testkit::OPENBAO_ROOT_TOKEN);
    let vault = Arc::new(VaultStore::new(&config, memory).unwrap());
    let cache = CachedStore::new(vault, CacheConfig::default().with_ttl_ms(600_000)).unwrap();
    assert_eq!(
        read(&cache, "vault:secret/app/api#key").await,
        "outage-cached-value"
    );
    bao.kill();
    for _ in 0..3 {
        assert_eq!(
            read(&cache, "vault:secret/app/api#key").await,
            "outage-cached-value"
        );
    }
    assert!(cache.stats().hits >= 3);

    // Vault down at start-up: the process starts, and vault: reads fail until it is back. The
    // token comes from a file, the way a deployment would hand it over.
    let dir = tempfile::tempdir().unwrap();
    let token_file = private_file(dir.path(), "token", "root\n");
    let config = VaultConfig::new(&addr, VaultAuth::token(file_ref(&token_file)))
        .with_request_timeout_ms(5_000);
    let secrets = SecretsConfig::default()
        .with_vault(config)
        .with_cache(
            CacheConfig::default()
                .with_ttl_ms(1_000)
                .with_refresh_ahead_ms(0),
        )
        .build()
        .await
        .unwrap();
    assert_eq!(
        kind(&secrets, "vault:secret/app/api#key").await,
        SecretErrorKind::Unreachable
    );
    bao.start_again().unwrap();
    put(&addr, "app/api", &[("key", "after-outage-value")]).await;
    // The cache gives the failure to the reads of the next `error_ttl_ms` (1 s), then asks
    // Vault again.
    let back = std::time::Instant::now();
    let value = loop {
        match secrets.get(&reference("vault:secret/app/api#key")).await {
            Ok(value) => break value.expose_secret().to_owned(),
            Err(e) => assert_eq!(e.kind(), SecretErrorKind::Unreachable, "{e}"),
        }
        assert!(
            back.elapsed() < std::time::Duration::from_secs(30),
            "vault: reads still fail 30 s after Vault came back"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(value, "after-outage-value");
}

/// The wiring only: a value rotated in Vault reaches readers of the cache. When it is served
/// (old value until the TTL, new one right after, refresh-ahead) is the cache's unit tests'
/// business, with a paused clock.
#[tokio::test]
async fn rotation_in_vault_is_seen_through_the_cache() {
    let Some(bao) = agents_testkit::openbao() else {
        return;
    };
    let addr = address(&bao);
    put(&addr, "app/rotating", &[("key", "rotation-old-value")]).await;
    let (config, memory) = token_config(&addr, agents_testkit::OPENBAO_ROOT_TOKEN);
    let vault = Arc::new(VaultStore::new(&config, memory).unwrap());
    let cache = CachedStore::new(
        vault,
        CacheConfig::default()
            .with_ttl_ms(500)
            .with_refresh_ahead_ms(100),
    )
    .unwrap();
    let r = reference("vault:secret/app/rotating#key");
    assert_eq!(read(&cache, r.as_str()).await, "rotation-old-value");

    // Rotate in Vault, as an operator would.
    put(&addr, "app/rotating", &[("key", "rotation-new-value")]).await;
    eventually(
        "the rotated value is served",
        Duration::from_secs(30),
        || async { read(&cache, r.as_str()).await == "rotation-new-value" },
    )
    .await;
}

/// Enables AppRole with the root token through the HTTP API and creates a role whose tokens
/// cannot outlive `token_ttl`; returns the role id and a secret id.
async fn approle(addr: &str, token_ttl: &str) -> (String, String) {
    approle_with(
        addr,
        SetAppRoleRequest::builder()
            .token_ttl(token_ttl)
            .token_max_ttl(token_ttl),
    )
    .await
}

/// [`approle`] with the role's token settings given by `role` (its policy is set here).
async fn approle_with(addr: &str, role: &mut SetAppRoleRequestBuilder) -> (String, String) {
    let admin = root(addr);
    vaultrs::sys::auth::enable(&admin, "approle", "approle", None)
        .await
        .unwrap();
    vaultrs::sys::policy::set(
        &admin,
        "reader",
        r#"path "secret/data/app/*" { capabilities = ["read"] }"#,
    )
    .await
    .unwrap();
    vaultrs::auth::approle::role::set(
        &admin,
        "approle",
        "agents",
        Some(role.token_policies(vec!["reader".to_owned()])),
    )
    .await
    .unwrap();
    let role_id = vaultrs::auth::approle::role::read_id(&admin, "approle", "agents")
        .await
        .unwrap()
        .role_id;
    let secret_id =
        vaultrs::auth::approle::role::secret::generate(&admin, "approle", "agents", None)
            .await
            .unwrap()
            .secret_id;
    (role_id, secret_id)
}

#[tokio::test]
async fn approle_login_with_a_secret_id_from_a_file_and_relogin_at_max_ttl() {
    let Some(bao) = agents_testkit::openbao() else {
        return;
    };
    let addr = address(&bao);
    put(&addr, "app/api", &[("key", "approle-read-value")]).await;
    put(&addr, "other/api", &[("key", "outside-the-policy")]).await;
    // Tokens live 2 s and cannot be renewed past that: the store must log in again.
    let (role_id, secret_id) = approle(&addr, "2s").await;
    let dir = tempfile::tempdir().unwrap();
    let path = private_file(dir.path(), "secret-id", &format!("{secret_id}\n"));
    let secret_ref = file_ref(&path);
    let config = VaultConfig::new(&addr, VaultAuth::app_role(&role_id, secret_ref.clone()))
        .with_renew_at_percent(50)
        .with_renew_retry_ms(200);
    let store = Arc::new(VaultStore::new(&config, Arc::new(FileStore::new())).unwrap());

    assert_eq!(
        read(store.as_ref(), "vault:secret/app/api#key").await,
        "approle-read-value"
    );
    assert_eq!(store.token_status().logins, 1);
    assert!(store.token_status().expires_in.is_some());
    // The login token is registered with the redactor like any secret.
    assert_eq!(agents_core::redact(&secret_id), "***");
    assert_eq!(
        kind(store.as_ref(), "vault:secret/other/api#key").await,
        SecretErrorKind::PermissionDenied
    );

    let renewal = store.spawn_token_renewal();
    eventually(
        "two more AppRole logins",
        Duration::from_secs(30),
        || async { store.token_status().logins >= 3 },
    )
    .await;
    assert_eq!(
        read(store.as_ref(), "vault:secret/app/api#key").await,
        "approle-read-value"
    );
    assert!(!renewal.is_finished());
    renewal.abort();

    // A wrong secret id is a refusal naming the secret id's reference.
    std::fs::write(&path, "00000000-0000-0000-0000-000000000000").unwrap();
    let wrong = VaultStore::new(&config, Arc::new(FileStore::new())).unwrap();
    let e = wrong.login().await.unwrap_err();
    assert_eq!(e.kind(), SecretErrorKind::PermissionDenied);
    assert!(e.to_string().contains(secret_ref.as_str()), "{e}");
}

#[tokio::test]
async fn a_failed_relogin_keeps_the_still_valid_token() {
    let Some(bao) = agents_testkit::openbao() else {
        return;
    };
    let addr = address(&bao);
    put(&addr, "app/api", &[("key", "relogin-fails-value")]).await;
    // Batch tokens cannot be renewed: when due (after 3 of their 30 s) the store logs in again.
    let (role_id, secret_id) = approle_with(
        &addr,
        SetAppRoleRequest::builder()
            .token_type("batch")
            .token_ttl("30s")
            .token_max_ttl("30s"),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let path = private_file(dir.path(), "secret-id", &secret_id);
    let config = VaultConfig::new(&addr, VaultAuth::app_role(&role_id, file_ref(&path)))
        .with_renew_at_percent(10)
        .with_renew_retry_ms(200);
    let store = Arc::new(VaultStore::new(&config, Arc::new(FileStore::new())).unwrap());
    assert_eq!(
        read(store.as_ref(), "vault:secret/app/api#key").await,
        "relogin-fails-value"
    );
    let status = store.token_status();
    assert!(
        !status.renewable && status.expires_in.is_some(),
        "{status:?}"
    );

    // The secret id goes away (a rotation gone wrong): the logins at the renewal point fail.
    std::fs::remove_file(&path).unwrap();
    let renewal = store.spawn_token_renewal();
    eventually(
        "a failed login at the renewal point",
        Duration::from_secs(30),
        || async { store.token_status().failed_renewals >= 1 },
    )
    .await;
    // The token the store has is still good for most of its 30 s: reads go on with it.
    for _ in 0..3 {
        assert_eq!(
            read(store.as_ref(), "vault:secret/app/api#key").await,
            "relogin-fails-value"
        );
    }
    let status = store.token_status();
    assert!(
        status.authenticated && status.expires_in.is_some_and(|left| !left.is_zero()),
        "{status:?}"
    );
    assert_eq!(status.logins, 1, "{status:?}");

    // The secret id is back: a later retry logs in.
    private_file(dir.path(), "secret-id", &secret_id);
    eventually("a new login", Duration::from_secs(30), || async {
        store.token_status().logins >= 2
    })
    .await;
    assert_eq!(
        read(store.as_ref(), "vault:secret/app/api#key").await,
        "relogin-fails-value"
    );
    renewal.abort();
}

#[tokio::test]
async fn a_short_renewable_token_is_renewed_before_it_expires() {
    let Some(bao) = agents_testkit::openbao() else {
        return;
    };
    let addr = address(&bao);
    put(&addr, "app/api", &[("key", "renewal-read-value")]).await;
    let short = vaultrs::token::new(
        &root(&addr),
        Some(
            vaultrs::api::token::requests::CreateTokenRequest::builder()
                .ttl("3s")
                .explicit_max_ttl("1h")
                .renewable(true),
        ),
    )
    .await
    .unwrap();
    let (config, memory) = token_config(&addr, &short.client_token);
    let store = Arc::new(VaultStore::new(&config.with_renew_at_percent(50), memory).unwrap());
    let started = Instant::now();
    store.login().await.unwrap();
    let status = store.token_status();
    assert!(
        status.renewable && status.expires_in.is_some(),
        "{status:?}"
    );
    let renewal = store.spawn_token_renewal();
    eventually("three renewals", Duration::from_secs(30), || async {
        store.token_status().renewals >= 3
    })
    .await;
    // Each renewal waits half a lease (1.5 s): the token has outlived its 3 s by renewal alone.
    assert!(started.elapsed() > Duration::from_secs(3));
    assert_eq!(
        read(store.as_ref(), "vault:secret/app/api#key").await,
        "renewal-read-value"
    );
    assert_eq!(store.token_status().logins, 1);
    // The renewal task ends when the store goes away.
    drop(store);
    eventually("the renewal task ends", Duration::from_secs(30), || async {
        renewal.is_finished()
    })
    .await;
}

#[tokio::test]
async fn a_policy_denial_does_not_log_in_again() {
    let Some(bao) = agents_testkit::openbao() else {
        return;
    };
    let addr = address(&bao);
    put(&addr, "app/api", &[("key", "denial-read-value")]).await;
    put(&addr, "other/api", &[("key", "denial-outside-the-policy")]).await;
    let (role_id, secret_id) = approle(&addr, "1h").await;
    let dir = tempfile::tempdir().unwrap();
    let path = private_file(dir.path(), "secret-id", &secret_id);
    let config = VaultConfig::new(&addr, VaultAuth::app_role(&role_id, file_ref(&path)));
    let store = VaultStore::new(&config, Arc::new(FileStore::new())).unwrap();
    assert_eq!(
        read(&store, "vault:secret/app/api#key").await,
        "denial-read-value"
    );
    let logins = store.token_status().logins;
    assert_eq!(logins, 1);
    for _ in 0..20 {
        let e = store
            .get(&reference("vault:secret/other/api#key"))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), SecretErrorKind::PermissionDenied);
        assert!(e.to_string().contains("vault:secret/other/api#key"), "{e}");
    }
    // The token was fine all along: no login minted a new one.
    assert_eq!(store.token_status().logins, logins);
    assert_eq!(
        read(&store, "vault:secret/app/api#key").await,
        "denial-read-value"
    );
}

#[tokio::test]
async fn a_revoked_token_is_replaced_from_its_reference() {
    let Some(bao) = agents_testkit::openbao() else {
        return;
    };
    let addr = address(&bao);
    put(&addr, "app/api", &[("key", "revoked-read-value")]).await;
    let admin = root(&addr);
    let first = vaultrs::token::new(&admin, None)
        .await
        .unwrap()
        .client_token;
    let (config, memory) = token_config(&addr, &first);
    let store = VaultStore::new(&config, Arc::clone(&memory) as Arc<dyn SecretStore>).unwrap();
    assert_eq!(
        read(&store, "vault:secret/app/api#key").await,
        "revoked-read-value"
    );
    assert_eq!(store.token_status().logins, 1);

    // The operator hands over a new token and revokes the old one.
    let second = vaultrs::token::new(&admin, None)
        .await
        .unwrap()
        .client_token;
    memory
        .insert(&reference("env:VAULT_TOKEN"), second.into())
        .unwrap();
    vaultrs::token::revoke(&admin, &first).await.unwrap();
    // Logins caused by denied reads are spaced out, so this may take a few seconds.
    eventually(
        "a read with the new token",
        Duration::from_secs(30),
        || async {
            store
                .get(&reference("vault:secret/app/api#key"))
                .await
                .is_ok()
        },
    )
    .await;
    assert_eq!(store.token_status().logins, 2);
}

#[tokio::test]
async fn renewing_a_valid_token_does_not_hold_reads_up_while_vault_is_down() {
    let Some(mut bao) = agents_testkit::openbao() else {
        return;
    };
    let addr = address(&bao);
    put(&addr, "app/api", &[("key", "renew-down-value")]).await;
    let token = vaultrs::token::new(
        &root(&addr),
        Some(
            vaultrs::api::token::requests::CreateTokenRequest::builder()
                .ttl("20s")
                .explicit_max_ttl("1h")
                .renewable(true),
        ),
    )
    .await
    .unwrap();
    let (config, memory) = token_config(&addr, &token.client_token);
    // Due for renewal after 2 s; a failed renewal is not retried for ten minutes.
    let config = config
        .with_renew_at_percent(10)
        .with_renew_retry_ms(600_000);
    let store = Arc::new(VaultStore::new(&config, memory).unwrap());
    assert_eq!(
        read(store.as_ref(), "vault:secret/app/api#key").await,
        "renew-down-value"
    );
    assert!(store.token_status().renewable);
    eventually(
        "the token is due for renewal",
        Duration::from_secs(30),
        || {
            let left = store.token_status().expires_in;
            async move { left.is_some_and(|left| left <= Duration::from_secs(17)) }
        },
    )
    .await;
    bao.kill();

    // Concurrent reads while Vault is down: each fails on its own read, and at most one of
    // them tried to renew the still-valid token (none waits for another's attempt).
    let reads: Vec<_> = (0..5)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                store
                    .get(&reference("vault:secret/app/api#key"))
                    .await
                    .unwrap_err()
                    .kind()
            })
        })
        .collect();
    for task in reads {
        assert_eq!(task.await.unwrap(), SecretErrorKind::Unreachable);
    }
    for _ in 0..3 {
        assert_eq!(
            kind(store.as_ref(), "vault:secret/app/api#key").await,
            SecretErrorKind::Unreachable
        );
    }
    let status = store.token_status();
    assert_eq!(status.failed_renewals, 1, "{status:?}");
    assert_eq!((status.logins, status.renewals), (1, 0), "{status:?}");
}

/// Runs the `bao` CLI against `addr` as root, for what vaultrs has no call for (namespaces).
fn bao_cli(addr: &str, namespace: &str, args: &[&str]) {
    let binary = agents_testkit::find_binary("bao").unwrap();
    let output = std::process::Command::new(binary)
        .args(args)
        .env("BAO_ADDR", addr)
        .env("BAO_NAMESPACE", namespace)
        .env("BAO_TOKEN", agents_testkit::OPENBAO_ROOT_TOKEN)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "bao {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn namespaces_are_sent() {
    let Some(bao) = agents_testkit::openbao() else {
        return;
    };
    let addr = address(&bao);
    bao_cli(&addr, "", &["namespace", "create", "team-a"]);
    bao_cli(
        &addr,
        "team-a",
        &["secrets", "enable", "-path=kv", "-version=2", "kv"],
    );
    bao_cli(
        &addr,
        "team-a",
        &["kv", "put", "kv/app", "key=namespaced-value"],
    );
    let (config, memory) = token_config(&addr, agents_testkit::OPENBAO_ROOT_TOKEN);
    let store = VaultStore::new(&config.clone().with_namespace("team-a"), memory).unwrap();
    assert_eq!(read(&store, "vault:kv/app#key").await, "namespaced-value");
    let (_, memory) = token_config(&addr, agents_testkit::OPENBAO_ROOT_TOKEN);
    let outside = VaultStore::new(&config, memory).unwrap();
    assert_eq!(
        kind(&outside, "vault:kv/app#key").await,
        SecretErrorKind::NotFound
    );
}

#[tokio::test]
async fn tls_verifies_against_the_configured_ca() {
    let Some(bao) = Process::start(
        "bao",
        |port, dir| {
            vec![
                "server".into(),
                "-dev".into(),
                "-dev-tls".into(),
                format!("-dev-tls-cert-dir={}", dir.display()),
                format!("-dev-root-token-id={}", agents_testkit::OPENBAO_ROOT_TOKEN),
                format!("-dev-listen-address=127.0.0.1:{port}"),
            ]
        },
        &[],
    ) else {
        return;
    };
    let addr = format!("https://127.0.0.1:{}", bao.port);
    let ca = bao.dir.path().join("vault-ca.pem");
    let store = |tls: VaultTls| {
        let (config, memory) = token_config(&addr, agents_testkit::OPENBAO_ROOT_TOKEN);
        VaultStore::new(&config.with_tls(tls), memory).unwrap()
    };
    // The server's certificate is signed by its own CA: unknown without it, and not a
    // failure that goes away by retrying.
    let e = store(VaultTls::default()).login().await.unwrap_err();
    assert_eq!(e.kind(), SecretErrorKind::Rejected, "{e}");
    assert!(e.to_string().contains("vault.tls"), "{e}");
    let trusted = store(VaultTls::default().with_ca_cert(&ca));
    trusted.login().await.unwrap();
    assert_eq!(trusted.health().await, StoreHealth::Healthy);
    let unverified = store(VaultTls::default().with_skip_verify(true));
    unverified.login().await.unwrap();
    assert!(unverified.token_status().authenticated);
}
