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
