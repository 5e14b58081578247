//! The channel to the server (plaintext, TLS or mutual TLS), the API key and the deadline.

use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic::{Code, Request, Status};

use super::CallArgs;
use super::failure::Failure;
use crate::config::ListenConfig;
use crate::pb::agent_service_client::AgentServiceClient;

/// How long connecting may take before the call gives up with UNAVAILABLE.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// An API key from the command line or `AGENTS_API_KEY`. Its `Debug` never shows it.
#[derive(Clone)]
pub struct ApiKey(String);

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

impl FromStr for ApiKey {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.is_empty() {
            return Err("the API key is empty".into());
        }
        Ok(Self(text.to_owned()))
    }
}

fn uses_tls(args: &CallArgs) -> bool {
    args.tls_ca.is_some() || args.tls_cert.is_some() || args.tls_domain.is_some()
}

/// `--addr`, with a scheme: `http://` unless a TLS option asks for `https://`.
fn address(args: &CallArgs) -> String {
    let addr = args
        .addr
        .clone()
        .unwrap_or_else(|| ListenConfig::default().listen.to_string());
    if addr.contains("://") {
        addr
    } else if uses_tls(args) {
        format!("https://{addr}")
    } else {
        format!("http://{addr}")
    }
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>, Failure> {
    std::fs::read(path)
        .map_err(|e| Failure::local(format!("cannot read the {what} {}: {e}", path.display())))
}

fn tls(args: &CallArgs) -> Result<ClientTlsConfig, Failure> {
    crate::tls::install_crypto_provider();
    let mut tls = ClientTlsConfig::new();
    tls = match &args.tls_ca {
        Some(ca) => tls.ca_certificate(Certificate::from_pem(read(ca, "CA certificate")?)),
        None => tls.with_native_roots(),
    };
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        tls = tls.identity(Identity::from_pem(
            read(cert, "client certificate")?,
            read(key, "client key")?,
        ));
    }
    if let Some(domain) = &args.tls_domain {
        tls = tls.domain_name(domain.clone());
    }
    Ok(tls)
}

/// A connected client. No server at the address is UNAVAILABLE, like a server without a model.
pub(super) async fn client(args: &CallArgs) -> Result<AgentServiceClient<Channel>, Failure> {
    let addr = address(args);
    let mut endpoint = Endpoint::from_shared(addr.clone())
        .map_err(|e| Failure::local(format!("--addr `{addr}` is not a URI: {e}")))?
        .connect_timeout(CONNECT_TIMEOUT);
    if addr.starts_with("https://") {
        endpoint = endpoint.tls_config(tls(args)?).map_err(|e| {
            Failure::local(format!("cannot set up TLS: {e}; check the --tls-* files"))
        })?;
    }
    let channel = endpoint.connect().await.map_err(|e| {
        let mut cause = String::new();
        let mut source: Option<&dyn std::error::Error> = Some(&e);
        while let Some(error) = source {
            cause = error.to_string();
            source = error.source();
        }
        Failure::from(Status::new(
            Code::Unavailable,
            format!("cannot connect to {addr}: {cause}; is the server running there (and does it speak TLS exactly when you pass --tls-*)?"),
        ))
    })?;
    Ok(AgentServiceClient::new(channel)
        .max_decoding_message_size(usize::MAX)
        .max_encoding_message_size(usize::MAX))
}

/// The request with the deadline (`grpc-timeout`) and the API key.
pub(super) fn request<T>(args: &CallArgs, message: T) -> Result<Request<T>, Failure> {
    let mut request = Request::new(message);
    request.set_timeout(args.timeout);
    let key = match &args.api_key {
        Some(key) => Some(key.0.clone()),
        None => std::env::var("AGENTS_API_KEY")
            .ok()
            .filter(|k| !k.is_empty()),
    };
    if let Some(key) = key {
        let value: MetadataValue<Ascii> = format!("Bearer {key}").parse().map_err(|_| {
            Failure::local("the API key has characters a header cannot carry; check it for stray spaces or newlines")
        })?;
        let mut value = value;
        value.set_sensitive(true);
        request.metadata_mut().insert("authorization", value);
    }
    Ok(request)
}
