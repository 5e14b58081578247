//! What the tool sends requests to: our gRPC `Execute`, or an OpenAI-compatible HTTP endpoint
//! (the peers).

use std::time::Duration;

use anyhow::Context as _;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::{Channel, Endpoint};

use crate::payload::GrpcInput;
use crate::pb;
use crate::pb::agent_service_client::AgentServiceClient;
use crate::stats::{Outcome, error_chain, gateway_overhead, server_overhead};

/// Error code of a request that outlived `--timeout-ms` in the tool.
pub const CLIENT_TIMEOUT: &str = "client_timeout";

/// A target to send requests to.
#[derive(Debug)]
pub enum Target {
    /// `agents.v1.AgentService/Execute`.
    Grpc(GrpcTarget),
    /// `POST /v1/chat/completions` of an OpenAI-compatible server.
    OpenAi(OpenAiTarget),
}

impl Target {
    /// Sends request number `i` and waits for its answer.
    pub async fn call(&self, i: u64) -> Outcome {
        match self {
            Self::Grpc(target) => target.call(i).await,
            Self::OpenAi(target) => target.call(i).await,
        }
    }
}

/// Our server's `Execute`, over several HTTP/2 connections.
#[derive(Debug)]
pub struct GrpcTarget {
    clients: Vec<AgentServiceClient<Channel>>,
    agent: String,
    input: GrpcInput,
    authorization: Option<MetadataValue<Ascii>>,
    timeout: Duration,
}

impl GrpcTarget {
    /// Opens `connections` channels to `addr` (`http://host:port`), each its own HTTP/2
    /// connection, so that one connection's flow control or one server task is not the limit.
    pub async fn connect(
        addr: &str,
        connections: usize,
        agent: String,
        input: GrpcInput,
        api_key: Option<&str>,
        timeout: Duration,
    ) -> anyhow::Result<Self> {
        let endpoint = Endpoint::from_shared(addr.to_owned())
            .with_context(|| format!("`{addr}` is not a URL such as http://127.0.0.1:50051"))?
            .tcp_nodelay(true)
            .connect_timeout(Duration::from_secs(5));
        let mut clients = Vec::with_capacity(connections);
        for _ in 0..connections.max(1) {
            let channel = endpoint
                .connect()
                .await
                .with_context(|| format!("cannot connect to {addr}"))?;
            clients.push(
                AgentServiceClient::new(channel)
                    .max_decoding_message_size(64 * 1024 * 1024)
                    .max_encoding_message_size(64 * 1024 * 1024),
            );
        }
        let authorization = api_key
            .map(|key| format!("Bearer {key}").parse())
            .transpose()
            .context("the API key is not a valid header value")?;
        Ok(Self {
            clients,
            agent,
            input,
            authorization,
            timeout,
        })
    }

    async fn call(&self, i: u64) -> Outcome {
        let index = usize::try_from(i).unwrap_or(0) % self.clients.len().max(1);
        let Some(client) = self.clients.get(index) else {
            return Outcome::error("no_connection");
        };
        let mut client = client.clone();
        let mut request = tonic::Request::new(pb::ExecuteRequest {
            agent_id: self.agent.clone(),
            input_json: self.input.for_request(i),
            request_id: String::new(),
        });
        // The server gets the same deadline (grpc-timeout).
        request.set_timeout(self.timeout);
        if let Some(value) = &self.authorization {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        match tokio::time::timeout(self.timeout, client.execute(request)).await {
            Err(_) => Outcome::error(CLIENT_TIMEOUT),
            Ok(Err(status)) => Outcome::failed(code_name(status.code()), &status_detail(&status)),
            Ok(Ok(response)) => {
                let metadata = response.into_inner().metadata;
                let metadata = metadata.as_ref();
                Outcome::Ok {
                    server_overhead: metadata
                        .and_then(|m| server_overhead(m.latency_us, m.provider_latency_us)),
                    gateway_overhead: metadata
                        .and_then(|m| gateway_overhead(m.latency_us, m.upstream_latency_us)),
                }
            }
        }
    }
}

/// A status's message and, for one the client made from a transport failure, its causes
/// (`transport error: connection reset by peer`): what tells a refused stream from a
/// dropped connection when both are `UNAVAILABLE`.
pub fn status_detail(status: &tonic::Status) -> String {
    let message = status.message();
    let Some(source) = std::error::Error::source(status) else {
        return message.to_owned();
    };
    let causes = error_chain(source);
    if message.is_empty() || causes.contains(message) {
        causes
    } else if message.contains(&causes) {
        message.to_owned()
    } else {
        format!("{message}: {causes}")
    }
}

/// A gRPC status code as the protocol spells it (`RESOURCE_EXHAUSTED`).
pub fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code;
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// An OpenAI-compatible `POST .../chat/completions`, over several HTTP/1.1 connection pools.
#[derive(Debug)]
pub struct OpenAiTarget {
    clients: Vec<reqwest::Client>,
    url: reqwest::Url,
    body: bytes::Bytes,
    headers: http::HeaderMap,
    timeout: Duration,
    /// The response header carrying the server's own overhead in milliseconds, if any.
    overhead_header: Option<http::HeaderName>,
}

impl OpenAiTarget {
    /// `connections` HTTP clients (each with its own pool) posting `body` to `url` with
    /// `headers` (`Name: value` each).
    pub fn new(
        url: &str,
        connections: usize,
        body: Vec<u8>,
        headers: &[String],
        timeout: Duration,
    ) -> anyhow::Result<Self> {
        let url = reqwest::Url::parse(url).with_context(|| {
            format!("`{url}` is not a URL such as http://127.0.0.1:4000/v1/chat/completions")
        })?;
        let mut map = http::HeaderMap::new();
        map.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        for header in headers {
            let (name, value) = header
                .split_once(':')
                .with_context(|| format!("header `{header}` is not `Name: value`"))?;
            let name: http::HeaderName = name
                .trim()
                .parse()
                .with_context(|| format!("bad header name in `{header}`"))?;
            let value: http::HeaderValue = value
                .trim()
                .parse()
                .with_context(|| format!("bad header value for `{name}`"))?;
            map.insert(name, value);
        }
        let clients = (0..connections.max(1))
            .map(|_| {
                reqwest::Client::builder()
                    .tcp_nodelay(true)
                    .timeout(timeout)
                    .build()
            })
            .collect::<Result<Vec<_>, _>>()
            .context("cannot build the HTTP client")?;
        Ok(Self {
            clients,
            url,
            body: body.into(),
            headers: map,
            timeout,
            overhead_header: None,
        })
    }

    /// Reads the server's own overhead from response header `name` (milliseconds, a decimal
    /// number, as LiteLLM's `x-litellm-overhead-duration-ms`), so that a peer's overhead can be
    /// compared with ours measured the same way (the gateway overhead): the server's total
    /// minus its upstream call.
    pub fn with_overhead_header(mut self, name: &str) -> anyhow::Result<Self> {
        let name: http::HeaderName = name
            .trim()
            .parse()
            .with_context(|| format!("`{name}` is not a header name"))?;
        self.overhead_header = Some(name);
        Ok(self)
    }

    async fn call(&self, i: u64) -> Outcome {
        let index = usize::try_from(i).unwrap_or(0) % self.clients.len().max(1);
        let Some(client) = self.clients.get(index) else {
            return Outcome::error("no_connection");
        };
        let send = async {
            let response = client
                .post(self.url.clone())
                .headers(self.headers.clone())
                .body(self.body.clone())
                .send()
                .await?;
            let status = response.status();
            let overhead = self
                .overhead_header
                .as_ref()
                .and_then(|name| response.headers().get(name))
                .and_then(|value| value.to_str().ok())
                .and_then(overhead_from_millis);
            // Read the whole body: the answer is not complete before it. An error's body is
            // what the peer said about it.
            let body = response.bytes().await?;
            Ok::<_, reqwest::Error>((status, overhead, body))
        };
        match tokio::time::timeout(self.timeout, send).await {
            Err(_) => Outcome::error(CLIENT_TIMEOUT),
            Ok(Err(error)) if error.is_timeout() => Outcome::error(CLIENT_TIMEOUT),
            Ok(Err(error)) if error.is_connect() => {
                Outcome::failed("connect", &error_chain(&error))
            }
            Ok(Err(error)) => Outcome::failed("transport", &error_chain(&error)),
            Ok(Ok((status, overhead, _))) if status.is_success() => Outcome::Ok {
                server_overhead: None,
                gateway_overhead: overhead,
            },
            Ok(Ok((status, _, body))) => Outcome::failed(
                format!("http_{}", status.as_u16()),
                &String::from_utf8_lossy(&body),
            ),
        }
    }
}

/// A server's overhead header in milliseconds (`"3.1416"`) as a duration; `None` for anything
/// that is not a finite, non-negative number (LiteLLM writes `None` when it has no figure).
pub fn overhead_from_millis(text: &str) -> Option<Duration> {
    let millis: f64 = text.trim().parse().ok()?;
    if !millis.is_finite() || millis < 0.0 {
        return None;
    }
    Duration::try_from_secs_f64(millis / 1000.0).ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    #[test]
    fn overhead_headers_parse_as_milliseconds() {
        assert_eq!(
            overhead_from_millis("3.5"),
            Some(Duration::from_micros(3500))
        );
        assert_eq!(
            overhead_from_millis(" 12 "),
            Some(Duration::from_millis(12))
        );
        assert_eq!(overhead_from_millis("0"), Some(Duration::ZERO));
        assert_eq!(overhead_from_millis("None"), None);
        assert_eq!(overhead_from_millis("-1"), None);
        assert_eq!(overhead_from_millis("NaN"), None);
        assert_eq!(overhead_from_millis("inf"), None);
    }

    /// A one-connection HTTP/1.1 server on 127.0.0.1 that answers every request with `head`
    /// (status line and headers) and a small JSON body.
    async fn answering(head: &'static str) -> String {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buffer = vec![0_u8; 64 * 1024];
            let mut seen = Vec::new();
            loop {
                let n = socket.read(&mut buffer).await.unwrap();
                seen.extend_from_slice(&buffer[..n]);
                // The request is whole once its headers and its 2-byte body (`{}`) are in.
                if n == 0 || seen.ends_with(b"\r\n\r\n{}") {
                    break;
                }
            }
            let body = "{\"ok\":true}";
            let reply = format!("{head}\r\ncontent-length: {}\r\n\r\n{body}", body.len());
            socket.write_all(reply.as_bytes()).await.unwrap();
        });
        format!("http://{addr}/v1/chat/completions")
    }

    fn target(url: &str) -> OpenAiTarget {
        OpenAiTarget::new(url, 1, b"{}".to_vec(), &[], Duration::from_secs(5))
            .unwrap()
            .with_overhead_header("x-litellm-overhead-duration-ms")
            .unwrap()
    }

    #[tokio::test]
    async fn a_peers_overhead_header_is_recorded_as_its_own_overhead() {
        let url = answering("HTTP/1.1 200 OK\r\nx-litellm-overhead-duration-ms: 4.25").await;
        assert_eq!(
            target(&url).call(0).await,
            Outcome::Ok {
                server_overhead: None,
                gateway_overhead: Some(Duration::from_micros(4250))
            }
        );
    }

    #[tokio::test]
    async fn an_answer_without_the_header_has_no_gateway_overhead() {
        let url = answering("HTTP/1.1 200 OK").await;
        assert_eq!(
            target(&url).call(0).await,
            Outcome::Ok {
                server_overhead: None,
                gateway_overhead: None
            }
        );
    }

    #[tokio::test]
    async fn a_refusal_is_an_error_whatever_its_headers() {
        let url =
            answering("HTTP/1.1 429 Too Many Requests\r\nx-litellm-overhead-duration-ms: 1").await;
        assert_eq!(
            target(&url).call(0).await,
            Outcome::failed("http_429", r#"{"ok":true}"#)
        );
    }

    /// A gRPC peer that takes each connection and drops it after the client's first bytes:
    /// what a server that is overloaded or going away can look like from the client.
    async fn hanging_up() -> String {
        use tokio::io::AsyncReadExt as _;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut buffer = [0_u8; 1024];
                let _ = socket.read(&mut buffer).await;
            }
        });
        format!("http://{addr}")
    }

    #[tokio::test]
    async fn a_dropped_connection_is_reported_with_the_transports_reason() {
        let addr = hanging_up().await;
        let input = crate::payload::GrpcInput::same("{}".into());
        // The client's handshake only sends: connecting succeeds, the call meets the hang-up.
        let target = GrpcTarget::connect(
            &addr,
            1,
            "code-analysis".into(),
            input,
            None,
            Duration::from_secs(5),
        )
        .await
        .unwrap();
        let Outcome::Error { code, detail } = target.call(0).await else {
            panic!("a peer that hangs up cannot answer");
        };
        // tonic reports a connection lost mid-call as UNKNOWN or UNAVAILABLE depending on
        // when it noticed; the detail is what tells them apart from a server's own answer.
        assert!(
            ["UNKNOWN", "UNAVAILABLE"].contains(&code.as_str()),
            "{code}"
        );
        let detail = detail.unwrap_or_default();
        assert!(detail.contains("transport error"), "{detail}");
    }

    #[test]
    fn a_bad_header_name_is_refused_when_the_target_is_built() {
        let built = OpenAiTarget::new(
            "http://127.0.0.1:1/",
            1,
            Vec::new(),
            &[],
            Duration::from_secs(1),
        )
        .unwrap()
        .with_overhead_header("not a header");
        assert!(built.unwrap_err().to_string().contains("not a header"));
    }
}
