//! The operator's HTTP port: `/metrics`, `/healthz` and `/readyz`.
//!
//! It is separate from the gRPC port so that scrapers and probes need neither gRPC nor an API
//! key, and so that a gRPC port saturated by load still leaves the server observable.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::header::{ACCEPT, CONTENT_TYPE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::{Metrics, OPENMETRICS_CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE};

#[derive(Debug, Clone)]
struct Shared {
    metrics: Arc<Metrics>,
    ready: Arc<AtomicBool>,
}

/// Serves the operator endpoints on `listener` until `shutdown` completes, then lets open
/// requests finish and returns.
///
/// - `GET /metrics`: the exposition, in OpenMetrics when the scraper's `Accept` asks for it
///   (Prometheus does), else in the Prometheus text format;
/// - `GET /healthz`: `200 ok` while the process runs (liveness);
/// - `GET /readyz`: `200 ready` while `ready` is true, `503 not ready` otherwise (readiness:
///   the server clears the flag when it starts draining, so load balancers stop sending work);
/// - anything else: `404`.
///
/// # Errors
/// An I/O error of the listener.
pub async fn serve_http(
    listener: tokio::net::TcpListener,
    metrics: Arc<Metrics>,
    ready: Arc<AtomicBool>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(Shared { metrics, ready }))
        .with_graceful_shutdown(shutdown)
        .await
}

fn router(shared: Shared) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(shared)
}

async fn metrics(State(shared): State<Shared>, headers: HeaderMap) -> Response {
    let openmetrics = headers.get_all(ACCEPT).iter().any(|value| {
        value
            .to_str()
            .is_ok_and(|v| v.contains("application/openmetrics-text"))
    });
    let (content_type, body) = if openmetrics {
        (
            OPENMETRICS_CONTENT_TYPE,
            shared.metrics.encode_openmetrics(),
        )
    } else {
        (PROMETHEUS_CONTENT_TYPE, shared.metrics.encode())
    };
    ([(CONTENT_TYPE, content_type)], body).into_response()
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(shared): State<Shared>) -> (StatusCode, &'static str) {
    if shared.ready.load(Ordering::Acquire) {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready")
    }
}
