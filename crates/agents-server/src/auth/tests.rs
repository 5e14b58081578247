#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use agents_secrets::{MemoryStore, SecretErrorKind, SecretRef};
use tonic::Code;
use tonic::metadata::MetadataMap;

use super::*;

const CI_KEY: &str = "ci-key-7f3a9c21d4e8b605";
const DASH_KEY: &str = "dashboard-key-0b9e4471aa2c";
const OTHER_KEY: &str = "globex-key-5d21f08c3b7e9a44";
const VAULT_KEY: &str = "vault-held-key-93c1e07b5a26";

fn config() -> AuthConfig {
    AuthConfig::new(vec![
        ApiKeyConfig::with_sha256("ci", "acme", vec![Role::Execute], digest_hex(CI_KEY)),
        ApiKeyConfig::with_sha256("dashboard", "acme", vec![Role::Read], digest_hex(DASH_KEY)),
        ApiKeyConfig::with_sha256(
            "globex-ci",
            "globex",
            vec![Role::Admin],
            digest_hex(OTHER_KEY),
        ),
    ])
}

async fn authenticator() -> Authenticator {
    Authenticator::load(&config(), &MemoryStore::new())
        .await
        .unwrap()
}

fn metadata(pairs: &[(&'static str, &str)]) -> MetadataMap {
    let mut metadata = MetadataMap::new();
    for (name, value) in pairs {
        metadata.insert(*name, value.parse().unwrap());
    }
    metadata
}

/// The status, its message and its Debug form never show `key`.
fn assert_hidden(status: &tonic::Status, key: &str) {
    assert!(!status.message().contains(key), "{}", status.message());
    assert!(!format!("{status:?}").contains(key));
    assert!(!status.to_string().contains(key));
}

#[tokio::test]
async fn bearer_and_x_api_key_are_accepted() {
    let auth = authenticator().await;
    assert!(auth.is_enabled());
    assert_eq!(auth.key_count(), 3);
    for md in [
        metadata(&[("authorization", &format!("Bearer {CI_KEY}"))]),
        metadata(&[("authorization", &format!("bearer  {CI_KEY} "))]),
        metadata(&[("x-api-key", CI_KEY)]),
        // A non-Bearer authorization does not hide the x-api-key.
        metadata(&[
            ("authorization", "Basic Zm9vOmJhcg=="),
            ("x-api-key", CI_KEY),
        ]),
    ] {
        let principal = auth.authenticate(&md).unwrap();
        assert_eq!(principal.key_id(), "ci");
        assert_eq!(principal.tenant(), "acme");
        assert_eq!(principal.roles(), &[Role::Execute]);
        principal.require(Role::Execute).unwrap();
        principal.require(Role::Read).unwrap();
    }
}

#[tokio::test]
async fn no_key_is_unauthenticated_and_says_how_to_send_one() {
    let auth = authenticator().await;
    for md in [
        MetadataMap::new(),
        metadata(&[("authorization", "Bearer ")]),
        metadata(&[("authorization", "Basic Zm9vOmJhcg==")]),
        metadata(&[("x-api-key", "  ")]),
    ] {
        let status = auth.authenticate(&md).unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated);
        assert_eq!(
            status.message(),
            "missing API key: send `authorization: Bearer <key>` or `x-api-key`"
        );
    }
}

#[tokio::test]
async fn a_wrong_key_is_unauthenticated_and_never_echoed() {
    let auth = authenticator().await;
    let wrong = "sk-wrong-key-4c0ffee5b1d2";
    for md in [
        metadata(&[("authorization", &format!("Bearer {wrong}"))]),
        metadata(&[("x-api-key", wrong)]),
        // The digest itself is not a key.
        metadata(&[("x-api-key", &digest_hex(CI_KEY))]),
        // Nor is a prefix of a key.
        metadata(&[("x-api-key", &CI_KEY[..10])]),
    ] {
        let status = auth.authenticate(&md).unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated);
        assert_eq!(status.message(), "invalid API key");
        assert_hidden(&status, wrong);
        assert_hidden(&status, CI_KEY);
    }
    // Neither the authenticator nor a principal shows a key or a digest.
    let shown = format!("{auth:?}");
    for secret in [CI_KEY, DASH_KEY, OTHER_KEY] {
        assert!(!shown.contains(secret), "{shown}");
        assert!(!shown.contains(&digest_hex(secret)), "{shown}");
    }
    let principal = auth
        .authenticate(&metadata(&[("x-api-key", CI_KEY)]))
        .unwrap();
    assert!(!format!("{principal:?}").contains(CI_KEY));
}

#[tokio::test]
async fn a_key_of_another_tenant_gets_that_tenant() {
    let auth = authenticator().await;
    let acme = auth
        .authenticate(&metadata(&[("x-api-key", CI_KEY)]))
        .unwrap();
    let globex = auth
        .authenticate(&metadata(&[("x-api-key", OTHER_KEY)]))
        .unwrap();
    assert_eq!(acme.tenant(), "acme");
    assert_eq!(globex.tenant(), "globex");
    assert_eq!(globex.key_id(), "globex-ci");
    assert_ne!(acme.tenant(), globex.tenant());
}

#[tokio::test]
async fn a_key_without_the_role_is_denied_by_id_not_by_key() {
    let auth = authenticator().await;
    let principal = auth
        .authenticate(&metadata(&[(
            "authorization",
            &format!("Bearer {DASH_KEY}"),
        )]))
        .unwrap();
    principal.require(Role::Read).unwrap();
    for role in [Role::Execute, Role::Admin] {
        let status = principal.require(role).unwrap_err();
        assert_eq!(status.code(), Code::PermissionDenied);
        assert!(
            status
                .message()
                .starts_with(&format!("key `dashboard` lacks the `{role}` role")),
            "{}",
            status.message()
        );
        assert_hidden(&status, DASH_KEY);
    }
    let ci = auth
        .authenticate(&metadata(&[("x-api-key", CI_KEY)]))
        .unwrap();
    assert_eq!(
        ci.require(Role::Admin).unwrap_err().code(),
        Code::PermissionDenied
    );
    let admin = auth
        .authenticate(&metadata(&[("x-api-key", OTHER_KEY)]))
        .unwrap();
    for role in Role::ALL {
        admin.require(role).unwrap();
    }
}

#[tokio::test]
async fn keys_load_by_reference_through_a_secret_store() {
    let store = MemoryStore::new();
    let reference: SecretRef = "vault:secret/agents#ci".parse().unwrap();
    store.insert(&reference, VAULT_KEY.into()).unwrap();
    let config = AuthConfig::new(vec![ApiKeyConfig::with_reference(
        "ci",
        "acme",
        vec![Role::Execute],
        "vault:secret/agents#ci",
    )]);
    let auth = Authenticator::load(&config, &store).await.unwrap();
    let principal = auth
        .authenticate(&metadata(&[(
            "authorization",
            &format!("Bearer {VAULT_KEY}"),
        )]))
        .unwrap();
    assert_eq!((principal.key_id(), principal.tenant()), ("ci", "acme"));
    assert!(!format!("{auth:?}").contains(VAULT_KEY));
    assert!(format!("{config:?}").contains("vault:secret/agents#ci"));

    // A reference the store cannot resolve names the key and the reference, not a value.
    let missing = AuthConfig::new(vec![ApiKeyConfig::with_reference(
        "deploy",
        "acme",
        vec![Role::Admin],
        "env:AGENTS_KEY_DEPLOY_UNSET",
    )]);
    let error = Authenticator::load(&missing, &store).await.unwrap_err();
    match &error {
        AuthLoadError::Secret { key_id, source } => {
            assert_eq!(key_id, "deploy");
            assert_eq!(source.kind(), SecretErrorKind::NotFound);
        }
        other => panic!("unexpected {other:?}"),
    }
    let text = error.to_string();
    assert!(
        text.contains("`deploy`") && text.contains("env:AGENTS_KEY_DEPLOY_UNSET"),
        "{text}"
    );
    assert!(!error.is_retryable());
    assert!(std::error::Error::source(&error).is_some());
}

#[tokio::test]
async fn the_same_key_twice_is_refused() {
    let store = MemoryStore::new();
    let reference: SecretRef = "env:AGENTS_KEY_CI".parse().unwrap();
    store.insert(&reference, CI_KEY.into()).unwrap();
    let config = AuthConfig::new(vec![
        ApiKeyConfig::with_sha256("ci", "acme", vec![Role::Execute], digest_hex(CI_KEY)),
        ApiKeyConfig::with_reference("ci-again", "acme", vec![Role::Read], "env:AGENTS_KEY_CI"),
    ]);
    let error = Authenticator::load(&config, &store).await.unwrap_err();
    assert!(
        matches!(&error, AuthLoadError::DuplicateKey { first, second } if first == "ci" && second == "ci-again"),
        "{error:?}"
    );
    assert!(!error.to_string().contains(CI_KEY));
}

#[tokio::test]
async fn disabled_auth_gives_the_anonymous_principal() {
    let auth = Authenticator::load(&AuthConfig::default(), &MemoryStore::new())
        .await
        .unwrap();
    assert!(!auth.is_enabled());
    assert!(!Authenticator::disabled().is_enabled());
    for md in [
        MetadataMap::new(),
        metadata(&[("x-api-key", "anything-at-all")]),
    ] {
        let principal = auth.authenticate(&md).unwrap();
        assert_eq!(principal, Principal::anonymous());
        assert_eq!(principal.tenant(), ANONYMOUS_TENANT);
        for role in Role::ALL {
            principal.require(role).unwrap();
        }
    }
}

#[tokio::test]
async fn an_invalid_config_is_refused_at_load() {
    let config = AuthConfig::new(vec![ApiKeyConfig::with_sha256(
        "ci",
        "",
        vec![Role::Read],
        digest_hex(CI_KEY),
    )]);
    let error = Authenticator::load(&config, &MemoryStore::new())
        .await
        .unwrap_err();
    assert!(
        matches!(&error, AuthLoadError::Config { errors } if errors[0].path == "auth.keys[0].tenant"),
        "{error:?}"
    );
    assert!(error.to_string().contains("auth.keys[0].tenant"), "{error}");
}

#[test]
fn validation_names_every_bad_key_by_path_and_never_echoes_values() {
    let good = digest_hex(CI_KEY);
    let pasted_key = "sk-live-pasted-by-mistake-1234";
    let mut both = ApiKeyConfig::with_sha256("both", "t", vec![Role::Read], digest_hex("x-key"));
    both.key = Some("env:X".into());
    let mut neither = ApiKeyConfig::with_sha256("neither", "t", vec![Role::Read], "");
    neither.sha256 = None;
    let config = AuthConfig::new(vec![
        ApiKeyConfig::with_sha256("ok", "acme", vec![Role::Read], good.clone()),
        ApiKeyConfig::with_sha256("", " ", vec![], good.to_uppercase()),
        ApiKeyConfig::with_sha256("ok", "acme", vec![Role::Read], pasted_key),
        ApiKeyConfig::with_reference("literal", "acme", vec![Role::Read], pasted_key),
        both,
        neither,
        ApiKeyConfig::with_sha256("same", "acme", vec![Role::Read], good),
    ]);
    let errors = config.validate();
    let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "auth.keys[1].id",
            "auth.keys[1].tenant",
            "auth.keys[1].roles",
            "auth.keys[1].sha256",
            "auth.keys[2].id",
            "auth.keys[2].sha256",
            "auth.keys[3].key",
            "auth.keys[4]",
            "auth.keys[5]",
            "auth.keys[6].sha256",
        ]
    );
    assert!(errors[4].message.contains("`ok` is used twice"));
    assert!(errors[9].message.contains("auth.keys[0]"));
    for error in &errors {
        assert!(!error.to_string().contains(pasted_key), "{error}");
    }
    // Debug hides a literal key put where a reference belongs.
    let shown = format!("{config:?}");
    assert!(!shown.contains(pasted_key), "{shown}");
    assert!(AuthConfig::default().validate().is_empty());
    assert!(!AuthConfig::default().is_enabled());
}

#[test]
fn the_section_parses_from_toml_and_refuses_unknown_keys() {
    let config: AuthConfig = toml::from_str(&format!(
        r#"
        [[keys]]
        id = "ci"
        tenant = "acme"
        roles = ["execute", "read"]
        sha256 = "{}"

        [[keys]]
        id = "deploy"
        tenant = "acme"
        roles = ["admin"]
        key = "env:AGENTS_KEY_DEPLOY"
        "#,
        digest_hex(CI_KEY)
    ))
    .unwrap();
    assert!(config.validate().is_empty(), "{:?}", config.validate());
    assert_eq!(config.keys[0].roles, [Role::Execute, Role::Read]);
    assert_eq!(config.keys[1].key.as_deref(), Some("env:AGENTS_KEY_DEPLOY"));
    assert!(
        toml::from_str::<AuthConfig>(
            "[[keys]]\nid = \"a\"\ntenant = \"t\"\nroles = []\nsha = \"x\""
        )
        .is_err()
    );
    assert!(toml::from_str::<AuthConfig>("keyz = []").is_err());
    assert!(
        toml::from_str::<AuthConfig>(
            "[[keys]]\nid = \"a\"\ntenant = \"t\"\nroles = [\"root\"]\nkey = \"env:A\""
        )
        .is_err()
    );
}

#[test]
fn digests_are_lowercase_sha256_hex() {
    assert_eq!(
        digest_hex("abc"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}

#[test]
fn roles_nest_and_map_to_rpcs() {
    assert!(Role::Admin.grants(Role::Execute) && Role::Execute.grants(Role::Read));
    assert!(!Role::Read.grants(Role::Execute) && !Role::Execute.grants(Role::Admin));
    for (rpc, role) in [
        ("ListAgents", Role::Read),
        ("/agents.v1.AgentService/DescribeAgent", Role::Read),
        ("GetTask", Role::Read),
        ("Execute", Role::Execute),
        ("/agents.v1.AgentService/ExecuteStream", Role::Execute),
        ("SubmitTask", Role::Execute),
        ("CancelTask", Role::Execute),
        ("/agents.v1.AgentService/SomethingNew", Role::Admin),
    ] {
        assert_eq!(Role::required_for_rpc(rpc), role, "{rpc}");
    }
    assert_eq!(
        serde_json::to_value(Role::ALL).unwrap(),
        serde_json::json!(["read", "execute", "admin"])
    );
}
