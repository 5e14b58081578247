//! Pieces shared by several test files, each of which includes this folder with `mod support;`.

// Each test binary uses its own subset of these helpers.
#![allow(dead_code)]

pub(crate) mod otlp;

/// The text of the `/metrics` page served at `addr` (`host:port`), or why it could not be had.
pub(crate) async fn try_metrics_text(
    addr: impl std::fmt::Display,
) -> Result<String, reqwest::Error> {
    reqwest::get(format!("http://{addr}/metrics"))
        .await?
        .text()
        .await
}

/// The text of the `/metrics` page served at `addr`; the test fails, saying why, if the
/// endpoint does not answer.
pub(crate) async fn metrics_text(addr: impl std::fmt::Display) -> String {
    match try_metrics_text(&addr).await {
        Ok(text) => text,
        Err(error) => panic!("the metrics endpoint at {addr} did not answer: {error}"),
    }
}

/// Starts a server from the config `text` and connects a client to it.
pub(crate) async fn serve_config(
    text: &str,
) -> (
    agents_server::serve::Running,
    agents_server::pb::agent_service_client::AgentServiceClient<tonic::transport::Channel>,
) {
    let config = agents_server::config::parse(text, Vec::new()).unwrap();
    let running = agents_server::serve::start(config).await.unwrap();
    let client = agents_server::pb::agent_service_client::AgentServiceClient::connect(format!(
        "http://{}",
        running.addr
    ))
    .await
    .unwrap();
    (running, client)
}

/// A gRPC channel to the server at `addr` (`host:port`), for the services beside the agents'
/// (health, reflection).
pub(crate) async fn channel(addr: impl std::fmt::Display) -> tonic::transport::Channel {
    tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}
