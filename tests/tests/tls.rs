//! TLS and mutual TLS on the gRPC port: certificates made in the test with rcgen, the server
//! started from a `[server.tls]` config, and tonic clients with and without the CA and a
//! client certificate.

// A failing test should stop loudly: unwrap and panic are how tests say so.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use agents_fake_model::FakeModel;
use agents_server::config;
use agents_server::pb::{self, agent_service_client::AgentServiceClient};
use agents_server::serve::{self, Running};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, ExtendedKeyUsagePurpose, IsCa, KeyPair,
};
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

/// A CA, and PEM files of certificates it signed.
struct Authority {
    issuer: CertifiedIssuer<'static, KeyPair>,
    pem: String,
}

impl Authority {
    fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let pem = AsRef::<rcgen::Certificate>::as_ref(&issuer).pem();
        Self { issuer, pem }
    }

    /// A leaf for `names`, for `usage`: its certificate and key in PEM.
    fn issue(&self, names: &[&str], usage: ExtendedKeyUsagePurpose) -> (String, String) {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        params.extended_key_usages = vec![usage];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// The server on a free port with `[server.tls]` (and `client_ca` when given).
async fn tls_server(
    fake: &FakeModel,
    dir: &Path,
    server_ca: &Authority,
    client_ca: Option<&Authority>,
) -> Running {
    let (cert, key) = server_ca.issue(
        &["localhost", "127.0.0.1"],
        ExtendedKeyUsagePurpose::ServerAuth,
    );
    let cert = write(dir, "server.pem", &cert);
    let key = write(dir, "server.key", &key);
    let client_ca = client_ca
        .map(|ca| {
            let path = write(dir, "clients-ca.pem", &ca.pem);
            format!("client_ca = \"{}\"\n", path.display())
        })
        .unwrap_or_default();
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nmetrics_listen = \"127.0.0.1:0\"\n\
         [server.tls]\ncert = \"{}\"\nkey = \"{}\"\n{client_ca}\
         [bus.audit]\ndir = \"{}\"\n\
         [[providers]]\nopenai = {{ id = \"fake\", base_url = \"{}\", model = \"fake-model\" }}\n",
        cert.display(),
        key.display(),
        dir.join("audit").display(),
        fake.base_url()
    );
    let config = config::parse(&text, Vec::new()).unwrap();
    serve::start(config).await.unwrap()
}

/// ListAgents over `endpoint`; `Err` with the reason when connecting or the call fails.
async fn list(endpoint: Endpoint) -> Result<usize, String> {
    let channel = endpoint.connect().await.map_err(|e| format!("{e:?}"))?;
    let mut client = AgentServiceClient::new(channel);
    let listed = client
        .list_agents(pb::ListAgentsRequest {})
        .await
        .map_err(|s| format!("{s:?}"))?;
    Ok(listed.into_inner().agents.len())
}

fn https(running: &Running, tls: ClientTlsConfig) -> Endpoint {
    Endpoint::from_shared(format!("https://{}", running.addr))
        .unwrap()
        .tls_config(tls.domain_name("localhost"))
        .unwrap()
}

fn plaintext(running: &Running) -> Endpoint {
    Endpoint::from_shared(format!("http://{}", running.addr)).unwrap()
}

#[tokio::test]
async fn tls_serves_clients_that_trust_the_ca_and_refuses_plaintext() {
    let fake = FakeModel::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca = Authority::new("agents test CA");
    let running = tls_server(&fake, dir.path(), &ca, None).await;
    assert!(running.tls);

    let trusting = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&ca.pem));
    assert_eq!(list(https(&running, trusting)).await, Ok(3));

    assert!(
        list(plaintext(&running)).await.is_err(),
        "a plaintext client must not get an answer from a TLS port"
    );
    let stranger = Authority::new("someone else");
    let untrusting = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&stranger.pem));
    assert!(list(https(&running, untrusting)).await.is_err());

    // The server still serves after the failed handshakes.
    let trusting = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&ca.pem));
    assert_eq!(list(https(&running, trusting)).await, Ok(3));
    running.shutdown().await.unwrap();
}

#[tokio::test]
async fn mutual_tls_requires_a_client_certificate_signed_by_the_client_ca() {
    let fake = FakeModel::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let server_ca = Authority::new("agents server CA");
    let client_ca = Authority::new("agents client CA");
    let running = tls_server(&fake, dir.path(), &server_ca, Some(&client_ca)).await;
    let trusting = || ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&server_ca.pem));

    let refused = list(https(&running, trusting())).await;
    assert!(refused.is_err(), "no client certificate: {refused:?}");

    // A certificate from another CA is refused too.
    let rogue = Authority::new("rogue CA");
    let (cert, key) = rogue.issue(&["client"], ExtendedKeyUsagePurpose::ClientAuth);
    let with_rogue = trusting().identity(Identity::from_pem(cert, key));
    assert!(list(https(&running, with_rogue)).await.is_err());

    let (cert, key) = client_ca.issue(&["client"], ExtendedKeyUsagePurpose::ClientAuth);
    let with_cert = trusting().identity(Identity::from_pem(cert, key));
    assert_eq!(list(https(&running, with_cert)).await, Ok(3));
    running.shutdown().await.unwrap();
}

#[test]
fn missing_and_malformed_tls_files_are_config_errors_with_their_keys() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = write(
        dir.path(),
        "garbage.pem",
        "-----BEGIN CERTIFICATE-----\nnot base64!\n",
    );
    let text = format!(
        "[server.tls]\ncert = \"{}\"\nkey = \"{}\"\nclient_ca = \"{}\"\n",
        dir.path().join("missing.pem").display(),
        garbage.display(),
        garbage.display(),
    );
    let errors = config::parse(&text, Vec::new()).unwrap_err();
    let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        ["server.tls.cert", "server.tls.key", "server.tls.client_ca"],
        "{errors:?}"
    );
    assert!(errors[0].message.contains("cannot read"), "{errors:?}");
}

/// A key that does not belong to its certificate stops the start, before the port opens: it
/// used to be refused inside the serving task, after the server had said it was listening and
/// `/readyz` answered ready, with the port closed. A key given as a secret reference is only
/// read at start, so `check-config` cannot catch this one.
#[tokio::test]
async fn a_key_from_another_certificate_stops_the_start() {
    let fake = FakeModel::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca = Authority::new("server ca");
    let (cert, _) = ca.issue(&["localhost"], ExtendedKeyUsagePurpose::ServerAuth);
    let (_, other_key) = ca.issue(&["localhost"], ExtendedKeyUsagePurpose::ServerAuth);
    let cert = write(dir.path(), "server.pem", &cert);
    let key = write(dir.path(), "other.key", &other_key);
    // A `file:` secret must be private to its owner.
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nmetrics_listen = \"127.0.0.1:0\"\n\
         [server.tls]\ncert = \"{}\"\nkey = \"file:{}\"\n\
         [bus.audit]\ndir = \"{}\"\n\
         [[providers]]\nopenai = {{ id = \"fake\", base_url = \"{}\", model = \"fake-model\" }}\n",
        cert.display(),
        key.display(),
        dir.path().join("audit").display(),
        fake.base_url()
    );
    let config = config::parse(&text, Vec::new()).unwrap();
    let refused = serve::start(config).await.unwrap_err();
    let shown = format!("{refused:#}");
    assert!(shown.contains("server.tls.key"), "{shown}");
    assert!(
        shown.contains("does not belong to the certificate"),
        "{shown}"
    );
}
