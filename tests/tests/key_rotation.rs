//! A provider's API key in a real Vault-compatible server (OpenBao's `bao server -dev`),
//! rotated while the server runs: the next calls use the new key, at once when the model
//! refuses the old one, and within the secret cache's TTL otherwise. No restart.

// A failing test should stop loudly: unwrap and panic are how tests say so.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use agents_fake_model::{Behavior, FakeModel};
use agents_server::pb::{self, agent_service_client::AgentServiceClient};
use agents_server::serve::Running;
use tonic::transport::Channel;

const FIRST: &str = "sk-rotation-first-0123456789abcdef";
const SECOND: &str = "sk-rotation-second-0123456789abcdef";
const THIRD: &str = "sk-rotation-third-0123456789abcdef";

/// Writes `key` as key `key` of KV v2 secret `secret/llm`, a new version each time.
async fn put_key(bao: &agents_testkit::Peer, key: &str) {
    let response = reqwest::Client::new()
        .post(format!("http://{}/v1/secret/data/llm", bao.addr()))
        .header("X-Vault-Token", agents_testkit::OPENBAO_ROOT_TOKEN)
        .body(serde_json::json!({"data": {"key": key}}).to_string())
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{response:?}");
}

/// A server whose provider's key is `vault:secret/llm#key`, cached for `ttl_ms`.
async fn server(
    bao: &agents_testkit::Peer,
    fake: &FakeModel,
    ttl_ms: u64,
) -> (Running, AgentServiceClient<Channel>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("vault-token");
    std::fs::write(&token, agents_testkit::OPENBAO_ROOT_TOKEN).unwrap();
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nmetrics_listen = \"127.0.0.1:0\"\nshutdown_grace_ms = 2000\n\
         [bus.audit]\ndir = \"{audit}\"\n\
         [secrets.vault]\naddress = \"http://{bao}\"\nauth = {{ method = \"token\", token = \"file:{token}\" }}\n\
         [secrets.cache]\nttl_ms = {ttl_ms}\nrefresh_ahead_ms = 0\n\
         [[providers]]\nopenai = {{ id = \"fake\", base_url = \"{base}\", model = \"fake-model\", api_key = \"vault:secret/llm#key\" }}\n\
         policies = {{ retry = {{ max_retries = 0 }} }}\n",
        bao = bao.addr(),
        audit = dir.path().join("audit").display(),
        token = token.display(),
        base = fake.base_url(),
    );
    let (running, client) = support::serve_config(&text).await;
    (running, client, dir)
}

/// One call that must be answered by the model (no degraded answer).
async fn execute(client: &mut AgentServiceClient<Channel>) -> Result<(), tonic::Status> {
    let input = serde_json::json!({
        "source_code": "pub fn id<T>(x: T) -> T { x }",
        "language": "rust",
        "allow_degraded": false,
    });
    client
        .execute(pb::ExecuteRequest {
            agent_id: "code-analysis".into(),
            input_json: input.to_string(),
            request_id: String::new(),
        })
        .await
        .map(|_| ())
}

/// The keys the fake model received on its chat requests, in order.
fn keys_sent(fake: &FakeModel) -> Vec<String> {
    fake.requests()
        .iter()
        .filter(|r| r.path.ends_with("/chat/completions"))
        .map(|r| {
            let header = r.header("authorization").unwrap_or_default();
            header.strip_prefix("Bearer ").unwrap_or(header).to_owned()
        })
        .collect()
}

#[tokio::test]
async fn a_key_rotated_in_vault_is_used_at_once_when_the_model_refuses_the_old_one() {
    let Some(bao) = agents_testkit::openbao() else {
        return;
    };
    put_key(&bao, FIRST).await;
    let fake = FakeModel::start().await.unwrap();
    // A TTL far longer than the test: only the refusal can make the server read the key again.
    let (running, mut client, _dir) = server(&bao, &fake, 3_600_000).await;
    execute(&mut client).await.unwrap();

    put_key(&bao, SECOND).await;
    // The model now refuses the first key, as a provider does once its key is revoked.
    fake.push(Behavior::Status {
        code: 401,
        retry_after: None,
        message: "invalid api key".into(),
    });
    execute(&mut client)
        .await
        .expect("the call succeeds with the key read again after the refusal");
    assert_eq!(keys_sent(&fake), [FIRST, FIRST, SECOND]);
    execute(&mut client).await.unwrap();
    assert_eq!(keys_sent(&fake).last().map(String::as_str), Some(SECOND));
    running.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_key_rotated_in_vault_reaches_the_model_within_the_cache_ttl() {
    let Some(bao) = agents_testkit::openbao() else {
        return;
    };
    put_key(&bao, FIRST).await;
    let fake = FakeModel::start().await.unwrap();
    let (running, mut client, _dir) = server(&bao, &fake, 200).await;
    execute(&mut client).await.unwrap();
    put_key(&bao, THIRD).await;
    // Polls until the new key shows; the guard only stops a hang.
    let guard = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        execute(&mut client).await.unwrap();
        if keys_sent(&fake).last().map(String::as_str) == Some(THIRD) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < guard,
            "the rotated key never reached the model: {:?}",
            keys_sent(&fake)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(keys_sent(&fake)[0], FIRST);
    running.shutdown().await.unwrap();
}
