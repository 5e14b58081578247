//! TLS and mutual TLS for the gRPC port (`[server.tls]`), with rustls.
//!
//! Why it exists: API keys and source code cross the network in every call; off loopback they
//! must be encrypted, and a deployment that trusts only its own clients wants them to prove
//! who they are with a certificate (mTLS) before a byte of gRPC is read.
//!
//! ```toml
//! [server.tls]
//! cert = "certs/server.pem"          # the certificate chain, leaf first (PEM)
//! key = "certs/server.key"           # a PEM file, or a secret reference holding the PEM
//! client_ca = "certs/clients-ca.pem" # optional: clients must present a cert signed by it
//! ```
//!
//! The crypto provider is aws-lc-rs: the server already links it (through the AWS SDK and
//! reqwest's rustls), so ring would be a second crypto library for nothing. The metrics port
//! stays plain HTTP; it is meant for loopback and a local scraper.
//!
//! Files are read and parsed at `check-config` time as well as at start, so a missing file or
//! a file that holds no certificate is reported with its key before the server binds anything.

use std::path::{Path, PathBuf};

use agents_core::ConfigError;
use agents_secrets::secrecy::ExposeSecret;
use agents_secrets::{SecretRef, SecretStore};
use anyhow::Context as _;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::{Deserialize, Serialize};
use tonic::transport::{Certificate, Identity, ServerTlsConfig};

/// The `server.tls` section. Present means the gRPC port speaks TLS only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct TlsConfig {
    /// The server's certificate chain, leaf first, as a PEM file.
    pub cert: PathBuf,
    /// The private key (PKCS#8, PKCS#1 or SEC1 PEM): a file path, or a secret reference
    /// (`vault:secret/agents#tls_key`, `file:...`, `env:...`) whose value is the PEM text. A
    /// value with a `scheme:` prefix is a reference.
    pub key: String,
    /// CA certificates (PEM) that sign client certificates. When set, every client must
    /// present a certificate signed by one of them (mutual TLS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ca: Option<PathBuf>,
}

/// Where the private key comes from.
#[derive(Debug)]
enum KeySource {
    File(PathBuf),
    Secret(SecretRef),
}

impl TlsConfig {
    /// A section serving `cert` with `key` (a path or a secret reference).
    pub fn new(cert: impl Into<PathBuf>, key: impl Into<String>) -> Self {
        Self {
            cert: cert.into(),
            key: key.into(),
            client_ca: None,
        }
    }

    /// Requires client certificates signed by the CAs in `client_ca`.
    pub fn with_client_ca(mut self, client_ca: impl Into<PathBuf>) -> Self {
        self.client_ca = Some(client_ca.into());
        self
    }

    fn key_source(&self) -> Result<KeySource, String> {
        // The PEM text itself (pasted into the file or an environment variable) would be
        // taken for a path and echoed by every error about it: refuse it without a word of it.
        if self.key.contains("-----BEGIN") || self.key.contains('\n') {
            return Err(
                "holds PEM text, not where to find the key (not shown); give the path \
                 of a PEM file, or a secret reference such as `env:AGENTS_TLS_KEY` whose value \
                 is the PEM"
                    .to_owned(),
            );
        }
        if self.key.contains(':') {
            self.key
                .parse::<SecretRef>()
                .map(KeySource::Secret)
                .map_err(|e| {
                    format!("{e}; or give the path of a PEM file (a path has no `scheme:` prefix)")
                })
        } else {
            Ok(KeySource::File(PathBuf::from(&self.key)))
        }
    }

    /// Every problem, each under `server.tls.<key>`: unreadable files, files without a
    /// certificate or a key, a malformed secret reference.
    pub fn validate(&self) -> Vec<ConfigError> {
        let mut errors = Vec::new();
        let mut check = |key: &str, result: Result<(), String>| {
            if let Err(message) = result {
                errors.push(ConfigError::new(format!("server.tls.{key}"), message));
            }
        };
        check(
            "cert",
            read(&self.cert)
                .and_then(|pem| certs(&pem, &self.cert))
                .map(drop),
        );
        check(
            "key",
            self.key_source().and_then(|source| match source {
                KeySource::File(path) => read(&path).and_then(|key_pem| {
                    key(&key_pem, &path)?;
                    // Whether the key belongs to the certificate, when both can be read.
                    match read(&self.cert) {
                        Ok(cert_pem) if certs(&cert_pem, &self.cert).is_ok() => {
                            pair(cert_pem, key_pem, &self.cert, &path).map(drop)
                        }
                        _ => Ok(()),
                    }
                }),
                // Resolved at start-up, through the secret stores.
                KeySource::Secret(_) => Ok(()),
            }),
        );
        if let Some(ca) = &self.client_ca {
            check(
                "client_ca",
                read(ca).and_then(|pem| certs(&pem, ca)).map(drop),
            );
        }
        errors
    }

    /// tonic's server builder speaking TLS with this section: the identity, and the client CA
    /// when set. Reads the files again (they may have been rotated since validation) and
    /// resolves a key reference through `secrets`. rustls checks here that the key belongs to
    /// the certificate, so a mismatched pair stops the start before the port opens (it used to
    /// be found in the serving task, after the server had reported itself listening and ready).
    ///
    /// # Errors
    /// A file that cannot be read or holds no certificate or key, a key reference that does
    /// not resolve, or a key that does not belong to the certificate, each naming its
    /// `server.tls` key.
    pub async fn load(
        &self,
        secrets: &dyn SecretStore,
    ) -> anyhow::Result<tonic::transport::Server> {
        install_crypto_provider();
        let at = |key: &str| format!("server.tls.{key}");
        let cert = read(&self.cert)
            .and_then(|pem| certs(&pem, &self.cert).map(|_| pem))
            .map_err(anyhow::Error::msg)
            .with_context(|| at("cert"))?;
        let key_pem = match self
            .key_source()
            .map_err(anyhow::Error::msg)
            .with_context(|| at("key"))?
        {
            KeySource::File(path) => read(&path)
                .and_then(|pem| key(&pem, &path).map(|()| pem))
                .map_err(anyhow::Error::msg)
                .with_context(|| at("key"))?,
            KeySource::Secret(reference) => {
                let secret = secrets
                    .get(&reference)
                    .await
                    .with_context(|| format!("{}: cannot load the private key", at("key")))?;
                let pem = secret.expose_secret().as_bytes().to_vec();
                key(&pem, Path::new(reference.as_str()))
                    .map_err(anyhow::Error::msg)
                    .with_context(|| at("key"))?;
                pem
            }
        };
        let mut tls = ServerTlsConfig::new().identity(Identity::from_pem(cert, key_pem));
        if let Some(ca) = &self.client_ca {
            let pem = read(ca)
                .and_then(|pem| certs(&pem, ca).map(|_| pem))
                .map_err(anyhow::Error::msg)
                .with_context(|| at("client_ca"))?;
            tls = tls.client_ca_root(Certificate::from_pem(pem));
        }
        let key_name = match &self.key_source() {
            Ok(KeySource::Secret(reference)) => reference.as_str().to_owned(),
            _ => self.key.clone(),
        };
        tonic::transport::Server::builder()
            .tls_config(tls)
            .map_err(|e| anyhow::anyhow!("{key_name} {}", refused_pair(&e, &self.cert)))
            .with_context(|| at("key"))
    }
}

/// tonic's server with the certificate and key as its identity: rustls refuses a key that does
/// not belong to the certificate.
fn pair(
    cert_pem: Vec<u8>,
    key_pem: Vec<u8>,
    cert: &Path,
    key: &Path,
) -> Result<tonic::transport::Server, String> {
    install_crypto_provider();
    let tls = ServerTlsConfig::new().identity(Identity::from_pem(cert_pem, key_pem));
    tonic::transport::Server::builder()
        .tls_config(tls)
        .map_err(|e| format!("{} {}", key.display(), refused_pair(&e, cert)))
}

/// rustls's refusal of an identity; its message names no key material.
fn refused_pair(error: &tonic::transport::Error, cert: &Path) -> String {
    let source = std::error::Error::source(error)
        .map(ToString::to_string)
        .unwrap_or_else(|| error.to_string());
    format!(
        "does not belong to the certificate in {} (rustls: {source}); give the key the \
         certificate was issued for",
        cert.display()
    )
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| {
        format!(
            "cannot read {}: {e}; give the path of a PEM file the server can read",
            path.display()
        )
    })
}

/// The certificates of a PEM document; at least one.
fn certs(pem: &[u8], path: &Path) -> Result<usize, String> {
    let mut count = 0;
    for cert in CertificateDer::pem_slice_iter(pem) {
        cert.map_err(|e| format!("{} is not valid PEM: {e}", path.display()))?;
        count += 1;
    }
    if count == 0 {
        return Err(format!(
            "{} holds no `BEGIN CERTIFICATE` block; give a PEM certificate file",
            path.display()
        ));
    }
    Ok(count)
}

/// Checks that a PEM document holds a private key. The path only names it in messages (for a
/// secret, its reference), so the key itself never reaches an error.
fn key(pem: &[u8], path: &Path) -> Result<(), String> {
    PrivateKeyDer::from_pem_slice(pem).map(drop).map_err(|e| {
        format!(
            "{} holds no usable private key ({e}); give a PKCS#8, PKCS#1 or SEC1 PEM key",
            path.display()
        )
    })
}

/// Makes aws-lc-rs the process's rustls crypto provider, once; later calls do nothing.
///
/// Both aws-lc-rs (reqwest, tonic, the AWS SDK) and ring (async-nats) are compiled in, and with
/// two providers rustls refuses to pick one by itself: the first TLS handshake would panic.
pub fn install_crypto_provider() {
    // Err means a provider is installed already (ours, or the embedding program's): keep it.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn good_files_pass_and_each_bad_one_is_named_by_its_key() {
        let dir = tempfile::tempdir().unwrap();
        let issued = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let cert = write(dir.path(), "cert.pem", &issued.cert.pem());
        let key = write(dir.path(), "key.pem", &issued.signing_key.serialize_pem());
        let good = TlsConfig::new(&cert, key.display().to_string()).with_client_ca(&cert);
        assert!(good.validate().is_empty(), "{:?}", good.validate());

        let garbage = write(dir.path(), "garbage.pem", "not pem at all");
        let bad = TlsConfig::new(
            dir.path().join("missing.pem"),
            garbage.display().to_string(),
        )
        .with_client_ca(&key);
        let errors = bad.validate();
        let by_key = |k: &str| {
            errors
                .iter()
                .find(|e| e.path == format!("server.tls.{k}"))
                .map(|e| e.message.clone())
                .unwrap_or_default()
        };
        assert!(by_key("cert").contains("cannot read"), "{errors:?}");
        assert!(
            by_key("key").contains("no usable private key"),
            "{errors:?}"
        );
        assert!(
            by_key("client_ca").contains("no `BEGIN CERTIFICATE`"),
            "{errors:?}"
        );

        let reference = TlsConfig::new(&cert, "vault:secret/agents#tls_key");
        assert!(reference.validate().is_empty());
        let broken = TlsConfig::new(&cert, "nope:x");
        assert_eq!(broken.validate()[0].path, "server.tls.key");
    }

    /// A key pasted as PEM text (`AGENTS_SERVER__TLS__KEY="$(cat server.key)"`) used to be
    /// taken for a path, and `cannot read -----BEGIN PRIVATE KEY-----...` printed the key.
    #[test]
    fn a_key_given_as_pem_text_is_refused_without_echoing_it() {
        let dir = tempfile::tempdir().unwrap();
        let issued = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let cert = write(dir.path(), "cert.pem", &issued.cert.pem());
        let pem = issued.signing_key.serialize_pem();
        let body: String = pem.lines().nth(1).unwrap().to_owned();
        for text in [
            pem.clone(),
            pem.replace('\n', " "),
            pem.replace("\n", "\\n"),
        ] {
            let errors = TlsConfig::new(&cert, text).validate();
            assert_eq!(errors.len(), 1, "{errors:?}");
            assert_eq!(errors[0].path, "server.tls.key");
            assert!(errors[0].message.contains("PEM text"), "{errors:?}");
            let shown = format!("{errors:?} {}", errors[0].message);
            assert!(!shown.contains(&body[..20]), "the key was echoed: {shown}");
        }
    }

    /// rustls checks the pair: a key from another certificate is named under `server.tls.key`
    /// by `check-config`, and refused by `load` before the port opens.
    #[tokio::test]
    async fn a_key_that_does_not_belong_to_the_certificate_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let issued = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let other = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let cert = write(dir.path(), "cert.pem", &issued.cert.pem());
        let key = write(dir.path(), "other.key", &other.signing_key.serialize_pem());
        let mismatched = TlsConfig::new(&cert, key.display().to_string());
        let errors = mismatched.validate();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].path, "server.tls.key");
        assert!(
            errors[0]
                .message
                .contains("does not belong to the certificate"),
            "{errors:?}"
        );
        let secrets = agents_secrets::MemoryStore::new();
        let refused = mismatched.load(&secrets).await.unwrap_err();
        let shown = format!("{refused:#}");
        assert!(shown.contains("server.tls.key"), "{shown}");
        assert!(shown.contains("does not belong"), "{shown}");

        let own = write(dir.path(), "own.key", &issued.signing_key.serialize_pem());
        let good = TlsConfig::new(&cert, own.display().to_string());
        assert!(good.validate().is_empty(), "{:?}", good.validate());
        assert!(good.load(&secrets).await.is_ok());
    }
}
